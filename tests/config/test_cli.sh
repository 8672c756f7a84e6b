#!/usr/bin/env bash
# The real icmp_exporter binary and configuration files: --config.check on the embedded
# default, good files (both --config.file forms), bad files (the exact error line on
# stderr), unreadable files (errno text), and no socket touched while checking.
# Usage: test_cli.sh ICMP_EXPORTER
set -uo pipefail
bin=${1:?usage: test_cli.sh ICMP_EXPORTER}
failures=0
check() {
    local name=$1
    shift
    if "$@"; then echo "ok   - $name"; else
        echo "FAIL - $name" >&2
        failures=$((failures + 1))
    fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# run ARGS...: sets out, err, rc
run() {
    out=$("$bin" "$@" 2>"$tmp/stderr")
    rc=$?
    err=$(cat "$tmp/stderr")
}

run --config.check
check "default: exit 0" [ "$rc" = 0 ]
check "default: counts" [ "$out" = "config OK: 1 modules, 2 targets" ]
check "default: quiet stderr" [ -z "$err" ]

cat >"$tmp/good.json" <<'JSON'
{
  "modules": {
    "icmp": {"prober": "icmp", "timeout": "5s", "icmp": {"preferred_ip_protocol": "ip4"}},
    "icmp_loss": {"timeout": "5s", "icmp": {"count": 5, "interval": "200ms"}}
  },
  "targets": [{"target": "192.0.2.1", "module": "icmp_loss", "labels": {"site": "par1"}}]
}
JSON
run --config.check --config.file="$tmp/good.json"
check "good (--config.file=PATH): exit 0" [ "$rc" = 0 ]
check "good: counts" [ "$out" = "config OK: 2 modules, 1 targets" ]
run --config.file "$tmp/good.json" --config.check
check "good (--config.file PATH): exit 0" [ "$rc" = 0 ]
check "good (--config.file PATH): counts" [ "$out" = "config OK: 2 modules, 1 targets" ]

printf '{\n  "modules": {\n    "icmp": {"icmp": {"ttl": 300}}\n  }\n}\n' >"$tmp/bad.json"
run --config.check --config.file="$tmp/bad.json"
check "bad: exit 1" [ "$rc" = 1 ]
check "bad: nothing on stdout" [ -z "$out" ]
check "bad: exact error" [ "$err" = "$tmp/bad.json:3:30: modules.icmp.icmp.ttl: expected an integer in 1..255, got 300" ]

printf '{"modules": {"icmp": {}},\n "targets": [{"target": "::1", "module": "icmp6"}]}' >"$tmp/bad2.json"
run --config.check --config.file="$tmp/bad2.json"
check "unknown module: exit 1" [ "$rc" = 1 ]
check "unknown module: exact error" [ "$err" = "$tmp/bad2.json:2:42: targets[0].module: unknown module \"icmp6\" (defined: icmp)" ]

printf '{"modules": {}' >"$tmp/syntax.json"
run --config.check --config.file="$tmp/syntax.json"
check "syntax: exit 1" [ "$rc" = 1 ]
check "syntax: exact error" [ "$err" = "$tmp/syntax.json:1:15: (syntax): expected ',' or '}' after an object member, got the end of the document" ]

# payload_size: the engine's limit, 65507 (the largest IPv4 echo data), loads; one more is
# refused at load with the limit and why, rather than loaded and never sent.
printf '{"modules": {"icmp": {"icmp": {"payload_size": 65507}}}}' >"$tmp/big.json"
run --config.check --config.file="$tmp/big.json"
check "payload_size 65507: exit 0" [ "$rc" = 0 ]
printf '{"modules": {"icmp": {"icmp": {"payload_size": 65508}}}}' >"$tmp/big.json"
run --config.check --config.file="$tmp/big.json"
check "payload_size 65508: exit 1" [ "$rc" = 1 ]
check "payload_size 65508: exact error" [ "$err" = "$tmp/big.json:1:48: modules.icmp.icmp.payload_size: expected an integer in 16..65507 (16 bytes carry the probe's nonce and timestamp; 65507 is the largest IPv4 echo payload), got 65508" ]

run --config.check --config.file="$tmp/missing.json"
check "missing: exit 1" [ "$rc" = 1 ]
check "missing: errno text" [ "$err" = "$tmp/missing.json: cannot open: No such file or directory" ]

run --config.check --config.file="$tmp"
check "directory: exit 1" [ "$rc" = 1 ]
check "directory: errno text" [ "$err" = "$tmp: cannot read: Is a directory" ]

cp "$tmp/good.json" "$tmp/unreadable.json"
chmod 000 "$tmp/unreadable.json"
if [ "$(id -u)" = 0 ]; then
    # root reads anything: drop to nobody to see EACCES.
    if command -v setpriv >/dev/null; then
        out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
            "$bin" --config.check --config.file="$tmp/unreadable.json" 2>"$tmp/stderr")
        rc=$?
        err=$(cat "$tmp/stderr")
    else
        rc=skip
    fi
else
    run --config.check --config.file="$tmp/unreadable.json"
fi
if [ "$rc" = skip ]; then
    echo "note - setpriv missing: EACCES not checked as root"
else
    check "unreadable: exit 1" [ "$rc" = 1 ]
    check "unreadable: errno text" [ "$err" = "$tmp/unreadable.json: cannot open: Permission denied" ]
fi

run --config.check --config.file
check "--config.file without a name: exit 2" [ "$rc" = 2 ]
check "--config.file without a name: said" grep -q "needs a file name" <<<"$err"

# Serving (not built yet) still validates first: a bad file is reported, exit 1.
run --config.file="$tmp/bad.json"
check "serve with a bad file: exit 1" [ "$rc" = 1 ]
check "serve with a bad file: error" grep -q "modules.icmp.icmp.ttl" <<<"$err"

# --config.check touches no socket (strace; LeakSanitizer cannot run under ptrace).
if command -v strace >/dev/null; then
    ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=socket,connect,bind -o "$tmp/trace" \
        "$bin" --config.check --config.file="$tmp/good.json" >/dev/null 2>&1
    check "check: strace ran" [ -f "$tmp/trace" ]
    check "check: no socket call" [ ! -s "$tmp/trace" ]
else
    echo "note - strace missing: the no-socket rule is not checked here"
fi

[ "$failures" = 0 ]
