#!/usr/bin/env bash
# The real icmp_exporter binary, over HTTP on the lab client's loopback, probing every kind of
# lab host (tests/netlab/README.md) with its expected result: the 20 ms host (RTT within
# 1 ms), the lossy host (loss = what the responder logged as dropped), duplicates, TTL 1 to the
# far host (time exceeded), the router's unreachables (decoded, fast), the blackhole (timeout),
# late replies, corrupt and foreign replies, an unresolvable name, allowed_targets (403), and
# the static targets of /metrics against lab hosts. Only loopback and NETLAB_* addresses.
# Usage (inside a lab): netlab.sh run -- test_http_lab.sh ICMP_EXPORTER
# Variables come from lib.sh (sourced) and netlab.sh (NETLAB_*); '...' are literal.
# shellcheck disable=SC2154,SC2153,SC2034,SC2016
set -uo pipefail
bin=${1:?usage: netlab.sh run -- test_http_lab.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The helpers (start_exporter, req, want_*, mval, check...) and the cleanup trap.
# shellcheck source=lib.sh
. "$here/lib.sh"

if [ -z "${NETLAB_V4_DELAY:-}" ] || [ -z "${NETLAB_RESPONDER_LOG:-}" ]; then
    echo "FAIL - no NETLAB_* variables: run me with tests/netlab/netlab.sh run -- $0 ICMP_EXPORTER" >&2
    exit 1
fi
want_mode=$(expected_mode)

# ---------------------------------------------------------------------------------------
# L: every lab host allowed; static targets on lab hosts.
cat >"$tmp/cfg_l.json" <<EOF
{
  "modules": {
    "icmp": { "timeout": "5s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "ttl1": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4", "ttl": 1 } },
    "short": { "timeout": "1s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "three": { "timeout": "1s", "icmp": { "count": 3, "interval": "20ms" } }
  },
  "targets": [
    { "target": "$NETLAB_V4_DELAY", "labels": { "host": "delay" } },
    { "target": "$NETLAB_V6_DELAY", "labels": { "host": "delay6" } },
    { "target": "$NETLAB_V4_UNREACH_HOST", "labels": { "host": "unreach" } },
    { "target": "$NETLAB_V4_DUP", "module": "three", "labels": { "host": "dup" } }
  ]
}
EOF
if ! start_exporter L "127.0.0.1" --config.file="$tmp/cfg_l.json"; then
    check "exporter L serves in the lab" false
    check_done
fi
l=$L_url

# probe ID QUERY: GET /probe?QUERY on L.
probe() { req "$1" "$l/probe?$2"; }

# RTTs are checked against the responder's truth, not against its configured delay: each
# reply line of its log carries hold_ns, from the kernel's receive stamp of the request to
# the transmit stamp of the reply. An RTT is that hold plus two veth crossings (tens of µs),
# so the exporter's RTT figures must match the holds' within RTT_TOL seconds per echo (as
# tests/core/test_lab.c does), however late a busy machine made the responder.
RTT_TOL=0.0002
# log_lines: the responder log's current length (a mark for holds).
log_lines() { wc -l <"$NETLAB_RESPONDER_LOG"; }
# holds FROM DST N: the holds (seconds, one a line) of the replies the responder logged to
# DST after line FROM; waits up to 1 s for N of them (it writes a line just after its send).
holds() {
    local i out
    for ((i = 0; i < 20; i++)); do
        out=$(tail -n +"$(($1 + 1))" "$NETLAB_RESPONDER_LOG" | awk -v d="$2" '
            / ev=reply / && index($0, " dst=" d " ") { for (i = 1; i <= NF; i++)
                if ($i ~ /^hold_ns=/) printf "%.9f\n", substr($i, 9) / 1e9 }')
        [ "$(grep -c . <<<"$out")" -ge "$3" ] && break
        sleep 0.05
    done
    printf '%s\n' "$out"
}
# hstat STAT: avg, min, max, sum or sd (population, as the exporter's) of stdin's numbers.
hstat() {
    awk -v s="$1" 'NF { v[++n] = $1; t += $1; if (n == 1 || $1 < lo) lo = $1
        if (n == 1 || $1 > hi) hi = $1 }
        END { if (!n) exit 1; m = t / n; for (i = 1; i <= n; i++) q += (v[i] - m) ^ 2
            printf "%.9f\n", s == "avg" ? m : s == "min" ? lo : s == "max" ? hi : \
                s == "sum" ? t : sqrt(q / n) }'
}
# hcount LE: how many of stdin's holds are at most LE seconds.
hcount() { awk -v le="$1" 'NF && $1 <= le { n++ } END { print n + 0 }'; }
# rtt_near ID NAME TRUTH TOL [LABEL=VALUE...]: sample NAME of ID is TRUTH ± TOL.
rtt_near() {
    local id=$1 name=$2 truth=$3 tol=$4
    shift 4
    [ -n "$truth" ] || {
        check_detail="no reply of the responder's log to compare $name with"
        return 1
    }
    want_metric "$id" near "$truth:$tol" "$name" "$@"
}

# The 20 ms host, both families: 5 echoes 50 ms apart, RTTs those the responder held.
for fam in 4 6; do
    v=NETLAB_V${fam}_DELAY
    id=d$fam
    mark=$(log_lines)
    probe "$id" "target=${!v}&count=5&interval=50ms"
    h=$(holds "$mark" "${!v}" 5)
    echo "# responder holds of $id (ms): $(awk 'NF { printf "%.3f ", $1 * 1000 }' <<<"$h")"
    check "delay host ${!v} count=5 interval=50ms: 200" want_code "$id" 200
    check "  probe_success 1" want_metric "$id" eq 1 probe_success
    check "  probe_ip_protocol $fam" want_metric "$id" eq $fam probe_ip_protocol
    check "  probe_icmp_echoes_sent 5" want_metric "$id" eq 5 probe_icmp_echoes_sent
    check "  probe_icmp_echoes_received 5" want_metric "$id" eq 5 probe_icmp_echoes_received
    check "  probe_icmp_loss_ratio 0" want_metric "$id" eq 0 probe_icmp_loss_ratio
    check "  probe_icmp_rtt_avg_seconds = the holds' mean ± 0.2 ms" \
        rtt_near "$id" probe_icmp_rtt_avg_seconds "$(hstat avg <<<"$h")" "$RTT_TOL"
    check "  probe_icmp_rtt_min_seconds = the shortest hold ± 0.2 ms" \
        rtt_near "$id" probe_icmp_rtt_min_seconds "$(hstat min <<<"$h")" "$RTT_TOL"
    check "  probe_icmp_rtt_max_seconds = the longest hold ± 0.2 ms" \
        rtt_near "$id" probe_icmp_rtt_max_seconds "$(hstat max <<<"$h")" "$RTT_TOL"
    check "  probe_icmp_rtt_stddev_seconds = the holds' ± 0.2 ms" \
        rtt_near "$id" probe_icmp_rtt_stddev_seconds "$(hstat sd <<<"$h")" "$RTT_TOL"
    # A bucket counts the RTTs up to its bound: the holds up to it, less those within the
    # tolerance below it (they may land either side).
    for le in 0.01 0.025; do
        lo=$(hcount "$(awk -v l="$le" -v t="$RTT_TOL" 'BEGIN { print l - t }')" <<<"$h")
        hi=$(hcount "$le" <<<"$h")
        check "  histogram: le=$le = the replies held up to ${le}s ($lo..$hi)" \
            want_metric "$id" between "$lo:$hi" probe_icmp_rtt_seconds_bucket le=$le
    done
    check "  histogram: _sum = the holds' sum ± 5 x 0.2 ms" \
        rtt_near "$id" probe_icmp_rtt_seconds_sum "$(hstat sum <<<"$h")" 0.001
    check "  probe_icmp_replies{status=success} 5" want_metric "$id" eq 5 probe_icmp_replies status=success
    check "  probe_icmp_reply_hop_limit 64" want_metric "$id" eq 64 probe_icmp_reply_hop_limit
    check "  probe_duration_seconds in 0.22..1" want_metric "$id" between 0.22:1 probe_duration_seconds
    check "  promtool clean" promtool_clean "$id"
done

# The lossy host: 50 echoes; what was lost is exactly what the responder logged as dropped.
before=$(wc -l <"$NETLAB_RESPONDER_LOG")
probe loss "target=$NETLAB_V4_LOSS&count=50&interval=10ms&timeout=1s"
h=$(holds "$before" "$NETLAB_V4_LOSS" 1)
drops=$(tail -n +"$((before + 1))" "$NETLAB_RESPONDER_LOG" | grep ' ev=drop ' |
    grep -c " dst=$NETLAB_V4_LOSS ")
check "loss host count=50 interval=10ms timeout=1s: 200" want_code loss 200
check "  probe_icmp_echoes_sent 50" want_metric loss eq 50 probe_icmp_echoes_sent
check "  probe_icmp_echoes_received = 50 - $drops dropped (responder log)" \
    want_metric loss eq $((50 - drops)) probe_icmp_echoes_received
check "  probe_icmp_loss_ratio = $drops/50" \
    want_metric loss near "$(awk -v d="$drops" 'BEGIN { print d / 50 }'):0.0001" probe_icmp_loss_ratio
check "  probe_icmp_loss_ratio about 0.3 (0.1..0.5)" want_metric loss between 0.1:0.5 probe_icmp_loss_ratio
check "  probe_icmp_replies{status=timed_out} $drops" want_metric loss eq "$drops" probe_icmp_replies status=timed_out
check "  probe_icmp_replies{status=success} $((50 - drops))" \
    want_metric loss eq $((50 - drops)) probe_icmp_replies status=success
check "  probe_success 1 (some replies)" want_metric loss eq 1 probe_success
check "  probe_icmp_rtt_avg_seconds = the holds' mean (5 ms host) ± 0.2 ms" \
    rtt_near loss probe_icmp_rtt_avg_seconds "$(hstat avg <<<"$h")" "$RTT_TOL"

# Duplicates: each reply comes 3 times.
before=$(wc -l <"$NETLAB_RESPONDER_LOG")
probe dup "target=$NETLAB_V4_DUP&count=3&interval=50ms"
sleep 0.05
dups=$(tail -n +"$((before + 1))" "$NETLAB_RESPONDER_LOG" | grep ' ev=dup ' | grep -c " dst=$NETLAB_V4_DUP ")
check "dup host count=3: probe_icmp_duplicates >= 1" want_metric dup ge 1 probe_icmp_duplicates
check "  probe_icmp_duplicates <= $dups (copies the responder sent)" want_metric dup le "$dups" probe_icmp_duplicates
check "  probe_icmp_echoes_received 3 (duplicates are not replies)" want_metric dup eq 3 probe_icmp_echoes_received
check "  probe_icmp_replies{status=success} 3" want_metric dup eq 3 probe_icmp_replies status=success
check "  probe_icmp_loss_ratio 0" want_metric dup eq 0 probe_icmp_loss_ratio

# TTL 1 to the far host: time exceeded from the router, at once.
for fam in 4 6; do
    v=NETLAB_V${fam}_FAR
    id=ttl$fam
    probe "$id" "target=${!v}&module=ttl1"
    check "far host ${!v} with module ttl1 (ttl 1): 200" want_code "$id" 200
    check "  probe_icmp_replies{status=ttl_expired_transit} 1" \
        want_metric "$id" eq 1 probe_icmp_replies status=ttl_expired_transit
    check "  probe_success 0" want_metric "$id" eq 0 probe_success
    check "  fast: probe_duration_seconds < 0.5" want_metric "$id" lt 0.5 probe_duration_seconds
done
probe far "target=$NETLAB_V4_FAR"
check "far host with the default ttl 64: probe_success 1, reply hop limit 63" \
    want_metric far eq 63 probe_icmp_reply_hop_limit

# The router's unreachables: decoded, in well under the 5 s timeout.
for row in UNREACH_HOST:4:dest_host_unreachable UNREACH_NET:4:dest_net_unreachable \
    UNREACH_ARP:4:dest_host_unreachable UNREACH_ROUTE:6:dest_net_unreachable \
    NO_ROUTE:6:dest_net_unreachable UNREACH_ND:6:dest_host_unreachable; do
    IFS=: read -r name fam status <<<"$row"
    v=NETLAB_V${fam}_$name
    id=u_$name
    probe "$id" "target=${!v}"
    check "$name ${!v}: 200" want_code "$id" 200
    check "  probe_icmp_replies{status=$status} 1" want_metric "$id" eq 1 probe_icmp_replies status="$status"
    check "  probe_success 0" want_metric "$id" eq 0 probe_success
    check "  probe_icmp_echoes_received 0" want_metric "$id" eq 0 probe_icmp_echoes_received
    check "  fast: probe_duration_seconds < 1 (timeout 5)" want_metric "$id" lt 1 probe_duration_seconds
done

# Echoes the kernel refuses to send: a prohibit route in this (client) namespace for one
# address of each blackhole net. Nothing leaves the host; each refused echo shows under its
# status and as a loss, not as sent.
refused4=${NETLAB_V4_BLACKHOLE_NET%.*/*}.201 refused6=${NETLAB_V6_BLACKHOLE_NET%/*}201
ip route add prohibit "$refused4/32" && ip -6 route add prohibit "$refused6/128"
for t in "$refused4" "$refused6"; do
    probe refused "target=$t&count=3&interval=10ms&timeout=1s"
    check "send refused locally (prohibit route) $t: 200, probe_success 0" \
        want_metric refused eq 0 probe_success
    check "  probe_icmp_echoes_sent 0" want_metric refused eq 0 probe_icmp_echoes_sent
    check "  probe_icmp_replies{status=dest_prot_unreachable} 3 (EACCES from sendmsg)" \
        want_metric refused eq 3 probe_icmp_replies status=dest_prot_unreachable
    check "  probe_icmp_loss_ratio 1" want_metric refused eq 1 probe_icmp_loss_ratio
    check "  fast: probe_duration_seconds < 0.5" want_metric refused lt 0.5 probe_duration_seconds
done
ip route del prohibit "$refused4/32"
ip -6 route del prohibit "$refused6/128"

# In parallel: the blackholes (1 s timeout), the late host, corrupt and foreign replies.
bg=()
probe bh4 "target=$NETLAB_V4_BLACKHOLE&module=short" &
bg+=($!)
probe bh6 "target=$NETLAB_V6_BLACKHOLE&timeout=1s" &
bg+=($!)
probe late "target=$NETLAB_V4_LATE&timeout=1s" &
bg+=($!)
probe corrupt "target=$NETLAB_V4_CORRUPT&timeout=500ms" &
bg+=($!)
probe wrongid "target=$NETLAB_V6_WRONGID&timeout=500ms" &
bg+=($!)
wait "${bg[@]}"
for id in bh4 bh6; do
    check "blackhole ($id), timeout 1s: 200" want_code "$id" 200
    check "  probe_success 0" want_metric "$id" eq 0 probe_success
    check "  probe_icmp_replies{status=timed_out} 1" want_metric "$id" eq 1 probe_icmp_replies status=timed_out
    check "  probe_timeout_seconds 1" want_metric "$id" eq 1 probe_timeout_seconds
    check "  probe_duration_seconds ≈ timeout (0.95..1.5)" want_metric "$id" between 0.95:1.5 probe_duration_seconds
    check "  probe_icmp_loss_ratio 1" want_metric "$id" eq 1 probe_icmp_loss_ratio
    for n in probe_icmp_rtt_min_seconds probe_icmp_rtt_avg_seconds probe_icmp_rtt_max_seconds \
        probe_icmp_rtt_stddev_seconds probe_icmp_reply_hop_limit; do
        check "  no $n without a reply" want_metric "$id" absent 0 $n
    done
    check "  promtool clean" promtool_clean "$id"
done
check "late host, timeout 1s: probe_success 0, timed_out" want_metric late eq 1 probe_icmp_replies status=timed_out
for id in corrupt wrongid; do
    check "$id replies are no success: probe_success 0" want_metric "$id" eq 0 probe_success
    check "  probe_icmp_echoes_received 0" want_metric "$id" eq 0 probe_icmp_echoes_received
done
# The late reply (2 s after its request) is counted once it arrives.
late=""
for _ in $(seq 30); do
    req lm "$l/metrics"
    late=$(mval "$tmp/lm.plain" icmp_exporter_late_replies_total)
    awk -v v="$late" 'BEGIN { exit !(v + 0 >= 1) }' && break
    sleep 0.1
done
check_detail="icmp_exporter_late_replies_total = '$late' (polled 3 s after the late host's probe)"
check "the late reply shows in icmp_exporter_late_replies_total" awk -v v="$late" 'BEGIN { exit !(v + 0 >= 1) }'
check "  icmp_exporter_duplicates_total >= 1 (the dup host)" want_metric lm ge 1 icmp_exporter_duplicates_total
check "  icmp_exporter_replies_total{status=ttl_expired_transit} >= 2" \
    want_metric lm ge 2 icmp_exporter_replies_total status=ttl_expired_transit
check "  icmp_exporter_replies_total{status=dest_net_unreachable} >= 3" \
    want_metric lm ge 3 icmp_exporter_replies_total status=dest_net_unreachable

# A name that cannot resolve; no DNS query can leave the lab (no route out).
norute=1
while read -r ns; do
    ip route get "$ns" >/dev/null 2>&1 && norute=""
done < <(awk '$1 == "nameserver" { print $2 }' /etc/resolv.conf)
check_detail="a nameserver of /etc/resolv.conf is routable from the lab client: $(grep nameserver /etc/resolv.conf | tr '\n' ' ')"
check "no route to any nameserver from the lab (precondition)" [ -n "$norute" ]
if [ -n "$norute" ]; then
    probe nx "target=no-such-host.invalid"
    check "target no-such-host.invalid: 200" want_code nx 200
    check "  probe_success 0" want_metric nx eq 0 probe_success
    check "  probe_icmp_echoes_sent absent or 0" bash -c "! grep -qE '^probe_icmp_echoes_sent [1-9]' '$tmp/nx.plain'"
fi

# /metrics: static lab targets, cumulative across scrapes.
mark0=$(log_lines)
req lm1 "$l/metrics"
mark1=$(log_lines)
req lm2 "$l/metrics"
dl=(target="$NETLAB_V4_DELAY" module=icmp ip="$NETLAB_V4_DELAY" ip_version=4 host=delay)
dl6=(target="$NETLAB_V6_DELAY" module=icmp ip="$NETLAB_V6_DELAY" ip_version=6 host=delay6)
ul=(target="$NETLAB_V4_UNREACH_HOST" module=icmp host=unreach)
check "/metrics: 200, promtool clean" promtool_clean lm1
check "  icmp_target_success{delay} 1" want_metric lm1 eq 1 icmp_target_success "${dl[@]}"
check "  icmp_target_success{delay6} 1" want_metric lm1 eq 1 icmp_target_success "${dl6[@]}"
check "  icmp_target_success{unreach} 0" want_metric lm1 eq 0 icmp_target_success "${ul[@]}"
check "  icmp_target_reply_hop_limit{delay} 64" want_metric lm1 eq 64 icmp_target_reply_hop_limit "${dl[@]}"
check "  icmp_target_loss_ratio{delay} 0" want_metric lm1 eq 0 icmp_target_loss_ratio "${dl[@]}"
check "  icmp_target_loss_ratio{unreach} 1" want_metric lm1 eq 1 icmp_target_loss_ratio "${ul[@]}"
delta() { # DELTA NAME LABELS...: lm2 - lm1 == DELTA
    local d=$1
    shift
    A=$(mval "$tmp/lm1.plain" "$@") B=$(mval "$tmp/lm2.plain" "$@") C=$d \
        num_ok "$* from one /metrics scrape to the next" 'b - a == c'
}
check "  icmp_target_rtt_seconds_count{delay} +1 per scrape" delta 1 icmp_target_rtt_seconds_count "${dl[@]}"
check "  icmp_target_rtt_seconds_bucket{delay,le=0.025} +1" delta 1 icmp_target_rtt_seconds_bucket "${dl[@]}" le=0.025
check "  icmp_target_rtt_seconds_bucket{delay,le=0.01} +0" delta 0 icmp_target_rtt_seconds_bucket "${dl[@]}" le=0.01
h=$(holds "$mark1" "$NETLAB_V4_DELAY" 1 | tail -1) # lm2's echo is the last
A=$(mval "$tmp/lm1.plain" icmp_target_rtt_seconds_sum "${dl[@]}") \
    B=$(mval "$tmp/lm2.plain" icmp_target_rtt_seconds_sum "${dl[@]}") C=${h:-0} \
    check "  icmp_target_rtt_seconds_sum{delay} + the second scrape's hold ± 0.2 ms" \
    num_ok "_sum in lm1 and lm2, the responder's hold of lm2's echo" \
    "c > 0 && b - a > c - $RTT_TOL && b - a < c + $RTT_TOL"
check "  icmp_target_echoes_sent_total{delay6} +1" delta 1 icmp_target_echoes_sent_total "${dl6[@]}"
check "  icmp_target_replies_total{unreach,dest_host_unreachable} +1" \
    delta 1 icmp_target_replies_total "${ul[@]}" status=dest_host_unreachable
check "  icmp_target_rtt_avg_seconds{delay} = the first scrape's hold ± 0.2 ms" \
    rtt_near lm1 icmp_target_rtt_avg_seconds "$(holds "$mark0" "$NETLAB_V4_DELAY" 1 |
        head -1)" "$RTT_TOL" "${dl[@]}"
check "  no icmp_target_rtt_avg_seconds{unreach} (no reply)" \
    bash -c "! grep -q '^icmp_target_rtt_avg_seconds{.*host=\"unreach\"' '$tmp/lm1.plain'"
dupl=(target="$NETLAB_V4_DUP" host=dup)
h=$(holds "$mark0" "$NETLAB_V4_DUP" 3 | head -3)
dup_rtts() { # min, avg and max of lm1's dup target against the holds of its 3 echoes
    local st
    [ "$(grep -c . <<<"$h")" = 3 ] || {
        check_detail="$(grep -c . <<<"$h") replies to $NETLAB_V4_DUP in the responder's log"
        return 1
    }
    for st in min avg max; do
        rtt_near lm1 icmp_target_rtt_${st}_seconds "$(hstat $st <<<"$h")" "$RTT_TOL" \
            "${dupl[@]}" || return 1
    done
}
check "  3 echoes a scrape (dup host, 5 ms): icmp_target_rtt_min/avg/max = the holds' ± 0.2 ms" \
    dup_rtts
check "  ... icmp_target_rtt_stddev_seconds = the holds' ± 0.2 ms" \
    rtt_near lm1 icmp_target_rtt_stddev_seconds "$(hstat sd <<<"$h")" "$RTT_TOL" "${dupl[@]}"
# A job ends with its last reply, so the copy of that one arrives after it: of 3 echoes,
# the copies of the first 2 are the target's.
check "  icmp_target_duplicates_total{dup} +2 per scrape (3 echoes, copies of the first 2)" \
    delta 2 icmp_target_duplicates_total target="$NETLAB_V4_DUP" host=dup
for fam in ipv4 ipv6; do
    check "  icmp_exporter_socket_mode{family=$fam,mode=$want_mode} 1" \
        want_metric lm1 eq 1 icmp_exporter_socket_mode family=$fam mode="$want_mode"
done

# ---------------------------------------------------------------------------------------
# N: allowed_targets checks the address a name resolves to. Names come from a hosts file
# of our own, in an /etc of our own bind-mounted in a mount namespace the exporter alone
# runs in (nsswitch: files only; the lab has no route to any DNS server either).
any4=${NETLAB_V4_ANYIP_NET%.*/*}.77
cat >"$tmp/hosts" <<EOF
127.0.0.1 localhost
$NETLAB_V4_DELAY harmless.example.org
$any4 allowed.example.org
$NETLAB_V4_DELAY trusted.example.org
EOF
cat >"$tmp/cfg_n.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4" } } },
  "targets": [],
  "limits": { "allowed_targets": ["$NETLAB_V4_ANYIP_NET", "trusted.example.org"] }
}
EOF
# Over all of /etc, a directory with what name lookup reads: a fresh minimal Debian has
# no /etc/hosts to bind a file over.
mkdir -p "$tmp/etc"
cp "$tmp/hosts" "$tmp/etc/hosts"
printf 'hosts: files\n' >"$tmp/etc/nsswitch.conf"
for f in ld.so.cache host.conf gai.conf resolv.conf passwd group; do
    [ -e "/etc/$f" ] && cp "/etc/$f" "$tmp/etc/$f"
