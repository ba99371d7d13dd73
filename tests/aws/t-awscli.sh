#!/bin/sh
# t-awscli.sh - proves tests/aws/fake_aws.py with a reference client.
#
# Starts the fake and drives it with Debian's AWS CLI v2 (/usr/bin/aws, whose
# own botocore signs and serializes every request): every operation the fake
# serves, the idempotency and lifecycle rules, build durations and history,
# faults, the IMDSv2 and container credential chains.  Members newer than the
# CLI's botocore (the fake's model overlay) are sent by signed_request.py.  Any request the fake finds wrong is a
# violation, so the CLI passing with an empty /_fake/violations list shows
# that the fake accepts what AWS accepts.  Then deliberately bad requests
# (curl) must be refused and recorded.  Prints "ok N - ..." / "not ok N - ..."
# and a last line "# N passed, M failed"; exit status 0 only if none failed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
AWS_BIN=/usr/bin/aws
tmp=$(mktemp -d "${TMPDIR:-/tmp}/steppy-awscli.XXXXXX")
fake_pid=""

cleanup() {
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null
        wait "$fake_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

n=0
passed=0
failed=0

ok() {
    n=$((n + 1))
    passed=$((passed + 1))
    echo "ok $n - $1"
}

not_ok() { # description [details]
    n=$((n + 1))
    failed=$((failed + 1))
    echo "not ok $n - $1"
    [ $# -gt 1 ] && printf '%s\n' "$2" | head -c 3000 | sed 's/^/#   /'
    return 0
}

# check DESC CMD...: ok if CMD exits 0.
check() {
    desc=$1
    shift
    if "$@" >"$tmp/check.out" 2>&1; then
        ok "$desc"
    else
        not_ok "$desc" "$(cat "$tmp/check.out")"
    fi
}

# jtrue FILE EXPR: Python EXPR over d = the JSON in FILE is true.  EXPR may
# use t(x): epoch seconds of x (a number, or the CLI's ISO 8601 text), and
# now(): the current epoch seconds.
jtrue() {
    "$PY" -c '
import datetime, json, sys, time
d = json.load(open(sys.argv[1]))
t = lambda x: x if isinstance(x, (int, float)) else datetime.datetime.fromisoformat(x).timestamp()
now = time.time
sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# jget FILE EXPR: print Python EXPR over d = the JSON in FILE.
jget() {
    "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2"
}

# expect DESC FILE EXPR: ok if EXPR holds for the JSON in FILE.
expect() {
    if jtrue "$2" "$3" 2>"$tmp/expect.err"; then
        ok "$1"
    else
        not_ok "$1" "expected: $3
got: $(head -c 2000 "$2") $(cat "$tmp/expect.err")"
    fi
}

# cli OUT CMD...: run the AWS CLI against the fake, stdout to OUT, stderr to
# OUT.err.  $CLI_ENV holds extra VAR=value words for env(1) (no spaces).
CLI_ENV=""
cli() {
    out=$1
    shift
    # shellcheck disable=SC2086 # CLI_ENV is split into words on purpose
    env $CLI_ENV "$AWS_BIN" --endpoint-url "$BASE" --output json "$@" >"$out" 2>"$out.err"
}

# cli_fails DESC ERROR-CODE CMD...: the CLI call must fail with ERROR-CODE.
cli_fails() {
    desc=$1
    code=$2
    shift 2
    if cli "$tmp/fail.json" "$@"; then
        not_ok "$desc" "succeeded: $(cat "$tmp/fail.json")"
    elif grep -q "($code)" "$tmp/fail.json.err"; then
        ok "$desc"
    else
        not_ok "$desc" "$(cat "$tmp/fail.json.err")"
    fi
}

# signed OUT SERVICE TARGET JSON: a json-1.1 request signed by botocore's
# SigV4Auth (signed_request.py), for what the CLI cannot send; the HTTP
# status goes to OUT.status, the answer to OUT.
signed() {
    "$PY" "$here/signed_request.py" "$BASE" "$2" "$3" "$4" >"$1.raw" 2>&1
    sed -n 1p "$1.raw" >"$1.status"
    sed 1d "$1.raw" >"$1"
}

control() { # METHOD PATH [JSON-BODY] -> stdout
    if [ $# -gt 2 ]; then
        curl -sS -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$BASE$2"
    else
        curl -sS -X "$1" "$BASE$2"
    fi
}

# wait_for SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_for() {
    limit=$(( $1 * 5 ))
    shift
    i=0
    while [ $i -lt $limit ]; do
        "$@" && return 0
        sleep 0.2
        i=$((i + 1))
    done
    return 1
}

# --- start the fake -----------------------------------------------------------

"$PY" "$here/fake_aws.py" --port 0 --port-file "$tmp/port" --log "$tmp/fake.log" 2>"$tmp/fake.err" &
fake_pid=$!
if ! wait_for 20 test -s "$tmp/port"; then
    not_ok "fake_aws.py starts" "$(cat "$tmp/fake.err")"
    echo "# $passed passed, $failed failed"
    exit 1
fi
BASE="http://127.0.0.1:$(cat "$tmp/port")"
ok "fake_aws.py listens on $BASE"

mkdir -p "$tmp/home"
export HOME="$tmp/home"
export AWS_ACCESS_KEY_ID=AKIDSTEPPYTEST
export AWS_SECRET_ACCESS_KEY='steppy/test+secret'
export AWS_DEFAULT_REGION=eu-west-1
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_PAGER=""
export AWS_EC2_METADATA_DISABLED=true
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_REGION AWS_CA_BUNDLE AWS_ENDPOINT_URL \
    AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
    AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_EC2_METADATA_SERVICE_ENDPOINT 2>/dev/null

control POST /_fake/configure '{
  "codebuild": {"projects": {
     "web":     {"durationSeconds": 1},
     "broken":  {"durationSeconds": 1, "result": "FAILED", "failPhase": "BUILD",
                 "failMessage": "make: *** [all] Error 2"},
     "slow":    {"durationSeconds": 600},
     "missing": {"exists": false}}},
  "codepipeline": {"pipelines": {
     "release": {"stages": [{"name": "Source", "seconds": 0.3},
                            {"name": "Approve", "approval": true},
                            {"name": "Deploy", "seconds": 0.3}]}}},
  "lambda": {"functions": {
     "bad": {"behaviour": "error", "result": {"errorMessage": "boom", "errorType": "ValueError"}},
     "fixed": {"behaviour": "json", "result": {"answer": 42}},
     "ghost": {"exists": false}}},
  "sts": {"roles": {"arn:aws:iam::222222222222:role/deployer": {"externalId": "steppy-ext"}}}
}' >"$tmp/conf.json"
expect "configure accepted" "$tmp/conf.json" "d == {'configured': True}"

control POST /_fake/configure '{"codebuild": {"projects": {"x": {"durationSecs": 1}}}}' >"$tmp/conf-bad.json"
expect "configure refuses an unknown key, naming it" "$tmp/conf-bad.json" "'durationSecs' in d['error']"

# --- STS -------------------------------------------------------------------------

cli "$tmp/id.json" sts get-caller-identity
expect "sts get-caller-identity (static key)" "$tmp/id.json" \
    "d['Account'] == '111111111111' and d['Arn'] == 'arn:aws:iam::111111111111:user/steppy-test'"

cli_fails "sts assume-role with a wrong external id is AccessDenied" AccessDenied \
    sts assume-role --role-arn arn:aws:iam::222222222222:role/deployer \
    --role-session-name steppy --external-id wrong-id

cli "$tmp/role.json" sts assume-role --role-arn arn:aws:iam::222222222222:role/deployer \
    --role-session-name steppy-release --external-id steppy-ext --duration-seconds 900
expect "sts assume-role returns temporary credentials" "$tmp/role.json" \
    "d['Credentials']['AccessKeyId'].startswith('ASIA') and len(d['Credentials']['SessionToken']) > 100 \
     and d['AssumedRoleUser']['Arn'] == 'arn:aws:sts::222222222222:assumed-role/deployer/steppy-release'"

TMP_AK=$(jget "$tmp/role.json" "d['Credentials']['AccessKeyId']")
TMP_SK=$(jget "$tmp/role.json" "d['Credentials']['SecretAccessKey']")
TMP_ST=$(jget "$tmp/role.json" "d['Credentials']['SessionToken']")

CLI_ENV="AWS_ACCESS_KEY_ID=$TMP_AK AWS_SECRET_ACCESS_KEY=$TMP_SK AWS_SESSION_TOKEN=$TMP_ST"
cli "$tmp/id2.json" sts get-caller-identity
expect "temporary credentials sign get-caller-identity (role's account)" "$tmp/id2.json" \
    "d['Account'] == '222222222222' and 'assumed-role/deployer/steppy-release' in d['Arn']"

cli "$tmp/cb-role.json" codebuild start-build --project-name web
CLI_ENV=""
expect "temporary credentials sign a codebuild start-build in the role's account" "$tmp/cb-role.json" \
    "d['build']['arn'].startswith('arn:aws:codebuild:eu-west-1:222222222222:build/web:')"

control GET "/_fake/records" >"$tmp/records.json"
expect "the assumed role, session name and external id are recorded" "$tmp/records.json" \
    "[(r['roleSessionName'], r['externalId'], r['granted']) for r in d['sts']['assumedRoles']] \
     == [('steppy', 'wrong-id', False), ('steppy-release', 'steppy-ext', True)]"

control GET "/_fake/calls?service=codebuild&operation=StartBuild" >"$tmp/calls.json"
expect "calls record the account and assumed role of the signer" "$tmp/calls.json" \
    "d[-1]['account'] == '222222222222' and d[-1]['assumedRole'] == 'arn:aws:iam::222222222222:role/deployer' \
     and d[-1]['region'] == 'eu-west-1'"

# --- CodeBuild ---------------------------------------------------------------------

cli "$tmp/b1.json" codebuild start-build --project-name web --source-version v1.2.3 \
    --idempotency-token tok-web-1 \
    --environment-variables-override name=RELEASE,value=42,type=PLAINTEXT name=STAGE,value=prod
cli "$tmp/b2.json" codebuild start-build --project-name web --source-version v1.2.3 \
    --idempotency-token tok-web-1 \
    --environment-variables-override name=RELEASE,value=42,type=PLAINTEXT name=STAGE,value=prod
BUILD=$(jget "$tmp/b1.json" "d['build']['id']")
expect "codebuild start-build: id project:uuid, build number, IN_PROGRESS" "$tmp/b1.json" \
    "__import__('re').fullmatch(r'web:[0-9a-f-]{36}', d['build']['id']) and d['build']['buildNumber'] == 1 \
     and d['build']['buildStatus'] == 'IN_PROGRESS'"
expect "codebuild start-build with the same idempotency token returns the same build" "$tmp/b2.json" \
    "d['build']['id'] == '$BUILD'"
cli_fails "same idempotency token, other parameters: IdempotentParameterMismatchException" \
    IdempotentParameterMismatchException \
    codebuild start-build --project-name web --source-version v9 --idempotency-token tok-web-1

build_done() { # ID OUT
    cli "$2" codebuild batch-get-builds --ids "$1" && jtrue "$2" "d['builds'][0]['buildComplete']"
}
if wait_for 10 build_done "$BUILD" "$tmp/bd.json"; then
    expect "batch-get-builds: SUCCEEDED after the configured duration, all phases" "$tmp/bd.json" \
        "d['builds'][0]['buildStatus'] == 'SUCCEEDED' and d['builds'][0]['currentPhase'] == 'COMPLETED' \
         and [p['phaseType'] for p in d['builds'][0]['phases']] == ['SUBMITTED', 'QUEUED', 'PROVISIONING', \
         'DOWNLOAD_SOURCE', 'INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD', 'UPLOAD_ARTIFACTS', 'FINALIZING', \
         'COMPLETED'] and 'endTime' in d['builds'][0]"
    expect "batch-get-builds echoes environment variables, source version, log links" "$tmp/bd.json" \
        "d['builds'][0]['environment']['environmentVariables'] == [{'name': 'RELEASE', 'value': '42', \
         'type': 'PLAINTEXT'}, {'name': 'STAGE', 'value': 'prod', 'type': 'PLAINTEXT'}] \
         and d['builds'][0]['sourceVersion'] == 'v1.2.3' \
         and d['builds'][0]['logs']['groupName'] == '/aws/codebuild/web' \
         and 'region=eu-west-1' in d['builds'][0]['logs']['deepLink']"
else
    not_ok "batch-get-builds: build completes" "$(cat "$tmp/bd.json" "$tmp/bd.json.err")"
fi

cli "$tmp/nf.json" codebuild batch-get-builds --ids "web:00000000-0000-0000-0000-000000000000"
expect "batch-get-builds: unknown ids in buildsNotFound" "$tmp/nf.json" \
    "d['buildsNotFound'] == ['web:00000000-0000-0000-0000-000000000000'] and d['builds'] == []"

cli "$tmp/f1.json" codebuild start-build --project-name broken
FBUILD=$(jget "$tmp/f1.json" "d['build']['id']")
if wait_for 10 build_done "$FBUILD" "$tmp/fd.json"; then
    expect "a failing project: FAILED, the BUILD phase FAILED with its context" "$tmp/fd.json" \
        "d['builds'][0]['buildStatus'] == 'FAILED' and [(p['phaseStatus'], p['contexts'][0]['message']) \
         for p in d['builds'][0]['phases'] if p['phaseType'] == 'BUILD'] \
         == [('FAILED', 'make: *** [all] Error 2')]"
else
    not_ok "a failing project completes" "$(cat "$tmp/fd.json" "$tmp/fd.json.err")"
fi

cli "$tmp/s1.json" codebuild start-build --project-name slow
SBUILD=$(jget "$tmp/s1.json" "d['build']['id']")
cli "$tmp/s2.json" codebuild stop-build --id "$SBUILD"
expect "stop-build: STOPPED, current phase COMPLETED" "$tmp/s2.json" \
    "d['build']['buildStatus'] == 'STOPPED' and d['build']['currentPhase'] == 'COMPLETED' \
     and d['build']['phases'][-2]['phaseStatus'] == 'STOPPED'"

cli "$tmp/s3.json" codebuild start-build --project-name slow
SBUILD2=$(jget "$tmp/s3.json" "d['build']['id']")
cli "$tmp/lb.json" codebuild list-builds-for-project --project-name slow
expect "list-builds-for-project: newest first" "$tmp/lb.json" "d['ids'] == ['$SBUILD2', '$SBUILD']"

cli_fails "start-build of an unknown project: ResourceNotFoundException" ResourceNotFoundException \
    codebuild start-build --project-name missing
if grep -q "Project cannot be found: arn:aws:codebuild:eu-west-1:111111111111:project/missing" "$tmp/fail.json.err"; then
    ok "the not-found message names the project ARN"
else
    not_ok "the not-found message names the project ARN" "$(cat "$tmp/fail.json.err")"
fi

# --- CodeBuild: duration jitter, history, GET /_fake/builds ---------------------------

control POST /_fake/configure '{"codebuild": {"projects": {
   "hist":  {"durationSeconds": 30, "jitterSeconds": 10, "history": 3},
   "jit":   {"durationSeconds": 30, "jitterSeconds": 20},
   "floor": {"durationSeconds": 1.5, "jitterSeconds": 100}}}}' >"$tmp/conf-h.json"
