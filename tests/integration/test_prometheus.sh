#!/usr/bin/env bash
# A real Prometheus server (Debian's prometheus) scrapes the real exporter in the lab, with
# the shipped scrape configuration (docker/prometheus/prometheus.yml: its /probe relabelling
# and its /metrics job; only addresses, targets, intervals and the rules path substituted)
# and the shipped rules. Then, through Prometheus' HTTP API only:
# - every target is up at every scrape, and Prometheus counted no scrape error;
# - probe_success / icmp_target_success: 1 for the live lab hosts, 0 for the blackhole;
# - the lossy host's loss ratio is near NETLAB_LOSS_PCT, the median RTT from both histograms
#   near NETLAB_DELAY_MS, the echo counters' rate() as sent;
# - the recording rules have data, and exactly the expected alerts are pending;
# - every PromQL expression of the Grafana dashboard parses and returns data.
# Only 127.0.0.1 and NETLAB_* addresses are used; every process started here is stopped by
# its PID, and the temporary directory removed, on every exit path.
# Usage (inside a lab): netlab.sh run -- test_prometheus.sh ICMP_EXPORTER SOURCE_DIR
# NETLAB_* variables come from netlab.sh.
# shellcheck disable=SC2153
set -euo pipefail
bin=${1:?usage: netlab.sh run -- test_prometheus.sh ICMP_EXPORTER SOURCE_DIR}
src=${2:?usage: netlab.sh run -- test_prometheus.sh ICMP_EXPORTER SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"
# Debian's programs, whatever PATH prefers.
py=/usr/bin/python3
prometheus=/usr/bin/prometheus
shipped_config=$src/docker/prometheus/prometheus.yml
rules_dir=$src/docker/prometheus/rules
dashboard=$src/docker/grafana/dashboards/icmp_exporter.json
# Scrapes of every target before the checks: 20 scrapes x 20 echoes = 400 echoes of the
# lossy host per series, enough for a tight loss tolerance (see promcheck.py lab).
samples=20
t_start=$(date +%s.%N)

missing=""
[ -x "$prometheus" ] || missing+=" $prometheus (apt-get install prometheus)"
command -v promtool >/dev/null || missing+=" promtool (apt-get install prometheus)"
[ -x "$py" ] || missing+=" $py"
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi
if [ -z "${NETLAB_V4_DELAY:-}" ]; then
    echo "FAIL - no NETLAB_* variables: run me with" \
        "tests/netlab/netlab.sh run -- $0 ICMP_EXPORTER SOURCE_DIR" >&2
    exit 1
fi

tmp=$(mktemp -d)
exporter_pid=""
prometheus_pid=""
helper_pid=""

# stop PID LIMIT_S: SIGTERM, then SIGKILL after LIMIT_S seconds; sets stop_rc.
stop() {
    local pid=$1 limit=$2 i
    stop_rc=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 20; i++)); do
        exited "$pid" && break
        sleep 0.05
    done
    if ! exited "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        stop_rc=killed
    fi
    if wait "$pid" 2>/dev/null; then
        stop_rc=${stop_rc:-0}
    else
        stop_rc=${stop_rc:-$?}
    fi
}

