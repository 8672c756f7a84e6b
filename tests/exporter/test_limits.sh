#!/usr/bin/env bash
# Limits that must hold under abuse, against the real binary over loopback (127.0.0.0/8
# only): the request deadline against a client sending a byte at a time (libmicrohttpd's
# inactivity timeout never trips on it) and against a silent one, kept-alive connections
# that keep working, connections per address and in all, an oversized header, and the
# global packet budget (limits.max_packets_per_second) shared by concurrent probes.
# Usage: test_limits.sh ICMP_EXPORTER
# shellcheck disable=SC2154
set -uo pipefail
bin=${1:?usage: test_limits.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

# The client side, in Python for exact timing of sockets (stdlib only, loopback only).
cat >"$tmp/client.py" <<'EOF'
import http.client, socket, sys, time

cmd, port = sys.argv[1], int(sys.argv[2])

def closed_after(sock, trickle, limit):
    """Seconds until the server closes sock (sending a byte every 0.3 s if trickle)."""
    sock.settimeout(0.3)
    t0 = time.monotonic()
    data = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    i = 0
    while time.monotonic() - t0 < limit:
        if trickle:
            try:
                sock.send(data[i % len(data):i % len(data) + 1])
                i += 1
            except OSError:
                return time.monotonic() - t0
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:
            return time.monotonic() - t0
    return -1

if cmd in ("trickle", "silent"):
    s = socket.create_connection(("127.0.0.1", port))
    print("%.2f" % closed_after(s, cmd == "trickle", 10))
elif cmd == "keepalive":
    # three requests on one connection, 1.2 s apart (under the 2 s deadline each time)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    codes = []
    for _ in range(3):
        c.request("GET", "/-/healthy")
        r = c.getresponse()
        r.read()
        codes.append(r.status)
        time.sleep(1.2)
    c.request("GET", "/-/healthy")
    r = c.getresponse()
    r.read()
    codes.append(r.status)
    print(" ".join(map(str, codes)), c.sock is not None)
elif cmd == "hold":
    # hold N idle connections from source address SRC, then try one more request from
    # SRC2; print whether each held one is still open, and the extra request's result
    n, src, src2 = int(sys.argv[3]), sys.argv[4], sys.argv[5]
    held = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        held.append(s)
    time.sleep(0.3)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=3, source_address=(src2, 0))
    try:
        c.request("GET", "/-/healthy")
        r = c.getresponse()
        r.read()
        print("extra", r.status)
    except (OSError, http.client.HTTPException) as e:
        print("extra refused", type(e).__name__)
    for s in held:
        s.close()
elif cmd == "two":
    # two GETs (HTTP/1.0) sent back to back on two connections, so that both are served
    # at once however late a busy machine would start two clients; each body to its OUT
    paths, outs = sys.argv[3:5], sys.argv[5:7]
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in paths]
    for s, path in zip(socks, paths):
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
    for s, out in zip(socks, outs):
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        open(out, "wb").write(body)
        print(head.split(b"\r\n", 1)[0].decode(errors="replace"))
elif cmd == "flood":
    # N /probe requests (HTTP/1.0) from SRC all at once, then, once they are queued, one
    # from VICTIM; the victim's body to VOUT, the flood's to FOUT.<i>; prints the victim's
    # status line and how many flood answers were 200
    n, path, src, victim, vpath, vout, fout = int(sys.argv[3]), *sys.argv[4:10]
    def get(src_addr, p):
        s = socket.socket()
        s.settimeout(20)
        s.bind((src_addr, 0))
        s.connect(("127.0.0.1", port))
        s.sendall(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % p).encode())
        return s
    def answer(s):
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        head, _, body = data.partition(b"\r\n\r\n")
        return head.split(b"\r\n", 1)[0].decode(errors="replace"), body
    flood = [get(src, path) for _ in range(n)]
    time.sleep(0.5)
    line, body = answer(get(victim, vpath))
    open(vout, "wb").write(body)
    print("victim", line)
    got = 0
    for i, s in enumerate(flood):
        fline, body = answer(s)
        open("%s.%d" % (fout, i), "wb").write(body)
        got += fline.startswith("HTTP/1.") and " 200 " in fline
    print("flood answers", got)
