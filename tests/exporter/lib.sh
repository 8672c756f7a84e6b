# The helpers of every shell test that runs the exporter (sourced, not run): starting and
# stopping exporters, HTTP requests and the checks on their answers, metric values, promtool
# and prometheus_client. Sourced by tests/exporter/test_*.sh and tests/hardening/lib.sh:
#
#     bin=PATH/TO/icmp_exporter   # or a wrapper that ends up running it
#     . "$here/lib.sh"            # tests/exporter/lib.sh; also sources tests/testlib.sh
#
# It makes $tmp (removed at exit) and $py (Debian's python3), and fails at once without curl,
# promtool or prometheus_client.
#
# Nothing it starts can outlive the script. Each exporter runs in a process group of its own
# (setsid; the group's ID is the PID start_exporter reports), and is stopped as a group:
# whatever $bin is (the exporter itself, or strace, valgrind or unshare running it), the
# signal reaches every process of it, and stop_exporter waits for the whole group. A process
# still in a stopped exporter's group is killed and fails the script at check_done. At exit
# (the EXIT trap) every exporter still running is stopped as a group (SIGTERM, SIGKILL after
# 2 s), and so is every background job of the script (curl, hammer, pollers) with its
# children.
# NAME_url, NAME_pid... are set by start_exporter with printf -v.
# shellcheck shell=bash disable=SC2154,SC2034
: "${bin:?set bin (the exporter, or a wrapper running it) before sourcing lib.sh}"
# shellcheck source=../testlib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../testlib.sh"
# Debian's interpreter, where python3-prometheus-client installs, whatever PATH prefers.
py=/usr/bin/python3

tmp=$(mktemp -d) || exit 1
declare -A live=() # PID (= process group) -> instance name, for exporters not yet stopped
lib_leaked=""      # what stopped exporters left in their groups (stop_exporter), for the check

# group_pids PGID: the live (not zombie) processes of process group PGID, one a line.
group_pids() {
    local f st
    local -a fld
    for f in /proc/[0-9]*/stat; do
        { read -r st <"$f"; } 2>/dev/null || continue
        read -r -a fld <<<"${st##*) }" # state, parent, process group, ...
        [ "${fld[2]}" = "$1" ] && [ "${fld[0]}" != Z ] && echo "${st%% *}"
    done
}

# group_gone PGID LIMIT_S: waits up to LIMIT_S seconds for group PGID to have no process left.
group_gone() {
    local steps i
    steps=$(awk -v l="$2" 'BEGIN { printf "%d", l * 20 }')
    for ((i = 0; i <= steps; i++)); do
        [ -z "$(group_pids "$1")" ] && return 0
        sleep 0.05
    done
    return 1
}

# describe_pids PID...: "PID comm args" for each (for a failure's detail).
describe_pids() {
    local p
    for p in "$@"; do
        printf '%s %s: %s\n' "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" \
            "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-200)"
    done
}

