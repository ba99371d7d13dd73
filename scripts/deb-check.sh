#!/bin/sh
# deb-check.sh - on a pristine Debian 12 machine (run inside the fresh-debian
# chroot, from the repository's root): installs what building the package
# needs (Build-Depends only), builds it with dpkg-buildpackage, installs the
# .deb with apt (which pulls in its runtime libraries), checks what it put
# where, then starts the service's command the way the unit does, as an
# unprivileged user with the unit's state directory, and checks /healthz.
# A chroot has no systemd: the unit itself is checked with systemd-analyze
# on the build machine (docs/operations.md), not here.
#
#   ../shared/fresh-debian/run.sh . ../shared 'sh scripts/deb-check.sh'
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
# shellcheck disable=SC2046
apt-get install -y -qq --no-install-recommends \
    $(dpkg-checkbuilddeps 2>&1 | sed -n 's/.*Unmet build dependencies: //p' | sed 's/([^)]*)//g') >/dev/null
dpkg-buildpackage -us -uc -b >/tmp/deb-build.log 2>&1 || { tail -40 /tmp/deb-build.log; exit 1; }
deb=$(ls ../steppy_*_*.deb)
echo "built $deb"
apt-get install -y -qq --no-install-recommends "./$deb" curl ca-certificates >/dev/null
echo "installed: $(dpkg -s steppy | sed -n 's/^Version: //p')"
echo "depends:   $(dpkg -s steppy | sed -n 's/^Depends: //p')"
for f in /usr/bin/steppy /lib/systemd/system/steppy.service /etc/steppy/serve.yaml \
    /usr/share/man/man1/steppy.1.gz /usr/share/man/man5/steppy-serve.conf.5.gz \
    /usr/share/bash-completion/completions/steppy; do
    [ -e "$f" ] || { echo "missing $f"; exit 1; }
done
dpkg -s steppy | grep -q '^Conffiles:' || { echo "serve.yaml is not a conffile"; exit 1; }
steppy version
# The service's command as the unit runs it, as a user of its own with the
# state directory the unit's StateDirectory= makes (0700). A chroot shares
# the host's network: listen on a free port, not the configuration's 8080.
mkdir -p /var/lib/steppy
chown nobody:nogroup /var/lib/steppy
chmod 0700 /var/lib/steppy
exec_start=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/steppy.service)
echo "ExecStart: $exec_start"
# shellcheck disable=SC2086
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/var/lib/steppy $exec_start \
    --listen 127.0.0.1:0 >/tmp/serve.out 2>/tmp/serve.err &
pid=$!
i=0
until grep -q 'listening on' /tmp/serve.out || [ $i -ge 100 ]; do
    sleep 0.1
    i=$((i + 1))
done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' /tmp/serve.out)
curl -sf "$url/healthz" >/tmp/healthz || true
echo "healthz: $(cat /tmp/healthz 2>/dev/null)"
ok=0
grep -q ok /tmp/healthz 2>/dev/null && ok=1
kill -TERM $pid
wait $pid || true
cat /tmp/serve.out /tmp/serve.err
[ "$(stat -c %a /var/lib/steppy/steppy.db)" = 600 ] || { echo "the store is not 0600"; exit 1; }
[ $ok = 1 ] || { echo "no healthy /healthz"; exit 1; }
steppy store check --db /var/lib/steppy/steppy.db
apt-get remove -y -qq steppy >/dev/null
[ ! -e /usr/bin/steppy ] || { echo "remove left the binary"; exit 1; }
[ -e /etc/steppy/serve.yaml ] || { echo "remove took the configuration (only purge may)"; exit 1; }
echo "deb-check: all good"
