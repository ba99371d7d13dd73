#!/bin/sh
# t0009: steppy serve - the HTTP API, tokens and roles, approval links and
# their pages, bad input of every kind, graceful stop and resume. Real HTTP
# on loopback (curl), a real SQLite store, the real binary.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

# ---- configuration and tokens ---------------------------------------------------
begin 'token: prints a token and only its hash for the configuration'
run "$STEPPY" token carol approver viewer
expect_status 0
expect_out_contains 'token: stp_'
expect_out_contains 'sha256: '
expect_out_contains 'roles: [approver, viewer]'
run "$STEPPY" token carol chef
expect_status 2
expect_err_contains '"chef" is not a role'
end

# One token per identity; the configuration holds their hashes.
mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
ADMIN=$(mk admin admin)
OPS=$(mk ops operator)
ALICE=$(mk alice approver)
BOB=$(mk bob approver)
VIEW=$(mk viewer viewer)
{
    echo "tokens:"
    for n in admin ops alice bob viewer; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
    echo "maxBodyBytes: 65536"
    echo "exec: {enabled: true}" # Exec steps run as the server's user (t0051)
} >"$tmp/config.yaml"

begin 'an invalid configuration names file, line, column and pointer; the server does not start'
cat >"$tmp/bad.yaml" <<'EOF'
listen: "nowhere"
tokens:
  - {name: x, sha256: abc, roles: [chef]}
defaultChannels: [slack]
colour: blue
EOF
run "$STEPPY" serve --config "$tmp/bad.yaml" --db "$db"
expect_status 1
expect_err_contains 'bad.yaml:1:9'
expect_err_contains '/listen'
expect_err_contains '/tokens/0/sha256'
expect_err_contains '/tokens/0/roles/0: "chef" is not a role'
expect_err_contains '/defaultChannels/0: no channel "slack"'
expect_err_contains '/colour'
expect_err_contains 'the server does not start'
end

begin 'without tokens the server refuses to listen beyond loopback'
run "$STEPPY" serve --listen 0.0.0.0:0 --db "$db"
expect_status 2
expect_err_contains 'refusing to listen on 0.0.0.0 without API tokens'
end

# ---- the server ----------------------------------------------------------------------
start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT

# api METHOD PATH [TOKEN] [BODY]: sets $status (HTTP) and $out (body)
api() {
    if [ -n "${3:-}" ]; then set -- "$1" "$2" -H "Authorization: Bearer $3" "${4:-}"; else set -- "$1" "$2" -H "X-None: 1" "${4:-}"; fi
    out=$(curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" "$3" "$4" ${5:+--data-binary "$5"} "$url$2")
    status=$out
    out=$(cat "$tmp/body")
    err=""
}
api_body() { # METHOD PATH TOKEN BODY
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' --data-binary "$4" "$url$2")
    out=$(cat "$tmp/body")
    err=""
}

# wait_status ID STATUS: polls the release (10 s at most); leaves it in $out
wait_status() {
    i=0
    while [ $i -lt 100 ]; do
        api GET "/api/v1/executions/$1" "$VIEW"
        case "$out" in *"\"status\":\"$2\""*) return 0 ;; esac
        sleep 0.1; i=$((i + 1))
    done
}

begin 'healthz answers without a token; the API wants one (401) and the right role (403)'
api GET /healthz
expect_status 200
expect_json 'd["status"] == "ok"'
api GET /api/v1/executions
expect_status 401
expect_json 'd["error"]["code"] == "unauthenticated"'
api GET /api/v1/executions not-a-token
expect_status 401
api GET /api/v1/executions "$VIEW"
expect_status 200
api_body POST /api/v1/executions "$VIEW" '{"plan": {}}'
expect_status 403
expect_json 'd["error"]["message"] == "this needs the operator role; token '"'viewer'"' has viewer"'
api GET /api/v1/session "$ALICE"
expect_json 'd["identity"] == "alice" and "approver" in d["roles"]'
end

cat >"$tmp/plan.json" <<'EOF'
{"name": "orders", "environmentName": "staging",
 "stages": [
  {"name": "build", "steps": [{"type": "Exec", "name": "compile", "command": ["sh", "-c", "echo built"]}]},
  {"name": "go", "steps": [{"type": "Human", "name": "Prod go", "message": "Ship ${var.TAG}?", "approvers": ["alice", "bob"]}]},
  {"name": "after", "steps": [{"type": "Wait", "name": "settle", "seconds": 1}]}],
 "variables": {"TAG": {"description": "release tag"}}}
