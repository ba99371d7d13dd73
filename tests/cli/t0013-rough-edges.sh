#!/bin/sh
# t0013: rough edges a new user hit (issue 10 item 13): Wait steps and the
# default timeout, attempt numbers after a retry, the status line on Ctrl-C,
# graph without --var, "did you mean" for options, case in --status, the
# abort's reason and author everywhere.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

begin 'a Wait step is not cut by defaults.timeoutSeconds: its duration is its timeout'
cat >"$tmp/wait.yaml" <<'EOF'
name: waits
defaults: {timeoutSeconds: 1}
stages:
  - name: s
    steps:
      - {type: Wait, name: pause, seconds: 2}
EOF
run "$STEPPY" run --db "$db" "$tmp/wait.yaml"
expect_status 0
expect_out_lacks 'TIMED OUT'
expect_out_contains 'SUCCEEDED'
end

begin 'after steppy retry, attempts are counted against the fresh budget ("attempt 4", not "4 of 2")'
cat >"$tmp/flaky.yaml" <<'EOF'
name: flaky
stages:
  - name: s
    steps:
      - {type: Exec, name: flaky, command: [sh, -c, "exit 3"], retry: {maxAttempts: 2, intervalSeconds: 0}}
EOF
run "$STEPPY" run --db "$db" "$tmp/flaky.yaml"
expect_status 3
expect_out_contains 'flaky will be tried again in 0s (attempt 2 of 2)'
fid=$(printf '%s\n' "$out" | sed -n 's/.*release \([0-9a-z]*\) "flaky" started.*/\1/p')
run "$STEPPY" retry --db "$db" "$fid"
expect_status 3
expect_out_lacks 'attempt 4 of 2'
expect_out_contains 'flaky will be tried again in 0s (attempt 4: 2 of 2 since the retry)'
end

if command -v script >/dev/null 2>&1; then
    begin 'Ctrl-C clears the status line before steppy says it stopped'
    cat >"$tmp/nap.yaml" <<'EOF'
name: nap
stages:
  - name: s
    steps:
      - {type: Exec, name: nap, command: [sleep, "30"]}
EOF
    # a terminal for steppy: script(1) runs it in a pseudo-terminal
    TERM=xterm script -qfec "exec $STEPPY run --db $db $tmp/nap.yaml" /dev/null >"$tmp/tty.out" 2>&1 </dev/null &
    script_pid=$!
    i=0
    while ! grep -q 'running: nap' "$tmp/tty.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    steppy_pid=$(ps -o pid= --ppid "$script_pid" | tr -d ' ')
    [ -n "$steppy_pid" ] && kill -INT "$steppy_pid"
    wait "$script_pid"
    /usr/bin/python3 - "$tmp/tty.out" <<'EOF' || problem "the status line was left in front of the stop message"
import sys
t = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
stop = t.find("steppy: stopped")
last = t.rfind("running: nap", 0, stop)
sys.exit(0 if stop > 0 and last >= 0 and "\r\x1b[K" in t[last:stop] else 1)
EOF
    out=$(cat -v "$tmp/tty.out")
    expect_out_contains 'steppy: stopped'
    end
fi

begin 'graph draws without --var for variables it does not show'
cat >"$tmp/vars.yaml" <<'EOF'
name: vars
variables:
  VERSION: {description: the version}
  REGION: {description: where}
stages:
  - name: build
    steps:
      - {type: Exec, name: compile, command: [make, "VERSION=${var.VERSION}"]}
      - {type: Lambda, name: "notify ${var.REGION}", functionName: f, region: "${var.REGION}"}
EOF
run "$STEPPY" graph "$tmp/vars.yaml"
expect_status 0
expect_out_contains 'Exec: compile'
expect_out_contains 'Lambda: notify ${var.REGION}'
run "$STEPPY" graph --var REGION=eu-west-1 "$tmp/vars.yaml"
expect_status 0
expect_out_contains 'Lambda: notify eu-west-1'
run "$STEPPY" graph --var REGON=x "$tmp/vars.yaml"
expect_status 2
expect_err_contains 'did you mean "REGION"?'
end

