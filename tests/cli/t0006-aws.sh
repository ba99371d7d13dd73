#!/bin/sh
# t0006: AWS steps (CodeBuild, CodeBuildNoWait, CodePipeline, Lambda, SNS,
# plans from S3, roles, the credential chain, retries, crash safety) run by
# the real binary against the fake AWS endpoint (tests/aws/fake_aws.py),
# which checks every request against botocore's models and signer.
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"

# ---- the fake ----------------------------------------------------------------
start_fake_aws
trap 'kill $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
: >"$tmp/aws-config"
: >"$tmp/aws-credentials"
export AWS_CONFIG_FILE="$tmp/aws-config" AWS_SHARED_CREDENTIALS_FILE="$tmp/aws-credentials"

configure() { curl -sf -XPOST "$fake/_fake/configure" -d "$1" >/dev/null || echo "configure failed: $1"; }
reset_calls() { curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null; }
# calls_check PYTHON-EXPR: c = the recorded calls (list of dicts).
calls_check() {
    curl -sf "$fake/_fake/calls" | /usr/bin/python3 -c '
import json, sys
c = json.load(sys.stdin)
def ops(op): return [x for x in c if x["operation"] == op]
ok = eval(sys.argv[1])
if not ok:
    for x in c: print(x["service"], x["operation"], x["status"], x.get("error"), json.dumps(x["params"])[:300], file=sys.stderr)
sys.exit(0 if ok else 1)' "$1" || problem "calls check failed: $1"
}
last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }

# ---- CodeBuild -----------------------------------------------------------------
configure '{"codebuild": {"projects": {
  "orders-build": {"durationSeconds": 2, "result": "SUCCEEDED"},
  "orders-broken": {"durationSeconds": 1, "result": "FAILED", "failPhase": "BUILD", "failMessage": "Error while executing command: make. Reason: exit status 2"},
  "orders-slow": {"durationSeconds": 60, "result": "SUCCEEDED"}}}}'

cat >"$tmp/build.jsonc" <<'PLAN'
{
  "stages": [{ "name": "build", "steps": [
    { "type": "CodeBuild", "name": "Build", "codeBuildName": "orders-build",
      "sourceVersion": { "type": "tag", "value": "v3.2.0" },
      "environmentVariableOverrides": [
        { "name": "RELEASE", "value": "3.2.0" },
        { "name": "NPM_TOKEN", "value": "/ci/npm", "type": "PARAMETER_STORE" },
        { "name": "DEPLOY_KEY", "value": "hunter2", "secret": true } ] },
    { "type": "CodeBuildNoWait", "name": "Warm", "codeBuildName": "orders-slow", "sourceVersion": "main" }
  ] }]
}
PLAN
begin 'CodeBuild: StartBuild as the model wants it, watched to SUCCEEDED; NoWait moves on'
reset_calls
run "$STEPPY" run "$tmp/build.jsonc"
expect_status 0
id=$(last_id)
calls_check 'len(ops("StartBuild")) == 2'
calls_check '[x["params"] for x in ops("StartBuild") if x["params"]["projectName"] == "orders-build"] == [{"projectName": "orders-build", "idempotencyToken": "'"$id"'/0/0/1", "sourceVersion": "refs/tags/v3.2.0", "environmentVariablesOverride": [{"name": "RELEASE", "value": "3.2.0", "type": "PLAINTEXT"}, {"name": "NPM_TOKEN", "value": "/ci/npm", "type": "PARAMETER_STORE"}, {"name": "DEPLOY_KEY", "value": "hunter2", "type": "PLAINTEXT"}]}]'
calls_check 'all("orders-slow" not in str(x["params"]) for x in ops("BatchGetBuilds"))'
calls_check 'all(x["status"] == 200 for x in c)'
run "$STEPPY" show "$id"
expect_out_contains 'build orders-build:'
expect_out_contains 'logs https://console.aws.amazon.com/cloudwatch/home?region=eu-west-1'
run "$STEPPY" history "$id" --format json
expect_json 'any(e["type"] == "StepStarted" and e["data"].get("buildNumber") for e in d["events"])'
expect_out_lacks 'hunter2'
expect_out_contains '"value": "****"'
run "$STEPPY" plan "$tmp/build.jsonc"
expect_out_contains 'DEPLOY_KEY=**** (secret)'
expect_out_lacks 'hunter2'
end

