#!/bin/sh
# t0012: deciding through steppy serve (--server URL with an API token), and
# a served store refusing local decisions on steps with approvers unless
# forced. A real server on loopback, real tokens, a real SQLite store.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
OPS=$(mk ops operator)
ALICE=$(mk alice approver)
BOB=$(mk bob approver)
VIEW=$(mk viewer viewer)
{
    echo "tokens:"
    for n in ops alice bob viewer; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
} >"$tmp/config.yaml"

start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
[ -n "$url" ] || { echo "the server did not start"; cat "$tmp/serve.log"; exit 1; }

# submit: starts the plan as ops; prints the release id
submit() {
    curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' \
        --data-binary '{"plan": {"name": "orders", "stages": [{"name": "go", "steps": [{"type": "Human", "name": "Prod go", "message": "ship?", "approvers": ["alice", "bob"]}]}]}}' \
        "$url/api/v1/executions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
# wait_for ID TEXT: polls the release's report until it contains TEXT (10 s at most)
wait_for() {
    i=0
    while [ $i -lt 100 ]; do
        body=$(curl -s -H "Authorization: Bearer $VIEW" "$url/api/v1/executions/$1")
        case "$body" in *"$2"*) return 0 ;; esac
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

id=$(submit)
wait_for "$id" '"waitingFor":"approval' || echo "release $id does not wait"
short=$(printf '%s' "$id" | cut -c1-6)

begin 'a bad token is refused: 401 with the server JSON error, nothing recorded'
STEPPY_TOKEN=stp_not_a_token run "$STEPPY" approve --server "$url" "$id" 'Prod go'
expect_status 1
expect_err_contains "$url refused the token (401)"
expect_err_contains '"code":"unauthenticated"'
run "$STEPPY" history --db "$db" --format json "$id"
expect_out_lacks 'HumanDecision'
end

begin 'a token without the role is refused: 403 with the server JSON error'
STEPPY_TOKEN=$VIEW run "$STEPPY" approve --server "$url" "$id" 'Prod go'
expect_status 1
expect_err_contains '(403)'
expect_err_contains '"code":"forbidden"'
end

begin 'an unreachable server is named'
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server http://127.0.0.1:1 "$id" 'Prod go'
expect_status 2
expect_err_contains 'cannot reach steppy serve at http://127.0.0.1:1'
run "$STEPPY" approve --server ftp://example "$id" 'Prod go'
expect_status 2
expect_err_contains '--server takes the URL of steppy serve'
end

begin 'an unknown release is 404; an unknown step gets "did you mean"'
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server "$url" zzzzzzzzzz 'Prod go'
expect_status 2
expect_err_contains "$url has no release \"zzzzzzzzzz\""
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server "$url" "$id" 'Prod-go'
expect_status 2
expect_err_contains 'the release has no step "Prod-go"; did you mean "Prod go"?'
end

begin '--by does not go with --server; --token-file needs --server'
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server "$url" --by alice "$id" 'Prod go'
expect_status 2
expect_err_contains '--by does not go with --server'
run "$STEPPY" approve --token-file /dev/null --db "$db" "$id" 'Prod go'
expect_status 2
expect_err_contains '--token-file goes with --server'
end

begin 'a token file others can read is refused, as ssh does'
printf '%s\n' "$ALICE" >"$tmp/alice.token"
chmod 644 "$tmp/alice.token"
run "$STEPPY" approve --server "$url" --token-file "$tmp/alice.token" "$id" 'Prod go'
expect_status 2
expect_err_contains "the token file $tmp/alice.token can be read by others (mode 0644)"
end

begin 'local decisions on a served store are refused for steps with approvers'
run "$STEPPY" approve --db "$db" --by alice "$id" 'Prod go'
expect_status 1
expect_err_contains "used by steppy serve with API tokens ($url)"
expect_err_contains "steppy approve --server $url $id 'Prod go'"
expect_err_contains '--force'
run "$STEPPY" reject --db "$db" --by bob "$id" 'Prod go'
expect_status 1
end

begin 'local decisions on a served store are refused for steps needing several people, without approvers'
nid=$(curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' \
    --data-binary '{"plan": {"stages": [{"name": "go", "steps": [{"type": "Human", "name": "Two", "message": "?", "minApprovals": 2}]}]}}' \
    "$url/api/v1/executions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for "$nid" '"waitingFor":"approval' || problem "release $nid does not wait"
run "$STEPPY" approve --db "$db" --by x1 "$nid" Two
expect_status 1
expect_err_contains 'depends on who decides'
run "$STEPPY" history --db "$db" --format json "$nid"
expect_json 'not [e for e in d["events"] if e["type"] == "HumanDecision"]'
STEPPY_TOKEN=$OPS run "$STEPPY" abort --server "$url" "$nid"
end

begin 'approve --server: a prefix and any case; recorded under the token name, via api'
chmod 600 "$tmp/alice.token"
env -u STEPPY_TOKEN "$STEPPY" approve --server "$url/" --token-file "$tmp/alice.token" \
    --comment 'looks good' "$short" 'prod GO' >"$tmp/out" 2>"$tmp/err"
status=$?; out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
expect_status 0
expect_out_contains "approved \"Prod go\" of release $id"
wait_for "$id" '"status":"SUCCEEDED"' || problem "the release did not succeed"
run "$STEPPY" history --db "$db" --format json "$id"
expect_json '[e["data"] for e in d["events"] if e["type"] == "HumanDecision"][0]["by"] == "alice"'
expect_json '[e["data"] for e in d["events"] if e["type"] == "HumanDecision"][0]["via"] == "api"'
expect_json '[e["data"] for e in d["events"] if e["type"] == "HumanDecision"][0]["comment"] == "looks good"'
end

begin 'a change the server refuses is 409 with its message'
STEPPY_TOKEN=$OPS run "$STEPPY" abort --server "$url" "$id"
expect_status 1
expect_err_contains "refused by $url"
expect_err_contains 'ended'
end

begin 'minApprovals through the server: each approval but the last says how far the step got'
mid=$(curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' \
    --data-binary '{"plan": {"stages": [{"name": "go", "steps": [{"type": "Human", "name": "Two", "message": "?", "approvers": ["alice", "bob"], "minApprovals": 2}]}]}}' \
    "$url/api/v1/executions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for "$mid" '"waitingFor":"approval' || problem "release $mid does not wait"
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server "$url" "$mid" two
expect_status 0
expect_out_contains "approval 1 of 2 recorded for \"Two\" of release $mid"
STEPPY_TOKEN=$ALICE run "$STEPPY" approve --server "$url" "$mid" two
expect_status 1
expect_err_contains "refused by $url"
STEPPY_TOKEN=$BOB run "$STEPPY" approve --server "$url" "$mid" two
expect_status 0
expect_out_contains "approved \"Two\" of release $mid"
end

begin '--force decides locally and records the OS user'
id2=$(submit)
wait_for "$id2" '"waitingFor":"approval' || problem "release $id2 does not wait"
run "$STEPPY" approve --db "$db" --by bob --force "$id2" 'Prod go'
expect_status 0
wait_for "$id2" '"status":"SUCCEEDED"' || problem "the release did not succeed"
run "$STEPPY" history --db "$db" --format json "$id2"
expect_json '[e["data"] for e in d["events"] if e["type"] == "HumanDecision"][0]["forced"] == "locally by OS user '"$(id -un)"'"'
expect_json '[e["data"] for e in d["events"] if e["type"] == "HumanDecision"][0]["by"] == "bob"'
end

begin 'reject, abort and retry through the server'
id3=$(submit)
wait_for "$id3" '"waitingFor":"approval' || problem "release $id3 does not wait"
STEPPY_TOKEN=$BOB run "$STEPPY" reject --server "$url" --comment no "$id3" 'go/Prod go'
expect_status 0
expect_out_contains "rejected \"Prod go\" of release $id3"
wait_for "$id3" '"status":"REJECTED"' || problem "the release was not rejected"
id4=$(submit)
wait_for "$id4" '"waitingFor":"approval' || problem "release $id4 does not wait"
STEPPY_TOKEN=$ALICE run "$STEPPY" abort --server "$url" "$id4"
expect_status 1
expect_err_contains '(403)'
STEPPY_TOKEN=$OPS run "$STEPPY" abort --server "$url" --reason 'wrong tag' "$id4"
expect_status 0
expect_out_contains "aborted release $id4"
wait_for "$id4" '"status":"ABORTED"' || problem "the release was not aborted"
STEPPY_TOKEN=$OPS run "$STEPPY" retry --server "$url" "$id4"
expect_status 0
expect_out_contains "continues release $id4"
wait_for "$id4" '"waitingFor":"approval' || problem "the release did not continue"
run "$STEPPY" history --db "$db" --format json "$id4"
expect_json '[e["data"] for e in d["events"] if e["type"] == "AbortRequested"][0]["by"] == "ops"'
end

# run_bg DB: runs plan.yaml in the background into $tmp/run.out; waits for its
# reject hint; sets $run_pid and $run_id
cat >"$tmp/plan.yaml" <<'EOF'
name: hints
stages:
  - name: go
    steps:
      - {type: Human, name: "Bob's go", message: "ship?", approvers: [alice, bob]}
EOF
run_bg() {
    "$STEPPY" run --db "$1" "$tmp/plan.yaml" >"$tmp/run.out" 2>&1 &
    run_pid=$!
    i=0
    while ! grep -q 'reject:' "$tmp/run.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    run_id=$(sed -n 's/.*release \([0-9a-z]*\) "hints" started.*/\1/p' "$tmp/run.out")
}

begin 'the live view: a step with approvers is decided with --by (quoted for the shell)'
run_bg "$tmp/fresh.db"
out=$(cat "$tmp/run.out")
expect_out_contains '      approvers: alice, bob'
# the store as --db named it, so that the line works when copied elsewhere
expect_out_contains "approve: steppy approve --by NAME --db '$tmp/fresh.db' $run_id 'Bob'\''s go'"
expect_out_contains "reject:  steppy reject --by NAME --db '$tmp/fresh.db' $run_id 'Bob'\''s go'"
"$STEPPY" approve --db "$tmp/fresh.db" --by bob --force "$run_id" "Bob's go" >/dev/null 2>&1 ||
    problem "the hint's command did not approve"
wait "$run_pid" || problem "the run did not succeed"
# --force on a store no server with tokens uses overrides nothing: not recorded
run "$STEPPY" history --db "$tmp/fresh.db" "$run_id"
expect_out_lacks 'forced'
end

begin 'the live view on a served store shows the --server form'
run_bg "$db"
out=$(cat "$tmp/run.out")
# (it failed twice on loaded machines, not reproduced since: say what the run printed)
case "$out" in *"--server $url"*) ;; *) problem "the run printed: $(head -c 1500 "$tmp/run.out"); serve log: $(tail -5 "$tmp/serve.log")" ;; esac
expect_out_contains "approve: steppy approve --server $url $run_id 'Bob'\''s go'"
expect_out_contains 'API token of an approver in $STEPPY_TOKEN'
STEPPY_TOKEN=$BOB "$STEPPY" approve --server "$url" "$run_id" "bob's GO" >/dev/null 2>&1 ||
    problem "the hint's command did not approve"
wait "$run_pid" || problem "the run did not succeed"
end

begin 'a hostile server: escape sequences in its answers do not reach the terminal'
cat >"$tmp/evil.py" <<'EOF'
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, status, doc):
        body = json.dumps(doc).encode()
        self.send_response(status); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_GET(self):
        self.answer(200, {"id": "abcdefghjk", "status": "RUNNING", "stages": [{"name": "s\x1b]0;pwned\x07",
            "steps": [{"name": "go\x1b[2J", "type": "Human", "state": "RUNNING"}]}]})
    def do_POST(self):
        self.answer(409, {"error": {"code": "refused", "message": "no\x1b[31m way\r\n"}})
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
EOF
/usr/bin/python3 "$tmp/evil.py" "$tmp/evil.port" &
evil_pid=$!
i=0
while [ ! -s "$tmp/evil.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
STEPPY_TOKEN=x run "$STEPPY" approve --server "http://127.0.0.1:$(cat "$tmp/evil.port")" abcdefghjk 'GO?[2j'
expect_status 1
expect_err_contains 'no?[31m way??'
printf '%s' "$err" | grep -q "$(printf '\033')" && problem "an escape character reached stderr"
STEPPY_TOKEN=x run "$STEPPY" approve --server "http://127.0.0.1:$(cat "$tmp/evil.port")" abcdefghjk 'gp?[2J'
expect_err_contains 'did you mean "go?[2J"?'
printf '%s' "$err" | grep -q "$(printf '\033')" && problem "an escape character reached stderr"
kill "$evil_pid"
end

begin 'a token sent over plain http beyond loopback is warned about'
# (a malformed id stops the command before anything is sent)
STEPPY_TOKEN=x run "$STEPPY" approve --server http://192.0.2.1:1 'BAD!' go
expect_status 2
expect_err_contains 'warning: http://192.0.2.1:1 is plain http'
expect_err_contains '"BAD!" is not a release id'
STEPPY_TOKEN=x run "$STEPPY" approve --server http://localhost:1 'BAD!' go
expect_err_lacks 'plain http'
STEPPY_TOKEN=x run "$STEPPY" approve --server http://127.0.0.1:1 'BAD!' go
expect_err_lacks 'plain http'
end

begin 'a server started without tokens lifts the refusal'
kill "$server_pid"; wait "$server_pid" 2>/dev/null
printf 'listen: "127.0.0.1:0"\n' >"$tmp/open.yaml"
start_server "$tmp/open.yaml" "$db"
run "$STEPPY" approve --db "$db" --by alice "$id4" 'Prod go'
expect_status 0
end

finish
