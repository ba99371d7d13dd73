#!/bin/sh
# t0016: signing in with OpenID Connect, group approvers and personal links.
# A small OpenID Connect provider written for the tests (tests/oidc/
# fake_oidc.py: discovery, JWKS, authorize, token, RS256 and ES256 ID
# tokens, and every kind of bad token on request), a small SMTP receiver
# (tests/oidc/fake_smtp.py), the real binary, curl on loopback.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
fake_dir="$repo/tests/oidc"

# ---- the provider, the mail receiver ------------------------------------------------
/usr/bin/python3 "$fake_dir/fake_oidc.py" --port-file "$tmp/idp.port" --client-id steppy \
    --client-secret 'idp s3cret/+' >"$tmp/idp.log" 2>&1 &
idp_pid=$!
mkdir "$tmp/mail"
/usr/bin/python3 "$fake_dir/fake_smtp.py" --port-file "$tmp/smtp.port" --dir "$tmp/mail" \
    >"$tmp/smtp.log" 2>&1 &
smtp_pid=$!
server_pid=""
trap 'kill $idp_pid $smtp_pid $server_pid 2>/dev/null; [ -z "${KEEP:-}" ] || cp "$tmp/serve.log" "$KEEP"; rm -rf "$tmp"' EXIT
i=0
while { [ ! -s "$tmp/idp.port" ] || [ ! -s "$tmp/smtp.port" ]; } && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
idp="http://127.0.0.1:$(cat "$tmp/idp.port")"
smtp_port=$(cat "$tmp/smtp.port")
printf 'idp s3cret/+\n' >"$tmp/client-secret"
chmod 600 "$tmp/client-secret"

mode() { curl -s -X POST -d "{\"mode\": \"$1\"}" "$idp/control" >/dev/null; }

"$STEPPY" token ops operator viewer >"$tmp/t-ops.out"
OPS=$(sed -n 's/^token: //p' "$tmp/t-ops.out")

# ---- configuration ---------------------------------------------------------------------
begin 'oidc configuration mistakes name file, line, column and pointer'
cat >"$tmp/bad.yaml" <<'EOF'
oidc:
  issuer: http://idp.example.com
  clientSecretFile: /nonexistent/secret
  clientSecretEnv: STEPPY_NOPE
  claim: upn
  redirectPath: /api/v1/callback
  scopes: ["openid", "bad scope"]
  defaultRoles: [chef]
EOF
run "$STEPPY" serve --config "$tmp/bad.yaml" --db "$db"
expect_status 1
expect_err_contains 'bad.yaml:2:11'
expect_err_contains '/oidc/issuer: "http://idp.example.com" is not an https:// URL'
expect_err_contains '/oidc/clientId: "oidc" needs a "clientId" field'
expect_err_contains '/oidc/claim'
expect_err_contains '/oidc/redirectPath'
expect_err_contains '/oidc/scopes/1: "bad scope" is not a scope name'
expect_err_contains '/oidc/defaultRoles/0: "chef" is not a role'
expect_err_contains 'give the client secret once'
end

begin 'an unreadable client secret file or a missing variable is an error at start'
printf 'oidc:\n  issuer: %s\n  clientId: steppy\n  clientSecretFile: %s/none\n' "$idp" "$tmp" >"$tmp/bad2.yaml"
run "$STEPPY" serve --config "$tmp/bad2.yaml" --db "$db"
expect_status 1
expect_err_contains '/oidc/clientSecretFile: cannot read the client secret'
printf 'oidc:\n  issuer: %s\n  clientId: steppy\n  clientSecretEnv: STEPPY_TEST_UNSET\n' "$idp" >"$tmp/bad3.yaml"
run env -u STEPPY_TEST_UNSET "$STEPPY" serve --config "$tmp/bad3.yaml" --db "$db"
expect_status 1
expect_err_contains '/oidc/clientSecretEnv: the environment variable STEPPY_TEST_UNSET is not set'
end

cat >"$tmp/config.yaml" <<EOF
tokens:
$(sed -n '/^  - name:/,$p' "$tmp/t-ops.out")
oidc:
  issuer: $idp
  clientId: steppy
  clientSecretEnv: STEPPY_TEST_OIDC_SECRET
  label: Fake IdP
  groupsClaim: groups
  groupRoles: {ops-team: [operator]}
