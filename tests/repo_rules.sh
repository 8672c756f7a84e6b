#!/usr/bin/env bash
# Repository rules that a compiler does not check:
# - every C file is clang-formatted (.clang-format);
# - no banned call (sprintf, strcpy, strcat, strncpy, gets, atoi, strtok) in C code;
# - .ci/run runs exactly the README's test command (quick start, second command).
# Usage: repo_rules.sh SOURCE_DIR
set -uo pipefail
top=${1:?usage: repo_rules.sh SOURCE_DIR}
cd "$top" || exit 1
failures=0
fail() {
    echo "FAIL - $*" >&2
    failures=$((failures + 1))
}

if [ -d .git ] && command -v git >/dev/null; then
    mapfile -t cfiles < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h')
else
    mapfile -t cfiles < <(find core config exporter tests -name '*.[ch]' | sort)
fi
[ "${#cfiles[@]}" -gt 0 ] || fail "no C files found"

if ! command -v clang-format >/dev/null; then
    fail "clang-format is missing (Debian package clang-format)"
else
    for f in "${cfiles[@]}"; do
        [ -f "$f" ] || continue
        clang-format --dry-run --Werror "$f" 2>/dev/null || fail "$f is not clang-formatted"
    done
fi

banned='\b(sprintf|vsprintf|strcpy|strcat|strncpy|gets|atoi|atol|strtok)[[:space:]]*\('
hits=$(grep -nHE "$banned" "${cfiles[@]}")
[ -z "$hits" ] || fail "banned calls (see STYLE: use snprintf, memcpy with lengths, strtol):
$hits"

# The second fenced command of the README's Quick start must be the command .ci/run runs.
readme_cmd=$(awk '/^## Quick start/ { q = 1 } q && /^```/ { n++; next } q && n == 3 { print }
    /^## / && !/Quick start/ { q = 0 }' README.md)
ci_cmd=$(sed -n '/^# BEGIN README test command/,/^# END README test command/p' .ci/run |
    sed '1d;$d')
[ -n "$readme_cmd" ] || fail "README.md: no second command in the Quick start"
[ "$readme_cmd" = "$ci_cmd" ] || fail ".ci/run does not run the README's test command:
--- README.md
$readme_cmd
--- .ci/run
$ci_cmd"

[ "$failures" = 0 ] || exit 1
echo "repo rules: ${#cfiles[@]} C files formatted, no banned calls, .ci/run = README"
