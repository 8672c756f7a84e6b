#!/usr/bin/env bash
# test_image.sh: builds the container image of docker/Dockerfile with podman and runs what
# it built, on a machine without a container engine and without a registry.
#
# Usage: tests/docker/test_image.sh [--refresh-base]
#
#   --refresh-base   debootstrap the Debian 12 base again instead of using the cached one
#
# Steps:
#  1. A Debian 12 minbase made with debootstrap from the Debian mirror that apt on this
#     machine uses (read from /etc/apt/sources.list*), imported with `podman import`: the
#     BASE build argument. No registry is contacted (`--pull=never`).
#  2. `podman build --isolation=chroot` of the default image and of its `cap-net-raw`
#     target; apt inside the build reaches only that same mirror.
#  3. The images' configuration: a numeric non-root user, the HEALTHCHECK, port 9723, the
#     file capability only on the cap-net-raw variant, no build tools, the size.
#  4. The images mounted read-only (`podman image mount`) and run in a chroot inside a new
#     network namespace with only loopback (the way a container gets its own), as the
#     image's user and with its environment and entrypoint:
#     - default image, every capability dropped and no_new_privs (Kubernetes `drop: [ALL]`,
#       allowPrivilegeEscalation false), ping_group_range "0 2147483647" (the documented
#       --sysctl): --version, /metrics over 127.0.0.1 with both loopback targets answering
#       through ping sockets, /-/ready, and the image's own HEALTHCHECK command passing
#       while it runs and failing once it stopped;
#     - default image without the sysctl: refuses to start and says why;
#     - cap-net-raw image with Docker's default capability set and no sysctl: raw sockets;
#     - cap-net-raw image with every capability dropped: execve fails with EPERM, the
#       pitfall docker/Dockerfile documents.
#
# Cache: ${ICMPX_IMAGE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/icmp_exporter-image-test}
# holds the debootstrap tarball and a podman storage of its own (images, layer cache), so
# that a second run neither debootstraps nor reinstalls the build dependencies. Delete the
# directory to start afresh. Your own podman images and containers are never touched.
#
# Needs root, podman and debootstrap (apt-get install podman debootstrap); exits 77 (skip)
# without them. Network: apt and debootstrap talk to the configured Debian mirror; the
# exporter is reached on 127.0.0.1 of its own network namespace only. Exit status 0 when
# every check passed, 1 otherwise, 2 for bad usage.
#
# Checks run through `check CMD` and `eval '...'`; their functions look unused to shellcheck.
# shellcheck disable=SC2016,SC2317
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../testlib.sh
. "$here/../testlib.sh"

skip() {
    echo "SKIP - $*" >&2
    exit 77
}