cleanup() {
    [ -z "$helper_pid" ] || kill -TERM "$helper_pid" 2>/dev/null || true
    [ -z "$prometheus_pid" ] || stop "$prometheus_pid" 10
    [ -z "$exporter_pid" ] || stop "$exporter_pid" 5
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

alive() { ! exited "$1"; }

# promcheck ARGS...: runs promcheck.py in the background and waits for it, so that SIGTERM
# or SIGINT runs the cleanup at once (bash runs traps only between foreground commands).
promcheck() {
    "$py" "$here/promcheck.py" "$@" &
    helper_pid=$!
    local rc=0
    wait "$helper_pid" || rc=$?
    helper_pid=""
    return "$rc"
}

# show_log NAME FILE: the last lines of a log, indented, on stderr.
show_log() {
    echo "       | --- $1 ($2), last 30 lines:" >&2
    tail -30 "$2" 2>/dev/null | sed 's/^/       | /' >&2
}

# ---------------------------------------------------------------------------------------
# The exporter: static targets on the delay host, the lossy host and the blackhole; one
# module, icmp (the one the shipped /probe job asks for), sending 20 echoes 20 ms apart so
# each probe measures loss, with buckets 0.5 ms wide around 5 ms and 20 ms. Timing: 19 x
# 20 ms + 150 ms per echo fits the 600 ms timeout, which fits the 2 s scrape timeout (with
# --timeout-offset=200ms the scrape header allows 1.8 s), so a probe of the blackhole and a
# /metrics scrape, which waits for it, both end well within the scrape timeout, also on a
# busy machine (promcheck.py's SCRAPE_S).
cat >"$tmp/exporter.json" <<EOF
{
  "modules": {
    "icmp": {
      "timeout": "600ms",
      "icmp": {
        "count": 20, "interval": "20ms", "echo_timeout": "150ms",
        "buckets": [0.0005, 0.001, 0.002, 0.003, 0.004, 0.0045, 0.005, 0.0055, 0.006, 0.007,
                    0.008, 0.01, 0.015, 0.018, 0.019, 0.0195, 0.02, 0.0205, 0.021, 0.022,
                    0.025, 0.03, 0.05, 0.1, 0.25, 0.5, 1]
      }
    }
  },
  "targets": [
    { "target": "$NETLAB_V4_DELAY", "labels": { "host": "delay" } },
    { "target": "$NETLAB_V4_LOSS", "labels": { "host": "loss" } },
    { "target": "$NETLAB_V4_BLACKHOLE", "labels": { "host": "blackhole" } }
  ]
}
EOF
for _ in 1 2 3 4 5; do
    exporter_port=$(pick_port)
    "$bin" --config.file="$tmp/exporter.json" --web.listen-address="127.0.0.1:$exporter_port" \
        --timeout-offset=200ms >"$tmp/exporter.out" 2>"$tmp/exporter.log" &
    exporter_pid=$!
    if promcheck ready "http://127.0.0.1:$exporter_port/-/healthy" --timeout 15 \
        2>"$tmp/ready.err"; then
        break
    fi
    stop "$exporter_pid" 2
    exporter_pid=""
    grep -qiE 'in use|EADDRINUSE' "$tmp/exporter.log" && continue
    check_detail="$(cat "$tmp/ready.err")"
    check "the exporter serves on 127.0.0.1" false
    show_log exporter "$tmp/exporter.log"
    check_done
done
[ -n "$exporter_pid" ] || { echo "FAIL - no free port for the exporter" >&2; exit 1; }
exporter=127.0.0.1:$exporter_port
echo "ok   - the exporter serves on $exporter (PID $exporter_pid)"

# ---------------------------------------------------------------------------------------
# Prometheus, configured from the shipped file; its data in the temporary directory.
probe_targets=$NETLAB_V4_DELAY,$NETLAB_V6_DELAY,$NETLAB_V4_LOSS,$NETLAB_V4_BLACKHOLE
for _ in 1 2 3 4 5; do
    prometheus_port=$(pick_port)
    [ "$prometheus_port" != "$exporter_port" ] || continue
    promcheck config "$shipped_config" "$tmp/prometheus.yml" \
        --prometheus "127.0.0.1:$prometheus_port" --exporter "$exporter" \
        --rules-dir "$rules_dir" --probe-targets "$probe_targets"
    out=$(promtool check config "$tmp/prometheus.yml" 2>&1) && rc=0 || rc=$?
    check_detail="$out
--- generated configuration:
$(cat "$tmp/prometheus.yml")"
    check "promtool check config: the test's configuration (from the shipped one) is valid" \
        [ "$rc" = 0 ]
    check_detail=""
    [ "$rc" = 0 ] || check_done
    t_prom=$(date +%s.%N)
    "$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
        --web.listen-address="127.0.0.1:$prometheus_port" >"$tmp/prometheus.log" 2>&1 &
    prometheus_pid=$!
    if promcheck ready "http://127.0.0.1:$prometheus_port/-/ready" --timeout 30 \
        2>"$tmp/ready.err"; then
        break
    fi
    stop "$prometheus_pid" 5
    prometheus_pid=""
    grep -qiE 'address already in use' "$tmp/prometheus.log" && continue
    check_detail="$(cat "$tmp/ready.err")"
    check "Prometheus starts on 127.0.0.1" false
    show_log prometheus "$tmp/prometheus.log"
    check_done
done
[ -n "$prometheus_pid" ] || { echo "FAIL - no free port for Prometheus" >&2; exit 1; }
prom_url=http://127.0.0.1:$prometheus_port
echo "ok   - Prometheus $("$prometheus" --version 2>&1 | awk 'NR == 1 { print $3 }') ready on" \
    "127.0.0.1:$prometheus_port (PID $prometheus_pid)"

# ---------------------------------------------------------------------------------------
# Let it scrape (bounded), then check through its API.
targets=prometheus=127.0.0.1:$prometheus_port,icmp_exporter=$exporter
for t in ${probe_targets//,/ }; do targets+=",icmp_probe=$t"; done
if ! promcheck wait "$prom_url" --samples "$samples" --timeout 100 --targets "$targets"; then
    show_log prometheus "$tmp/prometheus.log"
    show_log exporter "$tmp/exporter.log"
    exit 1
fi

lab_rc=0
promcheck lab "$prom_url" --exporter "$exporter" \
    --prometheus "127.0.0.1:$prometheus_port" || lab_rc=$?
check "Prometheus' view of the lab (above)" [ "$lab_rc" = 0 ]

dash_rc=0
promcheck dashboard "$prom_url" "$dashboard" --start "$t_prom" \
    --jobs icmp_exporter,icmp_probe --instances "$exporter,$probe_targets" \
    --static-targets "$NETLAB_V4_DELAY,$NETLAB_V4_LOSS,$NETLAB_V4_BLACKHOLE" || dash_rc=$?
check "every query of the Grafana dashboard parses and has data (above)" [ "$dash_rc" = 0 ]

# ---------------------------------------------------------------------------------------
# Both programs are healthy to the end and stop cleanly.
check_detail="$(tail -20 "$tmp/exporter.log")"
check "the exporter is alive" alive "$exporter_pid"
check_detail="$(grep -E 'AddressSanitizer|runtime error:|LeakSanitizer' "$tmp/exporter.log" |
    head -20 || true)"
check "the exporter logged no sanitizer report" [ -z "$check_detail" ]
check_detail="$(grep -E 'level=(error|warn)' "$tmp/prometheus.log" | head -20 || true)"
check "Prometheus logged no warning or error" [ -z "$check_detail" ]
check_detail=""
stop "$prometheus_pid" 10
prometheus_pid=""
check_detail="exit status $stop_rc; $(tail -5 "$tmp/prometheus.log")"
check "Prometheus: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
stop "$exporter_pid" 5
exporter_pid=""
check_detail="exit status $stop_rc; $(tail -5 "$tmp/exporter.log")"
check "the exporter: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
check_detail=""
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
echo "time: $(elapsed "$t_start") s (Prometheus scraping for $(elapsed "$t_prom") s)"
check_done
