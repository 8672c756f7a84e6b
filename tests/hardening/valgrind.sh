#!/usr/bin/env bash
# valgrind.sh: the load test and the fault scenarios, shortened, with the exporter under
# Valgrind's memcheck. A documented command (tests/hardening/README.md), not part of the
# test suite: it takes 10 minutes or so.
#
# Usage: tests/hardening/valgrind.sh [BUILD_DIR]
#
#   BUILD_DIR   a build tree WITHOUT sanitizers (Valgrind cannot run ASan binaries), with
#               exporter/icmp_exporter, tests/hardening/hammer and
#               tests/netlab/netlab_responder, tests/hardening/libepoll_pwait2_shim.so;
#               default build/valgrind, made by
#               cmake -S . -B build/valgrind -DCMAKE_BUILD_TYPE=Debug &&
#               cmake --build build/valgrind
#
# Environment: VALGRIND_KEEP=DIR keeps every Valgrind log there.
#
# Every exporter the tests start runs as
#   valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99
# so a memory error or a definite/indirect leak makes it exit 99 instead of 0 (the tests'
# "SIGTERM: exit 0" checks fail), and its log (one per process: -q keeps only what Valgrind
# finds) is summarised at the end: errors, definitely / indirectly / possibly lost bytes.
# Valgrind 3.19 (Debian 12) does not know the epoll_pwait2 system call: the exporter runs with
# libepoll_pwait2_shim.so preloaded, which implements it with epoll_pwait (ms timeouts). The tests' time limits are stretched
# (HX_SLOW=10) and their loads shortened: LOAD_SECONDS=10, 8 connections, 50 static targets;
# 5 s of forged packets; 5 s of reload storm. RSS bounds do not apply (Valgrind's own memory),
# nor the load test's first step (every sequence number used once: too slow under Valgrind).
# Exit status: 0 when both runs passed and Valgrind reported no error and no definite or
# indirect leak; 1 otherwise; 2 for bad usage; 77 without the privileges to build a lab.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
case ${1:-} in
-h | --help)
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
-*)
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
build=$(cd "${1:-$top/build/valgrind}" 2>/dev/null && pwd) || {
    echo "valgrind.sh: no build directory ${1:-$top/build/valgrind}" >&2
    exit 2
}
for f in exporter/icmp_exporter tests/hardening/hammer tests/netlab/netlab_responder \
    tests/hardening/libepoll_pwait2_shim.so; do
    [ -x "$build/$f" ] || {
        echo "valgrind.sh: $build/$f is missing: build the project" >&2
        exit 2
    }
done
command -v valgrind >/dev/null || {
    echo "valgrind.sh: valgrind is missing (apt-get install valgrind)" >&2
    exit 2
}
real=$build/exporter/icmp_exporter
if grep -qa __asan_init "$real"; then
    echo "valgrind.sh: $real is built with ASan, which Valgrind cannot run: use a build" \
        "without ICMPX_SANITIZE" >&2
    exit 2
fi

work=$(mktemp -d /tmp/icmpx_valgrind.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/logs"
# The wrapper keeps the exporter's PID (exec), so the tests signal and watch it as usual.
# The shim gives the exporter an epoll_pwait2() Valgrind can run (see epoll_pwait2_shim.c).
cat >"$work/icmp_exporter" <<EOF
#!/bin/sh
LD_PRELOAD=$build/tests/hardening/libepoll_pwait2_shim.so
export LD_PRELOAD
exec valgrind -q --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect,possible \\
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 \\
    --log-file=$work/logs/vg.%p.log "$real" "\$@"
EOF
chmod +x "$work/icmp_exporter"
export NETLAB_RESPONDER=$build/tests/netlab/netlab_responder
export HX_SLOW=10 HX_RSS_GROWTH_KB=4194304 HX_WRAP_ECHOES=0 HX_LIMIT=16
export HX_PID_LOG=$work/pids # "PID test/exporter" of each exporter started
: >"$HX_PID_LOG"
netlab=$top/tests/netlab/netlab.sh
status=0

echo "== load (shortened) under valgrind"
LOAD_SECONDS=10 HX_CONCURRENCY=8 HX_STATIC=50 "$netlab" run -- "$here/load.sh" \
    "$work/icmp_exporter" "$build/tests/hardening/hammer" 2>&1 | tee "$work/load.out"
load_rc=${PIPESTATUS[0]}
[ "$load_rc" = 0 ] || status=1
echo "== faults (shortened) under valgrind"
HX_PACKET_SECONDS=5 HX_RELOAD_SECONDS=5 "$netlab" run -- "$here/faults.sh" \
    "$work/icmp_exporter" "$build/tests/hardening/hammer" 2>&1 | tee "$work/faults.out"
faults_rc=${PIPESTATUS[0]}
[ "$faults_rc" = 0 ] || status=1

echo
echo "== valgrind summary (one line per exporter process)"
# With -q a log holds only what Valgrind found: error records and leak records (definite and
# indirect ones are errors here; possible ones are shown). An empty log is a clean run.
printf '%-8s %-18s %7s %16s %16s %16s\n' pid exporter errors definitely_lost indirectly_lost \
    possibly_lost
n=0
for log in "$work"/logs/vg.*.log; do
    [ -f "$log" ] || continue
    n=$((n + 1))
    pid=$(basename "$log" .log | sed 's/^vg\.//')
    awk -v pid="$pid" -v name="$(awk -v p="$pid" '$1 == p { print $2 }' "$HX_PID_LOG")" '
        / (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)/ { e++ }
        / bytes in [0-9,]+ blocks are (definitely|indirectly|possibly) lost/ {
            # "N bytes in ..." or "N (D direct, I indirect) bytes in ...": count D.
            b = $3 ~ /^\(/ ? $3 : $2; gsub(/[(,]/, "", b)
            kind = $0; sub(/.* are /, "", kind); sub(/ lost.*/, "", kind)
            lost[kind] += b; blocks[kind]++
        }
        END {
            printf "%-8s %-18s %7d %16s %16s %16s\n", pid, name == "" ? "?" : name, e,
                lost["definitely"] + 0 " B",
                lost["indirectly"] + 0 " B", lost["possibly"] + 0 " B"
            exit !(e == 0 && lost["definitely"] + 0 == 0 && lost["indirectly"] + 0 == 0) }' "$log" || {
        status=1
        echo "   ^ $log:"
        head -80 "$log" | sed 's/^/     /'
    }
done
[ "$n" -gt 0 ] || {
    echo "no valgrind log: did the exporter run at all?"
    status=1
}
echo "load.sh exit $load_rc, faults.sh exit $faults_rc; valgrind logs: $n"
if [ -n "${VALGRIND_KEEP:-}" ]; then
    mkdir -p "$VALGRIND_KEEP" && cp "$work"/logs/* "$work"/*.out "$VALGRIND_KEEP"/
fi
exit "$status"