EOF
py=/usr/bin/python3
client() { "$py" "$tmp/client.py" "$@" 2>&1; }

cat >"$tmp/cfg.json" <<'EOF'
{
  "modules": { "icmp": { "timeout": "5s" } },
  "limits": { "request_timeout": "2s", "max_connections_per_ip": 3, "max_connections": 6,
              "max_packets_per_second": 100 }
}
EOF
if ! start_exporter L 127.0.0.1 --config.file="$tmp/cfg.json" --web.enable-lifecycle; then
    check "exporter L serves" false
    check_done
fi
l=$L_url

# The request deadline: 2 s, swept each second, so cut within 2..3.5 s.
out=$(client trickle "$L_port")
check_detail="server closed after ${out}s (-1: not within 10 s)"
check "a client sending a byte every 0.3 s is cut within 2-3.5 s (request_timeout 2s)" \
    awk -v t="$out" 'BEGIN { exit !(t >= 1.9 && t <= 3.5) }'
out=$(client silent "$L_port")
check_detail="server closed after ${out}s"
check "a silent connection is cut within 2-3.5 s too" \
    awk -v t="$out" 'BEGIN { exit !(t >= 1.9 && t <= 3.5) }'
out=$(client keepalive "$L_port")
check_detail="codes and still connected: $out"
check "a kept-alive connection with requests 1.2 s apart keeps working (deadline per request)" \
    [ "$out" = "200 200 200 200 True" ]
req m1 "$l/metrics"
check "icmp_exporter_http_request_timeouts_total counts the 2 cut connections" \
    want_metric m1 ge 2 icmp_exporter_http_request_timeouts_total

# Connections per address (3) and in all (6).
out=$(client hold "$L_port" 3 127.0.0.2 127.0.0.2)
check_detail="$out"
check "3 connections from 127.0.0.2 held: a 4th from it is refused" grep -q 'extra refused' <<<"$out"
out=$(client hold "$L_port" 3 127.0.0.3 127.0.0.4)
check_detail="$out"
check "3 held from 127.0.0.3: another address still gets 200" grep -q 'extra 200' <<<"$out"
out=$("$py" - "$L_port" <<'EOF' 2>&1
import http.client, socket, sys, time
port = int(sys.argv[1])
held = []
for i in range(6):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (10 + i), 0))
    s.connect(("127.0.0.1", port))
    held.append(s)
time.sleep(0.3)
# 1 s: past 2 s the request deadline would cut the idle held ones and let it in
c = http.client.HTTPConnection("127.0.0.1", port, timeout=1, source_address=("127.0.0.30", 0))
try:
    c.request("GET", "/-/healthy")
    r = c.getresponse()
    print("extra", r.status)
except (OSError, http.client.HTTPException) as e:
    print("extra refused", type(e).__name__)
cut = 0
for s in held:
    s.settimeout(0.2)
    try:
        cut += s.recv(1) == b""
    except (socket.timeout, OSError):
        pass
print("held cut", cut, "")
held.pop().close()
time.sleep(0.3)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=3, source_address=("127.0.0.31", 0))
c.request("GET", "/-/healthy")
print("after one closed", c.getresponse().status)
EOF
)
check_detail="$out"
# At the limit the connection waiting longest for its request is cut (http_conn.c): the
# 7th client, sending its request whole, is served.
check "6 idle connections held (max_connections 6): a 7th is served (idle ones cut for it)" \
    grep -q 'extra 200' <<<"$out"
check "  held ones cut: one per connection started from one below the limit, 3 of 6" grep -qE "held cut 3 " <<<"$out"
check "  one closed: the next gets 200" grep -q 'after one closed 200' <<<"$out"

# An oversized request header (libmicrohttpd's 8 KiB per connection): refused, not served.
req big -H "X-Big: $(head -c 16000 /dev/zero | tr '\0' a)" "$l/-/healthy"
check "a 16 KB header: 4xx" want_code big 400 413 414 431

