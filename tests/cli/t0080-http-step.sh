#!/bin/sh
# t0080: the built-in Http step (issue 13) against a scriptable fake on
# 127.0.0.1 (tests/lib/fake_http.py, which records every request): fields
# checked by validate, GET, POST of JSON with headers and the
# Idempotency-Key, unexpected statuses, polling until a field matches,
# failWhen, timeouts, hostile answers (not JSON, 20 MiB, redirects, TLS to
# a plain port), a secret header masked in run output, history, show,
# plan, the store file and, under steppy serve, in the API and its log;
# SIGKILL while polling (resume polls again, the POST is sent once), the
# serve node that polls killed (another node on the store polls on) and
# SIGKILL during a POST (not sent again).
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"

/usr/bin/python3 "$repo/tests/lib/fake_http.py" --port-file "$tmp/fake.port" \
    >"$tmp/fake.log" 2>&1 &
fake_pid=$!
trap 'kill $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -s "$tmp/fake.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
fake="http://127.0.0.1:$(cat "$tmp/fake.port")"
SECRET='tok-9f8e7d6c5b4a-very-secret'

control() { curl -sf -XPOST "$fake/_control" -d "$1" >/dev/null || problem "control failed: $1"; }
# requests_check PYTHON-EXPR over r = the fake's recorded requests
requests_check() {
    curl -sf "$fake/_requests" >"$tmp/requests.json"
    /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[2]))
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" "$tmp/requests.json" ||
        problem "fake check failed: $1 ($(head -c 1500 "$tmp/requests.json"))"
}
wait_requests() { # PYTHON-EXPR: up to 15 s
    i=0
    while [ $i -lt 150 ]; do
        curl -sf "$fake/_requests" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
sys.exit(0 if eval(sys.argv[1]) else 1)' "$1" && return 0
        sleep 0.1
        i=$((i + 1))
    done
    problem "never true: $1"
}
last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }
step() { # FILE YAML-FLOW-STEP: a plan of one step
    printf 'stages:\n  - name: s\n    steps:\n      - %s\n' "$2" >"$tmp/$1.yaml"
}

begin 'validate: Http fields get file:line:col diagnostics with suggestions'
cat >"$tmp/bad.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Http
        name: call
        method: post
        url: ftp://example.com/x
        headers: {Content-Length: "3", X-A: 3}
        expectStatus: [200, "2xy"]
        poll: {intervalSecond: 1, until: {pointer: state, equals: done}}
PLAN
run "$STEPPY" validate "$tmp/bad.yaml"
expect_status 1
expect_err_contains 'bad.yaml:6:17: error: /stages/0/steps/0/method: "method" must be one of GET, POST, PUT, PATCH, DELETE, HEAD, found "post"; did you mean "POST"?'
expect_err_contains 'bad.yaml:7:14: error: /stages/0/steps/0/url: "ftp://example.com/x" is not an http:// or https:// URL'
expect_err_contains '/stages/0/steps/0/headers/Content-Length: steppy sets the Content-Length header itself'
expect_err_contains '/stages/0/steps/0/headers/X-A: a header value must be a string'
expect_err_contains '/stages/0/steps/0/expectStatus/1: "2xy" is not an HTTP status'
expect_err_contains 'unknown field "intervalSecond" in a poll; did you mean "intervalSeconds"?'
expect_err_contains '/stages/0/steps/0/poll/until/pointer: "state" is not a JSON pointer'
end

begin 'GET: a 2xx answer succeeds, status and body in the output'
step get "{type: Http, name: g, url: '$fake/ok'}"
run "$STEPPY" run "$tmp/get.yaml"
expect_status 0
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepSucceeded" and e["data"]["status"] == 200 and e["data"]["body"] == "{\"ok\": true}" for e in d["events"])'
requests_check 'r[-1]["method"] == "GET" and r[-1]["path"] == "/ok" and r[-1]["body"] == ""'
end

begin 'POST: JSON body, headers, Content-Type and the attempt Idempotency-Key reach the server'
cat >"$tmp/post.yaml" <<PLAN
variables:
  VERSION: {default: "3.2.0"}
stages:
  - name: s
    steps:
      - type: Http
        name: p
        method: POST
        url: $fake/echo?env=prod
        headers: {X-Release: "v\${var.VERSION}", Accept: application/json, X-Empty: ""}
        body: {version: "\${var.VERSION}", canary: true, weight: 10}
        expectStatus: 201
