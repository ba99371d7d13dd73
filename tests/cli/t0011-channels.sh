#!/bin/sh
# t0011: steppy serve's notification channels: approval links reach people
# through a webhook and a log channel, every release reports its start and
# end to the default channels, Notify steps use named channels, and a
# channel that cannot be reached is a warning in the history (or fails the
# step that says mustDeliver). A real HTTP receiver on loopback.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

# A webhook receiver: appends each request body (one JSON per line).
start_webhook_receiver "$tmp/hook.jsonl"
# a port nobody listens on
dead=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$tmp/config.yaml" <<EOF
channels:
  hook:
    type: webhook
    url: http://127.0.0.1:$(cat "$tmp/hook.port")/steppy
  audit:
    type: log
    path: $tmp/audit.log
  broken:
    type: webhook
    url: http://127.0.0.1:$dead/nowhere
defaultChannels: [audit]
EOF

"$STEPPY" serve --config "$tmp/config.yaml" --listen 127.0.0.1:0 --db "$db" >"$tmp/serve.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid $hook_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while ! grep -q 'listening on' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
submit() { submit_plan "$1"; }

begin 'an approval request goes to the step'\''s channel with its link; deciding through it works'
id=$(submit '{"plan": {"name": "orders", "environmentName": "prod", "stages": [{"name": "g", "steps": [{"type": "Human", "name": "Prod go", "message": "Ship it?", "channels": ["hook"]}]}]}}')
wait_file "$tmp/hook.jsonl" '"kind": *"approval"' || problem "no approval notice"
link=$(grep '"approval"' "$tmp/hook.jsonl" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["approvalUrl"])')
case "$link" in "$url/approvals/"*) ;; *) problem "link: $link" ;; esac
grep '"approval"' "$tmp/hook.jsonl" | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
assert d["message"] == "Ship it?" and d["executionId"] == sys.argv[1] and d["plan"] == "orders" and d["environment"] == "prod" and d["step"] == "Prod go", d' "$id" || problem "webhook body"
grep -q "approval requested" "$tmp/serve.log" && problem "the link also went to the server log"
page=$(curl -s "$link")
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -d "csrf=$csrf&decision=approve" "$link")
[ "$status" = 303 ] || problem "decision: $status"
wait_status "$id" SUCCEEDED || problem "not SUCCEEDED"
end

begin 'without tokens nobody is known: a step that needs names cannot be decided anonymously'
idn=$(submit '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "Two", "message": "Two?", "channels": ["hook"], "minApprovals": 2}]}]}}')
wait_file "$tmp/hook.jsonl" '"step": *"Two"' || problem "no approval notice"
link=$(grep '"Two"' "$tmp/hook.jsonl" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["approvalUrl"])')
page=$(curl -s "$link")
case "$page" in *'name="csrf"'*) problem "a decision form" ;; esac
case "$page" in *'This server has no tokens'*) ;; *) problem "the page does not say why" ;; esac
for k in 1 2; do
    body=$(curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{}' "$url/api/v1/executions/$idn/steps/0/0/approve")
    case "$body" in *'needs 2 approvals from different people'*' 403') ;; *) problem "anonymous API approval $k: $body" ;; esac
done
body=$(curl -s -w ' %{http_code}' -X POST -H 'Content-Type: application/json' --data-binary '{}' "$url/api/v1/executions/$idn/steps/0/0/reject")
case "$body" in *' 200') ;; *) problem "anonymous rejection: $body" ;; esac
wait_status "$idn" REJECTED || problem "not REJECTED"
end

begin 'every release reports its start and end to the default channels'
wait_file "$tmp/audit.log" "succeeded" || problem "no end notice"
grep -q "started" "$tmp/audit.log" || problem "no start notice"
grep "$id" "$tmp/audit.log" | grep -q "Release orders started in prod" || problem "start notice text"
end

begin 'Notify steps use named channels; an unreachable one is a warning, or fails with mustDeliver'
id2=$(submit '{"plan": {"stages": [{"name": "n", "steps": [{"type": "Notify", "name": "tell", "message": "v2 is out", "channels": ["hook", "broken"]}]}]}}')
wait_status "$id2" SUCCEEDED || problem "a warning failed the step"
grep -q '"v2 is out"' "$tmp/hook.jsonl" || problem "hook did not get it"
curl -s "$url/api/v1/executions/$id2/events" | /usr/bin/python3 -c '
import json, sys
ev = json.load(sys.stdin)["events"]
ok = [e for e in ev if e["type"] == "StepSucceeded"][0]["data"]
assert "broken" in ok.get("warning", ""), ok' || problem "no warning in the output"
id3=$(submit '{"plan": {"stages": [{"name": "n", "steps": [{"type": "Notify", "name": "tell", "message": "must", "channels": ["broken"], "mustDeliver": true}]}]}}')
wait_status "$id3" FAILED || problem "mustDeliver did not fail the step"
end

begin 'a channel the server does not have is refused at submit time, naming it, with "did you mean"'
run curl -s -w '\n%{http_code}' -X POST -H "Content-Type: application/json" --data-binary '{"plan": {"stages": [{"name": "n", "steps": [{"type": "Notify", "name": "tell", "message": "x", "channels": ["hok"]}]}]}}' "$url/api/v1/executions"
expect_out_contains '"code":"invalid-plan"'
expect_out_contains '"pointer":"/stages/0/steps/0/channels/0"'
expect_out_contains 'no channel \"hok\" is configured (this server has hook, audit, broken); did you mean \"hook\"?'
case "$out" in *"
400") ;; *) problem "not 400" ;; esac
end

begin 'an approval request that cannot be delivered is a Notice in the history'
id5=$(submit '{"plan": {"stages": [{"name": "g", "steps": [{"type": "Human", "name": "go", "message": "?", "channels": ["broken"]}]}]}}')
i=0
while [ $i -lt 150 ]; do
    curl -s "$url/api/v1/executions/$id5/events" | grep -q '"notification not delivered"' && break
    sleep 0.1; i=$((i + 1))
done
curl -s "$url/api/v1/executions/$id5/events" | grep -q '"notification not delivered"' || problem "no Notice"
end

begin 'without tokens: pages of other sites cannot start releases (Origin, content type, Host)'
plan='{"plan": {"stages": [{"name": "s", "steps": [{"type": "Exec", "name": "e", "command": ["touch", "'"$tmp"'/pwned"]}]}]}}'
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Origin: http://evil.example' -H 'Sec-Fetch-Site: cross-site' -H 'Content-Type: application/json' --data-binary "$plan" "$url/api/v1/executions")
[ "$status" = 403 ] || problem "cross-site POST: $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: text/plain' --data-binary "$plan" "$url/api/v1/executions")
[ "$status" = 415 ] || problem "text/plain POST: $status"
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: evil.example:80' "$url/api/v1/executions")
[ "$status" = 421 ] || problem "foreign Host: $status"
sleep 0.5
[ -e "$tmp/pwned" ] && problem "a command ran"
end

kill -TERM $server_pid
wait $server_pid 2>/dev/null
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