# The packet budget: 100 echoes/s in all. 20 echoes 1 ms apart need 0.19 s; two such
# probes at once share the budget and need 0.39 s.
req p1 "$l/probe?target=127.0.0.1&count=20&interval=1ms"
check "max_packets_per_second 100: 20 echoes take >= 0.19 s" \
    want_metric p1 between 0.185:2 probe_duration_seconds
check "  all answered" want_metric p1 eq 20 probe_icmp_echoes_received
# One client sends both requests at once: two curls started one after the other may start
# 0.2 s apart on a busy machine, and then barely share the budget.
out=$(client two "$L_port" "/probe?target=127.0.0.1&count=20&interval=1ms" \
    "/probe?target=::1&count=20&interval=1ms" "$tmp/p2.plain" "$tmp/p3.plain")
A=$(mval "$tmp/p2.plain" probe_duration_seconds) B=$(mval "$tmp/p3.plain" probe_duration_seconds) \
    check "  two at once share it: the later one ends after >= 0.38 s" \
    num_ok "the two probes' durations (answers: ${out//$'\n'/, })" '(a > b ? a : b) >= 0.38'
# A reload raises the budget: the same probe then takes a few ms.
sed -i 's/"max_packets_per_second": 100/"max_packets_per_second": 100000/' "$tmp/cfg.json"
req rl -X POST "$l/-/reload"
check "reload to 100000 packets/s: 200" want_code rl 200
req p4 "$l/probe?target=127.0.0.1&count=20&interval=1ms"
check "  20 echoes 1 ms apart now take < 0.1 s" want_metric p4 lt 0.1 probe_duration_seconds

# The budget is shared per client address: one client flooding /probe cannot starve
# another's probe. 150 probes of 127.0.0.1 from 127.0.0.2 queue 150 echoes, 7.5 s at 20
# packets/s (their 5 s timeout cuts the last ~50); a probe from 127.0.0.3 0.5 s later, with a
# 3 s timeout, used to wait behind all of them and end with nothing sent and success 0. Now
# the two clients take turns: its echo goes out within a few slots.
cat >"$tmp/fair.json" <<'EOF'
{
  "modules": { "icmp": { "timeout": "5s" } },
  "limits": { "max_packets_per_second": 20 }
}
EOF
if start_exporter F 127.0.0.1 --config.file="$tmp/fair.json"; then
    out=$(client flood "$F_port" 150 "/probe?target=127.0.0.1" 127.0.0.2 127.0.0.3 \
        "/probe?target=127.0.0.1&timeout=3s" "$tmp/victim.plain" "$tmp/flood.plain")
    check_detail="client: ${out//$'\n'/, }; victim's answer: $(head -c 1500 "$tmp/victim.plain")"
    check "a flood of 150 probes from 127.0.0.2: 127.0.0.3's probe succeeds" \
        want_metric victim eq 1 probe_success
    check "  its echo was sent" want_metric victim eq 1 probe_icmp_echoes_sent
    check "  within 1.5 s (not after the flood's 7.5 s)" \
        want_metric victim lt 1.5 probe_duration_seconds
    check_detail="client: ${out//$'\n'/, }"
    check "  all 150 flood probes answered 200" grep -q 'flood answers 150' <<<"$out"
    # The flood's own probes past the budget say so: unsent, not lost.
    unsent=0 sent=0 nan=0
    for f in "$tmp"/flood.plain.*; do
        u=$(mval "$f" probe_icmp_echoes_unsent)
        if [ "$u" = 1 ]; then
            unsent=$((unsent + 1))
            [ "$(mval "$f" probe_icmp_loss_ratio)" = NaN ] && nan=$((nan + 1))
        elif [ "$u" = 0 ] && [ "$(mval "$f" probe_icmp_echoes_sent)" = 1 ]; then
            sent=$((sent + 1))
        fi
    done
    echo "# victim: success $(mval "$tmp/victim.plain" probe_success), sent" \
        "$(mval "$tmp/victim.plain" probe_icmp_echoes_sent), duration" \
        "$(mval "$tmp/victim.plain" probe_duration_seconds) s; flood: $sent sent, $unsent unsent"
    check_detail="flood probes: $sent sent, $unsent unsent ($nan of them with loss NaN)"
    check "  20..140 flood probes sent; the others say their echo is unsent, loss NaN" \
        bash -c "[ $sent -ge 20 ] && [ $sent -le 140 ] && [ $unsent = $((150 - sent)) ] && [ $nan = $unsent ]"
    check "  F is alive" alive F
    stop_exporter F TERM 5
    check "  F: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