PLAN
run "$STEPPY" run "$tmp/post.yaml"
expect_status 0
id=$(last_id)
requests_check 'r[-1]["method"] == "POST" and r[-1]["path"] == "/echo?env=prod"'
requests_check 'r[-1]["headers"]["X-Release"] == "v3.2.0" and r[-1]["headers"]["Accept"] == "application/json" and r[-1]["headers"]["Content-Type"] == "application/json"'
requests_check 'r[-1]["headers"]["Idempotency-Key"] == "'"$id"'/0/0/1"'
requests_check 'r[-1]["headers"].get("X-Empty") == ""'
requests_check 'json.loads(r[-1]["body"]) == {"version": "3.2.0", "canary": True, "weight": 10}'
end

begin 'PUT with a text body and DELETE and HEAD send their methods'
cat >"$tmp/methods.yaml" <<PLAN
stages:
  - name: s
    steps:
      - {type: Http, name: put, method: PUT, url: '$fake/ok', body: "plain text"}
      - {type: Http, name: del, method: DELETE, url: '$fake/ok'}
      - {type: Http, name: head, method: HEAD, url: '$fake/ok'}
PLAN
run "$STEPPY" run "$tmp/methods.yaml"
expect_status 0
requests_check 'sorted(x["method"] for x in r[-3:]) == ["DELETE", "HEAD", "PUT"]'
requests_check '[x for x in r[-3:] if x["method"] == "PUT"][0]["body"] == "plain text" and [x for x in r[-3:] if x["method"] == "PUT"][0]["headers"]["Content-Type"].startswith("text/plain")'
end

begin 'an unexpected status fails the step with the status, the expectation and the body'
step bad503 "{type: Http, name: b, url: '$fake/status/503', expectStatus: [200, 3xx]}"
run "$STEPPY" run "$tmp/bad503.yaml"
expect_status 3
expect_out_contains "GET $fake/status/503: HTTP 503, expected 200 or 3xx"
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepFailed" and e["data"]["status"] == 503 and e["data"]["body"] == "status 503 from the fake" for e in d["events"])'
end

begin 'poll: polls until the field matches, the value and the poll count recorded'
control '{"poll": {"a": ["queued", "running", "done"]}}'
step poll "{type: Http, name: w, url: '$fake/poll/a', poll: {intervalSeconds: 1, until: {pointer: /state, equals: [done, ok]}}}"
run "$STEPPY" run "$tmp/poll.yaml"
expect_status 0
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepSucceeded" and e["data"]["value"] == "done" and e["data"]["polls"] == 3 for e in d["events"])'
expect_json '[e["data"]["value"] for e in d["events"] if e["type"] == "Notice"] == ["queued", "running"]'
expect_json 'any(e["type"] == "StepStarted" and e["data"]["phase"] == "poll" for e in d["events"])'
end

begin 'poll: failWhen fails the step at once, naming the field and value'
control '{"poll": {"f": ["running", "failed"]}}'
step failwhen "{type: Http, name: w, url: '$fake/poll/f', poll: {intervalSeconds: 1, until: {pointer: /state, equals: done}, failWhen: {pointer: /state, equals: [failed, cancelled]}}}"
run "$STEPPY" run "$tmp/failwhen.yaml"
expect_status 3
expect_out_contains '/state is "failed" (failWhen)'
end

begin 'poll: an answer that is not JSON fails clearly'
step html "{type: Http, name: w, url: '$fake/html', poll: {intervalSeconds: 1, until: {pointer: /state, equals: done}}}"
run "$STEPPY" run "$tmp/html.yaml"
expect_status 3
expect_out_contains 'the answer is not JSON (Content-Type text/html)'
end

begin 'timeouts: a slow server fails the request; a poll that never matches times the step out'
step slow "{type: Http, name: s, url: '$fake/slow', requestTimeoutSeconds: 1}"
run "$STEPPY" run "$tmp/slow.yaml"
expect_status 3
expect_out_contains "GET $fake/slow: Timeout was reached"
step forever "{type: Http, name: f, url: '$fake/poll/never', timeoutSeconds: 2, poll: {intervalSeconds: 1, until: {pointer: /state, equals: done}}}"
run "$STEPPY" run "$tmp/forever.yaml"
expect_status 3
id=$(last_id)
run "$STEPPY" history --format json "$id"
expect_json 'any(e["type"] == "StepTimedOut" for e in d["events"])'
end

