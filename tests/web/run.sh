#!/bin/sh
# The browser tests, in Debian's Chromium (driven by playwright-core):
# - dashboard.test.mjs: starts `steppy serve` on a free port with a fresh
#   store and two API tokens, runs the dashboard's checks, stops the server;
# - approval.test.mjs: approval links as a channel delivers them; it starts
#   its own server (and a webhook sink for its channel), so it gets only
#   STEPPY.
# Screenshots go to build/web/. Each test ends with "# N passed, M failed"
# (tests/run.sh adds them up); exit status 0 only if nothing failed.
#
#   tests/web/run.sh                 against build/steppy
#   STEPPY=build/asan/steppy tests/web/run.sh
#
# Needs /usr/bin/chromium (scripts/install-deps.sh installs Debian's
# chromium) and node with npm: scripts/install-deps.sh installs Debian's
# nodejs and npm when no node is on PATH (a machine image may carry its own
# Node.js, which is then used). `npm ci` installs playwright-core from
# package-lock.json once; it never downloads a browser.
set -u
cd "$(dirname "$0")/../.." || exit 2
root=$(pwd)
STEPPY=${STEPPY:-$root/build/steppy}
case $STEPPY in /*) ;; *) STEPPY=$root/$STEPPY ;; esac

fail() {
    echo "tests/web/run.sh: $*" >&2
    echo "# 0 passed, 1 failed"
    exit 1
}

[ -x "$STEPPY" ] || fail "no $STEPPY (run make first)"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || fail "no Chromium at ${CHROMIUM:-/usr/bin/chromium} (scripts/install-deps.sh)"
command -v node >/dev/null 2>&1 || fail "no node on PATH"
if [ ! -f tests/web/node_modules/playwright-core/package.json ]; then
    (cd tests/web && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/steppy-web.XXXXXX")
pid=""
extra_pids=""
cleanup() {
    [ -n "$extra_pids" ] && kill $extra_pids 2>/dev/null
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Two identities: alice may do everything, victor only look.
token_of() { sed -n 's/^token: //p' "$1"; }
"$STEPPY" token alice viewer operator approver >"$tmp/alice" || fail "steppy token failed"
"$STEPPY" token victor viewer >"$tmp/victor" || fail "steppy token failed"
{
    echo "tokens:"
    sed -n '/^  - name:/,$p' "$tmp/alice"
    sed -n '/^  - name:/,$p' "$tmp/victor"
    echo "exec: {enabled: true}" # the plans run Exec steps (docs/configuration.md#exec)
} >"$tmp/steppy.yaml"

# The server runs in the temporary directory: Exec steps start there.
(cd "$tmp" && exec "$STEPPY" serve --listen 127.0.0.1:0 --db "$tmp/store.db" --config "$tmp/steppy.yaml" \
    >"$tmp/serve.out" 2>"$tmp/serve.err") &
pid=$!
url=""
i=0
while [ $i -lt 100 ]; do
    url=$(sed -n 's/^steppy serve: listening on \(http:[^ ]*\).*/\1/p' "$tmp/serve.out")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
[ -n "$url" ] || { cat "$tmp/serve.err" >&2; fail "the server did not start"; }
echo "# server $url (pid $pid)"

mkdir -p "$root/build/web"
STEPPY_URL=$url STEPPY_TOKEN=$(token_of "$tmp/alice") STEPPY_VIEWER_TOKEN=$(token_of "$tmp/victor") \
    SHOTS="$root/build/web" timeout 240 node tests/web/dashboard.test.mjs
status=$?
STEPPY=$STEPPY SHOTS="$root/build/web" timeout 240 node tests/web/approval.test.mjs
[ $? -eq 0 ] || status=1

# Stop the server (SIGTERM: a graceful stop) and read what it said: a
# sanitizer's report (STEPPY=build/asan/steppy) is one more failure.
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""
if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$tmp/serve.err"; then
    echo "not ok - the server ran clean under its sanitizers"
    echo "# 0 passed, 1 failed"
    status=1