else
    check "exporter F serves" false
fi

# payload_size: the configuration's limit is the engine's, so the largest value that loads
# (65507, the most an IPv4 echo carries) is really sent, to 127.0.0.1 and to ::1. (The
# engine once stopped at 65000: such a probe then sent nothing and read as down.)
cat >"$tmp/big.json" <<'EOF'
{ "modules": { "icmp": { "timeout": "3s" },
               "big": { "timeout": "3s", "icmp": { "payload_size": 65507 } } } }
EOF
if start_exporter G 127.0.0.1 --config.file="$tmp/big.json"; then
    for dst in 127.0.0.1 ::1; do
        [ "$dst" = ::1 ] && ! ip -6 addr show dev lo 2>/dev/null | grep -q '::1/128' && continue
        req "big$dst" "$G_url/probe?target=$dst&module=big"
        check "payload_size 65507 to $dst: the echo is sent" \
            want_metric "big$dst" eq 1 probe_icmp_echoes_sent
        check "  and answered: probe_success 1" want_metric "big$dst" eq 1 probe_success
    done
    check "  G is alive" alive G
    stop_exporter G TERM 5
else
    check "exporter G serves" false
fi

check "L is alive" alive L
check "L logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/L.log'"
stop_exporter L TERM 5
check_detail="exit status $stop_rc; stderr tail: $(tail -5 "$tmp/L.log")"
check "L: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]

# Without epoll_pwait2 (kernels before 5.11, older seccomp profiles, Valgrind 3.19) the
# engine falls back to epoll_wait: it must neither spin nor read replies only at timeouts.
# strace injects ENOSYS into every epoll_pwait2 call. P's PID is strace's; the exporter is
# its child, in P's process group, and stop_exporter signals the group: strace blocks
# SIGTERM while it runs a command (and, if killed, detaches and leaves the exporter running),
# so the signal must reach the exporter itself, which strace then follows out.
# LeakSanitizer cannot work under ptrace (it exits 1 with "a fatal error"): off for P.
cat >"$tmp/no_pwait2.sh" <<EOF
#!/bin/sh
export ASAN_OPTIONS=\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}detect_leaks=0
exec strace -o /dev/null -f -e trace=epoll_pwait2 -e inject=epoll_pwait2:error=ENOSYS "$bin" "\$@"
EOF
chmod +x "$tmp/no_pwait2.sh"
real_bin=$bin
bin=$tmp/no_pwait2.sh
if command -v strace >/dev/null && start_exporter P 127.0.0.1 --config.file="$tmp/cfg.json"; then
    bin=$real_bin
    req np "$P_url/probe?target=127.0.0.1"
    check "no epoll_pwait2: a loopback probe still takes < 0.5 s (not its 5 s timeout)" \
        want_metric np lt 0.5 probe_duration_seconds
    ep=$(pgrep -P "$P_pid" -x icmp_exporter | head -1)
    t0=$(awk '{ print $14 + $15 }' "/proc/$ep/stat")
    sleep 2
    t1=$(awk '{ print $14 + $15 }' "/proc/$ep/stat")
    check_detail="CPU ticks in 2 s idle: $((t1 - t0))"
    check "  and idles without spinning (< 20 ticks of CPU in 2 s)" [ $((t1 - t0)) -lt 20 ]
    stop_exporter P TERM 5
    check_detail="strace (PID $P_pid) exit status $stop_rc after ${stop_secs}s"
    check "  SIGTERM to P's process group: the exporter exits 0, and strace with it" \
        [ "$stop_rc" = 0 ]
    check_detail="exporter PID $ep: $(tr '\0' ' ' <"/proc/$ep/cmdline" 2>/dev/null)"
    check "  the traced exporter is gone" exited "$ep"
    check_detail=""
else
    bin=$real_bin
    check "exporter P under strace (strace installed) serves" false
fi
check_done
