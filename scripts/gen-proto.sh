#!/usr/bin/env bash
# Regenerates src/gen/ from proto/ with buf + ts-proto (both from npm).
#   bash scripts/gen-proto.sh          regenerate
#   bash scripts/gen-proto.sh --check  fail when the committed code is stale
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
buf="node_modules/.bin/buf"
"$buf" lint
if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "$buf" generate --template buf.gen.yaml -o "$tmp"
  mkdir -p "$tmp/src/gen" && (cd "$tmp" && ln -s "$root/node_modules" node_modules && cp -r "$root/proto" proto \
    && node "$root/scripts/gen-descriptor-set.mjs")
  if ! diff -r "$tmp/src/gen" src/gen >/dev/null; then
    diff -r "$tmp/src/gen" src/gen | head -20 >&2
    echo "bulkhead: src/gen is stale; run 'npm run gen' and commit the result" >&2
    exit 1
  fi
  echo "bulkhead: src/gen is fresh" >&2
  exit 0
fi
rm -rf src/gen
"$buf" generate --template buf.gen.yaml
node scripts/gen-descriptor-set.mjs
echo "bulkhead: generated $(find src/gen -name '*.ts' | wc -l) files in src/gen" >&2
