#!/bin/sh
# t0081: plugin step types (issue 13, docs/plugins.md) with the example
# plugin plugins/job (POSIX sh) and deliberately broken plugins:
# discovery and refusals (symlink, writable by others, a built-in's name,
# another protocol, non-JSON, megabytes, a describe that hangs), validate's
# diagnostics for plugin fields (file:line:col, pointer, did you mean,
# enum, pattern), plan, run (outputs in history and show, failure
# messages, retries, secrets masked), failures at run time (not found, not
# executable, exit status, non-JSON, megabytes, hangs, another protocol,
# ignores cancel), abort (cancel call), and SIGKILL of `steppy run` while
# polling: resume asks status with the recorded handle, never start again.
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"
chmod 755 "$tmp"
plugins="$tmp/plugins"
mkdir -p "$plugins"
chmod 755 "$plugins"
cp "$repo/plugins/job" "$plugins/job"
chmod 755 "$plugins/job"
export STEPPY_PLUGIN_PATH="$plugins"
export JOB_PLUGIN_STATE="$tmp/state"
unset XDG_DATA_HOME
export HOME="$tmp/home" # no plugins of the user running the tests
last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }

# broken DIR TYPE START-BODY: a plugin whose describe is right (2 s call
# limit) and whose other calls run START-BODY (sh) with $1 the call.
broken() {
    {
        echo '#!/bin/sh'
        echo 'req=$(cat)'
        echo 'if [ "$1" = describe ]; then'
        echo "  echo '{\"protocol\": 1, \"type\": \"$2\", \"timeoutSeconds\": 2, \"fields\": []}'"
        echo '  exit 0'
        echo 'fi'
        printf '%s\n' "$3"
    } >"$1/$2"
    chmod 755 "$1/$2"
}

begin 'validate: plugin fields get file:line:col, pointer, did you mean, enum and pattern'
cat >"$tmp/bad.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Job
        name: a
        seconds: 2
        reslt: success
      - type: Job
        name: b
        seconds: "x"
        label: "bad label"
        result: sucess
      - type: Jb
        name: c
      - type: Job
        name: d
PLAN
run "$STEPPY" validate "$tmp/bad.yaml"
expect_status 1
expect_err_contains 'bad.yaml:7:9: error: /stages/0/steps/0/reslt: unknown field "reslt" in a Job step; did you mean "result"?'
expect_err_contains 'bad.yaml:10:18: error: /stages/0/steps/1/seconds: "seconds" must be a whole number, found the string "x"'
expect_err_contains 'bad.yaml:11:16: error: /stages/0/steps/1/label: "bad label" does not match the pattern ^[A-Za-z0-9._-]{1,40}$'
expect_err_contains 'bad.yaml:12:17: error: /stages/0/steps/1/result: "result" must be one of success, failure, found "sucess"; did you mean "success"?'
expect_err_contains 'bad.yaml:13:15: error: /stages/0/steps/2/type: unknown step type "Jb"; did you mean "Job"?'
expect_err_contains 'bad.yaml:15:9: error: /stages/0/steps/3/seconds: a Job step needs a "seconds" field'
expect_err_contains '6 errors'
end

begin 'without the plugin on the path the type is unknown'
STEPPY_PLUGIN_PATH= run "$STEPPY" validate "$tmp/bad.yaml"
expect_status 1
expect_err_contains 'unknown step type "Job"'
end

cat >"$tmp/ok.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Job
        name: j
        seconds: 1
        label: hello
      - type: Job
        name: f
        seconds: 0
        result: failure
PLAN

begin 'plan shows the plugin and its fields'
run "$STEPPY" plan "$tmp/ok.yaml"
expect_status 0
expect_out_contains "plugin       $plugins/job"
expect_out_contains 'label        hello'
expect_out_contains 'result       failure'
end

