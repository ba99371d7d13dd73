#!/bin/sh
# t0066: a PostgreSQL store named by URL (--db, STEPPY_DB): steppy run
# records a release there end to end, list, show and history read it back,
# store check checks it and store backup points to pg_dump; a URL is never
# taken for a file name (it once made a SQLite file "postgresql:"), and its
# password never shows in a message. A real PostgreSQL 15 on a Unix socket
# (tests/lib/pg.sh), the real binary.
. "$(dirname "$0")/lib.sh"
. "$repo/tests/lib/pg.sh"
pg_require
trap 'pg_stop; rm -rf "$tmp"' EXIT

cat >"$tmp/plan.yaml" <<'EOF2'
name: pg-smoke
stages:
  - name: build
    steps:
      - name: hello
        type: Exec
        command: ["sh", "-c", "echo hello from postgres"]
      - name: pause
        type: Wait
        seconds: 1
EOF2

cd "$tmp" || exit 2

begin 'steppy run --db postgresql://... runs a plan to the end'
run "$STEPPY" run --db "$STEPPY_TEST_PG" plan.yaml
expect_status 0
expect_out_contains 'SUCCEEDED'
end
id=$(printf '%s\n' "$out" | sed -n 's/.*release \([0-9a-z]*\) .*started.*/\1/p' | head -n 1)

begin 'no file or directory named after the URL appears'
[ ! -e "$tmp/postgresql:" ] || problem "a file \"postgresql:\" was created"
# ($tmp holds the plan and lib.sh's out and err, nothing else)
[ -z "$(ls "$tmp" | grep -v -e '^plan.yaml$' -e '^out$' -e '^err$')" ] ||
    problem "unexpected files: $(ls "$tmp")"
end

begin 'steppy list --db URL reads it back'
run "$STEPPY" list --db "$STEPPY_TEST_PG" --format json
expect_status 0
expect_json "[(e['id'], e['status']) for e in d['executions']] == [('$id', 'SUCCEEDED')]"
end

begin 'steppy show and history --db URL read the release'
run "$STEPPY" show --db "$STEPPY_TEST_PG" "$id"
expect_status 0
expect_out_contains 'pg-smoke'
expect_out_contains 'SUCCEEDED'
run "$STEPPY" history --db "$STEPPY_TEST_PG" "$id"
expect_status 0
expect_out_contains 'hello'
end

begin 'STEPPY_DB may name the PostgreSQL store too'
STEPPY_DB="$STEPPY_TEST_PG" run "$STEPPY" list
expect_status 0
expect_out_contains "$id"
end

begin 'steppy store check checks the database; store backup points to pg_dump'
run "$STEPPY" store check --db "$STEPPY_TEST_PG"
expect_status 0
expect_out_contains ': ok (schema 2'
run "$STEPPY" store backup --db "$STEPPY_TEST_PG" "$tmp/copy.db"
expect_status 2
expect_err_contains 'pg_dump'
[ ! -e "$tmp/copy.db" ] || problem "a backup file was written"
end

begin 'an unreachable URL fails clearly, without its password, and makes no file'
run "$STEPPY" list --db "postgresql://alice:hunter2@/steppy?host=$tmp/nowhere&connect_timeout=2"
expect_status 2
expect_err_contains 'cannot connect to PostgreSQL at postgresql://alice@/steppy?host='
expect_err_lacks 'hunter2'
run "$STEPPY" run --db "postgres://bob:hunter2@/steppy?host=$tmp/nowhere&connect_timeout=2" plan.yaml
[ "$status" -ne 0 ] || problem "run succeeded without a database"
expect_err_lacks 'hunter2'
[ ! -e "$tmp/postgresql:" ] && [ ! -e "$tmp/postgres:" ] || problem "a file was created"
end

begin 'a database without steppy schema is refused by commands that only read'
pg_psql 'CREATE DATABASE other' >/dev/null
other=$(printf '%s' "$STEPPY_TEST_PG" | sed 's|:///steppy?|:///other?|')
run "$STEPPY" list --db "$other"
expect_status 2
expect_err_contains 'not a steppy store'
end

begin 'steppy serve on PostgreSQL carries a release on across a database restart and a stop'
printf 'exec: {enabled: true}\n' >"$tmp/serve.yaml"
start_server "$tmp/serve.yaml" "$STEPPY_TEST_PG"
trap 'kill $server_pid 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
[ -n "$url" ] || problem "the server did not start: $(cat "$tmp/serve.log")"
id=$(submit_plan '{"plan":{"name":"across","stages":[{"name":"a","steps":[{"type":"Wait","name":"w","seconds":2}]},{"name":"b","steps":[{"type":"Exec","name":"e","command":["true"]}]}]}}')
pg_restart || problem "pg_ctl restart failed"
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -m fast stop >/dev/null 2>&1 || problem "stop failed"
sleep 3
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start >/dev/null 2>&1 ||
    problem "start failed"
