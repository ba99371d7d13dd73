#!/bin/sh
# t0051: what Exec steps may do under steppy serve. The configuration's
# `exec` decides whether steps that run local code are accepted at all, from
# the inbox, and which programs; the API and the inbox refuse a plan naming
# the step's JSON pointer, and the runner checks again before it starts one
# (a release the server adopted). Exec children get a minimal environment
# (no AWS keys, no webhook secrets, no STEPPY_* values), and known secrets
# are masked in the output kept in the history.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
status=0 out= err=
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
server_pid=

api_body() { # METHOD PATH BODY (no tokens: loopback only)
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" \
        -H 'Content-Type: application/json' --data-binary "$3" "$url$2")
    out=$(cat "$tmp/body")
    err=""
}
new_id() { printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# wait_done ID: until the release has ended (20 s at most); its show JSON in $out
wait_done() {
    i=0
    while [ $i -lt 200 ]; do
        run "$STEPPY" show --db "$db" "$1" --format json
        case "$out" in *'"status": "RUNNING"'* | *'"status":"RUNNING"'* | '') ;; *) return 0 ;; esac
        sleep 0.1
        i=$((i + 1))
    done
}
history_json() { "$STEPPY" history --db "$db" "$1" --format json; }
stop_server() { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; server_pid=; }
exec_plan() { # COMMAND-JSON-LIST -> a submit body
    printf '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 0}, {"type": "Exec", "name": "e", "command": %s}]}]}}' "$1"
}

begin 'by default a server refuses Exec steps at submit time: 400 naming the step'
printf 'maxBodyBytes: 65536\n' >"$tmp/default.yaml"
start_server "$tmp/default.yaml" "$db"
api_body POST /api/v1/executions "$(exec_plan '["true"]')"
expect_status 400
expect_json 'd["error"]["code"] == "invalid-plan"'
expect_json 'd["error"]["diagnostics"][0]["pointer"] == "/stages/0/steps/1"'
expect_json '"exec.enabled" in d["error"]["message"]'
api_body POST /api/v1/executions '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 0}]}]}}'
expect_status 201
end

begin 'validate --config says what the server would refuse: Exec off, a program exec.allow lacks'
cat >"$tmp/exec.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: e, command: [/bin/sh, -c, "true"]}
PLAN
run "$STEPPY" validate --config "$tmp/default.yaml" "$tmp/exec.yaml"
expect_status 1
expect_err_contains 'exec.yaml:4:9: error: /stages/0/steps/0: Exec steps run commands'
printf 'exec:\n  enabled: true\n  allow: [/bin/echo]\n' >"$tmp/allow-only.yaml"
run "$STEPPY" validate --config "$tmp/allow-only.yaml" "$tmp/exec.yaml"
expect_status 1
expect_err_contains '/stages/0/steps/0/command/0'
expect_err_contains 'exec.allow'
printf 'exec:\n  enabled: true\n' >"$tmp/on.yaml"
run "$STEPPY" validate --config "$tmp/on.yaml" "$tmp/exec.yaml"
expect_status 0
end

begin 'the runner checks again: an Exec step of an adopted release fails on a server without Exec'
cat >"$tmp/later.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Wait, name: w, seconds: 3}
  - name: t
    steps:
      - {type: Exec, name: e, command: [sh, -c, 'echo ran > "$MARK"'], env: {MARK: MARKFILE}}
