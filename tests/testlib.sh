# Shared helpers of the shell tests (sourced, not run).
# check NAME CMD...: runs CMD; prints "ok - NAME" or "FAIL - NAME" (plus $check_detail, if
# set, indented) and counts failures. check_done: exit 1 when any check failed; first it
# runs check_done_hook when a sourced library defines one (tests/exporter/lib.sh does: no
# stopped exporter left a process behind). Also exited PID and pick_port, below.
check_failures=0
check_detail=""

check() {
    local name=$1
    shift
    if "$@"; then
        echo "ok   - $name"
    else
        echo "FAIL - $name" >&2
        [ -z "$check_detail" ] || printf '%s\n' "$check_detail" | sed 's/^/       | /' >&2
        check_failures=$((check_failures + 1))
    fi
}

check_done() {
    if declare -F check_done_hook >/dev/null; then check_done_hook; fi
    if [ "$check_failures" -ne 0 ]; then
        echo "$(basename "$0"): $check_failures check(s) failed" >&2
        exit 1
    fi
    echo "$(basename "$0"): all checks passed"
}

# exited PID: true when PID is gone or a zombie (our child that has exited, not yet reaped).
exited() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -z "$st" ] || [ "$st" = Z ]
}

# pick_port: a free TCP port for a listener on loopback (20000..59999; bounded tries).
pick_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
    done
    return 1
}