i=0
while [ $i -lt 300 ] && ! curl -s "$url/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"'; do
    sleep 0.1
    i=$((i + 1))
done
curl -s "$url/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"' ||
    problem "release $id did not succeed: $(curl -s "$url/api/v1/executions/$id" | head -c 300)"
kill -0 "$server_pid" 2>/dev/null || problem "the server died"
grep 'store' "$tmp/serve.log" | sed 's/^/    log: /'
kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
run "$STEPPY" store check --db "$STEPPY_TEST_PG" # histories without a gap
expect_status 0
end

# store migrate: a SQLite store with a finished release, a failed one, an
# inbox command and settings, copied into an empty PostgreSQL database.
cat >"$tmp/fail.yaml" <<'EOF2'
name: pg-fails
stages:
  - name: s
    steps:
      - name: no
        type: Exec
        command: ["false"]
EOF2
sq="$tmp/sq/steppy.db"
"$STEPPY" run --db "$sq" plan.yaml >/dev/null 2>&1
"$STEPPY" run --db "$sq" fail.yaml >/dev/null 2>&1
pg_psql 'CREATE DATABASE mig' >/dev/null
mig=$(printf '%s' "$STEPPY_TEST_PG" | sed 's|:///steppy?|:///mig?|')

begin 'steppy store migrate copies a SQLite store into PostgreSQL'
run "$STEPPY" store migrate "$sq" "$mig"
expect_status 0
expect_out_contains '2 releases copied'
run "$STEPPY" list --db "$sq" --format json
before=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(sorted((e["id"], e["status"], e["events"]) for e in json.load(sys.stdin)["executions"]))')
run "$STEPPY" list --db "$mig" --format json
after=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(sorted((e["id"], e["status"], e["events"]) for e in json.load(sys.stdin)["executions"]))')
[ "$before" = "$after" ] || problem "lists differ: $before vs $after"
for x in $(printf '%s' "$before" | tr -d "[]()',"  | awk '{for (i = 1; i <= NF; i += 3) print $i}'); do
    a=$("$STEPPY" history --db "$sq" --format json "$x" 2>&1)
    b=$("$STEPPY" history --db "$mig" --format json "$x" 2>&1)
    [ "$a" = "$b" ] || problem "history of $x differs"
done
run "$STEPPY" store check --db "$mig"
expect_status 0
end

begin 'store migrate refuses a target that holds releases, unless --force'
run "$STEPPY" store migrate "$sq" "$mig"
expect_status 2
expect_err_contains 'holds 2 releases already; --force'
run "$STEPPY" store migrate --force "$sq" "$mig"
expect_status 0
expect_out_contains '0 releases copied, 0 replaced, 2 already there'
run "$STEPPY" list --db "$mig" --format json
expect_json "len(d['executions']) == 2"
run "$STEPPY" store check --db "$mig"
expect_status 0
run "$STEPPY" store migrate "$mig" "$sq"
expect_status 2
end

begin 'near-miss URLs (postgresql:/x, postgres:x) are bad URLs, never a file or directory'
for u in 'postgresql:/steppy' 'postgres:steppy' 'POSTGRESQL:steppy'; do
    run "$STEPPY" list --db "$u"
    expect_status 2
    expect_err_contains 'the store URL is not a valid PostgreSQL URL'
    run "$STEPPY" run --db "$u" plan.yaml
    [ "$status" -ne 0 ] || problem "run --db $u succeeded"
done
[ ! -e "$tmp/postgresql:" ] && [ ! -e "$tmp/postgres:steppy" ] && [ ! -e "$tmp/POSTGRESQL:steppy" ] ||
    problem "a file or directory was made: $(ls "$tmp")"
end

begin 'hostile URLs: no password shows in a message, whatever its form'
for u in "postgresql://alice:Tr0ub4dor#3@/steppy?host=$tmp/nowhere" \
    "postgres:///steppy?host=$tmp/nowhere&pass%77ord=Tr0ub4dor" \
    "postgres:///steppy?host=$tmp/nowhere&%70assword=Tr0ub4dor" \
    "postgres:///steppy?host=$tmp/nowhere&sslpassword=Tr0ub4dor" \
    "postgres:///steppy?host=$tmp/nowhere&password=p%zzTr0ub4dor"; do
    run "$STEPPY" list --db "$u"
    expect_status 2
    expect_err_lacks 'Tr0ub4dor'
    run "$STEPPY" run --db "$u" plan.yaml
    expect_err_lacks 'Tr0ub4dor'