configured_at=$(date +%s.%N)
expect "configure accepts jitterSeconds and history" "$tmp/conf-h.json" "d == {'configured': True}"
control POST /_fake/configure '{"codebuild": {"projects": {"x": {"history": 1.5}}}}' >"$tmp/conf-h2.json"
expect "configure refuses a history that is not a whole number" "$tmp/conf-h2.json" "'history' in d['error']"
control POST /_fake/configure '{"codebuild": {"projects": {"x": {"jitterSeconds": -1}}}}' >"$tmp/conf-h3.json"
expect "configure refuses a negative jitterSeconds" "$tmp/conf-h3.json" "'jitterSeconds' in d['error']"

cli "$tmp/hl.json" codebuild list-builds-for-project --project-name hist
HIDS=$(jget "$tmp/hl.json" "' '.join(d.get('ids', []))")
# shellcheck disable=SC2086 # one id per word
cli "$tmp/hb.json" codebuild batch-get-builds --ids $HIDS
expect "history: 3 completed SUCCEEDED builds listed newest first (numbers 3, 2, 1), all phases" "$tmp/hb.json" \
    "[(b['buildNumber'], b['buildStatus'], b['buildComplete'], b['currentPhase'], len(b['phases'])) \
      for b in d['builds']] == [(n, 'SUCCEEDED', True, 'COMPLETED', 11) for n in (3, 2, 1)]"