done
cat >"$tmp/with_hosts.sh" <<EOF
#!/bin/sh
mount --make-rprivate / && mount --bind "$tmp/etc" /etc && exec "$bin" "\$@"
EOF
printf '#!/bin/sh\nexec unshare -m "%s" "$@"\n' "$tmp/with_hosts.sh" >"$tmp/in_ns.sh"
chmod +x "$tmp/with_hosts.sh" "$tmp/in_ns.sh"
real_bin=$bin
bin=$tmp/in_ns.sh # start_exporter runs $bin; the PID stays the exporter's through the execs
check_detail=""
if start_exporter N "127.0.0.1" --config.file="$tmp/cfg_n.json"; then
    bin=$real_bin
    req n1 "$N_url/probe?target=harmless.example.org"
    check "N: harmless.example.org resolving to the delay host (outside the allow-list): 403" \
        want_code n1 403
    check "  the reason names the resolved address" want_body n1 "$NETLAB_V4_DELAY"
    req n2 "$N_url/probe?target=allowed.example.org"
    check "N: allowed.example.org resolving into the anyip range: 200, probe_success 1" \
        want_metric n2 eq 1 probe_success
    check "  probe_dns_lookup_time_seconds > 0 (it was resolved)" \
        want_metric n2 gt 0 probe_dns_lookup_time_seconds
    req n3 "$N_url/probe?target=trusted.example.org"
    check "N: a listed name is trusted wherever it resolves: 200, probe_success 1" \
        want_metric n3 eq 1 probe_success
    req n4 "$N_url/probe?target=$NETLAB_V4_DELAY"
    check "N: the delay host's address itself: 403" want_code n4 403
    stop_exporter N TERM 2
    check "N: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