begin 'run: the job runs once per attempt; outputs and messages in history and show'
run "$STEPPY" run "$tmp/ok.yaml"
expect_status 3
expect_out_contains 'ok j'
expect_out_contains 'FAILED f (attempt 1): job '
id=$(last_id)
[ "$(grep -c '^start ' "$tmp/state/starts.log")" -eq 2 ] || problem "starts: $(cat "$tmp/state/starts.log")"
grep -q "^start [0-9a-f]* $id/0/0/1\$" "$tmp/state/starts.log" || problem "no start with the idempotency key $id/0/0/1"
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepSucceeded" and e["data"]["outputs"]["label"] == "hello" for e in d["events"])'
expect_json 'any(e["type"] == "StepStarted" and e["data"]["plugin"] == "Job" and "job" in e["data"]["handle"] for e in d["events"])'
run "$STEPPY" show --format json "$id"
expect_json 'd["stages"][0]["steps"][1]["error"].startswith("job ") and d["stages"][0]["steps"][1]["error"].endswith("ended with 1")'
end

begin 'retries: each attempt starts its own job (a new idempotency key)'
rm -f "$tmp/state/starts.log"
cat >"$tmp/retry.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Job
        name: r
        seconds: 0
        result: failure
        retry: {maxAttempts: 2, intervalSeconds: 1}
PLAN
run "$STEPPY" run "$tmp/retry.yaml"
expect_status 3
id=$(last_id)
grep -q " $id/0/0/1\$" "$tmp/state/starts.log" || problem "no attempt 1"
grep -q " $id/0/0/2\$" "$tmp/state/starts.log" || problem "no attempt 2"
end

begin 'secrets of the plan are masked in plugin outputs'
SECRET='tok-9f8e7d6c5b4a'
cat >"$tmp/secret.yaml" <<PLAN
variables:
  TOKEN: {default: "$SECRET"}
stages:
  - name: s
    steps:
      - type: Job
        name: j
        seconds: 0
        label: "\${var.TOKEN}"
  - name: t
    steps:
      - type: Http
        name: h
        url: http://127.0.0.1:1/
        headers:
          Authorization: {value: "Bearer \${var.TOKEN}", secret: true}
PLAN
run "$STEPPY" run "$tmp/secret.yaml"
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepSucceeded" and e["data"]["outputs"]["label"] == "****" for e in d["events"])'
expect_out_lacks "$SECRET"
end

begin 'the no-wait form (JobNoWait): the step ends once its job has started'
rm -f "$tmp/state/calls.log"
cat >"$tmp/nowait.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: JobNoWait
        name: n
        seconds: 600
PLAN
run "$STEPPY" run "$tmp/nowait.yaml"
expect_status 0
id=$(last_id)
grep -q "^start [0-9a-f]* $id/0/0/1\$" "$tmp/state/starts.log" || problem "no start"
[ ! -s "$tmp/state/calls.log" ] || problem "status was asked: $(cat "$tmp/state/calls.log")"
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepSucceeded" and "job" in e["data"]["outputs"]["handle"] for e in d["events"])'
# its job runs on; the plugin's cancel stops it (and all it started)
job=$(sed -n "s/^start \([0-9a-f]*\) $id\/0\/0\/1\$/\1/p" "$tmp/state/starts.log")
pid=$(cat "$tmp/state/$job/pid")
# alive PID: it exists and is not a zombie (PID 1 may not reap them here)
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" != Z ]; }
alive "$pid" || problem "the job does not run"
printf '{"protocol":1,"call":"cancel","handle":{"job":"%s"}}' "$job" | "$plugins/job" cancel >/dev/null
i=0
while alive "$pid" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
alive "$pid" && problem "the job still runs after cancel"
end

begin 'abort: the plugin is asked to cancel its job'
rm -f "$tmp/state/calls.log"
cat >"$tmp/long.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Job
        name: long
        seconds: 600
PLAN
"$STEPPY" run "$tmp/long.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_file "$tmp/state/calls.log" '^status ' || problem "no status call"
"$STEPPY" abort "$(last_id)" >/dev/null 2>&1
wait $pid
status=$?
[ "$status" -ne 0 ] || problem "the release did not fail"
grep -q '^cancel ' "$tmp/state/calls.log" || problem "no cancel call"
grep -q 'ABORTED' "$tmp/run.out" || problem "not aborted: $(cat "$tmp/run.out")"
end