people:
  alice:
    email: Alice@Example.com
    roles: [approver, viewer]
  bob:
    email: bob@example.com
    groups: [release-managers]
  carol:
    email: carol@example.com
    groups: [release-managers]
  victor:
    email: victor@example.com
    roles: [viewer]
exec: {enabled: true}
channels:
  mail:
    type: email
    url: smtp://127.0.0.1:$smtp_port
    from: steppy@example.com
    to: [release-room@example.com]
EOF

begin 'without tokens but with oidc, the server may listen beyond loopback'
printf 'oidc:\n  issuer: %s\n  clientId: steppy\n' "$idp" >"$tmp/open.yaml"
"$STEPPY" serve --config "$tmp/open.yaml" --listen 0.0.0.0:0 --db "$tmp/open.db" >"$tmp/open.log" 2>&1 &
open_pid=$!
i=0
while ! grep -q 'listening on' "$tmp/open.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'listening on http://0.0.0.0:' "$tmp/open.log" || problem "did not listen: $(cat "$tmp/open.log")"
open_url=$(sed -n 's/.*listening on http:\/\/0.0.0.0:\([0-9]*\) .*/http:\/\/127.0.0.1:\1/p' "$tmp/open.log")
status=$(curl -s -o /dev/null -w '%{http_code}' "$open_url/api/v1/executions")
[ "$status" = 401 ] || problem "the API answered $status without a sign-in"
kill $open_pid
wait $open_pid 2>/dev/null
end

export STEPPY_TEST_OIDC_SECRET='idp s3cret/+'
start_server "$tmp/config.yaml" "$db"
unset STEPPY_TEST_OIDC_SECRET

# sign_in USER [RETURN] [EXTRA-QUERY]: the whole flow with a fresh cookie jar
# $tmp/jar; leaves the callback's status in $status and its page in $out.
sign_in() {
    rm -f "$tmp/jar"
    loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$tmp/jar" \
        "$url/auth/login?return=${2:-/}")
    printf '%s' "$loc" >"$tmp/authorize-url"
    cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc&user=$1${3:-}")
    printf '%s' "$cb" >"$tmp/callback-url"
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -b "$tmp/jar" -c "$tmp/jar" "$cb")
    out=$(cat "$tmp/body")
}
whoami() { curl -s -b "$tmp/jar" "$url/api/v1/session"; }

begin 'sign-in: authorization code with PKCE (S256), state and nonce; RS256 ID token'
sign_in alice '/%23/executions'
expect_status 200
expect_out_contains 'Signed in as alice.'
expect_out_contains 'content="0;url=/#/executions"'
auth=$(cat "$tmp/authorize-url")
case "$auth" in "$idp/authorize?response_type=code&client_id=steppy&"*) ;; *) problem "authorize URL: $auth" ;; esac
for p in 'code_challenge_method=S256' 'code_challenge=' 'state=' 'nonce=' 'scope=openid%20email%20profile' \
    "redirect_uri=$(printf '%s' "$url/auth/callback" | sed 's/:/%3A/g; s/\//%2F/g')"; do
    case "$auth" in *"$p"*) ;; *) problem "authorize URL lacks $p" ;; esac
done
out=$(whoami)
expect_json 'd["identity"] == "alice" and d["roles"] == ["viewer", "approver"]'
grep -q 'alice signed in through' "$tmp/serve.log" || problem "no sign-in line in the log"
# the token request: client_secret_basic, the verifier, no secret in the form
curl -s "$idp/log" >"$tmp/idp-log.json"
/usr/bin/python3 -c '
import json, sys
log = json.load(open(sys.argv[1]))
t = [e for e in log if e["path"] == "/token"][-1]
assert t["basic"] and t["form"]["grant_type"] == "authorization_code", t
assert "client_secret" not in t["form"]
' "$tmp/idp-log.json" || problem "token request: $(cat "$tmp/idp-log.json")"
grep -q 's3cret' "$tmp/serve.log" && problem "the client secret reached the log"
end

