# Shared helpers of the hardening tests (sourced, not run), on top of the exporter tests'
# helpers: start_exporter, stop_exporter, req, want_*, mval, check... come from
# tests/exporter/lib.sh (it also makes $tmp and the cleanup trap that stops every exporter
# started, and every background job, with their processes).
#
# The caller sets bin (the exporter, or a wrapper that execs it, e.g. under valgrind) and
# hammer (tests/hardening/hammer) before sourcing.
# shellcheck shell=bash disable=SC2154,SC2034
hx_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../exporter/lib.sh
. "$hx_here/../exporter/lib.sh"

if [ -z "${NETLAB_V4_DELAY:-}" ] || [ -z "${NETLAB_RESPONDER_LOG:-}" ]; then
    echo "FAIL - no NETLAB_* variables: run me with tests/netlab/netlab.sh run -- $0 ..." >&2
    exit 1
fi
[ -x "${hammer:-}" ] || {
    echo "FAIL - hammer '${hammer:-}' is not executable" >&2
    exit 1
}

hx_wrapped=0 # echoes sent by hx_wrap_sequences

# Under valgrind everything is 20-50 times slower: the scripts stretch their time limits by
# this factor (HX_SLOW=1 normally; valgrind.sh sets it).
HX_SLOW=${HX_SLOW:-1}

# hx_secs N: N seconds scaled by HX_SLOW (an integer).
hx_secs() { echo $(($1 * HX_SLOW)); }

# all_true [ TEST ] [ TEST ]...: every bracketed test holds (for check, which runs one command).
all_true() {
    local -a t=()
    while [ $# -gt 0 ]; do
        t+=("$1")
        if [ "$1" = "]" ]; then
            "${t[@]}" || return 1
            t=()
        fi
        shift
    done
    return 0
}

# hx_start NAME ARGS...: start_exporter NAME "127.0.0.1" ARGS... (tests/exporter/lib.sh),
# with its wait for the first answer stretched by HX_SLOW: under Valgrind the exporter takes
# far more than start_exporter's 15 s to listen. Sets NAME_pid, NAME_port, NAME_url like it.
# With HX_PID_LOG set, appends "PID SCRIPT/NAME" to that file (valgrind.sh names its logs so).
hx_start() {
    local name=$1 pidvar=${1}_pid
    shift
    start_ready_s=$((15 * HX_SLOW)) start_exporter "$name" "127.0.0.1" "$@" || return 1
    [ -z "${HX_PID_LOG:-}" ] || echo "${!pidvar} $(basename "$0" .sh)/$name" >>"$HX_PID_LOG"
    return 0
}

# Process figures of a PID: resident set (kB), open descriptors, threads.
hx_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hx_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
hx_threads() { awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# hx_fds_stable PID: the descriptor count once two readings 0.1 s apart agree (at most 3 s).
hx_fds_stable() {
    local a b i
    a=$(hx_fds "$1")
    for ((i = 0; i < 30; i++)); do
        sleep 0.1
        b=$(hx_fds "$1")
        [ "$a" = "$b" ] && break
        a=$b
    done
    echo "$b"
}

# hx_fds_settle PID WANT: waits up to 3 s (scaled) for PID's descriptor count to come down
# to WANT (the server closes its side of finished connections on its next loop), then
# prints the count.
hx_fds_settle() {
    local n i
    for ((i = 0; i < 60 * HX_SLOW; i++)); do
        n=$(hx_fds "$1")
        [ "$n" -le "$2" ] && break
        sleep 0.05
    done
    echo "$n"
}

# hx_no_sanitizer_report NAME: the exporter's stderr has no ASan/UBSan/LSan or valgrind
# error report.
hx_no_sanitizer_report() {
    local f="$tmp/$1.log"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:|ThreadSanitizer' "$f"; then
        check_detail="$f:
$(grep -E -A12 'AddressSanitizer|LeakSanitizer|runtime error:' "$f" | head -40)"
        return 1
    fi
    return 0
}

# hx_hammer ID HOST:PORT PATHS ARGS...: runs the load client; its report in $tmp/ID.hammer
# (stderr in ID.hammer.err). Returns hammer's status.
hx_hammer() {
    local id=$1 to=$2 paths=$3
    shift 3
    "$hammer" --connect "$to" --paths "$paths" "$@" >"$tmp/$id.hammer" 2>"$tmp/$id.hammer.err"
}

# hx_get ID CLASS KEY: a figure of hammer run ID (class ALL for the totals).
hx_get() {
    awk -v c="class=$2" -v k="$3" '$2 == c { for (i = 3; i <= NF; i++) {
        split($i, kv, "="); if (kv[1] == k) { print kv[2]; exit } } }' "$tmp/$1.hammer"
}