begin 'SIGKILL while polling: resume asks status with the recorded handle, never start again'
rm -f "$tmp/state/starts.log" "$tmp/state/calls.log"
cat >"$tmp/kill.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Job
        name: k
        seconds: 4
PLAN
"$STEPPY" run "$tmp/kill.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_file "$tmp/state/calls.log" '^status ' || problem "no status call"
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 0
expect_out_contains 'SUCCEEDED'
[ "$(wc -l <"$tmp/state/starts.log")" -eq 1 ] || problem "started again: $(cat "$tmp/state/starts.log")"
[ "$(grep -c '^status ' "$tmp/state/calls.log")" -ge 2 ] || problem "status not asked again"
run "$STEPPY" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted"]) == 1'
end

# ---- misbehaving plugins ----------------------------------------------------
bad="$tmp/bad"
mkdir -p "$bad"
chmod 755 "$bad"
cp "$repo/plugins/job" "$bad/writable"
chmod 777 "$bad/writable"
ln -s "$plugins/job" "$bad/link"
printf '#!/bin/sh\necho "{\\"protocol\\": 1, \\"type\\": \\"Exec\\"}"\n' >"$bad/exec"
printf '#!/bin/sh\necho "{\\"protocol\\": 2, \\"type\\": \\"Future\\"}"\n' >"$bad/future"
printf '#!/bin/sh\necho "hello, I am not JSON"\n' >"$bad/notjson"
printf '#!/bin/sh\nhead -c 3000000 /dev/zero | tr "\\\\0" x\n' >"$bad/huge"
printf '#!/bin/sh\nsleep 30\n' >"$bad/slow"
printf '#!/bin/sh\necho "cannot describe myself" >&2\nexit 4\n' >"$bad/fails"
printf '#!/bin/sh\necho "{\\"protocol\\": 1, \\"type\\": \\"Dup\\", \\"fields\\": [{\\"name\\": \\"retry\\", \\"type\\": \\"string\\"}]}"\n' >"$bad/common"
chmod 755 "$bad/exec" "$bad/future" "$bad/notjson" "$bad/huge" "$bad/slow" "$bad/fails" "$bad/common"

begin 'refused plugins are named with the reason; the good one still loads'
STEPPY_PLUGIN_PATH="$bad:$plugins" run "$STEPPY" validate "$tmp/ok.yaml"
expect_status 0
expect_err_contains "plugin $bad/writable refused: it is writable by others"
expect_err_contains "plugin $bad/link refused: it is a symbolic link"
expect_err_contains "plugin $bad/exec refused: type \"Exec\" is a built-in step type"
expect_err_contains "plugin $bad/future refused: it speaks protocol 2; this steppy speaks protocol 1"
expect_err_contains "plugin $bad/notjson refused: its describe answer is not JSON"
expect_err_contains "plugin $bad/huge refused: it printed more than 65536 bytes (killed)"
expect_err_contains "plugin $bad/slow refused: it did not answer within 10 s (killed)"
expect_err_contains "plugin $bad/fails refused: it exited with status 4: cannot describe myself"
expect_err_contains "plugin $bad/common refused: field \"retry\" is a field of every step"
end

rt="$tmp/rt"
mkdir -p "$rt"
chmod 755 "$rt"
broken "$rt" Exits 'echo "deploy token rejected" >&2; exit 7'
broken "$rt" NotJson 'echo "<html>oops</html>"'
broken "$rt" Huge 'head -c 5000000 /dev/zero | tr "\0" x'
broken "$rt" Hangs 'sleep 60'
broken "$rt" Proto2 'echo "{\"protocol\": 2, \"handle\": 1}"'
broken "$rt" NoHandle 'echo "{\"protocol\": 1}"'
broken "$rt" Deaf 'case $1 in start) echo "{\"protocol\": 1, \"handle\": \"h1\", \"pollSeconds\": 1}";; status) echo "{\"protocol\": 1, \"status\": \"running\"}";; cancel) echo cancel >>"$0.log"; sleep 60;; esac'
# self_spoiling TYPE CMD: a plugin that answers describe, then runs CMD on
# itself ("$0"): it is gone or not executable when its step starts.
self_spoiling() {
    broken "$rt" "$1" 'exit 0'
    sed -i "s|^  exit 0\$|  $2 \"\$0\"; exit 0|" "$rt/$1"
}