else
    bin=$real_bin
    check "exporter N (own hosts file) serves" false
fi

# ---------------------------------------------------------------------------------------
# W: allowed_targets = the anyip ranges only; the delay host's range is refused.
cat >"$tmp/cfg_w.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s" } },
  "targets": [],
  "limits": { "allowed_targets": ["$NETLAB_V4_ANYIP_NET", "$NETLAB_V6_ANYIP_NET"] }
}
EOF
if start_exporter W "127.0.0.1" --config.file="$tmp/cfg_w.json"; then
    any4=${NETLAB_V4_ANYIP_NET%.*/*}.77
    any6=${NETLAB_V6_ANYIP_NET%/*}77
    for t in "$NETLAB_V4_DELAY" "$NETLAB_V6_DELAY" "$NETLAB_V4_FAR"; do
        req w "$W_url/probe?target=$t"
        check "allowed_targets = anyip only: $t -> 403" want_code w 403
    done
    before=$(wc -l <"$NETLAB_RESPONDER_LOG")
    for t in "$any4" "$any6"; do
        req w "$W_url/probe?target=$t"
        check "allowed_targets = anyip only: $t -> 200, probe_success 1" want_metric w eq 1 probe_success
    done
    sleep 0.05
    n=$(tail -n +"$((before + 1))" "$NETLAB_RESPONDER_LOG" | grep -cE " dst=($NETLAB_V4_DELAY|$NETLAB_V6_DELAY) ")
    check_detail="the responder logged $n packets to the delay host after the refusals"
    check "  the refused delay host got no packet" [ "$n" = 0 ]
    check "W is alive" alive W
    stop_exporter W TERM 2
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/W.log")"
    check "W: SIGTERM -> exit 0 within 2 s" [ "$stop_rc" = 0 ]
else
    check "exporter W (allowed_targets) serves" false
fi

# ---------------------------------------------------------------------------------------
# M: the scrape's timeout header bounds how long /metrics waits, not its probes: with a dead
# static target (the blackhole, a 3 s module) the scrape answers at
# X-Prometheus-Scrape-Timeout-Seconds minus the 500 ms offset, with what the round measured
# so far, while the round runs on for the module's 3 s (README: Rounds).
cat >"$tmp/cfg_m.json" <<EOF
{
  "modules": { "slow": { "timeout": "3s", "icmp": { "count": 3, "interval": "100ms" } } },
  "targets": [ { "target": "$NETLAB_V4_BLACKHOLE", "module": "slow" },
               { "target": "$NETLAB_V4_DELAY", "module": "slow" } ]
}
EOF
# The time to answer is curl's, from the request sent to the answer's end: what the server
# took, not what a busy machine took to start curl. The exporter's promise is the cut at
# 0.7 s instead of the module's 3 s; the 0.5 s offset after it is for rendering and
# sending, and the bound of 2 s tells the cut from the timeout with room for a machine that
# keeps the exporter waiting for a CPU.
if start_exporter M "127.0.0.1" --config.file="$tmp/cfg_m.json"; then
    t_round=$(date +%s.%N)
    req mh -H 'X-Prometheus-Scrape-Timeout-Seconds: 1.2' "$M_url/metrics"
    secs_h=$(req_secs mh)
    check "M: /metrics with a 1.2 s scrape timeout: 200" want_code mh 200
    check_detail="answered after ${secs_h}s"
    check "  answered at the 0.7 s cut (0.6..2 s), not after the 3 s module timeout" \
        awk -v s="$secs_h" 'BEGIN { exit !(s >= 0.6 && s < 2) }'
    check "  the blackhole: no icmp_target_success yet (its probe runs on), not a cut-short 0" \
        want_metric mh absent - icmp_target_success target="$NETLAB_V4_BLACKHOLE"
    check "  the delay host: all 3 echoes answered within the cut" \
        want_metric mh eq 3 icmp_target_replies_total target="$NETLAB_V4_DELAY" status=success
    check "  promtool clean" promtool_clean mh
    req mbad -H 'X-Prometheus-Scrape-Timeout-Seconds: soon' "$M_url/metrics"
    check "M: a bad scrape timeout header: 400" want_code mbad 400
    req mlow -H 'X-Prometheus-Scrape-Timeout-Seconds: 0.4' "$M_url/metrics"
    check "M: a scrape timeout below the offset: 400" want_code mlow 400
    req mn "$M_url/metrics"
    secs_n=$(awk -v a="$t_round" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')
    check_detail="answered ${secs_n}s after the round began"
    check "M: without the header, the scrape joins that round and answers at its end (2.9..6 s)" \
        awk -v s="$secs_n" 'BEGIN { exit !(s >= 2.9 && s < 6) }'
    check "  the blackhole now reads down: icmp_target_success 0" \
        want_metric mn eq 0 icmp_target_success target="$NETLAB_V4_BLACKHOLE"
    req mn2 "$M_url/metrics"
    secs_n=$(req_secs mn2)
    check_detail="answered after ${secs_n}s"
    check "M: a new round without the header: the module's 3 s apply (2.9..5 s)" \
        awk -v s="$secs_n" 'BEGIN { exit !(s >= 2.9 && s < 5) }'
    stop_exporter M TERM 2
    check "M: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
    check_detail=""
else
    check "exporter M serves" false
fi

# ---------------------------------------------------------------------------------------
# S: a /metrics body of many chunks (it is streamed: rendered and gzipped a piece at a time),
# in every encoding, and a reload while a slow client is reading it: the body it gets is
# whole (its scrape keeps the old target list), the next scrape has the new list.
n_big=3000
om_accept='application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'
big_targets() { # N: N anyip targets as JSON array items
    awk -v n="$1" -v p="${NETLAB_V4_ANYIP_NET%.*.*/*}" 'BEGIN { for (i = 1; i <= n; i++)
        printf "    { \"target\": \"%s.%d.%d\", \"labels\": { \"n\": \"%d\" } }%s\n",
            p, 100 + int(i / 256), i % 256, i, i < n ? "," : "" }'
}
write_big() { # N: the configuration file with N static targets
    { printf '{\n  "modules": { "icmp": { "timeout": "2s", "icmp": { "count": 1 } } },\n'
      printf '  "targets": [\n'; big_targets "$1"; printf '  ]\n}\n'; } >"$tmp/cfg_s.json"
}
# families ID N: every static-target family has N series (the histogram: N _count lines).
families() {
    local id=$1 n=$2 f c
    for f in icmp_target_success icmp_target_loss_ratio icmp_target_echoes_sent_total \
        icmp_target_rtt_seconds_count; do
        c=$(grep -c "^$f{" "$tmp/$id.plain")
        if [ "$c" != "$n" ]; then
            check_detail="request: $(reqdesc "$id")
$f has $c series, expected $n; body size $(wc -c <"$tmp/$id.plain")"
            return 1
        fi
    done
}
write_big "$n_big"
if start_exporter S "127.0.0.1" --config.file="$tmp/cfg_s.json" --web.enable-lifecycle; then
    req s1 "$S_url/metrics"
    check "S: $n_big static targets, /metrics: 200" want_code s1 200
    check_detail="headers: $(tr -d '\r' <"$tmp/s1.hdr" | tr '\n' ' ')"
    check "  HTTP/1.1: Transfer-Encoding chunked (streamed)" [ "$(hdr s1 Transfer-Encoding)" = chunked ]
    check "  every family has $n_big series" families s1 "$n_big"
    ok=$(grep -cE '^icmp_target_success\{.*\} 1$' "$tmp/s1.plain")
    check_detail="$ok of $n_big targets answered"
    check "  every target answered" [ "$ok" = "$n_big" ]
    check "  promtool clean" promtool_clean s1
    req s2 -H 'Accept-Encoding: gzip' "$S_url/metrics"
    check "  gzip: Content-Encoding gzip" want_header s2 Content-Encoding '^gzip$'
    check "  gzip: the stream decodes whole" gzip -t "$tmp/s2.body"
    check "  gzip: every family has $n_big series" families s2 "$n_big"
    check "  gzip: promtool clean" promtool_clean s2
    req s3 -H "Accept: $om_accept" -H 'Accept-Encoding: gzip' "$S_url/metrics"
    check "  OpenMetrics + gzip: every family has $n_big series" families s3 "$n_big"
    check_detail="last line: '$(tail -n1 "$tmp/s3.plain")'"
    check "  OpenMetrics + gzip: ends with # EOF" [ "$(tail -n1 "$tmp/s3.plain")" = "# EOF" ]
    check "  OpenMetrics: strict parser accepts it" pyrun labels "$tmp/s3.plain" om \
        icmp_target_success "{\"n\": \"$n_big\"}" "$(printf '{"target": "%s.%d.%d", "module": "icmp", "ip": "%s.%d.%d", "ip_version": "4", "n": "%d"}' \
        "${NETLAB_V4_ANYIP_NET%.*.*/*}" $((100 + n_big / 256)) $((n_big % 256)) \
        "${NETLAB_V4_ANYIP_NET%.*.*/*}" $((100 + n_big / 256)) $((n_big % 256)) "$n_big")"
    req s4 --http1.0 "$S_url/metrics"
    check "  HTTP/1.0 (no chunking: the body ends with the connection): whole" families s4 "$n_big"
    # The slow reader: it reads the first 64 KiB, then stops until the reload is done (a
    # small receive buffer keeps the server's stream waiting on it), then reads the rest.
    # Told when to go on, not timed: a busy machine cannot make it finish early.
    cat >"$tmp/slow.py" <<'EOF'
