#!/usr/bin/env bash
# Fault tests: the real exporter, inside a lab, while the network and its operator misbehave.
# Nothing may crash, no false success may ever be reported, and every answer must be well
# formed (`promtool check metrics` on every answered scrape).
#
#   packets  While probes run (HX_PACKET_SECONDS, default 8 s): forgers flood the client
#            with echo replies and ICMP errors claiming to come from the blackhole and the
#            lossy host, with the exporter's identifier and the sequences next to those in
#            flight, and the payload (nonce included) of a real request (netlab
#            forge=/forge_src= rules); a host answers from another address (src=); iputils
#            ping runs beside the exporter with the exporter's own identifier, so the
#            router's unreachables and time-exceeded quote packets of another process, and
#            echo replies carry our identifier with ping's payload. Checked: blackholes and
#            the spoofing host never succeed, in /probe and in /metrics; the lossy hosts'
#            every echo is a success exactly when the responder replied and timed out exactly
#            when it dropped the request; the blackhole's echoes all time out (no forged
#            error settles them); every echo to the fast hosts is sent and answered (nobody's
#            ICMP makes a healthy host look down); spoofed replies are counted as corrupt,
#            one for one (plus forged exact copies of a real reply, which the log names); some
#            forged packets named an echo in flight (the test is not vacuous). Run twice:
#            raw sockets, then ping sockets (ping_group_range opened in the lab's client
#            namespace only).
#   route    The route to the far host disappears in the middle of probes (the client's link
#            to the router set down, then the router's link to the far host), and comes
#            back: echoes of the outage fail (send error, ICMP error or timeout), the others
#            succeed, the answers are well formed, the exporter probes normally afterwards;
#            the links' addresses and routes are restored exactly.
#   reload   A reload storm during load (HX_RELOAD_SECONDS, default 10 s; at most
#            HX_RELOAD_ROUNDS = 100 rounds of 5 POST /-/reload back to back, every 10th
#            round a SIGHUP instead, every 5th a broken configuration): every request
#            answered 200, every reload 200 or 500 as its file deserves, every /metrics body
#            whole and of one configuration (never a mix), the failed-reload counter exact,
#            no descriptor leaked, RSS growth bounded.
#   sigterm  SIGTERM while /probe and /metrics requests are in flight, with load, and slow
#            readers of a 6 MB /metrics (HTTP/1.1 chunked, HTTP/1.0, gzip; the lab client's
#            TCP buffers are made small so they are still reading): exit 0 within 5 s; every
#            probe in flight gets a whole, well-formed answer; every /metrics gets one, or a
#            503 with Retry-After, or a clean close (refused, reset, or a body whose framing
#            shows it is cut) - never a 200 the client must take as whole that is not.
#
# Usage (inside a lab): netlab.sh run -- faults.sh ICMP_EXPORTER HAMMER [SCENARIO...]
# (default: all four). Needs iputils ping, curl, promtool, gzip.
# hammer, check_detail... are used by lib.sh and testlib.sh, which are sourced.
# shellcheck disable=SC2154,SC2153,SC2034
set -uo pipefail
bin=${1:?usage: netlab.sh run -- faults.sh ICMP_EXPORTER HAMMER [SCENARIO...]}
hammer=${2:?usage: netlab.sh run -- faults.sh ICMP_EXPORTER HAMMER [SCENARIO...]}
shift 2
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(packets route reload sigterm)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

if grep -qa __asan_init "$bin" 2>/dev/null; then
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=32
fi
figures=$tmp/figures.txt
: >"$figures"
fig() { printf '%s\n' "$*" >>"$figures"; }

# log_slice FROM: the responder's log from line FROM on.
log_slice() { tail -n +"$1" "$NETLAB_RESPONDER_LOG"; }
log_lines() { wc -l <"$NETLAB_RESPONDER_LOG"; }

# metric_of ID NAME [LABEL=VALUE...]: one sample's value (0 when absent).
metric_of() {
    local v
    v=$(mval "$tmp/$1.plain" "${@:2}") || v=0
    echo "${v:-0}"
}

# =======================================================================================
# packets