begin 'a variable that fills a secret value is masked in the history too'
cat >"$tmp/secret-var.yaml" <<'PLAN'
variables:
  KEY: {description: deploy key}
stages:
  - name: build
    steps:
      - type: CodeBuildNoWait
        name: Build
        codeBuildName: orders-build
        environmentVariableOverrides:
          - {name: DEPLOY_KEY, value: "k-${var.KEY}", secret: true}
PLAN
run "$STEPPY" run --var KEY=s3cr3tvalue "$tmp/secret-var.yaml"
expect_status 0
run "$STEPPY" history "$(last_id)" --format json
expect_out_lacks 's3cr3tvalue'
expect_json 'd["events"][0]["data"]["variables"]["KEY"] == "****"'
end

begin 'CodeBuild: a failed build fails the step with its phase and message'
run "$STEPPY" run "$tmp/build.jsonc" # warm the history
cat >"$tmp/broken.yaml" <<'PLAN'
stages:
  - name: build
    steps:
      - {type: CodeBuild, name: Build, codeBuildName: orders-broken}
PLAN
run "$STEPPY" run "$tmp/broken.yaml"
expect_status 3
expect_out_contains 'FAILED in phase BUILD'
expect_out_contains 'exit status 2'
end

begin 'CodeBuild: a timeout stops the build (StopBuild) and waits until it stopped'
cat >"$tmp/slow.yaml" <<'PLAN'
stages:
  - name: build
    steps:
      - {type: CodeBuild, name: Slow, codeBuildName: orders-slow, timeoutSeconds: 2}
PLAN
reset_calls
run "$STEPPY" run "$tmp/slow.yaml"
expect_status 3
calls_check 'len(ops("StopBuild")) == 1'
run "$STEPPY" show "$(last_id)" --format json
expect_json 'd["stages"][0]["steps"][0]["state"] == "TIMED_OUT"'
end

begin 'CodeBuild: throttling and 500s are retried; the build starts once'
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "throttle", "count": 1},
                       {"service": "codebuild", "operation": "StartBuild", "kind": "500", "count": 1},
                       {"service": "codebuild", "operation": "BatchGetBuilds", "kind": "throttle", "count": 2}]}'
reset_calls
run "$STEPPY" run "$tmp/broken.yaml" # any outcome; what matters is the calls
calls_check 'len(ops("StartBuild")) == 3 and [x["status"] for x in ops("StartBuild")] == [400, 500, 200]'
calls_check 'ops("StartBuild")[0]["params"]["idempotencyToken"] == ops("StartBuild")[2]["params"]["idempotencyToken"]'
expect_out_contains 'FAILED in phase BUILD'
end

begin 'CodeBuild: errors that are not worth retrying fail the step with AWS code and message'
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "throttle", "count": 50}]}'
AWS_MAX_ATTEMPTS=2 run "$STEPPY" run "$tmp/broken.yaml"
expect_status 3
expect_out_contains 'CodeBuild StartBuild: ThrottlingException'
curl -sf -XPOST "$fake/_fake/reset?only=faults" >/dev/null ||
    configure '{"faults": []}'
end

# ---- CodePipeline ----------------------------------------------------------------
configure '{"codepipeline": {"pipelines": {
  "deploy": {"stages": [{"name": "Source", "seconds": 1}, {"name": "Approve", "approval": true}, {"name": "Deploy", "seconds": 1}]},
  "broken": {"stages": [{"name": "Source", "seconds": 1}, {"name": "Deploy", "seconds": 1, "fail": true}]}}}}'
