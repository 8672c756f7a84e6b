#!/usr/bin/env bash
# Load test: the real exporter under the highest load the machine sustains, inside a lab.
#
#   warm-up    /metrics until 140,000 echoes are out (every sequence number of both
#              families used once: the engine's slot tables are paged in), 3 s of the mix
#              below, 2 s over the limit (the allocator's pools, the static-target table and
#              the connection memory exist before the "before" figures are taken);
#   main       LOAD_SECONDS (default 30) of mixed /probe to the lab's fast, 20 ms, lossy,
#              duplicating, corrupting and blackhole hosts, and /metrics with HX_STATIC
#              (default 300) anyip static targets (half of them IPv6), closed loop at
#              HX_CONCURRENCY (default 64) connections: every request must be a well-formed
#              200 (the concurrency is below limits.max_concurrent_probes: no 503 allowed);
#   over-limit max(5, LOAD_SECONDS / 6) s of /probe to the 100 ms bulk hosts at 2 x
#              max_concurrent_probes (HX_LIMIT, 256) connections: every answer must be a 200 or a
#              503 with Retry-After, and there must be some of each. (512 connections stay
#              below limits.max_connections_per_ip, 1024 by default, a limit of its own: past
#              it even /-/healthy from the same address is refused.)
#
# Throughout: /-/healthy answers, the process stays up, and stderr has no sanitizer report.
# Figures: requests/s, p50/p99 latency per phase; RSS, descriptors and threads after the
# warm-up, after the main phase and after the over-limit phase. RSS may grow by at most
# HX_RSS_GROWTH_KB (default 4096, i.e. 4 MiB; an ASan build: 64 MiB, its quarantine holds
# freed memory) from after the warm-up to the end; descriptors must be back to their count
# after the warm-up. A sample of answers of every class passes `promtool check metrics`.
#
# Usage (inside a lab): netlab.sh run -- load.sh ICMP_EXPORTER HAMMER
# hammer, check_detail... are used by lib.sh and testlib.sh, which are sourced.
# shellcheck disable=SC2154,SC2034
set -uo pipefail
bin=${1:?usage: netlab.sh run -- load.sh ICMP_EXPORTER HAMMER}
hammer=${2:?usage: netlab.sh run -- load.sh ICMP_EXPORTER HAMMER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

load_s=${LOAD_SECONDS:-30}
conc=${HX_CONCURRENCY:-64}
n_static=${HX_STATIC:-300}
limit=${HX_LIMIT:-256}
over_s=$((load_s / 6 > 5 ? load_s / 6 : 5))
asan=""
# An ASan build keeps freed memory in quarantine (up to 256 MiB by default): cap it so RSS
# stays a meaningful figure, and allow for it in the bound.
if grep -qa __asan_init "$bin" 2>/dev/null; then
    asan=1
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32
fi
rss_bound=${HX_RSS_GROWTH_KB:-$([ -n "$asan" ] && echo 65536 || echo 4096)}

cat >"$tmp/cfg.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp6": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip6" } }
  },
  "targets": [
$(hx_anyip_mixed_targets "$n_static")
  ],
  "limits": {
    "allowed_targets": ["198.18.0.0/15", "2001:db8::/32"],
    "max_concurrent_probes": $limit
  }
}
EOF

