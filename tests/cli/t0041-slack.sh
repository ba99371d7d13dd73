#!/bin/sh
# t0041: approving from Slack. A Slack bot channel posts the approval
# request (chat.postMessage, Block Kit, Approve/Reject buttons) to a fake of
# Slack's Web API that checks every request against Slack's documented
# shapes; the fake then plays Slack sending signed interactions to steppy.
# A valid approval moves the release on and the message is updated; forged,
# replayed, stale and unknown-user interactions are refused and record
# nothing. The engine's rules (minApprovals, one approval per person) apply
# to Slack decisions as to any other.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
fake="/usr/bin/python3 $repo/tests/slack/fake_slack.py"
secret='8f742231b10e8888abcd99yyyzzz85a5'
export STEPPY_TEST_SLACK_TOKEN=xoxb-0000-steppy-test STEPPY_TEST_SLACK_SIGNING="$secret"

$fake serve --port-file "$tmp/slack.port" --log "$tmp/slack.jsonl" --token "$STEPPY_TEST_SLACK_TOKEN" \
    2>"$tmp/slack.err" &
slack_pid=$!
i=0
while [ ! -s "$tmp/slack.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
slack="http://127.0.0.1:$(cat "$tmp/slack.port")"

cat >"$tmp/config.yaml" <<EOF
channels:
  releases:
    type: slack
    tokenEnv: STEPPY_TEST_SLACK_TOKEN
    signingSecretEnv: STEPPY_TEST_SLACK_SIGNING
    channel: C0RELEASES
    apiUrl: $slack/api
people:
  alice:
    slack: U0ALICE
  bob:
    slack: U0BOB
  carol:
    slack: U0CAROL
    roles: [viewer]
EOF
start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid $slack_pid 2>/dev/null; rm -rf "$tmp"' EXIT
if [ -z "$url" ] && grep -q 'unknown field "people"' "$tmp/serve.log"; then
    # The people directory (core/people.h, "people:" in the configuration) lands on
    # main separately; without it nobody can be recognised from Slack.
    echo "# SKIP: this steppy has no people directory yet; t0041 needs it"
    finish
    exit 0
fi
[ -n "$url" ] || { cat "$tmp/serve.log"; exit 1; }

submit() { submit_plan "$1"; }
# calls N METHOD [TEXT]: until the fake has N calls of METHOD (containing TEXT)
calls() {
    i=0
    while [ $i -lt 100 ]; do
        n=$(grep "\"method\": \"$2\"" "$tmp/slack.jsonl" 2>/dev/null | grep -c -- "${3:-}")
        [ "$n" -ge "$1" ] && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}
decisions() { curl -s "$url/api/v1/executions/$1/events" | grep -o '"type":"HumanDecision"' | wc -l | tr -d ' '; }
click() { $fake click --url "$url" --log "$tmp/slack.jsonl" --secret "$secret" "$@"; }

plan='{"plan": {"name": "web", "stages": [{"name": "prod", "steps": [{"type": "Human", "name": "Go", "message": "Ship [it](https://elsewhere.example)?", "channels": ["releases"]}]}]}}'

begin 'the approval request is posted with chat.postMessage: Block Kit, Approve/Reject buttons, the link'
id=$(submit "$plan")
calls 1 chat.postMessage || problem "nothing posted"
run /usr/bin/python3 - "$tmp/slack.jsonl" "$url" <<'EOF'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1]) if '"chat.postMessage"' in l][0]
assert e["ok"], e
b = e["body"]
assert b["channel"] == "C0RELEASES" and b["unfurl_links"] is False, b
acts = [x for x in b["blocks"] if x["type"] == "actions"][0]["elements"]
assert [a["action_id"] for a in acts] == ["steppy-approve", "steppy-reject", "steppy-open"], acts
assert acts[2]["url"].startswith(sys.argv[2] + "/approvals/"), acts
ref = json.loads(acts[0]["value"])
assert ref["stage"] == 0 and ref["step"] == 0 and ref["attempt"] == 1, ref
assert "<https" not in json.dumps(b)
print("ok")
EOF
expect_out_contains ok
run curl -s "$slack/_fake/violations"
expect_out_contains '[]'
end