cat >"$tmp/pipe.yaml" <<'PLAN'
stages:
  - name: deploy
    steps:
      - type: CodePipeline
        name: Deploy
        codePipelineName: deploy
        approveApprovalStages: [Approve]
        variables: [{name: TAG, value: v3.2.0}]
        sourceRevisions: [{actionName: Source, revisionType: COMMIT_ID, revisionValue: 4f2a9c1}]
PLAN
begin 'CodePipeline: started once, its manual approval approved by steppy, Succeeded'
reset_calls
run "$STEPPY" run "$tmp/pipe.yaml"
expect_status 0
id=$(last_id)
calls_check 'len(ops("StartPipelineExecution")) == 1 and ops("StartPipelineExecution")[0]["params"] == {"name": "deploy", "clientRequestToken": "'"$id"'-0-0-1", "variables": [{"name": "TAG", "value": "v3.2.0"}], "sourceRevisions": [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": "4f2a9c1"}]}'
calls_check 'len(ops("PutApprovalResult")) == 1 and ops("PutApprovalResult")[0]["params"]["stageName"] == "Approve" and "'"$id"'" in ops("PutApprovalResult")[0]["params"]["result"]["summary"]'
run "$STEPPY" show "$id"
expect_out_contains 'pipeline deploy execution'
end

begin 'CodePipeline: a failed execution fails the step'
cat >"$tmp/pipe-bad.yaml" <<'PLAN'
stages:
  - name: deploy
    steps:
      - {type: CodePipeline, name: Broken, codePipelineName: broken}
PLAN
run "$STEPPY" run "$tmp/pipe-bad.yaml"
expect_status 3
expect_out_contains 'Failed'
end

begin 'CodePipeline: without approveApprovalStages nobody approves; abort stops the execution'
cat >"$tmp/pipe-wait.yaml" <<'PLAN'
stages:
  - name: deploy
    steps:
      - {type: CodePipeline, name: Deploy, codePipelineName: deploy}
PLAN
reset_calls
"$STEPPY" run "$tmp/pipe-wait.yaml" >"$tmp/pw.out" 2>&1 &
pid=$!
sleep 3
id=$(last_id)
run "$STEPPY" abort "$id"
wait $pid
status=$?
expect_status 5
calls_check 'len(ops("PutApprovalResult")) == 0 and len(ops("StopPipelineExecution")) == 1'
end

# ---- Lambda and SNS -------------------------------------------------------------
configure '{"lambda": {"functions": {"smoke": {"behaviour": "echo"},
  "broken": {"behaviour": "error"}}}}'
cat >"$tmp/lambda.yaml" <<'PLAN'
stages:
  - name: test
    steps:
      - {type: Lambda, name: Smoke, functionName: "arn:aws:lambda:us-east-2:111111111111:function:smoke:live", payload: {suite: smoke, n: 3}}
      - {type: Notify, name: Tell, subject: Released, message: "v3.2.0 is out", channels: [log, "arn:aws:sns:eu-west-1:111111111111:releases"]}
PLAN
begin 'Lambda: the answer becomes the output; SNS Publish in the topic region'
reset_calls
run "$STEPPY" run "$tmp/lambda.yaml"
expect_status 0
calls_check 'ops("Invoke")[0]["region"] == "us-east-2" and ops("Invoke")[0]["params"]["FunctionName"] == "smoke" and ops("Invoke")[0]["params"]["Qualifier"] == "live"'
calls_check 'ops("Publish")[0]["params"] == {"TopicArn": "arn:aws:sns:eu-west-1:111111111111:releases", "Message": "v3.2.0 is out", "Subject": "Released"}'
run "$STEPPY" history "$(last_id)" --format json
expect_json 'any(e["type"] == "StepSucceeded" and e["data"].get("output", {}).get("echo") == {"suite": "smoke", "n": 3} for e in d["events"])'
expect_json 'any(e["type"] == "StepSucceeded" and e["data"].get("snsMessageIds") for e in d["events"])'
end