# ---------------------------------------------------------------------------------------
# Inner part: runs inside `unshare --net --mount --pid` (step 4 below), so every mount,
# address and process it makes disappears with the namespace.
# Usage: test_image.sh --inner DEFAULT_ROOT CAP_ROOT META_DIR LOG_DIR
if [ "${1:-}" = --inner ]; then
    # Checks, not steps: a failing one must not stop the others (no -e here).
    set +e
    trap 'exit 130' INT TERM
    root=$2 cap_root=$3 meta=$4 log=$5
    uid=$(cat "$meta/uid") gid=$(cat "$meta/gid") version=$(cat "$meta/version")
    mapfile -t img_env < <(grep . "$meta/env")
    mapfile -t entry < <(grep . "$meta/entrypoint")
    mapfile -t health < <(grep . "$meta/healthcheck")
    # Runtimes give a container this PATH when its image sets none.
    grep -q '^PATH=' "$meta/env" ||
        img_env+=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)

    # What a container runtime provides: loopback up, /proc and /dev. The image mounts
    # are read-only: the exporter runs as with Kubernetes' readOnlyRootFilesystem.
    ip link set lo up || exit 1
    for r in "$root" "$cap_root"; do
        mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" || exit 1
    done

    # Capability sets: Kubernetes `drop: [ALL]` with allowPrivilegeEscalation false, and
    # the set Docker and podman give a container by default, which includes NET_RAW.
    # (Used through the nameref in in_image.)
    # shellcheck disable=SC2034
    drop_all=(--bounding-set=-all --inh-caps=-all --no-new-privs)
    docker_caps=-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap
    docker_caps+=,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap
    # shellcheck disable=SC2034
    docker_default=(--bounding-set="$docker_caps" --inh-caps=-all)

    # in_image ROOT CAPS CMD...: CMD in the image at ROOT as the image's user, with only
    # the image's environment and the capability set named CAPS. setpriv is the image's
    # own (util-linux, essential in Debian).
    in_image() {
        local r=$1
        local -n caps=$2
        shift 2
        env -i "${img_env[@]}" chroot "$r" setpriv --reuid="$uid" --regid="$gid" \
            --clear-groups "${caps[@]}" -- "$@"
    }
    # start NAME ROOT CAPS: the image's entrypoint, no argument, in the background; sets
    # pid. A plain command, not in_image: env, chroot and setpriv exec one another, so $!
    # is the exporter's own PID (a backgrounded function would be a subshell's).
    start() {
        local -n caps=$3
        env -i "${img_env[@]}" chroot "$2" setpriv --reuid="$uid" --regid="$gid" \
            --clear-groups "${caps[@]}" -- "${entry[@]}" >"$log/$1.log" 2>&1 &
        pid=$!
    }
    # serving: waits up to 10 s for /-/healthy on 127.0.0.1:9723; false if the exporter
    # exits first.
    serving() {
        for _ in $(seq 100); do
            curl -sf --max-time 1 -o /dev/null http://127.0.0.1:9723/-/healthy && return 0
            kill -0 "$pid" 2>/dev/null || return 1
            sleep 0.1
        done
        return 1
    }
    # stop: SIGTERM, then at most 5 s to exit; sets stop_rc.
    stop() {
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid"
        stop_rc=$?
    }
    # The image's HEALTHCHECK, exec form ("CMD" then the command), as Docker would run it.
    healthcheck() { in_image "$root" drop_all "${health[@]:1}"; }
    healthcheck_fails() { ! healthcheck 2>/dev/null; }
    # sample FILE REGEX...: every REGEX matches a whole line of FILE.
    sample() {
        local f=$1 re
        shift
        for re in "$@"; do grep -qE "^$re\$" "$f" || return 1; done
    }
    scrape() {
        curl -sS --max-time 10 -o "$log/$1" -w '%{http_code}' http://127.0.0.1:9723/metrics \
            >"$log/$1.code"
        check_detail="HTTP $(cat "$log/$1.code"); $(head -c 3000 "$log/$1")"
        grep -qx 200 "$log/$1.code"
    }
    mode_re() { echo "icmp_exporter_socket_mode\{family=\"$1\",mode=\"$2\"\} 1"; }
    success_re() { echo "icmp_target_success\{.*target=\"$1\".*\} 1"; }

    sysctl -qw net.ipv4.ping_group_range="0 2147483647" || exit 1

    out=$(in_image "$root" drop_all "${entry[@]}" --version 2>&1)
    check_detail=$out
    check "default image: --version as uid $uid with every capability dropped" \
        grep -q "^icmp_exporter, version $version " <<<"$out"

    start default "$root" drop_all
    serving
    up=$?
    check_detail=$(cat "$log/default.log")
    check "default image: serves with drop ALL and ping_group_range" [ "$up" = 0 ]
    if [ "$up" = 0 ]; then
        check "default image: GET /metrics on 127.0.0.1 answers 200" scrape metrics
        check "default image: build_info says version $version" sample "$log/metrics" \
            "icmp_exporter_build_info\{.*version=\"$version\".*\} 1"
        check "default image: ipv4 and ipv6 use ping sockets (dgram)" sample "$log/metrics" \
            "$(mode_re ipv4 dgram)" "$(mode_re ipv6 dgram)"
        check "default image: targets 127.0.0.1 and ::1 answered" sample "$log/metrics" \
            "$(success_re '127\.0\.0\.1')" "$(success_re ::1)"
        check_detail=""
        check "default image: /-/ready answers 200" \
            curl -sf --max-time 5 -o /dev/null http://127.0.0.1:9723/-/ready
        check "default image: its HEALTHCHECK passes while it serves" healthcheck
    fi
    stop
    check_detail=$(cat "$log/default.log")
    check "default image: SIGTERM stops it with status 0" \
        eval '[ "$stop_rc" = 0 ] && grep -q "shutting down" "$log/default.log"'
    check_detail=""
    check "default image: its HEALTHCHECK fails once it stopped" healthcheck_fails

    # Without the sysctl (the kernel's default "1 0" allows no group) and without NET_RAW
    # there is no ICMP socket: the exporter must say so and exit, not serve blind.
    sysctl -qw net.ipv4.ping_group_range="1 0" || exit 1
    start nosysctl "$root" drop_all
    serving
    up=$?
    stop
    check_detail="status $stop_rc; $(cat "$log/nosysctl.log")"
    check "default image without the sysctl: does not serve" [ "$up" != 0 ]
    check "default image without the sysctl: exits 1 and names ping_group_range" \
        eval '[ "$stop_rc" = 1 ] && grep -q ping_group_range "$log/nosysctl.log"'

    # The capability variant, the sysctl still "1 0": raw sockets through cap_net_raw+ep.
    start cap "$cap_root" docker_default
    serving
    up=$?
    check_detail=$(cat "$log/cap.log")
    check "cap-net-raw image: serves as uid $uid with Docker's default capabilities" \
        [ "$up" = 0 ]
    if [ "$up" = 0 ]; then
        check "cap-net-raw image: GET /metrics answers 200" scrape cap-metrics
        check "cap-net-raw image: ipv4 and ipv6 use raw sockets" sample "$log/cap-metrics" \
            "$(mode_re ipv4 raw)" "$(mode_re ipv6 raw)"
        check "cap-net-raw image: targets 127.0.0.1 and ::1 answered" sample \
            "$log/cap-metrics" "$(success_re '127\.0\.0\.1')" "$(success_re ::1)"
    fi
    stop

    # The pitfall: a file capability outside the bounding set makes execve fail (EPERM).
    out=$(in_image "$cap_root" drop_all "${entry[@]}" --version 2>&1)
    rc=$?
    check_detail="status $rc: $out"
    check "cap-net-raw image with every capability dropped: execve fails with EPERM" \
        eval '[ "$rc" != 0 ] && grep -q "Operation not permitted" <<<"$out"'
    check_done
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Outer part.