expect "history: they ended before the project was configured, one after the other, lasting 30 +- 10 s" \
    "$tmp/hb.json" \
    "all(20 <= t(b['endTime']) - t(b['startTime']) <= 40 and t(b['endTime']) < $configured_at \
         and t(b['phases'][-1]['startTime']) == t(b['endTime']) for b in d['builds']) \
     and all(t(d['builds'][i + 1]['endTime']) < t(d['builds'][i]['startTime']) for i in range(2))"

cli "$tmp/hs.json" codebuild start-build --project-name hist
HNEW=$(jget "$tmp/hs.json" "d['build']['id']")
expect "a new build is numbered after the history" "$tmp/hs.json" "d['build']['buildNumber'] == 4"
control GET "/_fake/builds?project=hist" >"$tmp/hfb.json"
expect "GET /_fake/builds: id, project, start time, scheduled end time, status, history flag" "$tmp/hfb.json" \
    "[(b['buildNumber'], b['project'], b['status'], b['history']) for b in d] \
     == [(1, 'hist', 'SUCCEEDED', True), (2, 'hist', 'SUCCEEDED', True), (3, 'hist', 'SUCCEEDED', True), \
         (4, 'hist', 'IN_PROGRESS', False)] \
     and d[3]['id'] == '$HNEW' and 20 <= d[3]['endTime'] - d[3]['startTime'] <= 40 and d[3]['endTime'] > now()"
