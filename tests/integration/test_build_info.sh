#!/usr/bin/env bash
# The build information (exporter/build_info.cmake) and where it shows:
# - the generator, run as a script on git repositories made here: revision and branch of a
#   checkout; "unknown" outside one and in a directory below a checkout's top (a tarball
#   unpacked inside another repository); "HEAD" when detached; a branch name with a quote;
#   SOURCE_DATE_EPOCH gives the build date (and "unknown" as build user); ICMPX_BUILD_USER
#   overrides the user; an unchanged run leaves the header untouched (no rebuild);
# - the built binary: --version prints the values of its generated header, and
#   icmp_exporter_build_info on /metrics carries the same revision, branch, compiler and
#   build date, and the version.
# The exporter listens on 127.0.0.1 only; it is stopped by its PID on every exit path.
# Usage: test_build_info.sh ICMP_EXPORTER BUILD_INFO_H SOURCE_DIR VERSION
set -uo pipefail
bin=${1:?usage: test_build_info.sh ICMP_EXPORTER BUILD_INFO_H SOURCE_DIR VERSION}
header=${2:?usage: test_build_info.sh ICMP_EXPORTER BUILD_INFO_H SOURCE_DIR VERSION}
src=${3:?usage: test_build_info.sh ICMP_EXPORTER BUILD_INFO_H SOURCE_DIR VERSION}
version=${4:?usage: test_build_info.sh ICMP_EXPORTER BUILD_INFO_H SOURCE_DIR VERSION}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"
script=$src/exporter/build_info.cmake

