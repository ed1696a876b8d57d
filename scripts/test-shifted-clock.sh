#!/usr/bin/env bash
# Runs the vitest suite again with the wall clock moved to another month and
# year, starting two minutes before a month end so the run crosses it.
#
#   scripts/test-shifted-clock.sh [--at "2027-02-28 23:58:00"] [vitest args...]
#
# Tests must not depend on the calendar (test/support/test-time.ts): this run
# catches a fixed date mixed with the real clock, a fixture that expires, a
# window that rolls over wrongly at a month end, and local-time comparisons
# (TZ is set to a zone far from UTC for the same reason).
#
# libfaketime is given a relative offset, not an absolute "@" time: with an
# offset every process (vitest's workers, the sidecars and scripts the tests
# spawn) sees one and the same shifted clock, ticking in real time. An "@"
# time would restart the clock at that instant in every child process. Go
# binaries (opa, stripe-mock) ignore libfaketime; no test compares their
# clock with ours. Run `npm test` first: this reuses its builds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

at="2027-02-28 23:58:00"
if [ "${1:-}" = "--at" ]; then at="$2"; shift 2; fi
[ -d dist/src ] && [ -d dist/policies ] || { echo "bulkhead: run 'npm test' (or 'npm run build') first" >&2; exit 2; }

bash scripts/ensure-tool.sh faketime >/dev/null
target="$(date -u -d "$at" +%s)"
offset=$(( target - $(date -u +%s) ))
lib="$(dpkg -L libfaketime 2>/dev/null | grep -m1 '/libfaketime.so.1$' || true)"
[ -n "$lib" ] || { echo "bulkhead: libfaketime.so.1 not found (Debian package libfaketime)" >&2; exit 1; }

printf '\n== vitest with the wall clock at %s UTC (offset %+ds), TZ=Pacific/Kiritimati\n' "$at" "$offset" >&2
report="$(mktemp)"
status=0
sign="+"; [ "$offset" -lt 0 ] && sign=""
export LD_PRELOAD="$lib" FAKETIME="${sign}${offset}s" TZ=Pacific/Kiritimati
node -e 'console.log(`clock at the start of the run: ${new Date().toISOString()}`)'
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e 'console.log(`clock at the end of the run: ${new Date().toISOString()}`)'
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`shifted: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`)' "$report" || true
exit "$status"