begin 'Lambda: a function error fails the step with the error message'
cat >"$tmp/lambda-bad.yaml" <<'PLAN'
stages:
  - name: test
    steps:
      - {type: Lambda, name: Broken, functionName: broken}
PLAN
run "$STEPPY" run "$tmp/lambda-bad.yaml"
expect_status 3
expect_out_contains 'the function failed (Unhandled)'
end

# ---- S3 plans ------------------------------------------------------------------
begin 'run s3://: the plan is read from S3; validate names the S3 address in errors'
/usr/bin/aws --endpoint-url "$fake" s3 cp "$tmp/lambda.yaml" s3://plans/dir/release.yaml >/dev/null 2>&1 ||
    problem "aws s3 cp failed"
printf '{ "stages": [ { "name": "x", "steps": [ { "type": "Wait", "name": "w", "seconds": -1 } ] } ] }' \
    >"$tmp/bad.json"
/usr/bin/aws --endpoint-url "$fake" s3 cp "$tmp/bad.json" s3://plans/bad.json >/dev/null 2>&1
run "$STEPPY" run s3://plans/dir/release.yaml
expect_status 0
run "$STEPPY" validate s3://plans/bad.json
expect_status 1
expect_err_contains 's3://plans/bad.json:1:'
run "$STEPPY" run s3://plans/missing.yaml
expect_status 2
expect_err_contains 'NoSuchKey'
end

# ---- roles and credentials -----------------------------------------------------
cat >"$tmp/role.yaml" <<'PLAN'
defaults:
  roleArn: arn:aws:iam::222222222222:role/steppy-release
  externalId: orders-ext
stages:
  - name: test
    steps:
      - {type: Lambda, name: One, functionName: smoke}
      - {type: Lambda, name: Two, functionName: smoke}
PLAN
begin 'roleArn: AssumeRole with external id and a session naming release and step'
configure '{"sts": {"roles": {"arn:aws:iam::222222222222:role/steppy-release": {"externalId": "orders-ext"}}}}'
reset_calls
run "$STEPPY" run "$tmp/role.yaml"
expect_status 0
id=$(last_id)
calls_check 'sorted(x["params"]["RoleSessionName"] for x in ops("AssumeRole")) == ["steppy-'"$id"'-One", "steppy-'"$id"'-Two"]'
calls_check 'all(x["params"]["ExternalId"] == "orders-ext" for x in ops("AssumeRole"))'
calls_check 'all(x["account"] == "222222222222" and x["accessKeyId"].startswith("ASIA") for x in ops("Invoke"))'
end

begin 'roleArn: a refused AssumeRole fails the step and names the role'
sed 's/externalId: orders-ext/externalId: wrong-ext/' "$tmp/role.yaml" >"$tmp/role-bad.yaml"
run "$STEPPY" run "$tmp/role-bad.yaml"
expect_status 3
expect_out_contains 'cannot assume role arn:aws:iam::222222222222:role/steppy-release'
expect_out_contains 'AccessDenied'
end

begin 'credentials: profiles with source_profile and role_arn, and credential_process'
cat >"$AWS_CONFIG_FILE" <<EOF
[profile ops]
region = eu-west-1
[profile deploy]
role_arn = arn:aws:iam::333333333333:role/deployer
source_profile = ops
[profile proc]
credential_process = printf '{"Version": 1, "AccessKeyId": "AKIDSTEPPYTEST", "SecretAccessKey": "steppy/test+secret"}'
EOF
cat >"$AWS_SHARED_CREDENTIALS_FILE" <<EOF
[ops]
aws_access_key_id = AKIDSTEPPYTEST
aws_secret_access_key = steppy/test+secret
EOF
reset_calls
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; AWS_PROFILE=deploy "$STEPPY" run "$tmp/lambda-bad.yaml" >/dev/null 2>&1)
calls_check 'len(ops("AssumeRole")) == 1 and ops("Invoke")[0]["account"] == "333333333333"'
reset_calls
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY; AWS_PROFILE=proc "$STEPPY" run "$tmp/lambda-bad.yaml" >/dev/null 2>&1)
calls_check 'len(ops("Invoke")) == 1 and ops("Invoke")[0]["accessKeyId"] == "AKIDSTEPPYTEST"'
end

