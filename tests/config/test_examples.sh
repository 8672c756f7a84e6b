#!/usr/bin/env bash
# Every configuration shipped in the repository loads: each ```json block of README.md's
# "## Configuration" section, docker/icmp_exporter.json and config/default.json, checked
# by the real binary (--config.check); each ```yaml block there too, as a blackbox.yml
# when it starts with "modules:", else as a --web.config.file (next to empty stand-ins for
# the TLS files it names). The README's first block must be config/default.json
# itself, so the documented default is the embedded one.
# Usage: test_examples.sh ICMP_EXPORTER SOURCE_DIR
set -uo pipefail
bin=${1:?usage: test_examples.sh ICMP_EXPORTER SOURCE_DIR}
top=${2:?usage: test_examples.sh ICMP_EXPORTER SOURCE_DIR}
failures=0
fail() {
    echo "FAIL - $*" >&2
    failures=$((failures + 1))
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

awk -v dir="$tmp" '
    /^## / { section = ($0 == "## Configuration") }
    section && /^```json[[:space:]]*$/ { n++; file = sprintf("%s/readme_%02d.json", dir, n); inblock = 1; next }
    section && /^```yaml[[:space:]]*$/ { n++; file = sprintf("%s/readme_%02d.yaml", dir, n); inblock = 1; next }
    inblock && /^```[[:space:]]*$/ { inblock = 0; close(file); next }
    inblock { print > file }
' "$top/README.md"
mapfile -t blocks < <(find "$tmp" -name 'readme_*.json' | sort)
[ "${#blocks[@]}" -ge 3 ] || fail "README.md: expected at least 3 json blocks under ## Configuration, found ${#blocks[@]}"

for f in "${blocks[@]}" "$top/docker/icmp_exporter.json" "$top/config/default.json"; do
    name=${f#"$tmp/"}
    if out=$("$bin" --config.check --config.file="$f" 2>&1); then
        echo "ok   - $name: $out"
    else
        fail "$name does not load: $out"
    fi
done

mapfile -t yblocks < <(find "$tmp" -name 'readme_*.yaml' | sort)
[ "${#yblocks[@]}" -ge 2 ] || fail "README.md: expected a blackbox.yml and a web file in yaml blocks under ## Configuration, found ${#yblocks[@]}"
for f in "${yblocks[@]}"; do
    name=${f#"$tmp/"}
    if grep -q '^modules:' "$f"; then
        args=(--config.file="$f")
    else
        for tls in $(sed -n 's/^ *\(cert_file\|key_file\): *\([^ #]*\).*/\2/p' "$f"); do
            : >"$tmp/$tls"
        done
        args=(--web.config.file="$f")
    fi
    if out=$("$bin" --config.check "${args[@]}" 2>&1); then
        echo "ok   - $name: ${out##*$'\n'}"
    else
        fail "$name does not load: $out"
    fi
done

if [ "${#blocks[@]}" -gt 0 ] && ! cmp -s "${blocks[0]}" "$top/config/default.json"; then
    fail "README.md's first json block under ## Configuration differs from config/default.json:
$(diff "${blocks[0]}" "$top/config/default.json")"
fi
[ "$failures" = 0 ]
