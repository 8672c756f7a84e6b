#!/usr/bin/env bash
# netlab.sh: the test network lab of icmp_exporter.
#
# Builds a small network out of network namespaces and veth pairs, with hosts whose ICMP
# behaviour is known (see README.md in this folder for the address table), runs a command
# inside the lab's client namespace, and tears everything down again, also when the
# command fails or is interrupted.
#
# Every name carries a per-run prefix ("nl" + 6 random hex digits), so concurrent labs never
# collide; and since the tests themselves run inside the lab's client namespace, every
# route to the lab's addresses exists only there: nothing of the host's own routing changes
# and two labs can use the same addresses at once. Traffic never leaves the namespaces.
#
# Usage:
#   netlab.sh run [--] CMD [ARG...]   create a lab, run CMD in its client namespace with the
#                                     lab's NETLAB_* variables, tear down, exit with CMD's status
#   netlab.sh up                      create a lab and print its variables (for hands-on use)
#   netlab.sh exec PREFIX [--] CMD    run CMD in the client namespace of a lab made by `up`
#   netlab.sh down PREFIX             tear a lab down
#   netlab.sh gc                      tear down labs whose owning process is gone
#
# Environment: NETLAB_RESPONDER (path of the built netlab_responder), NETLAB_RULES (a rules
# file replacing the default behaviours), NETLAB_STATE_DIR (default /run/netlab),
# NETLAB_REQUIRE=1 (fail instead of skipping when the lab cannot be built for want of
# privileges; CI sets it so a green run cannot hide skipped lab tests).
#
# Exit status: that of CMD for `run`; 77 when the caller lacks the privileges to create
# namespaces (ctest reports it as skipped); 1 for any other failure; 2 for bad usage.

set -euo pipefail

readonly SKIP=77
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
state_root=${NETLAB_STATE_DIR:-/run/netlab}

# ---------------------------------------------------------------------------------------
# The address plan. Everything is inside 198.18.0.0/15 and 2001:db8::/32. These values are
# exported to the command under the same names, and README.md documents each one.

# Links (/30 and /64 per veth pair): client side first.
NETLAB_V4_CLIENT_ANYIP=198.19.0.1 NETLAB_V4_ANYIP_LINK=198.19.0.2
NETLAB_V4_CLIENT_DELAY=198.19.0.5 NETLAB_V4_DELAY_LINK=198.19.0.6
NETLAB_V4_CLIENT_ROUTER=198.19.0.9 NETLAB_V4_ROUTER=198.19.0.10
v4_router_far=198.19.0.13 v4_far_link=198.19.0.14
NETLAB_V6_CLIENT_ANYIP=2001:db8:ff:1::1 NETLAB_V6_ANYIP_LINK=2001:db8:ff:1::2
NETLAB_V6_CLIENT_DELAY=2001:db8:ff:2::1 NETLAB_V6_DELAY_LINK=2001:db8:ff:2::2
NETLAB_V6_CLIENT_ROUTER=2001:db8:ff:3::1 NETLAB_V6_ROUTER=2001:db8:ff:3::2
v6_router_far=2001:db8:ff:4::1 v6_far_link=2001:db8:ff:4::2

# anyip: the kernel answers echo for every address of these prefixes.
NETLAB_V4_ANYIP_NET=198.18.0.0/16
NETLAB_V6_ANYIP_NET=2001:db8:a::/64