missing=""
for p in git curl cmake; do command -v "$p" >/dev/null || missing+=" $p"; done
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi
tmp=$(mktemp -d)
exporter_pid=""
cleanup() {
    if [ -n "$exporter_pid" ]; then
        kill -TERM "$exporter_pid" 2>/dev/null
        wait "$exporter_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# gen DIR OUT [ENV...] [-- -DVAR=VALUE...]: runs the generator on DIR as a GNU 12.2.0
# compiler for Linux x86_64, with SOURCE_DATE_EPOCH unset unless given.
gen() {
    local dir=$1 out=$2 envs=() defs=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    defs=("$@")
    env -u SOURCE_DATE_EPOCH "${envs[@]}" cmake -DSOURCE_DIR="$dir" -DOUT="$out" \
        -DCOMPILER_ID=GNU -DCOMPILER_VERSION=12.2.0 -DSYSTEM_NAME=Linux \
        -DSYSTEM_PROCESSOR=x86_64 "${defs[@]}" -P "$script" >"$tmp/gen.log" 2>&1
}
# value HEADER MACRO: the string of #define ICMPX_BUILD_MACRO "..." (unescaped as C would).
value() {
    sed -n "s/^#define ICMPX_BUILD_$2 \"\\(.*\\)\"\$/\\1/p" "$1" | sed 's/\\"/"/g; s/\\\\/\\/g'
}
git_q() { git -c user.name=test -c user.email=test@example.invalid -c init.defaultBranch=main \
    -c advice.detachedHead=false "$@" >/dev/null 2>&1; }

# A repository with one commit on branch feature/a"b (a quote is allowed in branch names).
repo=$tmp/repo
mkdir -p "$repo/sub"
git_q -C "$repo" init
echo x >"$repo/sub/file"
git_q -C "$repo" add .
git_q -C "$repo" commit -m one
git_q -C "$repo" checkout -b 'feature/a"b'
rev=$(git -C "$repo" rev-parse HEAD)

gen "$repo" "$tmp/h1" SOURCE_DATE_EPOCH=1700000000
check_detail="$(cat "$tmp/gen.log" "$tmp/h1" 2>&1)"
check "checkout: revision is HEAD's commit" [ "$(value "$tmp/h1" REVISION)" = "$rev" ]
check "checkout: branch feature/a\"b, quote escaped for C" \
    grep -qx '#define ICMPX_BUILD_BRANCH "feature/a\\"b"' "$tmp/h1"
check "SOURCE_DATE_EPOCH=1700000000: build date 20231114-22:13:20 (UTC)" \
    [ "$(value "$tmp/h1" DATE)" = 20231114-22:13:20 ]
check "SOURCE_DATE_EPOCH: build user unknown" [ "$(value "$tmp/h1" USER)" = unknown ]
check "compiler GNU 12.2.0 -> gcc 12.2.0" [ "$(value "$tmp/h1" COMPILER)" = "gcc 12.2.0" ]
check "platform Linux x86_64 -> linux/x86_64" [ "$(value "$tmp/h1" PLATFORM)" = linux/x86_64 ]

# The same inputs again: the header is not rewritten (its mtime stays), so nothing rebuilds.
touch -d @1000000000 "$tmp/h1"
gen "$repo" "$tmp/h1" SOURCE_DATE_EPOCH=1700000000
check "unchanged inputs: header left untouched" [ "$(stat -c %Y "$tmp/h1")" = 1000000000 ]
# Another epoch: reproducible means the date follows it, nothing else.
gen "$repo" "$tmp/h2" SOURCE_DATE_EPOCH=0
check_detail="$(cat "$tmp/gen.log" "$tmp/h2" 2>&1)"
check "SOURCE_DATE_EPOCH=0: build date 19700101-00:00:00" \
    [ "$(value "$tmp/h2" DATE)" = 19700101-00:00:00 ]

# Without SOURCE_DATE_EPOCH: the date of now (UTC, within a minute), user@host; and an
# explicit ICMPX_BUILD_USER wins.
before=$(date -u +%s)
gen "$repo" "$tmp/h3"
check_detail="$(cat "$tmp/gen.log" "$tmp/h3" 2>&1)"
d=$(value "$tmp/h3" DATE)
t=$(date -u -d "${d:0:4}-${d:4:2}-${d:6:2} ${d:9}" +%s 2>/dev/null || echo 0)
check "no SOURCE_DATE_EPOCH: build date is now ($d)" \
    [ "$t" -ge $((before - 60)) -a "$t" -le $(($(date -u +%s) + 60)) ]
check "no SOURCE_DATE_EPOCH: build user USER@HOST" grep -qE '^[^@ ]+@[^@ ]+$' \
    <<<"$(value "$tmp/h3" USER)"
gen "$repo" "$tmp/h4" SOURCE_DATE_EPOCH=1 -- -DICMPX_BUILD_USER='ci@builder'
check "ICMPX_BUILD_USER=ci@builder is the build user" [ "$(value "$tmp/h4" USER)" = ci@builder ]

# Detached HEAD: branch HEAD, as Prometheus' builds say.
git_q -C "$repo" checkout --detach
gen "$repo" "$tmp/h5" SOURCE_DATE_EPOCH=1
check_detail="$(cat "$tmp/gen.log" "$tmp/h5" 2>&1)"
check "detached HEAD: branch HEAD, revision the commit" \
    [ "$(value "$tmp/h5" BRANCH) $(value "$tmp/h5" REVISION)" = "HEAD $rev" ]

# Not a checkout, and a directory below a checkout's top: unknown.
mkdir -p "$tmp/plain"
gen "$tmp/plain" "$tmp/h6" SOURCE_DATE_EPOCH=1
check_detail="$(cat "$tmp/gen.log" "$tmp/h6" 2>&1)"
check "no git checkout: revision and branch unknown" \
    [ "$(value "$tmp/h6" REVISION) $(value "$tmp/h6" BRANCH)" = "unknown unknown" ]
gen "$repo/sub" "$tmp/h7" SOURCE_DATE_EPOCH=1
check_detail="$(cat "$tmp/gen.log" "$tmp/h7" 2>&1)"
check "inside another checkout (a tarball unpacked in a repository): unknown" \
    [ "$(value "$tmp/h7" REVISION) $(value "$tmp/h7" BRANCH)" = "unknown unknown" ]
check_detail=""

# ---------------------------------------------------------------------------------------
# The built binary: --version and /metrics say what its generated header says.
out=$("$bin" --version)
want="icmp_exporter, version $version (branch: $(value "$header" BRANCH), revision: $(value "$header" REVISION))
  build user:       $(value "$header" USER)
  build date:       $(value "$header" DATE)
  compiler:         $(value "$header" COMPILER)
  platform:         $(value "$header" PLATFORM)"
check_detail="want:
$want
got:
$out"
check "--version prints the generated header's values" [ "$(head -5 <<<"$out")" = "$want" ]

echo '{ "modules": { "icmp": {} } }' >"$tmp/cfg.json"
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    "$bin" --config.file="$tmp/cfg.json" --web.listen-address="127.0.0.1:$port" \
        >"$tmp/exporter.log" 2>&1 &
    exporter_pid=$!
    for _ in $(seq 100); do
        curl -sf --noproxy '*' "http://127.0.0.1:$port/-/healthy" >/dev/null 2>&1 && break
        kill -0 "$exporter_pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$exporter_pid" 2>/dev/null && break
    wait "$exporter_pid" 2>/dev/null
    exporter_pid=""
done
got=$(curl -sf --noproxy '*' "http://127.0.0.1:$port/metrics" | grep '^icmp_exporter_build_info{')
labels="branch=\"$(value "$header" BRANCH)\",build_date=\"$(value "$header" DATE)\""
labels+=",compiler=\"$(value "$header" COMPILER)\",revision=\"$(value "$header" REVISION)\""
want="icmp_exporter_build_info{$labels,version=\"$version\"} 1"
check_detail="want: $want
got:  $got
$(tail -5 "$tmp/exporter.log")"
check "/metrics: icmp_exporter_build_info{branch, build_date, compiler, revision, version} 1" \
    [ "$got" = "$want" ]
check_detail="$(grep -E 'AddressSanitizer|runtime error:' "$tmp/exporter.log" | head)"
check "the exporter logged no sanitizer report" [ -z "$check_detail" ]
check_detail=""
check_done
