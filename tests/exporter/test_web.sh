#!/usr/bin/env bash
# Exposure: basic auth (bcrypt, exporter-toolkit semantics), TLS with a certificate made
# here by openssl, and the privilege drop, against the real binary over loopback (127.0.0.1
# only; the probes go to 127.0.0.1). Good and bad credentials, hostile Authorization
# headers, the cache of good pairs, a storm of wrong passwords that must not block anyone
# else, plain HTTP to the TLS port, old TLS versions, reloads that change users or TLS, and
# /proc/PID/status of a process started as root with --user.
# Usage: test_web.sh ICMP_EXPORTER
# shellcheck disable=SC2154,SC2016
set -uo pipefail
bin=${1:?usage: test_web.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

command -v openssl >/dev/null || {
    echo "FAIL - openssl is missing (apt-get install openssl)" >&2
    exit 1
}

# Fixed test hashes (bcrypt of the passwords named): cost 4 keeps most checks fast, cost 12
# makes one bcrypt slow enough (hundreds of ms) to see whether it ran.
h_alice='$2b$04$gdBYCu4w1M16Zn0z7b6vlO49av.gUvHoeqVoU46SU8cGdh8IUCmi6' # s3cret
h_bob='$2b$04$UmO5e/Q8sx6j7CjztnQLSeABW9Af4DZKz./Yf3o7jYpozn7WzfWe6'   # n3w:pass
h_carol='$2b$12$reCtk4fNSS/3yNrO6zhk8./ng9LZjstCGyo.BEQ8z/SIxEX.Wvz1W' # s3cret, cost 12
h_dave='$2b$08$vucnyF6tqO1LNPfbG2sn8OAR1Ecde5Nmq5idW8gbF/a5TZO3druDK'  # s3cret, cost 8
h_other='$2b$04$OjnFRxdFhl4lhp76sWsu1eKQAeK5rTFalJTD.P58AofoZBie2Fq7C' # other

# secs CMD...: runs CMD, prints its wall time in seconds.
secs() {
    local t0 t1
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}
# code URL CURL_ARGS...: the status code of one request (000: no HTTP answer).
code() {
    local url=$1
    shift
    curl -sS -g --max-time 10 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------
# B: basic auth over plain HTTP.
write_b() { # USERS_JSON
    cat >"$tmp/cfg_b.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s" } },
  "targets": [ { "target": "127.0.0.1" } ],
  "web": { "basic_auth_users": $1 }
}
EOF
}
write_b "{ \"alice\": \"$h_alice\", \"bob\": \"$h_bob\", \"carol\": \"$h_carol\",
          \"dave\": \"$h_dave\" }"
if ! start_exporter B 127.0.0.1 --config.file="$tmp/cfg_b.json" --web.enable-lifecycle; then
    check "exporter B (basic auth) serves" false
    check_done
fi
b=$B_url
for path in /metrics "/probe?target=127.0.0.1" /-/healthy /config / /nonexistent; do
    req b0 "$b$path"
    check "B: GET $path without credentials: 401" want_code b0 401
    check "  WWW-Authenticate: Basic realm" want_header b0 WWW-Authenticate '^Basic realm="icmp_exporter"'
done
req b1 -u alice:s3cret "$b/probe?target=127.0.0.1"
check "B: alice, right password: /probe 200, probe_success 1" want_metric b1 eq 1 probe_success
req b2 -u alice:s3cret "$b/metrics"
check "  /metrics 200" want_code b2 200
check "  /metrics carries the static target" want_metric b2 eq 1 icmp_target_success target=127.0.0.1
req b3 -u bob:n3w:pass "$b/-/healthy"
check "B: bob, a password with ':' in it: 200" want_code b3 200
req b4 -X POST -u alice:s3cret "$b/-/reload"
check "B: POST /-/reload with credentials: 200" want_code b4 200
for bad in alice:wrong alice: alice:S3CRET alice:s3cret. mallory:s3cret :s3cret Alice:s3cret \
    "bob:n3w" "alice:s3cret:"; do
    req bx -u "$bad" "$b/metrics"
    check "B: credentials '$bad': 401" want_code bx 401
