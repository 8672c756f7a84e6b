#!/usr/bin/env bash
# The real icmp_exporter binary over real HTTP on loopback (127.0.0.1 and ::1 only; no other
# address is ever probed or resolved), one behaviour a section, each its own ctest test
# (exporter_http_SECTION) with an exporter of its own:
#   cli          the command line: --help, --config.check, bad flag values (no server)
#   serve        two listeners, logfmt logs and the socket mode, the landing page, /config
#   probe        /probe over IPv4 and IPv6, the default module, debug output, the
#                header-derived timeout
#   negotiation  /probe content negotiation: text, OpenMetrics, gzip (promtool and
#                prometheus_client check them)
#   errors       every error code of /probe and the routes, good overrides
#   metrics      /metrics: own metrics, static targets, hostile label values in both
#                formats, gzip, counters across scrapes
#   concurrency  50 concurrent probes with 20 /metrics; max_concurrent_probes 1 (503, the
#                in-flight gauge), --timeout-offset, --log.level, SIGTERM with a probe in flight
#   reload       SIGHUP and POST /-/reload, success and failure, counters across a reload;
#                403 without --web.enable-lifecycle; /-/healthy during an 8 MB reload; the
#                last reload asked for wins; a FIFO as configuration path (SIGTERM, sweep)
#   default      no configuration file (the embedded default), JSON logs, SIGINT
# Every section that starts the main exporter A ends with its checks of A: alive, no
# sanitizer report, exit 0 on SIGTERM. Every exporter is started on a free high port and
# stopped by its process group (tests/exporter/lib.sh).
# Usage: test_http.sh ICMP_EXPORTER [SECTION...]   (no SECTION: all, one after another)
#
# NAME_url, NAME_pid... are set by start_exporter with printf -v; '$2b$' etc. are literal.
# shellcheck disable=SC2154,SC2016,SC2317 # SC2317: sections are called as "sec_$section"
set -uo pipefail
bin=${1:?usage: test_http.sh ICMP_EXPORTER [SECTION...]}
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sections=(cli serve probe negotiation errors metrics concurrency reload default)

# All sections, or several: each in a run of its own. Exit 1 when one failed, 77 when all
# were skipped.
if [ $# -ne 1 ]; then
    [ $# -gt 0 ] || set -- "${sections[@]}"
    failed="" ran=""
    for s in "$@"; do
        echo "# section $s"
        "$0" "$bin" "$s"
        case $? in
        0) ran=1 ;;
        77) ;;
        *) failed+=" $s" ;;
        esac
    done
    [ -z "$failed" ] || {
        echo "test_http.sh: failed:$failed" >&2
        exit 1
    }
    [ -n "$ran" ] || exit 77
    exit 0
fi
section=$1
case " ${sections[*]} " in
*" $section "*) ;;
*)
    echo "test_http.sh: unknown section '$section'; one of: ${sections[*]}" >&2
    exit 2
    ;;
esac
# shellcheck source=lib.sh
. "$here/lib.sh"

# ---------------------------------------------------------------------------------------
# Preconditions: probing loopback needs a raw socket (root) or a ping socket.
read -r glo ghi </proc/sys/net/ipv4/ping_group_range
if [ "$section" != cli ] && [ "$(id -u)" != 0 ] &&
    ! { [ "$(id -g)" -ge "$glo" ] && [ "$(id -g)" -le "$ghi" ]; }; then
    echo "SKIP - not root and ping sockets not allowed for gid $(id -g): cannot ping loopback"
    exit 77
fi
want_mode=$(expected_mode)
version=$("$bin" --version | sed -n 's/^icmp_exporter, version \([^ ]*\) .*/\1/p')

# The hostile label value: quote, backslash, newline, tab, braces/commas/equals, unicode.
hostile_json='a \"quoted\" \\back\\slash\\\\ new\nline\ttab {x=\"1\",y} h\u00e9llo \u20ac \ud83d\ude00 \u65e5\u672c'

