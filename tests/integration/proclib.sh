# shellcheck shell=bash
# Process and port helpers of the integration tests that run real servers
# (test_prometheus.sh, test_blackbox.sh); sourced, not run. The caller sets py (the Python
# to run promcheck.py with) and here (this folder), and keeps helper_pid="" until
# promcheck runs, so its cleanup can stop a helper still running.

alive() { ! exited "$1"; }

# stop PID LIMIT_S: SIGTERM, then SIGKILL after LIMIT_S seconds; sets stop_rc (the exit
# status, or "killed").
stop() {
    local pid=$1 limit=$2 i
    stop_rc=""
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 20; i++)); do
        exited "$pid" && break
        sleep 0.05
    done
    if ! exited "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        stop_rc=killed
    fi
    if wait "$pid" 2>/dev/null; then
        stop_rc=${stop_rc:-0}
    else
        stop_rc=${stop_rc:-$?}
    fi
}

# promcheck ARGS...: runs promcheck.py in the background and waits for it, so that SIGTERM
# or SIGINT runs the cleanup at once (bash runs traps only between foreground commands).
# shellcheck disable=SC2154 # py and here come from the caller
promcheck() {
    "$py" "$here/promcheck.py" "$@" &
    helper_pid=$!
    local rc=0
    wait "$helper_pid" || rc=$?
    helper_pid=""
    return "$rc"
}

# show_log NAME FILE: the last lines of a log, indented, on stderr.
show_log() {
    echo "       | --- $1 ($2), last 30 lines:" >&2
    tail -30 "$2" 2>/dev/null | sed 's/^/       | /' >&2
}

# elapsed T0: seconds since T0 (a `date +%s.%N`), one decimal.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
