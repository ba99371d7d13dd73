#!/bin/sh
# t0060: a step type is one file and one registry row (issue 11). Builds a
# steppy with tests/extend/jenkins.c (the JenkinsJob type) and one row more
# in the registry (tests/extend/build.sh), then runs plans with it against
# a stub Jenkins (tests/extend/fake_jenkins.py): validation and `plan`,
# success, failure, abort (the build is stopped), and SIGKILL of `steppy
# run` before and after the build number was recorded, and of `steppy
# serve` that adopted the release: the next process finds the same build,
# the stub counts exactly one start.
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"
X="$tmp/steppy-jenkins"

begin 'a steppy with one more step type builds from one file and one registry row'
sh "$repo/tests/extend/build.sh" "$(dirname "$STEPPY")" "$X" >"$tmp/build.log" 2>&1 ||
    problem "build failed: $(tail -20 "$tmp/build.log")"
end
[ -x "$X" ] || { finish; exit 1; }

/usr/bin/python3 "$repo/tests/extend/fake_jenkins.py" --port-file "$tmp/jenkins.port" \
    >"$tmp/jenkins.log" 2>&1 &
jenkins_pid=$!
trap 'kill $jenkins_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -s "$tmp/jenkins.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
jenkins="http://127.0.0.1:$(cat "$tmp/jenkins.port")"

control() { curl -sf -XPOST "$jenkins/_control" -d "$1" >/dev/null || problem "control failed: $1"; }
stats_check() { # PYTHON-EXPR over s = the stub's /_stats
    curl -sf "$jenkins/_stats" >"$tmp/stats.json"
    /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[2]))
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$tmp/stats.json" ||
        problem "stub check failed: $1 ($(cat "$tmp/stats.json"))"
}
wait_stats() { # PYTHON-EXPR: up to 10 s
    i=0
    while [ $i -lt 100 ]; do
        curl -sf "$jenkins/_stats" | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    problem "never true: $1"
}
last_id() { "$X" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }
killed_run() { # NAME HOLD PYTHON-EXPR: runs plan NAME (job NAME) while the stub holds
    # (HOLD), SIGKILLs it once the stub's stats satisfy PYTHON-EXPR; sets $id
    plan "$1" "$1"
    control "{\"$2\": true}"
    "$X" run "$tmp/$1.yaml" >"$tmp/run.out" 2>&1 &
    pid=$!
    wait_stats "$3"
    kill -9 $pid
    wait $pid 2>/dev/null
    id=$(last_id)
}
plan() { # FILE JOB
    cat >"$tmp/$1.yaml" <<PLAN
stages:
  - name: ci
    steps:
      - type: JenkinsJob
        name: Build
        url: $jenkins
        job: $2
        params: {BRANCH: main, MODE: "fast mode"}
PLAN
}

