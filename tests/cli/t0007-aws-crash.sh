#!/bin/sh
# t0007: a crash never starts a build or pipeline twice. steppy is killed
# with SIGKILL after AWS started the work but before steppy heard of it (the
# fake answers StartBuild late: "slow-after"), and while it watches; Ctrl-C
# leaves the work running. Each time `steppy resume` finds the same work.
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"

start_fake_aws
trap 'kill $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT

configure() { curl -sf -XPOST "$fake/_fake/configure" -d "$1" >/dev/null || echo "configure failed: $1"; }
# fake_check PYTHON-EXPR: c = calls, r = records.
fake_check() {
    curl -sf "$fake/_fake/calls" >"$tmp/calls.json"
    curl -sf "$fake/_fake/records" >"$tmp/records.json"
    curl -sf "$fake/_fake/builds" >"$tmp/builds.json"
    /usr/bin/python3 -c '
import json, sys
c = json.load(open(sys.argv[2])); r = json.load(open(sys.argv[3])); b = json.load(open(sys.argv[4]))
def ops(op): return [x for x in c if x["operation"] == op]
def builds(p): return [x for x in b if x["project"] == p]
ok = eval(sys.argv[1])
if not ok:
    for x in c: print(x["service"], x["operation"], x["status"], x.get("error"), x.get("fault"), json.dumps(x["params"])[:200], file=sys.stderr)
    print(json.dumps(b)[:2000], file=sys.stderr)
sys.exit(0 if ok else 1)' "$1" "$tmp/calls.json" "$tmp/records.json" "$tmp/builds.json" || problem "check failed: $1"
}
last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }
# Waits until the fake has seen N calls of OP (up to 10 s).
wait_calls() {
    i=0
    while [ $i -lt 100 ]; do
        n=$(curl -sf "$fake/_fake/calls?operation=$1" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' 2>/dev/null)
        [ "${n:-0}" -ge "$2" ] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
history_check() { # PYTHON-EXPR over d = history JSON
    "$STEPPY" history "$1" --format json >"$tmp/h.json"
    /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[2]))
ev = d["events"]
def of(t): return [e for e in ev if e["type"] == t]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" "$tmp/h.json" || problem "history check failed: $2"
}

configure '{"codebuild": {"projects": {"crash-a": {"durationSeconds": 3}, "crash-b": {"durationSeconds": 8}, "crash-c": {"durationSeconds": 8}}},
            "codepipeline": {"pipelines": {"crash-p": {"stages": [{"name": "Source", "seconds": 2}]}}}}'

plan() { # PROJECT TYPE
    cat >"$tmp/$1.yaml" <<PLAN
stages:
  - name: build
    steps:
      - {type: $2, name: Build, codeBuildName: $1}
PLAN
}

begin 'SIGKILL after StartBuild reached AWS, before steppy heard back: resume finds the same build'
plan crash-a CodeBuild
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "slow-after", "seconds": 5, "count": 1}]}'
"$STEPPY" run "$tmp/crash-a.yaml" >"$tmp/a.out" 2>&1 &
pid=$!
sleep 1.5 # StartBuild was taken and the build created; the answer waits
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
fake_check 'len(builds("crash-a")) == 1'
run "$STEPPY" resume "$id"
expect_status 0
fake_check 'len(builds("crash-a")) == 1 and len(ops("StartBuild")) == 2'
fake_check 'ops("StartBuild")[0]["params"] == ops("StartBuild")[1]["params"]'
history_check "$id" 'len(of("StepScheduled")) == 1 and len(of("StepStarted")) == 1 and of("StepSucceeded")[0]["data"]["buildId"].startswith("crash-a:")'
end

begin 'SIGKILL while the build is watched: resume watches it, starts nothing'
plan crash-b CodeBuild
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
"$STEPPY" run "$tmp/crash-b.yaml" >"$tmp/b.out" 2>&1 &
pid=$!
wait_calls BatchGetBuilds 1 || problem "no BatchGetBuilds seen"
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 0
fake_check 'len(ops("StartBuild")) == 1 and len(builds("crash-b")) == 1 and len(ops("StopBuild")) == 0'
history_check "$id" 'len(of("StepStarted")) == 1 and len(of("StepSucceeded")) == 1'
history_check "$id" 'any(e["data"].get("phase") and e["data"]["buildId"].startswith("crash-b:") for e in of("Notice"))'
end

begin 'Ctrl-C leaves the build running (no StopBuild); resume finishes the release'
plan crash-c CodeBuild
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
"$STEPPY" run "$tmp/crash-c.yaml" >"$tmp/c.out" 2>&1 &
pid=$!
wait_calls BatchGetBuilds 1 || problem "no BatchGetBuilds seen"
kill -INT $pid
wait $pid
status=$?
expect_status 6
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 0
fake_check 'len(ops("StartBuild")) == 1 and len(ops("StopBuild")) == 0'
end

begin 'SIGKILL after StartPipelineExecution reached AWS: resume finds the same execution'
cat >"$tmp/pipe.yaml" <<'PLAN'
stages:
  - name: deploy
    steps:
      - {type: CodePipeline, name: Deploy, codePipelineName: crash-p}
PLAN
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
configure '{"faults": [{"service": "codepipeline", "operation": "StartPipelineExecution", "kind": "slow-after", "seconds": 5, "count": 1}]}'
"$STEPPY" run "$tmp/pipe.yaml" >"$tmp/p.out" 2>&1 &
pid=$!
sleep 1.5
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 0
fake_check 'len(ops("StartPipelineExecution")) == 2 and len([e for e in r["codepipeline"]["executions"] if e["pipelineName"] == "crash-p"]) == 1'
history_check "$id" 'len(of("StepStarted")) == 1 and len(of("StepSucceeded")) == 1'
end

begin 'a dropped connection after StartBuild: the retry gets the same build'
cat >"$tmp/drop.yaml" <<'PLAN'
stages:
  - name: build
    steps:
      - {type: CodeBuildNoWait, name: Build, codeBuildName: crash-d}
PLAN
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "drop-after", "count": 1}]}'
run "$STEPPY" run "$tmp/drop.yaml"
expect_status 0
fake_check 'len(builds("crash-d")) == 1'
end

begin 'no request broke the AWS models or signatures'
v=$(curl -sf "$fake/_fake/violations")
[ "$v" = "[]" ] || problem "violations: $v"
end

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
