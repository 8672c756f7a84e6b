#!/usr/bin/env bash
# Name resolution under a name server that never answers (issue 16): the real exporter in a
# network namespace of this test, whose resolv.conf (/etc/netns/NAME/, which `ip netns exec`
# mounts over /etc) names 198.18.0.53, routed into a dummy device that drops everything, so
# every DNS lookup hangs for the resolver's own timeout (timeout:5 attempts:2, 10 s and more).
# The namespace's hosts file answers fast.lab at once (nsswitch: files dns). Checked:
#   - a /probe of a hanging name ends at its deadline, "resolution timed out", and is counted
#   - names that hang do not hold up names that resolve, nor IP literals
#   - a full queue answers 503 with Retry-After at once, and is counted
#   - a name a names-only allow-list refuses is refused before any lookup (403 at once)
#   - SIGTERM with lookups hanging exits within the README's 2 s
# Traffic: loopback and 198.18.0.0/15 inside the namespace only. Needs root (namespaces).
# Usage: test_resolver.sh ICMP_EXPORTER
# shellcheck disable=SC2154,SC2034
set -uo pipefail
bin=${1:?usage: test_resolver.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ -z "${RESOLVER_TEST_NS:-}" ]; then
    # Outside: make the namespace, run this script again inside it, tear it down.
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
        echo "SKIP - needs root and ip(8) to make a network namespace"
        exit 77
    fi
    ns=icmpx_resolver_$$
    etc=/etc/netns/$ns
    teardown() {
        ip netns del "$ns" 2>/dev/null
        rm -rf "$etc"
    }
    trap teardown EXIT
    trap 'exit 130' INT TERM
    ip netns add "$ns" || {
        echo "SKIP - cannot make a network namespace"
        exit 77
    }
    mkdir -p "$etc"
    printf 'nameserver 198.18.0.53\noptions timeout:5 attempts:2\n' >"$etc/resolv.conf"
    printf '127.0.0.1 localhost\n198.18.0.1 fast.lab\n' >"$etc/hosts"
    # The name server's address sits behind a veth whose other end has no address: a static
    # neighbour entry sends the queries out, and nothing ever answers (no ARP failure, no
    # ICMP error to cut the wait short).
    ip -n "$ns" link set lo up &&
        ip -n "$ns" link add dns0 type veth peer name dns1 &&
        ip -n "$ns" addr add 198.18.0.1/24 dev dns0 &&
        ip -n "$ns" link set dns0 up && ip -n "$ns" link set dns1 up &&
        ip -n "$ns" neigh add 198.18.0.53 lladdr 02:00:00:00:00:53 dev dns0 || {
        echo "FAIL - cannot set the namespace up" >&2
        exit 1
    }
    RESOLVER_TEST_NS=$ns ip netns exec "$ns" "$0" "$@"
    exit $?
fi

# ---------------------------------------------------------------------------------------
# Inside the namespace.
# shellcheck source=lib.sh
. "$here/lib.sh"

# A module of 2 s; 400 static targets whose names hang (32 run, 256 wait, the rest refused).
cat >"$tmp/cfg.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s", "icmp": { "preferred_ip_protocol": "ip4" } } },
  "limits": { "max_concurrent_probes": 1000, "max_targets_per_scrape": 10000 }
}
EOF
{
    printf '{ "modules": { "icmp": { "timeout": "3s" } }, "targets": ['
    for i in $(seq 400); do
        [ "$i" = 1 ] || printf ','
        printf '{ "target": "static%d.lab" }' "$i"
    done
    printf '], "limits": { "max_concurrent_probes": 1000, "max_targets_per_scrape": 10000 } }\n'
} >"$tmp/cfg_many.json"
cat >"$tmp/cfg_names.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s" } },
  "limits": { "allowed_targets": ["fast.lab", "*.ok.lab"] }
}
EOF

# probe_bg ID TARGET: a /probe in the background (its answer in $tmp/ID.*); wait_bg waits
# for them (not for the exporters, which are background jobs too).
bg=()
probe_bg() {
    req "$1" "$A_url/probe?target=$2&debug=true" &
    bg+=($!)
}
wait_bg() {
    wait "${bg[@]}"
    bg=()
}

# --- A: deadlines, names that hang beside names that resolve and literals, shutdown.
start_exporter A 127.0.0.1 --config.file="$tmp/cfg.json" || {
    check "A serves in the namespace" false
    check_done
}
# Ten names that hang: more than the old pool's two threads.
for i in $(seq 10); do probe_bg slow$i "hang$i.lab"; done
sleep 0.5
req fast "$A_url/probe?target=fast.lab"
check_detail="$(reqdesc fast)"
check "fast.lab (hosts file) while 10 names hang: 200 in < 1.5 s ($(req_secs fast) s)" \
    eval 'want_code fast 200 && num_ok "" "$(req_secs fast) < 1.5"'
