#!/usr/bin/env bash
# npm test: everything CI runs, in the order a failure is cheapest to find.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step() { printf '\n== %s\n' "$*" >&2; }
step "generated code is fresh (buf lint + ts-proto)"; bash scripts/gen-proto.sh --check
step "typecheck"; node_modules/.bin/tsc -p tsconfig.json --noEmit
step "policy unit tests (opa test)"; bash scripts/test-policies.sh
step "compile policies to Wasm"; bash scripts/build-policies.sh
step "compile TypeScript"; node_modules/.bin/tsc -p tsconfig.build.json
# test/replicated/ starts a real three-node JetStream cluster; a fresh machine
# gets the pinned server here (go install, about 45 s) rather than inside a test hook.
step "nats-server for test/replicated"; bash scripts/ensure-tool.sh nats-server >/dev/null
# The console's browser tests drive Debian's chromium (root + apt-get when missing, like faketime).
step "chromium for test/e2e/console*"; bash scripts/ensure-tool.sh chromium >/dev/null
step "vitest"
report="$(mktemp)"
status=0
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# A plain closing line, so CI can tell how many tests ran whatever the reporter.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$report" || true
exit "$status"