done
# Hostile Authorization headers: never a crash, always 401 (or 431 when too large).
for h in "Basic" "Basic " "Basic !!!!" "Basic $(printf 'YWxpY2U=' )" "Bearer abc" \
    "basic $(printf 'alice:s3cret' | base64)" "Basic $(printf 'alice:s3cret' | base64)=" \
    "Basic $(printf 'alice\0x:s3cret' | base64)" "Basic $(head -c 3000 /dev/zero | tr '\0' A)"; do
    req bh -H "Authorization: $h" "$b/metrics"
    check "B: Authorization '${h:0:40}': 401" want_code bh 401
done
req bh2 -H "Authorization: Basic $(head -c 20000 /dev/zero | tr '\0' A)" "$b/metrics"
check "B: a 20 KB Authorization header: refused (4xx), no crash" want_code bh2 400 401 413 431
# The good pair is remembered: carol's cost-12 hash takes one slow bcrypt, then none.
t_first=$(secs curl -sS -u carol:s3cret "$b/-/healthy")
t_again=$(secs curl -sS -u carol:s3cret "$b/-/healthy")
t_wrong=$(secs curl -sS -u carol:wrong "$b/-/healthy")
t_nouser=$(secs curl -sS -u nobody_here:wrong "$b/-/healthy")
echo "# cost-12 bcrypt: first ${t_first}s, cached ${t_again}s, wrong password ${t_wrong}s," \
    "unknown user ${t_nouser}s"
A=$t_first B=$t_again check "B: a good pair is remembered (bcrypt once)" \
    num_ok "the first good request runs bcrypt, the second does not" 'a > 0.05 && b < a / 3'
# A wrong password for carol pays her cost-12 bcrypt every time.
A=$t_wrong check "B: a wrong password is never cached" \
    num_ok "a wrong password runs bcrypt" 'a > 0.05'
# A storm of wrong passwords against a cost-8 user: they queue on the one bcrypt thread,
# the overflow gets 503 at once, and a remembered pair still passes meanwhile. One client
# connects 100 times, then sends the 100 requests back to back: they are all waiting before
# the first bcrypt ends, however busy the machine (100 curl processes started one by one
# can arrive slower than the queue drains, and never fill it).
cat >"$tmp/storm.py" <<'EOF'
import base64, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(n)]
for i, s in enumerate(socks, 1):
    cred = base64.b64encode(b"dave:wrong%d" % i).decode()
    s.sendall(("GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic %s\r\n"
               "Connection: close\r\n\r\n" % cred).encode())
for s in socks:
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    status = data.split(b"\r\n", 1)[0].split()
    print(status[1].decode() if len(status) > 1 else "000")
EOF
"$py" "$tmp/storm.py" "$B_port" 100 >"$tmp/storm.codes" 2>"$tmp/storm.err" &
storm=$!
sleep 0.3
t_during=$(secs curl -sS --max-time 10 -u alice:s3cret "$b/probe?target=127.0.0.1")
req bs -u alice:s3cret "$b/probe?target=127.0.0.1"
wait "$storm"
n401=$(grep -c '^401$' "$tmp/storm.codes")
n503=$(grep -c '^503$' "$tmp/storm.codes")
echo "# 100 concurrent wrong passwords (cost 8): $n401 answered 401, $n503 answered 503;" \
    "a cached good request meanwhile took ${t_during}s"
check_detail="401: $n401, 503: $n503 of 100; other answers: $(grep -vxE '401|503' "$tmp/storm.codes" | sort | uniq -c | tr '\n' ' ')$(head -c 300 "$tmp/storm.err")"
check "B: storm of 100 wrong passwords: each gets 401 or 503" [ $((n401 + n503)) = 100 ]
check "  the queue is bounded: some got 503 at once" [ "$n503" -gt 0 ]
A=$t_during check "  a remembered pair is answered within 1 s during the storm" \
    num_ok "a cached request during the storm" 'a < 1'
check "  ... and its probe succeeds" want_metric bs eq 1 probe_success
req bm -u alice:s3cret "$b/metrics"
check "B: icmp_exporter_http_requests_total{code=401} counts the refusals" \
    want_metric bm ge 20 icmp_exporter_http_requests_total code=401