# hx_hammer_detail ID: the report, for check_detail.
hx_hammer_detail() {
    printf 'hammer report:\n%s\n%s' "$(cat "$tmp/$1.hammer")" "$(head -5 "$tmp/$1.hammer.err")"
}

# hx_health_start ID URL: polls URL/-/healthy every 0.2 s in the background (at most 3,000
# times) until hx_health_stop; each answer other than 200 "OK" within 2 s (scaled) is a
# miss. Results in $tmp/ID.health: "ok N miss M max_ms X".
hx_health_start() {
    local id=$1 url=$2
    rm -f "$tmp/$id.health.stop"
    (
        ok=0 miss=0 max=0
        for ((i = 0; i < 3000; i++)); do
            [ -e "$tmp/$id.health.stop" ] && break
            out=$(curl -sS --max-time "$((2 * HX_SLOW))" -o "$tmp/$id.health.body" \
                -w '%{http_code} %{time_total}' "$url/-/healthy" 2>/dev/null)
            if [ "${out%% *}" = 200 ] && [ "$(cat "$tmp/$id.health.body")" = OK ]; then
                ok=$((ok + 1))
            else
                miss=$((miss + 1))
                echo "miss at $(date +%T.%N): '$out'" >>"$tmp/$id.health.misses"
            fi
            max=$(awk -v m="$max" -v t="${out#* }" 'BEGIN { t *= 1000; print (t > m ? t : m) }')
            sleep 0.2
        done
        echo "ok $ok miss $miss max_ms $max" >"$tmp/$id.health"
    ) &
    hx_health_pid=$!
}

hx_health_stop() {
    touch "$tmp/$1.health.stop"
    wait "$hx_health_pid" 2>/dev/null
}

# hx_health_ok ID: the poller saw at least one answer and no miss.
hx_health_ok() {
    local ok miss
    read -r _ ok _ miss _ <"$tmp/$1.health"
    check_detail="/-/healthy during the load: $(cat "$tmp/$1.health")
$(head -5 "$tmp/$1.health.misses" 2>/dev/null)"
    [ "$ok" -gt 0 ] && [ "$miss" = 0 ]
}

