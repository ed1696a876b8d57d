#!/usr/bin/env bash
# Finds a pinned build tool, or installs it with `go install` into .tools/bin.
#
#   scripts/ensure-tool.sh opa        -> prints the absolute path of a usable `opa`
#
# Go tools: the project-local .tools/bin, then PATH (only at the pinned
# version), then `go install <module>@<version>`. Debian tools (faketime):
# PATH, then `apt-get install` when running as root. Progress goes to stderr
# so callers can capture the path from stdout. Versions are pinned here and
# nowhere else.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_bin="$root/.tools/bin"
name="${1:-}"

# Tools that come from Debian's packages rather than the Go module proxy.
apt_tool() { # <binary> <package>
  if path="$(command -v "$1" 2>/dev/null)"; then echo "$path"; exit 0; fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bulkhead: '$1' is needed and was not found. Install Debian's '$2' package (apt-get install $2)." >&2
    exit 1
  fi
  echo "bulkhead: installing Debian's $2 with apt-get (first time only)..." >&2
  apt-get install -y --no-install-recommends "$2" >&2 || { apt-get update >&2 && apt-get install -y --no-install-recommends "$2" >&2; }
  command -v "$1"
  exit 0
}

case "$name" in
  opa)         module="github.com/open-policy-agent/opa";                 version="v1.22.3"; probe=(version) ;;
  grpcurl)     module="github.com/fullstorydev/grpcurl/cmd/grpcurl";      version="v1.9.4";  probe=(-version) ;;
  ghz)         module="github.com/bojand/ghz/cmd/ghz";                    version="v0.120.0"; probe=(--version) ;;
  stripe-mock) module="github.com/stripe/stripe-mock";                    version="v0.203.0"; probe=(-version) ;;
  # HTTP load generator for the OPA REST row of `npm run bench`: per-request
  # bodies from a JSON targets file, constant-rate attacks, per-request results.
  vegeta)      module="github.com/tsenart/vegeta/v12";                    version="v12.13.0"; probe=(-version) ;;
  # NATS JetStream server for replicated mode (DESIGN.md section 11) and test/replicated/.
  nats-server) module="github.com/nats-io/nats-server/v2";                version="v2.15.3"; probe=(--version) ;;
  # libfaketime, for the suite's second run with the wall clock moved (scripts/test-shifted-clock.sh).
  faketime)    apt_tool faketime faketime ;;
  # Debian's browser, driven by playwright-core in test/e2e/console*.test.ts (browser downloads are impossible here).
  chromium)    apt_tool chromium chromium ;;
  *) echo "usage: $0 opa|grpcurl|ghz|stripe-mock|vegeta|nats-server|faketime|chromium" >&2; exit 2 ;;
esac

# `opa version` prints "Version: 1.22.3". Binaries built by `go install` may
# print no version at all (grpcurl says "dev build"), but Go records the module
# version in the binary, which `go version -m` reads.
matches_pin() {
  "$1" "${probe[@]}" 2>&1 | grep -q -- "${version#v}" && return 0
  command -v go >/dev/null 2>&1 && go version -m "$1" 2>/dev/null | grep -qE "^\s+mod\s+\S+\s+$version(\s|$)"
}

if [ -x "$tools_bin/$name" ] && matches_pin "$tools_bin/$name"; then
  echo "$tools_bin/$name"; exit 0
fi
if on_path="$(command -v "$name" 2>/dev/null)" && matches_pin "$on_path"; then
  echo "$on_path"; exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
bulkhead: '$name' $version is needed and was not found.
  Install Go (https://go.dev/dl/) so this script can run
    go install $module@$version
  or put '$name' $version on your PATH yourself.
MSG
  exit 1
fi
echo "bulkhead: installing $name $version with go install (first time only; OPA takes a few minutes)..." >&2
mkdir -p "$tools_bin"
GOBIN="$tools_bin" GOFLAGS="${GOFLAGS:-} -mod=mod" go install "$module@$version" >&2
matches_pin "$tools_bin/$name" || { echo "bulkhead: installed $name does not report $version" >&2; exit 1; }
echo "$tools_bin/$name"