# kill_tree SIGNAL PID: PID and all its descendants (children first found, then signalled
# together, so a parent cannot start a new one in between unseen for long).
kill_tree() {
    local sig=$1 p c
    local -a tree=("$2") todo=("$2")
    while [ ${#todo[@]} -gt 0 ]; do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        for c in $(cat "/proc/$p/task/"*/children 2>/dev/null); do
            tree+=("$c")
            todo+=("$c")
        done
    done
    kill -s "$sig" "${tree[@]}" 2>/dev/null
}

cleanup() {
    local pid j
    for pid in "${!live[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
    for pid in "${!live[@]}"; do
        group_gone "$pid" 2 || kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Background jobs still running (an early exit): curl, python clients, hammer, pollers.
    for j in $(jobs -p); do
        kill_tree TERM "$j"
    done
    for j in $(jobs -p); do
        for _ in $(seq 20); do
            exited "$j" && break
            sleep 0.05
        done
        exited "$j" || kill_tree KILL "$j"
        wait "$j" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Run by check_done (tests/testlib.sh) before its verdict.
check_done_hook() {
    check_detail="$lib_leaked"
    check "every exporter stopped left no process of its group behind" [ -z "$lib_leaked" ]
    check_detail=""
}

missing=""
command -v promtool >/dev/null || missing+=" promtool (apt-get install prometheus)"
"$py" -c 'import prometheus_client' 2>/dev/null ||
    missing+=" prometheus_client for $py (apt-get install python3-prometheus-client)"
command -v curl >/dev/null || missing+=" curl"
command -v setsid >/dev/null || missing+=" setsid (util-linux)"
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing" >&2
    exit 1
fi

# start_exporter NAME "HOST..." ARGS...: starts $bin with one --web.listen-address per HOST
# (127.0.0.1, [::1]) on one free port, in a process group of its own, and waits until it
# answers HTTP on the first. Sets ${NAME}_pid (also the group's ID), ${NAME}_port,
# ${NAME}_url (first host), ${NAME}_t0 (epoch start); its stderr goes to $tmp/NAME.log.
# Returns 1 (and prints why) when it does not serve. Also honours start_scheme (http or
# https), the array start_curl_opts (e.g. --cacert) for the readiness check, and
# start_ready_s (default 15): how long to wait for the first answer.
start_curl_opts=()
start_exporter() {
    local name=$1 hosts=$2 port pid c h i t0
    shift 2
    local -a listen
    for _ in 1 2 3 4 5; do
        port=$(pick_port) || return 1
        listen=()
        for h in $hosts; do listen+=("--web.listen-address=$h:$port"); done
        t0=$(date +%s.%N)
        # setsid execs $bin in place (a background job is no group leader, so it does not
        # fork): $! is the exporter's (or its wrapper's) PID and its process group.
        setsid "$bin" "${listen[@]}" "$@" >"$tmp/$name.out" 2>"$tmp/$name.log" &
        pid=$!
        live[$pid]=$name
        for ((i = 0; i < ${start_ready_s:-15} * 10; i++)); do
            c=$(curl -sS -g --max-time 1 -o /dev/null -w '%{http_code}' \
                "${start_curl_opts[@]}" "${start_scheme:-http}://${hosts%% *}:$port/-/healthy" \
                2>/dev/null)
            if [ -n "$c" ] && [ "$c" != 000 ]; then
                # Stopping by group relies on it (a caller running with job control, set -m,
                # would make setsid fork and $! its short-lived parent).
                local -a fld
                read -r -a fld <<<"$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null)"
                if [ "${fld[2]:-}" != "$pid" ]; then
                    echo "exporter $name (PID $pid) is not the leader of its process group" \
                        "(group ${fld[2]:-?})" >&2
                    return 1
                fi
                printf -v "${name}_pid" %s "$pid"
                printf -v "${name}_port" %s "$port"
                printf -v "${name}_url" %s "${start_scheme:-http}://${hosts%% *}:$port"
                printf -v "${name}_t0" %s "$t0"
                return 0
            fi
            exited "$pid" && break
            sleep 0.1
        done
        if exited "$pid"; then
            wait "$pid"
            c=$?
            group_gone "$pid" 2 || kill -KILL -- "-$pid" 2>/dev/null
            unset "live[$pid]"
            grep -qiE 'in use|EADDRINUSE' "$tmp/$name.log" && continue
            echo "exporter $name ($bin ${listen[*]} $*) exited with status $c before serving;" \
                "stderr:" >&2
            sed 's/^/       | /' "$tmp/$name.log" | head -40 >&2
            return 1
        fi
        echo "exporter $name ($bin ${listen[*]} $*) did not answer HTTP within" \
            "${start_ready_s:-15} s" >&2
        sed 's/^/       | /' "$tmp/$name.log" | head -40 >&2
        return 1
    done
    return 1
}

# stop_exporter NAME SIGNAL LIMIT_S: sends SIGNAL to NAME's process group and waits LIMIT_S
# seconds for NAME's PID to exit (then SIGKILLs the group). Sets stop_rc (exit status, 128+n
# when killed by signal n, "none" when it had to be SIGKILLed) and stop_secs (time to exit).
# Then the rest of the group gets 2 s to follow; what is still there is named in lib_leaked
# (a check at check_done fails on it) and SIGKILLed.
stop_exporter() {
    local name=$1 sig=$2 limit=$3 pidvar="${1}_pid"
    local pid=${!pidvar} t0 t1 left
    t0=$(date +%s%N)
    kill -s "$sig" -- "-$pid" 2>/dev/null
    local steps
    steps=$(awk -v l="$limit" 'BEGIN { printf "%d", l * 50 }')
    for _ in $(seq "$steps"); do
        exited "$pid" && break
        sleep 0.02
    done
    t1=$(date +%s%N)
    stop_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    if exited "$pid"; then
        wait "$pid"
        stop_rc=$?
    else
        kill -KILL -- "-$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        stop_rc=none
    fi
    if ! group_gone "$pid" 2; then
        # shellcheck disable=SC2046 # one PID a word
        left=$(describe_pids $(group_pids "$pid"))
        lib_leaked+="exporter $name (process group $pid), after its PID exited:"$'\n'"$left"$'\n'
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    unset "live[$pid]"
}

alive() {
    local pidvar="${1}_pid"
    check_detail="exporter $1 (PID ${!pidvar}) is gone; stderr tail:
$(tail -20 "$tmp/$1.log")"
    ! exited "${!pidvar}"
}

# req ID CURL_ARGS... URL: one HTTP request (curl -sS, bounded). Body in $tmp/ID.body, headers
# in $tmp/ID.hdr, status in $tmp/ID.code (000: no answer), the request in $tmp/ID.req,
# curl's time_pretransfer and time_total in $tmp/ID.time (see req_secs).
# A gzip body is also decoded into $tmp/ID.plain (else ID.plain is the body).
req() {
    local id=$1 code="" times=""
    shift
    printf 'curl %s\n' "$*" >"$tmp/$id.req"
    curl -sS -g --max-time "${req_max_time:-15}" -o "$tmp/$id.body" -D "$tmp/$id.hdr" \
        -w '%{http_code}\n%{time_pretransfer} %{time_total}\n' "$@" >"$tmp/$id.w" \
        2>"$tmp/$id.err"
    { read -r code && read -r times; } <"$tmp/$id.w"
    echo "${code:-000}" >"$tmp/$id.code"
    echo "$times" >"$tmp/$id.time"
    touch "$tmp/$id.body" "$tmp/$id.hdr"
    if [ "$(hdr "$id" Content-Encoding)" = gzip ]; then
        gzip -dc <"$tmp/$id.body" >"$tmp/$id.plain" 2>/dev/null || : >"$tmp/$id.plain"
    else
        cp "$tmp/$id.body" "$tmp/$id.plain"
    fi
}

code_of() { cat "$tmp/$1.code"; }
# req_secs ID: how long the server took to answer request ID, in seconds, as curl measured
# it: from the request sent to the last byte received (not curl's start, which a busy
# machine delays as much as it likes).
req_secs() { awk '{ printf "%.3f", $2 - $1 }' "$tmp/$1.time"; }
body() { cat "$tmp/$1.plain"; }
# hdr ID NAME: the value of a response header (last response, case-insensitive name).
hdr() {
    tr -d '\r' <"$tmp/$1.hdr" | awk -v n="$2" 'BEGIN { n = tolower(n) }
        /^HTTP\// { v = "" } index(tolower($0), n ":") == 1 { v = substr($0, length(n) + 2)
        sub(/^[ \t]+/, "", v) } END { print v }'
}

reqdesc() {
    local extra=""
    [ -f "$tmp/$1.code" ] && extra=" -> HTTP $(cat "$tmp/$1.code")"
    printf '%s%s' "$(cat "$tmp/$1.req" 2>/dev/null)" "$extra"
    [ -s "$tmp/$1.err" ] && printf ' (curl: %s)' "$(head -c 200 "$tmp/$1.err")"
    printf '\n'
}
body_excerpt() { head -c "${2:-600}" "$tmp/$1.plain"; }

# want_code ID CODE...: the status is one of CODE.
want_code() {
    local id=$1 got
    shift
    got=$(code_of "$id")
    local c
    for c in "$@"; do [ "$got" = "$c" ] && return 0; done
    check_detail="request: $(reqdesc "$id")
expected HTTP $*, got $got; body:
$(body_excerpt "$id" 400)"
    return 1
}

# want_header ID NAME ERE: header NAME matches ERE.
want_header() {
    local v
    v=$(hdr "$1" "$2")
    grep -qE -- "$3" <<<"$v" && return 0
    check_detail="request: $(reqdesc "$1")
expected header $2 matching /$3/, got '${v}'; all headers:
$(tr -d '\r' <"$tmp/$1.hdr")"
    return 1
}

# want_body ID ERE: some line of the (decoded) body matches ERE.
want_body() {
    grep -qE -- "$2" "$tmp/$1.plain" && return 0
    check_detail="request: $(reqdesc "$1")
expected a body line matching /$2/; body:
$(body_excerpt "$1")"
    return 1
}
want_no_body() {
    grep -qE -- "$2" "$tmp/$1.plain" || return 0
    check_detail="request: $(reqdesc "$1")
expected no body line matching /$2/, found:
$(grep -E -- "$2" "$tmp/$1.plain" | head -5)"
    return 1
}

# mval FILE NAME [LABEL=VALUE...]: prints the value of every sample NAME whose labels include
# all those given (a real label parser: escapes and commas inside values are handled);
# returns 0 when exactly one matched.
mval() {
    local f=$1 name=$2
    shift 2
    MV_NAME=$name MV_ARGS=$(printf '%s\n' "$@") awk '
    BEGIN {
        name = ENVIRON["MV_NAME"]; n = split(ENVIRON["MV_ARGS"], a, "\n")
        for (i = 1; i <= n; i++) if (a[i] != "") {
            e = index(a[i], "="); want[substr(a[i], 1, e - 1)] = substr(a[i], e + 1)
        }
    }
    /^#/ || /^[ \t]*$/ { next }
    {
        line = $0
        if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) next
        if (substr(line, 1, RLENGTH) != name) next
        rest = substr(line, RLENGTH + 1)
        delete got
        if (substr(rest, 1, 1) == "{") {
            pos = 2
            while (pos <= length(rest)) {
                c = substr(rest, pos, 1)
                if (c == "}") { pos++; break }
                if (c == "," || c == " ") { pos++; continue }
                e = index(substr(rest, pos), "=")
                if (e == 0) next
                key = substr(rest, pos, e - 1); pos += e + 1
                val = ""
                while (pos <= length(rest)) {
                    c = substr(rest, pos, 1)
                    if (c == "\\") { d = substr(rest, pos + 1, 1); val = val (d == "n" ? "\n" : d); pos += 2 }
                    else if (c == "\"") { pos++; break }
                    else { val = val c; pos++ }
                }
                got[key] = val
            }
            rest = substr(rest, pos)
        }
        for (k in want) if (!(k in got) || got[k] != want[k]) next
        sub(/^[ \t]+/, "", rest); split(rest, fld, /[ \t]+/); print fld[1]; found++
    }
    END { exit found == 1 ? 0 : 1 }' "$f"
}

# want_metric ID OP ARG NAME [LABEL=VALUE...]: the one sample NAME{labels} of ID's body
# satisfies OP: eq ARG, ne, ge, gt, le, lt, between LO:HI, near WANT:TOL, present, absent.
want_metric() {
    local id=$1 op=$2 arg=$3 name=$4
    shift 4
    local series
    series="$name{$(
        IFS=,
        echo "$*"
    )}"
    local got n
    got=$(mval "$tmp/$id.plain" "$name" "$@")
    n=$(printf '%s' "$got" | grep -c .)
    if [ "$op" = absent ]; then
        [ "$n" = 0 ] && return 0
        check_detail="request: $(reqdesc "$id")