begin 'hostile answers: 20 MiB is refused, redirects are off unless asked, TLS to a plain port fails'
step big "{type: Http, name: b, url: '$fake/big'}"
run "$STEPPY" run "$tmp/big.yaml"
expect_status 3
expect_out_contains 'the response is larger than 16 MiB'
step redir "{type: Http, name: r, url: '$fake/redirect'}"
run "$STEPPY" run "$tmp/redir.yaml"
expect_status 3
expect_out_contains 'HTTP 302, expected 2xx'
step follow "{type: Http, name: r, url: '$fake/redirect', followRedirects: true}"
run "$STEPPY" run "$tmp/follow.yaml"
expect_status 0
step tls "{type: Http, name: t, url: 'https://127.0.0.1:$(cat "$tmp/fake.port")/ok'}"
run "$STEPPY" run "$tmp/tls.yaml"
expect_status 3
expect_out_contains "GET https://127.0.0.1:$(cat "$tmp/fake.port")/ok: SSL"
end

begin 'a secret header reaches the server and nothing else: run, history, show, plan, the store'
cat >"$tmp/secret.yaml" <<PLAN
variables:
  TOKEN: {}
stages:
  - name: s
    steps:
      - type: Http
        name: deploy
        method: POST
        url: $fake/echo
        headers:
          Authorization: {value: "Bearer \${var.TOKEN}", secret: true}
          X-Api-Key: {value: "key:\${var.TOKEN}", secret: true}
        body: {note: "hello"}
        expectStatus: 201
      - type: Http
        name: echo token
        method: POST
        url: $fake/echo
        headers:
          X-Api-Key: {value: "key:\${var.TOKEN}", secret: true}
        body: "the token alone: \${var.TOKEN}"
        expectStatus: 201
PLAN
run "$STEPPY" run --var "TOKEN=$SECRET" "$tmp/secret.yaml"
expect_status 0
all="$out"
requests_check '[x for x in r if x["body"] == "{\"note\":\"hello\"}"][-1]["headers"]["Authorization"] == "Bearer '"$SECRET"'" and [x for x in r if x["body"] == "{\"note\":\"hello\"}"][-1]["headers"]["X-Api-Key"] == "key:'"$SECRET"'"'
requests_check 'any(x["body"] == "the token alone: '"$SECRET"'" for x in r)'
id=$(last_id)
run "$STEPPY" history --format json "$id"
all="$all$out"
expect_json 'any(e["type"] == "StepSucceeded" and "\"Authorization\": \"****\"" in e["data"]["body"] for e in d["events"])'
expect_json 'any(e["type"] == "StepSucceeded" and "the token alone: ****" in e["data"]["body"] for e in d["events"])'
run "$STEPPY" history "$id"
all="$all$out"
run "$STEPPY" show "$id"
all="$all$out"
run "$STEPPY" show --format json "$id"
all="$all$out"
run "$STEPPY" plan --var "TOKEN=$SECRET" "$tmp/secret.yaml"
all="$all$out"
expect_out_contains 'Authorization: ****'
case "$all" in *"$SECRET"*) problem "the secret shows in output" ;; esac
if grep -a -q "$SECRET" "$STEPPY_DB"* 2>/dev/null; then problem "the secret is in the store file"; fi
end

begin 'steppy serve: an Http step runs; the API and the server log never show its secret header'
mkdir -p "$tmp/serve"
printf 'secretKeyFile: %s\n' "$tmp/serve/secret.key" >"$tmp/serve.yaml"
start_server "$tmp/serve.yaml" "$tmp/serve.db"
trap 'kill $server_pid $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": open(sys.argv[1]).read(), "name": "secret.yaml", "variables": {"TOKEN": sys.argv[2]}}))' "$tmp/secret.yaml" "$SECRET")
sid=$(submit_plan "$body")
wait_status "$sid" SUCCEEDED || problem "not SUCCEEDED: $(curl -s "$url/api/v1/executions/$sid")"
requests_check 'any(x["headers"].get("Authorization") == "Bearer '"$SECRET"'" and x["headers"]["Idempotency-Key"] == "'"$sid"'/0/0/1" for x in r)'
curl -s "$url/api/v1/executions/$sid" >"$tmp/api.json"
curl -s "$url/api/v1/executions/$sid/events" >>"$tmp/api.json"
grep -q '"status":201' "$tmp/api.json" || problem "the API shows no status 201: $(head -c 600 "$tmp/api.json")"
grep -q -- "$SECRET" "$tmp/api.json" "$tmp/serve.log" && problem "the API or the server log shows the secret"
if grep -a -q -- "$SECRET" "$tmp/serve.db"* 2>/dev/null; then problem "the secret is in the server's store"; fi
kill $server_pid
wait $server_pid 2>/dev/null
end

begin 'SIGKILL while polling: resume polls again, the POST is sent once'
control '{"poll": {"k": ["running"]}}'
cat >"$tmp/killpoll.yaml" <<PLAN
stages:
  - name: s
    steps:
      - type: Http
        name: deploy
        method: POST
        url: $fake/echo
        body: {start: true}
        expectStatus: 201
        poll: {url: '$fake/poll/k', intervalSeconds: 1, until: {pointer: /state, equals: done}}
