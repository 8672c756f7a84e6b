#!/usr/bin/env bash
# The icmp_exporter binary's command line: --version (its exact form), --help, and a clear error for an
# unknown flag.
set -uo pipefail
bin=${1:?usage: test_cli.sh icmp_exporter VERSION}
version=${2:?usage: test_cli.sh icmp_exporter VERSION}
# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"

out=$("$bin" --version)
check "--version exits 0" [ $? = 0 ]
# Prometheus exporters' multi-line form (as `prometheus --version` prints it), the C compiler
# in place of the Go version, and the libraries; line by line, nothing more.
line() { sed -n "${1}p" <<<"$out"; }
check_detail="$out"
check "--version: 6 lines" [ "$(wc -l <<<"$out")" = 6 ]
check "--version: icmp_exporter, version $version (branch: B, revision: R)" grep -qE \
    "^icmp_exporter, version ${version//./\\.} \(branch: [^ ,()]+, revision: ([0-9a-f]{40}|unknown)\)\$" \
    <<<"$(line 1)"
check "--version:   build user:       USER" grep -qE '^  build user:       [^ ]+$' <<<"$(line 2)"
check "--version:   build date:       YYYYMMDD-HH:MM:SS" \
    grep -qE '^  build date:       [0-9]{8}-[0-9]{2}:[0-9]{2}:[0-9]{2}$' <<<"$(line 3)"
check "--version:   compiler:         gcc|clang VERSION" \
    grep -qE '^  compiler:         (gcc|clang) [0-9]+(\.[0-9]+)*$' <<<"$(line 4)"
check "--version:   platform:         linux/PROCESSOR" \
    grep -qE '^  platform:         linux/[a-z0-9_]+$' <<<"$(line 5)"
check "--version:   libraries:        libmicrohttpd X, cJSON Y, libyaml Z" \
    grep -qE '^  libraries:        libmicrohttpd [0-9.]+, cJSON [0-9.]+, libyaml [0-9.]+$' <<<"$(line 6)"
check_detail=""
out=$("$bin" --help)
check "--help exits 0" [ $? = 0 ]
check "--help shows usage" grep -q '^usage: icmp_exporter' <<<"$out"
err=$("$bin" --no-such-flag 2>&1 >/dev/null)
check "unknown flag exits 2" [ $? = 2 ]
check "unknown flag is named" grep -q "unknown flag '--no-such-flag'" <<<"$err"
check_done