expected no sample $series, got: $got"
        return 1
    fi
    if [ "$n" != 1 ]; then
        check_detail="request: $(reqdesc "$id")
expected one sample $series ($op $arg), found $n: ${got//$'\n'/ }; lines named $name:
$(grep -E "^${name}[{ ]" "$tmp/$id.plain" | head -8)"
        [ "$(code_of "$id")" = 200 ] || check_detail+="
body: $(body_excerpt "$id" 300)"
        return 1
    fi
    [ "$op" = present ] && return 0
    if awk -v v="$got" -v op="$op" -v a="$arg" 'BEGIN {
        if (v !~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/) exit 1
        v += 0; split(a, p, ":"); lo = p[1] + 0; hi = p[2] + 0
        if (op == "eq") exit !(v == a + 0)
        if (op == "ne") exit !(v != a + 0)
        if (op == "ge") exit !(v >= a + 0)
        if (op == "gt") exit !(v > a + 0)
        if (op == "le") exit !(v <= a + 0)
        if (op == "lt") exit !(v < a + 0)
        if (op == "between") exit !(v >= lo && v <= hi)
        if (op == "near") exit !(v >= lo - hi && v <= lo + hi)
        exit 1 }'; then
        return 0
    fi
    check_detail="request: $(reqdesc "$id")