done
run "$STEPPY" list --db "postgres:///steppy?host=$tmp/nowhere&password=p%zzTr0ub4dor"
expect_err_contains 'the store URL is not a valid PostgreSQL URL'
end

begin 'steppy serve --db with a password: the store down, no answer, log or healthz shows it'
pw_url="postgresql://steppy:Tr0ub4dor#3@/steppy?host=$PG_DIR"
start_server "$tmp/serve.yaml" "$pw_url"
[ -n "$url" ] || problem "the server did not start: $(cat "$tmp/serve.log")"
# a running release: its next events find the store down
submit_plan '{"plan":{"name":"busy","stages":[{"name":"a","steps":[{"type":"Wait","name":"w","seconds":1}]},{"name":"b","steps":[{"type":"Exec","name":"e","command":["true"]}]}]}}' >/dev/null
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -m fast stop >/dev/null 2>&1 || problem "stop failed"
answers=""
i=0
while [ $i -lt 100 ]; do
    answers="$answers $(curl -s -X POST -H 'Content-Type: application/json' \
        --data-binary '{"plan":{"name":"down","stages":[{"name":"a","steps":[{"type":"Wait","name":"w","seconds":1}]}]}}' \
        "$url/api/v1/executions")"
    health=$(curl -s "$url/healthz")
    answers="$answers $health $(curl -s "$url/api/v1/executions")"
    case "$health" in *unhealthy*) break ;; esac
    sleep 0.1
    i=$((i + 1))
done
case "$health" in *unhealthy*) ;; *) problem "healthz never said the store is down: $health" ;; esac
case "$health" in *'store unreachable'*) ;; *) problem "healthz: $health" ;; esac
case "$health" in *postgres*|*"$PG_DIR"*|*steppy@*) problem "healthz names the store: $health" ;; esac
case "$answers" in *Tr0ub4dor*) problem "an API answer has the password: $answers" ;; esac
case "$answers" in *store-unavailable*) ;; *) problem "no 503 while the store was down: $answers" ;; esac
pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w start >/dev/null 2>&1 ||
    problem "start failed"
kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
! grep -q 'Tr0ub4dor' "$tmp/serve.log" || problem "the log has the password: $(grep Tr0ub4dor "$tmp/serve.log")"
grep -q 'postgresql://steppy@/steppy' "$tmp/serve.log" || problem "the log does not name the store: $(head -5 "$tmp/serve.log")"
end

# store migrate while steppy runs a release of the source, then again with
# --force once it went on: refused naming the release, copied from one
# snapshot with --ignore-leases, then replaced whole; the target always
# checks ok and the counts say what was done.
cat >"$tmp/ask.yaml" <<'EOF2'
name: pg-ask
stages:
  - name: s
    steps:
      - {type: Human, name: go, message: Ship it?, approvers: [alice]}
      - {type: Exec, name: after, command: ['true']}
EOF2
sq2="$tmp/sq2/steppy.db"
mkdir -p "$tmp/sq2"
"$STEPPY" list --db "$sq2" >/dev/null 2>&1
USER=dave "$STEPPY" run --db "$sq2" ask.yaml >"$tmp/ask.out" 2>&1 &
ask_pid=$!
trap 'kill $ask_pid 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
i=0
while [ $i -lt 150 ] && ! "$STEPPY" list --db "$sq2" 2>/dev/null | grep -q 'approval of "go"'; do
    sleep 0.1
    i=$((i + 1))
done
ask_id=$("$STEPPY" list --db "$sq2" --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])')
pg_psql 'CREATE DATABASE mig2' >/dev/null
mig2=$(printf '%s' "$STEPPY_TEST_PG" | sed 's|:///steppy?|:///mig2?|')

begin 'store migrate refuses while a steppy process runs a release, naming it'
run "$STEPPY" store migrate "$sq2" "$mig2"
expect_status 2
expect_err_contains "1 release of the source is run by steppy now: $ask_id"
expect_err_contains '--ignore-leases'
run "$STEPPY" list --db "$mig2" --format json
expect_json "len(d['executions']) == 0"
end

begin 'store migrate --ignore-leases copies what is stored now; check says ok'
run "$STEPPY" store migrate --ignore-leases "$sq2" "$mig2"
expect_status 0
expect_out_contains '1 release copied, 0 replaced, 0 already there'
run "$STEPPY" store check --db "$mig2"
expect_status 0
end

