#!/bin/sh
# systemd-check.sh - the package's unit under a real systemd. Extracts a
# Debian 12 root tree, installs systemd and the .deb in it, boots systemd as
# PID 1 of a new PID and mount namespace on that tree (pivot_root, so its
# sandboxing can make namespaces of its own), starts steppy.service and
# checks readiness (Type=notify), the sandbox as the kernel sees it, the
# watchdog (fed, and a hung process killed), reload (SIGHUP keeps the
# process), restart after a crash and a clean stop; prints `systemd-analyze
# security` of the running unit.
#
#   scripts/systemd-check.sh ROOTFS_TARBALL DEB
#   e.g. scripts/systemd-check.sh /var/tmp/steppy-fresh/rootfs.tar.zst \
#            "$(scripts/build-deb.sh | tail -1)"
#
# ROOTFS_TARBALL is a zstd tarball of a minimal Debian 12 root tree with
# apt sources, such as `debootstrap --variant=minbase bookworm DIR` then
# `tar --zstd -cf rootfs.tar.zst -C DIR .` (the fresh-debian tool beside
# this repository makes one). Needs root, unshare/nsenter (util-linux),
# zstd and the tree's apt mirror. A plain
# chroot is not enough: systemd needs its root to be a mount point it can
# make shared. The service listens on the host's 127.0.0.1:8080 (the
# network is shared), which must be free.
set -eu
case ${1:-} in -h | --help)
    sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//p}' "$0"
    exit 0
    ;;
esac
[ $# = 2 ] || { sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//p}' "$0" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "systemd-check: must run as root" >&2; exit 2; }
tarball=$1
deb=$(readlink -f "$2")
[ -f "$tarball" ] || { echo "systemd-check: $tarball: not a file (a .tar.zst of a Debian 12 root tree)" >&2; exit 2; }
[ -f "$deb" ] || { echo "systemd-check: $2: not a file (the .deb of scripts/build-deb.sh)" >&2; exit 2; }
if ss -ltn 2>/dev/null | grep -q '127.0.0.1:8080 \|\*:8080 '; then
    echo "systemd-check: 127.0.0.1:8080 is in use" >&2
    exit 2
fi

root=$(mktemp -d /var/tmp/steppy-systemd.XXXXXX)
init=
cleanup() {
    [ -z "$init" ] || kill -KILL "$init" 2>/dev/null || true
    sleep 1
    rm -rf "$root"
}
trap cleanup EXIT INT TERM
fail() {
    echo "systemd-check: FAIL: $*"
    [ -z "$init" ] || inside journalctl --no-pager -u steppy -n 30 || true
    exit 1
}
ok() { echo "ok: $*"; }

tar --zstd -xf "$tarball" -C "$root"
cp "$deb" "$root/tmp/steppy.deb"

# Install systemd and the package in the tree (a chroot is enough for apt).
unshare --mount --propagation private sh -c "
    for d in /proc /sys /dev /dev/pts; do mount --bind \$d '$root'\$d; done
    exec chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        DEBIAN_FRONTEND=noninteractive sh -c '
        apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends systemd systemd-sysv dbus \
            curl procps /tmp/steppy.deb >/tmp/install.log 2>&1 ||
            { tail -20 /tmp/install.log; exit 1; }'" || fail "installing systemd and the package"
rm -f "$root/usr/sbin/policy-rc.d" # debootstrap's "start no service" rule
ok "installed $(basename "$deb") and systemd $(chroot "$root" dpkg-query -W -f '${Version}' systemd)"

# Boot: systemd must be PID 1 and its root a mount point.
setsid unshare --mount --pid --fork --propagation private sh -c "
    set -e
    mount --bind '$root' '$root'
    mount -t proc proc '$root/proc'
    mount --rbind /dev '$root/dev'
    mount -t sysfs sysfs '$root/sys'
    mount -t cgroup2 cgroup2 '$root/sys/fs/cgroup'
    mount -t tmpfs tmpfs '$root/run'
    cd '$root'
    mkdir -p .oldroot
    pivot_root . .oldroot
    umount -l /.oldroot
    exec /lib/systemd/systemd --system" </dev/null >/dev/null 2>&1 &
wrapper=$!
i=0
while [ -z "$init" ] && [ $i -lt 50 ]; do
    sleep 0.2
    init=$(pgrep -P $wrapper -x systemd 2>/dev/null | head -1 || true)
    i=$((i + 1))
done
[ -n "$init" ] || fail "systemd did not start"
inside() { nsenter -t "$init" -m -p -r -w "$@"; }
i=0
until state=$(inside systemctl is-system-running 2>/dev/null); [ "$state" = running ] ||
    [ "$state" = degraded ] || [ $i -ge 100 ]; do
    sleep 0.3
    i=$((i + 1))
done
ok "systemd is PID 1 of its namespace (system state: $state)"

# Start: Type=notify returns once the server listens.
inside systemctl start steppy || fail "systemctl start steppy"
show() { inside systemctl show -P "$1" steppy; }
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "not active/running"
[ "$(show Type)" = notify ] || fail "Type is not notify"
status=$(show StatusText)
case $status in http://127.0.0.1:8080*) ;; *) fail "status text: $status" ;; esac
ok "started: Type=notify, ready, status \"$status\""
health=$(inside curl -sf http://127.0.0.1:8080/healthz) || fail "/healthz"
case $health in *'"ok"'*) ;; *) fail "/healthz: $health" ;; esac
ok "/healthz: $health"

