#!/bin/sh
# t0068: a node paused past its lease never keeps its Exec command running
# into the attempt of the node that took the release over. Two `steppy
# serve` nodes share one store (a SQLite file, then PostgreSQL when
# tests/lib/pg.sh can start one); node A runs in PID and UTS namespaces of
# its own (as on another machine: node B cannot see or kill A's processes).
# A's Exec command holds an flock on a lock file for a minute; A is
# SIGSTOPped; B takes the release over and retries the attempt, which takes
# the same lock with `flock -n`: it gets it only if A's command is gone by
# then (no timing is asserted: the lock tells).
. "$(dirname "$0")/lib.sh"
status=0 out="" err=""
if ! unshare --uts --pid --fork --mount-proc true 2>/dev/null; then
    echo "ok - # SKIP unshare (PID namespaces) is not allowed here"
    exit 0
fi
pg=""
pid_a=""
pid_b=""
cleanup() {
    [ -z "$pid_a" ] || kill -CONT $pid_a 2>/dev/null
    kill -KILL $pid_a $pid_b 2>/dev/null
    [ -z "$pg" ] || pg_stop
    rm -rf "$tmp"
}
if [ -f "$repo/tests/lib/pg.sh" ] && [ -z "${STEPPY_NO_PG:-}" ]; then
    . "$repo/tests/lib/pg.sh"
    pg_start >"$tmp/pg.log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        pg=$STEPPY_TEST_PG
    elif [ $rc -ne 77 ]; then
        begin 'a throwaway PostgreSQL starts'
        problem "$(cat "$tmp/pg.log")"
        end
    fi
fi
trap cleanup EXIT
printf 'exec:\n  enabled: true\n' >"$tmp/serve.yaml"

# The first attempt holds the lock a minute; later ones take it and end.
script='exec 9>"$LOCK"
if flock -n 9; then
  echo "locked $STEPPY_ATTEMPT" >>"$LOG"
  [ "$STEPPY_ATTEMPT" = 1 ] && sleep 60
  exit 0
fi
echo "busy $STEPPY_ATTEMPT" >>"$LOG"
exit 1'

# paused_node DB LABEL: the whole story on store DB.
paused_node() {
    db=$1
    work="$tmp/$2"
    mkdir -p "$work"
    # Node A, in namespaces of its own; $pid_a is its steppy (outside pid).
    : >"$work/a.log"
    unshare --uts --pid --fork --mount-proc sh -c \
        'hostname node-a && exec "$0" serve --config "$1" --listen 127.0.0.1:0 --db "$2"' \
        "$STEPPY" "$tmp/serve.yaml" "$db" >>"$work/a.log" 2>&1 &
    unshare_pid=$!
    i=0
    while ! grep -q 'listening on' "$work/a.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    url_a=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$work/a.log")
    pid_a=$(tr -d ' ' <"/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null)
    start_server "$tmp/serve.yaml" "$db"
    url_b=$url
    pid_b=$server_pid

    begin "$2: a paused node's command is dead before the successor's attempt runs"
    [ -n "$url_a" ] && [ -n "$pid_a" ] || problem "node A did not start: $(tail -3 "$work/a.log")"
    body=$(LOCK="$work/lock" LOG="$work/attempts.log" SCRIPT="$script" /usr/bin/python3 -c '
import json, os
step = {"type": "Exec", "name": "deploy", "command": ["sh", "-c", os.environ["SCRIPT"]],
        "env": {"LOCK": os.environ["LOCK"], "LOG": os.environ["LOG"]},
        "retry": {"maxAttempts": 3, "intervalSeconds": 0}}
print(json.dumps({"plan": {"name": "web", "stages": [{"name": "prod", "steps": [step]}]}}))')
    url=$url_a
    id=$(submit_plan "$body")
    wait_file "$work/attempts.log" 'locked 1' ||
        problem "the first attempt did not start: $(tail -3 "$work/a.log")"
    kill -STOP "$pid_a"
    url=$url_b
    wait_status "$id" SUCCEEDED || wait_status "$id" SUCCEEDED || wait_status "$id" FAILED ||
        problem "node B did not finish the release: $(tail -3 "$tmp/serve.log")"
    grep -q busy "$work/attempts.log" &&
        problem "an attempt found the lock still held: $(cat "$work/attempts.log")"
    grep -q 'locked 2' "$work/attempts.log" ||
        problem "no second attempt took the lock: $(cat "$work/attempts.log")"
    curl -s "$url_b/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"' || problem "not SUCCEEDED"
    end

    begin "$2: node A, woken, lets the release go; the history holds two attempts"
    kill -CONT "$pid_a"
    wait_file "$work/a.log" 'lets it go' ||
        problem "node A did not let the release go: $(tail -3 "$work/a.log")"
    curl -s "$url_b/api/v1/executions/$id/events" >"$work/h.json"
    [ "$(grep -o '"type":"StepScheduled"' "$work/h.json" | wc -l)" -eq 2 ] ||
        problem "not two attempts: $(head -c 600 "$work/h.json")"
    end
    kill -KILL "$pid_a" "$pid_b" 2>/dev/null
    wait "$pid_b" "$unshare_pid" 2>/dev/null
    pid_a=""
    pid_b=""
}

paused_node "$tmp/steppy.db" sqlite
if [ -n "$pg" ]; then
    paused_node "$pg" postgresql
fi
finish