# The mix: one line per request, taken round-robin. The fast host is the cheapest probe and
# carries most of the rate; the others each cost a timer, a loss, a duplicate, a corrupt
# reply or a timeout.
# A /metrics answer is ~0.9 MB (300 targets): one in 27 requests.
{
    for _ in 1 2; do
        for _ in 1 2 3 4; do
            echo "fast /probe?target=$NETLAB_V4_FAST"
            echo "fast6 /probe?target=$NETLAB_V6_FAST&module=icmp6"
        done
        echo "delay /probe?target=$NETLAB_V4_DELAY"
        echo "lossy /probe?target=$NETLAB_V4_LOSS&count=3&interval=10ms&timeout=500ms"
        echo "dup /probe?target=$NETLAB_V4_DUP&count=2&interval=10ms"
        echo "corrupt /probe?target=$NETLAB_V4_CORRUPT&timeout=300ms"
        echo "bh /probe?target=$NETLAB_V4_BLACKHOLE&timeout=300ms"
        echo "bh6 /probe?target=$NETLAB_V6_BLACKHOLE&module=icmp6&timeout=300ms"
    done
    echo "metrics /metrics"
} >"$tmp/mix.paths"
# Over the limit: distinct bulk addresses (answered after 100 ms), 1 s timeout.
awk -v p="${NETLAB_V4_BULK_NET%.*/*}" 'BEGIN { for (i = 1; i <= 250; i++)
    printf "bulk /probe?target=%s.%d&timeout=1s\n", p, i }' >"$tmp/over.paths"

if ! hx_start X --config.file="$tmp/cfg.json"; then
    check "the exporter serves" false
    check_done
fi
to="127.0.0.1:$X_port"
pid=$X_pid

# Warm-up: every sequence number used once (the engine's slot tables paged in), the mix,
# then over the limit (the allocator's pools and the server's connection memory reach their
# working size); then the "before" figures, idle.
if [ "${HX_WRAP_ECHOES:-1}" != 0 ]; then
    check "warm-up: every sequence number of both families used once" \
        hx_wrap_sequences wrap "$X_url" "$to"
fi
hx_hammer warm "$to" "$tmp/mix.paths" --concurrency "$conc" --duration 3 \
    --grace "$(hx_secs 10)"
check_detail=$(hx_hammer_detail warm)
check "warm-up: every answer a well-formed 200" [ "$(hx_get warm ALL s200)" = "$(hx_get warm ALL requests)" ]
hx_hammer warm_over "$to" "$tmp/over.paths" --concurrency $((2 * limit)) --duration 2 \
    --grace "$(hx_secs 10)"
check_detail=$(hx_hammer_detail warm_over)
check "warm-up over the limit: only 200s and 503s with Retry-After" \
    [ $(($(hx_get warm_over ALL s200) + $(hx_get warm_over ALL s503))) = "$(hx_get warm_over ALL requests)" ]
fd0=$(hx_fds_stable "$pid")
rss0=$(hx_rss_kb "$pid")
thr0=$(hx_threads "$pid")

# Main phase, with /-/healthy polled throughout.
mkdir -p "$tmp/bodies"
hx_health_start main "http://$to"
hx_hammer main "$to" "$tmp/mix.paths" --concurrency "$conc" --duration "$load_s" \
    --grace "$(hx_secs 10)" --save-dir "$tmp/bodies" --save-every 200
main_rc=$?
hx_health_stop main
check_detail=$(hx_hammer_detail main)
check "main: $load_s s at concurrency $conc: hammer exit 0 (no failure, truncation or bad body)" \
    [ "$main_rc" = 0 ]
for k in failed truncated malformed other_status s503; do
    check "main: $k = 0 (below the limit of $limit probes)" [ "$(hx_get main ALL $k)" = 0 ]
done
check "main: every class answered" bash -c "! grep -q ' requests=0 ' '$tmp/main.hammer'"
check "main: no false success: blackholes and the corrupt host probe_success 0 only" \
    [ "$(hx_get main bh success1)$(hx_get main bh6 success1)$(hx_get main corrupt success1)" = 000 ]
check "main: the fast, 20 ms and duplicating hosts always succeed" \
    [ "$(hx_get main fast success0)$(hx_get main fast6 success0)$(hx_get main delay success0)$(hx_get main dup success0)" = 0000 ]
check "main: /-/healthy answered 200 throughout" hx_health_ok main
check "main: saved answers pass promtool check metrics" hx_promtool_dir "$tmp/bodies"
fd1=$(hx_fds_settle "$pid" "$fd0")
rss1=$(hx_rss_kb "$pid")
thr1=$(hx_threads "$pid")

