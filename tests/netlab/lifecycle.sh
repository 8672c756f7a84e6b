#!/usr/bin/env bash
# The lab's lifecycle: teardown after success, failure, a signal and a SIGKILL (through
# `gc`); two labs side by side; and a skip (77), not a pass, without privileges.
# Usage: lifecycle.sh PATH/TO/netlab.sh
set -uo pipefail
netlab=${1:?usage: lifecycle.sh netlab.sh}
# shellcheck source=../testlib.sh
. "$(dirname "$0")/../testlib.sh"
# gone PREFIX: no namespace, link, state or responder of the lab is left.
gone() {
    local p=$1
    ! ip netns list | grep -q "^$p-" &&
        ! ip -o link show | grep -q "$p-" &&
        [ ! -e "${NETLAB_STATE_DIR:-/run/netlab}/$p" ]
}
# wait_for_file F: bounded wait (10 s) until F is non-empty.
wait_for_file() {
    local i
    for i in $(seq 200); do
        [ -s "$1" ] && return 0
        sleep 0.05
    done
    return 1
}

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the lab needs root" >&2
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Success: the command sees its lab, which is gone afterwards with its responder.
"$netlab" run -- sh -c 'echo "$NETLAB_PREFIX $(cat "$NETLAB_STATE/responder.pid")"' \
    >"$tmp/out"
rc=$?
read -r prefix rpid <"$tmp/out"
check "run -- true exits 0" [ "$rc" = 0 ]
check "the prefix is nl + 6 hex digits ($prefix)" grep -qE '^nl[0-9a-f]{6}$' <<<"$prefix"
check "after success: no namespace, link or state of $prefix" gone "$prefix"
check "after success: responder $rpid stopped" sh -c "! kill -0 $rpid 2>/dev/null"

# Failure: the command's status comes back, and the lab is gone.
"$netlab" run -- sh -c 'echo $NETLAB_PREFIX; exit 3' >"$tmp/out"
rc=$?
prefix=$(cat "$tmp/out")
check "run -- exit 3 exits 3" [ "$rc" = 3 ]
check "after failure: $prefix gone" gone "$prefix"

# SIGTERM while the command runs: prompt exit (143) and teardown, the command stopped.
# Prompt means at once, not when the command ends by itself (after 30 s): a trap deferred
# until the foreground child ends would take those 30 s. How long the teardown itself takes
# is the kernel's (deleting namespaces takes seconds on a busy machine), so the bound is
# the command's 30 s, not a few seconds.
"$netlab" run -- sh -c 'echo $NETLAB_PREFIX >'"$tmp/p"'; exec sleep 30' &
pid=$!
wait_for_file "$tmp/p"
prefix=$(cat "$tmp/p")
start=$(date +%s%N)
kill -TERM "$pid"
wait "$pid"
rc=$?
took=$((($(date +%s%N) - start) / 1000000))
echo "# SIGTERM to netlab.sh run: exit and teardown after $took ms"
check "SIGTERM: exit 143 (got $rc)" [ "$rc" = 143 ]
check "SIGTERM: handled before the command would have ended (${took} ms, under 20 s of its 30)" \
    [ "$took" -lt 20000 ]
check "after SIGTERM: $prefix gone" gone "$prefix"

# SIGKILL leaves the lab behind; the next `gc` (which every `run` does first) removes it.
rm -f "$tmp/p"
"$netlab" run -- sh -c 'echo $NETLAB_PREFIX >'"$tmp/p"'; exec sleep 30' &
pid=$!
wait_for_file "$tmp/p"
prefix=$(cat "$tmp/p")
kill -KILL "$pid"
wait "$pid" 2>/dev/null
check "after SIGKILL: $prefix still there" ip netns pids "$prefix-client"
"$netlab" gc
check "after gc: $prefix gone" gone "$prefix"

# Two labs at once: distinct names, both working, the same addresses in each.
a=$("$netlab" up | sed -n 's/^NETLAB_PREFIX=//p')
b=$("$netlab" up | sed -n 's/^NETLAB_PREFIX=//p')
check "two labs have distinct prefixes ($a, $b)" [ -n "$a" -a -n "$b" -a "$a" != "$b" ]
check "lab $a answers on the anyip host" "$netlab" exec "$a" ping -q -n -c 1 -W 2 198.18.0.1
check "lab $b answers on the anyip host" "$netlab" exec "$b" ping -q -n -c 1 -W 2 198.18.0.1
"$netlab" down "$a"
check "lab $b survives the teardown of $a" "$netlab" exec "$b" ping -q -n -c 1 -W 2 198.18.0.1
"$netlab" down "$b"
check "both labs gone" sh -c "! ip netns list | grep -qE '^($a|$b)-'"

# Without privileges: skipped (77) with a reason, never passed; NETLAB_REQUIRE=1 fails.
if command -v setpriv >/dev/null; then
    # A copy nobody can read and run: the checkout may sit under a directory only root
    # may enter (/root, on a fresh machine), which would fail with 126 before any check.
    mkdir -p "$tmp/unpriv"
    cp "$netlab" "$tmp/unpriv/netlab.sh"
    chmod 755 "$tmp" "$tmp/unpriv" "$tmp/unpriv/netlab.sh"
    netlab=$tmp/unpriv/netlab.sh
    setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        env -u NETLAB_REQUIRE "$netlab" run -- true 2>"$tmp/err"
    rc=$?
    check "unprivileged: exit 77 (got $rc)" [ "$rc" = 77 ]
    check "unprivileged: says why" grep -q 'SKIP: needs root' "$tmp/err"
    setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
        env NETLAB_REQUIRE=1 "$netlab" run -- true 2>/dev/null
    rc=$?
    check "unprivileged with NETLAB_REQUIRE=1: exit 1 (got $rc)" [ "$rc" = 1 ]
else
    check "setpriv (util-linux) is installed" false
fi
check_done
