#!/usr/bin/env bash
# run_core_bench.sh: the echo engine's benchmark, side by side with fping and iputils ping
# (tests/bench/README.md explains every figure).
#
# Usage: tests/bench/run_core_bench.sh [--out FILE] [--keep DIR] [--reps N] [--sizes "N..."]
#                                      [BUILD_DIR]
#
#   BUILD_DIR     a build tree with bench_core and netlab_responder (default build/release;
#                 benchmark the release preset, never the sanitizer build)
#   --out FILE    also write the final table to FILE
#   --keep DIR    keep every raw output (tool outputs, responder log slices) in DIR
#   --reps N      repetitions of each sweep (default 3; medians are reported)
#   --sizes "..." sweep sizes (default "1000 10000")
#
# Run as root from anywhere: the script builds its own test lab (tests/netlab/netlab.sh run)
# and re-enters itself inside the lab's client namespace. Every packet goes to lab addresses
# only; every tool run is bounded (bench_core run --limit), and the whole run takes a
# minute or so. Exit status: 0 when the benchmark ran (whatever the figures), 1 when it could
# not, 2 for bad usage, 77 without the privileges to build the lab.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

out_file="" keep_dir="" reps=3 sizes="1000 10000" build=""
usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
    --out) [ $# -ge 2 ] || usage; out_file=$2; shift 2 ;;
    --keep) [ $# -ge 2 ] || usage; keep_dir=$2; shift 2 ;;
    --reps) [ $# -ge 2 ] || usage; reps=$2; shift 2 ;;
    --sizes) [ $# -ge 2 ] || usage; sizes=$2; shift 2 ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [ -z "$build" ] || usage; build=$1; shift ;;
    esac
done
[[ $reps =~ ^[1-9]$ ]] || { echo "run_core_bench: --reps must be 1..9" >&2; exit 2; }
for n in $sizes; do
    if ! [[ $n =~ ^[1-9][0-9]{0,4}$ ]] || [ "$n" -gt 65507 ]; then
        echo "run_core_bench: sweep sizes must be 1..65507 (ICMP_PAYLOAD_MAX)" >&2
        exit 2
    fi
done
build=$(cd "${build:-$top/build/release}" 2>/dev/null && pwd) ||
    { echo "run_core_bench: no build directory (build with: cmake --preset release &&" \
        "cmake --build --preset release)" >&2; exit 1; }
bench=$build/tests/bench/bench_core
[ -x "$bench" ] || { echo "run_core_bench: $bench is missing: build the project" >&2; exit 1; }
for tool in fping ping; do
    command -v "$tool" >/dev/null || {
        echo "run_core_bench: $tool is missing (apt-get install fping iputils-ping)" >&2
        exit 1
    }
done
[ -z "$out_file" ] || out_file=$(realpath -m "$out_file")
[ -z "$keep_dir" ] || keep_dir=$(realpath -m "$keep_dir")

# Outside the lab: build one, and come back in its client namespace.
if [ -z "${NETLAB_PREFIX:-}" ]; then
    export NETLAB_RESPONDER=$build/tests/netlab/netlab_responder
    args=(--reps "$reps" --sizes "$sizes")
    [ -z "$out_file" ] || args+=(--out "$out_file")
    [ -z "$keep_dir" ] || args+=(--keep "$keep_dir")
    exec "$top/tests/netlab/netlab.sh" run -- "$here/run_core_bench.sh" "${args[@]}" "$build"
fi

# ---------------------------------------------------------------------------------------
# Inside the lab.

log=${NETLAB_RESPONDER_LOG:?}
work=$(mktemp -d /tmp/core_bench.XXXXXX)
finish() {
    if [ -n "$keep_dir" ]; then
        mkdir -p "$keep_dir" && cp -r "$work"/. "$keep_dir"/
    fi
    rm -rf "$work"
}
trap finish EXIT
readonly count=200 interval_ms=20 blocks=4 limit_s=60
readonly block=$((count / blocks))

# kv FILE KEY: the value of KEY=value in FILE's first line holding it.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1" | head -n 1; }

# measure TAG CMD...: run CMD under `bench_core run`; TAG.out/.err hold its output, TAG.run
# the wall time, CPU time and peak RSS. Never fails: a tool exiting non-zero (fping and
# ping do on any loss) is reported through the figures, not by stopping the benchmark.
measure() {
    local tag=$1
    shift
    "$bench" run --report "$work/$tag.run" --limit "$limit_s" -- "$@" \
        >"$work/$tag.out" 2>"$work/$tag.err" </dev/null || true
    [ -s "$work/$tag.run" ] || echo "run wall_ns=-1 cpu_ns=-1 maxrss_kb=-1 exit=-1" \
        >"$work/$tag.run"
    if [ "$(kv "$work/$tag.run" killed)" = 1 ]; then
        echo "run_core_bench: $tag was killed after $limit_s s" >&2
    fi
}

# median: the median of the numbers on stdin (lower middle for an even count).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print -1 }'; }

echo "run_core_bench: lab $NETLAB_PREFIX, results in $work" >&2
load_at_start=$(cut -d" " -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------
# 1. Sweep: N anyip targets, one echo each; fping -C1 -i0 and bench_core sweep alternate.

v4net=${NETLAB_V4_ANYIP_NET%/*} # 198.18.0.0
v4pre=${v4net%.*.*}             # 198.18
rows=$work/sweep.rows           # N tool rep wall_ns cpu_ns maxrss_kb lost engine_run_ns
: >"$rows"
for n in $sizes; do
    targets=$work/targets.$n
    awk -v n="$n" -v p="$v4pre" 'BEGIN { for (i = 1; i <= n; i++)
        printf "%s.%d.%d\n", p, int(i / 256), i % 256 }' >"$targets"
    for rep in $(seq 1 "$reps"); do
        if [ $((rep % 2)) = 1 ]; then order="fping ours"; else order="ours fping"; fi
        for tool in $order; do
            tag=sweep.$n.$rep.$tool
            echo "run_core_bench: sweep N=$n rep $rep: $tool" >&2
            if [ "$tool" = fping ]; then
                measure "$tag" fping -C1 -i0 -q -f "$targets"
                # -q -C1 prints "ADDR : RTT" or "ADDR : -" per target on stderr.
                got=$(grep -cE ' : [0-9]' "$work/$tag.err" || true)
                lost=$((n - got)) engine=-1
            else
                measure "$tag" "$bench" sweep --targets "$targets"
                lost=$(kv "$work/$tag.out" lost) engine=$(kv "$work/$tag.out" run_ns)
                [ -n "$lost" ] || lost=$n
                [ -n "$engine" ] || engine=-1
            fi
            echo "$n $tool $rep $(kv "$work/$tag.run" wall_ns) $(kv "$work/$tag.run" cpu_ns)" \
                "$(kv "$work/$tag.run" maxrss_kb) $lost $engine" >>"$rows"
            sleep 0.2
        done
    done
done
modes=$(grep -h '^sweep ' "$work"/sweep.*.ours.out 2>/dev/null | head -n 1 |
    sed -n 's/.*\(mode4=[a-z]*\) \(mode6=[a-z]*\).*/\1 \2/p')

# ---------------------------------------------------------------------------------------
# 2 and 3. Per-echo RTTs. Each tool sends $count echoes $interval_ms ms apart to a host, in
# $blocks blocks of $block taking turns with the other tools (the first tool rotates each
# round), so a drift of the machine's state (CPU frequency, idle states, a noisy neighbour
# on the VM) falls on every tool alike instead of on whichever ran last.

# rtt_lines TOOL TAG: "seq rtt_ns" per answered echo, from the tool's own output.
# fping -C numbers its echoes 0..count-1 and that index is what it puts on the wire as the
# ICMP sequence (fping 5.x, one target per run: its sequence map starts at 0); the offset
# is taken from the responder's log and reported in the table rather than assumed.
rtt_lines() {
    case $1 in
    ours) sed -n 's/^echo .* seq=\([0-9]*\) status=success rtt_ns=\([0-9]*\).*/\1 \2/p' \
        "$work/$2.out" ;;
    ping) grep -v 'DUP!' "$work/$2.out" |
        sed -n 's/.* icmp_seq=\([0-9]*\) .* time=\([0-9.]*\) ms.*/\1 \2/p' |
        awk '{ printf "%d %.0f\n", $1, $2 * 1e6 }' ;;
    fping) awk -F' : ' 'NF == 2 { n = split($2, v, " ");
            for (i = 1; i <= n; i++) if (v[i] != "-") printf "%d %.0f\n", i - 1, v[i] * 1e6 }' \
        "$work/$2.err" ;;
    esac
}

