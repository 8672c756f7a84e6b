#!/usr/bin/env bash
# Moving from blackbox_exporter, with the real binary: Debian's stock blackbox.yml (package
# prometheus-blackbox-exporter) passes --config.check and says what it skips; an exporter
# started on it serves the same modules (/config) as one started on the equivalent JSON;
# the skipped modules are 400s and the warnings are logged at start and on reload;
# exporter-toolkit web configuration files give TLS (a certificate made by openssl here)
# and basic auth; bad files get their exact error lines; --timeout-offset takes seconds.
# Exporters listen on 127.0.0.1 at a free port, probe only 127.0.0.1, are stopped by PID.
# Usage: test_blackbox.sh ICMP_EXPORTER
# shellcheck disable=SC2154,SC2016
set -uo pipefail
bin=${1:?usage: test_blackbox.sh ICMP_EXPORTER}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../exporter/lib.sh
. "$here/../exporter/lib.sh"

stock=/etc/prometheus/blackbox.yml
missing=""
[ -r "$stock" ] || missing+=" $stock (apt-get install prometheus-blackbox-exporter)"
command -v openssl >/dev/null || missing+=" openssl"
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi
read -r glo ghi </proc/sys/net/ipv4/ping_group_range
if [ "$(id -u)" != 0 ] && ! { [ "$(id -g)" -ge "$glo" ] && [ "$(id -g)" -le "$ghi" ]; }; then
    echo "SKIP - not root and ping sockets not allowed for gid $(id -g): cannot ping loopback"
    exit 77
fi

h_alice='$2b$04$gdBYCu4w1M16Zn0z7b6vlO49av.gUvHoeqVoU46SU8cGdh8IUCmi6' # s3cret

# run ARGS...: the binary's stdout in $out, stderr in $err, status in $rc.
run() {
    out=$("$bin" "$@" 2>"$tmp/run.err")
    rc=$?
    err=$(cat "$tmp/run.err")
}
code() { # URL CURL_ARGS...: the status code (000: no HTTP answer)
    local url=$1
    shift
    curl -sS -g --max-time 10 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}
