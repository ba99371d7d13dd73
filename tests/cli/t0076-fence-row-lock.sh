#!/bin/sh
# t0076 (review of the lease fence, 02c9fc3..3678ba6): another session
# holds the row lock of ONE lease that a live node holds (as a node
# SIGSTOPped between its lease_take's SELECT ... FOR UPDATE and its UPDATE
# would, or a CLI suspended mid-transaction; the store sets no
# idle_in_transaction_session_timeout). The node's renewal of all its
# leases is one UPDATE ... WHERE owner = $2, which waits for that lock on
# the loop thread; after 5 s the fence kills every command of the node and
# fails every attempt, also those of releases nobody touched.
. "$(dirname "$0")/lib.sh"
status=0 out="" err=""
if [ ! -f "$repo/tests/lib/pg.sh" ] || [ -n "${STEPPY_NO_PG:-}" ]; then
    echo "ok - # SKIP no PostgreSQL"
    exit 0
fi
. "$repo/tests/lib/pg.sh"
pg_start >"$tmp/pg.log" 2>&1 || { echo "ok - # SKIP no PostgreSQL"; exit 0; }
pg=$STEPPY_TEST_PG
locker=""
trap 'kill -KILL $server_pid $locker 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
printf 'exec:\n  enabled: true\n' >"$tmp/serve.yaml"
start_server "$tmp/serve.yaml" "$pg"
mk() { printf '{"plan": {"name": "%s", "stages": [{"name": "s", "steps": [{"type": "Exec", "name": "e", "command": ["sh", "-c", "sleep 15; echo done"]}]}]}}' "$1"; }
id1=$(submit_plan "$(mk one)")
id2=$(submit_plan "$(mk two)")

begin 'a row lock on one lease does not kill the live node'"'"'s commands'
i=0
while ! curl -s -m 2 "$url/api/v1/executions/$id2/events" | grep -q StepStarted && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
pg_psql "BEGIN; SELECT owner FROM leases WHERE execution_id = '$id1' FOR UPDATE; SELECT pg_sleep(9); ROLLBACK;" >"$tmp/lock.log" 2>&1 &
locker=$!
i=0
while curl -s -m 2 "$url/api/v1/executions/$id2" | grep -q '"status":"RUNNING"' && [ $i -lt 400 ]; do
    sleep 0.1; i=$((i + 1))
done
curl -s -m 2 "$url/api/v1/executions/$id2" | grep -q '"status":"SUCCEEDED"' ||
    problem "release two (whose lease nobody locked) did not succeed: $(grep -v listening "$tmp/serve.log" | tail -3)"
end
begin 'a release another process holds now is let go at once, its command SIGKILLed'
# Another steppy process (on another host) holds release three's lease now
# (written here with psql) while this node runs its command: the next
# renewal leaves it out, the node finds it held elsewhere, lets the
# release go and kills the command with no SIGTERM grace period (its TERM
# trap never runs).
body=$(T3="$tmp/t3" /usr/bin/python3 -c '
import json, os
t = os.environ["T3"]
cmd = "trap \"echo term >>%s.log\" TERM; echo $$ >%s.pid; while :; do sleep 1; done" % (t, t)
step = {"type": "Exec", "name": "e", "command": ["sh", "-c", cmd]}
print(json.dumps({"plan": {"name": "three", "stages": [{"name": "s", "steps": [step]}]}}))')
id3=$(submit_plan "$body")
wait_file "$tmp/t3.pid" . || problem "release three's command did not start"
cmd3=$(cat "$tmp/t3.pid")
pg_psql "UPDATE leases SET owner = 'other-node', host = 'elsewhere', pid = 1, expires_ms = (extract(epoch from clock_timestamp()) * 1000)::bigint + 600000 WHERE execution_id = '$id3'" >/dev/null
wait_file "$tmp/serve.log" "release $id3 is run by another steppy process now" ||
    problem "the node did not let release three go: $(tail -3 "$tmp/serve.log")"
i=0
while kill -0 "$cmd3" 2>/dev/null && [ "$(sed 's/.*) \(.\).*/\1/' /proc/$cmd3/stat 2>/dev/null)" != Z ] && [ $i -lt 100 ]; do
    sleep 0.1; i=$((i + 1))
done
[ -d "/proc/$cmd3" ] && [ "$(sed 's/.*) \(.\).*/\1/' /proc/$cmd3/stat 2>/dev/null)" != Z ] &&
    problem "release three's command still runs"
[ -s "$tmp/t3.log" ] && problem "release three's command got SIGTERM (a grace period), not SIGKILL at once"
kill -KILL "$cmd3" 2>/dev/null
end
finish