begin 'unknown options get "did you mean"; a missing value is named'
run "$STEPPY" list --stauts RUNNING --db "$db"
expect_status 2
expect_err_contains 'steppy list: unknown option --stauts; did you mean --status?'
run "$STEPPY" approve --comennt x --db "$db" a b
expect_status 2
expect_err_contains 'did you mean --comment?'
run "$STEPPY" run --fail-fats "$tmp/wait.yaml"
expect_status 2
expect_err_contains 'did you mean --fail-fast?'
run "$STEPPY" validate --qiuet "$tmp/wait.yaml"
expect_status 2
expect_err_contains 'did you mean --quiet?'
run "$STEPPY" list --db
expect_status 2
expect_err_contains 'steppy list: option --db needs a value'
run "$STEPPY" list --zzzzzz
expect_status 2
expect_err_contains 'steppy list: unknown option --zzzzzz (see steppy list --help)'
end

begin 'list --status is case-insensitive'
run "$STEPPY" list --status running --db "$db"
expect_status 0
expect_out_contains 'STATUS'
run "$STEPPY" list --status Failed --db "$db" --format json
expect_status 0
expect_json 'all(e["status"] == "FAILED" for e in d["executions"]) and len(d["executions"]) >= 1'
run "$STEPPY" list --status runing --db "$db"
expect_status 2
expect_err_contains 'did you mean RUNNING?'
end

begin 'an unreachable AWS endpoint is named in the error'
cat >"$tmp/lambda.yaml" <<'EOF'
name: lam
stages:
  - name: s
    steps:
      - {type: Lambda, name: call, functionName: f, region: eu-west-1, retry: {maxAttempts: 1}}
EOF
AWS_ACCESS_KEY_ID=AKIDTEST AWS_SECRET_ACCESS_KEY=secret AWS_ENDPOINT_URL=http://127.0.0.1:1 \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=1 \
    run "$STEPPY" run --db "$tmp/aws.db" "$tmp/lambda.yaml"
expect_status 3
expect_out_contains 'RequestError: cannot reach http://127.0.0.1:1: '
end

begin 'AWS calls run under the role session names docs/aws.md promises (StartBuild per step, BatchGetBuilds by the shared watcher)'
start_fake_aws
curl -sf -XPOST "$fake/_fake/configure" -d '{"codebuild": {"projects": {"orders-build": {"durationSeconds": 1, "result": "SUCCEEDED"}}}, "sts": {"roles": {"arn:aws:iam::222222222222:role/steppy-release": {}}}}' >/dev/null ||
    problem "cannot configure the fake"
cat >"$tmp/build.yaml" <<'EOF'
defaults: {roleArn: "arn:aws:iam::222222222222:role/steppy-release", region: eu-west-1}
stages:
  - name: build
    steps:
      - {type: CodeBuild, name: Build, codeBuildName: orders-build}
EOF
run "$STEPPY" run --db "$tmp/aws2.db" "$tmp/build.yaml"
expect_status 0
bid=$(printf '%s\n' "$out" | sed -n 's/.*release \([0-9a-z]*\) started.*/\1/p')
curl -sf "$fake/_fake/calls" | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)
def sessions(op): return sorted(set(x["roleSessionName"] for x in c if x["operation"] == op))
assert sessions("StartBuild") == ["steppy-" + sys.argv[1] + "-Build"], sessions("StartBuild")
assert sessions("BatchGetBuilds") == ["steppy-build-watch"], sessions("BatchGetBuilds")
' "$bid" || problem "session names differ from docs/aws.md"
grep -q 'session name `steppy-build-watch`' "$repo/docs/aws.md" ||
    problem "docs/aws.md does not name the watcher's session"
kill "$fake_pid" 2>/dev/null
end