begin 'the session cookie is signed: HttpOnly, SameSite=Strict; a changed one is refused'
grep -q 'steppy_session	v1\.' "$tmp/jar" || problem "no signed session cookie: $(cat "$tmp/jar")"
grep -q '#HttpOnly_127.0.0.1' "$tmp/jar" || problem "not HttpOnly"
cookie=$(sed -n 's/.*steppy_session	//p' "$tmp/jar")
forged=$(printf '%s' "$cookie" | /usr/bin/python3 -c '
import sys, base64, json
v = sys.stdin.read().strip()
_, payload, mac = v.split(".")
p = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
p["n"] = "admin"; p["r"] = 7
print("v1." + base64.urlsafe_b64encode(json.dumps(p).encode()).decode().rstrip("=") + "." + mac)')
status=$(curl -s -o /dev/null -w '%{http_code}' -b "steppy_session=$forged" "$url/api/v1/session")
[ "$status" = 401 ] || problem "a forged session answered $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -b "steppy_session=$cookie" "$url/api/v1/session")
[ "$status" = 200 ] || problem "the real session answered $status"
end

begin 'ES256 ID tokens are accepted too; the email claim matches case-insensitively'
mode es256
sign_in alice
expect_status 200
out=$(whoami)
expect_json 'd["identity"] == "alice"'
end

begin 'the provider rotated its keys: an unknown key id fetches the JWKS again'
mode rotate
before=$(curl -s "$idp/log" | grep -o '"/jwks"' | wc -l)
sign_in bob
expect_status 200
expect_out_contains 'Signed in as bob.'
after=$(curl -s "$idp/log" | grep -o '"/jwks"' | wc -l)
[ "$after" -gt "$before" ] || problem "the keys were not fetched again ($before, $after)"
end

# refused MODE REASON: the sign-in fails with REASON and leaves no session
refused() {
    begin "refused: $1"
    mode "$1"
    sign_in alice
    expect_status "${3:-403}"
    expect_out_contains "$2"
    [ "$(curl -s -o /dev/null -w '%{http_code}' -b "$tmp/jar" "$url/api/v1/session")" = 401 ] ||
        problem "a session was made"
    grep -q "sign-in refused: " "$tmp/serve.log" || problem "no log line"
    end
}
refused wrong-aud 'meant for another client (aud)'
refused wrong-iss 'comes from another issuer (iss)'
refused wrong-nonce 'belongs to another sign-in (nonce)'
refused expired 'has expired (exp)'
refused none 'algorithm &quot;none&quot; is not accepted'
refused hs256 'algorithm &quot;HS256&quot; is not accepted'
refused unknown-key 'signature does not verify'
refused unknown-kid 'signed by a key the provider does not publish'
refused tampered 'signature does not verify'
refused multi-aud 'issued to another client (azp)'
refused refuse 'the provider refused the sign-in: HTTP 400, invalid_grant' 502

begin 'two audiences with azp = steppy are accepted'
mode multi-aud-azp
sign_in alice
expect_status 200
end
mode rs256

begin 'a name the people directory lacks gets no access (no defaultRoles)'
sign_in mallory
expect_status 403
expect_out_contains 'mallory@example.com is not in this'
end

begin 'state: a callback without the login cookie, with another state, or replayed is refused'
sign_in alice
cb=$(cat "$tmp/callback-url")
status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$cb")
[ "$status" = 400 ] || problem "without the cookie: $status"
grep -q 'not started here' "$tmp/body" || problem "$(cat "$tmp/body")"
rm -f "$tmp/jar"
loc=$(curl -s -o /dev/null -w '%{redirect_url}' -c "$tmp/jar" "$url/auth/login")
cb=$(curl -s -o /dev/null -w '%{redirect_url}' "$loc&user=alice")
other=$(printf '%s' "$cb" | sed 's/state=[^&]*/state=AAAAAAAAAAAAAAAAAAAAAA/')
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -b "$tmp/jar" "$other")
[ "$status" = 400 ] || problem "another state: $status"
grep -q '(state)' "$tmp/body" || problem "$(cat "$tmp/body")"
end

begin 'after sign-in only paths of this server: no open redirect'
for r in 'https://evil.example/' '//evil.example/' '/%5Cevil.example' 'javascript:alert(1)' '/%0d%0aSet-Cookie:x=1'; do
    status=$(curl -s -o /dev/null -w '%{http_code}' "$url/auth/login?return=$r")
    [ "$status" = 400 ] || problem "return=$r answered $status"
