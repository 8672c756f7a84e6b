#!/usr/bin/env bash
# Hostile clients against the real binary over loopback (127.0.0.0/8 only; the probes go to
# 127.0.0.1), one attack a section, each its own ctest test (exporter_abuse_SECTION):
#   protocol   HEAD answers carry no body bytes (a kept-alive connection goes on cleanly);
#              repeated Content-Length, or Content-Length with Transfer-Encoding: 400
#   auth       a flood of wrong passwords from 8 addresses (bcrypt queue kept full): a
#              valid user from another address, its pair not yet remembered, gets 200
#   shutdown   SIGTERM with the bcrypt queue full of slow checks: exit within 2 s
#   fds        ulimit -n 64 with two listeners: max_connections lowered to fit, no accept()
#              failure loop (log bounded, CPU under a core), still serving afterwards
#   slowloris  trickling connections from 12 addresses holding every slot: scrapes from
#              another address are still served within 1 s (most of them)
# Usage: test_abuse.sh ICMP_EXPORTER SECTION
# shellcheck disable=SC2154,SC2034,SC2016,SC2317 # SC2317: sections are called as "sec_$section"
set -uo pipefail
bin=${1:?usage: test_abuse.sh ICMP_EXPORTER SECTION}
section=${2:?usage: test_abuse.sh ICMP_EXPORTER SECTION}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sections=(protocol auth shutdown fds slowloris)
case " ${sections[*]} " in
*" $section "*) ;;
*)
    echo "test_abuse.sh: unknown section '$section'; one of: ${sections[*]}" >&2
    exit 2
    ;;
esac
# shellcheck source=lib.sh
. "$here/lib.sh"
if [ "$(id -u)" != 0 ] &&
    ! awk '{ exit !($1 <= 0 && 0 <= $2) }' /proc/sys/net/ipv4/ping_group_range 2>/dev/null; then
    echo "SKIP - neither root nor ping sockets for group 0" >&2
    exit 77
fi

# raw.py PORT SRC REQUEST...: sends each REQUEST (Python string escapes: \r\n) on one
# connection from address SRC, one after the other, reading each answer whole (framed by its
# Content-Length or chunks; HEAD answers by their headers alone), and prints, per answer,
# its status line and the repr of the bytes that followed the header block before the next
# answer's status line; "closed" when the server closed the connection.
cat >"$tmp/raw.py" <<'EOF'
import socket, sys, time
port, src, reqs = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
s = socket.socket()
s.bind((src, 0))
s.settimeout(5)
s.connect(("127.0.0.1", port))
buf = b""
def more():
    global buf
    d = s.recv(65536)
    if not d:
        raise EOFError
    buf += d
for raw in reqs:
    req = raw.encode().decode("unicode_escape").encode("latin-1")
    s.sendall(req)
    head = req.split(b" ", 1)[0] == b"HEAD"
    try:
        while b"\r\n\r\n" not in buf:
            more()
        hdr, _, buf = buf.partition(b"\r\n\r\n")
        lines = hdr.split(b"\r\n")
        fields = {l.split(b":", 1)[0].strip().lower(): l.split(b":", 1)[1].strip()
                  for l in lines[1:] if b":" in l}
        body = b""
        if not head and b"content-length" in fields:
            n = int(fields[b"content-length"])
            while len(buf) < n:
                more()
            body, buf = buf[:n], buf[n:]
        elif not head and fields.get(b"transfer-encoding") == b"chunked":
            while not buf.endswith(b"\r\n0\r\n\r\n") and buf != b"0\r\n\r\n":
                more()
            body, buf = buf, b""
        # whatever else the server sent before our next request: must be nothing
        time.sleep(0.3)
        s.setblocking(False)
        try:
            buf += s.recv(65536)
        except BlockingIOError:
            pass
        s.settimeout(5)
        extra, buf = buf, b""
        print(lines[0].decode(), "body=%d" % len(body), "after=%r" % extra)
    except (EOFError, ConnectionError):
        print("closed")
        break
    except socket.timeout:
        print("timeout")
        break
EOF
raw() { "$py" "$tmp/raw.py" "$@" 2>&1; }

# flood.py PORT SECONDS USER:PASSWORD ADDRESSES PER_ADDRESS: from 127.0.0.2.. (ADDRESSES of
# them), PER_ADDRESS clients each send GET /-/healthy with those credentials, one request a
# connection, again as soon as answered, for SECONDS; prints the count of each status.
cat >"$tmp/flood.py" <<'EOF'
import base64, collections, socket, sys, threading, time
port, secs, cred = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
n_addr, per = int(sys.argv[4]), int(sys.argv[5])
req = ("GET /-/healthy HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\n"
       "Connection: close\r\n\r\n" % base64.b64encode(cred.encode()).decode()).encode()