# delay: the userspace responder answers; per-address behaviour (the rules below).
NETLAB_V4_DELAY_NET=198.19.64.0/18
NETLAB_V6_DELAY_NET=2001:db8:d::/48
NETLAB_V4_FAST=198.19.64.9 NETLAB_V6_FAST=2001:db8:d::9
NETLAB_V4_DELAY=198.19.64.1 NETLAB_V6_DELAY=2001:db8:d::1
NETLAB_V4_JITTER=198.19.64.2 NETLAB_V6_JITTER=2001:db8:d::2
NETLAB_V4_LOSS=198.19.64.3 NETLAB_V6_LOSS=2001:db8:d::3
NETLAB_V4_DUP=198.19.64.4 NETLAB_V6_DUP=2001:db8:d::4
NETLAB_V4_CORRUPT=198.19.64.5 NETLAB_V6_CORRUPT=2001:db8:d::5
NETLAB_V4_WRONGID=198.19.64.6 NETLAB_V6_WRONGID=2001:db8:d::6
NETLAB_V4_LATE=198.19.64.7 NETLAB_V6_LATE=2001:db8:d::7
NETLAB_V4_TTL=198.19.64.8 NETLAB_V6_TTL=2001:db8:d::8
NETLAB_V4_BULK_NET=198.19.96.0/20 NETLAB_V6_BULK_NET=2001:db8:d:100::/64
# Hostile hosts (tests/hardening): replies from another address; forgers that answer and
# flood the client with forged packets claiming to come from the blackhole / the lossy host.
NETLAB_V4_SPOOF=198.19.64.10 NETLAB_V6_SPOOF=2001:db8:d::a
NETLAB_V4_FORGE_BH=198.19.64.11 NETLAB_V6_FORGE_BH=2001:db8:d::b
NETLAB_V4_FORGE_LOSS=198.19.64.12 NETLAB_V6_FORGE_LOSS=2001:db8:d::c
# Errors quoting only the IP header and 8 bytes of the echo (RFC 792's minimum, what older
# routers send), from the delay host's link address as a last-hop router would; a forger of
# such short errors claiming echoes to the blackhole; replies with TTL / hop limit 0.
NETLAB_V4_SHORT_ERR=198.19.64.13 NETLAB_V6_SHORT_ERR=2001:db8:d::d
NETLAB_V4_FORGE_SHORT=198.19.64.14 NETLAB_V6_FORGE_SHORT=2001:db8:d::e
NETLAB_V4_TTL0=198.19.64.15 NETLAB_V6_TTL0=2001:db8:d::f
NETLAB_DELAY_MS=20 NETLAB_JITTER_MS=5 NETLAB_LOSS_PCT=30 NETLAB_DUP_COPIES=1
NETLAB_LATE_MS=2000 NETLAB_REPLY_TTL=7 NETLAB_SHORT_DELAY_MS=5 NETLAB_BULK_DELAY_MS=100
NETLAB_FORGE_COUNT=32

# router: forwards to the far host, decrements TTL, and sends real ICMP errors.
NETLAB_V4_FAR=198.19.2.1 NETLAB_V6_FAR=2001:db8:f::1
NETLAB_V4_UNREACH_HOST=198.19.3.1 NETLAB_V6_UNREACH_ROUTE=2001:db8:e::1
NETLAB_V4_PROHIBITED=198.19.3.2 NETLAB_V6_PROHIBITED=2001:db8:e::2
NETLAB_V4_UNREACH_NET=198.19.3.3 NETLAB_V6_NO_ROUTE=2001:db8:e::3
NETLAB_V4_UNREACH_ARP=198.19.3.4 NETLAB_V6_UNREACH_ND=2001:db8:e::4
NETLAB_V4_BLACKHOLE_NET=198.19.4.0/24 NETLAB_V6_BLACKHOLE_NET=2001:db8:b::/64
NETLAB_V4_BLACKHOLE=198.19.4.1 NETLAB_V6_BLACKHOLE=2001:db8:b::1

# Link-local addresses on the client-router link (zone: the client's interface to the router,
# NETLAB_CLIENT_IF_ROUTER): the router's, and one nobody has (neighbour discovery fails).
NETLAB_V6_ROUTER_LL=fe80::ff:3:2 NETLAB_V6_LL_NOBODY=fe80::ff:3:dead

exported_vars() {
    compgen -v NETLAB_V4_
    compgen -v NETLAB_V6_
    echo NETLAB_DELAY_MS NETLAB_JITTER_MS NETLAB_LOSS_PCT NETLAB_DUP_COPIES NETLAB_LATE_MS \
        NETLAB_REPLY_TTL NETLAB_SHORT_DELAY_MS NETLAB_BULK_DELAY_MS NETLAB_FORGE_COUNT
}

