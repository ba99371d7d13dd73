#!/bin/sh
# t0079: secrets given to a plan stay out of sight. An Http step's
# credential header (Authorization, Cookie, X-Api-Key, ...) without
# `secret: true` is refused by validate, plan and run with file:line:col
# (the rule channels use); --var-file NAME=FILE passes a value that is in
# neither ps nor the shell history; history --format json with another
# key says the secrets are unavailable without naming the key file.
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"
status=0 out="" err=""

cat >"$tmp/clear.yaml" <<'PLAN'
variables:
  TOK: {}
stages:
  - name: s
    steps:
      - type: Http
        name: call
        url: http://127.0.0.1:9/x
        headers:
          Authorization: "Bearer ${var.TOK}"
          x-api-key: {value: "${var.TOK}", secret: false}
          X-Trace: "plain"
PLAN

begin 'validate refuses credential headers not marked secret, with file:line:col'
run "$STEPPY" validate "$tmp/clear.yaml"
expect_status 1
expect_err_contains "clear.yaml:10:11: error:"
expect_err_contains "the Authorization header carries a credential"
expect_err_contains "clear.yaml:11:11: error:"
expect_err_contains "the x-api-key header carries a credential"
expect_err_lacks "X-Trace"
end

begin 'plan refuses it too, and prints no header value'
run "$STEPPY" plan --var TOK=hunter2-secret "$tmp/clear.yaml"
[ "$status" -ne 0 ] || problem "plan accepted a clear credential header"
expect_out_lacks "hunter2-secret"
expect_err_lacks "hunter2-secret"
end

cat >"$tmp/echo.yaml" <<'PLAN'
variables:
  WHO: {}
stages:
  - name: s
    steps:
      - {type: Exec, name: hi, command: ["echo", "hello ${var.WHO}"]}
PLAN

begin '--var-file NAME=FILE gives the file text as the value (final line end left out)'
printf 'from-a-file\n' >"$tmp/who.txt"
run "$STEPPY" plan --var-file WHO="$tmp/who.txt" "$tmp/echo.yaml"
expect_status 0
expect_out_contains "hello from-a-file"
expect_out_lacks "from-a-file
\""
run "$STEPPY" run --var-file "WHO=$tmp/who.txt" "$tmp/echo.yaml"
expect_status 0
end

begin '--var-file with a missing file or no NAME= is a usage error naming it'
run "$STEPPY" plan --var-file WHO="$tmp/nope.txt" "$tmp/echo.yaml"
expect_status 2
expect_err_contains "--var-file WHO: $tmp/nope.txt"
run "$STEPPY" plan --var-file "$tmp/who.txt" "$tmp/echo.yaml"
expect_status 2
expect_err_contains "--var-file takes NAME=FILE"
end

cat >"$tmp/sealed.yaml" <<'PLAN'
variables:
  PW: {}
stages:
  - name: s
    steps:
      - type: Http
        name: call
        url: http://127.0.0.1:9/x
        headers:
          Authorization: {value: "Bearer ${var.PW}", secret: true}
PLAN

begin 'history --format json with another key says the secrets are unavailable, not where the key is'
head -c 32 /dev/urandom >"$tmp/a.key"
head -c 32 /dev/urandom >"$tmp/b.key"
chmod 600 "$tmp/a.key" "$tmp/b.key"
STEPPY_SECRET_KEY_FILE="$tmp/a.key" run "$STEPPY" run --db "$tmp/sealed.db" --var PW=s3cr3t-value "$tmp/sealed.yaml"
[ -s "$tmp/sealed.db" ] || problem "run stored nothing: $err"
id=$(STEPPY_SECRET_KEY_FILE="$tmp/a.key" "$STEPPY" list --db "$tmp/sealed.db" --format json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')
STEPPY_SECRET_KEY_FILE="$tmp/b.key" run "$STEPPY" history --db "$tmp/sealed.db" --format json "$id"
expect_out_contains "secretsUnavailable"
expect_out_lacks "$tmp/b.key"
expect_out_lacks "s3cr3t-value"
rm -f "$tmp/b.key"
STEPPY_SECRET_KEY_FILE="$tmp/b.key" run "$STEPPY" history --db "$tmp/sealed.db" --format json "$id"
expect_out_contains "secretsUnavailable"
expect_out_lacks "$tmp/b.key"
end

finish