begin 'the new type is validated and described like a built-in one'
cat >"$tmp/bad.yaml" <<'PLAN'
stages:
  - name: ci
    steps:
      - {type: JenkinsJob, name: Build, url: ftp://ci, jobb: app}
PLAN
run "$X" validate "$tmp/bad.yaml"
expect_status 1
expect_err_contains 'is not an http:// or https:// URL'
expect_err_contains 'jobb'
plan ok app
run "$X" plan "$tmp/ok.yaml"
expect_status 0
expect_out_contains "app on $jenkins"
expect_out_contains 'MODE=fast mode'
run "$STEPPY" validate "$tmp/ok.yaml"
expect_status 1
expect_err_contains 'JenkinsJob'
end

begin 'success: the job is started once with its parameters and watched to SUCCESS'
run "$X" run "$tmp/ok.yaml"
expect_status 0
stats_check 's["starts"] == 1 and s["builds"][0]["result"] == "SUCCESS"'
stats_check 's["builds"][0]["params"]["MODE"] == "fast mode" and s["builds"][0]["params"]["STEPPY_IDEMPOTENCY_KEY"].endswith("/0/0/1")'
run "$X" show --format json "$(last_id)"
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'failure: a FAILURE build fails the step and the release'
plan fail fail
run "$X" run "$tmp/fail.yaml"
expect_status 3
run "$X" history --format json "$(last_id)"
expect_json 'any(e["type"] == "StepFailed" and "ended FAILURE" in e["data"]["error"] for e in d["events"])'
end

begin 'abort stops the build (one stop call) and the release ends ABORTED'
plan hold hold
control '{"holdBuilds": true}'
"$X" run "$tmp/hold.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_stats 'any(b["job"] == "hold" and b["polls"] >= 1 for b in s["builds"])'
run "$X" abort "$(last_id)"
expect_status 0
wait $pid
status=$?
expect_status 5
stats_check 's["stops"] == 1 and [b["result"] for b in s["builds"] if b["job"] == "hold"] == ["ABORTED"]'
control '{"holdBuilds": false}'
end

begin 'SIGKILL before the build number was recorded: resume finds the same build, one start'
killed_run queued holdQueue 's["starts"] == 4'
control '{"holdQueue": false}'
run "$X" resume "$id"
expect_status 0
stats_check 's["starts"] == 4 and [b["result"] for b in s["builds"] if b["job"] == "queued"] == ["SUCCESS"]'
run "$X" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted"]) == 1 and len([e for e in d["events"] if e["type"] == "StepScheduled"]) == 1'
end

begin 'SIGKILL while the build is watched: resume watches it and starts nothing'
killed_run watched holdBuilds 'any(b["job"] == "watched" and b["polls"] >= 1 for b in s["builds"])'
control '{"holdBuilds": false}'
run "$X" resume "$id"
expect_status 0
stats_check 's["starts"] == 5 and s["stops"] == 1 and [b["result"] for b in s["builds"] if b["job"] == "watched"] == ["SUCCESS"]'
run "$X" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted"]) == 1 and any(e["type"] == "StepSucceeded" and e["data"]["build"] == 1 for e in d["events"])'
end

begin 'SIGKILL of run, serve adopts and watches the build; SIGKILL of serve, the next serve finishes it'
killed_run served holdBuilds 'any(b["job"] == "served" and b["polls"] >= 1 for b in s["builds"])'
printf 'maxBodyBytes: 65536\n' >"$tmp/serve.yaml"
serve() { # starts the extended steppy's server on the store; sets $server_pid
    : >"$tmp/serve.log"
    "$X" serve --config "$tmp/serve.yaml" --listen 127.0.0.1:0 --db "$STEPPY_DB" >"$tmp/serve.log" 2>&1 &
    server_pid=$!
    i=0
    while ! grep -q 'listening on' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    grep -q '1 unfinished release resumed' "$tmp/serve.log" || problem "serve did not resume the release: $(cat "$tmp/serve.log")"
}
serve
polls=$(curl -sf "$jenkins/_stats" | /usr/bin/python3 -c 'import json,sys; print([b["polls"] for b in json.load(sys.stdin)["builds"] if b["job"] == "served"][0])')
wait_stats "any(b['job'] == 'served' and b['polls'] > $polls for b in s['builds'])"
kill -9 $server_pid
wait $server_pid 2>/dev/null
control '{"holdBuilds": false}'
serve
i=0
while [ $i -lt 300 ]; do
    "$X" show --format json "$id" 2>/dev/null | grep -q '"status": "SUCCEEDED"' && break
    sleep 0.1
    i=$((i + 1))
done
kill -TERM $server_pid
wait $server_pid 2>/dev/null
stats_check 's["starts"] == 6 and [b["result"] for b in s["builds"] if b["job"] == "served"] == ["SUCCESS"]'
run "$X" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted"]) == 1 and any(e["type"] == "StepSucceeded" and e["data"]["build"] == 1 for e in d["events"])'
end

finish
