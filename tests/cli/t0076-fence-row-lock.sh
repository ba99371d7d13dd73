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
finish
