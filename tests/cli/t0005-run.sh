#!/bin/sh
# t0005: steppy run, approve/reject, abort, retry, resume, list/show/history
# against a real SQLite store, with real processes.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
export STEPPY_DB="$db"

# Waits (up to 15 s) until `steppy list` shows text.
# Waits until the run in the background prints that its Wait began.
wait_started() {
    i=0
    while ! grep -q ' waits ' "$tmp/run.out" && [ $i -lt 300 ]; do
        sleep 0.05
        i=$((i + 1))
    done
}

wait_for() {
    i=0
    while [ $i -lt 150 ]; do
        "$STEPPY" list --limit 1000 2>/dev/null | grep -q "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }

cat >"$tmp/ok.yaml" <<'PLAN'
name: ok
stages:
  - name: build
    steps:
      - {type: Exec, name: a, command: [sh, -c, 'echo "out $STEPPY_STEP $STEPPY_ATTEMPT"; echo warn >&2']}
      - {type: Exec, name: b, command: [sh, -c, 'echo b']}
      - {type: Wait, name: w, seconds: 1}
  - name: tell
    steps:
      - {type: Notify, name: n, subject: Done, message: all good}
PLAN

begin 'run: a release succeeds, output and notification recorded'
run "$STEPPY" run "$tmp/ok.yaml"
expect_status 0
expect_out_contains 'stage 1/2: build'
expect_out_contains 'ok a'
expect_out_contains '[notify] Done: all good'
expect_out_contains 'SUCCEEDED in'
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json '[e["type"] for e in d["events"]][0] == "ExecutionStarted" and d["events"][-1]["type"] == "ExecutionFinished"'
expect_json '[e["seq"] for e in d["events"]] == list(range(1, len(d["events"]) + 1))'
expect_json 'any(e["type"] == "StepSucceeded" and e.get("stepName") == "a" and e["data"]["stdout"] == "out a 1\n" and e["data"]["stderr"] == "warn\n" for e in d["events"])'
grep -q "$id n: \[Done\] all good" "$tmp/notifications.log" || problem "no line in notifications.log"
end

begin 'list, show and history read the release back'
run "$STEPPY" list
expect_status 0
expect_out_contains "$id"
expect_out_contains 'SUCCEEDED'
run "$STEPPY" show "$(echo "$id" | cut -c1-6)"
expect_status 0
expect_out_contains "release $id  SUCCEEDED"
expect_out_contains 'stage 2/2  SUCCEEDED  tell'
run "$STEPPY" show --format json "$id"
expect_json 'd["status"] == "SUCCEEDED" and [s["state"] for s in d["stages"][0]["steps"]] == ["SUCCEEDED"] * 3'
run "$STEPPY" history "$id"
expect_status 0
expect_out_contains 'ExecutionFinished'
run "$STEPPY" show nosuchid
expect_status 2
expect_err_contains 'no execution "nosuchid"'
end

cat >"$tmp/flaky.yaml" <<'PLAN'
name: flaky
stages:
  - name: one
    steps:
      - {type: Exec, name: first, command: [sh, -c, 'echo x >> "$MARKS/first"']}
      - {type: Exec, name: gate, command: [sh, -c, 'echo x >> "$MARKS/gate"; test -e "$MARKS/open"']}
  - name: two
    steps:
      - {type: Exec, name: last, command: [sh, -c, 'echo x >> "$MARKS/last"']}
PLAN

begin 'a failed step stops the release before the next stage; retry continues it'
export MARKS="$tmp/marks"
mkdir -p "$MARKS"
run "$STEPPY" run "$tmp/flaky.yaml"
expect_status 3
expect_out_contains 'FAILED gate (attempt 1): the command exited with status 1'
expect_out_contains 'release'
[ -e "$MARKS/last" ] && problem "stage two ran after a failure"
id=$(last_id)
touch "$MARKS/open"
run "$STEPPY" retry "$id"
expect_status 0
[ "$(wc -l <"$MARKS/first")" -eq 1 ] || problem "a succeeded step ran again"
[ "$(wc -l <"$MARKS/gate")" -eq 2 ] || problem "gate ran $(wc -l <"$MARKS/gate") times"
[ "$(wc -l <"$MARKS/last")" -eq 1 ] || problem "stage two did not run once"
run "$STEPPY" retry "$id"
expect_status 2
expect_err_contains 'cannot retry'
expect_err_contains 'the release succeeded'
end

cat >"$tmp/human.yaml" <<'PLAN'
name: gated
stages:
  - name: ask
    steps:
      - {type: Human, name: go, message: Ship it?, approvers: [alice, bob]}
  - name: after
    steps:
      - {type: Exec, name: done, command: ['true']}
PLAN

begin 'a Human step approved from another terminal'
"$STEPPY" run "$tmp/human.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go"' || problem "never waited for approval"
id=$(last_id)
run "$STEPPY" approve --by mallory "$id" go
expect_status 1
expect_err_contains 'mallory is not an approver of "go"'
run "$STEPPY" approve --by alice --comment 'looks good' "$id" nope
expect_status 2
expect_err_contains 'the release has no step "nope"'
run "$STEPPY" approve --by alice --comment 'looks good' "$id" go
expect_status 0
expect_out_contains "approved \"go\" of release $id"
wait $pid
status=$?
expect_status 0
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "HumanDecision" and e["data"] == {"by": "alice", "via": "cli", "comment": "looks good", "decision": "approve"} for e in d["events"])'
grep -q 'approved go by alice: "looks good"' "$tmp/run.out" || problem "run did not show the decision"
end