# Over the limit.
hx_health_start over "http://$to"
hx_hammer over "$to" "$tmp/over.paths" --concurrency $((2 * limit)) --duration "$over_s" \
    --grace "$(hx_secs 10)"
hx_health_stop over
check_detail=$(hx_hammer_detail over)
for k in failed truncated malformed other_status s503_no_retry_after; do
    check "over the limit ($((2 * limit)) connections, limit $limit): $k = 0" \
        [ "$(hx_get over ALL $k)" = 0 ]
done
check "over the limit: some 503s" [ "$(hx_get over ALL s503)" -gt 0 ]
check "over the limit: some 200s" [ "$(hx_get over ALL s200)" -gt 0 ]
check "over the limit: /-/healthy answered 200 throughout" hx_health_ok over

fd2=$(hx_fds_settle "$pid" "$fd0")
rss2=$(hx_rss_kb "$pid")
thr2=$(hx_threads "$pid")
check "the exporter is alive" alive X
check_detail="descriptors: $fd0 after the warm-up, $fd1 after the main phase, $fd2 at the end"
check "descriptors back to their count after the warm-up ($fd0)" [ "$fd1/$fd2" = "$fd0/$fd0" ]
check_detail="VmRSS: ${rss0} kB after the warm-up, ${rss1} kB after the main phase, ${rss2} kB at the end"
check "RSS growth after the warm-up <= $rss_bound kB" [ $((rss2 - rss0)) -le "$rss_bound" ]
check_detail=""
check "no sanitizer report" hx_no_sanitizer_report X
stop_exporter X TERM "$(hx_secs 5)"
check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/X.log")"
check "SIGTERM after the load: exit 0" [ "$stop_rc" = 0 ]
check_detail=""
check "no sanitizer report at exit" hx_no_sanitizer_report X

# The figures.
row() { # PHASE RUN
    printf '%-12s %9s %9s %8s %8s %8s %6s %6s %9s %6s\n' "$1" "$(hx_get "$2" ALL requests)" \
        "$(hx_get "$2" ALL rps)" "$(hx_get "$2" ALL lat_p50_ms)" "$(hx_get "$2" ALL lat_p99_ms)" \
        "$(hx_get "$2" ALL lat_max_ms)" "$(hx_get "$2" ALL s503)" \
        "$(($(hx_get "$2" ALL failed) + $(hx_get "$2" ALL truncated) + $(hx_get "$2" ALL malformed) + $(hx_get "$2" ALL other_status)))" \
        "$(hx_get "$2" ALL s200)" "$(hx_get "$2" ALL s503_no_retry_after)"
}
echo
echo "== load figures (exporter $(basename "$bin")${asan:+, ASan build}; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-12s %9s %9s %8s %8s %8s %6s %6s %9s %6s\n' phase requests req/s p50_ms p99_ms max_ms 503 errors 200 503-RA
row "warm-up" warm
row "main" main
row "over-limit" over
echo "main phase per class:"
awk '$2 != "class=ALL" { printf "  %s\n", $0 }' "$tmp/main.hammer" | sed 's/^  hammer /  /' |
    awk '{ printf "  %-14s %-16s %-14s %-22s %-22s %-16s %-16s\n", $1, $2, $11, $12, $13, $15, $16 }'
[ "$hx_wrapped" = 0 ] ||
    echo "warm-up: $hx_wrapped echoes sent by /metrics first (every sequence number used once)"
printf 'process:     %-22s %-22s %-22s\n' "after warm-up" "after main" "after over-limit"
printf '  VmRSS      %-22s %-22s %-22s\n' "$(hx_mib "$rss0") MiB" "$(hx_mib "$rss1") MiB" "$(hx_mib "$rss2") MiB"
printf '  fds        %-22s %-22s %-22s\n' "$fd0" "$fd1" "$fd2"
printf '  threads    %-22s %-22s %-22s\n' "$thr0" "$thr1" "$thr2"
echo "  /-/healthy: main $(cat "$tmp/main.health"); over-limit $(cat "$tmp/over.health")"
check_done
