#!/usr/bin/env bash
# Builds the configuration fuzzer with clang (libFuzzer + ASan + UBSan) from the very
# sources of the icmp_config target, then runs it for a bounded time over a copy of the
# committed seed corpus. Fails on any crash, leak, undefined behaviour, timeout or
# out-of-memory, and fails (not skips) when clang or libFuzzer is missing.
# Usage: run_fuzz.sh SOURCES_FILE PROJECT_SOURCE_DIR WORK_DIR
#   SOURCES_FILE: first line the icmp_config source dir, then its sources (CMake-generated)
#   FUZZ_SECONDS (environment, default 60): how long to fuzz
set -euo pipefail
sources_file=${1:?usage: run_fuzz.sh SOURCES_FILE PROJECT_SOURCE_DIR WORK_DIR}
top=${2:?usage: run_fuzz.sh SOURCES_FILE PROJECT_SOURCE_DIR WORK_DIR}
work=${3:?usage: run_fuzz.sh SOURCES_FILE PROJECT_SOURCE_DIR WORK_DIR}
seconds=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clang=${CLANG:-clang}

if ! command -v "$clang" >/dev/null; then
    echo "FAIL - $clang not found: install the Debian packages clang and libclang-rt-14-dev" >&2
    exit 1
fi
if ! cjson=$(pkg-config --cflags --libs libcjson); then
    echo "FAIL - pkg-config cannot find libcjson (Debian package libcjson-dev)" >&2
    exit 1
fi

srcdir=
sources=()
while IFS= read -r line; do
    [ -n "$line" ] || continue
    if [ -z "$srcdir" ]; then
        srcdir=$line
        continue
    fi
    case $line in
    /*) sources+=("$line") ;;
    *) sources+=("$srcdir/$line") ;;
    esac
done <"$sources_file"
[ "${#sources[@]}" -gt 0 ] || {
    echo "FAIL - no sources listed in $sources_file" >&2
    exit 1
}

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
# shellcheck disable=SC2086 # $cjson is a list of flags
if ! "$clang" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$top" "${sources[@]}" "$here/fuzz_config.c" $cjson -pthread \
    -o "$work/fuzz_config" 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    echo "FAIL - cannot build the fuzzer with $clang -fsanitize=fuzzer (is libclang-rt-14-dev" \
        "installed?)" >&2
    exit 1
fi
cp "$here"/corpus/config/* "$work/corpus/"
seeds=$(find "$work/corpus" -type f | wc -l)

set +e
"$work/fuzz_config" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -dict="$here/config.dict" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(stat::|Done|INFO: Loaded|#[0-9]+ *DONE)' "$work/fuzz.log" || true
if [ "$rc" != 0 ]; then
    tail -n 60 "$work/fuzz.log" >&2
    echo "FAIL - the fuzzer exited $rc; reproducer(s) in $work/artifacts/:" >&2
    ls -l "$work/artifacts" >&2
    exit 1
fi
echo "fuzz_config: $seeds seeds, corpus now $(find "$work/corpus" -type f | wc -l) inputs," \
    "$seconds s, no crash, leak or undefined behaviour"