# write_cfg_a FILE EXTRA_MODULE SITE: the main configuration (EXTRA_MODULE adds a module by
# that name, for reload tests; SITE is the ::1 target's label).
write_cfg_a() {
    local extra=""
    [ -n "$2" ] && extra=",
    \"$2\": { \"timeout\": \"2s\", \"icmp\": { \"preferred_ip_protocol\": \"ip4\" } }"
    cat >"$1" <<EOF
{
  "modules": {
    "icmp": { "prober": "icmp", "timeout": "5s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp_1s": { "timeout": "1s", "icmp": { "preferred_ip_protocol": "ip4" } },
    "icmp6": { "timeout": "5s", "icmp": { "preferred_ip_protocol": "ip6" } }$extra
  },
  "targets": [
    { "target": "127.0.0.1", "module": "icmp",
      "labels": { "note": "$hostile_json", "uni": "\u00e9\u20ac\ud83d\ude00" } },
    { "target": "::1", "module": "icmp", "labels": { "site": "$3" } }
  ],
  "limits": {
    "allowed_targets": ["127.0.0.1", "::1"],
    "max_echoes_per_probe": 100,
    "max_concurrent_probes": 1000,
    "max_targets_per_scrape": 10000
  }
}
EOF
}
cfga=$tmp/cfg_a.json
write_cfg_a "$cfga" "" lo6
# Prometheus' Accept header.
om_accept='application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
# The static targets of cfg_a, with their labels.
t4l=(target=127.0.0.1 module=icmp ip=127.0.0.1 ip_version=4)
t6l=(target=::1 module=icmp ip=::1 ip_version=6 site=lo6)

# start_a [ARGS...]: A, the main exporter: cfg_a, two listeners (127.0.0.1 and [::1]),
# logfmt logs at info, and ARGS. Sets a and a6 (its URLs); a section ends with stop_a.
start_a() {
    if ! start_exporter A "127.0.0.1 [::1]" --config.file="$cfga" "$@"; then
        check "exporter A serves on 127.0.0.1 and [::1]" false
        check_done
    fi
    a=$A_url
    a6="http://[::1]:$A_port"
}

# stop_a: A last: still alive, no sanitizer report, clean exit on SIGTERM.
stop_a() {
    check "A is alive at the end" alive A
    check_detail="A's stderr:
$(grep -vE 'level=(debug|info)' "$tmp/A.log" | head -20)"
    check "A logged no sanitizer report" bash -c "! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' '$tmp/A.log'"
    stop_exporter A TERM 2
    check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail:
$(tail -15 "$tmp/A.log")"
    check "A: SIGTERM -> exit 0 within 2 s" [ "$stop_rc" = 0 ]
    check_detail=""
}

# ---------------------------------------------------------------------------------------
sec_cli() {
    out=$("$bin" --help 2>&1)
    for flag in --config.file --config.check --web.listen-address --log.level --log.format \
        --timeout-offset --version --help; do
        check_detail="--help output:
$out"
        check "--help documents $flag" grep -q -- "$flag" <<<"$out"
    done
    check_detail=""

    out=$("$bin" --config.check --config.file="$cfga" 2>&1)
    rc=$?
    check_detail="$bin --config.check --config.file=$cfga -> exit $rc: $out"
    check "--config.check good file: exit 0" [ "$rc" = 0 ]
    check "--config.check good file: 'config OK: 3 modules, 2 targets'" \
        [ "$out" = "config OK: 3 modules, 2 targets" ]
    printf '{ "modules": { "icmp": { "icmp": { "ttl": 0 } } } }\n' >"$tmp/bad.json"
    out=$("$bin" --config.check --config.file="$tmp/bad.json" 2>&1)
    rc=$?
    check_detail="$bin --config.check --config.file=$tmp/bad.json -> exit $rc: $out"
    check "--config.check bad file: exit 1" [ "$rc" = 1 ]
    check "--config.check bad file: FILE:LINE:COL: error" grep -q "^$tmp/bad.json:1:[0-9]*: " <<<"$out"

    # Bad flag values are refused at start (never a server with a half-understood flag).
    for bad in --log.level=verbose --log.format=xml --timeout-offset=banana; do
        port=$(pick_port)
        timeout 3 "$bin" "$bad" --web.listen-address=127.0.0.1:"$port" >/dev/null 2>"$tmp/badflag.err"
        rc=$?
        check_detail="$bin $bad --web.listen-address=127.0.0.1:$port -> exit $rc (124: still running after 3 s); stderr: $(head -c 300 "$tmp/badflag.err")"
        check "$bad refused: exits non-zero at once" [ "$rc" != 0 ] && [ "$rc" != 124 ]
    done
    check_detail=""
}

# ---------------------------------------------------------------------------------------
sec_serve() {
    start_a

    # Logs: logfmt lines, and the socket mode per family.
    check_detail="stderr of A:
$(head -20 "$tmp/A.log")"
    check "A logs logfmt lines: ts=... level=... msg=..." awk '
        NF == 0 { next }
        !/^ts=[^ ]+ level=(debug|info|warn|error)( |$)/ || !/ msg=/ { bad = 1 }
        { n++ } END { exit bad || n == 0 }' "$tmp/A.log"
    for fam in ipv4 ipv6; do
        mode=$(grep -E 'msg=("[^"]*socket|[^ "]*socket)' "$tmp/A.log" | grep -E "(^| )family=$fam( |$)" |
            sed -nE 's/(^|.* )mode=([a-z]*).*/\2/p' | head -1)
        check "A logs the $fam socket mode: $want_mode (got '${mode}')" [ "$mode" = "$want_mode" ]
    done
    check_detail=""

    # The repeatable --web.listen-address replaces the default :9723.
    for u in "$a" "$a6"; do
        req h "$u/-/healthy"
        check "GET $u/-/healthy: 200" want_code h 200
        req r "$u/-/ready"
        check "GET $u/-/ready: 200" want_code r 200
    done
    check_detail="listening sockets of A: $(ss -Hltnp | grep "pid=$A_pid," | tr '\n' ' ')"
    check "A does not also listen on the default :9723 (flags given)" \
        bash -c "! ss -Hltnp | grep 'pid=$A_pid,' | grep -q ':9723 '"
    check_detail=""

    # Landing page.
    req land "$a/"
    check "GET /: 200" want_code land 200
    check "GET /: text/html" want_header land Content-Type '^text/html'
    check "GET /: links to /metrics" want_body land 'href="/metrics"'
    check "GET /: links to /probe" want_body land 'href="/probe'
    check "GET /: shows version $version" want_body land "${version//./\\.}"
    check "GET /: shows the socket mode ($want_mode)" want_body land "$want_mode"

    # /config: the effective configuration as JSON.
    req cfg "$a/config"
    check "GET /config: 200" want_code cfg 200
    check "  Content-Type JSON" want_header cfg Content-Type '^application/json'
    check "  JSON with modules icmp, icmp_1s, icmp6 and 2 targets" pyrun json "$tmp/cfg.plain" \
        'set(j["modules"]) == {"icmp", "icmp_1s", "icmp6"} and len(j["targets"]) == 2'
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_probe() {
    start_a

    # /probe, IPv4, three echoes.
    probe_names="probe_success probe_duration_seconds probe_timeout_seconds
probe_dns_lookup_time_seconds probe_ip_protocol probe_ip_addr_hash probe_icmp_duration_seconds
probe_icmp_reply_hop_limit probe_icmp_echoes_sent probe_icmp_echoes_unsent probe_icmp_echoes_received
probe_icmp_loss_ratio probe_icmp_rtt_min_seconds probe_icmp_rtt_avg_seconds
probe_icmp_rtt_max_seconds probe_icmp_rtt_stddev_seconds probe_icmp_rtt_seconds_bucket
probe_icmp_rtt_seconds_sum probe_icmp_rtt_seconds_count probe_icmp_replies probe_icmp_duplicates"
    u="$a/probe?target=127.0.0.1&module=icmp&count=3&interval=100ms"
    req p4 "$u"
    check "GET /probe 127.0.0.1 count=3: 200" want_code p4 200
    check "  Content-Type text/plain; version=0.0.4" want_header p4 Content-Type \
        '^text/plain; *version=0\.0\.4'
    check "  no Content-Encoding without Accept-Encoding" want_header p4 Content-Encoding '^$'
    for n in $probe_names; do
        check "  has $n" want_body p4 "^${n}[{ ]"
    done
    check "  probe_success 1" want_metric p4 eq 1 probe_success
    check "  probe_ip_protocol 4" want_metric p4 eq 4 probe_ip_protocol
    h=$(fnv32a 7f000001)
    check "  probe_ip_addr_hash = FNV-32a(127.0.0.1) = $h" want_metric p4 eq "$h" probe_ip_addr_hash
    check "  probe_timeout_seconds 5 (module timeout, no header)" want_metric p4 eq 5 probe_timeout_seconds
    check "  probe_duration_seconds in 0.2..3 (3 echoes 100 ms apart)" \
        want_metric p4 between 0.2:3 probe_duration_seconds
    check "  probe_dns_lookup_time_seconds in 0..1" want_metric p4 between 0:1 probe_dns_lookup_time_seconds
    for ph in resolve setup rtt; do
        check "  probe_icmp_duration_seconds{phase=$ph} >= 0" \
            want_metric p4 ge 0 probe_icmp_duration_seconds phase=$ph
    done
    check "  probe_icmp_echoes_sent 3" want_metric p4 eq 3 probe_icmp_echoes_sent
    check "  probe_icmp_echoes_received 3" want_metric p4 eq 3 probe_icmp_echoes_received
    check "  probe_icmp_loss_ratio 0" want_metric p4 eq 0 probe_icmp_loss_ratio
    check "  probe_icmp_replies{status=success} 3" want_metric p4 eq 3 probe_icmp_replies status=success
    check "  probe_icmp_duplicates 0" want_metric p4 eq 0 probe_icmp_duplicates
    check "  probe_icmp_reply_hop_limit 64" want_metric p4 eq 64 probe_icmp_reply_hop_limit
    check "  probe_icmp_rtt_min_seconds in (0, 0.05)" want_metric p4 between 1e-9:0.05 probe_icmp_rtt_min_seconds
    A=$(mval "$tmp/p4.plain" probe_icmp_rtt_min_seconds) B=$(mval "$tmp/p4.plain" probe_icmp_rtt_avg_seconds) \
        C=$(mval "$tmp/p4.plain" probe_icmp_rtt_max_seconds) \
        check "  rtt min <= avg <= max" num_ok "min, avg, max" 'a <= b && b <= c && a > 0'
    check "  probe_icmp_rtt_stddev_seconds >= 0" want_metric p4 ge 0 probe_icmp_rtt_stddev_seconds
    check "  probe_icmp_rtt_seconds_count 3" want_metric p4 eq 3 probe_icmp_rtt_seconds_count
    check "  probe_icmp_rtt_seconds_bucket{le=+Inf} 3" want_metric p4 eq 3 probe_icmp_rtt_seconds_bucket le=+Inf
    check "  probe_icmp_rtt_seconds_sum in (0, 0.15)" want_metric p4 between 1e-9:0.15 probe_icmp_rtt_seconds_sum
    check "  promtool check metrics: clean" promtool_clean p4
    check "  prometheus_client parses it; families and types" pyrun text "$tmp/p4.plain" \
        probe_success:gauge probe_icmp_rtt_seconds:histogram probe_icmp_replies:gauge \
        probe_icmp_duration_seconds:gauge probe_icmp_echoes_sent:gauge

    # /probe, IPv6 target, through the IPv6 listener.
    req p6 "$a6/probe?target=::1&module=icmp6"
    check "GET [::1]/probe target=::1: 200" want_code p6 200
    check "  probe_success 1" want_metric p6 eq 1 probe_success
    check "  probe_ip_protocol 6" want_metric p6 eq 6 probe_ip_protocol
    h=$(fnv32a 00000000000000000000000000000001)
    check "  probe_ip_addr_hash = FNV-32a(::1) = $h" want_metric p6 eq "$h" probe_ip_addr_hash
    check "  probe_icmp_reply_hop_limit 64" want_metric p6 eq 64 probe_icmp_reply_hop_limit
    check "  probe_icmp_echoes_sent 1 (module default count)" want_metric p6 eq 1 probe_icmp_echoes_sent
    check "  probe_icmp_replies{status=success} 1" want_metric p6 eq 1 probe_icmp_replies status=success
    check "  promtool check metrics: clean" promtool_clean p6
    # The default module is "icmp".
    req pd "$a/probe?target=::1"
    check "GET /probe target=::1 without module: 200, probe_success 1" want_metric pd eq 1 probe_success
    check "  probe_timeout_seconds 5 (module icmp)" want_metric pd eq 5 probe_timeout_seconds

    # Debug output.
    req dbg "$a/probe?target=127.0.0.1&count=2&interval=100ms&debug=true"
    check "GET /probe debug=true: 200" want_code dbg 200
    check "  Content-Type text/plain" want_header dbg Content-Type '^text/plain'
    check "  a resolution line naming 127.0.0.1" want_body dbg '[Rr]esol.*127\.0\.0\.1|127\.0\.0\.1.*[Rr]esol'
    n=$(grep -iE 'seq' "$tmp/dbg.plain" | grep -iE 'success' | grep -iE 'rtt' | grep -ciE 'ttl')
    check_detail="request: $(reqdesc dbg)
expected 2 lines with seq, success, rtt and ttl, got $n; body:
$(body_excerpt dbg 1200)"
    check "  one line per echo (2) with seq, status, rtt, ttl" [ "$n" = 2 ]
    check "  then the metrics: probe_success 1" want_metric dbg eq 1 probe_success

    # Timeouts: min(module timeout or override, header - offset (0.5 s)).
    tcase() { # ID HEADER_OR_- QUERY WANT
        local -a hh=()
        [ "$2" != - ] && hh=(-H "X-Prometheus-Scrape-Timeout-Seconds: $2")
        req "$1" "${hh[@]}" "$a/probe?target=127.0.0.1&$3"
        check "timeout: header ${2}, $3 -> probe_timeout_seconds $4" \
            want_metric "$1" near "$4:0.0001" probe_timeout_seconds
    }
    tcase t1 2 module=icmp 1.5
    tcase t2 2 module=icmp_1s 1
    tcase t3 10 module=icmp 5
    tcase t4 - "module=icmp&timeout=2s" 2
    tcase t5 2 "module=icmp&timeout=2s" 1.5
    tcase t6 2.2 "module=icmp&timeout=1s" 1
    tcase t7 - module=icmp_1s 1
    check "  and the probe itself succeeds" want_metric t1 eq 1 probe_success
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_negotiation() {
    start_a

    req pom -H "Accept: $om_accept" "$a/probe?target=127.0.0.1"
    check "GET /probe, Prometheus' Accept: 200" want_code pom 200
    check "  Content-Type application/openmetrics-text; version=1.0.0" want_header pom Content-Type \
        '^application/openmetrics-text; *version=1\.0\.0'
    check_detail="request: $(reqdesc pom); last line: '$(tail -n1 "$tmp/pom.plain")'"
    check "  ends with '# EOF'" [ "$(tail -n1 "$tmp/pom.plain")" = "# EOF" ]
    check "  strict OpenMetrics parser accepts it" pyrun om "$tmp/pom.plain" \
        probe_success:gauge probe_icmp_rtt_seconds:histogram
    check "  probe_success 1" want_metric pom eq 1 probe_success
    req ptxt -H 'Accept: text/plain;version=0.0.4' "$a/probe?target=127.0.0.1"
    check "GET /probe, Accept text/plain: text format, no # EOF" want_header ptxt Content-Type \
        '^text/plain; *version=0\.0\.4'
    check "  (no # EOF)" want_no_body ptxt '^# EOF'
    req pgz -H 'Accept-Encoding: gzip' "$a/probe?target=127.0.0.1"
    check "GET /probe, Accept-Encoding gzip: 200" want_code pgz 200
    check "  Content-Encoding: gzip" want_header pgz Content-Encoding '^gzip$'
    check_detail="request: $(reqdesc pgz)"
    check "  gzip -d decodes the body" gzip -t "$tmp/pgz.body"
    check "  decoded: probe_success 1" want_metric pgz eq 1 probe_success
    check "  decoded: promtool clean" promtool_clean pgz
    req pgzom -H "Accept: $om_accept" -H 'Accept-Encoding: gzip, deflate' "$a/probe?target=::1"
    check "GET /probe, OpenMetrics + gzip: gzip" want_header pgzom Content-Encoding '^gzip$'
    check_detail="request: $(reqdesc pgzom)"
    check "  decoded: ends with # EOF, parses as OpenMetrics" pyrun om "$tmp/pgzom.plain" probe_success:gauge
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_errors() {
    start_a

    ecase() { # ID WANT_CODE DESC CURL_ARGS...
        local id=$1 want=$2 desc=$3
        shift 3
        req "$id" "$@"
        check "$desc: $want" want_code "$id" "$want"
    }
    ecase e1 400 "GET /probe without target" "$a/probe"
    ecase e2 400 "GET /probe target= (empty)" "$a/probe?target="
    ecase e3 400 "GET /probe unknown module" "$a/probe?target=127.0.0.1&module=nope"
    for id in e1 e2 e3; do
        n=$(grep -c '' "$tmp/$id.plain")
        check_detail="request: $(reqdesc $id); body: '$(body_excerpt $id 300)'"
        check "  $id: the body is one non-empty line" [ "$n" = 1 ] && [ -s "$tmp/$id.plain" ]
    done
    check "  unknown module: the reason names it" want_body e3 nope
    ecase e4 403 "GET /probe target outside allowed_targets (127.0.0.2)" "$a/probe?target=127.0.0.2"
    i=0
    for q in count=abc count=0 count=-1 count=1.5 count=101 interval=abc interval=0s \
        interval=-1s timeout=abc timeout=0s timeout=5 "count=3&interval=2s&timeout=1s"; do
        i=$((i + 1))
        ecase o$i 400 "GET /probe bad override $q" "$a/probe?target=127.0.0.1&$q"
    done
    ecase e5 404 "GET /nope" "$a/nope"
    ecase e6 404 "GET /metricsx" "$a/metricsx"
    ecase e7 405 "POST /probe" -d '' "$a/probe?target=127.0.0.1"
    check "  Allow header lists GET" want_header e7 Allow 'GET'
    ecase e8 405 "GET /-/reload" "$a/-/reload"
    check "  Allow header lists POST" want_header e8 Allow 'POST'
    req ok1 "$a/probe?target=127.0.0.1&count=2&interval=10ms&timeout=1s"
    check "good overrides count=2 interval=10ms timeout=1s: 200, 2 echoes" \
        want_metric ok1 eq 2 probe_icmp_echoes_sent
    check "  probe_timeout_seconds 1" want_metric ok1 eq 1 probe_timeout_seconds
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_metrics() {
    start_a

    # Traffic first, for the counters below: 12 successful probes with module icmp (the
    # default), and one answer of each error code.
    for i in $(seq 12); do
        req "tp$i" "$a/probe?target=127.0.0.1&count=2&interval=10ms"
    done
    req te400 "$a/probe"
    req te403 "$a/probe?target=127.0.0.2"
    req te404 "$a/nope"
    req te405 -d '' "$a/probe?target=127.0.0.1"

    # /metrics: own metrics and the static targets.
    sleep 0.1
    req m1 "$a/metrics"
    check "GET /metrics: 200" want_code m1 200
    check "  Content-Type text/plain; version=0.0.4" want_header m1 Content-Type \
        '^text/plain; *version=0\.0\.4'
    for n in icmp_exporter_build_info process_cpu_seconds_total process_resident_memory_bytes \
        process_open_fds process_start_time_seconds icmp_exporter_probes_total \
        icmp_exporter_echoes_sent_total icmp_exporter_replies_total icmp_exporter_duplicates_total \
        icmp_exporter_late_replies_total icmp_exporter_probes_in_flight \
        icmp_exporter_http_requests_total icmp_exporter_socket_mode \
        icmp_exporter_config_last_reload_successful \
        icmp_exporter_config_last_reload_success_timestamp_seconds icmp_target_success \
        icmp_target_echoes_sent_total icmp_target_replies_total icmp_target_rtt_seconds_bucket \
        icmp_target_rtt_seconds_sum icmp_target_rtt_seconds_count icmp_target_loss_ratio \
        icmp_target_reply_hop_limit icmp_target_rtt_avg_seconds icmp_target_duplicates_total; do
        check "  has $n" want_body m1 "^${n}[{ ]"
    done
    check "  promtool check metrics: clean" promtool_clean m1
    check "  prometheus_client: families and types" pyrun text "$tmp/m1.plain" \
        icmp_exporter_build_info:gauge process_cpu_seconds:counter icmp_exporter_probes:counter \
        icmp_exporter_echoes_sent:counter icmp_exporter_replies:counter \
        icmp_exporter_http_requests:counter icmp_exporter_probes_in_flight:gauge \
        icmp_exporter_socket_mode:gauge icmp_target_success:gauge icmp_target_echoes_sent:counter \
        icmp_target_replies:counter icmp_target_rtt_seconds:histogram icmp_target_loss_ratio:gauge \
        icmp_target_reply_hop_limit:gauge icmp_exporter_config_last_reload_successful:gauge \
        icmp_target_rtt_avg_seconds:gauge icmp_target_duplicates:counter
    check "  icmp_target_rtt_avg_seconds{127.0.0.1} in (0, 0.05)" \
        want_metric m1 between 0.0000001:0.05 icmp_target_rtt_avg_seconds target=127.0.0.1
    check "  one echo a scrape: no min/max/stddev (they would repeat the mean)" \
        bash -c "! grep -qE '^icmp_target_rtt_(min|max|stddev)_seconds\{' '$tmp/m1.plain'"
    check "  icmp_target_duplicates_total 0 on loopback" \
        want_metric m1 eq 0 icmp_target_duplicates_total target=127.0.0.1
    check "  icmp_exporter_build_info{version=$version} 1" \
        want_metric m1 eq 1 icmp_exporter_build_info version="$version"
    for fam in ipv4 ipv6; do
        check "  icmp_exporter_socket_mode{family=$fam,mode=$want_mode} 1" \
            want_metric m1 eq 1 icmp_exporter_socket_mode family=$fam mode="$want_mode"
    done
    check "  process_start_time_seconds = when A started (±5 s)" \
        want_metric m1 near "${A_t0%.*}:5" process_start_time_seconds
    nfd=$(find "/proc/$A_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    check "  process_open_fds ≈ /proc/PID/fd ($nfd ± 10)" want_metric m1 near "$nfd:10" process_open_fds
    check "  process_resident_memory_bytes > 1 MB" want_metric m1 gt 1000000 process_resident_memory_bytes
    check "  icmp_exporter_config_last_reload_successful 1" \
        want_metric m1 eq 1 icmp_exporter_config_last_reload_successful
    check "  ..._success_timestamp_seconds = start (±5 s)" \
        want_metric m1 near "${A_t0%.*}:5" icmp_exporter_config_last_reload_success_timestamp_seconds
    check "  icmp_exporter_probes_in_flight 0" want_metric m1 eq 0 icmp_exporter_probes_in_flight
    # So far: /probe with module icmp and success: tp1..tp12 (2 echoes each).
    check "  probes_total{module=icmp,result=success} >= 12" \
        want_metric m1 ge 12 icmp_exporter_probes_total module=icmp result=success
    for c in 200 400 403 404 405; do
        n=$(cat "$tmp"/*.code | grep -c "^$c\$")
        [ "$n" -gt 0 ] || continue
        check "  http_requests_total{code=$c} >= $n (as answered so far)" \
            want_metric m1 ge "$n" icmp_exporter_http_requests_total code=$c
    done
    check "  replies_total{status=success} >= 13" want_metric m1 ge 13 icmp_exporter_replies_total status=success
    check "  icmp_target_success{127.0.0.1,...,custom labels} 1" \
        want_metric m1 eq 1 icmp_target_success "${t4l[@]}" "uni=é€😀"
    check "  icmp_target_success{::1,...,site=lo6} 1" want_metric m1 eq 1 icmp_target_success "${t6l[@]}"
    check "  icmp_target_loss_ratio{::1} 0" want_metric m1 eq 0 icmp_target_loss_ratio "${t6l[@]}"
    check "  icmp_target_reply_hop_limit{::1} 64" want_metric m1 eq 64 icmp_target_reply_hop_limit "${t6l[@]}"
    check "  icmp_target_replies_total{::1,status=success} >= 1" \
        want_metric m1 ge 1 icmp_target_replies_total "${t6l[@]}" status=success
    check "  icmp_target_rtt_seconds_bucket{::1,le=+Inf} = _count" \
        want_metric m1 eq "$(mval "$tmp/m1.plain" icmp_target_rtt_seconds_count "${t6l[@]}")" \
        icmp_target_rtt_seconds_bucket "${t6l[@]}" le=+Inf
    # Counters grow across scrapes; the static targets' histogram is cumulative.
    req m2 "$a/metrics"
    # Hostile label values read back exactly, in both formats.
    want_labels=$("$py" -c 'import json, sys; print(json.dumps({"target": "127.0.0.1", "module": "icmp",
    "ip": "127.0.0.1", "ip_version": "4", "note": json.loads("\"" + sys.argv[1] + "\""),
    "uni": "\u00e9\u20ac\U0001F600"}))' "$hostile_json")
    check "  hostile label values round-trip (text format)" pyrun labels "$tmp/m1.plain" text \
        icmp_target_success '{"target": "127.0.0.1"}' "$want_labels"
    req m1om -H "Accept: $om_accept" "$a/metrics"
    check "GET /metrics OpenMetrics: Content-Type" want_header m1om Content-Type \
        '^application/openmetrics-text; *version=1\.0\.0'
    check "  strict OpenMetrics parser; hostile labels round-trip" pyrun labels "$tmp/m1om.plain" om \
        icmp_target_success '{"target": "127.0.0.1"}' "$want_labels"
    check_detail="last line: '$(tail -n1 "$tmp/m1om.plain")'"
    check "  ends with # EOF" [ "$(tail -n1 "$tmp/m1om.plain")" = "# EOF" ]
    req m1gz -H 'Accept-Encoding: gzip' "$a/metrics"
    check "GET /metrics gzip: Content-Encoding gzip" want_header m1gz Content-Encoding '^gzip$'
    check_detail="request: $(reqdesc m1gz)"
    check "  gzip -d decodes it" gzip -t "$tmp/m1gz.body"
    check "  decoded: promtool clean" promtool_clean m1gz

    grow() { # NAME LABELS... : m2's value > m1's (at least +1 for exact counts)
        local v1 v2
        v1=$(mval "$tmp/m1.plain" "$@") v2=$(mval "$tmp/m2.plain" "$@")
        A=$v1 B=$v2 num_ok "$* across two /metrics scrapes" 'b > a'
    }
    grow_by() { # DELTA NAME LABELS...
        local d=$1 v1 v2
        shift
        v1=$(mval "$tmp/m1.plain" "$@") v2=$(mval "$tmp/m2.plain" "$@")
        A=$v1 B=$v2 C=$d num_ok "$* across two /metrics scrapes (+$d)" 'b - a == c'
    }
    check "second scrape: icmp_target_echoes_sent_total{::1} +1" grow_by 1 icmp_target_echoes_sent_total "${t6l[@]}"
    check "  icmp_target_echoes_sent_total{127.0.0.1} +1" grow_by 1 icmp_target_echoes_sent_total "${t4l[@]}"
    check "  icmp_target_replies_total{::1,success} +1" grow_by 1 icmp_target_replies_total "${t6l[@]}" status=success
    check "  icmp_target_rtt_seconds_count{::1} +1 (cumulative)" grow_by 1 icmp_target_rtt_seconds_count "${t6l[@]}"
    check "  icmp_target_rtt_seconds_sum{::1} grows" grow icmp_target_rtt_seconds_sum "${t6l[@]}"
    check "  icmp_exporter_echoes_sent_total grows" grow icmp_exporter_echoes_sent_total
    check "  icmp_exporter_replies_total{success} grows" grow icmp_exporter_replies_total status=success
    check "  icmp_exporter_http_requests_total{200} grows" grow icmp_exporter_http_requests_total code=200
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_concurrency() {
    start_a

    # 50 concurrent /probe and 20 /metrics during them (plain curls: the checks come after).
    bg=()
    for i in $(seq 50); do
        curl -sS -g --max-time 15 -o "$tmp/c$i.body" -w '%{http_code}\n' \
            "$a/probe?target=127.0.0.1" >"$tmp/c$i.status" 2>"$tmp/c$i.err" &
        bg+=($!)
    done
    for i in $(seq 20); do
        curl -sS -g --max-time 15 -o "$tmp/cm$i.body" -w '%{http_code}\n' \
            "$a/metrics" >"$tmp/cm$i.status" 2>"$tmp/cm$i.err" &
        bg+=($!)
    done
    wait "${bg[@]}"
    bad=""
    for i in $(seq 50); do
        [ "$(cat "$tmp/c$i.status")" = 200 ] && grep -qx 'probe_success 1' "$tmp/c$i.body" ||
            bad+="GET $a/probe?target=127.0.0.1 -> HTTP $(cat "$tmp/c$i.status") $(cat "$tmp/c$i.err"): $(grep '^probe_success' "$tmp/c$i.body")"$'\n'
    done
    check_detail=$bad
    check "50 concurrent /probe: all 200 with probe_success 1" [ -z "$bad" ]
    bad=""
    for i in $(seq 20); do
        [ "$(cat "$tmp/cm$i.status")" = 200 ] && grep -q '^icmp_target_success{' "$tmp/cm$i.body" ||
            bad+="GET $a/metrics -> HTTP $(cat "$tmp/cm$i.status") $(cat "$tmp/cm$i.err")"$'\n'
    done
    check_detail=$bad
    check "20 concurrent /metrics: all 200 with icmp_target_success" [ -z "$bad" ]
    check "A is alive after the concurrency run" alive A
    req m3 "$a/metrics"
    check "  then icmp_exporter_probes_in_flight 0" want_metric m3 eq 0 icmp_exporter_probes_in_flight

    # C: max_concurrent_probes 1, --timeout-offset=1s, --log.level=error.
    cat >"$tmp/cfg_c.json" <<'EOF'
{
  "modules": { "icmp": { "timeout": "5s", "icmp": { "preferred_ip_protocol": "ip4" } } },
  "targets": [],
  "limits": { "max_concurrent_probes": 1 }
}
EOF
    if start_exporter C "127.0.0.1" --config.file="$tmp/cfg_c.json" --timeout-offset=1s \
        --log.level=error; then
        req ct -H 'X-Prometheus-Scrape-Timeout-Seconds: 2' "$C_url/probe?target=127.0.0.1"
        check "C: --timeout-offset=1s, header 2 -> probe_timeout_seconds 1" \
            want_metric ct near 1:0.0001 probe_timeout_seconds
        req cslow "$C_url/probe?target=127.0.0.1&count=4&interval=400ms" &
        slow=$!
        inflight=""
        for _ in $(seq 40); do
            req cif "$C_url/metrics"
            inflight=$(mval "$tmp/cif.plain" icmp_exporter_probes_in_flight)
            [ "$inflight" = 1 ] && break
            sleep 0.05
        done
        check_detail="icmp_exporter_probes_in_flight = '$inflight' while a 1.2 s probe runs"
        check "  a slow probe shows in icmp_exporter_probes_in_flight" [ "$inflight" = 1 ]
        req c503 "$C_url/probe?target=127.0.0.1"
        check "  a second concurrent probe: 503" want_code c503 503
        check "  with Retry-After (seconds)" want_header c503 Retry-After '^[0-9]+$'
        wait "$slow"
        check "  the slow probe: 200, probe_success 1, 4 echoes" want_metric cslow eq 4 probe_icmp_echoes_received
        req cafter "$C_url/probe?target=127.0.0.1"
        check "  after it: 200 again" want_code cafter 200
        req cm "$C_url/metrics"
        check "  icmp_exporter_http_requests_total{code=503} >= 1" \
            want_metric cm ge 1 icmp_exporter_http_requests_total code=503
        check_detail="stderr of C: $(head -5 "$tmp/C.log")"
        check "  --log.level=error: no debug/info lines" bash -c "! grep -qE 'level=(debug|info)' '$tmp/C.log'"
        # SIGTERM while a probe is in flight: the request still gets an answer, exit 0 in 2 s.
        req cterm "$C_url/probe?target=127.0.0.1&count=4&interval=400ms" &
        slow=$!
        for _ in $(seq 40); do
            req cif "$C_url/metrics"
            [ "$(mval "$tmp/cif.plain" icmp_exporter_probes_in_flight)" = 1 ] && break
            sleep 0.05
        done
        stop_exporter C TERM 2
        wait "$slow"
        check_detail="exit status $stop_rc after ${stop_secs}s; stderr: $(tail -5 "$tmp/C.log")"
        check "  SIGTERM with a probe in flight: exit 0 within 2 s" [ "$stop_rc" = 0 ]
        check "  the in-flight request got a whole HTTP answer" want_code cterm 200 503
    else
        check "exporter C (max_concurrent_probes 1) serves" false
    fi
    stop_a
}

# ---------------------------------------------------------------------------------------
sec_reload() {
    start_a --web.enable-lifecycle
    req m3 "$a/metrics"

    # Reload: SIGHUP and POST /-/reload, failure keeps the old configuration.
    # wait_reload WANT: polls /metrics (3 s) until config_last_reload_successful == WANT.
    wait_reload() {
        for _ in $(seq 30); do
            req rl "$a/metrics"
            [ "$(mval "$tmp/rl.plain" icmp_exporter_config_last_reload_successful)" = "$1" ] && return 0
            sleep 0.1
        done
        check_detail="after reload: icmp_exporter_config_last_reload_successful is '$(mval "$tmp/rl.plain" icmp_exporter_config_last_reload_successful)', expected $1 (polled 3 s); A's stderr tail:
$(tail -5 "$tmp/A.log")"
        return 1
    }
    ts1=$(mval "$tmp/m3.plain" icmp_exporter_config_last_reload_success_timestamp_seconds)
    printf '{ "modules": { "icmp": { "icmp": { "ttl": 300 } } } }\n' >"$cfga"
    kill -HUP "$A_pid"
    check "SIGHUP with a bad file: reload_successful 0" wait_reload 0
    check "  the error is logged at level error or warn, naming the file" \
        grep -qE "level=(error|warn).*$(basename "$cfga")" "$tmp/A.log"
    check "  A is alive" alive A
    req rk1 "$a/probe?target=127.0.0.1&module=icmp_1s"
    check "  old configuration kept: module icmp_1s still probes (200, success)" \
        want_metric rk1 eq 1 probe_success
    check "  old configuration kept: static target labels still there" \
        want_metric rl eq 1 icmp_target_success "${t6l[@]}"
    req rp1 -d '' "$a/-/reload"
    check "POST /-/reload with a bad file: 500" want_code rp1 500
    check "  the body is the error text (names the file and ttl)" want_body rp1 "$(basename "$cfga").*ttl"
    write_cfg_a "$cfga" icmp_added lo6-reloaded
    req pre "$a/metrics" # the counters just before the reload
    req rb "$a/probe?target=127.0.0.1&module=icmp_added"
    check "before reload: module icmp_added is unknown (400)" want_code rb 400
    req rp2 -d '' "$a/-/reload"
    check "POST /-/reload with the fixed file: 200" want_code rp2 200
    check "  reload_successful 1" wait_reload 1
    A=$ts1 B=$(mval "$tmp/rl.plain" icmp_exporter_config_last_reload_success_timestamp_seconds) \
        check "  success timestamp advanced" num_ok "timestamps before/after" 'b > a'
    req ra "$a/probe?target=127.0.0.1&module=icmp_added"
    check "  the new module icmp_added probes: 200, success" want_metric ra eq 1 probe_success
    check "  the static target has its new label site=lo6-reloaded" \
        want_metric rl eq 1 icmp_target_success target=::1 site=lo6-reloaded
    # A reload is no counter reset for targets it left unchanged; a changed one starts again.
    A=$(mval "$tmp/pre.plain" icmp_target_echoes_sent_total target=127.0.0.1) \
        B=$(mval "$tmp/rl.plain" icmp_target_echoes_sent_total target=127.0.0.1) \
        check "  the unchanged target 127.0.0.1 keeps its counters (echoes_sent_total grew)" \
        num_ok "before/after the reload" 'a >= 2 && b > a'
    A=$(mval "$tmp/pre.plain" icmp_target_echoes_sent_total target=::1) \
        B=$(mval "$tmp/rl.plain" icmp_target_echoes_sent_total target=::1 site=lo6-reloaded) \
        check "  the relabelled target ::1 starts again (echoes_sent_total fell)" \
        num_ok "before/after the reload" 'a >= 2 && b < a'
    echo '{ "modules": ' >"$cfga"
    req rp3 -d '' "$a/-/reload"
    check "POST /-/reload with a syntax error: 500" want_code rp3 500
    check "  reload_successful 0" wait_reload 0
    write_cfg_a "$cfga" icmp_added2 lo6
    kill -HUP "$A_pid"
    check "SIGHUP with the fixed file: reload_successful 1" wait_reload 1
    req ra2 "$a/probe?target=127.0.0.1&module=icmp_added2"
    check "  the new module icmp_added2 probes: 200, success" want_metric ra2 eq 1 probe_success
    check "A is alive after the reloads" alive A
    stop_a
    reload_lifecycle
    reload_off_thread
    reload_blocking_file
}

# An exporter R on 127.0.0.1 with cfg FILE and ARGS (started with the file, then checks).
start_r() {
    local file=$1
    shift
    if ! start_exporter R 127.0.0.1 --config.file="$file" "$@"; then
        check "exporter R serves" false
        check_done
    fi
}

# write_big FILE MODULE: about 8 MB of JSON (10,000 static targets of 60 labels each, parsed
# in about 0.8 s by the ci build) with a module MODULE.
write_big() {
    "$py" - "$1" "$2" <<'EOF'
import json, sys
t = [{"target": "127.0.%d.%d" % (i // 250, i % 250 + 1),
      "labels": {"l%02d" % j: "v%d" % j for j in range(60)}} for i in range(10000)]
json.dump({"modules": {"icmp": {"timeout": "2s"}, sys.argv[2]: {"timeout": "1s"}},
           "targets": t}, open(sys.argv[1] + ".tmp", "w"))
EOF
    mv "$1.tmp" "$1"
}
# write_small FILE MODULE: a small configuration with a module MODULE.
write_small() {
    printf '{ "modules": { "icmp": { "timeout": "2s" }, "%s": { "timeout": "1s" } } }\n' "$2" \
        >"$1.tmp" && mv "$1.tmp" "$1"
}
# has_module ID MODULE: a /probe of 127.0.0.1 with MODULE on R is answered 200.
has_module() {
    req "$1" "$R_url/probe?target=127.0.0.1&module=$2"
    want_code "$1" 200
}
# reloads_logged N: waits (20 s) until R logged N reload outcomes.
reloads_logged() {
    for _ in $(seq 200); do
        [ "$(grep -cE 'configuration reload(ed| failed)' "$tmp/R.log")" -ge "$1" ] && return 0
        sleep 0.1
    done
    check_detail="$(grep -E 'reload' "$tmp/R.log" | tail -5)"
    return 1
}

# Without --web.enable-lifecycle, POST /-/reload is refused (blackbox's flag); SIGHUP works.
reload_lifecycle() {
    local f=$tmp/lc.json
    write_small "$f" m0
    start_r "$f"
    write_small "$f" m1
    req lc1 -X POST "$R_url/-/reload"
    check "no --web.enable-lifecycle: POST /-/reload: 403" want_code lc1 403
    check "  the reason names the flag" want_body lc1 'web.enable-lifecycle'
    check "  nothing reloaded: module m1 unknown (400)" eval '! has_module lc2 m1'
    kill -HUP "$R_pid"
    check "  SIGHUP reloads all the same" reloads_logged 1
    check "  module m1 probes after SIGHUP (200)" has_module lc3 m1
    stop_exporter R TERM 5
}

# The load runs off the HTTP thread: /-/healthy answers during the reload of an 8 MB file.
# And the last reload asked for wins: a SIGHUP's slow load of the big file, then (while it
# parses) a small file and a POST: the small one must stay, and the POST must say so.
reload_off_thread() {
    local f=$tmp/big.json worst
    write_small "$f" m0
    start_r "$f" --web.enable-lifecycle
    write_big "$f" big
    req_max_time=30 req bigrl -X POST "$R_url/-/reload" &
    local rl=$!
    worst=0
    for i in $(seq 15); do
        req h$i "$R_url/-/healthy"
        worst=$(awk -v a="$worst" -v b="$(req_secs h$i)" 'BEGIN { print (b > a ? b : a) }')
        sleep 0.05
    done
    wait "$rl"
    check "POST /-/reload of an 8 MB file: 200 (took $(req_secs bigrl) s)" want_code bigrl 200
    check "  /-/healthy meanwhile: every answer within 0.3 s (worst $worst s)" \
        num_ok "" "$worst < 0.3"
    check "  module big probes (200)" has_module bg1 big

    write_small "$f.new" m0
    write_big "$f" big2
    kill -HUP "$R_pid"
    sleep 0.2 # the SIGHUP's load of the big file is under way
    mv "$f.new" "$f"
    write_small "$f" small
    req_max_time=30 req last -X POST "$R_url/-/reload"
    check "a POST during a SIGHUP's slow load: 200 (took $(req_secs last) s)" want_code last 200
    check "  both loads logged" reloads_logged 3
    check "  the last one asked for stays: module small probes (200)" has_module ls1 small
    check "  the slow older load did not replace it: module big2 unknown (400)" \
        eval '! has_module ls2 big2'
    stop_exporter R TERM 5
}

# A configuration path that blocks (a FIFO nobody writes): SIGHUP and POST /-/reload wait on
# the reload thread; /-/healthy answers, the request-timeout sweep (2 s) still cuts a silent
# connection, and SIGTERM still stops the exporter in 2 s.
reload_blocking_file() {
    local f=$tmp/fifo.json cut
    printf '{ "modules": { "m0": {} }, "limits": { "request_timeout": "2s" } }\n' >"$f"
    start_r "$f" --web.enable-lifecycle
    rm -f "$f" && mkfifo "$f"
    kill -HUP "$R_pid"
    sleep 0.2
    req_max_time=10 req fifo1 -X POST "$R_url/-/reload" &
    local rl=$!
    sleep 0.3
    req fh "$R_url/-/healthy"
    check "config path a FIFO, SIGHUP and POST /-/reload pending: /-/healthy 200 within 1 s ($(req_secs fh) s)" \
        eval 'want_code fh 200 && num_ok "" "$(req_secs fh) < 1"'
    req fp "$R_url/probe?target=127.0.0.1&module=m0"
    check "  /probe still answers with the old configuration (200)" want_code fp 200
    # A connection that sends nothing: the sweep must cut it within 2..3.5 s (-1: not in 8 s).
    cut=$("$py" -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(8)
t0 = time.monotonic()
try:
    d = s.recv(1)
except OSError:
    d = b""
print("%.2f" % (time.monotonic() - t0) if d == b"" else -1)' "$R_port")
    check "  a silent connection is still cut by request_timeout 2s (after $cut s)" \
        awk -v t="$cut" 'BEGIN { exit !(t >= 1.5 && t <= 4) }'
    stop_exporter R TERM 6
    check "  SIGTERM: exit 0 within 2 s (+0.5 s) (took $stop_secs s)" \
        eval '[ "$stop_rc" = 0 ] && num_ok "" "$stop_secs < 2.5"'
    wait "$rl"
    check "  the waiting POST /-/reload is answered 503 (shutting down)" want_code fifo1 503
    rm -f "$f"
}

# ---------------------------------------------------------------------------------------
sec_default() {
    # B: no configuration file (the embedded default), JSON logs.
    if start_exporter B "127.0.0.1" --log.format=json; then
        check "B (default config, --log.format=json): every stderr line is a JSON object" \
            pyrun jsonlog "$tmp/B.log"
        for fam in ipv4 ipv6; do
            mode=$("$py" "$tmp/h.py" jsonsocket "$tmp/B.log" $fam 2>&1)
            check_detail="$mode"
            check "  JSON log of the $fam socket mode: $want_mode" [ "$mode" = "$want_mode" ]
        done
        req bm "$B_url/metrics"
        check "  /metrics: icmp_target_success{127.0.0.1} 1 (embedded default targets)" \
            want_metric bm eq 1 icmp_target_success target=127.0.0.1 module=icmp
        check "  /metrics: icmp_target_success{::1} 1" \
            want_metric bm eq 1 icmp_target_success target=::1 module=icmp
        check "  /metrics: promtool clean" promtool_clean bm
        req bc "$B_url/config"
        check "  /config: the embedded default (module icmp, 2 targets)" pyrun json "$tmp/bc.plain" \
            'list(j["modules"]) == ["icmp"] and [t["target"] for t in j["targets"]] == ["127.0.0.1", "::1"]'
        stop_exporter B INT 2
        check_detail="exit status $stop_rc after ${stop_secs}s; stderr tail: $(tail -5 "$tmp/B.log")"
        check "  SIGINT: exit 0 within 2 s" [ "$stop_rc" = 0 ]
    else
        check "exporter B (embedded default config) serves" false
    fi
}

"sec_$section"
check_done