default_rules() {
    local d=$NETLAB_DELAY_MS s=$NETLAB_SHORT_DELAY_MS
    cat <<EOF
# Generated by netlab.sh: the delay host's behaviour per destination (first match wins).
$NETLAB_V4_FAST delay=0
$NETLAB_V6_FAST delay=0
$NETLAB_V4_DELAY delay=${d}ms
$NETLAB_V6_DELAY delay=${d}ms
$NETLAB_V4_JITTER delay=${d}ms jitter=${NETLAB_JITTER_MS}ms
$NETLAB_V6_JITTER delay=${d}ms jitter=${NETLAB_JITTER_MS}ms
$NETLAB_V4_LOSS delay=${s}ms loss=$NETLAB_LOSS_PCT
$NETLAB_V6_LOSS delay=${s}ms loss=$NETLAB_LOSS_PCT
$NETLAB_V4_DUP delay=${s}ms dup=$NETLAB_DUP_COPIES
$NETLAB_V6_DUP delay=${s}ms dup=$NETLAB_DUP_COPIES
$NETLAB_V4_CORRUPT delay=1ms corrupt=1
$NETLAB_V6_CORRUPT delay=1ms corrupt=1
$NETLAB_V4_WRONGID delay=1ms wrongid=1
$NETLAB_V6_WRONGID delay=1ms wrongid=1
$NETLAB_V4_LATE delay=${NETLAB_LATE_MS}ms
$NETLAB_V6_LATE delay=${NETLAB_LATE_MS}ms
$NETLAB_V4_TTL delay=1ms ttl=$NETLAB_REPLY_TTL
$NETLAB_V6_TTL delay=1ms ttl=$NETLAB_REPLY_TTL
$NETLAB_V4_BULK_NET delay=${NETLAB_BULK_DELAY_MS}ms
$NETLAB_V6_BULK_NET delay=${NETLAB_BULK_DELAY_MS}ms
$NETLAB_V4_SPOOF delay=1ms src=$NETLAB_V4_FAST
$NETLAB_V6_SPOOF delay=1ms src=$NETLAB_V6_FAST
$NETLAB_V4_FORGE_BH delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V4_BLACKHOLE
$NETLAB_V6_FORGE_BH delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V6_BLACKHOLE
$NETLAB_V4_FORGE_LOSS delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V4_LOSS
$NETLAB_V6_FORGE_LOSS delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V6_LOSS
$NETLAB_V4_SHORT_ERR delay=1ms error=3/1 quote=0 src=$NETLAB_V4_DELAY_LINK
$NETLAB_V6_SHORT_ERR delay=1ms error=1/3 quote=0 src=$NETLAB_V6_DELAY_LINK
$NETLAB_V4_FORGE_SHORT delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V4_BLACKHOLE forge_quote=0
$NETLAB_V6_FORGE_SHORT delay=0 forge=$NETLAB_FORGE_COUNT forge_src=$NETLAB_V6_BLACKHOLE forge_quote=0
$NETLAB_V4_TTL0 delay=1ms ttl=0
$NETLAB_V6_TTL0 delay=1ms ttl=0
EOF
}

# ---------------------------------------------------------------------------------------

die() {
    echo "netlab: $*" >&2
    exit 1
}