begin 'credentials: IMDSv2 and container credentials from the fake'
reset_calls
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED
 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_SERVICE_ENDPOINT="$fake" \
     "$STEPPY" run "$tmp/lambda-bad.yaml" >/dev/null 2>&1)
calls_check 'len(ops("Invoke")) == 1 and ops("Invoke")[0]["accessKeyId"].startswith("ASIA")'
calls_check 'any(x["service"] == "imds" for x in c)'
configure '{"containerAuthToken": "tok-123"}'
reset_calls
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
 AWS_CONTAINER_CREDENTIALS_FULL_URI="$fake/_fake/container-credentials" AWS_CONTAINER_AUTHORIZATION_TOKEN=tok-123 \
     "$STEPPY" run "$tmp/lambda-bad.yaml" >/dev/null 2>&1)
calls_check 'len(ops("Invoke")) == 1 and any(x["service"] == "container" and x["status"] == 200 for x in c)'
end

begin 'credentials: none at all fails the step with what to set'
(unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null run "$STEPPY" run "$tmp/lambda-bad.yaml"
 expect_status 3
 expect_out_contains 'no AWS credentials'
 [ "$current_ok" -eq 1 ] || exit 1) || problem "see above"
end

# ---- the original example ----------------------------------------------------------
begin 'the original example plan runs end to end; its Human step approved with steppy approve'
configure '{"codepipeline": {"pipelines": {"testingOrchPipeline": {"stages": [{"name": "Source", "seconds": 1}, {"name": "Build", "seconds": 1}]}}},
            "codebuild": {"projects": {"codebuildTestingOrch": {"durationSeconds": 1, "result": "SUCCEEDED"}}}}'
"$STEPPY" run "$repo/examples/original.jsonc" >"$tmp/orig.out" 2>&1 &
pid=$!
i=0
while [ $i -lt 100 ] && ! "$STEPPY" list 2>/dev/null | grep -q 'approval of'; do sleep 0.1; i=$((i + 1)); done
id=$(last_id)
run "$STEPPY" approve "$id" "Step 2 - Ask a human to confirm"
expect_status 0
wait $pid
status=$?
expect_status 0
run "$STEPPY" show "$id" --format json
expect_json 'd["status"] == "SUCCEEDED" and all(s["state"] == "SUCCEEDED" for st in d["stages"] for s in st["steps"])'
end

begin 'no credentials in any output or in the store'
for i in $("$STEPPY" list --limit 100 --format json | /usr/bin/python3 -c 'import json,sys; print(" ".join(e["id"] for e in json.load(sys.stdin)["executions"]))'); do
    "$STEPPY" history "$i" --format json
    "$STEPPY" show "$i"
done >"$tmp/all.out" 2>&1
grep -q 'steppy/test+secret' "$tmp/all.out" "$STEPPY_DB" && problem "the secret key was written out"
grep -q 'AKIDSTEPPYTEST' "$tmp/all.out" "$STEPPY_DB" && problem "the access key id was written out"
grep -q 'ASIA' "$tmp/all.out" "$STEPPY_DB" && problem "temporary credentials were written out"
end

# ---- no request broke the AWS models or signatures --------------------------------
begin 'the fake saw no violation of the AWS models or signatures'
v=$(curl -sf "$fake/_fake/violations")
[ "$v" = "[]" ] || problem "violations: $v"
end

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
