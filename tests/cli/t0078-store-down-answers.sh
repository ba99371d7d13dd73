#!/bin/sh
# t0078: with the PostgreSQL store down, API answers say only that the
# store is unreachable, never the store's error (it names the database
# user and the socket directory); the server log has the detail; when the
# store is back, the log says so at info level. A real
# PostgreSQL 15 (tests/lib/pg.sh), a real `steppy serve`.
. "$(dirname "$0")/lib.sh"
. "$repo/tests/lib/pg.sh"
pg_require
server_pid=""
trap 'kill $server_pid 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
status=0 out="" err=""
printf 'exec: {enabled: true}\n' >"$tmp/serve.yaml"

begin 'the store down: API answers name neither the database user nor the socket'
start_server "$tmp/serve.yaml" "$STEPPY_TEST_PG"
[ -n "$url" ] || problem "the server did not start: $(cat "$tmp/serve.log")"
id=$(submit_plan '{"plan":{"name":"one","stages":[{"name":"a","steps":[{"type":"Wait","name":"w","seconds":1}]}]}}')
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -m fast stop >/dev/null 2>&1 || problem "stop failed"
answers=""
i=0
while [ $i -lt 100 ]; do
    health=$(curl -s "$url/healthz")
    case "$health" in *unhealthy*) break ;; esac
    sleep 0.1
    i=$((i + 1))
done
for path in /api/v1/executions "/api/v1/executions/$id" "/api/v1/executions/$id/events" \
    "/api/v1/executions/$id/abort"; do
    answers="$answers $(curl -s "$url$path")"
done
answers="$answers $(curl -s -X POST -H 'Content-Type: application/json' \
    --data-binary '{"plan":{"name":"down","stages":[{"name":"a","steps":[{"type":"Wait","name":"w","seconds":1}]}]}}' \
    "$url/api/v1/executions")"
case "$answers" in *store-*) ;; *) problem "no store error answered: $answers" ;; esac
case "$answers" in *"$PG_DIR"*|*steppy@*|*"cannot connect"*|*socket*) problem "an answer names the store: $answers" ;; esac
case "$answers" in *unreachable*) ;; *) problem "no answer says the store is unreachable: $answers" ;; esac
grep -q "$PG_DIR" "$tmp/serve.log" || problem "the log lacks the detail: $(tail -5 "$tmp/serve.log")"
end

begin 'the store back: the log says so as good news (info), not as an error'
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start >/dev/null 2>&1 ||
    problem "start failed"
wait_file "$tmp/serve.log" 'accepts writes again' || problem "no recovery line: $(tail -5 "$tmp/serve.log")"
grep 'accepts writes again' "$tmp/serve.log" | grep -q 'server.info' ||
    problem "the recovery is not an info line: $(grep 'accepts writes again' "$tmp/serve.log")"
! grep 'accepts writes again' "$tmp/serve.log" | grep -q 'server.error' ||
    problem "the recovery is logged as an error"
end

finish