usage() {
    sed -n 's/^# \{0,1\}//; /^Usage:/,/^$/p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# Skip (77) when we cannot create namespaces; fail instead under NETLAB_REQUIRE=1.
require_privileges() {
    local why=""
    if [ "$(id -u)" != 0 ]; then
        why="needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces"
    elif ! command -v ip >/dev/null 2>&1; then
        die "the 'ip' command (Debian package iproute2) is missing"
    else
        local probe="nlprobe$$"
        if ! ip netns add "$probe" 2>/dev/null; then
            why="cannot create network namespaces here ('ip netns add' failed)"
        else
            ip netns del "$probe"
        fi
    fi
    if [ -n "$why" ]; then
        echo "netlab: SKIP: $why" >&2
        if [ "${NETLAB_REQUIRE:-0}" = 1 ]; then
            die "NETLAB_REQUIRE=1 forbids skipping the lab"
        fi
        exit "$SKIP"
    fi
}

new_prefix() {
    local hex
    hex=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
    echo "nl$hex"
}

find_responder() {
    local candidate
    if [ -n "${NETLAB_RESPONDER:-}" ]; then
        [ -x "$NETLAB_RESPONDER" ] || die "NETLAB_RESPONDER=$NETLAB_RESPONDER is not executable"
        echo "$NETLAB_RESPONDER"
        return
    fi
    for candidate in "$here"/../../build/*/tests/netlab/netlab_responder; do
        if [ -x "$candidate" ]; then
            echo "$candidate"
            return
        fi
    done
    die "netlab_responder not found: build the project, or set NETLAB_RESPONDER"
}

# nsysctl NS key=value...: set sysctls of one namespace through /proc (procps may be absent).
nsysctl() {
    local ns=$1 script="" kv
    shift
    for kv in "$@"; do
        script+="echo ${kv#*=} > /proc/sys/$(echo "${kv%%=*}" | tr . /) && "
    done
    ip netns exec "$ns" sh -c "${script}true"
}

# link P A B ADDR_A4 ADDR_B4 ADDR_A6 ADDR_B6: a veth pair between namespaces P-A and P-B.
link() {
    local p=$1 a=$2 b=$3
    ip link add "$p-${a:0:1}${b:0:1}" netns "$p-$a" type veth peer name "$p-${b:0:1}${a:0:1}" \
        netns "$p-$b"
    ip -n "$p-$a" -b - <<EOF
link set $p-${a:0:1}${b:0:1} up
address add $4/30 dev $p-${a:0:1}${b:0:1}
address add $6/64 dev $p-${a:0:1}${b:0:1} nodad
EOF
    ip -n "$p-$b" -b - <<EOF
link set $p-${b:0:1}${a:0:1} up
address add $5/30 dev $p-${b:0:1}${a:0:1}
address add $7/64 dev $p-${b:0:1}${a:0:1} nodad
EOF
}

lab_up() {
    local p=$1 dir=$state_root/$1 responder ns
    responder=$(find_responder)
    mkdir -p "$dir"
    echo "$owner" >"$dir/owner"
    # The test run it belongs to (ctest's ICMPX_TEST_RUN), for tests/suite_leftovers.sh.
    echo "${ICMPX_TEST_RUN:-}" >"$dir/run"

    for ns in client anyip delay router far; do
        ip netns add "$p-$ns"
        ip -n "$p-$ns" link set lo up
        nsysctl "$p-$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done
    link "$p" client anyip "$NETLAB_V4_CLIENT_ANYIP" "$NETLAB_V4_ANYIP_LINK" \
        "$NETLAB_V6_CLIENT_ANYIP" "$NETLAB_V6_ANYIP_LINK"
    link "$p" client delay "$NETLAB_V4_CLIENT_DELAY" "$NETLAB_V4_DELAY_LINK" \
        "$NETLAB_V6_CLIENT_DELAY" "$NETLAB_V6_DELAY_LINK"
    link "$p" client router "$NETLAB_V4_CLIENT_ROUTER" "$NETLAB_V4_ROUTER" \
        "$NETLAB_V6_CLIENT_ROUTER" "$NETLAB_V6_ROUTER"
    link "$p" router far "$v4_router_far" "$v4_far_link" "$v6_router_far" "$v6_far_link"
    ip -n "$p-router" address add "$NETLAB_V6_ROUTER_LL/64" dev "$p-rc" nodad

    # client: where the tests run. Every lab prefix is routed to its host.
    ip -n "$p-client" -b - <<EOF
route add $NETLAB_V4_ANYIP_NET via $NETLAB_V4_ANYIP_LINK
route add $NETLAB_V4_DELAY_NET via $NETLAB_V4_DELAY_LINK
route add 198.19.2.0/24 via $NETLAB_V4_ROUTER
route add 198.19.3.0/24 via $NETLAB_V4_ROUTER
route add $NETLAB_V4_BLACKHOLE_NET via $NETLAB_V4_ROUTER
route add $NETLAB_V6_ANYIP_NET via $NETLAB_V6_ANYIP_LINK
route add $NETLAB_V6_DELAY_NET via $NETLAB_V6_DELAY_LINK
route add 2001:db8:f::/64 via $NETLAB_V6_ROUTER
route add 2001:db8:e::/64 via $NETLAB_V6_ROUTER
route add $NETLAB_V6_BLACKHOLE_NET via $NETLAB_V6_ROUTER
EOF
    # Neighbour discovery toward the router link gives up after one probe of 100 ms, so an
    # echo to NETLAB_V6_LL_NOBODY gets its "address unreachable" at once.
    nsysctl "$p-client" "net.ipv6.neigh.$p-cr.mcast_solicit=1" \
        "net.ipv6.neigh.$p-cr.retrans_time_ms=100"

    # anyip: a local route on lo makes the kernel own (and answer for) whole prefixes.
    ip -n "$p-anyip" -b - <<EOF
route add local $NETLAB_V4_ANYIP_NET dev lo
route add local $NETLAB_V6_ANYIP_NET dev lo
EOF
    # Avoid the kernel's ICMP rate limit skewing benchmarks of many targets.
    nsysctl "$p-anyip" net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0

    # delay: the kernel owns the prefixes but does not answer; the responder does.
    ip -n "$p-delay" -b - <<EOF
route add local $NETLAB_V4_DELAY_NET dev lo
route add local $NETLAB_V6_DELAY_NET dev lo
EOF
    nsysctl "$p-delay" net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1

    # router: forwards to far; ICMP errors for chosen addresses; a silent blackhole; two
    # on-link addresses nobody owns, so ARP/ND fail and it reports host unreachable.
    # IPv4 errors come from nftables reject rules rather than unreachable/prohibit routes:
    # the kernel limits the latter (ip_error) to about one per second and source with a
    # global, not per-namespace, setting (net.ipv4.route.error_cost), and tests need an
    # error for every probe. IPv6 unreachable/prohibit routes have no such limit.
    ip -n "$p-router" -b - <<EOF
route add 198.19.2.0/24 via $v4_far_link
route add 198.19.3.0/24 via $v4_far_link
route add $NETLAB_V4_UNREACH_ARP dev $p-rf
route add blackhole $NETLAB_V4_BLACKHOLE_NET
route add 2001:db8:f::/64 via $v6_far_link
route add unreachable $NETLAB_V6_UNREACH_ROUTE
route add prohibit $NETLAB_V6_PROHIBITED
route add $NETLAB_V6_UNREACH_ND dev $p-rf
route add blackhole $NETLAB_V6_BLACKHOLE_NET
EOF
    ip netns exec "$p-router" nft -f - <<EOF
table ip netlab {
    chain forward {
        type filter hook forward priority 0; policy accept;
        ip daddr $NETLAB_V4_UNREACH_HOST reject with icmp type host-unreachable
        ip daddr $NETLAB_V4_PROHIBITED reject with icmp type admin-prohibited
        ip daddr $NETLAB_V4_UNREACH_NET reject with icmp type net-unreachable
    }
}
EOF
    # Errors for every probe (no ICMP rate limit), and neighbour resolution that gives up
    # after one probe of 100 ms instead of three of one second.
    nsysctl "$p-router" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0 \
        net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000 \
        "net.ipv4.neigh.$p-rf.mcast_solicit=1" "net.ipv4.neigh.$p-rf.retrans_time_ms=100" \
        "net.ipv6.neigh.$p-rf.mcast_solicit=1" "net.ipv6.neigh.$p-rf.retrans_time_ms=100"

    # far: two hops away, answers with the kernel.
    ip -n "$p-far" -b - <<EOF
address add $NETLAB_V4_FAR/32 dev lo
address add $NETLAB_V6_FAR/128 dev lo
route add default via $v4_router_far
route add default via $v6_router_far
EOF

    if [ -n "${NETLAB_RULES:-}" ]; then
        cp "$NETLAB_RULES" "$dir/responder.rules"
    else
        default_rules >"$dir/responder.rules"
    fi
    : >"$dir/responder.log"
    # Real-time priority keeps the responder's replies punctual when the machine is busy
    # (parallel tests, sanitizers); without chrt it runs at normal priority.
    local -a rt=()
    if command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null; then
        rt=(chrt -f 10)
    fi
    ip netns exec "$p-delay" "${rt[@]}" "$responder" --rules "$dir/responder.rules" \
        --log "$dir/responder.log" --pidfile "$dir/responder.pid" \
        </dev/null >>"$dir/responder.out" 2>&1 &
    echo $! >"$dir/responder.launcher"
    local tries=0
    until [ -s "$dir/responder.pid" ]; do
        if ! kill -0 "$(cat "$dir/responder.launcher")" 2>/dev/null; then
            cat "$dir/responder.out" >&2 || true
            die "the responder exited during start-up"
        fi
        tries=$((tries + 1))
        [ "$tries" -le 200 ] || die "the responder did not start within 10 s"
        sleep 0.05
    done
}

# In a subshell: teardown must go to the end whatever fails on the way (errexit off),
# without switching errexit off for the caller.
lab_down() (
    local p=$1 dir=$state_root/$1 pid ns tries f
    set +e
    # The responder first (by its recorded PID), then anything else still inside the lab's
    # namespaces: every such process was started by this lab.
    for f in "$dir/responder.launcher" "$dir/responder.pid"; do
        pid=$(cat "$f" 2>/dev/null) && kill -TERM "$pid" 2>/dev/null
    done
    for ns in client anyip delay router far; do
        ip netns list 2>/dev/null | grep -q "^$p-$ns\b" || continue
        for pid in $(ip netns pids "$p-$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null || true
        done
    done
    for ns in client anyip delay router far; do
        ip netns list 2>/dev/null | grep -q "^$p-$ns\b" || continue
        tries=0
        while [ -n "$(ip netns pids "$p-$ns" 2>/dev/null)" ] && [ "$tries" -lt 40 ]; do
            sleep 0.05
            tries=$((tries + 1))
        done
        for pid in $(ip netns pids "$p-$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$p-$ns" 2>/dev/null || echo "netlab: could not delete $p-$ns" >&2
    done
    if [ -n "${NETLAB_KEEP_LOG:-}" ] && [ -f "$dir/responder.log" ]; then
        cp "$dir/responder.log" "$NETLAB_KEEP_LOG"
    fi
    rm -rf "$dir"
)

# Labs whose owner died without tearing down (a SIGKILLed test, a ctest timeout).
lab_gc() {
    local dir owner_pid
    [ -d "$state_root" ] || return 0
    for dir in "$state_root"/nl*; do
        [ -d "$dir" ] || continue
        # No owner file yet: a lab being created right now.
        owner_pid=$(cat "$dir/owner" 2>/dev/null) || continue
        if ! kill -0 "$owner_pid" 2>/dev/null; then
            echo "netlab: removing stale lab $(basename "$dir")" >&2
            lab_down "$(basename "$dir")"
        fi
    done
}

print_env() {
    local p=$1 v
    echo "NETLAB_PREFIX=$p"
    echo "NETLAB_NS_CLIENT=$p-client"
    echo "NETLAB_NS_DELAY=$p-delay"
    echo "NETLAB_NS_ROUTER=$p-router"
    echo "NETLAB_NS_ANYIP=$p-anyip"
    echo "NETLAB_NS_FAR=$p-far"
    echo "NETLAB_STATE=$state_root/$p"
    echo "NETLAB_RESPONDER_LOG=$state_root/$p/responder.log"
    echo "NETLAB_CLIENT_IF_ROUTER=$p-cr"
    for v in $(exported_vars); do
        echo "$v=${!v}"
    done
}

# in_client P CMD...: run CMD in the lab's client namespace with the lab's variables.
in_client() {
    local p=$1
    shift
    local -a vars
    mapfile -t vars < <(print_env "$p")
    ip netns exec "$p-client" env "${vars[@]}" "$@"
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
case $cmd in
run)
    [ "${1:-}" != -- ] || shift
    [ $# -gt 0 ] || usage
    require_privileges
    owner=$$
    lab_gc
    prefix=$(new_prefix)
    trap 'lab_down "$prefix"' EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    lab_up "$prefix"
    # In the background with `wait`, so a signal to us is handled at once (bash defers traps
    # until a foreground child ends); the EXIT trap then stops the command with the lab.
    in_client "$prefix" "$@" <&0 &
    set +e
    wait $!
    rc=$?
    set -e
    exit "$rc"
    ;;
up)
    require_privileges
    owner=1 # init: such a lab lives until `down`
    lab_gc
    prefix=$(new_prefix)
    trap 'lab_down "$prefix"' ERR
    lab_up "$prefix"
    trap - ERR
    print_env "$prefix"
    ;;
exec)
    [ $# -ge 2 ] || usage
    prefix=$1
    shift
    [ "${1:-}" != -- ] || shift
    [ -d "$state_root/$prefix" ] || die "no lab named $prefix"
    in_client "$prefix" "$@"
    ;;
down)
    [ $# -eq 1 ] || usage
    [ -d "$state_root/$1" ] || die "no lab named $1"
    lab_down "$1"
    ;;
gc)
    owner=$$
    lab_gc
    ;;
*)
    usage
    ;;
esac
