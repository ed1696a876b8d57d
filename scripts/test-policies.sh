#!/usr/bin/env bash
# Plain OPA on policies/ as it is: fmt, check --strict and the Rego unit tests
# (policies/**/*_test.rego). `bulkhead policy test` runs this and then the
# decision fixtures through the compiled Wasm.
#
#   bash scripts/test-policies.sh [--src DIR] [opa test flags...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
opa="$("$root/scripts/ensure-tool.sh" opa)"
src="$root/policies"
if [ "${1:-}" = "--src" ]; then src="$2"; shift 2; fi
"$opa" fmt --fail --list "$src" >/dev/null || { echo "bulkhead: policies are not opa-fmt clean; run: $opa fmt -w $src" >&2; exit 1; }
"$opa" check --strict "$src"
"$opa" test "$src" "$@"