refresh_base=""
case "${1:-}" in
"") ;;
--refresh-base) refresh_base=1 ;;
*) usage_exit ;;
esac

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, podman's root storage, chroot)"
missing=""
for tool in podman debootstrap unshare setpriv chroot curl ip sysctl getcap flock; do
    command -v "$tool" >/dev/null || missing+=" $tool"
done
[ -z "$missing" ] || skip "missing:$missing (apt-get install podman debootstrap libcap2-bin)"
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] ||
    skip "no Debian archive keyring for debootstrap (apt-get install debian-archive-keyring)"

# The Debian mirror apt uses here (debian_mirror, testlib.sh); debootstrap asks it for
# bookworm whatever this machine runs.
mirror=$(debian_mirror | sed -n 1p) # sed reads all: no SIGPIPE under pipefail
[ -n "$mirror" ] || skip "no Debian mirror found in /etc/apt/sources.list*"

cache=${ICMPX_IMAGE_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/icmp_exporter-image-test}
mkdir -p "$cache/base" "$cache/podman/storage"
exec 9>"$cache/lock"
flock -n 9 || { echo "FAIL - another test_image.sh run holds $cache/lock" >&2; exit 1; }

# A podman of our own: storage in the cache, run state in /run (one directory per cache);
# nothing of the machine's default podman storage is read or written.
run_state=/run/icmp_exporter-image-test-$(printf '%s' "$cache" | sha256sum | cut -c1-8)
pm() {
    podman --root "$cache/podman/storage" --runroot "$run_state/run" \
        --tmpdir "$run_state/libpod" "$@"
}

# An interrupted `podman build` leaves its working containers (and their mounts) behind.
# This storage is ours alone (the lock above), so every container in it is one of those.
remove_build_containers() {
    local -a ids
    mapfile -t ids < <(pm ps -aq --external 2>/dev/null)
    [ "${#ids[@]}" = 0 ] || pm rm -f "${ids[@]}" >/dev/null 2>&1
}
remove_build_containers

