#!/usr/bin/env bash
# The shipped Prometheus and Grafana files, without a lab or a server:
# - promtool check rules and promtool test rules on docker/prometheus/rules (the unit tests:
#   down for 2 minutes fires, high loss fires, flapping does not fire the down alert, ...);
#   and the unit tests bite: each deliberate break of a rule makes them fail;
# - promtool check config on docker/prometheus/prometheus.yml (syntax), and on the same file
#   with its addresses made local (full check: the rules file it names exists and loads);
# - the Grafana dashboard's static checks (promcheck.py lint), which also fail on a broken
#   copy. test_prometheus.sh runs every query of the dashboard against a live Prometheus.
# Needs promtool (Debian package prometheus); fails, never skips, without it.
# Usage: test_rules.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: test_rules.sh SOURCE_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"
py=/usr/bin/python3
promcheck=("$py" "$here/promcheck.py")
rules=$src/docker/prometheus/rules/icmp_exporter.rules.yml
rules_test=$src/docker/prometheus/rules/icmp_exporter.rules.test.yml
config=$src/docker/prometheus/prometheus.yml
dashboard=$src/docker/grafana/dashboards/icmp_exporter.json

if ! command -v promtool >/dev/null; then
    echo "FAIL - missing: promtool (apt-get install prometheus)" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run ID CMD...: runs CMD, its output in $tmp/ID.out and in check_detail, status in rc.
run() {
    local id=$1
    shift
    rc=0
    "$@" >"$tmp/$id.out" 2>&1 || rc=$?
    check_detail="$ $*
$(cat "$tmp/$id.out")"
}

run check_rules promtool check rules "$rules"
check "promtool check rules icmp_exporter.rules.yml" [ "$rc" = 0 ]
run test_rules promtool test rules "$rules_test"
check "promtool test rules icmp_exporter.rules.test.yml" [ "$rc" = 0 ]
check_detail=""

# The unit tests can fail: each of these breaks of the rules must make them fail. The
# replaced text must occur exactly once, so a break cannot silently stop applying. The
# broken copies are tested in parallel (promtool spends most of its time idle).
declare -A mutant_pid=()
mutate() { # WHAT FROM TO
    local what=$1 dir
    dir=$tmp/m${#mutant_pid[@]}
    mkdir -p "$dir"
    cp "$rules" "$rules_test" "$dir/"
    if ! "$py" - "$dir/icmp_exporter.rules.yml" "$2" "$3" <<'EOF'; then
import sys
path, old, new = sys.argv[1:]
text = open(path, encoding="utf-8").read()
if text.count(old) != 1:
    sys.exit(f"{old!r} occurs {text.count(old)} times in {path}, expected once")
open(path, "w", encoding="utf-8").write(text.replace(old, new))
EOF
        check "break of the rules '$what' applies" false
        return
    fi
    promtool test rules "$dir/icmp_exporter.rules.test.yml" >"$dir/out" 2>&1 &
    mutant_pid[$what]=$!
}
mutate "down without 'for: 2m' (fires at once, and on flapping)" \
    "    expr: probe_success == 0 and on (job, instance) probe_icmp_echoes_sent
        for: 2m" \
    "    expr: probe_success == 0 and on (job, instance) probe_icmp_echoes_sent
        for: 0m"
mutate "static down without 'for: 2m'" \
    "    expr: icmp_target_success == 0
        for: 2m" \
    "    expr: icmp_target_success == 0
        for: 0m"
mutate "down for any prober's probe_success" \
    "expr: probe_success == 0 and on (job, instance) probe_icmp_echoes_sent" \
    "expr: probe_success == 0"
mutate "high loss also for dead targets" \
    "expr: instance:probe_icmp_loss:ratio5m > 0.1 < 1" \
    "expr: instance:probe_icmp_loss:ratio5m > 0.1"
mutate "high loss threshold 30 %" \
    "expr: target:icmp_target_loss:ratio_rate5m > 0.1 < 1" \
    "expr: target:icmp_target_loss:ratio_rate5m > 0.3 < 1"
mutate "loss as a mean of per-probe ratios" \
    "1 - sum_over_time(probe_icmp_echoes_received[5m]) / sum_over_time" \
    "avg_over_time(probe_icmp_loss_ratio[5m]) + 0 * sum_over_time"
mutate "flapping needs 6 changes" \
    "expr: changes(probe_success[10m]) >= 4" "expr: changes(probe_success[10m]) >= 6"
mutate "RTT quantile by rate() of per-probe histograms" \
    "histogram_quantile(0.5, sum_over_time(probe_icmp_rtt_seconds_bucket[5m]))" \
    "histogram_quantile(0.5, rate(probe_icmp_rtt_seconds_bucket[5m]))"
mutate "exporter down after 2 minutes" \
    "    expr: up{job=\"icmp_exporter\"} == 0
        for: 1m" \
    "    expr: up{job=\"icmp_exporter\"} == 0
        for: 2m"

for what in "${!mutant_pid[@]}"; do
    rc=0
    wait "${mutant_pid[$what]}" || rc=$?
    check_detail="the unit tests pass with the rules broken ($what)"
    check "the unit tests catch: $what" [ "$rc" != 0 ]
done
check_detail=""

# The shipped scrape configuration: its syntax as is; then, with its names made local
# (promcheck.py config, as the lab test does), the full check, which loads the rules file
# it names from this repository.
run config_syntax promtool check config --syntax-only "$config"
check "promtool check config --syntax-only prometheus.yml" [ "$rc" = 0 ]
check_detail=""
if "${promcheck[@]}" config "$config" "$tmp/prometheus.yml" --prometheus 127.0.0.1:9090 \
    --exporter 127.0.0.1:9723 --rules-dir "$src/docker/prometheus/rules" \
    --probe-targets 192.0.2.1,2001:db8::1 2>"$tmp/config.err"; then
    run config_full promtool check config "$tmp/prometheus.yml"
    check "promtool check config: prometheus.yml with local addresses, and the rules it names" \
        [ "$rc" = 0 ]
else
    check_detail=$(cat "$tmp/config.err")
    check "promcheck.py config understands the shipped prometheus.yml" false
fi
check_detail=""

# The dashboard: static checks, and a broken copy (a panel on a fixed data source) fails.
run lint "${promcheck[@]}" lint "$dashboard"
check "Grafana dashboard: promcheck.py lint" [ "$rc" = 0 ]
"$py" - "$dashboard" "$tmp/broken.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
panel = next(p for p in d["panels"] if p.get("type") != "row")
panel["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
json.dump(d, open(sys.argv[2], "w", encoding="utf-8"))
EOF
run lint_broken "${promcheck[@]}" lint "$tmp/broken.json"
check_detail="promcheck.py lint accepted a panel with a fixed data source uid"
check "Grafana dashboard lint catches a fixed data source (control)" [ "$rc" != 0 ]
check_detail=""

check_done