EOF
submit_body() { /usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": json.load(open(sys.argv[1])), "variables": {"TAG": "v1.2"}, "name": "orders.json"}))' "$tmp/plan.json"; }

begin 'submit: 201 with an id; the release runs and waits for its approvers'
api_body POST /api/v1/executions "$OPS" "$(submit_body)"
expect_status 201
id=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
expect_json 'd["startedBy"] == "ops"'
i=0
while [ $i -lt 50 ]; do
    api GET "/api/v1/executions/$id" "$VIEW"
    case "$out" in *'"waitingFor":"approval of'*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
expect_json 'd["status"] == "RUNNING" and d["stages"][0]["state"] == "SUCCEEDED" and d["stages"][1]["steps"][0]["state"] == "RUNNING"'
expect_json 'd["stages"][1]["steps"][0]["waitingFor"] == "approval by alice, bob (asked through server log)" and d["environment"] == "staging" and d["startedBy"] == "ops"'
api GET "/api/v1/executions?status=WAITING" "$VIEW"
expect_json '[e["id"] for e in d["executions"]] == ["'"$id"'"]'
end

link=$(sed -n 's/.*step "Prod go": \(http[^ ]*\).*/\1/p' "$tmp/serve.log" | tail -1)

begin 'an approval link: GET only shows (a preview changes nothing), 128-bit token, not stored in clear'
[ -n "$link" ] || problem "no approval link in the server log"
tok=${link##*/}
[ ${#tok} -eq 32 ] || problem "token is ${#tok} characters"
run curl -s "$link"
expect_out_contains 'Ship v1.2?'
expect_out_contains 'alice, bob'
expect_out_contains 'may decide it: say who you are (sign in)'
expect_out_contains '0 of 1 approval given'
run curl -s -A 'Slackbot-LinkExpanding 1.0' "$link"
status=$(curl -s -o /dev/null -w '%{http_code}' -I "$link")
[ "$status" = 200 ] || problem "HEAD on the link: $status"
api GET "/api/v1/executions/$id" "$VIEW"
expect_json 'd["stages"][1]["steps"][0]["state"] == "RUNNING"'
/usr/bin/python3 - "$db" "$tok" <<'EOF' || problem "the token is stored in clear"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
raw = b"".join(bytes(str(r), "utf8") for t in ("approval_links", "events", "inbox") for r in db.execute("SELECT * FROM " + t))
sys.exit(1 if sys.argv[2].encode() in raw else 0)
EOF
end

# form_token PAGE: the token of the page's decision form (the one without an action)
form_token() { printf '%s' "$1" | sed -n 's/.*<form method="post"><input type="hidden" name="csrf" value="\([0-9a-f]*\)".*/\1/p'; }

begin 'an approval link: POST without the form token, or from another origin, is refused'
run curl -s -o /dev/null -w '%{http_code}' -X POST -d 'decision=approve' "$link"
[ "$out" = 403 ] || problem "no csrf: $out"
run curl -s -b "steppy_session=$ALICE" "$link"
csrf=$(form_token "$out")
[ -n "$csrf" ] || problem "no form for a signed-in approver"
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: https://evil.example' -b "steppy_session=$ALICE" -d "csrf=$csrf&decision=approve" "$link"
[ "$out" = 403 ] || problem "cross-origin: $out"
run curl -s -o /dev/null -w '%{http_code}' -X POST -d "csrf=$csrf&decision=approve" "$link"
[ "$out" = 403 ] || problem "not signed in: $out"
run curl -s -o /dev/null -w '%{http_code}' -X POST -b "steppy_session=$OPS" -d "csrf=$csrf&decision=approve" "$link"
[ "$out" = 403 ] || problem "not an approver: $out"
# A browser sets Origin and Sec-Fetch-Site itself. Origin "null" (what
# Chromium sends from a page with a no-referrer policy) passes only when the
# browser also says same-origin; an opaque origin of another kind (a
# sandboxed frame, a data: page) says cross-site.
for h in 'Sec-Fetch-Site: cross-site' 'Sec-Fetch-Site: same-site' 'X-None: 1'; do
    run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: null' -H "$h" -b "steppy_session=$ALICE" -d "csrf=$csrf&decision=approve" "$link"
    [ "$out" = 403 ] || problem "Origin: null with $h: $out"
    run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: null' -H "$h" -H 'Content-Type: application/json' -H "Authorization: Bearer $ALICE" --data-binary '{}' "$url/api/v1/executions/$id/steps/1/0/approve"
    [ "$out" = 403 ] || problem "API, Origin: null with $h: $out"
done
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: https://evil.example" -H 'Sec-Fetch-Site: same-origin' -b "steppy_session=$ALICE" -d "csrf=$csrf&decision=approve" "$link"
[ "$out" = 403 ] || problem "a foreign Origin claiming same-origin: $out"
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -b "steppy_session=$BOB" -d "csrf=$csrf&decision=approve" "$link"
[ "$out" = 403 ] || problem "alice's form posted as bob: $out"
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -d "csrf=$csrf&token=$BOB" "$link/sign-in"
[ "$out" = 403 ] || problem "sign-in with the decision form's token: $out"
run curl -s -i "$link"
case "$out" in *'Referrer-Policy: same-origin'*) ;; *) problem "the page's referrer policy" ;; esac
api GET "/api/v1/executions/$id" "$VIEW"
expect_json 'd["stages"][1]["steps"][0]["state"] == "RUNNING"'
end

begin 'API decisions check the approvers; wrong steps and kinds are refused'
api_body POST "/api/v1/executions/$id/steps/1/0/approve" "$OPS" '{}'
expect_status 403
api_body POST "/api/v1/executions/$id/steps/1/0/approve" "$ADMIN" '{}'
expect_status 403
expect_json 'd["error"]["code"] == "not-an-approver"'
api_body POST "/api/v1/executions/$id/steps/0/0/approve" "$ALICE" '{}'
expect_status 409
api_body POST "/api/v1/executions/$id/steps/9/0/approve" "$ALICE" '{}'
expect_status 404
api_body POST "/api/v1/executions/$id/steps/x/0/approve" "$ALICE" '{}'
expect_status 400
end

begin 'an approval link decides once: approve with a comment (Origin: null from the same origin), then the page says so'
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: null' -H 'Sec-Fetch-Site: same-origin' -b "steppy_session=$ALICE" -d "csrf=$csrf&decision=approve&comment=all+green" "$link"
[ "$out" = 303 ] || problem "approve: $out"
i=0
while [ $i -lt 50 ]; do
    api GET "/api/v1/executions/$id" "$VIEW"
    case "$out" in *'"status":"SUCCEEDED"'*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
expect_json 'd["status"] == "SUCCEEDED"'
run curl -s -b "steppy_session=$ALICE" "$link"
expect_out_contains 'This step has been approved.'
expect_out_lacks 'name="csrf"'
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -b "steppy_session=$ALICE" -d "csrf=$csrf&decision=reject" "$link"
[ "$out" = 409 ] || problem "second decision: $out"
api GET "/api/v1/executions/$id/events?limit=1000" "$VIEW"
expect_json '[(e["data"]["by"], e["data"]["approverRole"], e["data"]["via"], e["data"]["address"], e["data"].get("comment"), e["data"]["decision"]) for e in d["events"] if e["type"] == "HumanDecision"] == [("alice", True, "link", "127.0.0.1", "all green", "approve")]'
end

begin 'events are paginated'
api GET "/api/v1/executions/$id/events?limit=3" "$VIEW"
expect_json 'len(d["events"]) == 3 and d["nextAfter"] == 3 and d["events"][0]["type"] == "ExecutionStarted"'
api GET "/api/v1/executions/$id/events?after=3&limit=2" "$VIEW"
expect_json '[e["seq"] for e in d["events"]] == [4, 5]'
api GET "/api/v1/executions/$id/events?after=x" "$VIEW"
expect_status 400
end

begin 'reject through the API stops the release; abort and retry'
api_body POST /api/v1/executions "$OPS" "$(submit_body)"
id2=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
i=0
while [ $i -lt 50 ]; do
    api GET "/api/v1/executions/$id2" "$VIEW"
    case "$out" in *'"waitingFor":"approval of'*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
api_body POST "/api/v1/executions/$id2/steps/1/0/reject" "$BOB" '{"comment": "not today"}'
expect_status 200
expect_json 'd["result"] == "rejected"'
api GET "/api/v1/executions/$id2" "$VIEW"
expect_json 'd["status"] == "REJECTED"'
api_body POST "/api/v1/executions/$id2/abort" "$OPS" '{}'
expect_status 409
cat >"$tmp/slow.json" <<'EOF'
{"plan": {"stages": [{"name": "s", "steps": [{"type": "Exec", "name": "sleepy", "command": ["sleep", "30"]}]}]}}
EOF
api_body POST /api/v1/executions "$OPS" "$(cat "$tmp/slow.json")"
id3=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sleep 0.5
api_body POST "/api/v1/executions/$id3/abort" "$VIEW" '{}'
expect_status 403
api_body POST "/api/v1/executions/$id3/abort" "$OPS" '{"reason": "wrong tag"}'
expect_status 200
wait_status "$id3" ABORTED
expect_json 'd["status"] == "ABORTED"'
api_body POST "/api/v1/executions/$id3/retry" "$OPS" '{}'
expect_status 200
api GET "/api/v1/executions/$id3" "$VIEW"
expect_json 'd["status"] == "RUNNING"'
api_body POST "/api/v1/executions/$id3/abort" "$ADMIN" '{}'
expect_status 200
end

begin 'an abort that races the end of a release is answered, never left queued'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Exec", "name": "f", "command": ["false"]}]}]}}'
idr=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_status "$idr" FAILED
for k in 1 2 3; do
    api_body POST "/api/v1/executions/$idr/retry" "$OPS" '{}'
    api_body POST "/api/v1/executions/$idr/abort" "$OPS" '{}'
    [ "$status" = 200 ] || [ "$status" = 409 ] || problem "abort answered $status: $out"
    i=0
    while [ $i -lt 100 ]; do
        api GET "/api/v1/executions/$idr" "$VIEW"
        case "$out" in *'"status":"RUNNING"'*) ;; *) break ;; esac
        sleep 0.1; i=$((i + 1))
    done