check "  probe_success 1" want_metric fast eq 1 probe_success
req lit "$A_url/probe?target=198.18.0.1"
check "an IP literal while names hang: 200 in < 1.5 s ($(req_secs lit) s)" \
    eval 'want_code lit 200 && num_ok "" "$(req_secs lit) < 1.5"'
wait_bg
check_detail="$(reqdesc slow1)"
check "a hanging name: 200 within its 2 s deadline (+1.5 s) ($(req_secs slow1) s)" \
    eval 'want_code slow1 200 && num_ok "" "$(req_secs slow1) < 3.5"'
check "  the debug log says the resolution timed out" grep -q '^Resolution timed out' "$tmp/slow1.plain"
check "  probe_success 0" want_metric slow1 eq 0 probe_success
req m1 "$A_url/metrics"
check "icmp_exporter_resolver_timeouts_total counts the 10 timed-out names" \
    want_metric m1 eq 10 icmp_exporter_resolver_timeouts_total
# Shutdown with lookups hanging: the README promises 2 s.
for i in $(seq 11 14); do probe_bg slow$i "hang$i.lab"; done
sleep 0.5
stop_exporter A TERM 8
check "SIGTERM with 4 names hanging: exit 0 within 2 s (+0.5 s) (took $stop_secs s)" \
    eval '[ "$stop_rc" = 0 ] && num_ok "" "$stop_secs < 2.5"'
wait_bg

# --- B: a full queue (400 static names that hang, scraped twice: 32 lookups running, 256
# waiting, the rest refused).
start_exporter B 127.0.0.1 --config.file="$tmp/cfg_many.json" || {
    check "B serves in the namespace" false
    check_done
}
# A scrape's round fills the queue, its threads then take 32 out of it; 60 /probe of
# hanging names fill it again (a second scrape would only join the running round).
req_max_time=20 req scrape "$B_url/metrics" &
bg+=($!)
sleep 0.5
for i in $(seq 60); do
    req "fill$i" "$B_url/probe?target=fill$i.lab" &
    bg+=($!)
done
sleep 0.5
req full "$B_url/probe?target=another.lab"
check_detail="$(reqdesc full)"
check "/probe of a name while the queue is full: 503 at once ($(req_secs full) s)" \
    eval 'want_code full 503 && num_ok "" "$(req_secs full) < 1"'
check "  with Retry-After" [ -n "$(hdr full Retry-After)" ]
check "  and a reason" grep -q 'name lookups' "$tmp/full.plain"
req lit2 "$B_url/probe?target=127.0.0.1"
check "an IP literal while the queue is full: 200" want_code lit2 200
wait_bg
check "the scrape of 400 hanging names: 200" want_code scrape 200
check "  a static target whose lookup timed out: icmp_target_success 0" \
    want_metric scrape eq 0 icmp_target_success target=static1.lab
check "  one refused by the full queue was not probed: no sample (not a false 0)" \
    want_metric scrape absent - icmp_target_success target=static400.lab
req m2 "$B_url/metrics"
check "icmp_exporter_resolver_queue_full_total counts the refused lookups (>= 113 + 1)" \
    want_metric m2 ge 114 icmp_exporter_resolver_queue_full_total
stop_exporter B TERM 8
check "B: SIGTERM: exit 0 in < 2.5 s (took $stop_secs s)" \
    eval '[ "$stop_rc" = 0 ] && num_ok "" "$stop_secs < 2.5"'

# --- C: a names-only allow-list refuses an unlisted name without looking it up.
start_exporter C 127.0.0.1 --config.file="$tmp/cfg_names.json" || {
    check "C serves in the namespace" false
    check_done
}
req deny "$C_url/probe?target=hang.lab"
check_detail="$(reqdesc deny)"
check "names-only allow-list, unlisted name: 403 at once ($(req_secs deny) s)" \
    eval 'want_code deny 403 && num_ok "" "$(req_secs deny) < 1"'
req ok "$C_url/probe?target=fast.lab"
check "  a listed name is probed: 200, probe_success 1" want_metric ok eq 1 probe_success
req wild "$C_url/probe?target=x.ok.lab&debug=true"
check "  a name matching *.ok.lab is looked up (times out: 200)" \
    eval 'want_code wild 200 && grep -q "^Resolution timed out" "$tmp/wild.plain"'
stop_exporter C TERM 8

# Threads left in getaddrinfo at exit, requests answered by the timer and freed by their
# thread later: no sanitizer may object.
for n in A B C; do
    check "$n logged no sanitizer report" \
        bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer|ThreadSanitizer' '$tmp/$n.log'"
done

check_done