expect "GET /_fake/builds: the history's times are those BatchGetBuilds shows" "$tmp/hfb.json" \
    "[(b['id'], round(b['startTime'], 3), round(b['endTime'], 3)) for b in d[2::-1]] == \
     [(b['id'], round(t(b['startTime']), 3), round(t(b['endTime']), 3)) \
      for b in __import__('json').load(open('$tmp/hb.json'))['builds']]"

for i in 1 2 3 4 5 6; do
    signed "$tmp/jit.json" codebuild CodeBuild_20161006.StartBuild '{"projectName": "jit"}'
    signed "$tmp/jit.json" codebuild CodeBuild_20161006.StartBuild '{"projectName": "floor"}'
done
control GET "/_fake/builds?project=jit" >"$tmp/jb.json"
expect "jitterSeconds: each build lasts its own durationSeconds +- jitterSeconds" "$tmp/jb.json" \
    "len(d) == 6 and len({b['endTime'] - b['startTime'] for b in d}) == 6 \
     and all(10 <= b['endTime'] - b['startTime'] <= 50 for b in d)"
control GET "/_fake/builds?project=floor" >"$tmp/jf.json"
expect "jitterSeconds: never below 1 s" "$tmp/jf.json" \
    "len(d) == 6 and all(1 <= b['endTime'] - b['startTime'] <= 101.5 for b in d)"
control GET "/_fake/builds?project=slow" >"$tmp/sb.json"
expect "GET /_fake/builds: a stopped build ends when it was stopped" "$tmp/sb.json" \
    "[b['status'] for b in d] == ['STOPPED', 'IN_PROGRESS'] and d[0]['endTime'] - d[0]['startTime'] < 60"

# --- CodePipeline ------------------------------------------------------------------

cli "$tmp/p1.json" codepipeline start-pipeline-execution --name release --client-request-token crt-1
cli "$tmp/p2.json" codepipeline start-pipeline-execution --name release --client-request-token crt-1
EXEC=$(jget "$tmp/p1.json" "d['pipelineExecutionId']")
expect "start-pipeline-execution: the same clientRequestToken gives the same execution" "$tmp/p2.json" \
    "d['pipelineExecutionId'] == '$EXEC'"

cli "$tmp/pe.json" codepipeline get-pipeline-execution --pipeline-name release --pipeline-execution-id "$EXEC"
expect "get-pipeline-execution: InProgress" "$tmp/pe.json" \
    "d['pipelineExecution']['status'] == 'InProgress' and d['pipelineExecution']['pipelineName'] == 'release'"

approval_pending() {
    cli "$tmp/ps.json" codepipeline get-pipeline-state --name release && jtrue "$tmp/ps.json" \
        "'token' in d['stageStates'][1]['actionStates'][0].get('latestExecution', {})"
}
if wait_for 10 approval_pending; then
    expect "get-pipeline-state: Source Succeeded, the approval InProgress with a token" "$tmp/ps.json" \
        "d['stageStates'][0]['latestExecution']['status'] == 'Succeeded' \
         and d['stageStates'][1]['latestExecution'] == {'pipelineExecutionId': '$EXEC', 'status': 'InProgress'} \
         and d['stageStates'][1]['actionStates'][0]['latestExecution']['status'] == 'InProgress'"
else
    not_ok "get-pipeline-state shows a pending approval" "$(cat "$tmp/ps.json" "$tmp/ps.json.err")"
fi
TOKEN=$(jget "$tmp/ps.json" "d['stageStates'][1]['actionStates'][0]['latestExecution'].get('token')")

cli_fails "put-approval-result with a wrong token: InvalidApprovalTokenException" InvalidApprovalTokenException \
    codepipeline put-approval-result --pipeline-name release --stage-name Approve --action-name Approve \
    --result summary=nope,status=Approved --token 11111111-2222-3333-4444-555555555555
cli "$tmp/pa.json" codepipeline put-approval-result --pipeline-name release --stage-name Approve \
    --action-name Approve --result "summary=Ship it,status=Approved" --token "$TOKEN"
expect "put-approval-result: approvedAt" "$tmp/pa.json" "'approvedAt' in d"

pipeline_done() { # EXEC STATUS
    cli "$tmp/pe2.json" codepipeline get-pipeline-execution --pipeline-name release --pipeline-execution-id "$1" \
        && jtrue "$tmp/pe2.json" "d['pipelineExecution']['status'] == '$2'"
}
if wait_for 10 pipeline_done "$EXEC" Succeeded; then
    ok "the execution Succeeded after the approval and the last stage"
else
    not_ok "the execution Succeeded after the approval and the last stage" "$(cat "$tmp/pe2.json")"
fi
control GET "/_fake/records" >"$tmp/records.json"
expect "the approval summary is recorded" "$tmp/records.json" \
    "[(a['status'], a['summary']) for a in d['codepipeline']['approvals']] == [('Approved', 'Ship it')]"

cli "$tmp/p3.json" codepipeline start-pipeline-execution --name release
EXEC2=$(jget "$tmp/p3.json" "d['pipelineExecutionId']")
cli "$tmp/stop.json" codepipeline stop-pipeline-execution --pipeline-name release \
    --pipeline-execution-id "$EXEC2" --abandon --reason "release cancelled"
