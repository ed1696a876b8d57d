#!/usr/bin/env bash
# Runs the Rego unit tests (policies/**/*_test.rego) against the merged data.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
opa="$("$root/scripts/ensure-tool.sh" opa)"
data="$(mktemp -d)/data.json"
node "$root/scripts/merge-policy-data.mjs" "$root/policies/data" > "$data"
"$opa" fmt --fail --list "$root/policies" >/dev/null || { echo "policies are not opa-fmt clean" >&2; exit 1; }
"$opa" test "$root/policies/bulkhead" "$data" "$@"
