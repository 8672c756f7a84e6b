#!/usr/bin/env bash
# The icmp_exporter binary's command line: --version, --help, and a clear error for an
# unknown flag.
set -uo pipefail
bin=${1:?usage: test_cli.sh icmp_exporter VERSION}
version=${2:?usage: test_cli.sh icmp_exporter VERSION}
# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"

out=$("$bin" --version)
check "--version exits 0" [ $? = 0 ]
check "--version names version $version" grep -q "^icmp_exporter, version $version " <<<"$out"
out=$("$bin" --help)
check "--help exits 0" [ $? = 0 ]
check "--help shows usage" grep -q '^usage: icmp_exporter' <<<"$out"
err=$("$bin" --no-such-flag 2>&1 >/dev/null)
check "unknown flag exits 2" [ $? = 2 ]
check "unknown flag is named" grep -q "unknown flag '--no-such-flag'" <<<"$err"
check_done