expect "stop-pipeline-execution answers the execution id" "$tmp/stop.json" "d['pipelineExecutionId'] == '$EXEC2'"
cli "$tmp/pe3.json" codepipeline get-pipeline-execution --pipeline-name release --pipeline-execution-id "$EXEC2"
expect "an abandoned execution is Stopped with the reason as summary" "$tmp/pe3.json" \
    "d['pipelineExecution']['status'] == 'Stopped' and d['pipelineExecution']['statusSummary'] == 'release cancelled'"
cli_fails "get-pipeline-state of an unconfigured pipeline: PipelineNotFoundException" PipelineNotFoundException \
    codepipeline get-pipeline-state --name nowhere

# Members newer than botocore 1.29 (the fake's model overlay): the CLI 2.9
# cannot send them, signed_request.py does.
control GET /_fake/health >"$tmp/health.json"
expect "health: the model overlay adds StartPipelineExecution's variables and sourceRevisions to botocore 1.29" \
    "$tmp/health.json" \
    "d['ok'] and (not d['botocore'].startswith('1.29.') or d['modelOverlay'] == \
     ['codepipeline.StartPipelineExecutionInput.variables', 'codepipeline.StartPipelineExecutionInput.sourceRevisions'])"
SPE=CodePipeline_20150709.StartPipelineExecution
signed "$tmp/ov1.json" codepipeline $SPE '{"name": "release", "clientRequestToken": "crt-overlay-1",
  "variables": [{"name": "RELEASE", "value": "r-1"}, {"name": "deploy@eu-west_1", "value": "a b: c"}],
  "sourceRevisions": [{"actionName": "Source", "revisionType": "COMMIT_ID",
                       "revisionValue": "0123456789abcdef0123456789abcdef01234567"},
                      {"actionName": "Source", "revisionType": "S3_OBJECT_KEY", "revisionValue": "releases/r-1.zip"}]}'
expect "start-pipeline-execution with variables and sourceRevisions (signed by botocore): accepted" "$tmp/ov1.json" \
    "open('$tmp/ov1.json.status').read().strip() == '200' and len(d['pipelineExecutionId']) == 36"
control GET "/_fake/calls?service=codepipeline&operation=StartPipelineExecution" >"$tmp/ovc.json"
expect "variables and sourceRevisions are recorded in the call params" "$tmp/ovc.json" \
    "d[-1]['params']['variables'] == [{'name': 'RELEASE', 'value': 'r-1'}, {'name': 'deploy@eu-west_1', \
     'value': 'a b: c'}] and [r['revisionType'] for r in d[-1]['params']['sourceRevisions']] \
     == ['COMMIT_ID', 'S3_OBJECT_KEY'] and d[-1]['status'] == 200"
control GET /_fake/records >"$tmp/ovr.json"
expect "and with the execution in the records" "$tmp/ovr.json" \
    "[e['variables'][0]['value'] for e in d['codepipeline']['executions'] \
      if e['pipelineExecutionId'] == '$(jget "$tmp/ov1.json" "d.get('pipelineExecutionId')")'] == ['r-1']"

control GET /_fake/violations >"$tmp/ov-v0.json"
expect "no violation so far" "$tmp/ov-v0.json" "d == []"
signed "$tmp/ov2.json" codepipeline $SPE '{"name": "release",
  "sourceRevisions": [{"actionName": "Source", "revisionType": "BRANCH", "revisionValue": "main"}]}'
expect "an overlay member off its enum (revisionType BRANCH): 400 ValidationException" "$tmp/ov2.json" \
    "open('$tmp/ov2.json.status').read().strip() == '400' and d['__type'] == 'ValidationException' \
     and '\"BRANCH\" is not one of COMMIT_ID, IMAGE_DIGEST, S3_OBJECT_VERSION_ID, S3_OBJECT_KEY' in d['message']"
signed "$tmp/ov3.json" codepipeline $SPE '{"name": "release", "variables": [{"name": "X", "type": "PLAINTEXT"}]}'
expect "an overlay structure without a required member, with an unknown one: 400 naming both" "$tmp/ov3.json" \
    "open('$tmp/ov3.json.status').read().strip() == '400' \
     and 'missing required member \"value\" of PipelineVariable' in d['message'] \
     and 'unknown member \"type\" in PipelineVariable' in d['message']"
control GET /_fake/violations >"$tmp/ov-v1.json"
expect "both are recorded as model violations" "$tmp/ov-v1.json" \
    "[(v['kind'], v['operation']) for v in d] == [('model', 'StartPipelineExecution')] * 2 \
     and 'revisionType' in d[0]['message']"
control DELETE /_fake/violations >/dev/null

# --- Lambda ----------------------------------------------------------------------------

cli "$tmp/l1.json" lambda invoke --function-name steppy-hook --cli-binary-format raw-in-base64-out \
    --payload '{"release": "r-1", "n": 3}' "$tmp/l1.out"
expect "lambda invoke (echo): 200, no FunctionError" "$tmp/l1.json" \
    "d['StatusCode'] == 200 and 'FunctionError' not in d and d['ExecutedVersion'] == '\$LATEST'"
expect "lambda invoke (echo): the payload comes back" "$tmp/l1.out" "d == {'echo': {'release': 'r-1', 'n': 3}}"

cli "$tmp/l2.json" lambda invoke --function-name bad --cli-binary-format raw-in-base64-out \
    --payload '{}' "$tmp/l2.out"
expect "lambda invoke (error): FunctionError Unhandled" "$tmp/l2.json" "d.get('FunctionError') == 'Unhandled'"
expect "lambda invoke (error): errorMessage and errorType" "$tmp/l2.out" \
    "d == {'errorMessage': 'boom', 'errorType': 'ValueError'}"

