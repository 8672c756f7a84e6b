#!/usr/bin/env bash
# test_deb.sh: the Debian package, made and used the way an admin would, in a fresh
# Debian 12 minbase.
#
# Usage: tests/package/test_deb.sh [--refresh-base]
#
#   --refresh-base   debootstrap the Debian 12 base again instead of using the cached one
#
# Steps:
#  1. The package: `cmake --preset package -B TMP` (the preset's settings in a build
#     directory of its own), a build, `cpack -G DEB`. Its control data: Depends names the
#     shared libraries, the conffiles are listed, the maintainer scripts are there.
#  2. A Debian 12 minbase made with debootstrap from the Debian mirror apt uses here
#     (debian_mirror in testlib.sh), cached as a tarball, unpacked afresh. Before the
#     package: systemd (for systemd-analyze verify --root) and the package's Depends, so
#     that the file list taken then shows what the package alone adds and leaves.
#  3. In a mount and PID namespace of its own (unshare), a chroot with /proc mounted:
#     - `apt-get install ./icmp-exporter_*.deb`; `icmp_exporter --version`; the installed
#       configuration passes --config.check; postinst enabled the unit; dpkg knows the
#       conffiles;
#     - the unit's command (ExecStart with ARGS from /etc/default/icmp_exporter) run the
#       way the unit runs it: a uid that is in no /etc/passwd (DynamicUser), ambient and
#       bounding CAP_NET_RAW only, no_new_privs, in a network namespace with loopback
#       only: it serves /metrics with raw sockets, holds no capability once it runs,
#       reloads on SIGHUP (ExecReload) and exits 0 on SIGTERM; under strace, every system
#       call it makes is in the unit's SystemCallFilter (@system-service) and every
#       socket family in its RestrictAddressFamilies;
#     - on the host, against the chroot's files: `systemd-analyze verify --root` says
#       nothing (its exposure score from `systemd-analyze security --offline` is printed);
#       `mandoc -T lint` and `man -l` of every installed page say nothing; the program of
#       icmp_core(3)'s EXAMPLES compiles and links with the installed icmp_core.pc
#       (PKG_CONFIG_SYSROOT_DIR=the chroot) and pings 127.0.0.1 in a network namespace;
#     - `apt-get remove` keeps the conffiles and masks the unit; `apt-get purge` then
#       leaves the chroot as it was before the install: same files, modes, owners and
#       link targets, same contents under /etc (apt's caches and logs aside).
#
# Cache: ${ICMPX_PACKAGE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/icmp_exporter-package-test}
# holds the debootstrap tarball (about 60 MB). Delete it to start afresh.
#
# Needs root. Exits 77 (skip) when not root or when the Debian mirror cannot be reached
# (debootstrap and apt need it); missing tools are failures (the README's test command
# installs them). Network: debootstrap and apt talk to the configured Debian mirror; the
# exporter and the example program only to loopback in network namespaces of their own.
# Exit status 0 when every check passed, 1 otherwise, 2 for bad usage.
#
# Checks run through `check CMD` and `eval '...'`; their functions look unused to shellcheck.
# shellcheck disable=SC2016,SC2317
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"

# in_root CMD...: CMD in the chroot with a clean environment.
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        chroot "$root" "$@"
}
apt_root() { in_root apt-get -q -y --no-install-recommends "$@"; }

# snapshot FILE: every path of the chroot with type, mode, owner and link target, and the
# checksum of every file under /etc. Left out: what apt and dpkg keep for themselves
# (caches, lists, logs, dpkg's backups of its own status) and the kernel's file systems.
snapshot() {
    in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
        -o -path /tmp -o -path /var/cache/apt -o -path /var/lib/apt/lists \
        -o -path /var/cache/debconf -o -path /var/cache/ldconfig -o -path /var/log \
        -o -path /var/lib/dpkg/status-old -o -path /var/lib/dpkg/available \) -prune \
        -o -printf '%y %m %u:%g %p %l\n' | sort >"$1"
    in_root find /etc -xdev -type f -exec md5sum {} + | sort -k 2 >>"$1"
}