begin 'store migrate --force replaces a release that went on in the source, whole'
run "$STEPPY" approve --db "$sq2" --by alice "$ask_id" go
expect_status 0
wait "$ask_pid"
run "$STEPPY" show --db "$sq2" "$ask_id"
expect_out_contains 'SUCCEEDED'
run "$STEPPY" store migrate --force "$sq2" "$mig2"
expect_status 0
expect_out_contains '0 releases copied, 1 replaced, 0 already there; 1 inbox command copied'
run "$STEPPY" store check --db "$mig2"
expect_status 0
a=$("$STEPPY" history --db "$sq2" --format json "$ask_id" 2>&1)
b=$("$STEPPY" history --db "$mig2" --format json "$ask_id" 2>&1)
[ "$a" = "$b" ] || problem "history of $ask_id differs after --force"
run "$STEPPY" store migrate --force "$sq2" "$mig2"
expect_status 0
expect_out_contains '0 releases copied, 0 replaced, 1 already there; 0 inbox commands copied, 0 under a new id, 1 already there'
run "$STEPPY" store check --db "$mig2"
expect_status 0
end

# serve_briefly URL [ENV=VALUE]: a server on URL, asked for /healthz,
# /metrics and the list if it starts, then stopped; everything it says and
# answers goes to $tmp/pw.out.
serve_briefly() {
    : >"$tmp/pw-serve.log"
    env ${2:+"$2"} "$STEPPY" serve --config "$tmp/serve.yaml" --listen 127.0.0.1:0 --db "$1" \
        >"$tmp/pw-serve.log" 2>&1 &
    brief=$!
    i=0
    while kill -0 $brief 2>/dev/null && ! grep -q 'listening on' "$tmp/pw-serve.log" && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    at=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/pw-serve.log")
    if [ -n "$at" ]; then
        curl -s "$at/healthz"
        curl -s "$at/metrics"
        curl -s "$at/api/v1/executions"
    fi >>"$tmp/pw.out" 2>&1
    kill $brief 2>/dev/null
    wait $brief 2>/dev/null
    cat "$tmp/pw-serve.log" >>"$tmp/pw.out"
}

begin 'a distinctive password anywhere in the URL, or in PGPASSWORD, shows in no output, log or file'
pw=Qx9distinctPW
: >"$tmp/pw.out"
for u in "postgres:///steppy?host=$PG_DIR&password=$pw" \
    "postgresql://steppy:$pw@/steppy?host=$PG_DIR" \
    "postgresql://steppy:Qx9distinct%50W@/steppy?host=$PG_DIR" \
    "postgres:///?host=$PG_DIR&dbname=postgres://u:$pw@h/db" \
    "postgres:///?host=$PG_DIR&dbname=host%3Dx%20password%3D$pw" \
    "postgres:///steppy?host=$PG_DIR&port=$pw" \
    "postgresql://steppy@localhost:$pw/steppy" \
    "postgres:///steppy?host=$PG_DIR&user=steppy:$pw" \
    "postgresql://steppy%3A$pw@/steppy?host=$PG_DIR" \
    "postgres:///steppy?host=$PG_DIR&sslpassword=$pw&sslmode=disable"; do
    {
        "$STEPPY" list --db "$u"
        "$STEPPY" store check --db "$u"
        "$STEPPY" run --db "$u" plan.yaml
        "$STEPPY" store migrate "$sq" "$u"
    } >>"$tmp/pw.out" 2>&1
    serve_briefly "$u"
done
"$STEPPY" list --db "postgres:///nodb?host=$PG_DIR" >>"$tmp/pw.out" 2>&1
PGPASSWORD=$pw "$STEPPY" list --db "postgres:///nodb?host=$PG_DIR" >>"$tmp/pw.out" 2>&1
PGPASSWORD=$pw "$STEPPY" run --db "$STEPPY_TEST_PG" plan.yaml >>"$tmp/pw.out" 2>&1
serve_briefly "$STEPPY_TEST_PG" "PGPASSWORD=$pw"
grep -q 'listening on' "$tmp/pw.out" || problem "no server started: $(head -c 600 "$tmp/pw.out")"
grep -q 'store unreachable\|cannot connect' "$tmp/pw.out" || problem "no failure was tried"
if grep -q "$pw\|distinct%50W" "$tmp/pw.out"; then
    problem "shown: $(grep -o ".\{0,100\}distinct.\{0,30\}" "$tmp/pw.out" | head -5)"
fi
leaked=$(grep -rl "$pw\|distinct%50W" "$tmp" | grep -v "^$tmp/pw.out$")
[ -z "$leaked" ] || problem "in files: $leaked"
end

begin 'store check names the release of each damage it finds'
run "$STEPPY" store check --db "$STEPPY_TEST_PG"
expect_status 0
pg_psql "DELETE FROM events WHERE execution_id = '$id' AND seq = 2" >/dev/null
run "$STEPPY" store check --db "$STEPPY_TEST_PG"
expect_status 1
expect_err_contains "is damaged: release $id: its history has a gap"
end

finish
