# Shared helpers of the shell tests (sourced, not run): checks, the Debian mirror, usage,
# processes (exited) and ports (pick_port).
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

# debian_mirror: prints the Debian mirror apt uses on this machine, for debootstrap: the
# first enabled "deb" source of a main suite (no "-security"/"-updates"), one-line (.list)
# or deb822 (.sources) format (take the first line: `debian_mirror | sed -n 1p`).
debian_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [options] URI SUITE COMPONENT...
        awk '$1 == "deb" { i = 2
                 if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                 if ($(i + 1) !~ /[-\/]/) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        # Stanzas separated by blank lines; Enabled: no skips one.
        awk 'BEGIN { RS = ""; FS = "\n" }
             { types = uris = suites = ""; enabled = 1
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^Types:/) types = $i
                   else if ($i ~ /^URIs:/) uris = $i
                   else if ($i ~ /^Suites:/) suites = $i
                   else if ($i ~ /^Enabled:[ \t]*no/) enabled = 0 }
               if (!enabled || types !~ /[ \t]deb([ \t]|$)/) next
               n = split(suites, s, /[ \t]+/); main = 0
               for (j = 2; j <= n; j++) if (s[j] != "" && s[j] !~ /[-\/]/) main = 1
               if (main) { split(uris, u, /[ \t]+/); print u[2]; exit } }' "$f"
    done
}

# usage_exit: prints the calling script's usage, its header comment from "# Usage:" up to
# "# Steps:", on stderr and exits 2 (bad usage).
usage_exit() {
    awk '/^# Usage:/ { p = 1 } /^# Steps:/ { exit } p { sub(/^# ?/, ""); print }' "$0" >&2
    exit 2
}

# exited PID: true when PID is gone or a zombie (our child that has exited, not yet reaped).
exited() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -z "$st" ] || [ "$st" = Z ]
}

# pick_port: a TCP port nobody listens on now (a race remains: callers retry on EADDRINUSE).
pick_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
    done
    return 1
}

# make_test_cert DIR: a self-signed EC certificate for 127.0.0.1 made now, DIR/cert.pem and
# DIR/key.pem (valid a day). On failure, a failed check with openssl's output, and the
# script ends (check_done).
make_test_cert() {
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$1/key.pem" -out "$1/cert.pem" -days 1 -subj /CN=icmp-exporter-test \
        -addext subjectAltName=IP:127.0.0.1 >"$1/openssl.log" 2>&1; then
        check_detail=$(cat "$1/openssl.log")
        check "openssl makes a test certificate" false
        check_done
    fi
}