fi
if [ $status -ne 0 ]; then
    echo "# the server said:"
    sed 's/^/#   /' "$tmp/serve.err" "$tmp/serve.out"
fi

# ---- single sign-on and personal links (oidc.test.mjs) ---------------------------
# A second server, signing people in through the tests' OpenID Connect
# provider (tests/oidc/fake_oidc.py), with a people directory and an email
# channel whose mail goes to a local receiver (tests/oidc/fake_smtp.py).
mkdir -p "$tmp/oidc/mail"
/usr/bin/python3 tests/oidc/fake_oidc.py --port-file "$tmp/oidc/idp.port" --client-id steppy \
    --client-secret web-secret >"$tmp/oidc/idp.log" 2>&1 &
extra_pids="$!"
/usr/bin/python3 tests/oidc/fake_smtp.py --port-file "$tmp/oidc/smtp.port" --dir "$tmp/oidc/mail" \
    >"$tmp/oidc/smtp.log" 2>&1 &
extra_pids="$extra_pids $!"
i=0
while { [ ! -s "$tmp/oidc/idp.port" ] || [ ! -s "$tmp/oidc/smtp.port" ]; } && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
printf 'web-secret\n' >"$tmp/oidc/secret"
"$STEPPY" token ops operator viewer >"$tmp/oidc/ops" || fail "steppy token failed"
cat >"$tmp/oidc/steppy.yaml" <<EOF
tokens:
$(sed -n '/^  - name:/,$p' "$tmp/oidc/ops")
oidc:
  issuer: http://127.0.0.1:$(cat "$tmp/oidc/idp.port")
  clientId: steppy
  clientSecretFile: $tmp/oidc/secret
  claim: preferred_username
  label: Fake IdP
people:
  alice: {email: alice@example.com, roles: [approver, viewer]}
  bob: {email: bob@example.com, groups: [release-managers]}
  carol: {email: carol@example.com, groups: [release-managers]}
channels:
  mail:
    type: email
    url: smtp://127.0.0.1:$(cat "$tmp/oidc/smtp.port")
    from: steppy@example.com
    to: [room@example.com]
EOF
(cd "$tmp/oidc" && exec "$STEPPY" serve --listen 127.0.0.1:0 --db "$tmp/oidc/store.db" \
    --config "$tmp/oidc/steppy.yaml" >"$tmp/oidc/serve.out" 2>"$tmp/oidc/serve.err") &
oidc_pid=$!
extra_pids="$extra_pids $oidc_pid"
ourl=""
i=0
while [ $i -lt 100 ]; do
    ourl=$(sed -n 's/^steppy serve: listening on \(http:[^ ]*\).*/\1/p' "$tmp/oidc/serve.out")
    [ -n "$ourl" ] && break
    kill -0 "$oidc_pid" 2>/dev/null || break
    sleep 0.1
    i=$((i + 1))
done
if [ -z "$ourl" ]; then
    sed 's/^/#   /' "$tmp/oidc/serve.err"
    echo "not ok - the single sign-on server starts"
    echo "# 0 passed, 1 failed"
    exit 1
fi
echo "# single sign-on server $ourl (pid $oidc_pid)"
STEPPY_URL=$ourl OPS_TOKEN=$(token_of "$tmp/oidc/ops") SERVER_LOG="$tmp/oidc/serve.out" \
    MAIL_DIR="$tmp/oidc/mail" SHOTS="$root/build/web" timeout 240 node tests/web/oidc.test.mjs
ostatus=$?
kill "$oidc_pid" 2>/dev/null
wait "$oidc_pid" 2>/dev/null
if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$tmp/oidc/serve.err"; then
    echo "not ok - the single sign-on server ran clean under its sanitizers"
    echo "# 0 passed, 1 failed"
    ostatus=1
fi
if [ $ostatus -ne 0 ]; then
    echo "# the single sign-on server said:"
    sed 's/^/#   /' "$tmp/oidc/serve.err" "$tmp/oidc/serve.out"
    status=1
fi
exit $status
