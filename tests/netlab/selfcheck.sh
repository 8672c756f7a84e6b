#!/usr/bin/env bash
# The lab's self-check: proves, with iputils ping, that every host of the lab behaves as
# tests/netlab/README.md documents. Runs inside a lab's client namespace (netlab.sh run),
# which provides the NETLAB_* variables. Every ping is bounded by count and -W/-w.
set -uo pipefail

: "${NETLAB_PREFIX:?run me through netlab.sh run}"
command -v ping >/dev/null || {
    echo "selfcheck: iputils ping is missing (Debian package iputils-ping)" >&2
    exit 1
}

# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"
out=""

# png ARGS...: run ping, keep its output in $out (shown with a failed check).
png() {
    out=$(ping -n "$@" 2>&1)
    check_detail=$out
}
rtts() { printf '%s\n' "$out" | grep -v DUP | sed -n 's/.* time=\([0-9.]*\) ms.*/\1/p'; }
received() { printf '%s\n' "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p'; }
# all_within LOW HIGH: every RTT of $out lies in [LOW, HIGH] ms, and there is at least one.
all_within() {
    rtts | awk -v lo="$1" -v hi="$2" 'BEGIN { n = 0; bad = 0 }
        { n++; if ($1 < lo || $1 > hi) bad++ } END { exit !(n > 0 && bad == 0) }'
}
# timely LOW HIGH: no RTT below LOW ms (a reply is never early), and the fastest and the
# median within [LOW, HIGH]. ping's RTTs are user-space times: a busy machine adds to some
# of them (2 of 10 came 4-5 ms late at load average 20), never takes away, so the fastest
# says what the host holds and the median that most replies are on time; a share of
# on-time replies would measure the scheduler, not the host.
timely() {
    rtts | sort -n | awk -v lo="$1" -v hi="$2" '{ v[NR] = $1; if ($1 < lo) early++ }
        END { med = v[int((NR + 1) / 2)];
              exit !(NR > 0 && early == 0 && v[1] <= hi && med >= lo && med <= hi) }'
}
# log_count EVENT DST: lines of the responder's log for EVENT to DST.
log_count() { grep -c " ev=$1 .*dst=$2 " "$NETLAB_RESPONDER_LOG"; }

for fam in 4 6; do
    v() { local n="NETLAB_V${fam}_$1"; echo "${!n}"; }

    # anyip: first, last and a middle address of the prefix all answer, from themselves.
    if [ "$fam" = 4 ]; then
        anyips="198.18.0.1 198.18.123.45 198.18.255.254"
    else
        anyips="2001:db8:a::1 2001:db8:a::1234:5678 2001:db8:a:0:ffff:ffff:ffff:fffe"
    fi
    for a in $anyips; do
        png -c 1 -W 2 "$a"
        check "v$fam anyip $a answers" grep -q "bytes from $a: icmp_seq=1 ttl=64" <<<"$out"
    done

    # delay: every RTT within 1 ms of the configured delay.
    png -c 10 -i 0.05 -W 2 "$(v DELAY)"
    check "v$fam delay host: no reply early, the fastest and the median within 1 ms of ${NETLAB_DELAY_MS} ms" \
        timely "$NETLAB_DELAY_MS" "$((NETLAB_DELAY_MS + 1))"
    check "v$fam delay host: $(received)/10 replies" [ "$(received)" = 10 ]

    # jitter: RTTs spread over delay ± jitter, not all equal.
    png -c 30 -i 0.02 -W 2 "$(v JITTER)"
    lo=$((NETLAB_DELAY_MS - NETLAB_JITTER_MS)) hi=$((NETLAB_DELAY_MS + NETLAB_JITTER_MS + 1))
    check "v$fam jitter host: no RTT below $lo ms, the fastest and the median within [$lo, $hi] ms" timely "$lo" "$hi"
    spread=$(rtts | sort -n | sed -n '1p;$p' | paste -sd' ' | awk '{ print $2 - $1 }')
    check "v$fam jitter host: RTT spread ${spread} ms > 2 ms" \
        awk -v s="$spread" 'BEGIN { exit !(s > 2) }'

    # loss: about the configured share lost, and exactly what the responder dropped.
    png -c 200 -i 0.005 -W 1 "$(v LOSS)"
    got=$(received)
    dropped=$(log_count drop "$(v LOSS)")
    replied=$(log_count reply "$(v LOSS)")
    check "v$fam loss host: lost $((200 - got))/200, responder dropped $dropped" \
        [ "$((200 - got))" = "$dropped" ]
    check "v$fam loss host: responder replied $replied = ping received $got" \
        [ "$replied" = "$got" ]
    # 30% of 200 is 60 with a standard deviation of 6.5: accept 4 deviations either side.
    check "v$fam loss host: $dropped drops is about ${NETLAB_LOSS_PCT}% of 200" \
        [ "$dropped" -ge 34 -a "$dropped" -le 86 ]

    # duplicates: each echo answered 1 + NETLAB_DUP_COPIES times. ping exits on its fifth
    # reply, before that echo's copies come, so it shows those of the first four.
    png -c 5 -i 0.05 -W 2 "$(v DUP)"
    dups=$(grep -c 'DUP!' <<<"$out")
    check "v$fam dup host: ping shows $dups duplicates for the first 4 echoes" \
        [ "$dups" = "$((4 * NETLAB_DUP_COPIES))" ]
    check "v$fam dup host: responder sent $((5 * NETLAB_DUP_COPIES)) copies" \
        [ "$(log_count dup "$(v DUP)")" = "$((5 * NETLAB_DUP_COPIES))" ]

    # corrupt: well-formed replies whose data is wrong.
    png -c 2 -i 0.05 -W 2 "$(v CORRUPT)"
    check "v$fam corrupt host: ping reports wrong data" grep -q 'wrong data byte' <<<"$out"

    # wrong identifier: replies are sent, but are not ping's.
    png -c 3 -i 0.05 -W 1 "$(v WRONGID)"
    check "v$fam wrongid host: ping sees no reply" [ "$(received)" = 0 ]
    check "v$fam wrongid host: responder sent 3 replies" \
        [ "$(log_count reply "$(v WRONGID)")" = 3 ]

    # late: nothing within 1 s; the reply comes at NETLAB_LATE_MS.
    png -c 1 -W 1 "$(v LATE)"
    check "v$fam late host: no reply within 1 s" [ "$(received)" = 0 ]
    png -c 1 -W 4 "$(v LATE)"
    check "v$fam late host: reply after ${NETLAB_LATE_MS} ms" \
        all_within "$NETLAB_LATE_MS" "$((NETLAB_LATE_MS + 50))"

    # reply TTL / hop limit set by the responder.
    png -c 1 -W 2 "$(v TTL)"
    check "v$fam ttl host: ttl=$NETLAB_REPLY_TTL" grep -q "ttl=$NETLAB_REPLY_TTL " <<<"$out"

    # TTL / hop limit 0: delivered, and shown as 0.
    png -c 1 -W 2 "$(v TTL0)"
    check "v$fam ttl 0 host: ttl=0" grep -q "bytes from $(v TTL0): icmp_seq=1 ttl=0 " <<<"$out"

    # short-quote errors: an unreachable from the delay host's link address, quoting no data.
    png -c 1 -W 2 "$(v SHORT_ERR)"
    check "v$fam short-quote error host: unreachable from $(v DELAY_LINK)" \
        grep -q "^From $(v DELAY_LINK) icmp_seq=1 Destination" <<<"$out"
    check "v$fam short-quote error host: the responder logged an error quoting 0 bytes" \
        grep -q " ev=error .*dst=$(v SHORT_ERR) .* quote=0" "$NETLAB_RESPONDER_LOG"

    # forger of short errors: answers, and forges errors quoting no data. Its forged
    # packets include echo replies from another address that ping counts as received, and
    # they may beat the real one: ping for 1 s (no -c), so the real reply is always waited for.
    png -i 0.2 -w 1 "$(v FORGE_SHORT)"
    check "v$fam forge-short host answers" grep -q "bytes from $(v FORGE_SHORT): icmp_seq=1 " <<<"$out"
    check "v$fam forge-short host: $NETLAB_FORGE_COUNT forged packets" \
        [ "$(grep -c " ev=forge fam=$fam .*req_id=.* req_seq=1$" "$NETLAB_RESPONDER_LOG")" -ge "$NETLAB_FORGE_COUNT" ]

    # router: one hop, answers itself; the far host is two hops away (TTL 64 - 1).
    png -c 1 -W 2 "$(v ROUTER)"
    check "v$fam router answers with ttl=64" grep -q "from $(v ROUTER): .* ttl=64 " <<<"$out"
    png -c 1 -W 2 "$(v FAR)"
    check "v$fam far host answers with ttl=63" grep -q "from $(v FAR): .* ttl=63 " <<<"$out"
    png -c 1 -W 2 -t 1 "$(v FAR)"
    if [ "$fam" = 4 ]; then msg="Time to live exceeded"; else msg="Time exceeded: Hop limit"; fi
    check "v$fam TTL 1 to the far host: time exceeded from the router" \
        grep -q "From $(v ROUTER) icmp_seq=1 $msg" <<<"$out"

    # blackhole: silence.
    png -c 2 -i 0.2 -W 1 "$(v BLACKHOLE)"
    check "v$fam blackhole: no reply and no error" \
        [ "$(received)" = 0 -a "$(grep -c '^From' <<<"$out")" = 0 ]
done

# unreachable / prohibited: real ICMP errors from the router, long before any timeout.
# unreach ADDR MESSAGE: the router reports MESSAGE within well under the 5 s ping waits.
unreach() {
    local start end
    start=$(date +%s%N)
    png -c 1 -W 5 "$1"
    end=$(date +%s%N)
    check "$1: '$2' from the router in $(((end - start) / 1000000)) ms" \
        grep -q "^From .* icmp_seq=1 $2" <<<"$out"
    check "$1: error arrives within 1 s" [ $((end - start)) -lt 1000000000 ]
}
unreach "$NETLAB_V4_UNREACH_HOST" "Destination Host Unreachable"
unreach "$NETLAB_V4_PROHIBITED" "Packet filtered"
unreach "$NETLAB_V4_UNREACH_NET" "Destination Net Unreachable"
unreach "$NETLAB_V4_UNREACH_ARP" "Destination Host Unreachable"
unreach "$NETLAB_V6_UNREACH_ROUTE" "Destination unreachable: No route"
unreach "$NETLAB_V6_PROHIBITED" "Destination unreachable: Administratively prohibited"
unreach "$NETLAB_V6_NO_ROUTE" "Destination unreachable: No route"
unreach "$NETLAB_V6_UNREACH_ND" "Destination unreachable: Address unreachable"

# link-local: the router answers on its link; nobody has the other address, and the client's
# own neighbour discovery reports it.
png -c 1 -W 2 "$NETLAB_V6_ROUTER_LL%$NETLAB_CLIENT_IF_ROUTER"
check "link-local $NETLAB_V6_ROUTER_LL%$NETLAB_CLIENT_IF_ROUTER answers" \
    grep -q "bytes from $NETLAB_V6_ROUTER_LL%$NETLAB_CLIENT_IF_ROUTER: icmp_seq=1 ttl=64 " <<<"$out"
unreach "$NETLAB_V6_LL_NOBODY%$NETLAB_CLIENT_IF_ROUTER" "Destination unreachable: Address unreachable"

check_done