begin 'a CodePipeline step waiting on a manual approval inside the pipeline says so (live view, show, list)'
rm -f "$tmp/fake.port"
start_fake_aws
curl -sf -XPOST "$fake/_fake/configure" -d '{"codepipeline": {"pipelines": {"deploy": {"stages": [{"name": "Source", "seconds": 1}, {"name": "Gate", "approval": true}, {"name": "Ship", "seconds": 1}]}}}}' >/dev/null ||
    problem "cannot configure the fake"
cat >"$tmp/pipe.yaml" <<'EOF'
name: pipe
stages:
  - name: deploy
    steps:
      - {type: CodePipeline, name: Deploy, codePipelineName: deploy, region: eu-west-1}
EOF
"$STEPPY" run --db "$tmp/pipe.db" "$tmp/pipe.yaml" >"$tmp/pipe.out" 2>&1 &
ppid=$!
i=0
while ! grep -q 'manual approval' "$tmp/pipe.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
pid_id=$(sed -n 's/.*release \([0-9a-z]*\) "pipe" started.*/\1/p' "$tmp/pipe.out")
out=$(cat "$tmp/pipe.out")
expect_out_contains 'Deploy: pipeline deploy waits for the manual approval "Gate" in stage "Gate"'
expect_out_contains 'aws codepipeline put-approval-result --pipeline-name deploy --stage-name Gate --action-name Gate'
run "$STEPPY" show --db "$tmp/pipe.db" "$pid_id"
expect_out_contains 'manual approval "Gate" in stage "Gate"'
run "$STEPPY" show --db "$tmp/pipe.db" --format json "$pid_id"
expect_json 'd["stages"][0]["steps"][0]["waitingFor"].endswith(", at the manual approval \"Gate\" in stage \"Gate\"")'
"$STEPPY" abort --db "$tmp/pipe.db" "$pid_id" >/dev/null 2>&1
wait "$ppid"
kill "$fake_pid" 2>/dev/null
end

# ---- against a server (no tokens, loopback) -----------------------------------------
# A webhook receiver: appends each request body (one JSON per line).
start_webhook_receiver "$tmp/hook.jsonl"
cat >"$tmp/serve.yaml" <<EOF
channels:
  hook: {type: webhook, url: "http://127.0.0.1:$(cat "$tmp/hook.port")/steppy"}
defaultChannels: [hook]
EOF
start_server "$tmp/serve.yaml" "$tmp/served.db"
trap 'kill $server_pid $hook_pid 2>/dev/null; rm -rf "$tmp"' EXIT
# post PATH BODY: sets $status (HTTP) and $out (body)
post() {
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary "$2" "$url$1")
    out=$(cat "$tmp/body")
}

begin 'API errors speak of the API fields, not of --var'
post /api/v1/executions '{"plan": {"variables": {"TAG": {}}, "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}}'
[ "$status" = 400 ] || problem "HTTP $status"
expect_out_lacks '--var'
expect_json 'd["error"]["message"] == "/variables/TAG: variable \"TAG\" has no default; give it a value in \"variables\""'
post /api/v1/executions '{"plan": {"variables": {"TAG": {}}, "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}, "variables": {"TGA": "1"}}'
[ "$status" = 400 ] || problem "HTTP $status"
expect_json 'd["error"]["message"] == "/variables/TGA: the plan declares no variable \"TGA\"; did you mean \"TAG\"?"'
end

begin 'the abort reason and who aborted: show, show --format json, the notices'
post /api/v1/executions '{"plan": {"name": "gate", "stages": [{"name": "s", "steps": [{"type": "Human", "name": "go", "message": "?"}]}]}}'
aid=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
post "/api/v1/executions/$aid/abort" '{"reason": "wrong tag"}'
[ "$status" = 200 ] || problem "abort: HTTP $status $out"
i=0
while ! grep -q '"kind":"aborted"' "$tmp/hook.jsonl" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
run "$STEPPY" show --db "$tmp/served.db" "$aid"
expect_out_contains 'aborted   by anonymous: wrong tag'
run "$STEPPY" show --db "$tmp/served.db" --format json "$aid"
expect_json 'd["abort"]["by"] == "anonymous" and d["abort"]["reason"] == "wrong tag" and d["abort"]["timeMs"] > 0'
grep '"kind":"aborted"' "$tmp/hook.jsonl" | grep -q 'aborted by anonymous: wrong tag' ||
    problem "the notice lacks who and why: $(grep aborted "$tmp/hook.jsonl")"