cli "$tmp/l3.json" lambda invoke --function-name arn:aws:lambda:eu-west-1:111111111111:function:fixed \
    --qualifier 7 --cli-binary-format raw-in-base64-out --payload '{}' "$tmp/l3.out"
expect "lambda invoke by ARN with a qualifier (json behaviour)" "$tmp/l3.out" "d == {'answer': 42}"
cli_fails "lambda invoke of an unknown function: ResourceNotFoundException" ResourceNotFoundException \
    lambda invoke --function-name ghost "$tmp/l4.out"

# --- SNS -------------------------------------------------------------------------------

cli "$tmp/sns.json" sns publish --topic-arn arn:aws:sns:eu-west-1:111111111111:releases \
    --subject "Release r-1" --message "Release r-1 is live" \
    --message-attributes '{"release": {"DataType": "String", "StringValue": "r-1"}}'
expect "sns publish: MessageId" "$tmp/sns.json" "len(d['MessageId']) == 36"
control GET "/_fake/records" >"$tmp/records.json"
expect "sns messages recorded per topic, with subject and attributes" "$tmp/records.json" \
    "[(m['subject'], m['message'], m['messageAttributes']) for m in \
      d['sns']['messages']['arn:aws:sns:eu-west-1:111111111111:releases']] == [('Release r-1', \
      'Release r-1 is live', {'release': {'DataType': 'String', 'StringValue': 'r-1'}})]"

# --- S3 --------------------------------------------------------------------------------

printf 'artifact body\n' >"$tmp/artifact.txt"
cli "$tmp/put.json" s3api put-object --bucket steppy-artifacts --key "releases/r 1/app+v1.txt" \
    --body "$tmp/artifact.txt" --content-type text/plain --metadata release=r-1
expect "s3api put-object: ETag is the MD5" "$tmp/put.json" \
    "d['ETag'] == '\"%s\"' % __import__('hashlib').md5(b'artifact body\\n').hexdigest()"
cli "$tmp/head.json" s3api head-object --bucket steppy-artifacts --key "releases/r 1/app+v1.txt"
expect "s3api head-object: length, type, metadata" "$tmp/head.json" \
    "d['ContentLength'] == 14 and d['ContentType'] == 'text/plain' and d['Metadata'] == {'release': 'r-1'}"
cli "$tmp/get.json" s3api get-object --bucket steppy-artifacts --key "releases/r 1/app+v1.txt" "$tmp/got.txt"
check "s3api get-object: the same bytes back" cmp "$tmp/artifact.txt" "$tmp/got.txt"
cli "$tmp/put2.json" s3api put-object --bucket steppy-artifacts --key releases/r2.txt --body "$tmp/artifact.txt"
cli "$tmp/put3.json" s3api put-object --bucket steppy-artifacts --key other.txt --body "$tmp/artifact.txt"
cli "$tmp/list.json" s3api list-objects-v2 --bucket steppy-artifacts --prefix releases/ --no-paginate
expect "s3api list-objects-v2 with a prefix" "$tmp/list.json" \
    "[o['Key'] for o in d['Contents']] == ['releases/r 1/app+v1.txt', 'releases/r2.txt'] and d['KeyCount'] == 2"
cli "$tmp/list2.json" s3api list-objects-v2 --bucket steppy-artifacts --max-items 1 --page-size 1
expect "s3api list-objects-v2 pages with continuation tokens" "$tmp/list2.json" \
    "[o['Key'] for o in d['Contents']] == ['other.txt'] and 'NextToken' in d"
cli "$tmp/list3.json" s3api list-objects-v2 --bucket steppy-artifacts --start-after other.txt --delimiter /
expect "s3api list-objects-v2 with start-after and a delimiter" "$tmp/list3.json" \
    "d['CommonPrefixes'] == [{'Prefix': 'releases/'}] and 'Contents' not in d"
cli_fails "s3api get-object of a missing key: NoSuchKey" NoSuchKey \
    s3api get-object --bucket steppy-artifacts --key nope "$tmp/nope.txt"
cli_fails "s3api list-objects-v2 of a missing bucket: NoSuchBucket" NoSuchBucket \
    s3api list-objects-v2 --bucket no-such-bucket
check "aws s3 cp uploads" "$AWS_BIN" --endpoint-url "$BASE" s3 cp "$tmp/artifact.txt" s3://steppy-artifacts/cp/file.txt
check "aws s3 cp downloads" "$AWS_BIN" --endpoint-url "$BASE" s3 cp s3://steppy-artifacts/cp/file.txt "$tmp/cp.txt"
check "aws s3 cp round trip keeps the bytes" cmp "$tmp/artifact.txt" "$tmp/cp.txt"

# --- faults --------------------------------------------------------------------------

control POST /_fake/configure '{"faults": [
  {"service": "codebuild", "operation": "BatchGetBuilds", "kind": "throttle", "count": 1},
  {"service": "codebuild", "operation": "BatchGetBuilds", "kind": "500", "count": 1}]}' >/dev/null
control GET "/_fake/stats" >"$tmp/stats0.json"
before=$(jget "$tmp/stats0.json" "d['operations']['codebuild.BatchGetBuilds']['calls']")
cli "$tmp/retry.json" codebuild batch-get-builds --ids "$BUILD"
expect "the CLI retries through a throttle and a 500 and gets the build" "$tmp/retry.json" \
    "d['builds'][0]['id'] == '$BUILD'"
control GET "/_fake/calls?service=codebuild&operation=BatchGetBuilds" >"$tmp/fcalls.json"
expect "faulted calls are recorded (ThrottlingException 400, InternalFailure 500, then 200)" "$tmp/fcalls.json" \
    "[(c['status'], c['error'], c['fault']) for c in d[-3:]] == [(400, 'ThrottlingException', 'throttle'), \
     (500, 'InternalFailure', '500'), (200, None, None)]"