# packets_run MODE (raw or dgram)
packets_run() {
    local mode=$1 name=P_$1 secs=${HX_PACKET_SECONDS:-8} before id4 id6 m dir bad
    local -a pings=()
    dir=$tmp/pk_$mode
    mkdir -p "$dir"
    cat >"$tmp/pk.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp6": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip6" } },
    "quick": { "timeout": "1s", "icmp": { "count": 5, "interval": "20ms" } }
  },
  "targets": [
    { "target": "$NETLAB_V4_BLACKHOLE", "module": "quick", "labels": { "host": "bh4" } },
    { "target": "$NETLAB_V6_BLACKHOLE", "module": "quick", "labels": { "host": "bh6" } },
    { "target": "$NETLAB_V4_SPOOF", "module": "quick", "labels": { "host": "spoof4" } },
    { "target": "$NETLAB_V6_SPOOF", "module": "quick", "labels": { "host": "spoof6" } },
    { "target": "$NETLAB_V4_FAST", "module": "quick", "labels": { "host": "fast4" } }
  ],
  "limits": { "allowed_targets": ["198.18.0.0/15", "2001:db8::/32"] }
}
EOF
    if ! hx_start "$name" --config.file="$tmp/pk.json"; then
        check "packets ($mode): the exporter serves" false
        return
    fi
    local port_var=${name}_port
    local port=${!port_var}
    local url=http://127.0.0.1:$port
    req pk_m0 "$url/metrics"
    m=$(mval "$tmp/pk_m0.plain" icmp_exporter_socket_mode family=ipv4 mode="$mode")
    check_detail="socket modes: $(grep '^icmp_exporter_socket_mode' "$tmp/pk_m0.plain" | tr '\n' ' ')"
    check "packets ($mode): the exporter uses $mode sockets" [ "$m" = 1 ]

    # The identifiers, as the responder sees them.
    req pk_f4 "$url/probe?target=$NETLAB_V4_FAST"
    req pk_f6 "$url/probe?target=$NETLAB_V6_FAST&module=icmp6"
    sleep 0.05
    id4=$(grep " ev=reply .* dst=$NETLAB_V4_FAST " "$NETLAB_RESPONDER_LOG" | tail -1 | sed 's/.* id=\([0-9]*\) .*/\1/')
    id6=$(grep " ev=reply .* dst=$NETLAB_V6_FAST " "$NETLAB_RESPONDER_LOG" | tail -1 | sed 's/.* id=\([0-9]*\) .*/\1/')
    check_detail="identifiers from the responder's log: v4 '$id4', v6 '$id6'"
    check "packets ($mode): the exporter's identifiers are known" all_true [ -n "$id4" ] [ -n "$id6" ]

    {
        for _ in 1 2; do
            echo "trig4 /probe?target=$NETLAB_V4_FORGE_BH&count=20&interval=20ms&timeout=1s"
            echo "trig6 /probe?target=$NETLAB_V6_FORGE_BH&module=icmp6&count=20&interval=20ms&timeout=1s"
            echo "trigl4 /probe?target=$NETLAB_V4_FORGE_LOSS&count=20&interval=20ms&timeout=1s"
            echo "trigl6 /probe?target=$NETLAB_V6_FORGE_LOSS&module=icmp6&count=20&interval=20ms&timeout=1s"
            echo "bh4 /probe?target=$NETLAB_V4_BLACKHOLE&count=20&interval=20ms&timeout=1s&debug=true"
            echo "bh6 /probe?target=$NETLAB_V6_BLACKHOLE&module=icmp6&count=20&interval=20ms&timeout=1s&debug=true"
            echo "loss4 /probe?target=$NETLAB_V4_LOSS&count=20&interval=20ms&timeout=1s&debug=true"
            echo "loss6 /probe?target=$NETLAB_V6_LOSS&module=icmp6&count=20&interval=20ms&timeout=1s&debug=true"
            echo "spoof4 /probe?target=$NETLAB_V4_SPOOF&count=5&interval=10ms&timeout=300ms"
            echo "spoof6 /probe?target=$NETLAB_V6_SPOOF&module=icmp6&count=5&interval=10ms&timeout=300ms"
            echo "unreach /probe?target=$NETLAB_V4_UNREACH_HOST&count=3&interval=10ms"
            echo "fast4 /probe?target=$NETLAB_V4_FAST&count=20&interval=20ms&timeout=1s&debug=true"
            echo "fast6 /probe?target=$NETLAB_V6_FAST&module=icmp6&count=20&interval=20ms&timeout=1s&debug=true"
        done
        echo "metrics /metrics"
    } >"$tmp/pk.paths"

    before=$(($(log_lines) + 1))
    # Another process's ICMP: with our identifier where the socket lets it (raw: ping -e;
    # a ping socket's identifier is its port, taken by ours), for the run's time at most.
    # (Not ping -w: it gives up at the first ICMP error; not -c: ping also stops once
    # replies + errors reach the count, and in raw mode it takes our replies for its own.)
    local e4=() e6=()
    [ "$mode" = raw ] && e4=(-e "$id4") && e6=(-e "$id6")
    timeout -s INT "$secs" ping -q -n "${e4[@]}" -i 0.01 "$NETLAB_V4_UNREACH_HOST" >"$tmp/ping1.out" 2>&1 &
    pings+=($!)
    timeout -s INT "$secs" ping -q -n "${e4[@]}" -i 0.01 -t 1 "$NETLAB_V4_FAR" >"$tmp/ping2.out" 2>&1 &
    pings+=($!)
    timeout -s INT "$secs" ping -q -n -6 "${e6[@]}" -i 0.01 "$NETLAB_V6_UNREACH_ROUTE" >"$tmp/ping3.out" 2>&1 &
    pings+=($!)
    timeout -s INT "$secs" ping -q -n "${e4[@]}" -i 0.01 "$NETLAB_V4_FAST" >"$tmp/ping4.out" 2>&1 &
    pings+=($!)
    timeout -s INT "$secs" ping -q -n -i 0.01 "$NETLAB_V4_PROHIBITED" >"$tmp/ping5.out" 2>&1 &
    pings+=($!)
    hx_hammer "pk_$mode" "127.0.0.1:$port" "$tmp/pk.paths" \
        --concurrency 24 --duration "$secs" --grace "$(hx_secs 10)" --save-dir "$dir" \
        --save-every 1
    wait "${pings[@]}" 2>/dev/null
    sleep 0.1
    req pk_m1 "$url/metrics"
    log_slice "$before" >"$tmp/pk_$mode.log"

    local h=pk_$mode
    check_detail=$(hx_hammer_detail "$h")
    for k in failed truncated malformed other_status s503; do
        check "packets ($mode): $k = 0" [ "$(hx_get "$h" ALL $k)" = 0 ]
    done
    for c in bh4 bh6 spoof4 spoof6 unreach; do
        check "packets ($mode): $c never succeeds ($(hx_get "$h" $c requests) probes)" \
            [ "$(hx_get "$h" $c success1)/$(hx_get "$h" $c echoes_received)" = 0/0 ]
    done
    for c in trig4 trig6 trigl4 trigl6; do
        check "packets ($mode): the forgers' own hosts answer every echo ($c)" \
            [ "$(hx_get "$h" $c echoes_received)" = "$(hx_get "$h" $c echoes_sent)" ]
    done
    # Nor may anybody's ICMP make a healthy host look down: every echo to the fast host is
    # sent and answered.
    bad=$(grep -h '^echo ' "$dir"/fast4-* "$dir"/fast6-* | grep -v ' status=success ' | head -5)
    check_detail="$(grep -h '^echo ' "$dir"/fast4-* "$dir"/fast6-* | grep -vc ' status=success ') of $(cat "$dir"/fast4-* "$dir"/fast6-* | grep -c '^echo ') echoes to the fast hosts failed, e.g.:
$bad"
    check "packets ($mode): every echo to the fast hosts sent and answered" [ -z "$bad" ]
    check "packets ($mode): every answer passes promtool" hx_promtool_dir "$dir"

    # /metrics: the static blackholes and spoofing hosts never succeed, in any answer.
    bad=$(grep -lE '^icmp_target_success\{.*host="(bh4|bh6|spoof4|spoof6)".*\} 1$' "$dir"/metrics-* 2>/dev/null | head -3)
    check_detail="answers with a false success: $bad"
    check "packets ($mode): /metrics never shows a blackhole or spoofing host up" [ -z "$bad" ]

    # Every echo of the blackholes timed out: no forged reply or error settled one.
    bad=$(grep -h '^echo ' "$dir"/bh4-* "$dir"/bh6-* | grep -v ' status=timed_out$' | head -5)
    check_detail="$(grep -h '^echo ' "$dir"/bh4-* "$dir"/bh6-* | grep -vc ' status=timed_out$') of $(cat "$dir"/bh4-* "$dir"/bh6-* | grep -c '^echo ') blackhole echoes did not time out, e.g.:
$bad"
    check "packets ($mode): every blackhole echo timed_out" [ -z "$bad" ]

    # The lossy hosts, echo by echo against the responder's log.
    local la
    la=$(awk '/^Resolved / { dst = $(NF - 3) }
        /^echo [0-9]+: seq=/ { split($3, a, "="); split($4, b, "="); print dst, a[2], b[2] }' \
        "$dir"/loss4-* "$dir"/loss6-* | awk -v logf="$tmp/pk_$mode.log" '
        BEGIN {
            while ((getline l < logf) > 0) {
                if (l !~ / ev=(reply|drop) /) continue
                split(l, f, " "); ev = ""; dst = ""; seq = ""
                for (i in f) { split(f[i], kv, "="); if (kv[1] == "ev") ev = kv[2]
                    if (kv[1] == "dst") dst = kv[2]; if (kv[1] == "seq") seq = kv[2] }
                got[dst " " seq] = ev
            }
        }
        { n++; k = $1 " " $2; e = got[k]
          if ($3 == "success" && e == "reply") ok++
          else if ($3 == "timed_out" && e == "drop") { ok++; drops++ }
          else { bad++; if (bad <= 5) detail = detail sprintf("%s: exporter %s, responder %s; ", k, $3, e == "" ? "nothing" : e) } }
        END { printf "%d %d %d %d %s\n", n, ok, drops, bad, detail }')
    local ln lok ldrops lbad ldetail
    read -r ln lok ldrops lbad ldetail <<<"$la"
    check_detail="$ln lossy echoes: $lok agree with the responder ($ldrops dropped and timed out), $lbad disagree: $ldetail"
    check "packets ($mode): each lossy echo succeeded iff the responder replied, timed out iff it dropped" \
        all_true [ "$ln" -gt 0 ] [ "$lbad" = 0 ]
    local tsent trecv
    tsent=$(($(hx_get "$h" loss4 echoes_sent) + $(hx_get "$h" loss6 echoes_sent)))
    trecv=$(($(hx_get "$h" loss4 echoes_received) + $(hx_get "$h" loss6 echoes_received)))
    check_detail="sent $tsent, received $trecv, dropped by the responder $ldrops"
    check "packets ($mode): lossy hosts: sent - received = dropped, exactly" [ $((tsent - trecv)) = "$ldrops" ]

    # Spoofed replies: every one counted corrupt.
    local spoofed corrupt foreign forged hits
    spoofed=$(grep -c ' ev=reply .* from=' "$tmp/pk_$mode.log")
    corrupt=$(($(metric_of pk_m1 icmp_exporter_corrupt_replies_total) - $(metric_of pk_m0 icmp_exporter_corrupt_replies_total)))
    foreign=$(($(metric_of pk_m1 icmp_exporter_foreign_packets_total) - $(metric_of pk_m0 icmp_exporter_foreign_packets_total)))
    # A forged reply that is an exact copy of the real one (the forger's random sequence hit
    # the very request it saw: about one in 65,536) is also corrupt: right payload, wrong
    # source. The log says which forged replies carry their request's identifier and
    # sequence.
    local exact
    exact=$(awk '/ ev=forge .* kind=reply / { delete v
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["id"] == v["req_id"] && v["seq"] == v["req_seq"]) n++ }
        END { print n + 0 }' "$tmp/pk_$mode.log")
    check_detail="replies sent from another address: $spoofed; exact forged copies: $exact; icmp_exporter_corrupt_replies_total +$corrupt"
    check "packets ($mode): replies from another address counted corrupt, one for one" \
        all_true [ "$spoofed" -gt 0 ] [ "$corrupt" = $((spoofed + exact)) ]
    # Forged packets that named (identifier and sequence) an echo to the blackhole.
    forged=$(grep -c ' ev=forge ' "$tmp/pk_$mode.log")
    hits=$(awk '/^echo [0-9]+: seq=/ { split($3, a, "="); print FILENAME ~ /\/bh4-/ ? 4 : 6, a[2] }' \
        "$dir"/bh4-* "$dir"/bh6-*)
    hits=$(awk -v id4="$id4" -v id6="$id6" -v bh4="$NETLAB_V4_BLACKHOLE" -v bh6="$NETLAB_V6_BLACKHOLE" '
        NR == FNR { inflight[$1 " " $2] = 1; next }
        / ev=forge / { fam = ""; id = ""; seq = ""; src = ""
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            want = v["fam"] == 4 ? id4 : id6; b = v["fam"] == 4 ? bh4 : bh6
            if (v["id"] == want && v["src"] == b && ((v["fam"] " " v["seq"]) in inflight)) n++ }
        END { print n + 0 }' <(printf '%s\n' "$hits") "$tmp/pk_$mode.log")
    check_detail="$forged forged packets; $hits named a blackhole echo of ours (identifier, sequence, source)"
    check "packets ($mode): forged packets did name echoes in flight (the test bites)" [ "$hits" -gt 0 ]
    check "packets ($mode): the exporter counted foreign packets" [ "$foreign" -gt 0 ]
    # Each echo of the first three pings draws an ICMP error from the router.
    local perr
    perr=$(cat "$tmp"/ping[1-3].out | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
    check "packets ($mode): $name is alive" alive "$name"
    check "packets ($mode): no sanitizer report" hx_no_sanitizer_report "$name"
    stop_exporter "$name" TERM "$(hx_secs 5)"
    check_detail="exit status $stop_rc after ${stop_secs}s"
    check "packets ($mode): SIGTERM: exit 0" [ "$stop_rc" = 0 ]
    check_detail=""
    check "packets ($mode): no sanitizer report at exit" hx_no_sanitizer_report "$name"
    fig "packets/$mode: $(hx_get "$h" ALL requests) requests in ${secs}s ($(hx_get "$h" ALL rps)/s)," \
        "$forged forged packets ($hits naming a blackhole echo in flight, $exact exact copies)," \
        "${perr:-0} echoes of ping drawing ICMP errors, $spoofed replies from another address" \
        "-> corrupt +$corrupt," \
        "foreign +$foreign; lossy echoes $ln: $ldrops dropped = $ldrops timed out;" \
        "false successes: bh $(($(hx_get "$h" bh4 success1) + $(hx_get "$h" bh6 success1)))," \
        "spoof $(($(hx_get "$h" spoof4 success1) + $(hx_get "$h" spoof6 success1)))"
}

scenario_packets() {
    local range
    packets_run raw
    # Ping sockets: open ping_group_range for root in the lab's client namespace only.
    read -r range </proc/sys/net/ipv4/ping_group_range
    echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
    packets_run dgram
    echo "$range" >/proc/sys/net/ipv4/ping_group_range
}

# =======================================================================================
# route

# link_save NS DEV: records DEV's global addresses and its routes other than the kernel's.
link_save() {
    local f=$tmp/link_$2
    ip -n "$1" -o addr show dev "$2" scope global | awk '{ print $3, $4 }' >"$f.addr"
    ip -n "$1" -4 route show dev "$2" | grep -v 'proto kernel' | sed 's/^/-4 /' >"$f.routes"
    ip -n "$1" -6 route show dev "$2" | grep -vE 'proto kernel|^fe80' | sed 's/^/-6 /' >>"$f.routes"
    link_state "$1" "$2" >"$f.before"
}

# link_state NS DEV: addresses and routes of DEV, sorted, for comparison.
link_state() {
    {
        ip -n "$1" -o addr show dev "$2" scope global | awk '{ print $3, $4 }'
        ip -n "$1" -4 route show dev "$2"
        ip -n "$1" -6 route show dev "$2" | grep -v '^fe80'
    } | sort
}

# link_restore NS DEV: up again, with the addresses and routes link_save recorded (a link
# going down takes its routes along, and its IPv6 addresses).
link_restore() {
    local f=$tmp/link_$2 fam addr ipfam route
    ip -n "$1" link set "$2" up
    while read -r fam addr; do
        if [ "$fam" = inet6 ]; then
            ip -n "$1" -6 addr replace "$addr" dev "$2" nodad
        else
            ip -n "$1" addr replace "$addr" dev "$2"
        fi
    done <"$f.addr"
    while read -r ipfam route; do
        # shellcheck disable=SC2086 # a route is words
        ip -n "$1" "$ipfam" route replace $route dev "$2"
    done <"$f.routes"
}

# echo_statuses ID: "index status" of every echo of a debug answer ("not_sent:STATUS" for
# echoes the kernel refused).
echo_statuses() {
    awk '/^echo [0-9]+: seq=/ { sub(":", "", $2); split($4, s, "="); print $2, s[2] }
         /^echo [0-9]+: not sent/ { sub(":", "", $2); gsub(/[()]/, "", $5); print $2, "not_sent:" $5 }' \
        "$tmp/$1.plain"
}

# outage_ok ID COUNT: every echo accounted for; a success before the outage and after it,
# and at least one failure of an allowed kind in between.
outage_ok() {
    local id=$1 n=$2 st
    st=$(echo_statuses "$id")
    check_detail="request: $(reqdesc "$id")
echoes: $(awk '{ print $2 }' <<<"$st" | sort | uniq -c | tr '\n' ' ' | tr -s ' ')
$(head -c 300 "$tmp/$id.plain")"
    [ "$(wc -l <<<"$st")" = "$n" ] || return 1
    awk '
        $2 == "success" { if (!fail) before = 1; else after = 1; next }
        $2 ~ /^(timed_out|dest_net_unreachable|dest_host_unreachable)$/ { fail++; next }
        $2 ~ /^not_sent:(dest_net_unreachable|dest_host_unreachable|general_failure)$/ { fail++; next }
        { bad = 1 }
        END { exit !(before && after && fail && !bad) }' <<<"$st"
}

# outage NAME NS DEV: probes of the far host (v4 and v6, 40 echoes 50 ms apart) and a
# /metrics scrape of it run while DEV of NS is down from 0.5 s to 1.0 s.
outage() {
    local name=$1 ns=$2 dev=$3 bg=() id fam v
    link_save "$ns" "$dev"
    req "${name}_4" "$R_url/probe?target=$NETLAB_V4_FAR&count=40&interval=50ms&timeout=3s&debug=true" &
    bg+=($!)
    req "${name}_6" "$R_url/probe?target=$NETLAB_V6_FAR&module=icmp6&count=40&interval=50ms&timeout=3s&debug=true" &
    bg+=($!)
    req "${name}_m" "$R_url/metrics" &
    bg+=($!)
    sleep 0.5
    ip -n "$ns" link set "$dev" down
    sleep 0.5
    link_restore "$ns" "$dev"
    wait "${bg[@]}"
    for id in "${name}_4" "${name}_6"; do
        check "route ($name): $id: 200" want_code "$id" 200
        check "route ($name): $id: successes before and after the outage, failures (send error, ICMP error, timeout) in it" \
            outage_ok "$id" 40
        echo_statuses "$id" >"$tmp/$id.echoes"
        sed -i '1,/^Metrics that would have been returned:$/d' "$tmp/$id.plain"
        check "route ($name): $id: its metrics pass promtool" promtool_clean "$id"
    done
    check "route ($name): /metrics during the outage: 200" want_code "${name}_m" 200
    check "route ($name): /metrics during the outage passes promtool" promtool_clean "${name}_m"
    check_detail="$(grep '^icmp_target_echoes_sent_total{' "$tmp/${name}_m.plain")"
    check "route ($name): /metrics has both far targets" \
        [ "$(grep -c '^icmp_target_echoes_sent_total{' "$tmp/${name}_m.plain")" = 2 ]
    link_state "$ns" "$dev" >"$tmp/link_$dev.after"
    check_detail="before:
$(cat "$tmp/link_$dev.before")
after:
$(cat "$tmp/link_$dev.after")"
    check "route ($name): $dev's addresses and routes restored" \
        cmp -s "$tmp/link_$dev.before" "$tmp/link_$dev.after"
    for fam in 4 6; do
        v=NETLAB_V${fam}_FAR
        req "${name}_after$fam" "$R_url/probe?target=${!v}&module=icmp${fam/4/}&count=5&interval=10ms"
        check "route ($name): afterwards the far host answers 5 of 5 (v$fam)" \
            want_metric "${name}_after$fam" eq 5 probe_icmp_echoes_received
    done
    fig "route/$name ($dev down 0.5 s): v4 echoes:" \
        "$(awk '{ print $2 }' "$tmp/${name}_4.echoes" | sort | uniq -c | awk '{ printf "%s%s %s", n++ ? ", " : "", $1, $2 }');" \
        "v6 echoes: $(awk '{ print $2 }' "$tmp/${name}_6.echoes" | sort | uniq -c | awk '{ printf "%s%s %s", n++ ? ", " : "", $1, $2 }')"
}

scenario_route() {
    cat >"$tmp/route.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "4s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp6": { "timeout": "4s", "icmp": { "preferred_ip_protocol": "ip6" } },
    "slow": { "timeout": "3s", "icmp": { "count": 30, "interval": "50ms" } }
  },
  "targets": [
    { "target": "$NETLAB_V4_FAR", "module": "slow" },
    { "target": "$NETLAB_V6_FAR", "module": "slow" }
  ]
}
EOF
    if ! hx_start R --config.file="$tmp/route.json"; then
        check "route: the exporter serves" false
        return
    fi
    # The client's own link to the router: the route to the far host vanishes here (sends
    # fail); then the router's link to the far host (the router has no route: ICMP errors,
    # or silence where the kernel rate-limits them).
    outage client "$NETLAB_NS_CLIENT" "$NETLAB_PREFIX-cr"
    outage router "$NETLAB_NS_ROUTER" "$NETLAB_PREFIX-rf"
    check "route: the exporter is alive" alive R
    check "route: no sanitizer report" hx_no_sanitizer_report R
    stop_exporter R TERM "$(hx_secs 5)"
    check_detail="exit status $stop_rc after ${stop_secs}s"
    check "route: SIGTERM: exit 0" [ "$stop_rc" = 0 ]
    check_detail=""
    check "route: no sanitizer report at exit" hx_no_sanitizer_report R
}