done
/usr/bin/python3 - "$db" <<'EOF' || problem "a command was left unanswered"
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM inbox WHERE done_ms IS NULL").fetchone()[0]
sys.exit(1 if n else 0)
EOF
end

begin 'retry of a running release is refused and leaves it running (lease kept)'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 2}]}]}}'
idk=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api_body POST "/api/v1/executions/$idk/retry" "$OPS" '{}'
expect_status 409
/usr/bin/python3 - "$db" "$idk" <<'EOF' || problem "the lease was given up"
import sqlite3, sys
n = sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM leases WHERE execution_id = ?", (sys.argv[2],)).fetchone()[0]
sys.exit(0 if n == 1 else 1)
EOF
wait_status "$idk" SUCCEEDED
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'two approvals of three (minApprovals): the first is recorded, the second decides'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "go", "message": "ok?", "approvers": ["alice", "bob", "carol"], "minApprovals": 2}]}]}}'
idm=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sleep 0.3
api_body POST "/api/v1/executions/$idm/steps/0/0/approve" "$ALICE" '{}'
expect_status 200
expect_json 'd["result"].startswith("approval recorded")'
api_body POST "/api/v1/executions/$idm/steps/0/0/approve" "$ALICE" '{}'
expect_status 409
api GET "/api/v1/executions/$idm" "$VIEW"
expect_json 'd["stages"][0]["steps"][0]["approvals"] == {"needed": 2, "by": ["alice"]}'
api_body POST "/api/v1/executions/$idm/steps/0/0/approve" "$BOB" '{}'
expect_json 'd["result"] == "approved"'
api GET "/api/v1/executions/$idm" "$VIEW"
expect_json 'd["status"] == "SUCCEEDED"'
end