done
status=$(curl -s -o /dev/null -w '%{http_code}' "$url/auth/login?return=/approvals/abc")
[ "$status" = 303 ] || problem "a local path answered $status"
end

begin "groupRoles: the provider's groups add roles (groupsClaim)"
sign_in victor / '&groups=ops-team,other'
expect_status 200
out=$(whoami)
expect_json 'd["identity"] == "victor" and d["roles"] == ["viewer", "operator"]'
sign_in victor
out=$(whoami)
expect_json 'd["roles"] == ["viewer"]'
end

begin 'the client secret from the environment is not passed on to what releases run'
printf '{"name": "env", "stages": [{"name": "s", "steps": [{"type": "Exec", "name": "env", "command": ["sh", "-c", "env > %s/exec-env.txt"]}]}]}' "$tmp" >"$tmp/env-plan.json"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $OPS" \
    -H 'Content-Type: application/json' \
    --data-binary "{\"plan\": $(cat "$tmp/env-plan.json")}" "$url/api/v1/executions")
[ "$status" = 201 ] || problem "submit: $status $(cat "$tmp/body")"
i=0
while [ ! -s "$tmp/exec-env.txt" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$tmp/exec-env.txt" ] || problem "the Exec step did not run"
grep -q 'STEPPY_TEST_OIDC_SECRET\|s3cret' "$tmp/exec-env.txt" && problem "the secret reached a command"
end

begin 'the dashboard learns how to sign in from the 401 of /api/v1/session'
out=$(curl -s "$url/api/v1/session")
expect_json 'd["signIn"]["oidc"] == {"label": "Fake IdP", "url": "/auth/login"} and d["signIn"]["token"] is True'
end

# ---- group approvers and personal links ---------------------------------------------------
cat >"$tmp/plan.json" <<'EOF'
{"name": "orders", "stages": [
  {"name": "go", "steps": [{"type": "Human", "name": "Prod go", "message": "Ship it?",
    "approvers": ["alice", "group:release-managers"], "minApprovals": 2, "channels": ["mail"]}]},
  {"name": "after", "steps": [{"type": "Wait", "name": "settle", "seconds": 1}]}]}
EOF
submit() {
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $OPS" \
        -H 'Content-Type: application/json' \
        --data-binary "{\"plan\": $(cat "$1"), \"name\": \"orders.json\"}" "$url/api/v1/executions")
    id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/body")
}
state_of() {
    curl -s -H "Authorization: Bearer $OPS" "$url/api/v1/executions/$1"
}
# mail_to ADDR: the newest message to ADDR (waits 10 s at most)
mail_to() {
    i=0
    while [ $i -lt 100 ]; do
        f=$(grep -l "^X-Rcpt: <$1>" "$tmp/mail"/*.eml 2>/dev/null | tail -1)
        [ -n "$f" ] && { cat "$f"; return 0; }
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
# the link in a quoted-printable message
link_in() { /usr/bin/python3 -c '
import quopri, re, sys
text = quopri.decodestring(sys.stdin.buffer.read()).decode()
m = re.search(r"(http://\S+/approvals/personal/[0-9a-f]+)", text)
print(m.group(1) if m else "")'; }

begin 'personal links: one per approver (groups through the directory), by their email'
submit "$tmp/plan.json"
[ "$status" = 201 ] || problem "submit: $status $(cat "$tmp/body")"
mail_to alice@example.com >"$tmp/alice.eml" || mail_to Alice@Example.com >"$tmp/alice.eml" || problem "no mail to alice"
mail_to bob@example.com >"$tmp/bob.eml" || problem "no mail to bob"
mail_to carol@example.com >"$tmp/carol.eml" || problem "no mail to carol"
alice_link=$(link_in <"$tmp/alice.eml")
bob_link=$(link_in <"$tmp/bob.eml")
carol_link=$(link_in <"$tmp/carol.eml")
[ -n "$alice_link" ] && [ -n "$bob_link" ] && [ "$alice_link" != "$bob_link" ] || problem "links: $alice_link $bob_link"
grep -q '^To: bob@example.com' "$tmp/bob.eml" || problem "the mail to bob is addressed otherwise"
grep -q 'release-room' "$tmp/bob.eml" && problem "the room got bob's link"
grep -l 'X-Rcpt: <release-room@example.com>' "$tmp/mail"/*.eml 2>/dev/null | xargs -r grep -l "$id" | grep -q . &&
    problem "the room got an approval mail though every approver had a personal one"
grep -q 'X-Rcpt: <victor@example.com>' "$tmp/mail"/*.eml && problem "victor is not an approver"
tok=${bob_link##*/}
[ ${#tok} -eq 32 ] || problem "token of ${#tok} characters"
/usr/bin/python3 -c '
import sqlite3, sys, hashlib
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT token_sha256, person FROM personal_links").fetchall()
assert sorted(p for _, p in rows) == ["alice", "bob", "carol"], rows
assert hashlib.sha256(sys.argv[2].encode()).digest() in [r[0] for r in rows]
' "$db" "$tok" || problem "personal_links table"
grep -c "$tok" "$db" >/dev/null && problem "the token is stored in clear"
end

begin 'a personal link: GET only shows, for its person; a wrong form token is refused'
run curl -s "$bob_link"
expect_out_contains 'Your personal link, bob'
expect_out_contains 'Ship it?'
csrf=$(printf '%s' "$out" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
[ ${#csrf} -eq 64 ] || problem "no form token"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "csrf=$(printf '%064d' 0)&decision=approve" "$bob_link")
[ "$status" = 403 ] || problem "wrong csrf: $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: https://evil.example' -d "csrf=$csrf&decision=approve" "$bob_link")
[ "$status" = 403 ] || problem "another origin: $status"
end

begin "a personal link decides once, in its person's name"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "csrf=$csrf&decision=approve&comment=lgtm" "$bob_link")
[ "$status" = 303 ] || problem "decision: $status"
run curl -s "$bob_link"
expect_out_contains 'decides once'
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "csrf=$csrf&decision=reject" "$bob_link")
[ "$status" = 409 ] || problem "second use: $status"
out=$(curl -s -H "Authorization: Bearer $OPS" "$url/api/v1/executions/$id/events")
printf '%s' "$out" | grep -q '"by":"bob","via":"personal-link"' || problem "history: $out"
out=$(state_of "$id")
expect_json 'd["status"] == "RUNNING"'
end

begin 'group approvers through the API: a signed-in member decides, others are refused'
sign_in victor
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -b "$tmp/jar" "$url/api/v1/executions/$id/steps/0/0/approve")
[ "$status" = 403 ] || problem "victor: $status $(cat "$tmp/body")"
sign_in carol
out=$(whoami)
expect_json 'd["identity"] == "carol" and "approver" in d["roles"]'
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -b "$tmp/jar" "$url/api/v1/executions/$id/steps/0/0/approve")
[ "$status" = 200 ] || problem "carol: $status $(cat "$tmp/body")"
i=0
while [ $i -lt 50 ]; do
    out=$(state_of "$id")
    case "$out" in *'"SUCCEEDED"'*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
expect_json 'd["stages"][0]["steps"][0]["state"] == "SUCCEEDED"'
run curl -s "$alice_link"
expect_out_contains 'This step has been approved.'
end

begin 'the general link offers the sign-in when the step has approvers'
cat >"$tmp/plan2.json" <<'EOF'
{"name": "quiet", "stages": [{"name": "go", "steps": [{"type": "Human", "name": "Quiet go",
  "message": "Go?", "approvers": ["group:release-managers"]}]}]}
EOF
submit "$tmp/plan2.json"
i=0
while ! grep -q 'step "Quiet go": http' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
link=$(sed -n 's/.*step "Quiet go": \(http[^ ]*\).*/\1/p' "$tmp/serve.log" | tail -1)
run curl -s "$link"
expect_out_contains "href=\"/auth/login?return=/approvals/${link##*/}\">Sign in with Fake IdP"
end

begin 'the server stops cleanly (and, sanitized, without a report)'
kill $server_pid
wait $server_pid 2>/dev/null
server_pid=""
grep -q "steppy serve: stopped" "$tmp/serve.log" || problem "no graceful stop: $(tail -5 "$tmp/serve.log")"
if grep -q -e 'ERROR: AddressSanitizer' -e 'ERROR: LeakSanitizer' -e 'runtime error:' "$tmp/serve.log"; then
    problem "sanitizer: $(grep -A20 -e ERROR -e 'runtime error' "$tmp/serve.log" | head -40)"
fi
end
finish