if command -v script >/dev/null 2>&1; then
    begin 'on a terminal, typing y approves the one waiting Human step'
    sed '/approvers/s/, approvers: \[alice, bob\]//' "$tmp/human.yaml" >"$tmp/open.yaml"
    # y once a second: a y typed before the step waits is ignored, the next one counts.
    (for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1; printf 'y\n'; done) 2>/dev/null |
        NO_COLOR=1 script -qec "$STEPPY run $tmp/open.yaml" /dev/null >"$tmp/tty.out" 2>&1
    status=$?
    out=$(cat "$tmp/tty.out")
    expect_status 0
    expect_out_contains 'waits for approval (y/n + Enter to decide here)'
    expect_out_contains 'approved go by'
    expect_out_contains 'SUCCEEDED'
    # The same prompt refuses someone the step does not list.
    (sleep 6; "$STEPPY" abort "$(last_id)" >/dev/null 2>&1) &
    (for i in 1 2 3 4 5; do sleep 1; printf 'y\n'; done; sleep 3) 2>/dev/null | NO_COLOR=1 script -qec "$STEPPY run $tmp/human.yaml" /dev/null >"$tmp/tty.out" 2>&1
    wait
    out=$(cat "$tmp/tty.out")
    expect_out_contains 'is not an approver of "go"'
    expect_out_contains 'ABORTED' 
    end
fi

begin 'a rejected Human step ends the release REJECTED'
"$STEPPY" run "$tmp/human.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go"' || problem "never waited"
id=$(last_id)
run "$STEPPY" reject --by bob "$id" go
expect_status 0
wait $pid
status=$?
expect_status 4
run "$STEPPY" approve --by bob "$id" go
expect_status 1
expect_err_contains 'has ended (REJECTED)'
end

begin 'an approval given while no steppy runs the release is kept for resume'
"$STEPPY" run "$tmp/human.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go"' || problem "never waited"
id=$(last_id)
kill -9 $pid
wait $pid 2>/dev/null
run "$STEPPY" approve --by alice "$id" go
expect_status 0
expect_out_contains "steppy resume $id continues it"
run "$STEPPY" resume "$id"
expect_status 0
expect_out_contains 'SUCCEEDED'
end

cat >"$tmp/long.yaml" <<'PLAN'
name: long
stages:
  - name: s
    steps:
      - {type: Exec, name: sleeper, command: [sh, -c, 'echo $$ > "$MARKS/sleeper.pid"; exec sleep 300']}
      - {type: Wait, name: pause, seconds: 300}
PLAN

