#!/usr/bin/env bash
# The renderer's output for the committed fuzz corpus, read by real parsers: fuzz_render's
# replay build writes each input's text and OpenMetrics exposition (those whose families make
# a scrape Prometheus takes, see scrape_consistent in fuzz_render.c), then promtool check
# metrics must parse every text file (lint remarks about the fuzzed names are allowed, parse
# errors are not) and prometheus_client's strict OpenMetrics parser every OpenMetrics file.
# A missing tool is a failure, never a skip (Debian packages prometheus and
# python3-prometheus-client).
# Usage: check_render_corpus.sh FUZZ_RENDER_REPLAY CORPUS_DIR
set -uo pipefail
replay=${1:?usage: check_render_corpus.sh FUZZ_RENDER_REPLAY CORPUS_DIR}
corpus=${2:?usage: check_render_corpus.sh FUZZ_RENDER_REPLAY CORPUS_DIR}
# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"
# Debian's interpreter, where python3-prometheus-client installs, whatever PATH prefers.
py=/usr/bin/python3
# Fewer would mean the corpus no longer exercises the renderer; it holds far more.
min_files=20

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
check_detail=$(FUZZ_RENDER_DUMP=$tmp "$replay" "$corpus" 2>&1)
check "fuzz_render replays the corpus (round trip checked inside)" [ $? = 0 ]
check_detail=""
shopt -s nullglob
texts=("$tmp"/*.prom)
oms=("$tmp"/*.om)
check "at least $min_files text expositions (${#texts[@]})" [ "${#texts[@]}" -ge "$min_files" ]
check "at least $min_files OpenMetrics expositions (${#oms[@]})" [ "${#oms[@]}" -ge "$min_files" ]

# promtool exits 1 on a parse error ("error while linting: ..."), 3 on lint remarks only.
bad=""
linted=0
for f in "${texts[@]}"; do
    out=$(promtool check metrics <"$f" 2>&1)
    rc=$?
    [ "$rc" = 3 ] && linted=$((linted + 1))
    if [ "$rc" != 0 ] && { [ "$rc" != 3 ] || grep -q 'error while linting' <<<"$out"; }; then
        bad+="$(basename "$f") (exit $rc): $out"$'\n'"$(cat "$f")"$'\n'
    fi
done
check_detail=$bad
check "promtool parses all ${#texts[@]} text expositions ($linted with lint remarks)" [ -z "$bad" ]
check_detail=""
# The checker is live: a bad escape is a parse error.
printf 'x{a="\\q"} 1\n' | promtool check metrics >/dev/null 2>&1
check "promtool rejects a bad escape (control)" [ $? = 1 ]

check_detail=$("$py" - "${oms[@]}" 2>&1 <<'EOF'
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

failed = []
for path in sys.argv[1:]:
    # newline="": a CR inside a label value is data, not a line end (universal newlines)
    text = open(path, encoding="utf-8", newline="").read()
    try:
        list(parse_om(text))
    except ValueError as e:
        failed.append(f"{path}: {e}\n{text}")
# The parser is strict (control): a missing # EOF is refused.
try:
    list(parse_om("# TYPE a gauge\na 1\n"))
    failed.append("control: OpenMetrics without # EOF accepted")
except ValueError:
    pass
if failed:
    print("\n".join(failed))
    sys.exit(1)
EOF
) || check_detail="python exited $?: $check_detail"
check "prometheus_client parses all ${#oms[@]} OpenMetrics expositions" [ -z "$check_detail" ]
check_detail=""

check_done
