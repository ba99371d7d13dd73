#!/bin/sh
# t0017: the store at run time - many processes opening a new store at once,
# read-only commands that must not create one, `run` driving only its own
# release, a damaged store (refused at start, 503 from /metrics), a live
# stream that sends the report once and then only new events, and a store
# that refuses writes for a while (locked past the busy timeout): the server
# keeps serving, says it is unhealthy, and finishes the release once the
# store accepts writes again. Real processes, real SQLite files, real HTTP.
. "$(dirname "$0")/lib.sh"

cat >"$tmp/quick.yaml" <<'PLAN'
name: quick
stages:
  - name: one
    steps:
      - {type: Exec, name: a, command: ['true']}
PLAN

cat >"$tmp/human.yaml" <<'PLAN'
name: waits
stages:
  - name: one
    steps:
      - {type: Human, name: go, message: Go?, approvers: [someone]}
PLAN

# ---- item 11: concurrent openers of a new store ---------------------------------
begin 'twenty processes opening a new store at once: none fails'
bad=0
for round in 1 2 3; do
    fresh="$tmp/fresh-$round/steppy.db"
    pids=""
    for k in 1 2 3 4 5 6 7 8 9 10; do
        "$STEPPY" run --db "$fresh" "$tmp/quick.yaml" >"$tmp/o-$round-run-$k" 2>&1 &
        pids="$pids $!"
        "$STEPPY" list --db "$fresh" >"$tmp/o-$round-list-$k" 2>&1 &
        pids="$pids $!"
    done
    for p in $pids; do wait "$p" || :; done
    for k in 1 2 3 4 5 6 7 8 9 10; do
        grep -q 'SUCCEEDED' "$tmp/o-$round-run-$k" || { bad=$((bad + 1)); problem "run $round/$k: $(tail -2 "$tmp/o-$round-run-$k")"; }
        if grep -q 'locked\|cannot open' "$tmp/o-$round-list-$k"; then
            bad=$((bad + 1)); problem "list $round/$k: $(cat "$tmp/o-$round-list-$k")"
        fi
    done
    n=$("$STEPPY" list --db "$fresh" --format json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')
    [ "$n" = 10 ] || problem "round $round: $n releases recorded, expected 10"
done
status=0; out=""; err=""
end

begin 'read-only commands do not create a store: "no store at PATH"'
missing="$tmp/nothing-here/steppy.db"
for cmd in "list" "show abc" "history abc" "approve abc go" "reject abc go" "abort abc" "resume" "retry abc"; do
    # shellcheck disable=SC2086
    run "$STEPPY" $cmd --db "$missing"
    expect_status 2
    expect_err_contains "no store at $missing"
done
[ ! -e "$missing" ] || problem "a store was created"
[ ! -e "$tmp/nothing-here" ] || problem "its directory was created"
end

# ---- item 12: run drives its own release only -----------------------------------
begin 'run leaves releases of stopped processes to resume, and says so in one line'
db="$tmp/own.db"
"$STEPPY" run --db "$db" "$tmp/human.yaml" >"$tmp/h.out" 2>&1 &
hpid=$!
i=0
while ! "$STEPPY" list --db "$db" 2>/dev/null | grep -q RUNNING && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$hpid"
wait "$hpid" 2>/dev/null
other=$("$STEPPY" list --db "$db" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')
before=$("$STEPPY" history --db "$db" --format json "$other" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
run timeout 30 "$STEPPY" run --db "$db" "$tmp/quick.yaml"
expect_status 0
expect_out_contains 'SUCCEEDED'
expect_out_contains '1 other release is unfinished; steppy resume continues it'
expect_out_lacks 'resuming'
after=$("$STEPPY" history --db "$db" --format json "$other" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["events"]))')
[ "$before" = "$after" ] || problem "the other release was touched: $before events, now $after"
run "$STEPPY" show --db "$db" "$other"
expect_out_contains 'RUNNING'
end

# ---- item 9: a damaged store ------------------------------------------------------
# garble DB: overwrites the pages of the executions table and its indexes.
garble() {
    /usr/bin/python3 - "$1" <<'EOF'
import sqlite3, sys
path = sys.argv[1]
con = sqlite3.connect(path)
size = con.execute("PRAGMA page_size").fetchone()[0]
roots = [r[0] for r in con.execute(
    "SELECT rootpage FROM sqlite_master WHERE tbl_name = 'executions' AND rootpage > 1")]
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
with open(path, "r+b") as f:
    for p in roots:
        f.seek((p - 1) * size)
        f.write(bytes((i * 37 + 11) % 256 for i in range(size)))
EOF
}

db="$tmp/damaged.db"
for k in 1 2 3; do "$STEPPY" run --db "$db" "$tmp/quick.yaml" >/dev/null 2>&1; done
cp "$db" "$tmp/good.db"
garble "$db"
printf 'maxBodyBytes: 65536\nexec:\n  enabled: true\n' >"$tmp/serve.yaml" # the tests' plans run Exec steps

begin 'serve refuses to start on a damaged store, naming the file'
run timeout 20 "$STEPPY" serve --config "$tmp/serve.yaml" --listen 127.0.0.1:0 --db "$db"
expect_status 2
expect_err_contains "$db"
expect_err_contains 'damaged'
expect_err_contains 'does not start'
expect_out_lacks 'listening'
end

begin '/metrics and API reads answer 503 with a JSON error when the store is damaged'
cp "$tmp/good.db" "$tmp/live.db"
rm -f "$tmp/serve.log"
start_server "$tmp/serve.yaml" "$tmp/live.db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
[ -n "$url" ] || problem "the server did not start: $(cat "$tmp/serve.log")"
garble "$tmp/live.db"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/metrics")
out=$(cat "$tmp/body")
expect_status 503
expect_json 'd["error"]["code"] == "store-error"'
status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/api/v1/executions")
out=$(cat "$tmp/body")
expect_status 503
expect_json '"error" in d'
kill "$server_pid"
wait "$server_pid" 2>/dev/null
end

# ---- item 8: live streams send only new events ---------------------------------------
begin 'a release stream sends the report once, then only the new events, each once'
rm -f "$tmp/serve.log"
start_server "$tmp/serve.yaml" "$tmp/stream.db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/steps.json" <<'EOF'
{"plan": {"name": "steps", "stages": [
  {"name": "one", "steps": [{"type": "Exec", "name": "a", "command": ["sh", "-c", "sleep 1"]}]},
  {"name": "two", "steps": [{"type": "Exec", "name": "b", "command": ["sh", "-c", "sleep 1"]}]},
  {"name": "three", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}}
EOF
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/steps.json" "$url/api/v1/executions")
expect_status 201
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/body")
curl -sN "$url/api/v1/executions/$id/stream" >"$tmp/sse" 2>/dev/null &
curl_pid=$!
i=0
while ! grep -q '"ExecutionFinished"' "$tmp/sse" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill "$curl_pid" 2>/dev/null
wait "$curl_pid" 2>/dev/null
out=$(/usr/bin/python3 - "$tmp/sse" <<'EOF'
import json, sys
msgs, name = [], None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("event: "):
        name = line[7:]
    elif line.startswith("data: "):
        msgs.append((name, json.loads(line[6:])))
print(json.dumps({"names": [m[0] for m in msgs],
                  "first": msgs[0][1]["events"] if msgs else None,
                  "seqs": [e["seq"] for n, d in msgs if n == "events" for e in d["events"]],
                  "types": [e["type"] for n, d in msgs if n == "events" for e in d["events"]],
                  "named": all(e.get("stepName") for n, d in msgs if n == "events"
                               for e in d["events"] if e.get("step") is not None),
                  "last": msgs[-1][1]["execution"]["status"] if msgs and msgs[-1][0] == "events" else None}))
EOF
)
expect_json 'd["names"][0] == "execution" and d["names"].count("execution") == 1'
expect_json 'len(d["names"]) > 2 and set(d["names"][1:]) == {"events"}'
expect_json 'd["seqs"] == list(range(d["first"] + 1, d["first"] + 1 + len(d["seqs"])))'
expect_json '"ExecutionFinished" in d["types"] and d["named"]'
expect_json 'd["last"] == "SUCCEEDED"'
kill "$server_pid"
wait "$server_pid" 2>/dev/null
end

# ---- item 7: a store that refuses writes for a while --------------------------------
# lock DB FLAG: holds a write lock on DB (BEGIN EXCLUSIVE) until FLAG is removed.
lock() {
    /usr/bin/python3 - "$1" "$2" <<'EOF' &
import os, sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
open(sys.argv[2] + ".held", "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
con.execute("ROLLBACK")
EOF
    lock_pid=$!
    i=0
    while [ ! -e "$2.held" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
}

cat >"$tmp/slow.json" <<'EOF'
{"plan": {"name": "slow", "stages": [{"name": "one", "steps": [
  {"type": "Exec", "name": "a", "command": ["sh", "-c", "sleep 1; echo done"]}]},
  {"name": "two", "steps": [{"type": "Wait", "name": "w", "seconds": 1}]}]}}
EOF

begin 'serve: writes refused past the busy timeout: unhealthy and 503, then the release completes'
db="$tmp/locked.db"
rm -f "$tmp/serve.log" # the last server's "listening on" must not be read
start_server "$tmp/serve.yaml" "$db"
trap 'kill $server_pid $lock_pid 2>/dev/null; rm -rf "$tmp"' EXIT
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/slow.json" "$url/api/v1/executions")
out=$(cat "$tmp/body")
expect_status 201
id=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
touch "$tmp/flag"
lock "$db" "$tmp/flag"
# The command ends after 1 s; its events wait for the lock (10 s), then fail.
i=0
while [ $i -lt 300 ]; do
    hs=$(curl -s -o "$tmp/health" -w '%{http_code}' "$url/healthz")
    [ "$hs" = 503 ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
kill -0 "$server_pid" 2>/dev/null || problem "the server stopped: $(cat "$tmp/serve.log")"
[ "$hs" = 503 ] || problem "healthz answered $hs while the store refused writes"
out=$(cat "$tmp/health")
expect_json 'd["status"] == "unhealthy" and "error" in d'
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/slow.json" "$url/api/v1/executions")
out=$(cat "$tmp/body")
expect_status 503
expect_json 'd["error"]["code"] == "store-unavailable"'
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST "$url/api/v1/executions/$id/abort")
expect_status 503
# Reads still work while writes fail.
status=$(curl -s -o "$tmp/body" -w '%{http_code}' "$url/api/v1/executions/$id")
expect_status 200
rm -f "$tmp/flag"
wait "$lock_pid" 2>/dev/null
i=0
while [ $i -lt 300 ]; do
    curl -s "$url/api/v1/executions/$id" >"$tmp/body"
    grep -q '"status":"SUCCEEDED"' "$tmp/body" && break
    sleep 0.1; i=$((i + 1))
done
grep -q '"status":"SUCCEEDED"' "$tmp/body" || problem "the release did not complete: $(cat "$tmp/body")"
hs=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
[ "$hs" = 200 ] || problem "healthz answered $hs after the store recovered"
# Nothing lost: one history, every event once, in order, the command's output kept.
out=$("$STEPPY" history --db "$db" --format json "$id")
expect_json '[e["seq"] for e in d["events"]] == list(range(1, len(d["events"]) + 1))'
expect_json 'any(e["type"] == "StepSucceeded" and e["data"].get("stdout") == "done\n" for e in d["events"])'
expect_json 'd["events"][-1]["type"] == "ExecutionFinished"'
grep -q 'cannot record events' "$tmp/serve.log" || problem "the failure was not logged"
kill "$server_pid"
wait "$server_pid"
status=$?
expect_status 0
end

begin 'serve: stopped while the store still refuses writes: exits non-zero'
db="$tmp/locked2.db"
rm -f "$tmp/serve.log"
start_server "$tmp/serve.yaml" "$db"
trap 'kill $server_pid $lock_pid 2>/dev/null; rm -rf "$tmp"' EXIT
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary @"$tmp/slow.json" "$url/api/v1/executions")
expect_status 201
touch "$tmp/flag3"
lock "$db" "$tmp/flag3"
i=0
while [ $i -lt 300 ]; do
    hs=$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")
    [ "$hs" = 503 ] && break
    sleep 0.1; i=$((i + 1))
done
[ "$hs" = 503 ] || problem "healthz answered $hs while the store refused writes"
kill -TERM "$server_pid"
wait "$server_pid"
status=$?
rm -f "$tmp/flag3"
wait "$lock_pid" 2>/dev/null
expect_status 2
grep -q 'stopped while the store refused events' "$tmp/serve.log" || problem "no word on why: $(tail -3 "$tmp/serve.log")"
end

begin 'run: writes refused past the busy timeout: exits non-zero, says why'
db="$tmp/run-locked.db"
cat >"$tmp/slow.yaml" <<'PLAN'
name: slow
stages:
  - name: one
    steps:
      - {type: Exec, name: a, command: [sh, -c, 'sleep 1']}
PLAN
"$STEPPY" run --db "$db" "$tmp/slow.yaml" >"$tmp/run.out" 2>"$tmp/run.err" &
rpid=$!
i=0
while ! "$STEPPY" list --db "$db" 2>/dev/null | grep -q RUNNING && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
touch "$tmp/flag2"
lock "$db" "$tmp/flag2"
wait "$rpid"
status=$?
rm -f "$tmp/flag2"
wait "$lock_pid" 2>/dev/null
err=$(cat "$tmp/run.err")
out=$(cat "$tmp/run.out")
[ "$status" -ne 0 ] || problem "run exited 0 after a store failure"
expect_status 2
expect_err_contains 'cannot record events'
expect_err_contains 'steppy resume'
end

finish
