#!/bin/sh
# t0002: steppy validate on good and bad plans, text and JSON output.
. "$(dirname "$0")/lib.sh"
orig="$repo/tests/plans/valid/original.jsonc"

cat >"$tmp/bad.json" <<'PLAN'
{
  "stages": [
    {
      "name": "Build",
      "steps": [
        { "type": "CodeBuld", "name": "b", "codeBuildName": "proj" },
        { "type": "Wait", "name": "w", "seconds": 40000000 }
      ]
    }
  ]
}
PLAN

begin 'the original example plan is valid'
run "$STEPPY" validate "$orig"
expect_status 0
expect_out_contains 'original.jsonc: valid (3 stages, 6 steps)'
end

begin 'every example in examples/ is valid'
for f in "$repo"/examples/*; do
    run "$STEPPY" validate "$f"
    [ "$status" -eq 0 ] || problem "$f: $err"
done
end

begin 'an invalid plan: every error with file:line:col, pointer, message, source line'
run "$STEPPY" validate "$tmp/bad.json"
expect_status 1
expect_err_contains "bad.json:6:19: error: /stages/0/steps/0/type: unknown step type \"CodeBuld\"; did you mean \"CodeBuild\"?"
expect_err_contains "bad.json:7:51: error: /stages/0/steps/1/seconds: \"seconds\" must be between 0 and 31536000 seconds (365d), found 40000000"
expect_err_contains '  |         { "type": "CodeBuld"'
expect_err_contains 'bad.json: 2 errors'
end

begin '--format json prints the same diagnostics as one document'
run "$STEPPY" validate --format json "$tmp/bad.json" "$orig"
expect_status 1
expect_json 'd["valid"] is False and d["errorCount"] == 2 and len(d["files"]) == 2'
expect_json 'd["files"][0]["diagnostics"][0] == {"severity": "error", "file": d["files"][0]["file"], "line": 6, "column": 19, "pointer": "/stages/0/steps/0/type", "message": "unknown step type \"CodeBuld\"; did you mean \"CodeBuild\"?", "suggestion": "CodeBuild"}'
expect_json 'd["files"][1]["valid"] is True and d["files"][1]["stages"] == 3 and d["files"][1]["steps"] == 6'
end

begin 'a syntax error has no pointer in JSON output'
printf '{"stages": [}\n' >"$tmp/syntax.json"
run "$STEPPY" validate --format json "$tmp/syntax.json"
expect_status 1
expect_json 'd["files"][0]["diagnostics"][0]["pointer"] is None and d["files"][0]["diagnostics"][0]["line"] == 1 and d["files"][0]["diagnostics"][0]["column"] == 13'
end

begin 'a missing file exits 2 and says why'
run "$STEPPY" validate "$tmp/nope.json"
expect_status 2
expect_err_contains 'nope.json: error: cannot read plan: No such file or directory'
end

begin 'one unreadable file among valid ones: exit 2 wins over 1'
run "$STEPPY" validate "$orig" "$tmp/bad.json" "$tmp/nope.json"
expect_status 2
end

begin 'validate without files is a usage error'
run "$STEPPY" validate
expect_status 2
expect_err_contains 'at least one plan'
end

begin '--format with a bad value is a usage error'
run "$STEPPY" validate --format xml "$orig"
expect_status 2
expect_err_contains '--format must be text or json'
end

begin 'validate - reads standard input (YAML detected by content)'
printf 'stages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 1}\n' >"$tmp/in.yaml"
"$STEPPY" validate - <"$tmp/in.yaml" >"$tmp/out" 2>"$tmp/err"
status=$?
out=$(cat "$tmp/out")
err=$(cat "$tmp/err")
expect_status 0
expect_out_contains '<stdin>: valid (1 stage, 1 step)'
end

begin 'no colour when output is not a terminal'
run "$STEPPY" validate "$tmp/bad.json"
expect_err_lacks "$(printf '\033[')"
end

if command -v script >/dev/null 2>&1; then
    begin 'colour on a terminal, none with NO_COLOR'
    script -qec "$STEPPY validate $tmp/bad.json" /dev/null >"$tmp/tty" 2>&1
    grep -q "$(printf '\033')\[1;31merror" "$tmp/tty" || problem "no colour on a TTY"
    NO_COLOR=1 script -qec "$STEPPY validate $tmp/bad.json" /dev/null >"$tmp/tty" 2>&1
    grep -q "$(printf '\033')\[" "$tmp/tty" && problem "colour despite NO_COLOR"
    grep -q 'bad.json:6:19: error:' "$tmp/tty" || problem "no diagnostics on the TTY"
    status=0 out="" err=""
    end
fi

begin '--var values are substituted and checked'
cat >"$tmp/vars.json" <<'PLAN'
{
  "variables": { "REGION": { "default": "eu-west-1" } },
  "stages": [{ "name": "s", "steps": [
    { "type": "Lambda", "name": "l", "functionName": "f", "region": "${var.REGION}" }
  ]}]
}
PLAN
run "$STEPPY" validate "$tmp/vars.json"
expect_status 0
run "$STEPPY" validate --var REGION=moon-1 "$tmp/vars.json"
expect_status 1
expect_err_contains '/stages/0/steps/0/region: "moon-1" is not an AWS region name such as us-east-1 or eu-west-2 (after substituting variables)'
run "$STEPPY" validate --var REGON=x "$tmp/vars.json"
expect_status 2
expect_err_contains 'the plan declares no variable "REGON"; did you mean "REGION"?'
end


begin 'minApprovals that a release by one of the approvers cannot reach is a warning, not an error'
cat >"$tmp/selfish.yaml" <<'PLAN'
stages:
  - name: Sign-off
    steps:
      - type: Human
        name: Two of two
        message: Go?
        approvers: [alice, bob]
        minApprovals: 2
PLAN
run "$STEPPY" validate "$tmp/selfish.yaml"
expect_status 0
expect_err_contains 'selfish.yaml:8:23: warning: /stages/0/steps/0/minApprovals: a release started by one of the 2 "approvers" cannot get its 2 approvals: allowSelfApproval is false'
end

begin '--config: channels of Human and Notify steps must be the server'\''s, with "did you mean"'
cat >"$tmp/serve.yaml" <<'CONF'
channels:
  releases: {type: log, path: /dev/null}
  ops: {type: log, path: /dev/null}
CONF
cat >"$tmp/chan.yaml" <<'PLAN'
stages:
  - name: prod
    steps:
      - {type: Human, name: go, message: "?", channels: [relases, ops]}
      - {type: Notify, name: tell, message: hi, channels: [terminl, log, ops, "arn:aws:sns:eu-west-1:123456789012:t"]}
PLAN
run "$STEPPY" validate --config "$tmp/serve.yaml" "$tmp/chan.yaml"
expect_status 1
expect_err_contains 'chan.yaml:4:58: error: /stages/0/steps/0/channels/0: no channel "relases" is configured ('
expect_err_contains 'serve.yaml has releases, ops); did you mean "releases"?'
expect_err_contains 'chan.yaml:5:60: error: /stages/0/steps/1/channels/0: no channel "terminl" is configured ('
expect_err_contains 'serve.yaml has releases, ops); did you mean "terminal"?'
expect_err_contains 'chan.yaml: 2 errors'
run "$STEPPY" validate "$tmp/chan.yaml"
expect_status 0
run "$STEPPY" validate --config "$tmp/nonexistent.yaml" "$tmp/chan.yaml"
expect_status 2
end

finish
