#!/bin/sh
# t0003: steppy plan and steppy graph.
. "$(dirname "$0")/lib.sh"
orig="$repo/tests/plans/valid/original.jsonc"

cat >"$tmp/release.jsonc" <<'PLAN'
{
  "name": "Payments 2.4",
  "environmentName": "production",
  "variables": {
    "VERSION": { "description": "the release tag" },
    "BRANCH": { "default": "main" }
  },
  "defaults": {
    "region": "eu-west-1",
    "roleArn": "arn:aws:iam::111122223333:role/deployer",
    "retry": { "maxAttempts": 2 }
  },
  "stages": [
    {
      "name": "Build \"all\"",
      "failFast": true,
      "steps": [
        { "type": "CodeBuild", "name": "api", "codeBuildName": "payments-api",
          "sourceVersion": { "type": "tag", "value": "v${var.VERSION}" },
          "environmentVariableOverrides": [
            { "name": "STAGE", "value": "prod" },
            { "name": "DB_PASSWORD", "value": "prod/db", "type": "SECRETS_MANAGER" }
          ] },
        { "type": "CodeBuild", "name": "web", "codeBuildName": "payments-web",
          "sourceVersion": "${var.BRANCH}", "region": "us-east-1",
          "roleArn": "arn:aws:iam::444455556666:role/web-deployer", "timeoutSeconds": 3600 }
      ]
    },
    { "name": "Approve", "steps": [
      { "type": "Human", "name": "go", "message": "Ship ${var.VERSION}?", "approvers": ["alice", "bob"] }
    ] }
  ]
}
PLAN

begin 'plan shows variables, accounts, regions, roles, sources'
run "$STEPPY" plan --var VERSION=2.4.0 "$tmp/release.jsonc"
expect_status 0
expect_out_contains 'Payments 2.4'
expect_out_contains 'production'
expect_out_contains 'VERSION = 2.4.0  (--var)'
expect_out_contains 'BRANCH = main  (default)'
expect_out_contains 'source       tag v2.4.0'
expect_out_contains 'account      111122223333 (assumes arn:aws:iam::111122223333:role/deployer)'
expect_out_contains 'account      444455556666 (assumes arn:aws:iam::444455556666:role/web-deployer)'
expect_out_contains 'region       eu-west-1'
expect_out_contains 'region       us-east-1'
expect_out_contains 'DB_PASSWORD from Secrets Manager prod/db'
expect_out_contains 'timeout      1h'
expect_out_contains 'retry        up to 2 attempts'
expect_out_contains 'message      Ship 2.4.0?'
expect_out_contains 'approvals    1 of alice, bob; not the person who started the release'
expect_out_contains 'fail fast'
end

begin 'plan needs a value for a variable without default'
run "$STEPPY" plan "$tmp/release.jsonc"
expect_status 2
expect_err_contains 'variable "VERSION" has no default; give it a value with --var VERSION=VALUE'
end

begin 'plan rejects a --var the plan does not declare'
run "$STEPPY" plan --var VERSON=1 "$tmp/release.jsonc"
expect_status 2
expect_err_contains 'did you mean "VERSION"?'
end

begin 'plan --format json: the bound plan with defaults applied'
run "$STEPPY" plan --format json --var VERSION=2.4.0 "$tmp/release.jsonc"
expect_status 0
expect_json 'd["variables"] == {"VERSION": "2.4.0", "BRANCH": "main"}'
expect_json 'd["stages"][0]["steps"][0]["region"] == "eu-west-1" and d["stages"][0]["steps"][1]["region"] == "us-east-1"'
expect_json 'd["stages"][0]["steps"][0]["sourceVersion"] == {"type": "tag", "value": "v2.4.0"}'
expect_json 'd["stages"][0]["steps"][0]["retry"]["maxAttempts"] == 2 and "retry" not in d["stages"][1]["steps"][0]'
expect_json '"defaults" not in d'
end

begin 'plan of an invalid plan shows diagnostics and exits 1'
printf '{"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w"}]}]}' >"$tmp/bad.json"
run "$STEPPY" plan "$tmp/bad.json"
expect_status 1
expect_err_contains 'bad.json:1:37: error: /stages/0/steps/0: a Wait step needs "seconds" or "until"'
end

begin 'graph prints Mermaid with one subgraph per stage, in order'
run "$STEPPY" graph "$orig"
expect_status 0
case "$out" in "flowchart TD"*) ;; *) problem "not a flowchart" ;; esac
[ "$(printf '%s\n' "$out" | grep -c '^    subgraph ')" -eq 3 ] || problem "expected 3 subgraphs"
expect_out_contains 's1_1["CodeBuild: Step 1 - CodeBuild"]'
expect_out_contains 'start --> s1'
expect_out_contains 's1 --> s2'
expect_out_contains 's3 --> finish'
end

begin 'graph escapes quotes in names'
run "$STEPPY" graph --var VERSION=1 "$tmp/release.jsonc"
expect_status 0
expect_out_contains 'subgraph s1["Stage 1: Build #quot;all#quot;"]'
run "$STEPPY" graph --dot --var VERSION=1 "$tmp/release.jsonc"
expect_status 0
expect_out_contains 'label="Stage 1: Build \"all\"";'
end

begin 'graph --dot prints a digraph with a cluster per stage'
run "$STEPPY" graph --dot "$orig"
expect_status 0
case "$out" in "digraph release {"*) ;; *) problem "not a digraph" ;; esac
[ "$(printf '%s\n' "$out" | grep -c 'subgraph cluster_')" -eq 3 ] || problem "expected 3 clusters"
expect_out_contains 's1_1 -> s2_1 [ltail=cluster_1, lhead=cluster_2];'
if command -v dot >/dev/null 2>&1; then
    printf '%s\n' "$out" | dot -Tsvg >/dev/null || problem "dot rejects the graph"
fi
end

finish