PLAN
"$STEPPY" run "$tmp/killpoll.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_requests 'len([x for x in r if x["path"] == "/poll/k"]) >= 2'
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" show --format json "$id"
expect_out_contains '"waitingFor": "/state to be \"done\" at '"$fake"'/poll/k (now \"running\")"'
control '{"poll": {"k": ["running", "done"]}}'
run "$STEPPY" resume "$id"
expect_status 0
expect_out_contains 'SUCCEEDED'
requests_check 'len([x for x in r if x["path"] == "/echo" and x["body"] == "{\"start\":true}"]) == 1'
requests_check 'len([x for x in r if x["path"] == "/poll/k"]) >= 4'
run "$STEPPY" history --format json "$id"
expect_json 'len([e for e in d["events"] if e["type"] == "StepStarted"]) == 1 and any(e["type"] == "StepSucceeded" and e["data"]["value"] == "done" for e in d["events"])'
end

begin 'takeover: the node polling dies, another node on the same store polls on; the POST is sent once'
control '{"poll": {"t": ["running"]}}'
printf 'secretKeyFile: %s\n' "$tmp/serve/secret.key" >"$tmp/node.yaml"
start_server "$tmp/node.yaml" "$tmp/nodes.db"
pid_a=$server_pid
url_a=$url
start_server "$tmp/node.yaml" "$tmp/nodes.db"
pid_b=$server_pid
url_b=$url
trap 'kill $pid_a $pid_b $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
url=$url_a
body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": {"stages": [{"name": "s", "steps": [{"type": "Http", "name": "deploy", "method": "POST", "url": sys.argv[1] + "/echo", "body": {"node": "a"}, "expectStatus": 201, "poll": {"url": sys.argv[1] + "/poll/t", "intervalSeconds": 1, "until": {"pointer": "/state", "equals": "done"}}}]}]}}))' "$fake")
tid=$(submit_plan "$body")
wait_requests 'len([x for x in r if x["path"] == "/poll/t"]) >= 2'
# The node that polls holds the kept-alive connection to the fake: kill it.
driver=$(ss -tnp "dst 127.0.0.1:$(cat "$tmp/fake.port")" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
if [ "$driver" = "$pid_b" ]; then
    pid_b=$pid_a
    url_b=$url_a
    pid_a=$driver
elif [ "$driver" != "$pid_a" ]; then
    problem "no node holds a connection to the fake ($driver)"
fi
kill -9 $pid_a
wait $pid_a 2>/dev/null
n=$(curl -sf "$fake/_requests" | /usr/bin/python3 -c 'import json,sys; print(len([x for x in json.load(sys.stdin) if x["path"] == "/poll/t"]))')
wait_requests 'len([x for x in r if x["path"] == "/poll/t"]) >= '"$((n + 2))"
control '{"poll": {"t": ["done"]}}'
url=$url_b
i=0
while [ $i -lt 300 ]; do
    curl -s "$url/api/v1/executions/$tid" | grep -q '"status":"SUCCEEDED"' && break
    sleep 0.1
    i=$((i + 1))
done
curl -s "$url/api/v1/executions/$tid" | grep -q '"status":"SUCCEEDED"' || problem "not SUCCEEDED on node B"
requests_check 'len([x for x in r if x["path"] == "/echo" and x["body"] == "{\"node\":\"a\"}"]) == 1'
curl -s "$url/api/v1/executions/$tid/events" >"$tmp/events.json"
/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["events"] if isinstance(d, dict) else d
sys.exit(0 if len([e for e in ev if e["type"] == "StepStarted"]) == 1 else 1)' "$tmp/events.json" ||
    problem "not one StepStarted: $(head -c 800 "$tmp/events.json")"
kill $pid_b
wait $pid_b 2>/dev/null
end

begin 'SIGKILL during a POST: resume does not send it again and says why'
step killpost "{type: Http, name: slowpost, method: POST, url: '$fake/slow', body: once}"
"$STEPPY" run "$tmp/killpost.yaml" >"$tmp/run.out" 2>&1 &
pid=$!
wait_requests 'any(x["path"] == "/slow" and x["method"] == "POST" for x in r)'
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
run "$STEPPY" resume "$id"
expect_status 3
expect_out_contains 'it may have reached the server, so it is not sent again'
requests_check 'len([x for x in r if x["path"] == "/slow" and x["method"] == "POST"]) == 1'
end

finish