# link_of STEP: the approval link the server log shows for a step (the last)
link_of() { sed -n "s/.*step \"$1\": \(http[^ ]*\).*/\1/p" "$tmp/serve.log" | tail -1; }
# wait_waiting ID: until the release waits for a person (5 s at most)
wait_waiting() {
    i=0
    while [ $i -lt 50 ]; do
        api GET "/api/v1/executions/$1" "$VIEW"
        case "$out" in *'"waitingFor":"approval'*) return 0 ;; esac
        sleep 0.1; i=$((i + 1))
    done
}

begin 'one rule for page and API: a viewer-only token named in approvers decides neither way'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "viewer gate", "message": "ok?", "approvers": ["viewer", "bob"]}]}]}}'
idv=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_waiting "$idv"
api_body POST "/api/v1/executions/$idv/steps/0/0/approve" "$VIEW" '{}'
expect_status 403
expect_json 'd["error"]["message"] == "this needs the approver role; token '"'viewer'"' has viewer"'
lv=$(link_of "viewer gate")
run curl -s -b "steppy_session=$VIEW" "$lv"
expect_out_contains 'viewer may not decide &quot;viewer gate&quot;: this needs the approver role; viewer has viewer.'
[ -z "$(form_token "$out")" ] || problem "a decision form for a viewer"
run curl -s -b "steppy_session=$BOB" "$lv"
csrf_b=$(form_token "$out")
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -b "steppy_session=$VIEW" -d "csrf=$csrf_b&decision=approve" "$lv"
[ "$out" = 403 ] || problem "the viewer with bob's form: $out"
api GET "/api/v1/executions/$idv" "$VIEW"
expect_json 'd["status"] == "RUNNING" and d["stages"][0]["steps"][0]["approvals"]["by"] == []'
api_body POST "/api/v1/executions/$idv/steps/0/0/approve" "$BOB" '{}'
expect_json 'd["result"] == "approved"'
end

