#!/usr/bin/env bash
# The suite's last test: fails when a process started by a test, or a test lab, outlives the
# tests, and names each one (then stops it, so one leak does not pile up over runs).
#
# How a process is known to be the suite's: ctest gives every test ICMPX_TEST_RUN (this build
# tree) and ICMPX_TEST (the test's name) in its environment (icmpx_suite_tests() in
# tests/CMakeLists.txt), and every process a test starts inherits them; /proc/PID/environ
# keeps them. Such a process is left over when no ctest is among its ancestors: while its
# test runs it is a descendant of the ctest running it, and once its parent is gone it is
# re-parented to init (or a subreaper). So processes of another build tree, another user's,
# or of a ctest still running in this tree (another invocation) are never blamed. A lab is
# the suite's when netlab.sh wrote this run's ICMPX_TEST_RUN into its state directory; it is
# left over when its owner (netlab.sh run) is gone and its namespaces are still there.
#
# It runs as the cleanup of the fixture every test requires (FIXTURES_CLEANUP icmpx_suite),
# so ctest runs it after all other tests of the run, with -j too, also when only some tests
# were selected (-R, -L), and also when tests failed. It also checks that every test of the
# build carries the marker and the fixture (from `ctest --show-only=json-v1`).
# Usage: suite_leftovers.sh RUN_ID NETLAB_SH CTEST BUILD_DIR
set -uo pipefail
run_id=${1:?usage: suite_leftovers.sh RUN_ID NETLAB_SH CTEST BUILD_DIR}
netlab=${2:?}
ctest_cmd=${3:?}
build=${4:?}
# shellcheck source=testlib.sh
. "$(dirname "$0")/testlib.sh"
state_root=${NETLAB_STATE_DIR:-/run/netlab}
marker="ICMPX_TEST_RUN=$run_id"

# under_ctest PID: some ancestor of PID (PID itself excluded) is a ctest.
under_ctest() {
    local p=$1 stat comm i
    for ((i = 0; i < 64; i++)); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
        p=${stat##*) }
        p=${p#* } # after the state: the parent's PID
        p=${p%% *}
        [ "$p" -gt 1 ] 2>/dev/null || return 1
        comm=$(cat "/proc/$p/comm" 2>/dev/null) || return 1
        [ "$comm" = ctest ] && return 0
    done
    return 1
}

# leftover_pids: the PIDs carrying this run's marker that are not under a ctest.
leftover_pids() {
    local f pid
    # One grep over every environ (a process per PID would cost seconds).
    for f in $(grep -lzxF -- "$marker" /proc/[0-9]*/environ 2>/dev/null); do
        pid=${f#/proc/}
        pid=${pid%/environ}
        [ "$pid" = $$ ] && continue
        under_ctest "$pid" || echo "$pid"
    done
}

# describe PID: "PID 123 comm (test NAME, parent PID 1, up 36 s): args".
describe() {
    local pid=$1 test ppid up args
    test=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | sed -n 's/^ICMPX_TEST=//p' | head -1)
    ppid=$(ps -o ppid= -p "$pid" 2>/dev/null | tr -d ' ')
    up=$(ps -o etimes= -p "$pid" 2>/dev/null | tr -d ' ')
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-300)
    printf 'PID %s %s (started by test %s, parent PID %s, up %s s): %s' "$pid" \
        "$(cat "/proc/$pid/comm" 2>/dev/null)" "${test:-?}" "${ppid:-?}" "${up:-?}" "$args"
}

# leftover_labs: prefixes of labs of this run whose owner is gone (or is init: `up` labs).
leftover_labs() {
    local dir owner
    [ -d "$state_root" ] || return 0
    for dir in "$state_root"/nl*; do
        [ -f "$dir/run" ] && [ "$(cat "$dir/run")" = "$run_id" ] || continue
        owner=$(cat "$dir/owner" 2>/dev/null) || continue
        if [ "$owner" = 1 ] || ! kill -0 "$owner" 2>/dev/null || ! under_ctest "$owner"; then
            basename "$dir"
        fi
    done
}

# A process of the last test may still be on its way out: wait up to 5 s for the set to empty.
pids="" labs=""
until_ns=$(($(date +%s%N) + 5000000000))
while :; do
    pids=$(leftover_pids)
    labs=$(leftover_labs)
    [ -z "$pids$labs" ] || [ "$(date +%s%N)" -gt "$until_ns" ] && break
    sleep 0.2
done

check_detail=""
for pid in $pids; do
    check_detail+="$(describe "$pid")"$'\n'
done
check_detail=${check_detail%$'\n'}
check "no process started by a test outlives the tests" [ -z "$pids" ]
check_detail=""
for p in $labs; do
    check_detail+="lab $p (owner PID $(cat "$state_root/$p/owner" 2>/dev/null), namespaces:"
    check_detail+=" $(ip netns list 2>/dev/null | awk -v p="$p-" 'index($1, p) == 1 { printf "%s ", $1 }'))"$'\n'
done
check_detail=${check_detail%$'\n'}
check "no test lab outlives the tests" [ -z "$labs" ]

# Labs named like the suite's but of no state directory cannot be told apart from another
# tree's: named, not judged.
others=$(ip netns list 2>/dev/null | awk '$1 ~ /^nl[0-9a-f]{6}-/ { print substr($1, 1, 8) }' |
    sort -u | while read -r p; do [ -d "$state_root/$p" ] || echo "$p"; done)
[ -z "$others" ] || echo "note: lab namespaces without a state directory (not judged):" $others

# Stop what was left, by PID (the tracee of a stopped strace included: it carries the
# marker too), and tear the labs down.
if [ -n "$pids" ]; then
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 30); do
        alive=""
        for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive+=" $pid"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    [ -z "$alive" ] || kill -KILL $alive 2>/dev/null
fi
for p in $labs; do "$netlab" down "$p" >/dev/null 2>&1; done

# Every test carries the marker and requires the fixture (icmpx_suite_tests() was called
# in its directory): otherwise its processes would escape this test.
out=$("$ctest_cmd" --test-dir "$build" --show-only=json-v1 2>&1 | /usr/bin/python3 -c '
import json, sys
run_id, me = sys.argv[1], sys.argv[2]
bad = []
for t in json.load(sys.stdin)["tests"]:
    if t["name"] == me:
        continue
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    env = props.get("ENVIRONMENT", [])
    if "ICMPX_TEST_RUN=" + run_id not in env or "ICMPX_TEST=" + t["name"] not in env:
        bad.append(t["name"] + ": no ICMPX_TEST_RUN/ICMPX_TEST in ENVIRONMENT")
    if "icmpx_suite" not in props.get("FIXTURES_REQUIRED", []):
        bad.append(t["name"] + ": does not require the fixture icmpx_suite")
print("\n".join(bad))
sys.exit(1 if bad else 0)' "$run_id" "${ICMPX_TEST:-suite_leftovers}")
rc=$?
check_detail="$out"
check "every test is marked (icmpx_suite_tests() in its directory's CMakeLists.txt)" [ "$rc" = 0 ]
check_done