begin 'abort stops running commands and waits; the release ends ABORTED'
rm -f "$MARKS/sleeper.pid"
"$STEPPY" run "$tmp/long.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
i=0
while [ ! -s "$MARKS/sleeper.pid" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
id=$(last_id)
child=$(cat "$MARKS/sleeper.pid")
run "$STEPPY" abort --by carol --reason 'wrong day' "$id"
expect_status 0
wait $pid
status=$?
expect_status 5
kill -0 "$child" 2>/dev/null && problem "the command still runs after abort"
run "$STEPPY" show --format json "$id"
expect_json 'd["status"] == "ABORTED" and [s["state"] for s in d["stages"][0]["steps"]] == ["CANCELLED", "CANCELLED"]'
end

begin 'a timeout cancels the attempt and fails the step'
cat >"$tmp/slow.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: slow, command: [sleep, '30'], timeoutSeconds: 1}
PLAN
run "$STEPPY" run "$tmp/slow.yaml"
expect_status 3
expect_out_contains 'TIMED OUT slow after 1s'
end

begin 'fail fast cancels the other steps of the stage'
cat >"$tmp/ff.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: bad, command: ['false']}
      - {type: Exec, name: slow, command: [sleep, '30']}
PLAN
run "$STEPPY" run --fail-fast "$tmp/ff.yaml"
expect_status 3
expect_out_contains 'cancelling slow: another step of the stage failed (fail fast)'
expect_out_contains 'cancelled slow'
end

begin 'SIGINT stops steppy, not the release; resume finishes it'
cat >"$tmp/twostage.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Wait, name: w, seconds: 4}
  - name: t
    steps:
      - {type: Exec, name: e, command: ['true']}
PLAN
"$STEPPY" run "$tmp/twostage.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
# the signal once the Wait has begun: a fixed sleep lost the race on a
# loaded machine (the release had ended before the signal came)
wait_started
kill -INT $pid
wait $pid
status=$?
expect_status 6
grep -q 'steppy resume' "$tmp/run.out" || problem "no resume hint"
id=$(last_id)
run "$STEPPY" list --status RUNNING
expect_out_contains "$id"
run "$STEPPY" resume
expect_status 0
expect_out_contains 'resuming 1 release'
run "$STEPPY" resume
expect_status 0
expect_out_contains 'nothing to resume'
end

begin 'a durable wait keeps its due time across a crash'
"$STEPPY" run "$tmp/twostage.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_started
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 0
run "$STEPPY" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted" and e.get("stepName") == "w"]) == 1'
expect_json '[e for e in d["events"] if e["type"] == "TimerFired"][0]["timeMs"] >= [e for e in d["events"] if e["type"] == "StepStarted"][0]["data"]["dueMs"]'
# One StepStarted for the wait: it kept its original due time instead of starting over.
end

begin 'a second steppy does not take a release another one runs'
"$STEPPY" run "$tmp/human.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go"' || problem "never waited"
id=$(last_id)
run "$STEPPY" resume
expect_status 0
expect_out_contains 'nothing to resume'
run "$STEPPY" resume "$id"
expect_status 2
expect_err_contains 'run by another steppy process'
run "$STEPPY" abort "$id"
expect_status 0
wait $pid
status=$?
expect_status 5
end

begin 'a command that leaves a stubborn child behind still ends, and the child is stopped'
cat >"$tmp/leftover.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: bg, command: [sh, -c, 'trap "" TERM; (trap "" TERM; exec sleep 97) & echo started'], timeoutSeconds: 60}
PLAN
run "$STEPPY" run "$tmp/leftover.yaml"
expect_status 0
expect_out_contains 'ok bg'
sleep 0.2
pgrep -f 'sleep 97' >/dev/null && problem "the leftover child still runs"
end

begin 'an invalid plan never starts'
printf 'stages: []\n' >"$tmp/bad.yaml"
before=$("$STEPPY" list --format json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')
run "$STEPPY" run "$tmp/bad.yaml"
expect_status 1
expect_err_contains '"stages" must not be an empty list'
after=$("$STEPPY" list --format json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')
[ "$before" = "$after" ] || problem "an execution was recorded"
end

begin 'the default store lives under XDG_STATE_HOME'
(unset STEPPY_DB; XDG_STATE_HOME="$tmp/xdg" "$STEPPY" run "$tmp/twostage.yaml" >/dev/null 2>&1)
[ -f "$tmp/xdg/steppy/steppy.db" ] || problem "no store at \$XDG_STATE_HOME/steppy/steppy.db"
end


begin 'run refuses a plan whose Human step its starter could never get through'
me=$(id -un)
cat >"$tmp/self.yaml" <<PLAN
stages:
  - name: Sign-off
    steps:
      - type: Human
        name: Two of two
        message: Go?
        approvers: [$me, bob]
        minApprovals: 2
PLAN
run "$STEPPY" run --db "$db" "$tmp/self.yaml"
expect_status 1
expect_err_contains 'self.yaml:8:23: error: /stages/0/steps/0/minApprovals: '"$me"'@'
expect_err_contains ' started the release and is among the approvers, and allowSelfApproval is false: the others are 1 person, fewer than minApprovals (2); nobody could approve it'
run "$STEPPY" list --db "$db" --format json
expect_out_lacks 'self.yaml'
end

finish