begin 'minApprovals 2 without approvers: the page needs sign-in, counts, and one person counts once'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "two gate", "message": "ok?", "minApprovals": 2}]}]}}'
idt=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_waiting "$idt"
lt=$(link_of "two gate")
run curl -s "$lt"
expect_out_contains '0 of 2 approvals given'
expect_out_contains '&quot;two gate&quot; needs 2 approvals from different people: an approval must say who gives it (sign in)'
[ -z "$(form_token "$out")" ] || problem "an anonymous decision form"
run curl -s -b "steppy_session=$ALICE" "$lt"
csrf_a=$(form_token "$out")
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -d "csrf=$csrf_a&decision=approve" "$lt"
[ "$out" = 403 ] || problem "alice's form posted anonymously: $out"
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -b "steppy_session=$ALICE" -d "csrf=$csrf_a&decision=approve" "$lt"
[ "$out" = 303 ] || problem "alice on the page: $out"
run curl -s -b "steppy_session=$ALICE" "$lt"
expect_out_contains '1 of 2 approvals given (alice)'
expect_out_contains 'alice has already approved'
run curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -b "steppy_session=$ALICE" -d "csrf=$csrf_a&decision=approve" "$lt"
[ "$out" = 409 ] || problem "alice again on the page: $out"
api_body POST "/api/v1/executions/$idt/steps/0/0/approve" "$ALICE" '{}'
expect_status 409
expect_json 'd["error"]["message"].startswith("alice has already approved")'
api_body POST "/api/v1/executions/$idt/steps/0/0/approve" "$BOB" '{}'
expect_json 'd["result"] == "approved"'
api GET "/api/v1/executions/$idt" "$VIEW"
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'allowSelfApproval false: the page names who is excluded; the starter may reject, not approve'
api_body POST /api/v1/executions "$ADMIN" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "self gate", "message": "ok?", "allowSelfApproval": false}]}]}}'
ids=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_waiting "$ids"
ls_=$(link_of "self gate")
run curl -s "$ls_"
expect_out_contains 'admin, who started the release, may reject but not approve'
[ -z "$(form_token "$out")" ] || problem "an anonymous decision form"
api_body POST "/api/v1/executions/$ids/steps/0/0/approve" "$ADMIN" '{}'
expect_status 409
expect_json 'd["error"]["message"] == "whoever started the release (admin) cannot approve it: allowSelfApproval is false"'
run curl -s -b "steppy_session=$ADMIN" "$ls_"
expect_out_contains 'value="reject"'
expect_out_lacks 'value="approve"'
api_body POST "/api/v1/executions/$ids/steps/0/0/approve" "$ALICE" '{}'
expect_json 'd["result"] == "approved"'
# Two approvals of two approvers, one of whom starts it: refused at submit.
api_body POST /api/v1/executions "$ADMIN" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "pair", "message": "ok?", "approvers": ["admin", "bob"], "minApprovals": 2}]}]}}'
expect_status 400
expect_json 'd["error"]["code"] == "invalid-plan" and d["error"]["diagnostics"][0]["pointer"] == "/stages/0/steps/0/minApprovals" and d["error"]["message"] == "admin started the release and is among the approvers, and allowSelfApproval is false: the others are 1 person, fewer than minApprovals (2); nobody could approve it"'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "pair", "message": "ok?", "approvers": ["admin", "bob"], "minApprovals": 2}]}]}}'
expect_status 201
idp=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api_body POST "/api/v1/executions/$idp/abort" "$OPS" '{}'
expect_status 200
end