control GET "/_fake/stats" >"$tmp/stats.json"
expect "stats count calls and faults per operation" "$tmp/stats.json" \
    "d['operations']['codebuild.BatchGetBuilds']['calls'] == $before + 3 \
     and d['operations']['codebuild.BatchGetBuilds']['faults'] >= 2"

control POST /_fake/configure '{"faults": [{"service": "sns", "kind": "throttle"}]}' >/dev/null
CLI_ENV="AWS_MAX_ATTEMPTS=1"
cli_fails "an SNS throttle is the query protocol's Throttling error" Throttling \
    sns publish --topic-arn arn:aws:sns:eu-west-1:111111111111:releases --message x
control POST /_fake/configure '{"faults": [{"service": "s3", "operation": "ListObjectsV2", "kind": "throttle"}]}' >/dev/null
cli_fails "an S3 throttle is SlowDown" SlowDown s3api list-objects-v2 --bucket steppy-artifacts
CLI_ENV=""

control POST /_fake/configure '{"faults": [{"service": "imds", "kind": "drop"}]}' >/dev/null
curl -s -o /dev/null -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$BASE/latest/api/token"
rc=$?
if [ "$rc" -eq 52 ]; then
    ok "a drop fault closes the connection without an answer (curl: empty reply)"
else
    not_ok "a drop fault closes the connection without an answer" "curl exit status $rc"
fi
control POST /_fake/configure '{"faults": [{"service": "imds", "kind": "slow", "seconds": 1}]}' >/dev/null
start=$(date +%s.%N)
curl -s -o /dev/null -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$BASE/latest/api/token"
end=$(date +%s.%N)
if "$PY" -c "import sys; sys.exit(0 if $end - $start >= 0.9 else 1)"; then
    ok "a slow fault delays the answer"
else
    not_ok "a slow fault delays the answer" "took $start .. $end"
fi

# Faults after the work: the build exists, the answer is late or lost.
control POST /_fake/configure '{"codebuild": {"projects": {"once": {"durationSeconds": 60},
                                                "twice": {"durationSeconds": 60}}},
  "faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "drop-after"}]}' >/dev/null
cli "$tmp/once.json" codebuild start-build --project-name once --idempotency-token tok-once-1
ONCE=$(jget "$tmp/once.json" "d['build']['id']")
expect "drop-after: the CLI retries StartBuild (same idempotency token) and gets the build" "$tmp/once.json" \
    "d['build']['projectName'] == 'once' and d['build']['buildNumber'] == 1"
control GET "/_fake/builds?project=once" >"$tmp/once-b.json"
expect "drop-after with an idempotency token: exactly one build exists, the one answered" "$tmp/once-b.json" \
    "[b['id'] for b in d] == ['$ONCE']"
control GET "/_fake/calls?service=codebuild&operation=StartBuild" >"$tmp/once-c.json"
expect "drop-after is recorded: status 0 and fault drop-after, then 200, both with the token" "$tmp/once-c.json" \
    "[(c['status'], c['fault'], c['params'].get('idempotencyToken')) for c in d \
      if c['params']['projectName'] == 'once'] == [(0, 'drop-after', 'tok-once-1'), (200, None, 'tok-once-1')]"
control POST /_fake/configure \
    '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "drop-after"}]}' >/dev/null
cli "$tmp/twice.json" codebuild start-build --project-name twice
control GET "/_fake/builds?project=twice" >"$tmp/twice-b.json"
expect "drop-after without an idempotency token: the retry starts a second build" "$tmp/twice-b.json" \
    "len(d) == 2"

control POST /_fake/configure '{"codebuild": {"projects": {"late": {"durationSeconds": 60}}},
  "faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "slow-after", "seconds": 3}]}' >/dev/null
cli "$tmp/late.json" codebuild start-build --project-name late &
late_pid=$!
late_seen() {
    control GET "/_fake/builds?project=late" >"$tmp/late-b.json" && jtrue "$tmp/late-b.json" "len(d) == 1"
}
if wait_for 10 late_seen && kill -0 "$late_pid" 2>/dev/null; then
    ok "slow-after: the build exists (GET /_fake/builds) while the answer is still held back"
else
    not_ok "slow-after: the build exists while the answer is still held back" "$(cat "$tmp/late-b.json")"
fi
wait "$late_pid"
expect "slow-after: then the answer comes, for that build" "$tmp/late.json" \
    "d['build']['id'] == '$(jget "$tmp/late-b.json" "d[0]['id']")'"
control GET "/_fake/calls?service=codebuild&operation=StartBuild" >"$tmp/late-c.json"
expect "slow-after is recorded with the answer (200, fault slow-after)" "$tmp/late-c.json" \
    "(d[-1]['status'], d[-1]['fault'], d[-1]['params']['projectName']) == (200, 'slow-after', 'late')"

# --- credential chains: IMDSv2 and container credentials --------------------------------