# runstep TYPE [EXTRA-YAML]: runs a one-step plan of TYPE.
runstep() {
    printf 'stages:\n  - name: s\n    steps:\n      - type: %s\n        name: x\n%s' "$1" "${2:-}" >"$tmp/one.yaml"
    STEPPY_PLUGIN_PATH="$rt" run "$STEPPY" run "$tmp/one.yaml"
}

begin 'a plugin that exits non-zero fails its step with its stderr'
runstep Exits
expect_status 3
expect_out_contains "plugin Exits ($rt/Exits) start: it exited with status 7: deploy token rejected"
end

begin 'non-JSON, megabytes, another protocol, no handle: clear failures'
runstep NotJson
expect_status 3
expect_out_contains "plugin NotJson ($rt/NotJson) start: its start answer is not JSON"
runstep Huge
expect_status 3
expect_out_contains "start: it printed more than 262144 bytes (killed)"
runstep Proto2
expect_status 3
expect_out_contains "start: its start answer speaks protocol 2; this steppy speaks 1"
runstep NoHandle
expect_status 3
expect_out_contains 'start: its start answer has no "status" of running, done or failed'
end

begin 'a plugin that hangs is killed at its time limit'
runstep Hangs
expect_status 3
expect_out_contains "plugin Hangs ($rt/Hangs) start: it did not answer within 2 s (killed)"
end

begin 'a plugin removed or made non-executable after start-up fails its step'
self_spoiling Gone 'rm -f'
runstep Gone
expect_status 3
expect_out_contains "plugin Gone ($rt/Gone) start: cannot read it: No such file or directory"
self_spoiling NoExec 'chmod 644'
runstep NoExec
rm -f "$rt/NoExec"
expect_status 3
expect_out_contains "plugin NoExec ($rt/NoExec) start: it is not executable"
end

begin 'a plugin that ignores cancel: the step still ends at its timeout, steppy does not wait'
runstep Deaf '        timeoutSeconds: 2
'
expect_status 3
expect_out_contains 'TIMED OUT x after 2s'
grep -q cancel "$rt/Deaf.log" || problem "no cancel call"
end

begin 'steppy serve: pluginPath from the configuration; the API checks plugin fields and runs the step'
mkdir -p "$tmp/serve"
printf 'secretKeyFile: %s\npluginPath: [%s]\n' "$tmp/serve/secret.key" "$plugins" >"$tmp/serve.yaml"
STEPPY_PLUGIN_PATH= start_server "$tmp/serve.yaml" "$tmp/serve.db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
bad=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": open(sys.argv[1]).read(), "name": "bad.yaml"}))' "$tmp/bad.yaml")
code=$(curl -s -o "$tmp/api.json" -w '%{http_code}' -X POST -H "Content-Type: application/json" --data-binary "$bad" "$url/api/v1/executions")
[ "$code" = 400 ] || problem "HTTP $code for an invalid plan"
grep -q '/stages/0/steps/0/reslt' "$tmp/api.json" || problem "no pointer: $(head -c 600 "$tmp/api.json")"
grep -q 'did you mean \\"result\\"' "$tmp/api.json" || problem "no suggestion: $(head -c 600 "$tmp/api.json")"
body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": open(sys.argv[1]).read(), "name": "kill.yaml"}))' "$tmp/kill.yaml")
sid=$(submit_plan "$body")
wait_status "$sid" RUNNING || problem "not RUNNING"
i=0
while [ $i -lt 200 ] && ! curl -s "$url/api/v1/executions/$sid" | grep -q '"status":"SUCCEEDED"'; do sleep 0.1; i=$((i + 1)); done
curl -s "$url/api/v1/executions/$sid" | grep -q '"status":"SUCCEEDED"' || problem "not SUCCEEDED: $(curl -s "$url/api/v1/executions/$sid" | head -c 800)"
grep -q "^start [0-9a-f]* $sid/0/0/1\$" "$tmp/state/starts.log" || problem "the server did not start the job"
kill $server_pid
wait $server_pid 2>/dev/null
end

finish