begin 'bad input: malformed JSON, unknown fields, invalid plans, oversized bodies, wrong methods'
api_body POST /api/v1/executions "$OPS" '{"plan": '
expect_status 400
expect_json 'd["error"]["code"] == "malformed-json"'
api_body POST /api/v1/executions "$OPS" '{"plan": {}, "colour": 1}'
expect_status 400
expect_json 'd["error"]["code"] == "unknown-field" and d["error"]["message"].startswith("/colour")'
api_body POST /api/v1/executions "$OPS" '[1]'
expect_status 400
api_body POST /api/v1/executions "$OPS" '{"plan": "stages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: -5}\n"}'
expect_status 400
expect_json 'd["error"]["code"] == "invalid-plan" and d["error"]["diagnostics"][0]["line"] == 4 and d["error"]["diagnostics"][0]["pointer"] == "/stages/0/steps/0/seconds"'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": []}, "variables": {"X": 1}}'
expect_status 400
head -c 100000 /dev/zero | tr '\0' 'x' >"$tmp/big"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $OPS" --data-binary @"$tmp/big" "$url/api/v1/executions")
out=$(cat "$tmp/body")
expect_status 413
expect_json 'd["error"]["code"] == "too-large"'
api DELETE /api/v1/executions "$ADMIN"
expect_status 405
expect_json 'd["error"]["code"] == "method-not-allowed"'
status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $ADMIN" "$url/api/v1/executions")
[ "$status" = 405 ] || problem "PUT: $status"
curl -s -i -X DELETE -H "Authorization: Bearer $ADMIN" "$url/api/v1/executions" | grep -qi '^Allow: GET, POST' || problem "no Allow header"
api GET /api/v1/nothing "$ADMIN"
expect_status 404
api GET "/api/v1/executions/nosuchid" "$ADMIN"
expect_status 404
api GET "/api/v1/executions?status=BAD" "$ADMIN"
expect_status 400
api GET "/api/v1/executions?limit=0" "$ADMIN"
expect_status 400
end

begin 'bad input: path traversal and odd paths'
status=$(curl -s --path-as-is -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $ADMIN" "$url/api/v1/executions/../../etc/passwd")
[ "$status" = 400 ] || [ "$status" = 404 ] || problem "traversal: $status"
grep -q root: "$tmp/body" && problem "served a file"
status=$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$url/approvals/..%2f..%2fetc%2fpasswd")
[ "$status" = 404 ] || [ "$status" = 400 ] || problem "approval traversal: $status"
status=$(curl -s -o /dev/null -w '%{http_code}' "$url/approvals/$(printf 'a%.0s' $(seq 1 32))")
[ "$status" = 404 ] || problem "unknown link: $status"
end

begin 'a slow client does not hold up the others'
/usr/bin/python3 - "$url" <<'EOF' &
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
s.sendall(b"POST /api/v1/executions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
time.sleep(40)
EOF
slow=$!
api GET /healthz
expect_status 200
kill $slow 2>/dev/null
end

begin 'metrics in Prometheus text format'
api GET /metrics "$VIEW"
expect_status 200
printf '%s\n' "$out" | grep -Eq '^steppy_executions\{status="SUCCEEDED"\} [1-9]' || problem "no SUCCEEDED count"
printf '%s\n' "$out" | grep -Eq '^steppy_approval_wait_seconds_count [1-9]' || problem "no approval wait count"
printf '%s\n' "$out" | grep -Eq '^steppy_executions\{status="REJECTED"\} 1$' || problem "no REJECTED count"
printf '%s\n' "$out" | grep -Eq '^steppy_step_attempts_total\{type="Exec",state="SUCCEEDED"\} [1-9]' || problem "no Exec count"
printf '%s\n' "$out" | grep -Eq '^steppy_aws_calls_total [0-9]+$' || problem "no AWS call count"
case "$out" in *'# TYPE steppy_http_requests_total counter'*) ;; *) problem "no request counter" ;; esac
end

