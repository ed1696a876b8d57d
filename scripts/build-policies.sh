#!/usr/bin/env bash
# Compiles policies/ into the Wasm bundle the sidecar serves (dist/policies/).
#
#   bash scripts/build-policies.sh [--src DIR] [--out DIR]
#     --src  policy sources as OPA loads them (default policies/): Rego under
#            DIR/bulkhead/, data as DIR/bulkhead/<name>/data.json (-> data.bulkhead.<name>)
#     --out  bundle directory the server watches (default dist/policies/)
#
# Steps: opa fmt/check, opa build -t wasm (plain OPA reads the same tree, so
# `opa test policies` and `opa eval -d policies` see what the bundle sees),
# then publish policy.wasm + data.json and finally bundle.json (revision = sha256 of both). The server trusts a bundle only when
# bundle.json matches the files, so a watcher never loads a half-written one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/policies"
out="$root/dist/policies"
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--src DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done

opa="$("$root/scripts/ensure-tool.sh" opa)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$opa" fmt --fail --list "$src" >/dev/null || {
  echo "bulkhead: policies are not opa-fmt clean; run: $opa fmt -w policies" >&2; exit 1; }
"$opa" check --strict "$src"

# Build from a copy at fixed relative paths: the Wasm records source locations,
# and the revision should depend on the policy, not on where it was checked out.
mkdir -p "$work/src"
cp -r "$src/bulkhead" "$work/src/bulkhead"
(cd "$work/src" && "$opa" build -t wasm -e bulkhead/decision --ignore '*_test.rego' \
  -o "$work/bundle.tar.gz" .)
mkdir -p "$work/bundle" "$out"
tar -xzf "$work/bundle.tar.gz" -C "$work/bundle" --no-same-permissions /policy.wasm /data.json 2> >(grep -v "Removing leading" >&2)
chmod 644 "$work/bundle/"*

revision="$(cat "$work/bundle/policy.wasm" "$work/bundle/data.json" | sha256sum | cut -c1-16)"
opa_version="$("$opa" version | sed -n 's/^Version: //p')"
printf '{"revision":"%s","opa_version":"%s","entrypoint":"bulkhead/decision"}\n' \
  "$revision" "$opa_version" > "$work/bundle/bundle.json"
# Same-filesystem renames are atomic per file; bundle.json goes last.
for f in policy.wasm data.json bundle.json; do
  cp "$work/bundle/$f" "$out/.$f.tmp" && mv -f "$out/.$f.tmp" "$out/$f"
done
echo "bulkhead: policy bundle $revision -> ${out#$root/}" >&2
