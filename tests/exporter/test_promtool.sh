#!/usr/bin/env bash
# exporter/prom/'s output read by real parsers. promtool (Debian package prometheus) parses
# and lints the text format only: it rejects OpenMetrics at its first '\"' in a HELP line, so
# OpenMetrics goes through the strict OpenMetrics parser of the Python prometheus_client
# (Debian package python3-prometheus-client), which also decodes both formats so the label
# values and help text read back exactly as prom_sample wrote them. A missing tool is a
# failure, never a skip.
# Usage: test_promtool.sh PROM_SAMPLE
set -uo pipefail
sample=${1:?usage: test_promtool.sh PROM_SAMPLE}
# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"
# Debian's interpreter, where python3-prometheus-client installs, whatever PATH prefers.
py=/usr/bin/python3

missing=""
command -v promtool >/dev/null || missing+=" promtool (apt-get install prometheus)"
"$py" -c 'import prometheus_client' 2>/dev/null ||
    missing+=" prometheus_client for $py (apt-get install python3-prometheus-client)"
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
"$sample" text >"$tmp/metrics.txt"
check "prom_sample text" [ $? = 0 ]
"$sample" openmetrics >"$tmp/metrics.om"
check "prom_sample openmetrics" [ $? = 0 ]
"$sample" text gzip >"$tmp/metrics.txt.gz"
check "prom_sample text gzip" [ $? = 0 ]

out=$(promtool check metrics <"$tmp/metrics.txt" 2>&1)
rc=$?
check_detail=$out
check "promtool check metrics: text format parses, lint clean" [ "$rc" = 0 ] && [ -z "$out" ]
check_detail=""
# The checkers are live: a lint problem and a syntax error both fail.
printf '# HELP x_milliseconds x\n# TYPE x_milliseconds counter\nx_milliseconds 1\n' |
    promtool check metrics >/dev/null 2>&1
check "promtool lint rejects a bad name (control)" [ $? != 0 ]
printf 'x{a="\\q"} 1\n' | promtool check metrics >/dev/null 2>&1
check "promtool rejects a bad escape (control)" [ $? != 0 ]

gzip -dc <"$tmp/metrics.txt.gz" | cmp -s - "$tmp/metrics.txt"
check "gzip -d of the gzip output gives the text back" [ $? = 0 ]

# Decodes both expositions and compares what a scraper sees with what prom_sample wrote.
check_detail=$("$py" - "$tmp/metrics.txt" "$tmp/metrics.om" 2>&1 <<'EOF'
import math, sys
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

targets = ["192.0.2.1", "example.org", "C:\\DIR\\FILE.TXT", 'quote " and\nnewline',
           "h\u00e9llo \u20ac \U0001F600", b"bad \xff\xc0\xaf utf-8".decode("utf-8", "replace"), ""]
rtt_help = 'Mean round-trip time of the last probe \\ in seconds; NaN without "replies".\nSecond line.'

def check(path, parse, om):
    fams = {f.name: f for f in parse(open(path, encoding="utf-8").read())}
    want = {"icmp_probe_success": ("gauge", ""), "icmp_probe_rtt_seconds": ("gauge", "seconds"),
            "icmp_echo_requests": ("counter", ""), "icmp_echo_sent_bytes": ("counter", "bytes"),
            "icmp_echo_rtt_seconds": ("histogram", "seconds"), "icmp_exporter_limits": ("gauge", "")}
    for name, (typ, unit) in want.items():
        f = fams.get(name)
        assert f is not None, f"{path}: no family {name}: {sorted(fams)}"
        assert f.type == typ, f"{path}: {name} type {f.type}"
        if om:
            assert f.unit == unit, f"{path}: {name} unit {f.unit!r}"
    assert len(fams) == len(want), f"{path}: families {sorted(fams)}"
    got = [s.labels["target"] for s in fams["icmp_probe_success"].samples]
    assert got == targets, f"{path}: targets {got!r}"
    assert fams["icmp_probe_rtt_seconds"].documentation == rtt_help, \
        f"{path}: help {fams['icmp_probe_rtt_seconds'].documentation!r}"
    rtt = {s.labels["target"]: s.value for s in fams["icmp_probe_rtt_seconds"].samples}
    assert rtt["192.0.2.1"] == 0.000123456 and math.isnan(rtt["example.org"]), rtt
    assert rtt["C:\\DIR\\FILE.TXT"] == 1e-9 and rtt["h\u00e9llo \u20ac \U0001F600"] == 4 / 3, rtt
    lim = {s.labels["kind"]: s.value for s in fams["icmp_exporter_limits"].samples}
    assert lim == {"inf": math.inf, "minus_inf": -math.inf, "max": 1.7976931348623157e308,
                   "subnormal": 5e-324, "minus_zero": 0}, lim
    assert fams["icmp_echo_requests"].samples[0].value == 123456789012
    les = [s.labels["le"] for s in fams["icmp_echo_rtt_seconds"].samples if s.name.endswith("_bucket")]
    one = "1.0" if om else "1"
    assert les[:11] == ["0.0001", "0.0005", "0.001", "0.005", "0.01", "0.05", "0.1", "0.5", one,
                        "5.0" if om else "5", "+Inf"], les

check(sys.argv[1], parse_text, False)
check(sys.argv[2], parse_om, True)

# The OpenMetrics parser is strict (controls): no EOF, a counter sample without _total.
for bad in ["# TYPE a gauge\na 1\n", "# TYPE a counter\na 1\n# EOF\n"]:
    try:
        list(parse_om(bad))
    except ValueError:
        continue
    raise AssertionError(f"OpenMetrics parser accepted {bad!r}")
EOF
) || check_detail="python exited $?: $check_detail"
check "prometheus_client decodes text and OpenMetrics as written" [ -z "$check_detail" ]
check_detail=""

check_done
