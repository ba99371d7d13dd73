#!/bin/sh
# t0008: Human steps that need several approvals (minApprovals) and the rule
# that whoever started a release cannot approve it (allowSelfApproval), with
# a steppy process running the release and without one.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
export STEPPY_DB="$db"
# Whoever runs the tests is neither an approver nor the starter: the starter
# is dave (steppy run records $USER@host as startedBy).
export USER=tester
# Create the store before processes race to create it (two first opens of
# one new file can fail with "database is locked").
"$STEPPY" list >/dev/null

# Waits (up to 15 s) until `steppy list` shows text.
wait_for() {
    i=0
    while [ $i -lt 150 ]; do
        "$STEPPY" list --limit 1000 2>/dev/null | grep -qF "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }

cat >"$tmp/two.yaml" <<'PLAN'
name: two of three
stages:
  - name: ask
    steps:
      - {type: Human, name: go, message: Ship it?, approvers: [alice, bob, dave], minApprovals: 2}
  - name: after
    steps:
      - {type: Exec, name: done, command: ['true']}
PLAN

begin 'plan and validate show and check the approval rules'
run "$STEPPY" plan "$tmp/two.yaml"
expect_status 0
expect_out_contains 'approvals    2 of alice, bob, dave; not the person who started the release'
sed 's/minApprovals: 2/minApprovals: 4/' "$tmp/two.yaml" >"$tmp/four.yaml"
run "$STEPPY" validate "$tmp/four.yaml"
expect_status 1
expect_err_contains '/stages/0/steps/0/minApprovals: "minApprovals" is 4 but "approvers" lists only 3 people'
end

begin 'two of three approve while steppy runs the release'
USER=dave "$STEPPY" run "$tmp/two.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "never waited for approvals: $(cat "$tmp/run.out")"
id=$(last_id)
run "$STEPPY" approve --by alice --comment 'tests pass' "$id" go
expect_status 0
expect_out_contains "approval 1 of 2 recorded for \"go\" of release $id"
run "$STEPPY" list
expect_out_contains 'approval of "go" (1 of 2: alice)'
run "$STEPPY" show "$id"
expect_out_contains 'waits for approval of "go" (1 of 2: alice)'
expect_out_contains 'approvals 1 of 2: alice'
run "$STEPPY" approve --by alice@laptop "$id" go
expect_status 1
expect_err_contains 'refused: alice@laptop has already approved "go" (1 of 2 approvals so far; each must come from a different person)'
run "$STEPPY" approve --by dave "$id" go
expect_status 1
expect_err_contains 'refused: whoever started the release (dave@'
expect_err_contains ') cannot approve it: allowSelfApproval is false'
run "$STEPPY" approve --by bob "$id" go
expect_status 0
expect_out_contains "approved \"go\" of release $id"
wait $pid
status=$?
expect_status 0
out=$(cat "$tmp/run.out")
expect_out_contains 'waits for approval by 2 different people: Ship it?'
expect_out_contains 'approval 1 of 2 for go by alice: "tests pass"'
expect_out_contains 'approved go by bob (approval 2 of 2)'
expect_out_contains 'SUCCEEDED'
run "$STEPPY" history --format json "$id"
expect_json '[e["data"]["by"] for e in d["events"] if e["type"] == "HumanDecision"] == ["alice", "bob"]'
run "$STEPPY" show --format json "$id"
expect_json 'd["stages"][0]["steps"][0]["approvals"] == {"needed": 2, "by": ["alice", "bob"]}'
expect_json 'd["startedBy"].startswith("dave@")'
end

begin 'approvals given while no steppy runs the release count on resume'
USER=dave "$STEPPY" run "$tmp/two.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "never waited"
id=$(last_id)
kill -9 $pid
wait $pid 2>/dev/null
run "$STEPPY" approve --by bob "$id" go
expect_status 0
expect_out_contains "approval 1 of 2 recorded for \"go\" of release $id"
expect_out_lacks 'steppy resume'
run "$STEPPY" approve --by bob@elsewhere "$id" go
expect_status 1
expect_err_contains 'refused: bob@elsewhere has already approved "go"'
run "$STEPPY" approve --by dave@ci "$id" go
expect_status 1
expect_err_contains 'cannot approve it: allowSelfApproval is false'
run "$STEPPY" list
expect_out_contains 'approval of "go" (1 of 2: bob)'
run "$STEPPY" approve --by alice "$id" go
expect_status 0
expect_out_contains "approved \"go\" of release $id"
expect_out_contains "steppy resume $id continues it"
run "$STEPPY" resume "$id"
expect_status 0
expect_out_contains 'SUCCEEDED'
end

begin 'one rejection after an approval rejects the release; the starter may reject'
USER=dave "$STEPPY" run "$tmp/two.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "never waited"
id=$(last_id)
run "$STEPPY" approve --by alice "$id" go
expect_status 0
run "$STEPPY" reject --by dave --comment 'not today' "$id" go
expect_status 0
expect_out_contains "rejected \"go\" of release $id"
wait $pid
status=$?
expect_status 4
run "$STEPPY" show --format json "$id"
expect_json 'd["status"] == "REJECTED" and d["stages"][0]["steps"][0]["state"] == "REJECTED"'
end

begin 'approvals of an aborted attempt do not count after steppy retry'
USER=dave "$STEPPY" run "$tmp/two.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "never waited"
id=$(last_id)
run "$STEPPY" approve --by alice "$id" go
expect_status 0
wait_for 'approval of "go" (1 of 2: alice)' || problem "approval not shown"
run "$STEPPY" abort --by carol "$id"
expect_status 0
wait $pid
status=$?
expect_status 5
"$STEPPY" retry "$id" >"$tmp/retry.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "the new attempt does not start from 0"
run "$STEPPY" approve --by alice "$id" go
expect_status 0
expect_out_contains 'approval 1 of 2 recorded'
run "$STEPPY" approve --by bob "$id" go
expect_status 0
expect_out_contains "approved \"go\" of release $id"
wait $pid
status=$?
expect_status 0
run "$STEPPY" show --format json "$id"
expect_json 'd["stages"][0]["steps"][0]["attempts"] == 2 and d["stages"][0]["steps"][0]["approvals"]["by"] == ["alice", "bob"]'
end

begin 'allowSelfApproval: true lets the starter approve'
sed 's/minApprovals: 2}/minApprovals: 2, allowSelfApproval: true}/' "$tmp/two.yaml" >"$tmp/self.yaml"
run "$STEPPY" plan "$tmp/self.yaml"
expect_out_contains 'approvals    2 of alice, bob, dave; the person who started the release may approve'
USER=dave "$STEPPY" run "$tmp/self.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go" (0 of 2)' || problem "never waited"
id=$(last_id)
run "$STEPPY" approve --by dave "$id" go
expect_status 0
expect_out_contains 'approval 1 of 2 recorded'
run "$STEPPY" approve --by alice "$id" go
expect_status 0
wait $pid
status=$?
expect_status 0
end

begin 'without approvers anyone may approve, the starter included, one approval by default'
cat >"$tmp/open.yaml" <<'PLAN'
stages:
  - name: ask
    steps:
      - {type: Human, name: go, message: Ship it?}
PLAN
USER=dave "$STEPPY" run "$tmp/open.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_for 'approval of "go"' || problem "never waited"
id=$(last_id)
run "$STEPPY" list
expect_out_lacks '(0 of 1)'
run "$STEPPY" approve --by dave "$id" go
expect_status 0
expect_out_contains "approved \"go\" of release $id"
wait $pid
status=$?
expect_status 0
run "$STEPPY" show "$id"
expect_out_contains 'approved by dave'
end

finish