import http.client, os, socket, sys, time
port, out, go = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(30)
s.connect(("127.0.0.1", port))
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.sock = s
c.request("GET", "/metrics")
r = c.getresponse()
assert r.status == 200, f"HTTP {r.status}"
body = r.read(65536)
open(out + ".started", "w").close()
for _ in range(600):  # at most 30 s
    if os.path.exists(go):
        break
    time.sleep(0.05)
body += r.read()  # raises IncompleteRead if the body is cut short of its framing
open(out, "wb").write(body)
EOF
    "$py" "$tmp/slow.py" "$S_port" "$tmp/slow.plain" "$tmp/slow.go" 2>"$tmp/slow.err" &
    slow=$!
    for _ in $(seq 300); do
        [ -e "$tmp/slow.plain.started" ] || exited "$slow" && break
        sleep 0.1
    done
    state=reading
    [ -e "$tmp/slow.plain.started" ] || state="it has not read its first 64 KiB"
    exited "$slow" && state="it has ended: $(tail -c 300 "$tmp/slow.err")"
    check_detail=$state
    check "  the slow scrape is still reading when the reload comes" [ "$state" = reading ]
    write_big 10
    req rl -X POST "$S_url/-/reload"
    check "  reload to 10 targets during a slow scrape: 200" want_code rl 200
    touch "$tmp/slow.go"
    wait "$slow"
    slow_rc=$?
    printf 'GET %s/metrics, 64 KiB read before the reload, the rest after\n' "$S_url" >"$tmp/slow.req"
    check_detail="slow.py exit status $slow_rc: $(tail -c 300 "$tmp/slow.err")"
    check "  the slow scrape completes" [ "$slow_rc" = 0 ]
    check "  ... with the old list's $n_big series in every family" families slow "$n_big"
    check "  ... promtool clean" promtool_clean slow
    req s5 "$S_url/metrics"
    check "  the next scrape has the new list's 10" families s5 10
    check "S is alive" alive S
    stop_exporter S TERM 2
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/S.log")"
    check "S: SIGTERM -> exit 0 within 2 s" [ "$stop_rc" = 0 ]
    check_detail=""
    check "S logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/S.log'"
else
    check "exporter S ($n_big static targets) serves" false
fi

check "L is alive at the end" alive L
check_detail="L's stderr:
$(grep -vE 'level=(debug|info)' "$tmp/L.log" | head -20)"
check "L logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/L.log'"
stop_exporter L TERM 2
check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail:
$(tail -15 "$tmp/L.log")"
check "L: SIGTERM -> exit 0 within 2 s" [ "$stop_rc" = 0 ]
check_detail=""
check_done