# ---------------------------------------------------------------------------------------
# Inner part: runs inside `unshare --mount --pid` (step 3), so the /proc mount and every
# process it starts go with the namespace.
# Usage: test_deb.sh --inner ROOT DEB WORK
if [ "${1:-}" = --inner ]; then
    set +e # checks, not steps: a failing one must not stop the others
    trap 'exit 130' INT TERM
    root=$2 deb=$3 work=$4
    version=$(dpkg-deb -f "$deb" Version)
    mount -t proc proc "$root/proc" || exit 1
    # What a container runtime provides: name servers, and localhost in /etc/hosts (a
    # minbase has none), for the /probe of a name below.
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

    # Before the package: apt's lists, systemd, and what the package depends on.
    t0=$SECONDS
    deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' | grep . |
        tr '\n' ' ')
    # shellcheck disable=SC2086 # one word per package
    if ! { apt_root update && apt_root install systemd $deps; } >"$work/apt-before.log" 2>&1
    then
        echo "FAIL - apt-get in the chroot (systemd $deps); its log ends with:" >&2
        tail -n 20 "$work/apt-before.log" | sed 's/^/       | /' >&2
        exit 1
    fi
    snapshot "$work/before.txt"
    t_deps=$((SECONDS - t0))

    cp "$deb" "$root/tmp/"
    name=$(basename "$deb")
    apt_root install "/tmp/$name" >"$work/install.log" 2>&1
    rc=$?
    check_detail=$(tail -n 20 "$work/install.log")
    check "apt-get install ./$name" [ "$rc" = 0 ]
    out=$(in_root icmp_exporter --version 2>&1)
    check_detail=$out
    check "icmp_exporter --version runs in the chroot ($version)" \
        grep -q "^icmp_exporter, version $version " <<<"$out"
    out=$(in_root icmp_exporter --config.check --config.file=/etc/prometheus/icmp_exporter.json 2>&1)
    check_detail=$out
    check "the installed configuration passes --config.check" grep -q '^config OK:' <<<"$out"
    check_detail=$(ls -l "$root/etc/systemd/system/multi-user.target.wants/" 2>&1)
    check "postinst enabled the unit (multi-user.target.wants)" \
        [ -L "$root/etc/systemd/system/multi-user.target.wants/icmp_exporter.service" ]
    conffiles=$(in_root dpkg-query -W -f='${Conffiles}\n' icmp-exporter)
    check_detail=$conffiles
    check "dpkg lists both conffiles" eval \
        'grep -q "^ /etc/prometheus/icmp_exporter.json " <<<"$conffiles" &&
         grep -q "^ /etc/default/icmp_exporter " <<<"$conffiles"'

    # The unit, as the system's systemd would read it.
    out=$(systemd-analyze verify --root="$root" --man=no icmp_exporter.service 2>&1)
    rc=$?
    check_detail=$out
    check "systemd-analyze verify --root: no complaint" eval '[ "$rc" = 0 ] && [ -z "$out" ]'
    exposure=$(systemd-analyze security --offline=yes --root="$root" icmp_exporter.service \
        2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: //p')
    echo "     (systemd-analyze security: exposure $exposure)"
    unit=$root/lib/systemd/system/icmp_exporter.service
    # shellcheck disable=SC2034 # documents what the run below mirrors
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    check_detail=$(grep -E '^(ExecStart|ExecReload|DynamicUser|AmbientCapabilities|CapabilityBoundingSet|NoNewPrivileges|SystemCallFilter|RestrictAddressFamilies)=' "$unit")
    check "the unit runs /usr/bin/icmp_exporter \$ARGS as a dynamic user with CAP_NET_RAW only" \
        eval 'grep -qx "ExecStart=/usr/bin/icmp_exporter \$ARGS" "$unit" &&
              grep -qx "ExecReload=/bin/kill -HUP \$MAINPID" "$unit" &&
              grep -qx DynamicUser=yes "$unit" && grep -qx NoNewPrivileges=yes "$unit" &&
              grep -qx AmbientCapabilities=CAP_NET_RAW "$unit" &&
              grep -qx CapabilityBoundingSet=CAP_NET_RAW "$unit" &&
              grep -qx SystemCallFilter=@system-service "$unit" &&
              grep -qx "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK" "$unit"'

    # The unit's command with the unit's privileges, in a network namespace with only
    # loopback (the configuration's static targets are 127.0.0.1 and ::1).
    mkdir -p "$work/run"
    unshare --net timeout -k 5 60 "$here/test_deb.sh" --run "$root" "$work/run"
    rc=$?
    check_detail=""
    check "the service's command, as the unit runs it (above)" [ "$rc" = 0 ]

    # Manual pages: the real files behind the links, linted and rendered.
    man_ok=1 man_out=""
    pages=()
    for p in "$root"/usr/share/man/man1/icmp_exporter.1.gz "$root"/usr/share/man/man3/icmp*.3.gz
    do
        [ -e "$p" ] || { man_ok=0 man_out+="missing or dangling: ${p#"$root"}"$'\n'; }
        [ -L "$p" ] || pages+=("$p")
    done
    for p in "${pages[@]}"; do
        lint=$(mandoc -T lint -W warning "$p" 2>&1)
        rendered=$(MANWIDTH=80 man -l "$p" 2>&1 >/dev/null)
        lines=$(MANWIDTH=80 man -l "$p" 2>/dev/null | wc -l)
        if [ -n "$lint" ] || [ -n "$rendered" ] || [ "$lines" -lt 20 ]; then
            man_ok=0
            man_out+="${p#"$root"}: $lines lines; $lint $rendered"$'\n'
        fi
    done
    check_detail=$man_out
    check "${#pages[@]} manual pages (and their links): mandoc -T lint and man -l silent" \
        [ "$man_ok" = 1 ] && [ "${#pages[@]}" -ge 2 ]
    found=$(MANPATH=$root/usr/share/man man -w icmp_exporter icmp_engine_submit 2>&1)
    check_detail=$found
    check "man finds icmp_exporter(1) and icmp_engine_submit(3) by name" \
        eval '[ "$(grep -c "^$root/usr/share/man/man" <<<"$found")" = 2 ]'

    # The C library through its installed pkg-config file: the example of icmp_core(3).
    zcat "$root/usr/share/man/man3/icmp_core.3.gz" |
        awk '/^\.Sh EXAMPLES/ { e = 1 } e && /^\.Ed/ { exit } e && b { print } e && /^\.Bd/ { b = 1 }' |
        sed 's/\\e/\\/g' >"$work/example.c"
    export PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1
    export PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
    PKG_CONFIG_LIBDIR=$(dirname "$(find "$root/usr/lib" -name icmp_core.pc | sed -n 1p)")
    export PKG_CONFIG_LIBDIR
    flags="$(pkg-config --cflags icmp_core) -- $(pkg-config --libs icmp_core)"
    # shellcheck disable=SC2046 # pkg-config's flags are words
    out=$(cc -Wall -Wextra -Werror $(pkg-config --cflags icmp_core) -o "$work/example" \
        "$work/example.c" $(pkg-config --libs icmp_core) 2>&1)
    rc=$?
    check_detail="pkg-config: $flags"$'\n'"$out"
    check "icmp_core(3)'s example compiles and links with the installed icmp_core.pc" \
        [ "$rc" = 0 ]
    out=$(unshare --net sh -c 'ip link set lo up && timeout 20 "$1"' sh "$work/example" 2>&1)
    rc=$?
    check_detail="status $rc: $out"
    check "the example pings 127.0.0.1 three times" \
        eval '[ "$rc" = 0 ] && [ "$(grep -c ": success " <<<"$out")" = 3 ]'

    # Remove keeps the configuration and masks the unit; purge leaves nothing.
    apt_root remove icmp-exporter >"$work/remove.log" 2>&1
    rc=$?
    check_detail=$(tail -n 10 "$work/remove.log")
    check "apt-get remove: conffiles kept, binary gone, unit masked" eval \
        '[ "$rc" = 0 ] && [ -f "$root/etc/prometheus/icmp_exporter.json" ] &&
         [ ! -e "$root/usr/bin/icmp_exporter" ] &&
         [ "$(readlink "$root/etc/systemd/system/icmp_exporter.service")" = /dev/null ]'
    apt_root purge icmp-exporter >"$work/purge.log" 2>&1
    rc=$?
    check_detail=$(tail -n 10 "$work/purge.log")
    check "apt-get purge" eval '[ "$rc" = 0 ] && ! in_root dpkg-query -W icmp-exporter 2>/dev/null'
    snapshot "$work/after.txt"
    check_detail=$(diff "$work/before.txt" "$work/after.txt" | head -n 40)
    check "after purge the chroot is as before the install ($(wc -l <"$work/before.txt") paths)" \
        [ -z "$check_detail" ]
    echo "     (apt lists, systemd and the dependencies: ${t_deps} s)"
    check_done
    exit 0
fi

# ---------------------------------------------------------------------------------------
# The service's command, run as its unit runs it. Inside `unshare --net` (a network
# namespace with only loopback) within the inner part's namespaces.
# Usage: test_deb.sh --run ROOT LOG_DIR
if [ "${1:-}" = --run ]; then
    set +e
    root=$2 log=$3
    ip link set lo up || exit 1
    # The unit's environment file, read as systemd reads it: ARGS="...".
    args=$(sed -n 's/^ARGS="\(.*\)"$/\1/p' "$root/etc/default/icmp_exporter")
    check_detail=$(cat "$root/etc/default/icmp_exporter")
    check "/etc/default/icmp_exporter sets ARGS" [ -n "$args" ]
    # 61184 is the first uid systemd gives dynamic users; no /etc/passwd has it.
    # shellcheck disable=SC2086 # ARGS is split into words, as systemd splits $ARGS
    strace -f -qq -o "$log/strace" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$root" setpriv --reuid=61184 --regid=61184 --clear-groups \
        --inh-caps=-all,+net_raw --ambient-caps=-all,+net_raw --bounding-set=-all,+net_raw \
        --no-new-privs -- /usr/bin/icmp_exporter $args >"$log/exporter.log" 2>&1 &
    tracer=$!
    up=1
    for _ in $(seq 100); do
        curl -sf --max-time 1 -o /dev/null http://127.0.0.1:9723/-/healthy && { up=0; break; }
        sleep 0.1
    done
    pid=$(pidof icmp_exporter | cut -d' ' -f1)
    check_detail=$(cat "$log/exporter.log")
    check "serves as uid 61184 with ambient CAP_NET_RAW" [ "$up" = 0 ]
    if [ "$up" = 0 ] && [ -n "$pid" ]; then
        status=$(grep -E '^(Uid|CapEff|CapPrm|CapAmb|NoNewPrivs):' "/proc/$pid/status")
        check_detail=$status
        check "no capability left once it runs, no_new_privs set" eval \
            'grep -qE "^CapEff:\s+0+$" <<<"$status" && grep -qE "^CapPrm:\s+0+$" <<<"$status" &&
             grep -qE "^CapAmb:\s+0+$" <<<"$status" && grep -qE "^NoNewPrivs:\s+1$" <<<"$status"'
        curl -sS --max-time 10 -o "$log/metrics" http://127.0.0.1:9723/metrics
        check_detail=$(grep -E 'socket_mode|icmp_target_success' "$log/metrics")
        check "/metrics: raw sockets, and 127.0.0.1 and ::1 answered" eval \
            'grep -q "^icmp_exporter_socket_mode{family=\"ipv4\",mode=\"raw\"} 1$" "$log/metrics" &&
             grep -q "^icmp_exporter_socket_mode{family=\"ipv6\",mode=\"raw\"} 1$" "$log/metrics" &&
             [ "$(grep -c "^icmp_target_success{.*} 1$" "$log/metrics")" = 2 ]'
        curl -sS --max-time 10 -o "$log/probe" 'http://127.0.0.1:9723/probe?target=localhost'
        check_detail=$(cat "$log/probe")
        check "/probe?target=localhost: a name resolved and answered" \
            grep -qx 'probe_success 1' "$log/probe"
        kill -HUP "$pid" # ExecReload
        for _ in $(seq 50); do
            grep -q 'configuration reloaded' "$log/exporter.log" && break
            sleep 0.1
        done
        check_detail=$(cat "$log/exporter.log")
        check "SIGHUP (ExecReload) reloads /etc/prometheus/icmp_exporter.json" \
            grep -q 'msg="configuration reloaded"' "$log/exporter.log"
        kill -TERM "$pid"
    fi
    wait "$tracer"
    rc=$?
    check_detail=$(cat "$log/exporter.log")
    check "SIGTERM: exits 0" [ "$rc" = 0 ]

    # What systemd's filters would have refused, read from the installed unit: the system
    # calls after the exporter's execve against its SystemCallFilter= sets (allow lists,
    # as this systemd defines them), and the socket families against its
    # RestrictAddressFamilies=.
    unit=$root/lib/systemd/system/icmp_exporter.service
    traced() {
        awk 'f { print } /execve\("\/usr\/bin\/icmp_exporter".*= 0$/ { f = 1 }' "$log/strace"
    }
    traced | sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' | sort -u >"$log/syscalls"
    # The first line of `systemd-analyze syscall-filter @SET` is the set's own name.
    expand_filter() {
        systemd-analyze syscall-filter "$1" | sed '1d; s/^ *//' | grep -v '^#' | grep . |
            while read -r name; do
                case $name in
                @*) expand_filter "$name" ;;
                *) echo "$name" ;;
                esac
            done
    }
    filter=$(sed -n 's/^SystemCallFilter=//p' "$unit" | tr '\n' ' ' | sed 's/ $//')
    for word in $filter; do
        case $word in
        ~*) echo "FAIL - this check knows allow lists only: SystemCallFilter=$word" >&2 ;;
        @*) expand_filter "$word" ;;
        *) echo "$word" ;;
        esac
    done | sort -u >"$log/allowed"
    refused=$(comm -23 "$log/syscalls" "$log/allowed" | tr '\n' ' ')
    check_detail="not in SystemCallFilter=$filter: $refused"
    check "its $(wc -l <"$log/syscalls") system calls are all in SystemCallFilter=$filter" \
        eval '[ -s "$log/syscalls" ] && [ -s "$log/allowed" ] && [ -z "$refused" ]'
    allowed_families=$(sed -n 's/^RestrictAddressFamilies=//p' "$unit" | tr ' ' '\n' | grep .)
    families=$(traced | grep -o 'socket(AF_[A-Z0-9]*' | sed 's/socket(//' | sort -u)
    # shellcheck disable=SC2034 # read by the eval below
    other=$(grep -vxF -f <(echo "$allowed_families") <<<"$families")
    used=$(tr '\n' ' ' <<<"$families" | sed 's/ $//')
    check_detail="used: $used; allowed: $(tr '\n' ' ' <<<"$allowed_families")"
    check "its socket families ($used) are in RestrictAddressFamilies=" \
        eval '[ -n "$families" ] && [ -n "$allowed_families" ] && [ -z "$other" ]'
    [ "$check_failures" = 0 ] || exit 1
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Outer part: [--refresh-base].
case "${1:-}" in
"" | --refresh-base) refresh_base=${1:-} ;;
*) usage_exit ;;
esac

