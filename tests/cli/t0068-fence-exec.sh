#!/bin/sh
# t0068: a node paused past its lease never keeps its Exec command running
# into the attempt of the node that took the release over. Two `steppy
# serve` nodes share one SQLite store; node A runs in PID and UTS namespaces
# of its own (as on another machine: node B cannot see or kill A's
# processes). A's Exec command holds an flock on a lock file for a minute;
# A is SIGSTOPped; B takes the release over and retries the attempt, which
# takes the same lock with `flock -n`: it gets it only if A's command is
# gone by then (no timing is asserted: the lock tells).
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
status=0 out="" err=""
if ! unshare --uts --pid --fork --mount-proc true 2>/dev/null; then
    echo "ok - # SKIP unshare (PID namespaces) is not allowed here"
    exit 0
fi
printf 'exec:\n  enabled: true\n' >"$tmp/serve.yaml"

# Node A, in namespaces of its own; $pid_a is its steppy (outside pid).
: >"$tmp/a.log"
unshare --uts --pid --fork --mount-proc sh -c \
    'hostname node-a && exec "$0" serve --config "$1" --listen 127.0.0.1:0 --db "$2"' \
    "$STEPPY" "$tmp/serve.yaml" "$db" >>"$tmp/a.log" 2>&1 &
unshare_pid=$!
pid_a=
pid_b=
trap 'kill -CONT $pid_a 2>/dev/null; kill -KILL $pid_a $pid_b 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while ! grep -q 'listening on' "$tmp/a.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url_a=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/a.log")
pid_a=$(cat "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null | tr -d ' ')
start_server "$tmp/serve.yaml" "$db"
url_b=$url
pid_b=$server_pid

begin 'a paused node'"'"'s command is dead before the successor'"'"'s attempt runs'
[ -n "$url_a" ] && [ -n "$pid_a" ] || problem "node A did not start: $(tail -3 "$tmp/a.log")"
# The first attempt holds the lock a minute; later ones take it and end.
script='exec 9>"$LOCK"
if flock -n 9; then
  echo "locked $STEPPY_ATTEMPT" >>"$LOG"
  [ "$STEPPY_ATTEMPT" = 1 ] && sleep 60
  exit 0
fi
echo "busy $STEPPY_ATTEMPT" >>"$LOG"
exit 1'
body=$(LOCK="$tmp/lock" LOG="$tmp/attempts.log" SCRIPT="$script" /usr/bin/python3 -c '
import json, os
step = {"type": "Exec", "name": "deploy", "command": ["sh", "-c", os.environ["SCRIPT"]],
        "env": {"LOCK": os.environ["LOCK"], "LOG": os.environ["LOG"]},
        "retry": {"maxAttempts": 3, "intervalSeconds": 0}}
print(json.dumps({"plan": {"name": "web", "stages": [{"name": "prod", "steps": [step]}]}}))')
url=$url_a
id=$(submit_plan "$body")
wait_file "$tmp/attempts.log" 'locked 1' || problem "the first attempt did not start: $(tail -3 "$tmp/a.log")"
kill -STOP "$pid_a"
url=$url_b
wait_status "$id" SUCCEEDED || wait_status "$id" SUCCEEDED || wait_status "$id" FAILED ||
    problem "node B did not finish the release: $(tail -3 "$tmp/serve.log")"
grep -q busy "$tmp/attempts.log" && problem "an attempt found the lock still held: $(cat "$tmp/attempts.log")"
grep -q 'locked 2' "$tmp/attempts.log" || problem "no second attempt took the lock: $(cat "$tmp/attempts.log")"
curl -s "$url_b/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"' || problem "not SUCCEEDED"
end

begin 'node A, woken, lets the release go; the history holds two attempts'
kill -CONT "$pid_a"
wait_file "$tmp/a.log" 'lets it go' || problem "node A did not let the release go: $(tail -3 "$tmp/a.log")"
curl -s "$url_b/api/v1/executions/$id/events" >"$tmp/h.json"
[ "$(grep -o '"type":"StepScheduled"' "$tmp/h.json" | wc -l)" -eq 2 ] ||
    problem "not two attempts: $(head -c 600 "$tmp/h.json")"
end

finish
