#!/usr/bin/env bash
# soak.sh: the exporter under moderate load for a long time, with RSS and descriptors sampled
# every 10 s. A documented command (tests/hardening/README.md), not part of the test suite.
#
# Usage: tests/hardening/soak.sh [BUILD_DIR]
#
#   BUILD_DIR   a build tree with exporter/icmp_exporter, tests/hardening/hammer and
#               tests/netlab/netlab_responder (default build/release; soak a release build:
#               ASan's quarantine makes RSS meaningless)
#
# Environment: SOAK_SECONDS (default 600), SOAK_CONCURRENCY (default 16).
#
# Run as root from anywhere: the script builds its own lab (tests/netlab/netlab.sh run) and
# re-enters itself inside it. First /metrics until every sequence number of both families
# has been used once (the engine's slot tables, 48 B x 65,536 per family, are paged in as
# sequences are first used: ~6 MiB of RSS that grows with echoes sent until then). Load:
# /probe to the lossy, duplicating, corrupting, jittery and 20 ms hosts (and the blackhole),
# and /metrics with 300 anyip static targets (half IPv6), closed loop at SOAK_CONCURRENCY
# connections, /-/healthy polled throughout. A sample (VmRSS, descriptors, threads) every
# 10 s is printed as it is taken.
#
# Pass criteria ("flat"): every request a well-formed 200; /-/healthy always answered; after
# the first minute (warm-up), (1) the descriptor count varies by at most 1 (the load keeps
# SOAK_CONCURRENCY connections open; the /-/healthy poller opens one now and then), and
# after the load it is back to its idle count;
# (2) no RSS sample exceeds the warm-up's highest by more than 2 MiB, and the least-squares
# slope of RSS over the samples after the warm-up is below 64 KiB per minute (a leak of a
# few bytes per request would show as several MiB over 10 minutes). Exit status: 0 when they
# hold, 1 otherwise, 2 for bad usage, 77 without the privileges to build a lab.
# hammer, check_detail... are used by lib.sh and testlib.sh, which are sourced.
# shellcheck disable=SC2034,SC2154
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
build=$(cd "${1:-$top/build/release}" 2>/dev/null && pwd) || {
    echo "soak: no build directory ${1:-$top/build/release} (cmake --preset release &&" \
        "cmake --build --preset release)" >&2
    exit 2
}
soak_s=${SOAK_SECONDS:-600}
conc=${SOAK_CONCURRENCY:-16}
if ! [[ $soak_s =~ ^[0-9]+$ ]] || [ "$soak_s" -lt 120 ] || [ "$soak_s" -gt 86400 ]; then
    echo "soak: SOAK_SECONDS must be 120..86400" >&2
    exit 2
fi
# Outside the lab: build one and come back inside its client namespace.
if [ -z "${NETLAB_PREFIX:-}" ]; then
    for f in exporter/icmp_exporter tests/hardening/hammer tests/netlab/netlab_responder; do
        [ -x "$build/$f" ] || {
            echo "soak: $build/$f is missing: build the project" >&2
            exit 2
        }
    done
    export NETLAB_RESPONDER=$build/tests/netlab/netlab_responder
    exec "$top/tests/netlab/netlab.sh" run -- "$here/soak.sh" "$build"
fi

bin=$build/exporter/icmp_exporter
hammer=$build/tests/hardening/hammer
# shellcheck source=lib.sh
. "$here/lib.sh"
if grep -qa __asan_init "$bin"; then
    echo "soak: note: $bin is an ASan build; its RSS includes the quarantine" >&2
fi

cat >"$tmp/cfg.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp6": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip6" } }
  },
  "targets": [
$(hx_anyip_mixed_targets 300)
  ],
  "limits": { "allowed_targets": ["198.18.0.0/15", "2001:db8::/32"] }
}
EOF
{
    echo "lossy /probe?target=$NETLAB_V4_LOSS&count=5&interval=20ms&timeout=1s"
    echo "lossy6 /probe?target=$NETLAB_V6_LOSS&module=icmp6&count=5&interval=20ms&timeout=1s"
    echo "dup /probe?target=$NETLAB_V4_DUP&count=3&interval=20ms"
    echo "dup6 /probe?target=$NETLAB_V6_DUP&module=icmp6&count=3&interval=20ms"
    echo "corrupt /probe?target=$NETLAB_V4_CORRUPT&count=2&interval=10ms&timeout=300ms"
    echo "delay /probe?target=$NETLAB_V4_DELAY&count=3&interval=20ms"
    echo "jitter /probe?target=$NETLAB_V6_JITTER&module=icmp6&count=3&interval=20ms"
    echo "bh /probe?target=$NETLAB_V4_BLACKHOLE&timeout=500ms"
    echo "metrics /metrics"
} >"$tmp/soak.paths"

