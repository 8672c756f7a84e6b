#!/usr/bin/env bash
# Moving from blackbox_exporter, against the real thing: Debian's blackbox_exporter (0.23)
# and icmp_exporter probe the same lab hosts (live: NETLAB_V4_DELAY, slow:
# NETLAB_V4_LATE, replying after NETLAB_LATE_MS, down: NETLAB_V4_BLACKHOLE, dropping
# silently), one Prometheus (Debian's) scrapes both with the shipped
# docker/prometheus/rules/blackbox_compat.rules.yml, its `for:` shortened to 5 s. Each
# exporter's configuration is then broken and reloaded (both keep the previous one).
# Through Prometheus' API only (promcheck.py compare):
# - within a bounded time, the same Blackbox* alerts fire for the same hosts for both
#   exporters (probe failed, slow probe and low uptime for the dead host, slow probe and
#   slow ping for the slow host, the reload failure under each exporter's metric name),
#   nothing else fires or is pending;
# - probe_icmp_duration_seconds{phase="rtt"} of the dead host is 0 at every scrape for
#   both (blackbox's meaning), and both measure the live and the slow host's delay.
# Job names are the test's own (no rule may assume one). Only 127.0.0.1 and NETLAB_*
# addresses are used; blackbox_exporter runs on a configuration of the test's own on a free
# loopback port; every process started here is stopped by its PID, and the temporary
# directory removed, on every exit path. About 40 s with the lab.
# Usage (inside a lab): netlab.sh run -- test_blackbox.sh ICMP_EXPORTER SOURCE_DIR
# NETLAB_* variables come from netlab.sh.
# shellcheck disable=SC2153
set -euo pipefail
bin=${1:?usage: netlab.sh run -- test_blackbox.sh ICMP_EXPORTER SOURCE_DIR}
src=${2:?usage: netlab.sh run -- test_blackbox.sh ICMP_EXPORTER SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"
# shellcheck source=proclib.sh
. "$here/proclib.sh"
# Debian's programs, whatever PATH prefers.
py=/usr/bin/python3
prometheus=/usr/bin/prometheus
blackbox=/usr/bin/prometheus-blackbox-exporter
compat_rules=$src/docker/prometheus/rules/blackbox_compat.rules.yml
# Scrapes every 4 s with a 4 s timeout: both exporters give a probe 4 s minus their 0.5 s
# offset = 3.5 s (the modules' timeout too), room for the slow host's 2 s reply.
interval=4s
# Alerts must all fire within this many seconds of Prometheus being ready: the first
# scrapes (4 s), the shortened `for:` (5 s), evaluations every second, and margin.
fire_within=60
t_start=$(date +%s.%N)

missing=""
for p in "$prometheus" "$blackbox"; do
    [ -x "$p" ] || missing+=" $p (apt-get install prometheus prometheus-blackbox-exporter)"
done
for p in "$py" curl; do command -v "$p" >/dev/null || missing+=" $p"; done
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi
if [ -z "${NETLAB_V4_LATE:-}" ]; then
    echo "FAIL - no NETLAB_* variables: run me with" \
        "tests/netlab/netlab.sh run -- $0 ICMP_EXPORTER SOURCE_DIR" >&2
    exit 1
fi
live=$NETLAB_V4_DELAY
slow=$NETLAB_V4_LATE
down=$NETLAB_V4_BLACKHOLE

tmp=$(mktemp -d)
ix_pid=""
bb_pid=""
prometheus_pid=""
helper_pid=""

cleanup() {
    [ -z "$helper_pid" ] || kill -TERM "$helper_pid" 2>/dev/null || true
    [ -z "$prometheus_pid" ] || stop "$prometheus_pid" 10
    [ -z "$bb_pid" ] || stop "$bb_pid" 5
    [ -z "$ix_pid" ] || stop "$ix_pid" 5
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME READY_PATH CMD...: starts CMD (with @PORT@ replaced by a free port) until it
# listens; sets port and pid. A port taken in between is retried, up to 5 times.
start() {
    local name=$1 path=$2 args i
    shift 2
    pid=""
    for _ in 1 2 3 4 5; do
        port=$(pick_port)
        args=()
        for i in "$@"; do args+=("${i//@PORT@/$port}"); done
        "${args[@]}" >"$tmp/$name.log" 2>&1 &
        pid=$!
        # Up to 30 s for it to answer 200, unless it exits first.
        for ((i = 0; i < 300; i++)); do
            exited "$pid" && break
            if curl -sf --noproxy '*' -o /dev/null --max-time 2 "http://127.0.0.1:$port$path"; then
                echo "ok   - $name serves on 127.0.0.1:$port (PID $pid)"
                return 0
            fi
            sleep 0.1
        done
        stop "$pid" 2
        pid=""
        grep -qiE 'in use|EADDRINUSE' "$tmp/$name.log" && continue
        check_detail="no 200 from http://127.0.0.1:$port$path within 30 s (or it exited)"
        check "$name starts on 127.0.0.1" false
        show_log "$name" "$tmp/$name.log"
        check_done
    done
    echo "FAIL - no free port for $name" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------
# The exporters, one ICMP module each, 3.5 s, one echo (blackbox sends one). (3500ms:
# icmp_exporter reads Prometheus durations, which have no fractions.)
cat >"$tmp/blackbox.yml" <<EOF
modules:
  icmp:
    prober: icmp
    timeout: 3500ms
    icmp:
      preferred_ip_protocol: ip4
EOF
cat >"$tmp/icmp_exporter.json" <<EOF
{ "modules": { "icmp": { "timeout": "3500ms", "icmp": { "preferred_ip_protocol": "ip4" } } } }
EOF
start blackbox_exporter /-/healthy "$blackbox" --config.file="$tmp/blackbox.yml" \
    --web.listen-address=127.0.0.1:@PORT@
bb_pid=$pid bb=127.0.0.1:$port
start icmp_exporter /-/healthy "$bin" --config.file="$tmp/icmp_exporter.json" \
    --web.listen-address=127.0.0.1:@PORT@ --web.enable-lifecycle
ix_pid=$pid ix=127.0.0.1:$port
[ "$bb" != "$ix" ] || { echo "FAIL - both exporters on $bb?" >&2; exit 1; }

# Both configurations broken and reloaded: each answers 500 and keeps the previous one.
echo 'modules: [' >"$tmp/blackbox.yml"
echo '{ "modules": ' >"$tmp/icmp_exporter.json"
for x in "blackbox_exporter $bb" "icmp_exporter $ix"; do
    read -r name addr <<<"$x"
    code=$(curl -s --noproxy '*' -o "$tmp/reload.out" -w '%{http_code}' -X POST \
        "http://$addr/-/reload" || true)
    check_detail="HTTP $code: $(head -c 500 "$tmp/reload.out")"
    check "$name: POST /-/reload of a broken configuration -> 500" [ "$code" = 500 ]
done
check_detail=""

# ---------------------------------------------------------------------------------------
# Prometheus: the compatible rules with `for:` shortened to 5 s; a /probe job and a
# /metrics job per exporter, under job names no rule knows.
mkdir -p "$tmp/rules"
sed -E 's/^(\s*for:\s*)[0-9]+[smh]$/\15s/' "$compat_rules" >"$tmp/rules/blackbox_compat.rules.yml"
n_for=$(grep -cE '^\s*for: 5s$' "$tmp/rules/blackbox_compat.rules.yml" || true)
check_detail="$(grep -nE '^\s*for:' "$compat_rules")"
check "the shipped rules' $n_for 'for:' durations shortened to 5 s, none left" \
    [ "$n_for" -gt 0 -a "$(grep -cE '^\s*for:' "$compat_rules")" = "$n_for" ]
check_detail=""
# probe_job NAME EXPORTER: a /probe job, blackbox_exporter's usual relabelling.
probe_job() {
    cat <<EOF
  - job_name: $1
    metrics_path: /probe
    params:
      module: [icmp]
    static_configs:
      - targets: ["$live", "$slow", "$down"]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: $2
EOF
}
{
    cat <<EOF
global:
  scrape_interval: $interval
  scrape_timeout: $interval
  evaluation_interval: 1s
rule_files:
  - $tmp/rules/blackbox_compat.rules.yml
scrape_configs:
  - job_name: bb_self
    static_configs:
      - targets: ["$bb"]
  - job_name: ix_self
    static_configs:
      - targets: ["$ix"]
EOF
    probe_job bb_ping "$bb"
    probe_job ix_ping "$ix"
} >"$tmp/prometheus.yml"
out=$(promtool check config "$tmp/prometheus.yml" 2>&1) && rc=0 || rc=$?
check_detail="$out
$(cat "$tmp/prometheus.yml")"
check "promtool check config: the test's configuration and the shortened rules" [ "$rc" = 0 ]
check_detail=""
[ "$rc" = 0 ] || check_done

start prometheus /-/ready "$prometheus" --config.file="$tmp/prometheus.yml" \
    --storage.tsdb.path="$tmp/data" --web.listen-address=127.0.0.1:@PORT@
prometheus_pid=$pid prom_url=http://127.0.0.1:$port
t_prom=$(date +%s.%N)

# ---------------------------------------------------------------------------------------
cmp_rc=0
promcheck compare "$prom_url" --hosts "live=$live,slow=$slow,down=$down" \
    --exporters "blackbox_exporter=$bb,icmp_exporter=$ix" \
    --jobs "bb_self=blackbox_exporter,bb_ping=blackbox_exporter,ix_self=icmp_exporter,ix_ping=icmp_exporter" \
    --timeout "$fire_within" || cmp_rc=$?
check "blackbox_exporter and icmp_exporter under the compatible rules (above)" [ "$cmp_rc" = 0 ]
if [ "$cmp_rc" != 0 ]; then
    show_log prometheus "$tmp/prometheus.log"
    show_log blackbox_exporter "$tmp/blackbox_exporter.log"
    show_log icmp_exporter "$tmp/icmp_exporter.log"
fi

# ---------------------------------------------------------------------------------------
# All three healthy to the end, and stop cleanly.
for x in "icmp_exporter $ix_pid" "blackbox_exporter $bb_pid" "prometheus $prometheus_pid"; do
    read -r name p <<<"$x"
    check_detail="$(tail -10 "$tmp/$name.log")"
    check "$name is alive" alive "$p"
done
check_detail="$(grep -E 'AddressSanitizer|runtime error:|LeakSanitizer' \
    "$tmp/icmp_exporter.log" | head -20 || true)"
check "icmp_exporter logged no sanitizer report" [ -z "$check_detail" ]
check_detail="$(grep -E 'level=(error|warn)' "$tmp/prometheus.log" | head -20 || true)"
check "Prometheus logged no warning or error" [ -z "$check_detail" ]
check_detail=""
stop "$prometheus_pid" 10
prometheus_pid=""
check_detail="exit status $stop_rc; $(tail -5 "$tmp/prometheus.log")"
check "Prometheus: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
stop "$bb_pid" 5
bb_pid=""
check_detail="exit status $stop_rc; $(tail -5 "$tmp/blackbox_exporter.log")"
check "blackbox_exporter: SIGTERM -> stopped" [ "$stop_rc" != killed ]
stop "$ix_pid" 5
ix_pid=""
check_detail="exit status $stop_rc; $(tail -5 "$tmp/icmp_exporter.log")"
check "icmp_exporter: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
check_detail=""
echo "time: $(elapsed "$t_start") s (Prometheus running for $(elapsed "$t_prom") s)"
check_done
