#!/usr/bin/env bash
# The shipped Prometheus and Grafana files, without a lab or a server:
# - promtool check rules and promtool test rules on docker/prometheus/rules, both files:
#   icmp_exporter.rules.yml (down for 2 minutes fires, high loss fires, flapping does not
#   fire the down alert, ...) and blackbox_compat.rules.yml (the community's Blackbox*
#   alerts, for blackbox_exporter's series and ours); and the unit tests bite: each
#   deliberate break of a rule makes them fail;
# - every alert links its README section (runbook_url), and no rule selects a job by name;
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
compat=$src/docker/prometheus/rules/blackbox_compat.rules.yml
compat_test=$src/docker/prometheus/rules/blackbox_compat.rules.test.yml
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
run check_compat promtool check rules "$compat"
check "promtool check rules blackbox_compat.rules.yml" [ "$rc" = 0 ]
run test_compat promtool test rules "$compat_test"
check "promtool test rules blackbox_compat.rules.test.yml" [ "$rc" = 0 ]
check_detail=""

# Runbook links and job selectors (promcheck.py ruleslint), and that the check bites on a
# rule selecting job="icmp_probe" and on an alert without its runbook_url.
run ruleslint "${promcheck[@]}" ruleslint "$src/README.md" "$rules" "$compat"
check "every alert's runbook_url is a README heading; no rule selects a job" [ "$rc" = 0 ]
sed 's/^\(\s*expr: \)probe_success == 0$/\1probe_success{job="icmp_probe"} == 0/;
    /runbook_url: README.md#blackboxslowprobe$/d' "$compat" >"$tmp/broken.rules.yml"
run ruleslint_broken "${promcheck[@]}" ruleslint "$src/README.md" "$tmp/broken.rules.yml"
check_detail="$check_detail
$(diff "$compat" "$tmp/broken.rules.yml" || true)"
check "ruleslint catches a job selector and a missing runbook_url (control)" \
    [ "$rc" != 0 -a "$(grep -c '^FAIL' "$tmp/ruleslint_broken.out")" = 2 ]
check_detail=""

# The unit tests can fail: each of these breaks of the rules must make them fail. The
# replaced text must occur exactly once, so a break cannot silently stop applying. The
# broken copies are tested in parallel (promtool spends most of its time idle).
declare -A mutant_pid=()
mutate() { # WHAT FROM TO: a break of icmp_exporter.rules.yml
    mutate_file "$rules" "$rules_test" "$@"
}
mutate_compat() { # WHAT FROM TO: a break of blackbox_compat.rules.yml
    mutate_file "$compat" "$compat_test" "$@"
}
mutate_file() { # RULES TEST WHAT FROM TO
    local rules_file=$1 test_file=$2 what=$3 dir
    shift 2
    dir=$tmp/m${#mutant_pid[@]}
    mkdir -p "$dir"
    cp "$rules_file" "$test_file" "$dir/"
    if ! "$py" - "$dir/$(basename "$rules_file")" "$2" "$3" <<'EOF'; then
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
    promtool test rules "$dir/$(basename "$test_file")" >"$dir/out" 2>&1 &
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
    "present_over_time(icmp_exporter_build_info[1d])
        for: 1m" \
    "present_over_time(icmp_exporter_build_info[1d])
        for: 2m"
mutate "exporter down only under job icmp_exporter" \
    "expr: up == 0 and on (job, instance) present_over_time(icmp_exporter_build_info[1d])" \
    "expr: up{job=\"icmp_exporter\"} == 0"
mutate "exporter down for any target" \
    "expr: up == 0 and on (job, instance) present_over_time(icmp_exporter_build_info[1d])" \
    "expr: up == 0"
mutate "/probe scrape failing only under job icmp_probe" \
    "up == 0 and on (job) present_over_time(job:probe_icmp_echoes_sent:present[1d])" \
    "up{job=\"icmp_probe\"} == 0"
mutate "/probe scrape failing known by answered targets now only" \
    "present_over_time(job:probe_icmp_echoes_sent:present[1d])" \
    "job:probe_icmp_echoes_sent:present"
mutate_compat "reload failure read under blackbox's metric name only" \
    "blackbox_exporter_config_last_reload_successful != 1
            or icmp_exporter_config_last_reload_successful != 1" \
    "blackbox_exporter_config_last_reload_successful != 1"
mutate_compat "slow probe counts multi-echo probes" \
    "avg_over_time(probe_duration_seconds[1m]) > 1
            unless on (job, instance) max_over_time(probe_icmp_echoes_sent[1m]) > 1" \
    "avg_over_time(probe_duration_seconds[1m]) > 1"
mutate_compat "probe failed without 'for: 1m'" \
    "expr: probe_success == 0
        for: 1m" \
    "expr: probe_success == 0
        for: 0m"
mutate_compat "probe failed for ICMP probes only" \
    "expr: probe_success == 0" "expr: probe_success == 0 and on (job, instance) probe_icmp_echoes_sent"
mutate_compat "slow ping for the rtt phase only" \
    "avg_over_time(probe_icmp_duration_seconds[1m]) > 1" \
    "avg_over_time(probe_icmp_duration_seconds{phase=\"rtt\"}[1m]) > 1"
mutate_compat "low uptime below 99 %" "* 100 < 99.9" "* 100 < 99"
mutate_compat "http failure misses status 0" \
    "probe_http_status_code < 200 or" "probe_http_status_code < 0 or"
mutate_compat "certificate expiring soon within 7 days" "< 20 * 86400" "< 7 * 86400"
mutate_compat "expired certificate seen as expiring" \
    "expr: time() - last_over_time(probe_ssl_earliest_cert_expiry[10m]) > 0" \
    "expr: time() - last_over_time(probe_ssl_earliest_cert_expiry[10m]) > 86400 * 2"

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
