# lib.sh - helpers for the CLI tests (sourced by tests/cli/tNNNN-*.sh).
#
# Each test is   run CMD...   then checks on $status, $out (stdout) and
# $err (stderr) with expect_* helpers, grouped under a description:
#     begin 'validate reports every error'
#     run "$STEPPY" validate bad.json
#     expect_status 1
#     expect_err_contains 'bad.json:3:12: error:'
#     end
# At exit prints "# N passed, M failed". $STEPPY is the binary under test.
set -u
: "${STEPPY:?set STEPPY to the steppy binary}"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/steppy-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
current=""
current_ok=1

begin() {
    current=$1
    current_ok=1
}

problem() {
    current_ok=0
    echo "  FAIL [$current]: $*"
}

end() {
    if [ "$current_ok" -eq 1 ]; then
        passed=$((passed + 1))
        echo "ok - $current"
    else
        failed=$((failed + 1))
        echo "not ok - $current"
        echo "    status: $status"
        echo "    stdout: $(printf '%s' "$out" | head -c 2000)"
        echo "    stderr: $(printf '%s' "$err" | head -c 2000)"
    fi
}

run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    status=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}

expect_status() {
    [ "$status" -eq "$1" ] || problem "exit status $status, expected $1 (stderr: $(printf "%s" "$err" | head -c 400))"
}

expect_out_contains() {
    case "$out" in *"$1"*) ;; *) problem "stdout lacks: $1" ;; esac
}

expect_err_contains() {
    case "$err" in *"$1"*) ;; *) problem "stderr lacks: $1" ;; esac
}

expect_err_lacks() {
    case "$err" in *"$1"*) problem "stderr has: $1" ;; *) ;; esac
}

expect_out_lacks() {
    case "$out" in *"$1"*) problem "stdout has: $1" ;; *) ;; esac
}

# expect_json PYTHON-EXPR: evaluates the expression with d = json of stdout.
expect_json() {
    printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
ok = eval(sys.argv[1])
sys.exit(0 if ok else 1)' "$1" || problem "JSON check failed: $1"
}

finish() {
    echo "# $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# start_fake_aws: starts tests/aws/fake_aws.py; sets $fake (its URL) and
# $fake_pid, and gives this shell a clean AWS environment pointed at it
# (the fake's static key, region eu-west-1, no files, no instance metadata).
# The caller's EXIT trap must kill $fake_pid.
start_fake_aws() {
    /usr/bin/python3 "$repo/tests/aws/fake_aws.py" --port 0 --port-file "$tmp/fake.port" \
        >"$tmp/fake.log" 2>&1 &
    fake_pid=$!
    i=0
    while [ ! -s "$tmp/fake.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    fake="http://127.0.0.1:$(cat "$tmp/fake.port")"
    for v in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
    export AWS_ACCESS_KEY_ID=AKIDSTEPPYTEST AWS_SECRET_ACCESS_KEY='steppy/test+secret'
    export AWS_REGION=eu-west-1 AWS_ENDPOINT_URL="$fake" AWS_EC2_METADATA_DISABLED=true
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
}

# start_webhook_receiver OUT: a webhook receiver on a free loopback port; it
# answers every POST 200 and appends its body to OUT (one line each). Sets
# $hook_pid; the port is in $tmp/hook.port. The caller's EXIT trap must kill
# $hook_pid.
start_webhook_receiver() {
    cat >"$tmp/receiver.py" <<'EOF'
import http.server, sys
out = open(sys.argv[2], "ab", buffering=0)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_port))
s.serve_forever()
EOF
    /usr/bin/python3 "$tmp/receiver.py" "$tmp/hook.port" "$1" &
    hook_pid=$!
    i=0
    while [ ! -s "$tmp/hook.port" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}

# start_server CONFIG DB: starts `steppy serve` on a free loopback port; sets
# $server_pid and $url once it listens (10 s at most). Log: $tmp/serve.log.
start_server() {
    # Emptied here, not by the child's redirection: the loop below could
    # otherwise still read the previous server's "listening on" line.
    : >"$tmp/serve.log"
    "$STEPPY" serve --config "$1" --listen 127.0.0.1:0 --db "$2" >>"$tmp/serve.log" 2>&1 &
    server_pid=$!
    i=0
    while ! grep -q 'listening on' "$tmp/serve.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
}

# submit_plan JSON: POSTs {"plan": ...} to the server at $url; prints the new id.
submit_plan() {
    curl -s -X POST -H "Content-Type: application/json" --data-binary "$1" "$url/api/v1/executions" |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

# wait_status ID STATUS: waits (15 s at most) until the server says release ID is STATUS.
wait_status() {
    i=0
    while [ $i -lt 150 ]; do
        curl -s "$url/api/v1/executions/$1" | grep -q "\"status\":\"$2\"" && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

# wait_file FILE TEXT: waits (30 s at most) until FILE holds TEXT.
wait_file() {
    i=0
    while [ $i -lt 300 ]; do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done
    return 1
}