if ! hx_start S --config.file="$tmp/cfg.json"; then
    check "the exporter serves" false
    check_done
fi
check "warm-up: every sequence number of both families used once" \
    hx_wrap_sequences wrap "$S_url" "127.0.0.1:$S_port"
fd_idle=$(hx_fds_stable "$S_pid")
hx_health_start soak "$S_url"
hx_hammer soak "127.0.0.1:$S_port" "$tmp/soak.paths" --concurrency "$conc" --duration "$soak_s" \
    --grace 10 &
hpid=$!
echo "soak: ${soak_s}s at concurrency $conc against $bin (PID $S_pid); idle descriptors $fd_idle"
printf '%8s %10s %5s %8s\n' t_s rss_kb fds threads | tee "$tmp/samples"
t0=$SECONDS
for ((i = 0; i <= soak_s / 10; i++)); do
    # Sample on the 10 s grid (the load may end a little before the last one).
    while [ $((SECONDS - t0)) -lt $((i * 10)) ]; do sleep 0.2; done
    exited "$S_pid" && break
    printf '%8d %10s %5s %8s\n' $((SECONDS - t0)) "$(hx_rss_kb "$S_pid")" "$(hx_fds "$S_pid")" \
        "$(hx_threads "$S_pid")" | tee -a "$tmp/samples"
done
wait "$hpid"
hx_health_stop soak
fd_end=$(hx_fds_settle "$S_pid" "$fd_idle")

check_detail=$(hx_hammer_detail soak)
for k in failed truncated malformed other_status s503; do
    check "soak: $k = 0" [ "$(hx_get soak ALL $k)" = 0 ]
done
check "soak: no false success (blackhole, corrupting host)" \
    [ "$(hx_get soak bh success1)/$(hx_get soak corrupt success1)" = 0/0 ]
check "soak: /-/healthy answered throughout" hx_health_ok soak
# The samples after the first minute, and the warm-up's highest RSS.
verdict=$(awk 'NR > 1 {
        if ($1 < 60) { if ($2 > warm) warm = $2; next }
        n++; x = $1 / 60; sx += x; sy += $2; sxx += x * x; sxy += x * $2
        if ($2 > hi) hi = $2; if (lo == "" || $2 < lo) lo = $2
        if (fdlo == "" || $3 < fdlo) fdlo = $3; if ($3 > fdhi) fdhi = $3
    }
    END {
        slope = n > 1 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0
        printf "%d %d %d %d %.1f %d %d\n", n, warm, lo, hi, slope, fdlo, fdhi
    }' "$tmp/samples")
read -r n warm lo hi slope fdlo fdhi <<<"$verdict"
check_detail="$n samples after the warm-up; descriptors $fdlo..$fdhi"
check "soak: descriptors steady under load after the warm-up (within 1)" \
    all_true [ "$n" -gt 2 ] [ $((fdhi - fdlo)) -le 1 ]
check_detail="descriptors idle before $fd_idle, after $fd_end"
check "soak: descriptors back to idle after the load" [ "$fd_end" = "$fd_idle" ]
check_detail="warm-up highest $warm kB; after it $lo..$hi kB"
check "soak: RSS never above the warm-up's highest + 2 MiB" [ "$hi" -le $((warm + 2048)) ]
check_detail="least-squares slope $slope kB/min over $n samples"
check "soak: RSS slope < 64 KiB/min" awk -v s="$slope" 'BEGIN { exit !(s < 64) }'
check "soak: the exporter is alive" alive S
check_detail=""
check "soak: no sanitizer report" hx_no_sanitizer_report S
stop_exporter S TERM 5
check_detail="exit status $stop_rc after ${stop_secs}s"
check "soak: SIGTERM: exit 0" [ "$stop_rc" = 0 ]

echo
echo "== soak figures (${soak_s}s, concurrency $conc, $(nproc) CPUs)"
printf '%-10s %9s %9s %8s %8s %8s %8s\n' class requests req/s p50_ms p99_ms success1 success0
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-10s %9s %9s %8s %8s %8s %8s\n", v["class"], v["requests"], v["rps"],
        v["lat_p50_ms"], v["lat_p99_ms"], v["success1"], v["success0"] }' "$tmp/soak.hammer"
echo "warm-up: $hx_wrapped echoes sent by /metrics first (every sequence number used once)"
echo "RSS: warm-up highest $(hx_mib "$warm") MiB; after it $(hx_mib "$lo")..$(hx_mib "$hi") MiB, slope $slope kB/min"
echo "descriptors: idle $fd_idle, under load $fdlo..$fdhi, after $fd_end"
echo "/-/healthy: $(cat "$tmp/soak.health")"
check_done
