#!/bin/sh
# t0061: the log of steppy serve - one line per event that matters on
# stderr (text, or JSON with --log-format json), and no secret in any line:
# API tokens, Authorization headers, approval links' tokens, a plan's
# secret: true values, the secrets of the server's environment. Real HTTP on
# loopback, the real binary, the fake AWS endpoint for a CodeBuild step.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
start_fake_aws
export HOME="$tmp/home"
mkdir -p "$HOME"

mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
OPS=$(mk ops operator)
ALICE=$(mk alice approver)
VIEW=$(mk viewer viewer)
{
    echo "tokens:"
    for n in ops alice viewer; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
    echo "exec: {enabled: true}"
    echo "channels:"
    echo "  audit: {type: log, path: $tmp/audit.log}"
    echo "defaultChannels: [audit]"
} >"$tmp/config.yaml"

ENV_SECRET=env-secret-value-0192
PLAN_SECRET=plan-secret-value-8364
/usr/bin/python3 - "$tmp/body.json" "$PLAN_SECRET" <<'EOF'
import json, sys
plan = {"name": "orders", "environmentName": "staging",
        "variables": {"KEY": {"description": "a key"}},
        "stages": [
            {"name": "build", "steps": [{"type": "Exec", "name": "compile", "command": ["sh", "-c", "echo \"key=$K\""], "env": {"K": "${var.KEY}"}}]},
            {"name": "go", "steps": [{"type": "Human", "name": "ship", "message": "Ship?", "approvers": ["alice"]}]},
            {"name": "deploy", "steps": [{"type": "CodeBuild", "name": "b", "codeBuildName": "no-such-project",
                                          "environmentVariableOverrides": [{"name": "KEY", "value": "k-${var.KEY}", "secret": True}]}]}]}
json.dump({"plan": plan, "variables": {"KEY": sys.argv[2]}, "name": "orders.json"}, open(sys.argv[1], "w"))
EOF

STEPPY_TEST_SECRET=$ENV_SECRET "$STEPPY" serve --config "$tmp/config.yaml" --listen 127.0.0.1:0 \
    --db "$db" --log-format json >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
trap 'kill $server_pid $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while ! grep -q 'listening on' "$tmp/serve.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.out")

post() { # TOKEN PATH BODY-FILE: prints the HTTP status, body in $tmp/body
    curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' --data-binary @"$3" "$url$2"
}
get_status() {
    curl -s -H "Authorization: Bearer $VIEW" "$url/api/v1/executions/$1" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null
}

begin 'a release, a decision and refusals each make JSON log lines on stderr'
status=$(post "$OPS" /api/v1/executions "$tmp/body.json")
[ "$status" = 201 ] || problem "submit answered $status: $(cat "$tmp/body")"
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/body")
i=0
while ! grep -q '/approvals/' "$tmp/audit.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# refused: an unknown token, a viewer submitting, an approval link's token guessed
curl -s -o /dev/null -H "Authorization: Bearer stp_not-a-token-5555" "$url/api/v1/executions"
status=$(post "$VIEW" /api/v1/executions "$tmp/body.json")
[ "$status" = 403 ] || problem "a viewer's submit answered $status"
echo '{"comment": "go"}' >"$tmp/approve.json"
status=$(post "$ALICE" "/api/v1/executions/$id/steps/1/0/approve" "$tmp/approve.json")
[ "$status" = 200 ] || problem "approve answered $status: $(cat "$tmp/body")"
i=0
while [ "$(get_status "$id")" = RUNNING ] || [ "$(get_status "$id")" = WAITING ]; do
    [ $i -lt 150 ] || break
    sleep 0.1
    i=$((i + 1))
done
kill -TERM $server_pid
wait $server_pid
/usr/bin/python3 - "$tmp/serve.err" "$id" <<'EOF' || problem "log lines: $(cat "$tmp/serve.err")"
import json, sys
lines = [l for l in open(sys.argv[1]).read().split("\n") if l]
events = []
for l in lines:
    d = json.loads(l)          # every line is one JSON object
    assert {"time", "level", "event"} <= set(d), l
    events.append(d)
names = [e["event"] for e in events]
rid = sys.argv[2]
def has(ev, **kw):
    return any(e["event"] == ev and all(e.get(k) == v for k, v in kw.items()) for e in events)
assert has("release.started", release=rid, plan="orders", environment="staging", by="ops"), names
assert has("step.started", release=rid, step="compile", type="Exec"), names
assert has("step.ended", release=rid, step="compile", status="SUCCEEDED"), names
assert has("decision", release=rid, step="ship", decision="approve", by="alice"), names
assert has("step.started", release=rid, step="b", type="CodeBuild"), names
assert has("step.ended", release=rid, step="b", status="SUCCEEDED"), names
assert has("release.ended", release=rid, status="SUCCEEDED"), names
assert has("request.refused", status="401", path="/api/v1/executions"), names
assert has("request.refused", status="403", identity="viewer"), names
EOF
end

begin 'no secret in any log line (stdout or stderr)'
link_token=$(sed -n 's|.*/approvals/\([A-Za-z0-9_-]*\).*|\1|p' "$tmp/audit.log" | head -1)
[ -n "$link_token" ] || problem "no approval link in the audit channel: $(cat "$tmp/audit.log")"
for s in "$OPS" "$ALICE" "$VIEW" stp_not-a-token-5555 'Bearer stp_' "$PLAN_SECRET" \
    "$ENV_SECRET" ${link_token:+"$link_token"}; do
    grep -qF -- "$s" "$tmp/serve.err" && problem "stderr has $s: $(grep -F -- "$s" "$tmp/serve.err")"
    grep -qF -- "$s" "$tmp/serve.out" && problem "stdout has $s"
done
end

begin 'text is the default: one line per event; a link'"'"'s token is left out of its path'
"$STEPPY" serve --config "$tmp/config.yaml" --listen 127.0.0.1:0 --db "$db" \
    >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
i=0
while ! grep -q 'listening on' "$tmp/serve.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.out")
curl -s -o /dev/null -H "Authorization: Bearer nope" "$url/api/v1/executions"
curl -s -o /dev/null -X POST -H 'Origin: https://evil.example' "$url/approvals/secret-link-token-77"
kill -TERM $server_pid
wait $server_pid
grep -q '^steppy serve: request.refused status=401 code=unauthenticated method=GET path=/api/v1/executions' "$tmp/serve.err" ||
    problem "no text line: $(cat "$tmp/serve.err")"
grep -q '^steppy serve: request.refused status=403 code=cross-origin method=POST path=/approvals/\.\.\. ' "$tmp/serve.err" ||
    problem "no refusal of the link: $(cat "$tmp/serve.err")"
grep -q 'secret-link-token-77' "$tmp/serve.err" "$tmp/serve.out" && problem "a link's token reached the log"
end

begin '--log-format takes text or json'
run "$STEPPY" serve --log-format xml --db "$db"
expect_status 2
expect_err_contains '--log-format takes text or json, not "xml"'
end

finish