check "  ... and {code=503} the overflow" want_metric bm ge 1 icmp_exporter_http_requests_total code=503
req bc -u alice:s3cret "$b/config"
check "B: /config hides the hashes" bash -c "! grep -q '\\\$2b\\\$' '$tmp/bc.plain'"
# Reload to other users: the old password stops working, the new one works.
write_b "{ \"alice\": \"$h_other\" }"
req br -X POST -u alice:s3cret "$b/-/reload"
check "B: reload to new users: 200" want_code br 200
check "  alice's old password: 401" [ "$(code "$b/-/healthy" -u alice:s3cret)" = 401 ]
check "  alice's new password: 200" [ "$(code "$b/-/healthy" -u alice:other)" = 200 ]
check "  bob is gone: 401" [ "$(code "$b/-/healthy" -u bob:n3w:pass)" = 401 ]
# Reload to no users: open again.
write_b "{}"
req br2 -X POST -u alice:other "$b/-/reload"
check "B: reload to no users: 200" want_code br2 200
check "  then no credentials needed" [ "$(code "$b/metrics")" = 200 ]
check "B is alive" alive B
check "B logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/B.log'"
stop_exporter B TERM 5
check_detail="exit status $stop_rc; stderr tail: $(tail -5 "$tmp/B.log")"
check "B: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
check_detail=""

# ---------------------------------------------------------------------------------------
# T: TLS (a certificate for 127.0.0.1 made now) with basic auth.
make_test_cert "$tmp"
cp "$tmp/cert.pem" "$tmp/cert2.pem"
write_t() { # CERT_FILE
    cat >"$tmp/cfg_t.json" <<EOF
{
  "modules": { "icmp": { "timeout": "2s" } },
  "web": { "tls_server_config": { "cert_file": "$1", "key_file": "key.pem" },
           "basic_auth_users": { "alice": "$h_alice" } }
}
EOF
}
write_t cert.pem
out=$("$bin" --config.check --config.file="$tmp/cfg_t.json" 2>&1)
check_detail="$out"
check "T: --config.check accepts TLS + basic auth" grep -q 'config OK' <<<"$out"
start_scheme=https start_curl_opts=(--cacert "$tmp/cert.pem")
if ! start_exporter T 127.0.0.1 --config.file="$tmp/cfg_t.json" --web.enable-lifecycle; then
    check "exporter T (TLS) serves" false
    check_done
fi
start_scheme=http start_curl_opts=()
t=$T_url
req t1 --cacert "$tmp/cert.pem" -u alice:s3cret "$t/probe?target=127.0.0.1"
check "T: https, verified certificate, credentials: /probe 200, probe_success 1" \
    want_metric t1 eq 1 probe_success
check "  no credentials: 401" [ "$(code "$t/metrics" --cacert "$tmp/cert.pem")" = 401 ]
check "  wrong password: 401" [ "$(code "$t/metrics" --cacert "$tmp/cert.pem" -u alice:x)" = 401 ]
check "  an unknown CA: the handshake fails (000)" [ "$(code "$t/metrics" -u alice:s3cret)" = 000 ]
plain=${t/https:/http:}
check "  plain HTTP to the TLS port: no HTTP answer (000)" [ "$(code "$plain/metrics")" = 000 ]
check "  TLS 1.1 at most: refused (000)" \
    [ "$(code "$t/metrics" --cacert "$tmp/cert.pem" --tlsv1 --tls-max 1.1 -u alice:s3cret)" = 000 ]
check "  TLS 1.2 exactly: 200" \
    [ "$(code "$t/metrics" --cacert "$tmp/cert.pem" --tlsv1.2 --tls-max 1.2 -u alice:s3cret)" = 200 ]
check "  TLS 1.3: 200" [ "$(code "$t/metrics" --cacert "$tmp/cert.pem" --tlsv1.3 -u alice:s3cret)" = 200 ]
# Garbage on the TLS port, then a good request: still serving.
head -c 4096 /dev/urandom | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$T_port" 2>/dev/null
check "  after 4 KB of garbage on the port: still 200" \
    [ "$(code "$t/-/healthy" --cacert "$tmp/cert.pem" -u alice:s3cret)" = 200 ]