# The sandbox as the kernel sees it.
pid=$(show MainPID)
user=$(inside ps -o uid= -p "$pid" | tr -d ' ')
[ "$user" != 0 ] || fail "runs as root"
st=/proc/$pid/status
inside grep -q '^NoNewPrivs:[[:space:]]*1' "$st" || fail "NoNewPrivs is not set"
inside grep -q '^Seccomp:[[:space:]]*2' "$st" || fail "no seccomp filter"
inside grep -q '^CapEff:[[:space:]]*0000000000000000' "$st" || fail "has capabilities"
ok "runs as dynamic user (uid $user): NoNewPrivs 1, seccomp filter, no capabilities"
if inside nsenter -t "$pid" -m touch /usr/steppy-probe 2>/dev/null; then
    fail "/usr is writable inside the service"
fi
inside nsenter -t "$pid" -m sh -c 'echo probe >/tmp/steppy-probe' || fail "no private /tmp"
[ ! -e "$root/tmp/steppy-probe" ] || fail "the service's /tmp is the system's"
ok "ProtectSystem=strict (/usr read-only), PrivateTmp (its /tmp is its own)"
mode=$(inside stat -c '%a %u' /var/lib/private/steppy/steppy.db)
[ "$mode" = "600 $user" ] || fail "store is $mode"
ok "store /var/lib/steppy/steppy.db: mode 600, owned by the service's uid"

# Watchdog: the loop has fed it.
[ "$(show WatchdogUSec)" = 30s ] || fail "WatchdogUSec is $(show WatchdogUSec)"
[ -n "$(show WatchdogTimestamp)" ] || fail "no watchdog timestamp"
ok "watchdog: WatchdogSec=30s, last fed $(show WatchdogTimestamp)"

# Reload: SIGHUP, same process, still serving.
inside systemctl reload steppy || fail "systemctl reload"
sleep 1
[ "$(show MainPID)" = "$pid" ] || fail "reload replaced the process"
inside journalctl --no-pager -u steppy -o cat | grep -q 'config.reloaded\|reloaded' || fail "no reload line in the journal"
inside curl -sf http://127.0.0.1:8080/healthz >/dev/null || fail "/healthz after reload"
ok "reload: same process ($pid), reload logged, still healthy"

# A crash is restarted (Restart=on-failure).
inside kill -SEGV "$pid"
i=0
until new=$(show MainPID); [ "$new" != 0 ] && [ "$new" != "$pid" ] &&
    [ "$(show ActiveState)" = active ] || [ $i -ge 50 ]; do
    sleep 0.2
    i=$((i + 1))
done
[ "$new" != "$pid" ] && [ "$(show ActiveState)" = active ] || fail "not restarted after SIGSEGV"
inside curl -sf http://127.0.0.1:8080/healthz >/dev/null || fail "/healthz after restart"
ok "restarted after SIGSEGV (pid $pid -> $new), healthy"

# A hung loop is killed by the watchdog and restarted (WatchdogSec shortened
# to 4 s by a drop-in, the way an operator changes it).
mkdir -p "$root/etc/systemd/system/steppy.service.d"
printf '[Service]\nWatchdogSec=4s\n' >"$root/etc/systemd/system/steppy.service.d/watchdog.conf"
inside systemctl daemon-reload
inside systemctl restart steppy || fail "restart with WatchdogSec=4s"
pid=$(show MainPID)
inside kill -STOP "$pid"
i=0
until new=$(show MainPID); [ "$new" != 0 ] && [ "$new" != "$pid" ] &&
    [ "$(show ActiveState)" = active ] || [ $i -ge 100 ]; do
    sleep 0.2
    i=$((i + 1))
done
[ "$new" != "$pid" ] || fail "a stopped loop was not restarted by the watchdog"
inside journalctl --no-pager -u steppy -o cat | grep -q 'Watchdog timeout' || fail "no watchdog timeout logged"
inside curl -sf http://127.0.0.1:8080/healthz >/dev/null || fail "/healthz after the watchdog restart"
ok "watchdog: a stopped process (pid $pid) was killed and restarted (pid $new)"
rm -r "$root/etc/systemd/system/steppy.service.d"
inside systemctl daemon-reload

echo "systemd-analyze security steppy (the running unit):"
inside systemd-analyze security steppy --no-pager | tail -1

inside systemctl stop steppy || fail "systemctl stop"
[ "$(show ActiveState)" = inactive ] && [ "$(show Result)" = success ] ||
    fail "stop: $(show ActiveState)/$(show Result)"
ok "stopped cleanly (Result=success)"
echo "systemd-check: all good"