tmp=$(mktemp -d)
mounted=() # images mounted by us
inner_pid=""
cleanup() {
    local img
    set +e # every step is worth trying, whatever the one before did
    if [ -n "$inner_pid" ]; then
        kill -KILL "$inner_pid" 2>/dev/null
        wait "$inner_pid" 2>/dev/null
    fi
    # The namespace's processes die with unshare, a moment later; until then the image
    # mounts may be busy.
    for img in "${mounted[@]}"; do
        for _ in $(seq 20); do
            pm image unmount "$img" >/dev/null 2>&1 && break
            sleep 0.25
        done
    done
    remove_build_containers
    [ -z "${rootfs:-}" ] || rm -rf --one-file-system "$rootfs"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }
t_start=$(now)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
version=$(sed -n 's/^project(icmp_exporter VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
[ -n "$version" ] || { echo "FAIL - no project VERSION in CMakeLists.txt" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# 1. The base image. Named after the mirror, so another mirror makes another base.
key=$(printf '%s' "$mirror" | sha256sum | cut -c1-12)
base_tar=$cache/base/debian-bookworm-minbase-$arch-$key.tar
base_img=localhost/icmpx-test-base:bookworm-$arch-$key
t0=$(now)
base_how="cached image"
if [ -n "$refresh_base" ]; then
    rm -f "$base_tar"
    pm image rm -f "$base_img" >/dev/null 2>&1 || true
fi
if ! pm image exists "$base_img"; then
    if [ ! -s "$base_tar" ]; then
        base_how="debootstrap from $mirror"
        echo "debootstrap of a Debian 12 minbase from $mirror (once; cached in $cache)" >&2
        rootfs=$(mktemp -d "$cache/base/rootfs.XXXXXX")
        if ! debootstrap --variant=minbase --arch="$arch" bookworm "$rootfs" "$mirror" \
            >"$tmp/debootstrap.log" 2>&1; then
            echo "FAIL - debootstrap failed; its log ends with:" >&2
            tail -n 30 "$tmp/debootstrap.log" | sed 's/^/       | /' >&2
            exit 1
        fi
        # Like the official debian:12-slim: no host name of this machine, no package
        # lists or caches, and dpkg told to leave out documentation, manuals and
        # translations, so the image's own packages are measured as on slim.
        rm -f "$rootfs/etc/hostname"
        rm -rf "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
            "$rootfs"/var/lib/apt/lists/*
        cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
        find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
        rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
            "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/lintian/*
        tar --numeric-owner --xattrs -C "$rootfs" -cf "$base_tar.part" .
        mv "$base_tar.part" "$base_tar"
        rm -rf --one-file-system "$rootfs"
        rootfs=""
    else
        base_how="cached tarball"
    fi
    # The configuration the official debian images carry.
    pm import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$base_tar" "$base_img" >/dev/null
fi
t_base=$(since "$t0")

# ---------------------------------------------------------------------------------------
# 2. The builds. --pull=never: the base is local, and no registry is ever asked.
img=localhost/icmp_exporter:test
cap_img=localhost/icmp_exporter:test-cap-net-raw
build() {
    local log=$1
    shift
    if ! pm build --isolation=chroot --network=host --format=docker --pull=never \
        --build-arg BASE="$base_img" -f "$top/docker/Dockerfile" "$@" "$top" >"$log" 2>&1; then
        echo "FAIL - podman build $* failed; the log ends with:" >&2
        tail -n 40 "$log" | sed 's/^/       | /' >&2
        return 1
    fi
}
t0=$(now)
build "$cache/last-build.log" -t "$img" || exit 1
t_build=$(since "$t0")
t0=$(now)
build "$cache/last-build-cap-net-raw.log" --target cap-net-raw -t "$cap_img" || exit 1
t_build_cap=$(since "$t0")
check "podman build of the default image and of --target cap-net-raw" true
# Keep the layer cache, drop the rest: the build stage (all cached by now) gets a tag, so
# that pruning the untagged images of earlier runs keeps its compiler layers for the next
# run, and the storage stays under a gigabyte however often the sources change.
build "$tmp/build-stage.log" --target build -t localhost/icmp_exporter:test-build-stage &&
    pm image prune -f >/dev/null || exit 1

# ---------------------------------------------------------------------------------------
# 3. The images' configuration.
inspect() { pm image inspect --format "$2" "$1"; }
meta=$tmp/meta
mkdir "$meta"
user=$(inspect "$img" '{{.Config.User}}')
check_detail="User is \"$user\""
check "image user is numeric and not root" eval \
    '[[ $user =~ ^[0-9]+(:[0-9]+)?$ ]] && [ "${user%%:*}" != 0 ]'
uid=${user%%:*}
gid=${user#*:}
[ "$gid" != "$user" ] || gid=$uid
echo "$uid" >"$meta/uid"
echo "$gid" >"$meta/gid"
echo "$version" >"$meta/version"
inspect "$img" '{{range .Config.Env}}{{println .}}{{end}}' >"$meta/env"
inspect "$img" '{{range .Config.Entrypoint}}{{println .}}{{end}}' >"$meta/entrypoint"
inspect "$img" '{{if .HealthCheck}}{{range .HealthCheck.Test}}{{println .}}{{end}}{{end}}' \
    >"$meta/healthcheck"
check_detail=$(cat "$meta/healthcheck")
check "image has a HEALTHCHECK command on /-/healthy" eval \
    'grep -qx CMD "$meta/healthcheck" && grep -q /-/healthy "$meta/healthcheck"'
check_detail=$(cat "$meta/entrypoint")
check "image entrypoint is the exporter" grep -q 'icmp_exporter$' "$meta/entrypoint"
ports=$(inspect "$img" '{{range $p, $_ := .Config.ExposedPorts}}{{println $p}}{{end}}')
check_detail=$ports
check "image exposes 9723/tcp" grep -qx 9723/tcp <<<"$ports"
check_detail=""
check "cap-net-raw image has the same user" [ "$(inspect "$cap_img" '{{.Config.User}}')" = "$user" ]

size=$(inspect "$img" '{{.Size}}')
cap_size=$(inspect "$cap_img" '{{.Size}}')
base_size=$(inspect "$base_img" '{{.Size}}')
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
added=$((size - base_size))
# "Small": Debian's base already has GnuTLS (apt needs it), so libmicrohttpd12, libcjson1, libyaml-0-2
# and the stripped binary add about 1.3 MiB; 10 MiB would mean that build tools or apt's
# caches (75 MB of them) leaked into the image.
check_detail="image $(mib "$size"), base $(mib "$base_size"), added $(mib "$added")"
check "image adds less than 10 MiB to its base" [ "$added" -lt $((10 * 1048576)) ]

# ---------------------------------------------------------------------------------------
# 4. Run what was built.
t0=$(now)
root=$(pm image mount "$img")
mounted+=("$img")
cap_root=$(pm image mount "$cap_img")
mounted+=("$cap_img")
check_detail=""
check "default image: the binary has no file capability" \
    eval '[ -z "$(getcap "$root/usr/local/bin/icmp_exporter")" ]'
caps=$(getcap "$cap_root/usr/local/bin/icmp_exporter")
check_detail=$caps
check "cap-net-raw image: the binary has cap_net_raw=ep" grep -q 'cap_net_raw=ep' <<<"$caps"
check_detail=""
check "runtime image carries no compiler, cmake or apt lists" eval \
    '[ ! -e "$root/usr/bin/cc" ] && [ ! -e "$root/usr/bin/cmake" ] &&
     ! ls "$root"/var/lib/apt/lists/*_Packages* >/dev/null 2>&1'

# A new network namespace (only lo), mount namespace (the /proc and /dev mounts) and PID
# namespace, bounded in time. Whatever ends unshare (cleanup's SIGKILL included) kills
# the namespace's first process (--kill-child), and with it every process inside.
mkdir "$tmp/inner"
unshare --net --mount --propagation private --pid --kill-child --mount-proc \
    timeout -k 5 120 "$here/test_image.sh" --inner "$root" "$cap_root" "$meta" "$tmp/inner" &
inner_pid=$!
inner_rc=0
wait "$inner_pid" || inner_rc=$?
inner_pid=""
check_detail=""
check "runtime checks in a container-like namespace (above)" [ "$inner_rc" = 0 ]
t_run=$(since "$t0")

echo "image $img: $(mib "$size") ($(mib "$added") over the base, $(mib "$base_size"))"
echo "image $cap_img: $(mib "$cap_size")"
echo "timings: base ${t_base} s ($base_how), build ${t_build} s," \
    "cap-net-raw build ${t_build_cap} s, run checks ${t_run} s, total $(since "$t_start") s"
echo "cache: $cache; to look at the images:" \
    "podman --root $cache/podman/storage --runroot $run_state/run --tmpdir $run_state/libpod images"
check_done