expected $series $op $arg, got $got"
    return 1
}

# num_ok DESCRIPTION AWK_EXPR (with a, b, c set from $A $B $C): a numeric comparison.
num_ok() {
    local desc=$1 expr=$2
    awk -v a="${A:-0}" -v b="${B:-0}" -v c="${C:-0}" "BEGIN { exit !($expr) }" && return 0
    check_detail="$desc: a=${A:-} b=${B:-} c=${C:-}; expected $expr"
    return 1
}

# promtool_clean ID: promtool check metrics (parse + lint) prints nothing and exits 0.
promtool_clean() {
    local out rc
    out=$(promtool check metrics <"$tmp/$1.plain" 2>&1)
    rc=$?
    [ "$rc" = 0 ] && [ -z "$out" ] && return 0
    check_detail="request: $(reqdesc "$1")
promtool check metrics exited $rc:
$(head -20 <<<"$out")"
    return 1
}

# fnv32a HEXBYTES: FNV-32a of the bytes (blackbox_exporter's probe_ip_addr_hash: 4 bytes for
# IPv4, 16 for IPv6).
fnv32a() {
    local h=2166136261 i hex=$1
    for ((i = 0; i < ${#hex}; i += 2)); do
        h=$(((h ^ 16#${hex:i:2}) * 16777619 & 0xffffffff))
    done
    echo "$h"
}

# pyrun ARGS...: runs $tmp/h.py (helpers below); on failure its output is the check detail.
pyrun() {
    local out
    out=$("$py" "$tmp/h.py" "$@" 2>&1) && return 0
    check_detail="python check $1 on ${2:-}: $out"
    return 1
}
cat >"$tmp/h.py" <<'EOF'
import json, math, sys

def parse(path, fmt):
    text = open(path, encoding="utf-8").read()
    if fmt == "om":
        from prometheus_client.openmetrics.parser import text_string_to_metric_families as p
    else:
        from prometheus_client.parser import text_string_to_metric_families as p
    return {f.name: f for f in p(text)}

cmd, path = sys.argv[1], sys.argv[2]
if cmd in ("text", "om"):
    # parses (strictly, for OpenMetrics) and checks the families named after it exist with
    # their type: NAME:TYPE...
    fams = parse(path, cmd)
    for want in sys.argv[3:]:
        name, typ = want.split(":")
        f = fams.get(name)
        assert f is not None, f"no family {name}; families: {sorted(fams)}"
        assert f.type == typ, f"family {name} has type {f.type}, expected {typ}"
elif cmd == "labels":
    # labels FILE FORMAT METRIC JSON_SUBSET JSON_EXPECTED: the one sample of METRIC whose
    # labels include SUBSET has exactly the labels EXPECTED (a scraper's view of the values).
    fmt, metric, subset, expected = sys.argv[3], sys.argv[4], json.loads(sys.argv[5]), json.loads(sys.argv[6])
    fams = parse(path, fmt)
    samples = [s for f in fams.values() for s in f.samples
               if s.name == metric and all(s.labels.get(k) == v for k, v in subset.items())]
    assert len(samples) == 1, f"{len(samples)} samples of {metric} with {subset}: {samples}"
    assert samples[0].labels == expected, f"labels {samples[0].labels!r} != expected {expected!r}"
elif cmd == "json":
    # json FILE EXPR: the file is one JSON document and EXPR (over j) is true.
    j = json.load(open(path, encoding="utf-8"))
    assert eval(sys.argv[3]), f"false: {sys.argv[3]}; document: {json.dumps(j)[:600]}"
elif cmd == "jsonlog":
    # jsonlog FILE: every non-empty line is one JSON object with level and msg.
    n = 0
    for i, line in enumerate(open(path, encoding="utf-8"), 1):
        if not line.strip():
            continue
        o = json.loads(line)
        assert isinstance(o, dict) and "level" in o and "msg" in o, f"line {i}: {line!r}"
        n += 1
    assert n > 0, "no log line"
elif cmd == "jsonsocket":
    # jsonsocket FILE FAMILY: prints the mode of the socket line of FAMILY.
    for line in open(path, encoding="utf-8"):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if "socket" in str(o.get("msg", "")) and o.get("family") == sys.argv[3]:
            print(o.get("mode"))
            sys.exit(0)
    sys.exit(f"no JSON log line with 'socket' in msg and family={sys.argv[3]}")
EOF

# The expected socket mode as root: ping sockets when net.ipv4.ping_group_range covers our
# group, raw otherwise (and we are root, so raw works).
expected_mode() {
    local lo hi g
    read -r lo hi </proc/sys/net/ipv4/ping_group_range
    g=$(id -g)
    if [ "$g" -ge "$lo" ] && [ "$g" -le "$hi" ]; then echo dgram; else echo raw; fi
}
