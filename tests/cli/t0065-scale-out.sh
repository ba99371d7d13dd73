#!/bin/sh
# t0065: several `steppy serve` nodes on one store. The chaos test
# (tests/crash/scale_out.py: 3 nodes, 30 releases, nodes SIGKILLed and
# SIGSTOPped at random and restarted; every invariant checked afterwards, the
# takeover times printed), and a store that stops taking writes while nothing
# is to be recorded: /healthz says so (503, store unreachable) and writes
# answer 503 with a JSON error, without a crash or a busy loop, until it
# comes back. On PostgreSQL when tests/lib/pg.sh can start one (the store is
# then stopped and restarted for real), otherwise on a SQLite file.
. "$(dirname "$0")/lib.sh"

pg=""
server_pid=""
lock_pid=""
cleanup() {
    kill $server_pid $lock_pid 2>/dev/null
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
[ -n "$pg" ] && echo "# on PostgreSQL" || echo "# on SQLite (no PostgreSQL)"
releases=${SCALE_RELEASES:-30}

# ---- the chaos test ---------------------------------------------------------------
begin "3 nodes, $releases releases, nodes killed and stopped at random: every release succeeds, nothing twice, nothing lost"
set -- --steppy "$STEPPY" --releases "$releases" --max-seconds $((120 + releases * 2))
if [ -n "$pg" ]; then
    # The store is restarted once mid-test (pg_ctl keeps the options of the start).
    if [ -n "${STEPPY_TEST_PG_CTL:-}" ]; then
        restart_cmd="$STEPPY_TEST_PG_CTL -m fast restart >/dev/null 2>&1"
    else
        restart_cmd=${STEPPY_TEST_PG_RESTART:-false}
    fi
    set -- "$@" --db "$pg" --restart-store "$restart_cmd"
fi
/usr/bin/python3 "$repo/tests/crash/scale_out.py" "$@" >"$tmp/chaos.log" 2>&1
status=$?
out=$(cat "$tmp/chaos.log")
err=""
expect_status 0
expect_out_contains ' 0 failed'
expect_out_lacks 'FAIL:'
grep '^takeover\|^releases:\|^seed' "$tmp/chaos.log" | sed 's/^/# /'
end

# ---- a store that stops taking writes ---------------------------------------------
printf 'exec:\n  enabled: true\n' >"$tmp/serve.yaml"
human='{"plan": {"name": "asks", "stages": [{"name": "go", "steps": [{"type": "Human", "name": "go", "message": "go?"}]}, {"name": "after", "steps": [{"type": "Wait", "name": "w", "seconds": 0}]}]}}'

# store_away / store_back: make the store refuse writes, and accept them again.
if [ -n "$pg" ]; then
    pg_psql 'CREATE DATABASE away' >/dev/null
    db=$(printf '%s' "$pg" | sed 's|/steppy?|/away?|')
    store_away() { pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1; }
    store_back() {
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -c fsync=on" \
            start >/dev/null 2>&1
    }
else
    db="$tmp/away.db"
    store_away() {
        touch "$tmp/hold"
        /usr/bin/python3 - "$db" "$tmp/hold" <<'EOF' &
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
        while [ ! -e "$tmp/hold.held" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    }
    store_back() { rm -f "$tmp/hold"; wait "$lock_pid" 2>/dev/null; }
fi

# cpu_ticks PID: user + system clock ticks the process used so far.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

begin 'store unreachable with nothing to record: healthz 503 "unreachable", writes 503 JSON, no spin; then healthy again'
out=""
err=""
start_server "$tmp/serve.yaml" "$db"
[ -n "$url" ] || problem "the server did not start: $(cat "$tmp/serve.log")"
id=$(submit_plan "$human")
i=0
while [ $i -lt 100 ]; do
    curl -s "$url/api/v1/executions?status=WAITING" | grep -q "$id" && break
    sleep 0.1; i=$((i + 1))
done
status=$(curl -s -o "$tmp/health" -w '%{http_code}' "$url/healthz")
out=$(cat "$tmp/health")
expect_status 200
expect_json 'd["status"] == "ok" and d["store"] == "ok"'
store_away
# Only the lease renewal (every 2 s) writes now: it must notice.
i=0
while [ $i -lt 400 ]; do
    hs=$(curl -s -o "$tmp/health" -w '%{http_code}' "$url/healthz")
    [ "$hs" = 503 ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
status=$hs
out=$(cat "$tmp/health")
expect_status 503
expect_json 'd["status"] == "unhealthy" and d["store"] == "unreachable" and d["error"]["code"] == "store-unavailable"'
# It answers anyone: the store's address (hosts, users of a URL) is not in it.
case "$pg" in
    "") expect_out_lacks "$db" ;;
    *) expect_out_lacks "host=" ;;
esac
status=$(curl -s -m 30 -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$human" "$url/api/v1/executions")
out=$(cat "$tmp/body")
expect_status 503
expect_json 'd["error"]["code"] == "store-unavailable" and d["error"]["message"]'
status=$(curl -s -m 30 -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{}' "$url/api/v1/executions/$id/steps/0/0/approve")
out=$(cat "$tmp/body")
expect_status 503
expect_json 'd["error"]["code"] == "store-unavailable"'
# No busy loop while it waits: well under half a core over 4 s (a spinning
# loop uses all of one).
t0=$(cpu_ticks "$server_pid")
sleep 4
t1=$(cpu_ticks "$server_pid")
hz=$(getconf CLK_TCK)
[ $((t1 - t0)) -lt $((hz * 2)) ] || problem "the server used $((t1 - t0)) ticks of $hz/s in 4 s while the store was away"
kill -0 "$server_pid" 2>/dev/null || problem "the server stopped: $(tail -5 "$tmp/serve.log")"
store_back
i=0
while [ $i -lt 400 ]; do
    hs=$(curl -s -o "$tmp/health" -w '%{http_code}' "$url/healthz")
    [ "$hs" = 200 ] && break
    sleep 0.1; i=$((i + 1))
done
[ "$hs" = 200 ] || problem "healthz answered $hs after the store came back"
# A connection the restart cut fails its next call once (503), as a client
# that retries on 503 would see.
i=0
while [ $i -lt 20 ]; do
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data-binary '{}' "$url/api/v1/executions/$id/steps/0/0/approve")
    [ "$status" = 503 ] || break
    sleep 0.5; i=$((i + 1))
done
out=$(cat "$tmp/body")
expect_status 200
wait_status "$id" SUCCEEDED || problem "the release did not finish after the store came back"
grep -q 'cannot record events' "$tmp/serve.log" || problem "the outage was not logged"
grep -q 'accepts writes again' "$tmp/serve.log" || problem "the recovery was not logged"
kill "$server_pid"
wait "$server_pid"
status=$?
expect_status 0
end

finish