# A reload that changes the TLS files is refused (TLS is set up at start), the old kept.
write_t cert2.pem
req tr -X POST --cacert "$tmp/cert.pem" -u alice:s3cret "$t/-/reload"
check "T: reload naming another certificate file: refused (500)" want_code tr 500
check "  says to restart" want_body tr 'restart'
req tm --cacert "$tmp/cert.pem" -u alice:s3cret "$t/metrics"
check "  the reload failure is reported" want_metric tm eq 0 icmp_exporter_config_last_reload_successful
check "  and the server still serves TLS with the old settings" want_code tm 200
check "T is alive" alive T
check "T logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/T.log'"
stop_exporter T TERM 5
check "T: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
# A key that does not belong to the certificate: refused at start, saying so.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/otherkey.pem" -out "$tmp/othercert.pem" -days 1 -subj /CN=x >/dev/null 2>&1
write_t othercert.pem
timeout 10 "$bin" --config.file="$tmp/cfg_t.json" --web.listen-address=127.0.0.1:0 \
    >/dev/null 2>"$tmp/tbad.err"
rc=$?
check_detail="exit $rc; stderr: $(cat "$tmp/tbad.err")"
check "T: a key that does not match the certificate: exit 1, an error logged" \
    bash -c "[ $rc = 1 ] && grep -q 'level=error' '$tmp/tbad.err'"
check_detail=""

# ---------------------------------------------------------------------------------------
# P: privilege drop (needs root to start as root).
if [ "$(id -u)" = 0 ]; then
    cat >"$tmp/cfg_p.json" <<'EOF'
{ "modules": { "icmp": { "timeout": "2s" } }, "targets": [ { "target": "127.0.0.1" } ] }
EOF
    chmod 644 "$tmp/cfg_p.json"
    chmod 755 "$tmp"
    if start_exporter P 127.0.0.1 --config.file="$tmp/cfg_p.json" --user=nobody \
        --web.enable-lifecycle; then
        st=/proc/$P_pid/status
        check_detail=$(grep -E '^(Uid|Gid|Groups|Cap|NoNewPrivs)' "$st")
        check "P: --user=nobody: real, effective, saved uid 65534" \
            grep -qE '^Uid:\s+65534\s+65534\s+65534\s+65534$' "$st"
        check "  gid of nobody, no supplementary groups" \
            bash -c "grep -qE '^Gid:\\s+$(id -g nobody)(\\s+$(id -g nobody)){3}\$' '$st' && grep -qE '^Groups:\\s*\$' '$st'"
        check "  no capability in any set" bash -c "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' '$st' |
            grep -qv '0000000000000000' && exit 1 || exit 0"
        check "  NoNewPrivs 1" grep -qE '^NoNewPrivs:\s+1$' "$st"
        bad=""
        for task in /proc/"$P_pid"/task/*; do
            grep -qE '^CapEff:\s+0+$' "$task/status" && grep -qE '^Uid:\s+65534\s' "$task/status" ||
                bad+=" $(basename "$task")"
        done
        check_detail="threads with capabilities or another uid:$bad"
        check "  every thread: uid 65534, no capabilities" [ -z "$bad" ]
        req p1 "$P_url/probe?target=127.0.0.1"
        check "  the ICMP socket opened before the drop still probes: probe_success 1" \
            want_metric p1 eq 1 probe_success
        req p2 -X POST "$P_url/-/reload"
        check "  reload as nobody (readable file): 200" want_code p2 200
        stop_exporter P TERM 5
        check "P: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
    else
        check "exporter P (--user=nobody) serves" false
    fi
    if start_exporter R 127.0.0.1 --config.file="$tmp/cfg_p.json"; then
        st=/proc/$R_pid/status
        check_detail=$(grep -E '^(Uid|Cap|NoNewPrivs)' "$st")
        check "R: root without --user: still uid 0 but no capabilities" bash -c \
            "grep -qE '^CapEff:\\s+0+\$' '$st' && grep -qE '^CapPrm:\\s+0+\$' '$st'"
        check "  and it warns about it" grep -q 'level=warn msg="running as root' "$tmp/R.log"
        stop_exporter R TERM 5
    else
        check "exporter R (root, no --user) serves" false
    fi
    timeout 10 "$bin" --config.file="$tmp/cfg_p.json" --web.listen-address=127.0.0.1:0 \
        --user=no-such-user-here >/dev/null 2>"$tmp/pbad.err"
    rc=$?
    check_detail="exit $rc; stderr: $(cat "$tmp/pbad.err")"
    check "--user=no-such-user-here: exit 1 saying so" \
        bash -c "[ $rc = 1 ] && grep -q 'no user' '$tmp/pbad.err'"
    check_detail=""
else
    echo "# not root: the privilege drop checks need to start as root (skipped)"
fi
check_done
