#!/usr/bin/env bash
# The web flags operators bring from blackbox_exporter and exporter-toolkit, with the real
# binary over loopback (127.0.0.1 only):
# - --web.route-prefix and --web.external-url (whose path is the default prefix): every
#   route lives below the prefix, nothing outside it, the landing page links into it, and
#   --web.route-prefix wins over the URL's path; bad values are refused with exit 2;
# - --web.systemd-socket: the exporter serves on the socket systemd-socket-activate passes
#   (the sd_listen_fds protocol), and without one exits 1 saying so.
# Every exporter is started in a process group of its own and stopped by its PID.
# Usage: test_web_flags.sh ICMP_EXPORTER
set -uo pipefail
bin=${1:?usage: test_web_flags.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"

tmp=$(mktemp -d) || exit 1
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 40); do exited "$pid" && break; sleep 0.05; done
        exited "$pid" || kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in curl setsid systemd-socket-activate; do
    command -v "$tool" >/dev/null || { echo "FAIL - missing $tool" >&2; exit 1; }
done

# serve NAME PORT CMD...: starts CMD in a process group of its own (stderr to $tmp/NAME.log)
# and waits until PORT answers HTTP (any status). Sets last_pid.
serve() {
    local name=$1 port=$2
    shift 2
    setsid "$@" 2>"$tmp/$name.log" &
    last_pid=$!
    pids+=("$last_pid")
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
        exited "$last_pid" && break
        sleep 0.05
    done
    check_detail=$(tail -5 "$tmp/$name.log")
    return 1
}

stop() {
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 60); do exited "$1" && break; sleep 0.05; done
    wait "$1" 2>/dev/null
}

# code URL: the HTTP status of a GET.
code() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$1"; }

# --- --web.route-prefix ---------------------------------------------------------------
port=$(pick_port)
if serve prefix "$port" "$bin" --web.listen-address="127.0.0.1:$port" --web.route-prefix=/icmp/;
then
    u=http://127.0.0.1:$port
    check "route prefix: /icmp/metrics 200" [ "$(code "$u/icmp/metrics")" = 200 ]
    check "route prefix: /icmp/probe?target=127.0.0.1 succeeds" \
        grep -qx 'probe_success 1' <(curl -s --max-time 10 "$u/icmp/probe?target=127.0.0.1")
    check "route prefix: /icmp/-/healthy 200" [ "$(code "$u/icmp/-/healthy")" = 200 ]
    check "route prefix: /metrics (outside the prefix) 404" [ "$(code "$u/metrics")" = 404 ]
    check "route prefix: /icmpx/metrics (a longer name) 404" [ "$(code "$u/icmpx/metrics")" = 404 ]
    curl -s --max-time 10 "$u/icmp" >"$tmp/landing.html"
    check "route prefix: /icmp is the landing page, linking into the prefix" \
        grep -q 'href="/icmp/metrics"' "$tmp/landing.html"
    check "route prefix: no link outside it" \
        bash -c "! grep -o 'href=\"[^\"]*\"' '$tmp/landing.html' | grep -v '\"/icmp/'"
    stop "$last_pid"
else
    check "route prefix: the exporter serves" false
fi

# --- --web.external-url, and --web.route-prefix winning over its path --------------------
port=$(pick_port)
if serve url "$port" "$bin" --web.listen-address="127.0.0.1:$port" \
    --web.external-url=https://monitor.example:9723/net/icmp/; then
    u=http://127.0.0.1:$port
    check "external URL: its path is the prefix (/net/icmp/metrics 200)" \
        [ "$(code "$u/net/icmp/metrics")" = 200 ]
    check "external URL: / is outside it (404)" [ "$(code "$u/")" = 404 ]
    stop "$last_pid"
else
    check "external URL: the exporter serves" false
fi
port=$(pick_port)
if serve both "$port" "$bin" --web.listen-address="127.0.0.1:$port" --web.route-prefix=/ \
    --web.external-url=http://monitor.example/net/icmp; then
    check "--web.route-prefix=/ wins over the URL's path (/metrics 200)" \
        [ "$(code "http://127.0.0.1:$port/metrics")" = 200 ]
    stop "$last_pid"
else
    check "route prefix and URL: the exporter serves" false
fi

# --- bad values: exit 2 and a reason ----------------------------------------------------
for bad in --web.route-prefix=icmp '--web.route-prefix=/a"b' --web.route-prefix=/a//b \
    --web.external-url=ftp://h/x --web.external-url=http:///x '--web.external-url=http://h/x?y' \
    '--web.external-url=http://h/<x>'; do
    timeout 5 "$bin" "$bad" >/dev/null 2>"$tmp/bad.err"
    rc=$?
    check_detail="exit $rc: $(cat "$tmp/bad.err")"
    check "refused with exit 2 and a reason: $bad" \
        bash -c "[ $rc = 2 ] && grep -q 'want' '$tmp/bad.err'"
done
check_detail=""

# --- --web.systemd-socket ---------------------------------------------------------------
port=$(pick_port)
# systemd-socket-activate binds the port, and starts the exporter with it as descriptor 3 at
# the first connection (the readiness probe).
if serve systemd "$port" systemd-socket-activate -l "127.0.0.1:$port" -- "$bin" \
    --web.systemd-socket; then
    u=http://127.0.0.1:$port
    check "systemd socket: /probe?target=127.0.0.1 succeeds on the passed socket" \
        grep -qx 'probe_success 1' <(curl -s --max-time 10 "$u/probe?target=127.0.0.1")
    check "systemd socket: the log names descriptor 3" \
        grep -q 'msg=listening systemd_socket_fd=3' "$tmp/systemd.log"
    check "systemd socket: no port of its own (no --web.listen-address bound)" \
        bash -c "! grep -q 'address=:9723' '$tmp/systemd.log'"
    stop "$last_pid"
else
    check "systemd socket: the exporter serves" false
fi
"$bin" --web.systemd-socket 2>"$tmp/nosd.err" >/dev/null &
nosd=$!
pids+=("$nosd")
for _ in $(seq 100); do exited "$nosd" && break; sleep 0.05; done
wait "$nosd" 2>/dev/null
rc=$?
check_detail="exit $rc: $(tail -2 "$tmp/nosd.err")"
check "systemd socket: without one, exit 1 saying systemd passed none" \
    bash -c "[ $rc = 1 ] && grep -q 'systemd passed no sockets' '$tmp/nosd.err'"

check_done