# run_rtt TOOL TAG HOST: one block of echoes to HOST.
run_rtt() {
    local tool=$1 tag=$2 host=$3
    case $tool in
    ours) measure "$tag" "$bench" rtt --target "$host" --count "$block" \
        --interval "$interval_ms" ;;
    ping) measure "$tag" ping -n -c "$block" -i "$(awk -v i="$interval_ms" \
        'BEGIN { printf "%.3f", i / 1000 }')" -W 1 "$host" ;;
    # -t: fping's timeout in count mode defaults to the period, below a 20 ms host's RTT.
    fping) measure "$tag" fping -C "$block" -p "$interval_ms" -t 500 -q "$host" ;;
    esac
}

# rotate N WORD...: the words, rotated left N times.
rotate() {
    local n=$1 i
    shift
    for ((i = 0; i < $#; i++)); do
        local j=$(((i + n) % $# + 1))
        printf '%s ' "${!j}"
    done
}

# 2. Accuracy at the delay host: each echo's RTT minus the responder's hold_ns for the
# same (dst, seq) within the slice of its log written during that block.
for fam in 4 6; do
    var=NETLAB_V${fam}_DELAY
    host=${!var}
    for round in $(seq 0 $((blocks - 1))); do
        for tool in $(rotate "$round" ours ping fping); do
            tag=rtt.v$fam.$tool.$round
            echo "run_core_bench: RTT accuracy v$fam $host: $tool, block $((round + 1))" >&2
            off0=$(stat -c %s "$log")
            run_rtt "$tool" "$tag" "$host"
            sleep 0.1 # the responder logs a reply once its transmit stamp is back
            off1=$(stat -c %s "$log")
            tail -c +"$((off0 + 1))" "$log" | head -c "$((off1 - off0))" |
                grep " ev=reply .*dst=$host " >"$work/$tag.log" || true
            sed -n 's/.* seq=\([0-9]*\) .* hold_ns=\([0-9]*\).*/\1 \2/p' "$work/$tag.log" \
                >"$work/$tag.holds"
            rtt_lines "$tool" "$tag" >"$work/$tag.rtts"
            offset=0
            if [ "$tool" = fping ]; then
                offset=$(awk 'NR == 1 || $1 < m { m = $1 } END { print NR ? m : 0 }' \
                    "$work/$tag.holds")
            fi
            # Appends each joined echo's error (ns) to .errs, and "lost unjoined offset"
            # of the block to .counts.
            awk -v off="$offset" -v total="$block" -v errs="$work/acc.v$fam.$tool.errs" \
                -v counts="$work/acc.v$fam.$tool.counts" '
                FILENAME == ARGV[1] { hold[$1] = $2; next }
                { seq = $1 + off; n++
                  if (seq in hold) print $2 - hold[seq] >>errs; else unjoined++ }
                END { print total - n, unjoined + 0, off >>counts }' \
                "$work/$tag.holds" "$work/$tag.rtts"
        done
    done
done

# 3. Median RTT at a kernel-answered anyip host: no responder, so the figure is the path
# plus each tool's own overhead between its two stamps.
anyip6=${NETLAB_V6_ANYIP_NET%/*}
[ "${anyip6: -2}" != "::" ] || anyip6=${anyip6}1
for fam in 4 6; do
    if [ "$fam" = 4 ]; then host=${v4net%.*}.1; else host=$anyip6; fi
    echo "$host" >"$work/anyip.v$fam.host"
    for round in $(seq 0 $((blocks - 1))); do
        for tool in $(rotate "$round" ours ping fping); do
            tag=anyip.v$fam.$tool.$round
            echo "run_core_bench: median RTT v$fam $host: $tool, block $((round + 1))" >&2
            run_rtt "$tool" "$tag" "$host"
            rtt_lines "$tool" "$tag" | awk '{ print $2 }' >>"$work/anyip.v$fam.$tool.rtts"
        done
    done
done

# ---------------------------------------------------------------------------------------
# The table.

name() {
    case $1 in
    ours) echo "bench_core" ;;
    ping) echo "ping" ;;
    fping) echo "fping" ;;
    esac
}
# verdict OK: "met" or "MISSED".
verdict() { if [ "$1" = 1 ]; then echo "met"; else echo "MISSED"; fi; }
# holds A OP B: 1 when A OP B holds, else 0 (also when either is not a number: "-").
holds() {
    awk -v a="$1" -v b="$3" 'function num(x) { return x ~ /^-?[0-9]+(\.[0-9]*)?$/ }
        BEGIN { if (!num(a) || !num(b)) { print 0; exit }
                a += 0; b += 0; print ('"a $2 b"') ? 1 : 0 }'
}

# acc_stats FILE: "n MAE_us mean_us max_us" of the errors (ns) in FILE, or "0 - - -".
acc_stats() {
    awk '{ e = $1 / 1000; a = e < 0 ? -e : e; n++; sum += e; abs += a; if (a > m) m = a }
        END { if (n) printf "%d %.1f %.1f %.1f\n", n, abs / n, sum / n, m
              else print "0 - - -" }' "$1" 2>/dev/null || echo "0 - - -"
}

# spread FILE: "n p10_us median_us p90_us" of the RTTs (ns) in FILE, or "0 - - -".
spread() {
    sort -g "$1" 2>/dev/null | awk '{ v[NR] = $1 / 1000 }
        END { if (!NR) { print "0 - - -"; exit }
              printf "%d %.1f %.1f %.1f\n", NR, v[int(NR * 0.1) + 1], v[int((NR + 1) / 2)],
                  v[int(NR * 0.9)] }'
}

report() {
    local -A fig
    local n tool fam host label wall cpu rss lost eng sel offsets=""
    echo "icmp_exporter core benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r)," \
        "$(nproc) CPUs"
    echo "peers: $(fping -v 2>&1 | head -n 1), $(ping -V 2>&1 | head -n 1)"
    echo "engine sockets: ${modes:-unknown}; lab $NETLAB_PREFIX; load average at start:" \
        "$load_at_start"
    echo
    echo "1. Sweep: N anyip targets (${v4pre}.0.0/16) x 1 echo, one process per run, medians of" \
        "$reps runs, order alternating"
    echo "   (wall, CPU = user+sys, peak RSS: wait4() of the process; lost: worst run;" \
        "engine_run: submit to last callback)"
    printf '   %-6s %-18s %8s %8s %8s %6s %11s\n' N tool wall_s cpu_s rss_MiB lost engine_run_s
    for n in $sizes; do
        for tool in fping ours; do
            sel="\$1 == $n && \$2 == \"$tool\""
            wall=$(awk "$sel { print \$4 }" "$rows" | median)
            cpu=$(awk "$sel { print \$5 }" "$rows" | median)
            rss=$(awk "$sel { print \$6 }" "$rows" | median)
            lost=$(awk "$sel { print \$7 }" "$rows" | sort -g | tail -n 1)
            eng=$(awk "$sel { print \$8 }" "$rows" | median)
            if [ "$tool" = fping ]; then label="fping -C1 -i0"; else label="bench_core sweep"; fi
            printf '   %-6s %-18s %8.3f %8.3f %8.1f %6s %11s\n' "$n" "$label" \
                "$(awk -v v="$wall" 'BEGIN { print v / 1e9 }')" \
                "$(awk -v v="$cpu" 'BEGIN { print v / 1e9 }')" \
                "$(awk -v v="$rss" 'BEGIN { print v / 1024 }')" "$lost" \
                "$(awk -v v="$eng" 'BEGIN { if (v < 0) print "-"; else printf "%.3f", v / 1e9 }')"
            fig[$tool,$n,wall]=$wall fig[$tool,$n,cpu]=$cpu fig[$tool,$n,rss]=$rss
            fig[$tool,$n,lost]=$lost
        done
    done
    echo
    echo "2. RTT accuracy at the delay host (${NETLAB_DELAY_MS} ms): $count echoes per tool," \
        "$interval_ms ms apart, in $blocks blocks of $block taking turns;"
    echo "   error = the tool's RTT - the responder's hold_ns for the same (dst, seq)." \
        "ping and fping print 0.1 ms steps at 20 ms,"
    echo "   so their rounding is part of their error; the two veth crossings (tens of us)" \
        "are in every tool's."
    printf '   %-3s %-15s %-11s %4s %5s %7s %8s %8s %8s\n' fam host tool n lost unjoin \
        MAE_us mean_us max_us
    for fam in 4 6; do
        local var=NETLAB_V${fam}_DELAY
        for tool in ours ping fping; do
            local counts=$work/acc.v$fam.$tool.counts st
            read -r n mae bias maxe <<<"$(acc_stats "$work/acc.v$fam.$tool.errs")"
            lost=$(awk '{ s += $1 } END { print s + 0 }' "$counts" 2>/dev/null || echo "?")
            st=$(awk '{ s += $2 } END { print s + 0 }' "$counts" 2>/dev/null || echo "?")
            printf '   v%-2s %-15s %-11s %4s %5s %7s %8s %8s %8s\n' "$fam" "${!var}" \
                "$(name "$tool")" "$n" "$lost" "$st" "$mae" "$bias" "$maxe"
            fig[$tool,$fam,mae]=$mae
            if [ "$tool" = fping ]; then
                offsets+=" v$fam: +$(awk '{ print $3 }' "$counts" 2>/dev/null | sort -u |
                    paste -sd/)"
            fi
        done
    done
    echo "   fping's wire seq = its -C index${offsets} (read from the responder log)"
    echo
    echo "3. RTT at a kernel-answered anyip host: $count echoes per tool, $interval_ms ms apart," \
        "in $blocks blocks of $block taking turns"
    printf '   %-3s %-15s %-11s %4s %8s %10s %8s\n' fam host tool n p10_us median_us p90_us
    for fam in 4 6; do
        host=$(cat "$work/anyip.v$fam.host")
        for tool in ours ping fping; do
            local p10 med p90
            read -r n p10 med p90 <<<"$(spread "$work/anyip.v$fam.$tool.rtts")"
            printf '   v%-2s %-15s %-11s %4s %8s %10s %8s\n' "$fam" "$host" "$(name "$tool")" \
                "$n" "$p10" "$med" "$p90"
            fig[$tool,$fam,median]=$med
        done
    done
    echo
    echo "Targets (issue): verdict"
    for n in $sizes; do
        printf '   N=%-6s zero loss (lost %s): %s; wall <= fping: %s; CPU <= fping: %s;' \
            "$n" "${fig[ours,$n,lost]}" "$(verdict "$(holds "${fig[ours,$n,lost]}" == 0)")" \
            "$(verdict "$(holds "${fig[ours,$n,wall]}" '<=' "${fig[fping,$n,wall]}")")" \
            "$(verdict "$(holds "${fig[ours,$n,cpu]}" '<=' "${fig[fping,$n,cpu]}")")"
        printf ' RSS <= 8 MiB: %s\n' "$(verdict "$(holds "${fig[ours,$n,rss]}" '<=' 8192)")"
    done
    for fam in 4 6; do
        printf '   v%s   MAE <= ping'"'"'s (%s vs %s us): %s;' "$fam" "${fig[ours,$fam,mae]}" \
            "${fig[ping,$fam,mae]}" \
            "$(verdict "$(holds "${fig[ours,$fam,mae]}" '<=' "${fig[ping,$fam,mae]}")")"
        printf ' anyip median <= ping'"'"'s (%s vs %s us): %s\n' "${fig[ours,$fam,median]}" \
            "${fig[ping,$fam,median]}" \
            "$(verdict "$(holds "${fig[ours,$fam,median]}" '<=' "${fig[ping,$fam,median]}")")"
    done
}

report >"$work/table.txt"
cat "$work/table.txt"
if [ -n "$out_file" ]; then
    cp "$work/table.txt" "$out_file"
    echo "run_core_bench: table written to $out_file" >&2
fi