counts = collections.Counter()
lock = threading.Lock()
end = time.monotonic() + secs
def client(src):
    while time.monotonic() < end:
        code = "000"
        s = socket.socket()
        try:
            s.settimeout(max(0.1, end - time.monotonic()))
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(req)
            data = b"".join(iter(lambda: s.recv(4096), b""))
            f = data.split(b" ", 2)
            code = f[1].decode() if len(f) > 1 else "000"
        except OSError:
            time.sleep(0.01)
        finally:
            s.close()
        with lock:
            counts[code] += 1
threads = [threading.Thread(target=client, args=("127.0.0.%d" % (2 + i // per),))
           for i in range(n_addr * per)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join("%s:%d" % kv for kv in sorted(counts.items())))
EOF

# Fixed bcrypt hashes (of the passwords named): cost 4 for the valid users, so their own
# check is quick; cost 8 and 12 for the flooded users, so the flood's checks are slow.
h_alice='$2b$04$gdBYCu4w1M16Zn0z7b6vlO49av.gUvHoeqVoU46SU8cGdh8IUCmi6' # s3cret
h_bob='$2b$04$UmO5e/Q8sx6j7CjztnQLSeABW9Af4DZKz./Yf3o7jYpozn7WzfWe6'   # n3w:pass
h_carol='$2b$12$reCtk4fNSS/3yNrO6zhk8./ng9LZjstCGyo.BEQ8z/SIxEX.Wvz1W' # s3cret, cost 12
h_dave='$2b$08$vucnyF6tqO1LNPfbG2sn8OAR1Ecde5Nmq5idW8gbF/a5TZO3druDK'  # s3cret, cost 8
write_users() {
    cat >"$tmp/cfg.json" <<EOF
{ "modules": { "icmp": { "timeout": "1s" } },
  "web": { "basic_auth_users": { "alice": "$h_alice", "bob": "$h_bob", "carol": "$h_carol",
                                 "dave": "$h_dave" } } }
EOF
}
# start_users USER: starts exporter A with those users, and sets t_one to the time one
# wrong password for USER takes (what one check of a flood at USER costs here).
start_users() {
    write_users
    if ! start_exporter A 127.0.0.1 --config.file="$tmp/cfg.json"; then
        check "exporter A serves" false
        check_done
    fi
    timed one 127.0.0.1 -u "$1:wrong" "$A_url/-/healthy"
    t_one=$(cat "$tmp/one.secs")
}
# start_flood SECONDS USER:PASSWORD ADDRESSES PER_ADDRESS: flood.py against A in the
# background (its PID in flood, its counts in $tmp/flood.out), given 1.5 s to fill the queue.
start_flood() {
    "$py" "$tmp/flood.py" "$A_port" "$@" >"$tmp/flood.out" 2>&1 &
    flood=$!
    sleep 1.5
}
# timed ID SRC CURL_ARGS... URL: one request from address SRC; its status in $tmp/ID.code,
# its wall time (s) in $tmp/ID.secs.
timed() {
    local id=$1 src=$2 t0 t1
    shift 2
    t0=$(date +%s%N)
    curl -sS -g --max-time 20 --interface "$src" -o /dev/null -w '%{http_code}' "$@" \
        >"$tmp/$id.code" 2>"$tmp/$id.err"
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }' >"$tmp/$id.secs"
}

# ---------------------------------------------------------------------------------------
sec_protocol() {
    cat >"$tmp/cfg.json" <<'EOF'
{ "modules": { "icmp": { "timeout": "1s" } }, "targets": [ { "target": "127.0.0.1" } ] }
EOF
    if ! start_exporter A 127.0.0.1 --config.file="$tmp/cfg.json"; then
        check "exporter A serves" false
        check_done
    fi
    local out get
    # HEAD /metrics on a kept-alive connection, then GET /-/healthy on the same one: the
    # HEAD answer ends at its header block, and the next answer starts right after it.
    out=$(raw "$A_port" 127.0.0.1 'HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n' \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n')
    check_detail="$out"
    check "HEAD /metrics: 200 and no byte after the header block" \
        grep -qxF "HTTP/1.1 200 OK body=0 after=b''" <<<"$(sed -n 1p <<<"$out")"
    check "  the next request on the connection: 200 OK, its body whole, nothing more" \
        grep -qxF "HTTP/1.1 200 OK body=3 after=b''" <<<"$(sed -n 2p <<<"$out")"
    # Its Content-Length is that of GET's body, and its headers are GET's.
    req h -I "$A_url/metrics"
    req g "$A_url/metrics"
    get=$(stat -c %s "$tmp/g.body")
    check_detail="HEAD: $(tr -d '\r' <"$tmp/h.hdr")"
    check "  HEAD /metrics: Content-Length near GET's body ($get bytes; the uptime may differ)" \
        awk -v a="$(hdr h Content-Length)" -v b="$get" 'BEGIN { exit !(a > b - 20 && a < b + 20) }'
    check "  HEAD /metrics: GET's Content-Type" [ "$(hdr h Content-Type)" = "$(hdr g Content-Type)" ]
    out=$(raw "$A_port" 127.0.0.1 'HEAD /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n' \
        'HEAD /probe?target=127.0.0.1 HTTP/1.1\r\nHost: x\r\n\r\n' \
        'HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n' 'GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n')
    check_detail="$out"
    check "HEAD gzip /metrics, /probe, a 404, then a GET on one connection: each clean" \
        [ "$(grep -c "after=b''\$" <<<"$out")" = 4 ]

    # Request framing: one Content-Length, or none.
    out=$(raw "$A_port" 127.0.0.1 \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello' \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n')
    check_detail="$out"
    check "two different Content-Length: 400" grep -q '^HTTP/1.1 400' <<<"$(sed -n 1p <<<"$out")"
    check "  and the connection is closed (the body's end is unknown)" \
        grep -qx 'closed' <<<"$(sed -n 2p <<<"$out")"
    out=$(raw "$A_port" 127.0.0.1 \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n')
    check_detail="$out"
    check "two equal Content-Length: 400 too (no client of ours sends a body)" \
        grep -q '^HTTP/1.1 400' <<<"$out"
    out=$(raw "$A_port" 127.0.0.1 'GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 0, 0\r\n\r\n')
    check_detail="$out"
    check "a Content-Length list (0, 0): 400" grep -q '^HTTP/1.1 400' <<<"$out"
    out=$(raw "$A_port" 127.0.0.1 \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
    check_detail="$out"
    check "Content-Length with Transfer-Encoding: 400" grep -q '^HTTP/1.1 400' <<<"$out"
    out=$(raw "$A_port" 127.0.0.1 'GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n' \
        'GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n')
    check_detail="$out"
    check "one Content-Length: 0: 200, and the connection goes on" \
        [ "$(grep -c '^HTTP/1.1 200 OK body=3' <<<"$out")" = 2 ]
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_auth() {
    local t_one
    start_users dave
    # 8 addresses x 12 clients = 96 checks wanted at once for 64 places, for 6 s.
    start_flood 6 dave:wrong 8 12
    # alice and bob, never seen (their pairs not remembered), from addresses of their own.
    timed va 127.0.0.60 -u alice:s3cret "$A_url/-/healthy"
    timed vb 127.0.0.61 -u bob:n3w:pass "$A_url/-/healthy"
    timed vw 127.0.0.62 -u alice:nope "$A_url/-/healthy"
    wait "$flood"
    echo "# flood of wrong passwords (cost 8, one check ${t_one}s), 8 addresses x 12 clients:" \
        "$(cat "$tmp/flood.out"); a cold valid user meanwhile: $(cat "$tmp/va.code") in" \
        "$(cat "$tmp/va.secs")s, another $(cat "$tmp/vb.code") in $(cat "$tmp/vb.secs")s"
    check_detail="flood answers: $(cat "$tmp/flood.out")"
    check "the flood was refused (401) and overflowed (503)" \
        grep -qE '401:[0-9]+ 503:[0-9]+' "$tmp/flood.out"
    check_detail="HTTP $(cat "$tmp/va.code") after $(cat "$tmp/va.secs")s $(cat "$tmp/va.err")"
    check "during the flood, alice (not yet remembered, another address): 200 within 5 s" \
        awk -v c="$(cat "$tmp/va.code")" -v t="$(cat "$tmp/va.secs")" \
        'BEGIN { exit !(c == 200 && t < 5) }'
    check_detail="HTTP $(cat "$tmp/vb.code") after $(cat "$tmp/vb.secs")s $(cat "$tmp/vb.err")"
    check "  and bob from a third: 200 within 5 s" \
        awk -v c="$(cat "$tmp/vb.code")" -v t="$(cat "$tmp/vb.secs")" \
        'BEGIN { exit !(c == 200 && t < 5) }'
    check_detail="HTTP $(cat "$tmp/vw.code") after $(cat "$tmp/vw.secs")s"
    check "  a wrong password from a fourth: 401 (checked, not refused as busy)" \
        [ "$(cat "$tmp/vw.code")" = 401 ]
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_shutdown() {
    local t_one
    start_users carol
    # 56 cost-12 checks queued (8 addresses x 7: within every limit, so none is refused
    # before the SIGTERM): seconds of bcrypt, then SIGTERM.
    start_flood 4 carol:wrong 8 7
    check "A is alive" alive A
    stop_exporter A TERM 20
    echo "# SIGTERM with 56 cost-12 checks queued (one ${t_one}s): exit $stop_rc after" \
        "${stop_secs}s"
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/A.log")"
    check "SIGTERM with the bcrypt queue full: exit 0 within 3 s (README: 2 s)" \
        awk -v c="$stop_rc" -v t="$stop_secs" 'BEGIN { exit !(c == 0 && t < 3) }'
    wait "$flood"
    check_detail="flood answers: $(cat "$tmp/flood.out")"
    check "  the checks dropped were answered 503 (the only 503s: nothing overflowed before)" \
        grep -q '503:' "$tmp/flood.out"
    check "A logged no sanitizer report" \
        bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/A.log'"
}

# ---------------------------------------------------------------------------------------
sec_fds() {
    local real_bin=$bin t0 t1 cpu lines fdflood
    cat >"$tmp/cfg.json" <<'EOF'
{ "modules": { "icmp": { "timeout": "1s" } }, "targets": [ { "target": "127.0.0.1" } ] }
EOF
    # 64 descriptors and two listeners (127.0.0.1 and ::1): the default max_connections
    # (4096 per listener) cannot fit.
    cat >"$tmp/nofile64.sh" <<EOF
#!/bin/sh
ulimit -n 64 && exec "$bin" "\$@"
EOF
    chmod +x "$tmp/nofile64.sh"
    bin=$tmp/nofile64.sh
    if ! start_exporter A "127.0.0.1 [::1]" --config.file="$tmp/cfg.json"; then
        bin=$real_bin
        check "exporter A serves with ulimit -n 64" false
        check_done
    fi
    bin=$real_bin
    check_detail="$(head -20 "$tmp/A.log")"
    check "start-up warns that max_connections was lowered to fit the descriptor limit" \
        grep -qE 'max_connections lowered.*per_listener=[0-9]+ nofile=64' "$tmp/A.log"
    # 60 connections held on each listener (past the descriptors), then new ones opened and
    # closed as fast as one client can, and one held closed each turn, for 6 s.
    cat >"$tmp/fdflood.py" <<'EOF'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
held, end = [], time.monotonic() + secs
for _ in range(60):
    for h in ("127.0.0.1", "::1"):
        try:
            held.append(socket.create_connection((h, port), timeout=0.5))
        except OSError:
            pass
while time.monotonic() < end:
    for h in ("127.0.0.1", "::1"):
        try:
            socket.create_connection((h, port), timeout=0.2).close()
        except OSError:
            pass
    if held:
        held.pop(0).close()
EOF
    "$py" "$tmp/fdflood.py" "$A_port" 6 &
    fdflood=$!
    sleep 2
    t0=$(awk '{ print $14 + $15 }' "/proc/$A_pid/stat")
    lines=$(wc -l <"$tmp/A.log")
    sleep 2
    t1=$(awk '{ print $14 + $15 }' "/proc/$A_pid/stat")
    lines=$(($(wc -l <"$tmp/A.log") - lines))
    cpu=$((t1 - t0))
    wait "$fdflood"
    echo "# ulimit -n 64, two listeners, connections held and churned: $cpu CPU ticks in 2 s" \
        "(100 a second is a core), $lines log lines, $(wc -c <"$tmp/A.log") bytes of log in all"
    check_detail="$(sort "$tmp/A.log" | cut -c26- | uniq -c | sort -rn | head -5)"
    check "  the log stays bounded (< 20 lines in those 2 s, < 4 KiB in all)" \
        [ "$lines" -lt 20 ] && [ "$(wc -c <"$tmp/A.log")" -lt 4096 ]
    check "  no accept() failure logged at all: the connection limit fits" \
        bash -c "! grep -q 'Error accepting connection' '$tmp/A.log'"
    check_detail="$cpu ticks"
    check "  CPU under a core (< 150 of 200 ticks in 2 s; the churn itself costs some)" \
        [ "$cpu" -lt 150 ]
    req after "$A_url/metrics"
    check "  afterwards /metrics: 200 with the target up" \
        want_metric after eq 1 icmp_target_success target=127.0.0.1
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_slowloris() {
    local out
    # max_connections 24 (to be quick: the default is 4096), 4 per address, of them 1 that
    # has not sent a request yet (scaled down as the slots are: the default is 16 of 4096).
    # SLOWLORIS_NEW_PER_IP=0 turns that cap off, to see what it prevents.
    cat >"$tmp/cfg.json" <<EOF
{ "modules": { "icmp": { "timeout": "1s" } }, "targets": [ { "target": "127.0.0.1" } ],
  "limits": { "max_connections": 24, "max_connections_per_ip": 4,
              "max_new_connections_per_ip": ${SLOWLORIS_NEW_PER_IP:-1}, "request_timeout": "30s" } }
EOF
    if ! start_exporter A 127.0.0.1 --config.file="$tmp/cfg.json"; then
        check "exporter A serves" false
        check_done
    fi
    # From 12 addresses, connections that send part of a request and a byte now and then,
    # reopened as soon as they are closed, holding every slot; meanwhile six scrapes of
    # /metrics from another address, each timed.
    out=$("$py" - "$A_port" <<'EOF' 2>&1
import http.client, socket, sys, threading, time
port = int(sys.argv[1])
stop = False
def holder(src):
    s = None
    while not stop:
        try:
            if s is None:
                s = socket.socket()
                s.bind((src, 0))
                s.settimeout(0.5)
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            s.sendall(b"X")
            try:
                if s.recv(1) == b"":
                    s.close(); s = None
            except socket.timeout:
                pass
        except OSError:
            if s is not None:
                s.close()
            s = None
            time.sleep(0.05)
threads = [threading.Thread(target=holder, args=("127.0.0.%d" % (20 + i // 3),))
           for i in range(36)]
for t in threads:
    t.start()
time.sleep(2)
import subprocess
for i in range(5):  # the holders' connections the server has, a few looks 0.1 s apart
    ss = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%d )" % port],
                        capture_output=True, text=True).stdout.split("\n")
    print("held %d" % sum(1 for l in ss if " 127.0.0.2" in l or " 127.0.0.3" in l))
    time.sleep(0.1)
for i in range(6):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3,
                                       source_address=("127.0.0.99", 0))
        c.request("GET", "/metrics")
        r = c.getresponse()
        r.read()
        print("scrape %d %.3f" % (r.status, time.monotonic() - t0))
    except (OSError, http.client.HTTPException) as e:
        print("scrape failed %.3f %s" % (time.monotonic() - t0, type(e).__name__))
    time.sleep(0.3)
stop = True
for t in threads:
    t.join()
EOF
)
    echo "# 36 trickling connections from 12 addresses for 24 slots; scrapes meanwhile:" \
        "${out//$'\n'/; }"
    check_detail="$out"
    # All but a very unlucky one (5 of 6 asserted, 6 of 6 in every run seen): the 12
    # addresses hold about 12 of the 24 slots with connections that never send a request.
    # Without that cap (SLOWLORIS_NEW_PER_IP=0), on a busy machine, 1 in 9 to 1 in 4 scrapes
    # were cut while the holders refilled freed slots; before the eviction of idle
    # connections, all of them waited for request_timeout.
    # The holders' connections as ss sees them are printed, not judged: a look also counts
    # connections still in the kernel's backlog, which a busy machine leaves there (a median
    # of 11-13 with the cap on a quiet machine, 17 under CI's load; 19-30 without it).
    check "6 scrapes while 12 addresses reopen trickling connections: >= 5 get 200 < 1 s" \
        [ "$(awk '$1 == "scrape" && $2 == 200 && $3 < 1' <<<"$out" | wc -l)" -ge 5 ]
    stop_a
}

# stop_a: the end of every section with exporter A: alive, no sanitizer report, exit 0.
stop_a() {
    check "A is alive" alive A
    check "A logged no sanitizer report" \
        bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/A.log'"
    stop_exporter A TERM 5
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/A.log")"
    check "A: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
    check_detail=""
}

"sec_$section"
check_done
