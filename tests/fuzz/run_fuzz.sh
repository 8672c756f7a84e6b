#!/usr/bin/env bash
# Builds one fuzz target with clang (libFuzzer + ASan + UBSan) from the very sources of its
# CMake targets, then runs it for a bounded time over a copy of the committed seed corpus.
# Fails on any crash, leak, undefined behaviour, timeout or out-of-memory, and fails (not
# skips) when clang or libFuzzer is missing.
# Usage: run_fuzz.sh NAME BUILD_FILE PROJECT_SOURCE_DIR CORPUS_DIR WORK_DIR [LIBFUZZER_FLAG...]
#   NAME: the fuzz target, tests/fuzz/NAME.c
#   BUILD_FILE: "KEY VALUE" lines written by tests/fuzz/CMakeLists.txt: "dir" (a target's
#     source dir, which its following "src" lines may be relative to), "def", "inc", "lib"
#   FUZZ_SECONDS (environment, default 60): how long to fuzz
set -euo pipefail
usage="usage: run_fuzz.sh NAME BUILD_FILE PROJECT_SOURCE_DIR CORPUS_DIR WORK_DIR [FLAG...]"
name=${1:?$usage}
build_file=${2:?$usage}
top=${3:?$usage}
seeds=${4:?$usage}
work=${5:?$usage}
shift 5
seconds=${FUZZ_SECONDS:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clang=${CLANG:-clang}

if ! command -v "$clang" >/dev/null; then
    echo "FAIL - $clang not found: install the Debian packages clang and libclang-rt-14-dev" >&2
    exit 1
fi

dir=
sources=()
flags=()
libs=()
while read -r key value; do
    [ -n "$value" ] || continue # an empty list still leaves its "key" line
    case $key in
    dir) dir=$value ;;
    src)
        case $value in
        /*) sources+=("$value") ;;
        *) sources+=("$dir/$value") ;;
        esac
        ;;
    def) flags+=("-D$value") ;;
    inc) flags+=("-I$value") ;;
    lib)
        case $value in
        /* | -*) libs+=("$value") ;;
        *) libs+=("-l$value") ;;
        esac
        ;;
    *)
        echo "FAIL - $build_file: unknown key '$key'" >&2
        exit 1
        ;;
    esac
done <"$build_file"
[ "${#sources[@]}" -gt 0 ] || {
    echo "FAIL - no sources listed in $build_file" >&2
    exit 1
}
# The union of the targets' definitions: duplicates are harmless, conflicts would not be.
if [ "${#flags[@]}" -gt 0 ]; then
    mapfile -t flags < <(printf '%s\n' "${flags[@]}" | awk '!seen[$0]++')
fi
# Debug builds give the sources no -DNDEBUG, and neither does this: their assert()s are
# invariants too.

rm -rf "$work"
mkdir -p "$work/corpus" "$work/artifacts"
if ! "$clang" -std=c11 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$top" "${flags[@]}" "${sources[@]}" "$here/$name.c" "${libs[@]}" -lm -pthread \
    -o "$work/$name" 2>"$work/build.log"; then
    cat "$work/build.log" >&2
    echo "FAIL - cannot build $name with $clang -fsanitize=fuzzer (is libclang-rt-14-dev" \
        "installed?)" >&2
    exit 1
fi
cp "$seeds"/* "$work/corpus/"
n_seeds=$(find "$work/corpus" -type f | wc -l)

# -timeout: one input taking 10 s is a hang; -rss_limit_mb: a leak or a runaway allocation.
set +e
"$work/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" \
    "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
set -e
grep -E '^(stat::|Done|INFO: Loaded|#[0-9]+ *DONE)' "$work/fuzz.log" || true
if [ "$rc" != 0 ]; then
    tail -n 60 "$work/fuzz.log" >&2
    echo "FAIL - $name exited $rc; reproducer(s) in $work/artifacts/:" >&2
    ls -l "$work/artifacts" >&2
    exit 1
fi
cov=$(grep -oE 'cov: [0-9]+' "$work/fuzz.log" | tail -n 1)
echo "$name: $n_seeds seeds, corpus now $(find "$work/corpus" -type f | wc -l) inputs," \
    "${cov:-cov: ?}, $seconds s, no crash, leak or undefined behaviour"