no_sanitizer_report() { ! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$tmp/$1.log"; }

# ---------------------------------------------------------------------------------------
# Debian's stock file: loads, with one warning per module of another prober.
skipped="http_2xx:http:2 http_post_2xx:http:4 tcp_connect:tcp:8 pop3s_banner:tcp:10
grpc:grpc:18 grpc_plain:grpc:23 ssh_banner:tcp:28 irc_banner:tcp:34"
expected_warnings=""
for s in $skipped; do
    IFS=: read -r name prober line <<<"$s"
    expected_warnings+="$stock:$line:3: modules.$name: skipped: prober \"$prober\" (icmp_exporter"
    expected_warnings+=" runs icmp modules only)"$'\n'
done
expected_warnings=${expected_warnings%$'\n'}
run --config.check --config.file="$stock"
check "stock blackbox.yml: --config.check exits 0" [ "$rc" = 0 ]
check_detail="stdout: $out"
check "  says what it loaded" [ "$out" = "config OK: 2 modules, 0 targets, 8 warnings" ]
check_detail="stderr:
$err
expected:
$expected_warnings"
check "  names every skipped module, its prober and position" [ "$err" = "$expected_warnings" ]
check_detail=""
for f in /usr/share/doc/prometheus-blackbox-exporter/examples/blackbox.yml \
    /usr/share/doc/prometheus-blackbox-exporter/examples/example.yml; do
    # Debian images may drop /usr/share/doc; the examples are checked where they exist.
    [ -r "$f" ] || continue
    run --config.check --config.file="$f"
    check_detail="$out
$err"
    check "$(basename "$f") from the package's examples: loads" [ "$rc" = 0 ]
done
check_detail=""

# The same modules as the equivalent JSON: blackbox's defaults, and a module without a
# timeout takes the scrape's deadline (2m without the header, as blackbox's 120 s).
cat >"$tmp/equivalent.json" <<'EOF'
{
  "modules": {
    "icmp": { "prober": "icmp", "timeout": "2m",
              "icmp": { "preferred_ip_protocol": "ip6", "ttl": 64, "payload_size": 28 } },
    "icmp_ttl5": { "prober": "icmp", "timeout": "5s", "icmp": { "ttl": 5 } }
  }
}
EOF
if ! start_exporter Y 127.0.0.1 --config.file="$stock"; then
    check "exporter Y (stock blackbox.yml) serves" false
    check_done
fi
if ! start_exporter J 127.0.0.1 --config.file="$tmp/equivalent.json"; then
    check "exporter J (equivalent JSON) serves" false
    check_done
fi
req yc "$Y_url/config"
req jc "$J_url/config"
check "Y: /config 200" want_code yc 200
check_detail=$(diff "$tmp/yc.plain" "$tmp/jc.plain")
check "Y's /config (blackbox.yml) equals J's (the equivalent JSON)" cmp -s "$tmp/yc.plain" "$tmp/jc.plain"
check_detail=""
check "  and names both icmp modules" grep -q '"icmp_ttl5"' "$tmp/yc.plain"
req yp "$Y_url/probe?module=icmp_ttl5&target=127.0.0.1"
check "Y: /probe?module=icmp_ttl5 succeeds" want_metric yp eq 1 probe_success
req yh "$Y_url/probe?module=http_2xx&target=127.0.0.1"
check "Y: /probe?module=http_2xx (skipped): 400" want_code yh 400
n=$(grep -c 'level=warn msg="configuration warning" warning=' "$tmp/Y.log")
check_detail="$(cat "$tmp/Y.log")"
check "Y: the 8 warnings are logged at start" [ "$n" = 8 ]
check "  each as logfmt, quoted" grep -qF "warning=\"$stock:2:3: modules.http_2xx: skipped: prober \\\"http\\\"" "$tmp/Y.log"
check_detail=""
stop_exporter J TERM 5
check "J: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
stop_exporter Y TERM 5
check "Y: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
check "Y logged no sanitizer report" no_sanitizer_report Y

# A reload logs the new file's warnings.
cp "$stock" "$tmp/blackbox.yml"
if ! start_exporter R 127.0.0.1 --config.file="$tmp/blackbox.yml" --web.enable-lifecycle; then
    check "exporter R serves" false
    check_done
fi
# (Debian's file ends without a newline)
printf '\n  dns_extra:\n    prober: dns\n' >>"$tmp/blackbox.yml"
req rr -X POST "$R_url/-/reload"
check "R: reload of a blackbox.yml with one more dns module: 200" want_code rr 200
check_detail=$(tail -12 "$tmp/R.log")
check "  the new module's warning is logged" grep -qF "modules.dns_extra: skipped: prober \\\"dns\\\"" "$tmp/R.log"
check "  and every warning again (8 + 9)" [ "$(grep -c 'configuration warning' "$tmp/R.log")" = 17 ]
check_detail=""
stop_exporter R TERM 5
check "R: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]

# ---------------------------------------------------------------------------------------
# Bad YAML: the exact line, exit 1.
printf 'modules:\n  icmp:\n    prober: icmp\n    icmp:\n      ttl: 300\n' >"$tmp/bad.yml"
run --config.check --config.file="$tmp/bad.yml"
check "bad.yml: exit 1" [ "$rc" = 1 ]
check_detail="$err"
check "  exact error" [ "$err" = "$tmp/bad.yml:5:12: modules.icmp.icmp.ttl: expected an integer in 1..255, got 300" ]
printf 'modules:\n  icmp:\n    prober: icmp\n   timeout: 5s\n' >"$tmp/syntax.yaml"
run --config.check --config.file="$tmp/syntax.yaml"
check_detail="$err"
check "syntax.yaml: exact error" [ "$err" = "$tmp/syntax.yaml:4:4: (syntax): did not find expected key (while parsing a block mapping at 2:3)" ]
# No extension: YAML by its first byte.
printf 'modules:\n  icmp:\n    prober: icmp\n    timeout: 5\n' >"$tmp/noext"
run --config.check --config.file="$tmp/noext"
check_detail="$err"
check "a file without extension, not starting with '{': read as YAML" [ "$err" = "$tmp/noext:4:14: modules.icmp.timeout: expected a duration such as \"5s\", \"1.5s\" or \"1m30s\" (Go's form, as blackbox_exporter reads it), got 5" ]
check_detail=""

# ---------------------------------------------------------------------------------------
# exporter-toolkit web configuration: TLS (relative paths, next to the web file) and users.
mkdir -p "$tmp/web"
make_test_cert "$tmp/web"
cat >"$tmp/web/web-config.yml" <<EOF
# exporter-toolkit's format, as blackbox_exporter --web.config.file reads it
tls_server_config:
  cert_file: cert.pem
  key_file: key.pem
  min_version: TLS12
basic_auth_users:
  alice: $h_alice
EOF
run --config.check --config.file="$stock" --web.config.file="$tmp/web/web-config.yml"
check "web-config.yml: --config.check exits 0" [ "$rc" = 0 ]
start_scheme=https start_curl_opts=(--cacert "$tmp/web/cert.pem" -u alice:s3cret)
if ! start_exporter T 127.0.0.1 --config.file="$stock" --web.config.file="$tmp/web/web-config.yml"; then
    check "exporter T (TLS and users from the web file) serves" false
    check_done
fi
start_scheme=http start_curl_opts=()
req t1 --cacert "$tmp/web/cert.pem" -u alice:s3cret "$T_url/probe?module=icmp&target=127.0.0.1"
check "T: https, verified certificate, credentials: probe_success 1" want_metric t1 eq 1 probe_success
check "  no credentials: 401" [ "$(code "$T_url/metrics" --cacert "$tmp/web/cert.pem")" = 401 ]
check "  wrong password: 401" [ "$(code "$T_url/metrics" --cacert "$tmp/web/cert.pem" -u alice:x)" = 401 ]
check "  plain HTTP to the TLS port: no HTTP answer" [ "$(code "${T_url/https:/http:}/metrics")" = 000 ]
check_detail=$(head -20 "$tmp/T.log")
check "  the log says TLS" grep -q 'msg=listening .*tls=true' "$tmp/T.log"
check_detail=""
stop_exporter T TERM 5
check "T: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]
check "T logged no sanitizer report" no_sanitizer_report T

printf 'basic_auth_users:\n  alice: %s\n' "$h_alice" >"$tmp/web/users.yml"
if ! start_exporter U 127.0.0.1 --config.file="$stock" --web.config.file="$tmp/web/users.yml"; then
    check "exporter U (users from the web file) serves" false
    check_done
fi
check "U: plain HTTP without credentials: 401" [ "$(code "$U_url/metrics")" = 401 ]
check "  with alice's: 200" [ "$(code "$U_url/metrics" -u alice:s3cret)" = 200 ]
stop_exporter U TERM 5
check "U: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]

# What the web file cannot ask for, and the same thing in both files: the exact line.
printf 'tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n  client_auth_type: RequireAndVerifyClientCert\n' >"$tmp/web/mtls.yml"
run --config.check --web.config.file="$tmp/web/mtls.yml"
check "mtls.yml: exit 1" [ "$rc" = 1 ]
check_detail="$err"
check "  exact error" [ "$err" = "$tmp/web/mtls.yml:4:21: tls_server_config.client_auth_type: expected \"NoClientCert\": icmp_exporter does not ask for client certificates (use basic_auth_users), got \"RequireAndVerifyClientCert\"" ]
printf '{\n  "web": { "basic_auth_users": { "bob": "%s" } }\n}\n' "$h_alice" >"$tmp/users.json"
run --config.check --config.file="$tmp/users.json" --web.config.file="$tmp/web/users.yml"
check "users in both files: exit 1" [ "$rc" = 1 ]
check_detail="$err"
check "  exact error" [ "$err" = "$tmp/web/users.yml:1:1: basic_auth_users: already set by web.basic_auth_users in the configuration file ($tmp/users.json:2:12): set it in one place" ]
run --config.check --web.config.file="$tmp/web/none.yml"
check "a missing web file: exit 1, errno text" [ "$rc:$err" = "1:$tmp/web/none.yml: cannot open: No such file or directory" ]
run --config.check --web.config.file=
check "--web.config.file without a name: exit 2" [ "$rc" = 2 ]
check_detail=""

# ---------------------------------------------------------------------------------------
# --timeout-offset in blackbox's seconds: the deadline is the header less the offset.
run --config.check --timeout-offset=abc
check "--timeout-offset=abc: exit 2" [ "$rc" = 2 ]
check "  says what it takes" grep -q 'seconds: 0.5' <<<"$err"
if ! start_exporter O 127.0.0.1 --timeout-offset=0.25; then
    check "exporter O (--timeout-offset=0.25) serves" false
    check_done
fi
req o1 -H 'X-Prometheus-Scrape-Timeout-Seconds: 3' "$O_url/probe?target=127.0.0.1"
check "O: header 3 s, offset 0.25: probe_timeout_seconds 2.75" want_metric o1 eq 2.75 probe_timeout_seconds
stop_exporter O TERM 5
check "O: SIGTERM -> exit 0" [ "$stop_rc" = 0 ]

check_done