# hx_promtool_dir DIR: every answer saved in DIR passes `promtool check metrics` (parse and
# lint, no output); for a debug=true answer, the metrics after its log. There is at least one.
# promtool costs ~0.2 s of CPU a run, too much for hundreds of answers: they are checked in
# one run, each answer's metric names prefixed with "aN_" (N its number) so families of
# different answers never meet, and an error names its answer by that prefix. The first
# answer is also checked alone, so the merged check is seen to agree with a plain one.
hx_promtool_dir() {
    local f out rc all=$tmp/promtool.all map=$tmp/promtool.map
    local -a files=()
    for f in "$1"/*; do
        [ -f "$f" ] && files+=("$f")
    done
    check_detail="no answer saved in $1"
    [ ${#files[@]} -gt 0 ] || return 1
    # One awk for all (a process per answer would cost more than promtool itself).
    awk -v map="$map" '
        FNR == 1 { n++; p = "a" n "_"; print p, FILENAME > map; skip = /^Probe of / }
        skip { if ($0 == "Metrics that would have been returned:") skip = 0; next }
        /^# (HELP|TYPE) / { print substr($0, 1, 7) p substr($0, 8); next }
        /^#/ || /^[ \t]*$/ { print; next }
        { print p $0 }' "${files[@]}" >"$all"
    out=$(promtool check metrics <"$all" 2>&1)
    rc=$?
    if [ "$rc" != 0 ] || [ -n "$out" ]; then
        check_detail="promtool check metrics over the ${#files[@]} answers of $1 exited $rc:
$(head -10 <<<"$out")
answers named: $(grep -o 'a[0-9]*_' <<<"$out" | sort -u | head -5 | while read -r a; do
            awk -v a="$a" '$1 == a { print $2 }' "$map"; done | tr '\n' ' ')"
        return 1
    fi
    f=${files[0]}
    out=$(awk 'FNR == 1 { skip = /^Probe of / } skip { skip = $0 != "Metrics that would have been returned:"; next } { print }' "$f" |
        promtool check metrics 2>&1)
    rc=$?
    check_detail="promtool check metrics < $f (alone) exited $rc: $(head -5 <<<"$out")"
    [ "$rc" = 0 ] && [ -z "$out" ]
}

# hx_anyip_targets N: N static targets of the anyip prefix, as JSON array items.
hx_anyip_targets() {
    awk -v n="$1" -v p="${NETLAB_V4_ANYIP_NET%.*.*/*}" 'BEGIN { for (i = 1; i <= n; i++)
        printf "    { \"target\": \"%s.%d.%d\", \"labels\": { \"n\": \"%d\" } }%s\n",
            p, 10 + int(i / 250), 1 + i % 250, i, i < n ? "," : "" }'
}

# hx_anyip_mixed_targets N: N static targets of the anyip prefixes, every other one IPv6.
hx_anyip_mixed_targets() {
    awk -v n="$1" -v p="${NETLAB_V4_ANYIP_NET%.*.*/*}" -v p6="${NETLAB_V6_ANYIP_NET%/*}" '
        BEGIN { for (i = 1; i <= n; i++) {
            t = i % 2 ? sprintf("%s.%d.%d", p, 10 + int(i / 250), 1 + i % 250) : sprintf("%s%x", p6, i)
            printf "    { \"target\": \"%s\", \"labels\": { \"n\": \"%d\" } }%s\n", t, i, i < n ? "," : "" } }'
}

# hx_wrap_sequences ID URL HOST:PORT: scrapes /metrics (its static targets half IPv4, half
# IPv6: hx_anyip_mixed_targets) until icmp_exporter_echoes_sent_total reaches HX_WRAP_ECHOES
# (default 140,000; 0 skips this, as valgrind.sh does), at most 20 rounds of 3 s. Then every
# sequence number of both families has been used once: the engine's slot tables (48 B x
# 65,536 per family, calloc'd, so paged in as sequences are first used) are whole in RSS,
# and growth measured afterwards is growth. Sets hx_wrapped.
hx_wrap_sequences() {
    local id=$1 url=$2 to=$3 i want=${HX_WRAP_ECHOES:-140000}
    hx_wrapped=0
    [ "$want" -gt 0 ] || return 0
    echo "metrics /metrics" >"$tmp/$id.paths"
    for ((i = 0; i <= 20; i++)); do
        req "$id" "$url/metrics"
        hx_wrapped=$(mval "$tmp/$id.plain" icmp_exporter_echoes_sent_total) || hx_wrapped=0
        awk -v s="$hx_wrapped" -v w="$want" 'BEGIN { exit !(s >= w) }' && return 0
        [ "$i" -lt 20 ] || break
        hx_hammer "$id" "$to" "$tmp/$id.paths" --concurrency 4 --duration 3 --grace "$(hx_secs 10)"
    done
    check_detail="icmp_exporter_echoes_sent_total only $hx_wrapped after 60 s of /metrics"
    return 1
}

# hx_mib KB: kB as MiB with one decimal.
hx_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
