#!/usr/bin/env bash
# run_exporter_bench.sh: the exporter's benchmark, side by side with blackbox_exporter
# (tests/bench/README.md explains every figure).
#
# Usage: tests/bench/run_exporter_bench.sh [--out FILE] [--keep DIR] [--reps N] [BUILD_DIR]
#
#   BUILD_DIR     a build tree with icmp_exporter, exporter_load, bench_core and
#                 netlab_responder (default build/release; never the sanitizer build)
#   --out FILE    also write the final table to FILE
#   --keep DIR    keep every raw output (configurations, exporter_load lines, server logs)
#   --reps N      repetitions of each concurrent burst (default 3; medians are reported)
#
# Run as root from anywhere: the script builds its own test lab (tests/netlab/netlab.sh run)
# and re-enters itself inside the lab's client namespace. Both exporters listen on loopback
# ports of that namespace and probe lab addresses only. Every server runs under
# `bench_core run --limit` and is stopped by its PID; every wait is bounded, and the whole
# run takes about a minute. Exit status: 0 when the benchmark ran (whatever the figures),
# 1 when it could not, 2 for bad usage, 77 without the privileges to build the lab.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

out_file="" keep_dir="" reps=3 build=""
usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --out) [ $# -ge 2 ] || usage; out_file=$2; shift 2 ;;
    --keep) [ $# -ge 2 ] || usage; keep_dir=$2; shift 2 ;;
    --reps) [ $# -ge 2 ] || usage; reps=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [ -z "$build" ] || usage; build=$1; shift ;;
    esac
done
[[ $reps =~ ^[1-9]$ ]] || { echo "run_exporter_bench: --reps must be 1..9" >&2; exit 2; }
build=$(cd "${build:-$top/build/release}" 2>/dev/null && pwd) ||
    { echo "run_exporter_bench: no build directory (build with: cmake --preset release &&" \
        "cmake --build --preset release)" >&2; exit 1; }
ours=$build/exporter/icmp_exporter
load=$build/tests/bench/exporter_load
bench=$build/tests/bench/bench_core
for f in "$ours" "$load" "$bench"; do
    [ -x "$f" ] || { echo "run_exporter_bench: $f is missing: build the project" >&2; exit 1; }
done
blackbox=$(command -v prometheus-blackbox-exporter || true)
[ -n "$blackbox" ] || {
    echo "run_exporter_bench: prometheus-blackbox-exporter is missing" \
        "(apt-get install prometheus-blackbox-exporter)" >&2
    exit 1
}
command -v curl >/dev/null || { echo "run_exporter_bench: curl is missing" >&2; exit 1; }
[ -z "$out_file" ] || out_file=$(realpath -m "$out_file")
[ -z "$keep_dir" ] || keep_dir=$(realpath -m "$keep_dir")

# Outside the lab: build one, and come back in its client namespace.
if [ -z "${NETLAB_PREFIX:-}" ]; then
    export NETLAB_RESPONDER=$build/tests/netlab/netlab_responder
    args=(--reps "$reps")
    [ -z "$out_file" ] || args+=(--out "$out_file")
    [ -z "$keep_dir" ] || args+=(--keep "$keep_dir")
    exec "$top/tests/netlab/netlab.sh" run -- "$here/run_exporter_bench.sh" "${args[@]}" "$build"
fi

# ---------------------------------------------------------------------------------------
# Inside the lab.

work=$(mktemp -d /tmp/exporter_bench.XXXXXX)
runners="" # the `bench_core run` PIDs of servers still running
finish() {
    local r
    for r in $runners; do stop_server "$r"; done
    if [ -n "$keep_dir" ]; then
        mkdir -p "$keep_dir" && cp -r "$work"/. "$keep_dir"/
    fi
    rm -rf "$work"
}
trap finish EXIT
readonly ours_port=19723 bb_port=19115 server_limit_s=200 load_limit_s=40
readonly n_burst=1000 n_burst_small=256 n_static=10000 bb_conc=64 n_seq=1000

# kv FILE KEY: the value of KEY=value in FILE's first line holding it, "-" when absent.
kv() {
    local v
    v=$(sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1" 2>/dev/null | head -n 1) || true
    echo "${v:--}"
}
# median: the median of the numbers on stdin (lower middle for an even count), "-" if none.
median() {
    awk '$1 ~ /^-?[0-9]/ { print $1 }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}
# maximum, minimum: the largest / smallest number on stdin, "-" if none.
maximum() { awk '$1 ~ /^-?[0-9]/ && (!n++ || $1 > m) { m = $1 } END { print n ? m : "-" }'; }
minimum() { awk '$1 ~ /^-?[0-9]/ && (!n++ || $1 < m) { m = $1 } END { print n ? m : "-" }'; }

# status_kb PID KEY: KEY (VmRSS, VmHWM, Threads) of /proc/PID/status.
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo "-"; }

# start_server TAG PORT CMD...: runs CMD under `bench_core run` (a bounded life, and its
# wait4() figures at the end), waits until PORT answers /-/healthy (10 s at most), then
# sets `runner` and `server` (the exporter's own PID). Fails if it never answers.
start_server() {
    local tag=$1 port=$2 i child=""
    shift 2
    "$bench" run --report "$work/$tag.run" --limit "$server_limit_s" -- "$@" \
        >"$work/$tag.out" 2>"$work/$tag.err" </dev/null &
    runner=$!
    runners+=" $runner"
    for i in $(seq 1 200); do
        [ -n "$child" ] || child=$(cat "/proc/$runner/task/$runner/children" 2>/dev/null |
            awk '{ print $1 }')
        if [ -n "$child" ] && curl -sf -m 1 -o /dev/null "http://127.0.0.1:$port/-/healthy"; then
            server=$child
            return 0
        fi
        kill -0 "$runner" 2>/dev/null || break
        sleep 0.05
    done
    echo "run_exporter_bench: $tag did not start; its stderr:" >&2
    tail -n 5 "$work/$tag.err" >&2
    return 1
}

# stop_server RUNNER: SIGTERM to the exporter under RUNNER, SIGKILL after 3 s, then wait for
# RUNNER (which writes its report).
stop_server() {
    local r=$1 child i
    child=$(cat "/proc/$r/task/$r/children" 2>/dev/null | awk '{ print $1 }')
    [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true
    for i in $(seq 1 30); do
        kill -0 "$r" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$r" 2>/dev/null; then
        [ -z "$child" ] || kill -KILL "$child" 2>/dev/null || true
    fi
    wait "$r" 2>/dev/null || true
    runners=$(echo "$runners" | tr ' ' '\n' | grep -vx "$r" | tr '\n' ' ' || true)
}

# idle TAG: the server's VmRSS and thread count one second after it first answered.
idle() {
    sleep 1
    echo "idle vmrss_kb=$(status_kb "$server" VmRSS) vmhwm_kb=$(status_kb "$server" VmHWM)" \
        "threads=$(status_kb "$server" Threads)" >"$work/$1.idle"
}

# run_load TAG PORT ARGS...: exporter_load against PORT watching the server, under
# `bench_core run` for the client's own wall and CPU; TAG.load holds its summary line.
run_load() {
    local tag=$1 port=$2
    shift 2
    "$bench" run --report "$work/$tag.client" --limit "$load_limit_s" -- \
        "$load" --connect "127.0.0.1:$port" --watch "$server" --limit "$((load_limit_s - 5))" \
        --lines "$work/$tag.lines" "$@" >"$work/$tag.load" 2>"$work/$tag.loaderr" </dev/null ||
        true
    [ -s "$work/$tag.load" ] || echo "load failed=-1" >"$work/$tag.load"
    echo "run_exporter_bench: $tag: $(cut -d' ' -f2-9 "$work/$tag.load")" >&2
}

echo "run_exporter_bench: lab $NETLAB_PREFIX, results in $work" >&2
load_at_start=$(cut -d" " -f1-3 /proc/loadavg)
bb_version=$("$blackbox" --version 2>&1 | head -n 1 | sed 's/, *(.*//')
bb_go=$("$blackbox" --version 2>&1 | sed -n 's/.*go version: *//p' | head -n 1)

# ---------------------------------------------------------------------------------------
# Configurations and request lists.

v4any=${NETLAB_V4_ANYIP_NET%/*} # 198.18.0.0
anypre=${v4any%.*.*}            # 198.18
bulk=${NETLAB_V4_BULK_NET%/*}   # 198.19.96.0
bulkpre=${bulk%.*.*}            # 198.19
bulk3=${bulk#*.*.}
bulk3=${bulk3%.*} # 96

cat >"$work/ours.json" <<EOF
{
  "modules": {
    "icmp": { "prober": "icmp", "timeout": "1s",
              "icmp": { "preferred_ip_protocol": "ip4", "count": 1 } }
  },
  "targets": [],
  "web": { "listen_addresses": ["127.0.0.1:$ours_port"] }
}
EOF
{
    printf '{\n  "modules": {\n    "icmp": { "prober": "icmp", "timeout": "1s",\n'
    printf '              "icmp": { "preferred_ip_protocol": "ip4", "count": 1 } }\n  },\n'
    printf '  "targets": [\n'
    awk -v n="$n_static" -v p="$anypre" 'BEGIN { for (i = 1; i <= n; i++)
        printf "    { \"target\": \"%s.%d.%d\" }%s\n", p, int(i / 256), i % 256,
            i < n ? "," : "" }'
    printf '  ],\n  "web": { "listen_addresses": ["127.0.0.1:%s"] }\n}\n' "$ours_port"
} >"$work/ours-static.json"
cat >"$work/blackbox.yml" <<EOF
modules:
  icmp:
    prober: icmp
    timeout: 1s
    icmp:
      preferred_ip_protocol: ip4
EOF

# Distinct delay hosts: 250 per /24 of the bulk /20 (.1 to .250), answered after
# NETLAB_BULK_DELAY_MS by the responder.
for n in "$n_burst" "$n_burst_small"; do
    awk -v n="$n" -v p="$bulkpre" -v b="$bulk3" 'BEGIN { for (i = 0; i < n; i++)
        printf "/probe?module=icmp&target=%s.%d.%d\n", p, b + int(i / 250), i % 250 + 1 }' \
        >"$work/burst.$n.paths"
done
awk -v n="$n_static" -v p="$anypre" 'BEGIN { for (i = 1; i <= n; i++)
    printf "/probe?module=icmp&target=%s.%d.%d\n", p, int(i / 256), i % 256 }' \
    >"$work/static.paths"
echo "/metrics" >"$work/metrics.paths"
yes "/probe?module=icmp&target=127.0.0.1" | head -n "$n_seq" >"$work/seq.paths" || true
yes "/probe?module=icmp&target=127.0.0.1" | head -n 50 >"$work/warm.paths" || true

# ---------------------------------------------------------------------------------------
# The runs. Each tool: a fresh server (idle RSS), keep-alive turnaround, the concurrent
# bursts; then the 10,000-target figure (ours: a second server with 10,000 static targets).

# bursts TOOL PORT: $reps bursts of each size, alternating sizes.
bursts() {
    local tool=$1 port=$2 rep n
    for rep in $(seq 1 "$reps"); do
        for n in "$n_burst" "$n_burst_small"; do
            run_load "$tool.burst.$n.$rep" "$port" --paths "$work/burst.$n.paths" \
                --expect "probe_success 1"
            sleep 0.3
        done
    done
}

# ours
echo "run_exporter_bench: icmp_exporter" >&2
start_server ours "$ours_port" "$ours" --config.file="$work/ours.json" --log.level=warn
idle ours
run_load ours.warm "$ours_port" --paths "$work/warm.paths" --concurrency 1 --keepalive
run_load ours.seq "$ours_port" --paths "$work/seq.paths" --concurrency 1 --keepalive \
    --expect "probe_success 1" --value probe_icmp_rtt_avg_seconds
bursts ours "$ours_port"
stop_server "$runner"

start_server ours-static "$ours_port" "$ours" --config.file="$work/ours-static.json" \
    --log.level=warn
sleep 0.5
for rep in $(seq 1 "$reps"); do
    run_load "ours.static.$rep" "$ours_port" --paths "$work/metrics.paths" \
        --body "$work/ours.static.$rep.body"
    grep -cE '^icmp_target_success\{.*\} 1$' "$work/ours.static.$rep.body" \
        >"$work/ours.static.$rep.success" || true
    sleep 0.3
done
stop_server "$runner"

# blackbox_exporter
echo "run_exporter_bench: blackbox_exporter" >&2
start_server blackbox "$bb_port" "$blackbox" --config.file="$work/blackbox.yml" \
    --web.listen-address="127.0.0.1:$bb_port" --log.level=warn
idle blackbox
run_load blackbox.warm "$bb_port" --paths "$work/warm.paths" --concurrency 1 --keepalive
run_load blackbox.seq "$bb_port" --paths "$work/seq.paths" --concurrency 1 --keepalive \
    --expect "probe_success 1" --value 'probe_icmp_duration_seconds{phase="rtt"}'
bursts blackbox "$bb_port"
run_load blackbox.static "$bb_port" --paths "$work/static.paths" --concurrency "$bb_conc" \
    --expect "probe_success 1"
stop_server "$runner"

# ---------------------------------------------------------------------------------------
# The table.

# verdict OK: "met" or "MISSED".
verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "MISSED"; fi; }
# holds A OP B: 1 when A OP B holds, else 0 (also when either is not a number: "-").
holds() {
    awk -v a="$1" -v b="$3" 'function num(x) { return x ~ /^-?[0-9]+(\.[0-9]*)?$/ }
        BEGIN { if (!num(a) || !num(b)) { print 0; exit }
                a += 0; b += 0; print ('"a $2 b"') ? 1 : 0 }'
}
# scale V DIV FMT: V / DIV printed with FMT, "-" when V is not a number.
scale() {
    awk -v v="$1" -v d="$2" -v f="$3" 'BEGIN { if (v !~ /^-?[0-9]/) print "-";
        else printf f "\n", v / d }'
}
# over TAGGLOB KEY: KEY of every TAGGLOB.load, one a line.
over() {
    local f
    for f in $1; do kv "$f" "$2"; done
}

report() {
    local tool n g wall ok p50 mx thr hwm cpu fail
    local -A fig
    echo "icmp_exporter vs blackbox_exporter, $(date -u '+%Y-%m-%d %H:%M UTC')," \
        "kernel $(uname -r), $(nproc) CPUs"
    echo "peers: $bb_version ($bb_go); lab $NETLAB_PREFIX; load average at start:" \
        "$load_at_start"
    echo "every figure of one tool comes from its exporter process (/proc/PID), sampled by" \
        "exporter_load; medians of $reps where repeated"
    echo
    printf '%-50s %17s %17s  %s\n' "" icmp_exporter blackbox "target (ours)"

    echo "1. N concurrent /probe, distinct ${NETLAB_BULK_DELAY_MS} ms hosts in" \
        "$NETLAB_V4_BULK_NET, count 1, timeout 1s"
    for n in "$n_burst" "$n_burst_small"; do
        for tool in ours blackbox; do
            g="$work/$tool.burst.$n.*.load"
            fig[$tool,$n,ok]=$(over "$g" ok | minimum)
            fig[$tool,$n,wall]=$(over "$g" wall_ns | median)
            fig[$tool,$n,p50]=$(over "$g" lat_p50_ns | median)
            fig[$tool,$n,max]=$(over "$g" lat_max_ns | median)
            fig[$tool,$n,thr]=$(over "$g" threads_max | maximum)
            fig[$tool,$n,hwm]=$(over "$g" vmhwm_kb | maximum)
            fig[$tool,$n,cpu]=$(over "$g" cpu_ns | median)
            fig[$tool,$n,fail]=$(for f in $g; do
                echo "$(kv "$f" bad_status) $(kv "$f" no_expect) $(kv "$f" failed)"
            done | awk '{ print $1 + $2 + $3 }' | maximum)
        done
        printf '   %-47s %17s %17s  %s\n' "N=$n: probe_success 1 (worst of $reps)" \
            "${fig[ours,$n,ok]}" "${fig[blackbox,$n,ok]}" \
            "$([ "$n" = "$n_burst" ] && echo "all $n")"
        printf '   %-47s %17s %17s  %s\n' "N=$n: wall, first request to last response, s" \
            "$(scale "${fig[ours,$n,wall]}" 1e9 %.3f)" \
            "$(scale "${fig[blackbox,$n,wall]}" 1e9 %.3f)" \
            "$([ "$n" = "$n_burst" ] && echo "<= 0.150 (blackbox 256: 0.285-0.415)")"
        printf '   %-47s %17s %17s\n' "N=$n: latency p50 / max, ms" \
            "$(scale "${fig[ours,$n,p50]}" 1e6 %.1f) / $(scale "${fig[ours,$n,max]}" 1e6 %.1f)" \
            "$(scale "${fig[blackbox,$n,p50]}" 1e6 %.1f) / $(scale "${fig[blackbox,$n,max]}" 1e6 %.1f)"
        printf '   %-47s %17s %17s\n' "N=$n: exporter threads (max sampled)" \
            "${fig[ours,$n,thr]}" "${fig[blackbox,$n,thr]}"
        printf '   %-47s %17s %17s\n' "N=$n: exporter CPU during the burst, s" \
            "$(scale "${fig[ours,$n,cpu]}" 1e9 %.3f)" "$(scale "${fig[blackbox,$n,cpu]}" 1e9 %.3f)"
        printf '   %-47s %17s %17s\n' "N=$n: exporter peak RSS so far (VmHWM), MiB" \
            "$(scale "${fig[ours,$n,hwm]}" 1024 %.1f)" "$(scale "${fig[blackbox,$n,hwm]}" 1024 %.1f)"
    done

    echo "2. $n_static anyip targets ($NETLAB_V4_ANYIP_NET), count 1, timeout 1s: ours one" \
        "/metrics scrape, blackbox $n_static /probe at concurrency $bb_conc"
    fig[ours,st,succ]=$(cat "$work"/ours.static.*.success 2>/dev/null | minimum)
    fig[ours,st,wall]=$(over "$work/ours.static.*.load" wall_ns | median)
    fig[ours,st,cpu]=$(over "$work/ours.static.*.load" cpu_ns | median)
    fig[ours,st,hwm]=$(over "$work/ours.static.*.load" vmhwm_kb | maximum)
    fig[ours,st,status]=$(over "$work/ours.static.*.load" ok | minimum)
    fig[bb,st,succ]=$(kv "$work/blackbox.static.load" ok)
    fig[bb,st,wall]=$(kv "$work/blackbox.static.load" wall_ns)
    fig[bb,st,cpu]=$(kv "$work/blackbox.static.load" cpu_ns)
    fig[bb,st,hwm]=$(kv "$work/blackbox.static.load" vmhwm_kb)
    printf '   %-47s %17s %17s  %s\n' "successful targets (worst of ${reps} scrapes)" \
        "${fig[ours,st,succ]:--}" "${fig[bb,st,succ]}" "$n_static"
    printf '   %-47s %17s %17s  %s\n' "wall, s" "$(scale "${fig[ours,st,wall]}" 1e9 %.3f)" \
        "$(scale "${fig[bb,st,wall]}" 1e9 %.3f)" "<= 0.5 (blackbox ref 3.8)"
    printf '   %-47s %17s %17s  %s\n' "exporter CPU, s" "$(scale "${fig[ours,st,cpu]}" 1e9 %.3f)" \
        "$(scale "${fig[bb,st,cpu]}" 1e9 %.3f)" "<= 0.4 (blackbox ref 6.6)"
    printf '   %-47s %17s %17s  %s\n' "exporter peak RSS (VmHWM), MiB" \
        "$(scale "${fig[ours,st,hwm]}" 1024 %.1f)" "$(scale "${fig[bb,st,hwm]}" 1024 %.1f)" \
        "<= 16"

    echo "3. $n_seq sequential /probe of 127.0.0.1 on one keep-alive connection"
    for tool in ours blackbox; do
        fig[$tool,seq,ok]=$(kv "$work/$tool.seq.load" ok)
        fig[$tool,seq,conns]=$(kv "$work/$tool.seq.load" connects)
        fig[$tool,seq,diff]=$(kv "$work/$tool.seq.load" diff_p50_ns)
        fig[$tool,seq,p50]=$(kv "$work/$tool.seq.load" lat_p50_ns)
        fig[$tool,seq,cpu]=$(kv "$work/$tool.seq.load" cpu_ns)
        fig[$tool,seq,cpp]=$(awk -v c="${fig[$tool,seq,cpu]}" -v n="$n_seq" \
            'BEGIN { if (c ~ /^[0-9]/) print c / n; else print "-" }')
    done
    printf '   %-47s %17s %17s\n' "probe_success 1" "${fig[ours,seq,ok]}" \
        "${fig[blackbox,seq,ok]}"
    printf '   %-47s %17s %17s  %s\n' "TCP connections used (1: keep-alive honoured)" \
        "${fig[ours,seq,conns]}" "${fig[blackbox,seq,conns]}" 1
    printf '   %-47s %17s %17s\n' "median turnaround, ms" \
        "$(scale "${fig[ours,seq,p50]}" 1e6 %.3f)" "$(scale "${fig[blackbox,seq,p50]}" 1e6 %.3f)"
    printf '   %-47s %17s %17s  %s\n' "median (turnaround - reported RTT), ms" \
        "$(scale "${fig[ours,seq,diff]}" 1e6 %.3f)" \
        "$(scale "${fig[blackbox,seq,diff]}" 1e6 %.3f)" "<= 0.1 (blackbox ref 0.42)"
    printf '   %-47s %17s %17s  %s\n' "exporter CPU per probe, ms" \
        "$(scale "${fig[ours,seq,cpp]}" 1e6 %.3f)" "$(scale "${fig[blackbox,seq,cpp]}" 1e6 %.3f)" \
        "<= 0.1 (blackbox ref 1.9)"

    echo "4. Idle exporter, 1 s after it first answered"
    for tool in ours blackbox; do
        fig[$tool,idle]=$(kv "$work/$tool.idle" vmrss_kb)
        fig[$tool,idlethr]=$(kv "$work/$tool.idle" threads)
    done
    printf '   %-47s %17s %17s  %s\n' "VmRSS, MiB" "$(scale "${fig[ours,idle]}" 1024 %.1f)" \
        "$(scale "${fig[blackbox,idle]}" 1024 %.1f)" "<= 4"
    printf '   %-47s %17s %17s\n' "threads" "${fig[ours,idlethr]}" "${fig[blackbox,idlethr]}"

    echo
    echo "Targets (issue): verdict"
    printf '   1. %s concurrent: all succeed (%s/%s, %s failed): %s; wall <= 150 ms (%s ms): %s\n' \
        "$n_burst" "${fig[ours,$n_burst,ok]}" "$n_burst" "${fig[ours,$n_burst,fail]}" \
        "$(verdict "$(holds "${fig[ours,$n_burst,ok]}" == "$n_burst")")" \
        "$(scale "${fig[ours,$n_burst,wall]}" 1e6 %.1f)" \
        "$(verdict "$(holds "${fig[ours,$n_burst,wall]}" '<=' 150000000)")"
    printf '   2. %s targets: zero loss (%s): %s; wall <= 0.5 s (%s): %s; CPU <= 0.4 s (%s): %s;' \
        "$n_static" "${fig[ours,st,succ]:--}" \
        "$(verdict "$(holds "${fig[ours,st,succ]:--}" == "$n_static")")" \
        "$(scale "${fig[ours,st,wall]}" 1e9 %.3f)" \
        "$(verdict "$(holds "${fig[ours,st,wall]}" '<=' 500000000)")" \
        "$(scale "${fig[ours,st,cpu]}" 1e9 %.3f)" \
        "$(verdict "$(holds "${fig[ours,st,cpu]}" '<=' 400000000)")"
    printf ' RSS <= 16 MiB (%s): %s\n' "$(scale "${fig[ours,st,hwm]}" 1024 %.1f)" \
        "$(verdict "$(holds "${fig[ours,st,hwm]}" '<=' 16384)")"
    printf '   3. keep-alive (%s connections for %s requests): %s;' "${fig[ours,seq,conns]}" \
        "$n_seq" "$(verdict "$(holds "${fig[ours,seq,conns]}" == 1)")"
    printf ' turnaround - RTT <= 0.1 ms (%s): %s; CPU per probe <= 0.1 ms (%s): %s\n' \
        "$(scale "${fig[ours,seq,diff]}" 1e6 %.3f)" \
        "$(verdict "$(holds "${fig[ours,seq,diff]}" '<=' 100000)")" \
        "$(scale "${fig[ours,seq,cpp]}" 1e6 %.3f)" \
        "$(verdict "$(holds "${fig[ours,seq,cpp]}" '<=' 100000)")"
    printf '   4. idle RSS <= 4 MiB (%s): %s\n' "$(scale "${fig[ours,idle]}" 1024 %.1f)" \
        "$(verdict "$(holds "${fig[ours,idle]}" '<=' 4096)")"
}

report >"$work/table.txt"
cat "$work/table.txt"
if [ -n "$out_file" ]; then
    cp "$work/table.txt" "$out_file"
    echo "run_exporter_bench: table written to $out_file" >&2
fi