end

begin 'notices other than approvals carry the release link as releaseUrl'
grep '"kind":"started"' "$tmp/hook.jsonl" | head -1 | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
assert "approvalUrl" not in d, d
assert "/#/executions/" in d["releaseUrl"], d' || problem "started notice: $(head -1 "$tmp/hook.jsonl")"
end

begin 'the live view says who aborted and why'
cat >"$tmp/gate.yaml" <<'EOF'
name: gate
stages:
  - name: s
    steps:
      - {type: Human, name: go, message: "?"}
EOF
"$STEPPY" run --db "$tmp/view.db" "$tmp/gate.yaml" >"$tmp/view.out" 2>&1 &
vpid=$!
i=0
while ! grep -q 'reject:' "$tmp/view.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
vid=$(sed -n 's/.*release \([0-9a-z]*\) "gate" started.*/\1/p' "$tmp/view.out")
"$STEPPY" abort --db "$tmp/view.db" --by carol --reason 'not today' "$vid" >/dev/null 2>&1 ||
    problem "abort failed"
wait "$vpid"
out=$(cat "$tmp/view.out")
expect_out_contains "release $vid is being aborted by carol: \"not today\""
end

begin 'text from outside (a comment, an abort reason, a submitted name) never reaches a terminal as control characters'
esc=$(printf '\033')
post /api/v1/executions '{"name": "pf\u001b]0;TITLE\u0007\u001b[31mRED", "plan": {"name": "gate", "stages": [{"name": "s", "steps": [{"type": "Human", "name": "go", "message": "?"}]}]}}'
[ "$status" = 201 ] || problem "submit: HTTP $status $out"
eid=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
post "/api/v1/executions/$eid/abort" '{"reason": "bye \u001b[2J\u001b[31mRED"}'
[ "$status" = 200 ] || problem "abort: HTTP $status $out"
i=0
while ! "$STEPPY" show --db "$tmp/served.db" "$eid" 2>/dev/null | grep -q '^aborted' && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
run "$STEPPY" show --db "$tmp/served.db" "$eid"
case $out in *"$esc"*) problem "show prints an escape character: $out" ;; esac
expect_out_contains 'bye \x1b[2J\x1b[31mRED'
run "$STEPPY" list --db "$tmp/served.db"
case $out in *"$esc"*) problem "list prints an escape character" ;; esac
"$STEPPY" run --db "$tmp/esc.db" "$tmp/gate.yaml" >"$tmp/esc.out" 2>&1 &
epid=$!
i=0
while ! grep -q 'reject:' "$tmp/esc.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
rid=$(sed -n 's/.*release \([0-9a-z]*\) "gate" started.*/\1/p' "$tmp/esc.out")
"$STEPPY" reject --db "$tmp/esc.db" --by carol --comment "ok ${esc}]0;TITLE${esc}[2J" "$rid" go >/dev/null 2>&1 ||
    problem "reject failed"
wait "$epid"
out=$(cat "$tmp/esc.out")
case $out in *"$esc"*) problem "the live view prints an escape character: $out" ;; esac
expect_out_contains 'ok \x1b]0;TITLE\x1b[2J'
end

begin 'the API list takes ?status= in any case'
status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/api/v1/executions?status=aborted")
out=$(cat "$tmp/body")
[ "$status" = 200 ] || problem "HTTP $status: $out"
expect_json 'len(d["executions"]) >= 1 and all(e["status"] == "ABORTED" for e in d["executions"])'
end

finish