skip() {
    echo "SKIP - $*" >&2
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, namespaces)"
missing=""
for tool in cmake cpack cc pkg-config dpkg-deb dpkg-shlibdeps file debootstrap wget unshare \
    chroot setpriv strace curl ip mandoc man systemd-analyze flock gzip; do
    command -v "$tool" >/dev/null || missing+=" $tool"
done
if [ -n "$missing" ]; then
    echo "FAIL - missing:$missing (the README's test command installs them)" >&2
    exit 1
fi

mirror=$(debian_mirror | sed -n 1p) # sed reads all: no SIGPIPE under pipefail
[ -n "$mirror" ] || skip "no Debian mirror found in /etc/apt/sources.list*"
wget -q -T 20 -t 2 -O /dev/null "${mirror%/}/dists/bookworm/InRelease" ||
    skip "cannot reach the Debian mirror $mirror (debootstrap and apt need it)"

cache=${ICMPX_PACKAGE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/icmp_exporter-package-test}
mkdir -p "$cache"
exec 9>"$cache/lock"
flock -n 9 || { echo "FAIL - another test_deb.sh run holds $cache/lock" >&2; exit 1; }

tmp=$(mktemp -d)
inner_pid=""
cleanup() {
    set +e
    if [ -n "$inner_pid" ]; then
        kill -KILL "$inner_pid" 2>/dev/null
        wait "$inner_pid" 2>/dev/null
    fi
    # The chroot's /proc was mounted in the inner namespace only: nothing is mounted here.
    rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
t_start=$SECONDS

# ---------------------------------------------------------------------------------------
# 1. The package, from the "package" presets' settings.
t0=$SECONDS
if ! { cmake --preset package -S "$top" -B "$tmp/build" &&
    cmake --build "$tmp/build" -j2 &&
    (cd "$tmp/build" && cpack -G DEB -B "$tmp/deb"); } >"$tmp/build.log" 2>&1; then
    echo "FAIL - building the package failed; the log ends with:" >&2
    tail -n 30 "$tmp/build.log" | sed 's/^/       | /' >&2
    exit 1
fi
t_build=$((SECONDS - t0))
deb=$(find "$tmp/deb" -maxdepth 1 -name 'icmp-exporter_*.deb' | sed -n 1p)
check_detail=$(ls "$tmp/deb")
check "cpack made icmp-exporter_VERSION_ARCH.deb" [ -n "$deb" ]
[ -n "$deb" ] || check_done
depends=$(dpkg-deb -f "$deb" Depends)
check_detail="Depends: $depends"
check "Depends: libmicrohttpd12, libcjson1, libgnutls30, libcrypt1, zlib1g, libc6, procps" \
    eval 'for p in libmicrohttpd12 libcjson1 libgnutls30 libcrypt1 zlib1g libc6 procps; do
              grep -qE "(^|, )$p( |,|$)" <<<"$depends" || exit 1; done'
control=$(dpkg-deb -I "$deb")
check_detail=$control
check "control: conffiles, and executable postinst, prerm and postrm" eval \
    '[ "$(dpkg-deb -I "$deb" conffiles)" = "/etc/prometheus/icmp_exporter.json
/etc/default/icmp_exporter" ] &&
     for s in postinst prerm postrm; do grep -qE "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$s " <<<"$control" || exit 1; done'

# ---------------------------------------------------------------------------------------
# 2. The base: debootstrap once per mirror, then the cached tarball.
arch=$(dpkg --print-architecture)
key=$(printf '%s' "$mirror" | sha256sum | cut -c1-12)
base_tar=$cache/debian-bookworm-minbase-$arch-$key.tar
[ -z "$refresh_base" ] || rm -f "$base_tar"
t0=$SECONDS
base_how="cached tarball"
if [ ! -s "$base_tar" ]; then
    base_how="debootstrap from $mirror"
    echo "debootstrap of a Debian 12 minbase from $mirror (once; cached in $cache)" >&2
    mkdir "$tmp/base"
    if ! debootstrap --variant=minbase --arch="$arch" bookworm "$tmp/base" "$mirror" \
        >"$tmp/debootstrap.log" 2>&1; then
        echo "FAIL - debootstrap failed; its log ends with:" >&2
        tail -n 30 "$tmp/debootstrap.log" | sed 's/^/       | /' >&2
        exit 1
    fi
    rm -rf "$tmp"/base/var/cache/apt/*.bin "$tmp"/base/var/cache/apt/archives/*.deb \
        "$tmp"/base/var/lib/apt/lists/*
    tar --numeric-owner --xattrs -C "$tmp/base" -cf "$base_tar.part" .
    mv "$base_tar.part" "$base_tar"
    rm -rf --one-file-system "$tmp/base"
fi
root=$tmp/root
mkdir "$root"
tar --numeric-owner --xattrs -C "$root" -xf "$base_tar"
t_base=$((SECONDS - t0))

# ---------------------------------------------------------------------------------------
# 3. Install, use, remove and purge, in namespaces that take every mount and process
# along when they end; bounded in time.
t0=$SECONDS
mkdir "$tmp/work"
unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
    timeout -k 5 600 "$here/test_deb.sh" --inner "$root" "$deb" "$tmp/work" &
inner_pid=$!
inner_rc=0
wait "$inner_pid" || inner_rc=$?
inner_pid=""
check_detail=""
check "install, service, pages, library, remove and purge in the chroot (above)" \
    [ "$inner_rc" = 0 ]
t_chroot=$((SECONDS - t0))

echo "package: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"
echo "timings: package build ${t_build} s, base ${t_base} s ($base_how)," \
    "chroot checks ${t_chroot} s, total $((SECONDS - t_start)) s"
check_done