PLAN
sed -i "s|MARKFILE|$tmp/ran|" "$tmp/later.yaml"
stop_server
"$STEPPY" run --db "$db" "$tmp/later.yaml" >/dev/null 2>&1 &
pid=$!
sleep 1
kill -9 $pid
wait $pid 2>/dev/null
id=$("$STEPPY" list --db "$db" --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')
start_server "$tmp/default.yaml" "$db"
wait_done "$id"
expect_json 'd["status"] == "FAILED"'
history_json "$id" >"$tmp/h.json"
grep -q 'exec.enabled' "$tmp/h.json" || problem "no policy error in the history"
[ ! -e "$tmp/ran" ] || problem "the command ran"
stop_server
end

begin 'exec.allow: only the listed programs; another is refused at command/0'
mkdir -p "$tmp/inbox"
cat >"$tmp/allow.yaml" <<CFG
exec:
  enabled: true
  allow: [/bin/echo]
inbox:
  directory: $tmp/inbox
  pollSeconds: 1
CFG
start_server "$tmp/allow.yaml" "$db"
api_body POST /api/v1/executions "$(exec_plan '["/bin/sh", "-c", "true"]')"
expect_status 400
expect_json 'd["error"]["diagnostics"][0]["pointer"] == "/stages/0/steps/1/command/0"'
expect_json '"exec.allow" in d["error"]["message"]'
api_body POST /api/v1/executions "$(exec_plan '["/bin/echo", "allowed"]')"
expect_status 201
id=$(new_id)
wait_done "$id"
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'the inbox refuses Exec unless exec.inbox is true; the result names the step'
printf '{"stages": [{"name": "s", "steps": [{"type": "Exec", "name": "e", "command": ["/bin/echo", "x"]}]}]}\n' >"$tmp/inbox/e.json"
i=0
while [ ! -s "$tmp/inbox/e.json.result.json" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
run cat "$tmp/inbox/e.json.result.json"
expect_json 'd["status"] == "INVALID" and d["errors"][0]["pointer"] == "/stages/0/steps/0" and "exec.inbox" in d["errors"][0]["message"]'
stop_server
end

begin 'an invalid exec section names its place'
printf 'exec:\n  enabled: "yes"\n  allow: [make]\n' >"$tmp/bad.yaml"
run "$STEPPY" serve --config "$tmp/bad.yaml" --db "$db"
expect_status 1
expect_err_contains '/exec/enabled'
expect_err_contains '/exec/allow/0'
end

begin 'Exec children get a minimal environment: no AWS keys, webhook secrets or STEPPY_* values'
cat >"$tmp/open.yaml" <<'CFG'
exec:
  enabled: true
channels:
  hook:
    type: webhook
    url: http://127.0.0.1:9/
    headersFromEnv:
      X-Token: HOOK_SECRET
CFG
AWS_SECRET_ACCESS_KEY=awssecretvalue0123 AWS_ACCESS_KEY_ID=AKIDVALUE0123 \
    HOOK_SECRET=hooksecretvalue0123 STEPPY_SLACK_WEBHOOK=https://hooks.example/steppysecret0123 \
    start_server "$tmp/open.yaml" "$db"
api_body POST /api/v1/executions "$(exec_plan '["env"]' | sed 's/"command": \["env"\]/"command": ["env"], "env": {"GIVEN": "by-the-step"}/')"
expect_status 201
id=$(new_id)
wait_done "$id"
expect_json 'd["status"] == "SUCCEEDED"'
history_json "$id" >"$tmp/h.json"
grep -q 'GIVEN=by-the-step' "$tmp/h.json" || problem "the step's env is missing"
grep -q 'PATH=' "$tmp/h.json" || problem "no PATH"
grep -q 'STEPPY_EXECUTION_ID=' "$tmp/h.json" || problem "no STEPPY_EXECUTION_ID"
for s in awssecretvalue0123 AKIDVALUE0123 hooksecretvalue0123 steppysecret0123 HOOK_SECRET AWS_SECRET; do
    grep -q "$s" "$tmp/h.json" && problem "the history holds $s"
done
end

begin "known secrets are masked in Exec output (a command that reads the server's /proc environ)"
api_body POST /api/v1/executions "$(exec_plan "[\"cat\", \"/proc/$server_pid/environ\"]")"
expect_status 201
id=$(new_id)
wait_done "$id"
expect_json 'd["status"] == "SUCCEEDED"'
history_json "$id" >"$tmp/h.json"
for s in awssecretvalue0123 hooksecretvalue0123 steppysecret0123; do
    grep -q "$s" "$tmp/h.json" && problem "the history holds $s"
done
# root reads any /proc/PID/environ; others are kept out (the server is not dumpable)
if [ "$(id -u)" = 0 ]; then
    grep -q 'AWS_SECRET_ACCESS_KEY=\*\*\*\*' "$tmp/h.json" || problem "no masked value in the output"
fi
stop_server
end

begin "the plan's own secret values are masked in Exec output (steppy run)"
cat >"$tmp/echo-secret.yaml" <<'PLAN'
variables:
  KEY: {description: a key}
stages:
  - name: s
    steps:
      - {type: Exec, name: leak, command: [sh, -c, 'echo "key=$K"'], env: {K: "${var.KEY}"}}
  - name: later
    steps:
      - type: CodeBuild
        name: b
        codeBuildName: never-reached
        environmentVariableOverrides:
          - {name: KEY, value: "Bearer ${var.KEY}", secret: true}
PLAN
run "$STEPPY" run --db "$tmp/run.db" "$tmp/echo-secret.yaml" --var KEY=planned-secret-77 --fail-fast
run "$STEPPY" history --db "$tmp/run.db" "$("$STEPPY" list --db "$tmp/run.db" --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')" --format json
expect_out_lacks 'planned-secret-77'
expect_out_contains 'key=****'
end

begin "an Exec command of the server's own user cannot read the server's /proc environ"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    echo "# skipped: needs root and setpriv to run the server as nobody"
else
    chmod 711 "$tmp"
    mkdir -p "$tmp/nobody"
    chmod 777 "$tmp/nobody"
    printf 'exec: {enabled: true}\n' >"$tmp/nobody/c.yaml"
    chmod 644 "$tmp/nobody/c.yaml"
    (cd "$tmp/nobody" && HIDDEN_VALUE=hidden-value-9 exec setpriv --reuid=nobody --regid=nogroup --clear-groups \
        env HOME="$tmp/nobody" "$STEPPY" serve --config "$tmp/nobody/c.yaml" --listen 127.0.0.1:0 \
        --db "$tmp/nobody/db" >"$tmp/serve.log" 2>&1) &
    server_pid=$!
    i=0
    while ! grep -q 'listening on' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
    api_body POST /api/v1/executions "$(exec_plan "[\"cat\", \"/proc/$server_pid/environ\"]")"
    expect_status 201
    id=$(new_id)
    db_saved=$db
    db="$tmp/nobody/db"
    wait_done "$id"
    history_json "$id" >"$tmp/h.json"
    db=$db_saved
    grep -q 'hidden-value-9' "$tmp/h.json" && problem "the command read the server's environment"
    grep -q 'Permission denied' "$tmp/h.json" || problem "no refusal in the output"
    stop_server
fi
end

finish