code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/latest/meta-data/iam/security-credentials/")
if [ "$code" = 401 ]; then ok "IMDS without a session token: 401"; else not_ok "IMDS without a session token: 401" "got $code"; fi
itoken=$(curl -sS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$BASE/latest/api/token")
role=$(curl -sS -H "X-aws-ec2-metadata-token: $itoken" "$BASE/latest/meta-data/iam/security-credentials/")
curl -sS -H "X-aws-ec2-metadata-token: $itoken" "$BASE/latest/meta-data/iam/security-credentials/$role" >"$tmp/imds.json"
expect "IMDSv2: token, role name, credentials" "$tmp/imds.json" \
    "d['Code'] == 'Success' and d['AccessKeyId'].startswith('ASIA') and '$role' == 'steppy-instance-role'"

(
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_EC2_METADATA_DISABLED
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$BASE/" cli "$tmp/imds-id.json" sts get-caller-identity
)
expect "the CLI's own credential chain uses the fake IMDSv2" "$tmp/imds-id.json" \
    "d['Arn'] == 'arn:aws:sts::111111111111:assumed-role/steppy-instance-role/i-0fake000000000001'"

control POST /_fake/configure '{"containerAuthToken": "ecs-secret"}' >/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/_fake/container-credentials")
if [ "$code" = 401 ]; then
    ok "container credentials without the auth token: 401"
else
    not_ok "container credentials without the auth token: 401" "got $code"
fi
(
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$BASE/_fake/container-credentials" \
        AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs-secret cli "$tmp/ecs-id.json" sts get-caller-identity
)
expect "the CLI's own credential chain uses the fake container credentials" "$tmp/ecs-id.json" \
    "d['Arn'] == 'arn:aws:sts::111111111111:assumed-role/steppy-task-role/ecs-task'"

# --- no violations from a correct client ------------------------------------------------

control GET /_fake/violations >"$tmp/v0.json"
expect "the AWS CLI caused no violation" "$tmp/v0.json" "d == []"

# --- deliberately bad requests are refused and recorded ----------------------------------

JSON_CT='Content-Type: application/x-amz-json-1.1'
code=$(curl -s -o "$tmp/bad1.out" -w '%{http_code}' --aws-sigv4 aws:amz:eu-west-1:codebuild \
    --user 'AKIDSTEPPYTEST:not-the-secret' -H "$JSON_CT" -H 'X-Amz-Target: CodeBuild_20161006.StartBuild' \
    --data '{"projectName": "web"}' "$BASE/")
if [ "$code" = 403 ] && grep -q InvalidSignatureException "$tmp/bad1.out" \
        && grep -q 'String-to-Sign should have been' "$tmp/bad1.out"; then
    ok "a wrong signature: 403 InvalidSignatureException with the canonical request"
else
    not_ok "a wrong signature: 403 InvalidSignatureException" "$code $(cat "$tmp/bad1.out")"
fi

code=$(curl -s -o "$tmp/bad2.out" -w '%{http_code}' --aws-sigv4 aws:amz:eu-west-1:codebuild \
    --user 'AKIDSTEPPYTEST:steppy/test+secret' -H "$JSON_CT" -H 'X-Amz-Target: CodeBuild_20161006.StartBuild' \
    --data '{"projectName": "web", "sourceVersion": "main", "sourceVerison": "typo"}' "$BASE/")
if [ "$code" = 400 ] && grep -q 'unknown member \\"sourceVerison\\"' "$tmp/bad2.out" \
        && grep -q 'did you mean \\"sourceVersion\\"' "$tmp/bad2.out"; then
    ok "an unknown member: 400 ValidationException naming it"
else
    not_ok "an unknown member: 400 ValidationException naming it" "$code $(cat "$tmp/bad2.out")"
fi

code=$(curl -s -o "$tmp/bad3.out" -w '%{http_code}' --aws-sigv4 aws:amz:eu-west-1:sns \
    --user 'AKIDSTEPPYTEST:steppy/test+secret' \
    --data 'Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aeu-west-1%3A111111111111%3Areleases' "$BASE/")
if [ "$code" = 400 ] && grep -q '<Code>ValidationError</Code>' "$tmp/bad3.out" \
        && grep -q 'missing required member &quot;Message&quot;' "$tmp/bad3.out"; then
    ok "a missing required member (query protocol): 400 ValidationError"
else
    not_ok "a missing required member (query protocol): 400 ValidationError" "$code $(cat "$tmp/bad3.out")"
fi

code=$(curl -s -o "$tmp/bad4.out" -w '%{http_code}' -H "$JSON_CT" \
    -H 'X-Amz-Target: CodeBuild_20161006.BatchGetBuilds' --data '{"ids": ["web:1"]}' "$BASE/")
if [ "$code" = 403 ] && grep -q MissingAuthenticationTokenException "$tmp/bad4.out"; then
    ok "an unsigned request: 403 MissingAuthenticationTokenException"
else
    not_ok "an unsigned request: 403 MissingAuthenticationTokenException" "$code $(cat "$tmp/bad4.out")"
fi

CLI_ENV="AWS_ACCESS_KEY_ID=$TMP_AK AWS_SECRET_ACCESS_KEY=$TMP_SK"
cli_fails "temporary credentials without their session token are refused" UnrecognizedClientException \
    codebuild batch-get-builds --ids "$BUILD"
CLI_ENV=""

control GET /_fake/violations >"$tmp/v1.json"
expect "the deliberate violations are recorded, each with its kind" "$tmp/v1.json" \
    "[v['kind'] for v in d] == ['signature', 'model', 'model', 'unsigned', 'signature'] \
     and d[0]['operation'] == 'StartBuild' and 'sourceVerison' in d[1]['message']"

control DELETE /_fake/violations >/dev/null
control GET /_fake/violations >"$tmp/v2.json"
expect "violations reset" "$tmp/v2.json" "d == []"

# --- reset -------------------------------------------------------------------------

control POST /_fake/reset >/dev/null
control GET /_fake/calls >"$tmp/calls-after.json"
expect "reset forgets the calls" "$tmp/calls-after.json" "d == []"
CLI_ENV="AWS_ACCESS_KEY_ID=$TMP_AK AWS_SECRET_ACCESS_KEY=$TMP_SK AWS_SESSION_TOKEN=$TMP_ST"
cli_fails "reset forgets temporary credentials" UnrecognizedClientException \
    codebuild batch-get-builds --ids "$BUILD"
CLI_ENV=""
control DELETE /_fake/violations >/dev/null

control GET /_fake/violations >"$tmp/v3.json"
expect "no violations left at the end" "$tmp/v3.json" "d == []"

if grep -q 'VIOLATION \[fake-bug\]' "$tmp/fake.err"; then
    not_ok "the fake reported no bug of its own" "$(grep -A5 'fake-bug' "$tmp/fake.err")"
else
    ok "the fake reported no bug of its own"
fi

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