begin 'a forged signature is refused (401) and records nothing'
run click --user U0ALICE --forge
expect_out_contains 401
grep -q 'slack: refused a request from 127.0.0.1: the signature is wrong' "$tmp/serve.log" || problem "no log line"
[ "$(decisions "$id")" = 0 ] || problem "a decision was recorded"
end

begin 'a stale interaction (6 minutes old) is refused, even well signed'
run click --user U0ALICE --age 360
expect_out_contains 401
[ "$(decisions "$id")" = 0 ] || problem "a decision was recorded"
end

begin 'an unknown Slack user is refused with an ephemeral answer; nothing recorded'
run click --user U0MALLORY
expect_out_contains 200
calls 1 chat.postEphemeral 'U0MALLORY' || problem "no ephemeral answer"
grep chat.postEphemeral "$tmp/slack.jsonl" | grep -q 'does not know your Slack account' || problem "ephemeral text"
[ "$(decisions "$id")" = 0 ] || problem "a decision was recorded"
end

begin 'a person without the approver role is refused; nothing recorded'
run click --user U0CAROL
expect_out_contains 200
calls 2 chat.postEphemeral || problem "no ephemeral answer"
grep chat.postEphemeral "$tmp/slack.jsonl" | grep -q 'carol may not decide' || problem "ephemeral text"
[ "$(decisions "$id")" = 0 ] || problem "a decision was recorded"
end

begin 'a valid approval moves the release on and the message says who decided'
run click --user U0ALICE --save "$tmp/approve.json"
expect_out_contains 200
wait_status "$id" SUCCEEDED || problem "not SUCCEEDED"
calls 1 chat.update 'Approved by alice' || problem "message not updated"
run /usr/bin/python3 - "$tmp/slack.jsonl" <<'EOF'
import json, sys
e = [json.loads(l) for l in open(sys.argv[1]) if '"chat.update"' in l][-1]
assert e["ok"], e
ids = [a["action_id"] for b in e["body"]["blocks"] if b["type"] == "actions" for a in b["elements"]]
assert ids == ["steppy-open"], ids
print("ok")
EOF
expect_out_contains ok
run curl -s "$url/api/v1/executions/$id/events"
expect_out_contains '"by":"alice","approverRole":true,"via":"slack","slackUser":"U0ALICE"'
end

begin 'the same request again (a replay) is refused; nothing more recorded'
run click --replay "$tmp/approve.json"
expect_out_contains 401
grep -q 'slack: refused a replayed request' "$tmp/serve.log" || problem "no log line"
[ "$(decisions "$id")" = 1 ] || problem "decisions: $(decisions "$id")"
end

begin 'minApprovals: 2 through Slack: the engine counts people, the buttons stay until done'
id2=$(submit '{"plan": {"name": "api", "stages": [{"name": "prod", "steps": [{"type": "Human", "name": "Two", "message": "?", "minApprovals": 2, "channels": ["releases"]}]}]}}')
calls 2 chat.postMessage || problem "nothing posted"
run click --user U0ALICE
calls 1 chat.update '1 of 2 approvals' || problem "no partial update"
run click --user U0ALICE
calls 1 chat.postEphemeral 'alice has already approved' || problem "no refusal of a second approval"
[ "$(decisions "$id2")" = 1 ] || problem "decisions: $(decisions "$id2")"
run click --user U0BOB
wait_status "$id2" SUCCEEDED || problem "not SUCCEEDED"
calls 1 chat.update 'Approved by bob' || problem "message not updated"
end

begin 'a click on a decided request is answered with what became of it'
run click --user U0BOB --action steppy-reject --message 0 --original
calls 1 chat.postEphemeral 'approved already' || problem "no answer"
[ "$(decisions "$id")" = 1 ] || problem "decisions: $(decisions "$id")"
run curl -s "$slack/_fake/violations"
expect_out_contains '[]'
end

finish