begin 'live updates: the stream sends the execution, then its new events as they come'
api_body POST /api/v1/executions "$OPS" '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}}'
id4=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
timeout 4 curl -sN -H "Authorization: Bearer $VIEW" "$url/api/v1/executions/$id4/stream" >"$tmp/sse" 2>/dev/null
# The report once, then only new events.
[ "$(grep -c '^event: execution' "$tmp/sse")" = 1 ] || problem "not one report"
grep -q '^event: events' "$tmp/sse" || problem "no update with new events"
grep -q '"status":"SUCCEEDED"' "$tmp/sse" || problem "the end was not streamed"
end

begin 'SIGTERM stops gracefully; a waiting release survives and resumes with the next server'
api_body POST /api/v1/executions "$OPS" "$(submit_body)"
id5=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
sleep 1
kill -TERM $server_pid
wait $server_pid
status=$?
expect_status 0
run "$STEPPY" show --db "$db" "$id5" --format json
expect_json 'd["status"] == "RUNNING"'
start_server "$tmp/config.yaml" "$db"
api GET "/api/v1/executions/$id5" "$VIEW"
expect_json 'd["status"] == "RUNNING"'
api_body POST "/api/v1/executions/$id5/steps/1/0/approve" "$BOB" '{}'
expect_status 200
i=0
while [ $i -lt 50 ]; do
    api GET "/api/v1/executions/$id5" "$VIEW"
    case "$out" in *'"status":"SUCCEEDED"'*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'sessions: sign in sets an HttpOnly SameSite=Strict cookie; sign out clears it'
run curl -s -i -X POST -H 'Content-Type: application/json' --data-binary "{\"token\": \"$ALICE\"}" "$url/api/v1/session"
expect_out_contains 'Set-Cookie: steppy_session='
expect_out_contains 'HttpOnly; SameSite=Strict'
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{"token": "nope"}' "$url/api/v1/session"
[ "$out" = 401 ] || problem "bad token: $out"
run curl -s -i -X DELETE "$url/api/v1/session"
expect_out_contains 'Max-Age=0'
end

kill -TERM $server_pid 2>/dev/null
wait $server_pid 2>/dev/null

begin 'a client that stops sending is cut off after clientTimeoutSeconds'
cp "$tmp/config.yaml" "$tmp/config-slow.yaml"
echo 'clientTimeoutSeconds: 2' >>"$tmp/config-slow.yaml"
start_server "$tmp/config-slow.yaml" "$db"
/usr/bin/python3 - "$url" "$ADMIN" <<'EOF' || problem "the slow client was not cut off"
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
# with a token: a body without one is refused on its headers (t0019)
s.sendall(b"POST /api/v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          sys.argv[2].encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
s.settimeout(10)
start = time.time()
try:
    data = s.recv(100)
except socket.timeout:
    sys.exit(1)
took = time.time() - start
sys.exit(0 if 1.5 <= took <= 6 else 1)
EOF
kill -TERM $server_pid
wait $server_pid 2>/dev/null
end

begin 'TLS from the configuration: https only, and the session cookie is Secure'
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 \
    -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1 || problem "openssl"
cp "$tmp/config.yaml" "$tmp/config-tls.yaml"
printf 'tls:\n  certificate: %s\n  key: %s\n' "$tmp/cert.pem" "$tmp/key.pem" >>"$tmp/config-tls.yaml"
: >"$tmp/serve.log" # emptied before the server starts (see start_server)
"$STEPPY" serve --config "$tmp/config-tls.yaml" --listen 127.0.0.1:0 --db "$db" >>"$tmp/serve.log" 2>&1 &
server_pid=$!
i=0
while ! grep -q 'listening on' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
case "$url" in https://*) ;; *) problem "not https: $url" ;; esac
run curl -s --cacert "$tmp/cert.pem" -H "Authorization: Bearer $VIEW" "$url/api/v1/executions?limit=1"
expect_json 'len(d["executions"]) == 1'
run curl -s -o /dev/null -w '%{http_code}' "http${url#https}/healthz"
[ "$out" = 000 ] || problem "plain http answered: $out"
run curl -s -i --cacert "$tmp/cert.pem" -X POST -H 'Content-Type: application/json' --data-binary "{\"token\": \"$ALICE\"}" "$url/api/v1/session"
expect_out_contains 'SameSite=Strict; Secure'
kill -TERM $server_pid
wait $server_pid 2>/dev/null
end

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