# =======================================================================================
# reload

# write_reload_cfg FILE A|B|BAD: configuration A (100 static targets labelled set="A"), B
# (150, set="B", another module timeout), or a broken file.
write_reload_cfg() {
    local n timeout
    case $2 in
    A) n=100 timeout=2s ;;
    B) n=150 timeout=3s ;;
    *)
        printf '{ "modules": { "icmp": { "timeout": ' >"$1"
        return
        ;;
    esac
    cat >"$1" <<EOF
{
  "modules": {
    "icmp": { "timeout": "$timeout", "icmp": { "preferred_ip_protocol": "ip4" } }
  },
  "targets": [
$(hx_anyip_targets "$n" | sed "s/\"labels\": { /&\"set\": \"$2\", /")
  ],
  "limits": { "allowed_targets": ["198.18.0.0/15", "2001:db8::/32"], "max_concurrent_probes": 256 }
}
EOF
}

# metrics_bodies_whole DIR: every saved /metrics answer is of one configuration, whole: A's
# 100 targets or B's 150, each in every family, all labelled with that one set.
metrics_bodies_whole() {
    local out
    out=$(awk '
        FNR == 1 { if (f) judge(); f = FILENAME; delete n; delete sets }
        /^icmp_target_(success|loss_ratio|echoes_sent_total|rtt_seconds_count)\{/ {
            name = substr($0, 1, index($0, "{") - 1); n[name]++
            if (match($0, /set="[AB]"/)) sets[substr($0, RSTART + 5, 1)] = 1
        }
        function judge(   want, k, s, ns) {
            ns = 0; for (k in sets) { s = k; ns++ }
            want = s == "A" ? 100 : 150
            if (ns != 1) { printf "%s: sets of targets %d\n", f, ns; return }
            for (k in n) if (n[k] != want) printf "%s: %s has %d series, set %s wants %d\n", f, k, n[k], s, want
            if (length(n) != 4) printf "%s: %d target families\n", f, length(n)
            counts[s]++
        }
        END { if (f) judge(); printf "OK A=%d B=%d\n", counts["A"], counts["B"] }' "$1"/metrics-*)
    metrics_sets=$(tail -1 <<<"$out")
    check_detail=$(head -10 <<<"$out")
    [ "$(wc -l <<<"$out")" = 1 ]
}

scenario_reload() {
    local secs=${HX_RELOAD_SECONDS:-10} max=${HX_RELOAD_ROUNDS:-100} cfg=$tmp/reload.json i kind code
    local posts=0 hups=0 bad=0 wrong=0 fd0 fd1 rss0 rss1 dir=$tmp/reload_bodies
    mkdir -p "$dir"
    write_reload_cfg "$cfg" A
    if ! hx_start L --config.file="$cfg" --web.enable-lifecycle; then
        check "reload: the exporter serves" false
        return
    fi
    {
        for _ in 1 2 3 4; do echo "fast /probe?target=$NETLAB_V4_FAST"; done
        echo "delay /probe?target=$NETLAB_V4_DELAY"
        echo "lossy /probe?target=$NETLAB_V4_LOSS&count=3&interval=10ms&timeout=500ms"
        echo "bh /probe?target=$NETLAB_V4_BLACKHOLE&timeout=300ms"
        echo "metrics /metrics"
    } >"$tmp/reload.paths"
    # Warm-up: one round of the storm's kinds, then the "before" figures.
    hx_hammer reload_warm "127.0.0.1:$L_port" "$tmp/reload.paths" --concurrency 16 --duration 2
    for kind in B BAD A; do
        write_reload_cfg "$cfg.tmp" $kind && mv "$cfg.tmp" "$cfg"
        req rw "$L_url/-/reload" -X POST
    done
    fd0=$(hx_fds_stable "$L_pid")
    rss0=$(hx_rss_kb "$L_pid")

    hx_hammer reload "127.0.0.1:$L_port" "$tmp/reload.paths" --concurrency 16 --duration "$secs" \
        --grace "$(hx_secs 10)" --save-dir "$dir" --save-every 20 --save-all metrics &
    local hpid=$!
    # The storm: every 5th configuration broken, every 10th reload by SIGHUP; bounded by
    # count and by the load's end. The file is replaced by rename, so a reload reads one
    # whole version.
    for ((i = 1; i <= max; i++)); do
        exited "$hpid" && break
        if [ $((i % 5)) = 0 ]; then kind=BAD; elif [ $((i % 2)) = 0 ]; then kind=B; else kind=A; fi
        write_reload_cfg "$cfg.tmp" $kind && mv "$cfg.tmp" "$cfg"
        if [ $((i % 10)) = 3 ]; then
            kill -HUP "$L_pid"
            hups=$((hups + 1))
            [ $kind = BAD ] && bad=$((bad + 1))
            sleep 0.05
        else
            # Five reloads back to back (one curl), each swapping a configuration in.
            for code in $(curl -sS -X POST --max-time "$(hx_secs 10)" -w '%{http_code}\n' \
                -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
                "$L_url/-/reload" "$L_url/-/reload" "$L_url/-/reload" "$L_url/-/reload" \
                "$L_url/-/reload" 2>>"$tmp/reload.wrong"); do
                posts=$((posts + 1))
                [ $kind = BAD ] && bad=$((bad + 1))
                if { [ $kind = BAD ] && [ "$code" != 500 ]; } ||
                    { [ $kind != BAD ] && [ "$code" != 200 ]; }; then
                    wrong=$((wrong + 1))
                    echo "reload $i ($kind): HTTP $code" >>"$tmp/reload.wrong"
                fi
            done
        fi
    done
    wait "$hpid"
    # The last word: configuration A, valid.
    write_reload_cfg "$cfg.tmp" A && mv "$cfg.tmp" "$cfg"
    req rl "$L_url/-/reload" -X POST
    check "reload: the final reload: 200" want_code rl 200
    req rm "$L_url/metrics"
    check_detail=$(hx_hammer_detail reload)
    for k in failed truncated malformed other_status s503; do
        check "reload: $((posts + hups)) reloads during $secs s of load: $k = 0" [ "$(hx_get reload ALL $k)" = 0 ]
    done
    check_detail="$(head -5 "$tmp/reload.wrong" 2>/dev/null)"
    check "reload: POST /-/reload: 200 for a valid file, 500 for a broken one ($posts posts)" [ "$wrong" = 0 ]
    check "reload: every /metrics answer whole, and of one configuration" metrics_bodies_whole "$dir"
    check "reload: every answer saved passes promtool" hx_promtool_dir "$dir"
    check "reload: icmp_exporter_config_reload_failures_total = $((bad + 1)) reloads of a broken file" \
        want_metric rm eq $((bad + 1)) icmp_exporter_config_reload_failures_total
    check "reload: icmp_exporter_config_last_reload_successful 1" \
        want_metric rm eq 1 icmp_exporter_config_last_reload_successful
    check_detail="$(grep -c '^icmp_target_success{' "$tmp/rm.plain") targets"
    check "reload: the final configuration's 100 targets are served" \
        [ "$(grep -c '^icmp_target_success{.*set="A"' "$tmp/rm.plain")" = 100 ]
    fd1=$(hx_fds_settle "$L_pid" "$fd0")
    rss1=$(hx_rss_kb "$L_pid")
    check_detail="descriptors $fd0 before the storm, $fd1 after"
    check "reload: no descriptor leaked" [ "$fd1" = "$fd0" ]
    local bound=$((${HX_RSS_GROWTH_KB:-$(grep -qa __asan_init "$bin" && echo 65536 || echo 8192)}))
    check_detail="VmRSS $rss0 kB before the storm, $rss1 kB after"
    check "reload: RSS growth <= $bound kB" [ $((rss1 - rss0)) -le "$bound" ]
    check "reload: the exporter is alive" alive L
    check_detail=""
    check "reload: no sanitizer report" hx_no_sanitizer_report L
    stop_exporter L TERM "$(hx_secs 5)"
    check_detail="exit status $stop_rc after ${stop_secs}s"
    check "reload: SIGTERM: exit 0" [ "$stop_rc" = 0 ]
    check_detail=""
    check "reload: no sanitizer report at exit" hx_no_sanitizer_report L
    fig "reload: $((posts + hups)) reloads ($posts POST, $hups SIGHUP; $bad of a broken file) during ${secs}s:" \
        "$(hx_get reload ALL requests) requests ($(hx_get reload ALL rps)/s, p50 $(hx_get reload ALL lat_p50_ms) ms," \
        "p99 $(hx_get reload ALL lat_p99_ms) ms), errors $(($(hx_get reload ALL failed) + $(hx_get reload ALL truncated) + $(hx_get reload ALL malformed) + $(hx_get reload ALL other_status)));" \
        "/metrics answers by configuration: ${metrics_sets#OK }; fds $fd0 -> $fd1;" \
        "VmRSS $(hx_mib "$rss0") -> $(hx_mib "$rss1") MiB"
}

# =======================================================================================
# sigterm

# term_req ID CURL_ARGS... URL: one request (req) in the background; its PID joins
# term_pids.
term_req() {
    local id=$1
    shift
    req_max_time=$(hx_secs 20) req "$id" "$@" &
    term_pids+=($!)
}

# judge_term ID KIND: what one in-flight request got. KIND probe: must be a whole,
# well-formed answer (the exporter answers probes in flight with what they have) or a 503
# with Retry-After. KIND metrics: the same, or a clean close: refused, reset, empty, or a
# body whose framing (chunked, gzip) shows it is cut. Never a 200 taken as whole that is not.
judge_term() {
    local id=$1 kind=$2 code rc crc
    code=$(code_of "$id")
    crc=$(cat "$tmp/$id.err" 2>/dev/null)
    rc=$(sed -n 's/^curl: (\([0-9]*\)).*/\1/p' "$tmp/$id.err" | head -1)
    rc=${rc:-0}
    echo "$id $code $rc" >>"$tmp/term.outcomes"
    check_detail="request: $(reqdesc "$id"); curl exit $rc"
    if [ "$code" = 503 ] && [ "$rc" = 0 ]; then
        want_header "$id" Retry-After '^1$'
        return
    fi
    if [ "$code" = 200 ] && [ "$rc" = 0 ]; then
        if [ -f "$tmp/$id.gz" ]; then
            gzip -dc <"$tmp/$id.body" >"$tmp/$id.plain" 2>/dev/null || {
                check_detail+=": a 200 taken as whole whose gzip stream is cut"
                return 1
            }
        fi
        if [ "$kind" = probe ]; then
            want_body "$id" '^probe_success [01]$' && promtool_clean "$id"
            return
        fi
        # A whole /metrics answer has every static target in every family, and ends with a
        # newline. A cut one the client takes for whole is the failure this test is for;
        # whether it parses is chance (where the cut falls), so both the body as received
        # and the body cut back to its last newline are shown to promtool.
        local f n whole=1 as_is at_nl
        for f in icmp_target_success icmp_target_loss_ratio icmp_target_echoes_sent_total \
            icmp_target_rtt_seconds_count; do
            n=$(grep -c "^$f{" "$tmp/$id.plain")
            [ "$n" = $((n_term + 1)) ] || whole=""
        done
        [ "$(tail -c1 "$tmp/$id.plain" | od -An -c | tr -d ' ')" = '\n' ] || whole=""
        if [ -z "$whole" ]; then
            as_is=$(promtool check metrics <"$tmp/$id.plain" >/dev/null 2>&1 && echo valid || echo invalid)
            at_nl=$(sed '$d' "$tmp/$id.plain" | promtool check metrics >/dev/null 2>&1 && echo valid || echo invalid)
            check_detail+=": HTTP says whole, the body is cut: $(wc -c <"$tmp/$id.plain") bytes, $n of $((n_term + 1)) targets in the last family; promtool: $as_is as received, $at_nl when cut at its last newline; last line: '$(tail -n1 "$tmp/$id.plain" | cut -c1-120)'"
            return 1
        fi
        promtool_clean "$id"
        return
    fi
    [ "$kind" = metrics ] || return 1
    # Clean closes: refused (7), empty reply (52), reset (56), cut body (18: chunked or
    # Content-Length short of its end).
    case $rc in
    7 | 52 | 56 | 18) return 0 ;;
    esac
    check_detail+=": neither a whole answer nor a clean close ($crc)"
    return 1
}

scenario_sigterm() {
    local i n_term=2000 limit_s rmem wmem
    term_pids=()
    limit_s=$(hx_secs 5)
    # Small TCP buffers in the lab's client namespace (where client and exporter run), so a
    # slow reader is still reading when the exporter exits: with the default 32 MiB the
    # kernel would hold the whole 6 MB answer, and deliver it after the exporter is gone.
    read -r rmem </proc/sys/net/ipv4/tcp_rmem
    read -r wmem </proc/sys/net/ipv4/tcp_wmem
    echo "4096 16384 65536" >/proc/sys/net/ipv4/tcp_rmem
    echo "4096 16384 65536" >/proc/sys/net/ipv4/tcp_wmem
    cat >"$tmp/term.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "5s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "bh": { "timeout": "1500ms" }
  },
  "targets": [
$(hx_anyip_targets "$n_term"),
    { "target": "$NETLAB_V4_BLACKHOLE", "module": "bh" }
  ],
  "limits": { "allowed_targets": ["198.18.0.0/15", "2001:db8::/32"], "max_concurrent_probes": 64 }
}
EOF
    if ! hx_start T --config.file="$tmp/term.json"; then
        check "sigterm: the exporter serves" false
        return
    fi
    : >"$tmp/term.outcomes"
    {
        for _ in 1 2 3 4; do echo "fast /probe?target=$NETLAB_V4_FAST"; done
        echo "delay /probe?target=$NETLAB_V4_DELAY"
        echo "bh /probe?target=$NETLAB_V4_BLACKHOLE&timeout=300ms"
    } >"$tmp/term.paths"
    # In flight at SIGTERM: probes of the blackhole (5 s timeout) and of the 20 ms host (20
    # echoes 100 ms apart); /metrics scrapes waiting for their static blackhole (1.5 s);
    # slow readers of the 6 MB /metrics (200 kB/s: HTTP/1.1 chunked, HTTP/1.0 ended by the
    # close, gzip), which started reading after 1.5 s.
    for i in $(seq 10); do
        term_req "tbh$i" "$T_url/probe?target=$NETLAB_V4_BLACKHOLE"
        term_req "tdl$i" "$T_url/probe?target=$NETLAB_V4_DELAY&count=20&interval=100ms"
    done
    term_req tslow11 --limit-rate 200K "$T_url/metrics"
    term_req tslow10 --http1.0 --limit-rate 200K "$T_url/metrics"
    touch "$tmp/tslowgz.gz"
    term_req tslowgz --limit-rate 200K -H 'Accept-Encoding: gzip' "$T_url/metrics"
    hx_hammer term "127.0.0.1:$T_port" "$tmp/term.paths" --concurrency 16 --duration 4 \
        --grace "$(hx_secs 10)" &
    local hpid=$!
    sleep 2.2
    for i in 1 2; do term_req "tm$i" "$T_url/metrics"; done
    sleep 0.5
    stop_exporter T TERM "$limit_s"
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/T.log")"
    check "sigterm: under load: exit 0 within $limit_s s" [ "$stop_rc" = 0 ]
    check_detail=""
    check "sigterm: no sanitizer report (LeakSanitizer runs at exit)" hx_no_sanitizer_report T
    wait "$hpid" "${term_pids[@]}"
    for i in $(seq 10); do
        check "sigterm: blackhole probe $i in flight: a whole answer" judge_term "tbh$i" probe
        check "sigterm: 20 ms host probe $i in flight: a whole answer" judge_term "tdl$i" probe
    done
    for i in tm1 tm2 tslow11 tslow10 tslowgz; do
        check "sigterm: /metrics $i: whole, or a clean close" judge_term "$i" metrics
    done
    check_detail=$(hx_hammer_detail term)
    check "sigterm: the load client got no malformed answer and no unexpected status" \
        [ "$(hx_get term ALL malformed)/$(hx_get term ALL other_status)/$(hx_get term ALL s503_no_retry_after)" = 0/0/0 ]
    echo "$rmem" >/proc/sys/net/ipv4/tcp_rmem
    echo "$wmem" >/proc/sys/net/ipv4/tcp_wmem
    fig "sigterm: exit $stop_rc after ${stop_secs}s; in-flight requests (id http curl-exit):" \
        "$(awk '{ printf "%s%s %s %s", n++ ? ", " : "", $1, $2, $3 }' "$tmp/term.outcomes");" \
        "load client: $(hx_get term ALL s200) x 200, $(hx_get term ALL s503) x 503," \
        "$(hx_get term ALL failed) refused/reset, $(hx_get term ALL truncated) cut (framing), $(hx_get term ALL malformed) malformed"
}

for s in "${scenarios[@]}"; do
    if ! declare -F "scenario_$s" >/dev/null; then
        echo "faults.sh: unknown scenario '$s' (packets route reload sigterm)" >&2
        exit 2
    fi
    echo "== $s"
    "scenario_$s"
done
echo
echo "== fault figures"
cat "$figures"
check_done
