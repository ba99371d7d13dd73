#!/bin/sh
# t0069: every node of a shared store uses the same secret key file. The
# store records the fingerprint of the key that seals its secrets; a node
# started without that key file neither makes a key of its own nor starts
# (its releases could not be resumed by the others, nor theirs by it), a
# node with another key is refused naming its key file, and the node that
# makes a new key file says that the others must share it. steppy run,
# resume and store migrate check their key the same way. A real
# PostgreSQL 15 (tests/lib/pg.sh), real `steppy serve` processes.
. "$(dirname "$0")/lib.sh"
. "$repo/tests/lib/pg.sh"
pg_require
pid_a=""
trap 'kill $pid_a 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
db=$STEPPY_TEST_PG
mkdir -p "$tmp/a" "$tmp/b" "$tmp/c"
printf 'secretKeyFile: %s\n' "$tmp/a/secret.key" >"$tmp/a.yaml"
printf 'secretKeyFile: %s\n' "$tmp/b/secret.key" >"$tmp/b.yaml"
# serve_b: node B in the foreground; it must refuse to start (timeout: it did not)
serve_b() { run timeout 15 "$STEPPY" serve --config "$tmp/b.yaml" --listen 127.0.0.1:0 --db "$db"; }
status=0 out="" err=""

begin 'the first node makes the key file, 0600, and warns that the other nodes must share it'
start_server "$tmp/a.yaml" "$db"
pid_a=$server_pid
[ -n "$url" ] || problem "node A did not start: $(cat "$tmp/serve.log")"
[ "$(stat -c %a "$tmp/a/secret.key" 2>/dev/null)" = 600 ] || problem "no 0600 key file"
grep -q "warning: made a new secret key file $tmp/a/secret.key" "$tmp/serve.log" ||
    problem "no warning: $(cat "$tmp/serve.log")"
grep -q 'every other node' "$tmp/serve.log" || problem "the warning does not say the others need it"
end

begin 'a node without the key file does not start, and makes no key of its own'
serve_b
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || problem "node B started (status $status)"
expect_err_contains "the secret key file $tmp/b/secret.key does not exist"
expect_err_contains 'copy the secret key file from another node'
expect_err_contains 'the server does not start'
[ ! -e "$tmp/b/secret.key" ] || problem "node B made a key file"
end

begin 'a node with another key file does not start, naming it'
head -c 32 /dev/urandom >"$tmp/b/secret.key"
chmod 600 "$tmp/b/secret.key"
serve_b
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || problem "node B started (status $status)"
expect_err_contains "the secret key file $tmp/b/secret.key holds another key"
expect_err_lacks 'warning: made a new'
end

begin 'with a copy of the first key file it starts, without the warning'
cp "$tmp/a/secret.key" "$tmp/b/secret.key"
kill $pid_a
wait $pid_a 2>/dev/null
pid_a=""
start_server "$tmp/b.yaml" "$db"
pid_a=$server_pid
[ -n "$url" ] || problem "node B did not start: $(cat "$tmp/serve.log")"
grep -q 'warning' "$tmp/serve.log" && problem "a warning: $(cat "$tmp/serve.log")"
kill $pid_a
wait $pid_a 2>/dev/null
pid_a=""
end

cat >"$tmp/plan.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: hi, command: ["true"]}
PLAN
begin 'steppy run and resume with another key, or none, are refused too'
head -c 32 /dev/urandom >"$tmp/c/other.key"
chmod 600 "$tmp/c/other.key"
STEPPY_SECRET_KEY_FILE="$tmp/c/other.key" run "$STEPPY" run --db "$db" "$tmp/plan.yaml"
[ "$status" -ne 0 ] || problem "run with another key ran"
expect_err_contains "$tmp/c/other.key holds another key"
STEPPY_SECRET_KEY_FILE="$tmp/c/missing.key" run "$STEPPY" resume --db "$db" nothing
[ "$status" -ne 0 ] || problem "resume without the key file went on"
expect_err_contains "$tmp/c/missing.key does not exist"
[ ! -e "$tmp/c/missing.key" ] || problem "resume made a key file"
STEPPY_SECRET_KEY_FILE="$tmp/a/secret.key" run "$STEPPY" run --db "$db" "$tmp/plan.yaml"
expect_status 0
end

begin 'steppy store migrate with another key than the source records is refused'
STEPPY_SECRET_KEY_FILE="$tmp/c/other.key" run "$STEPPY" run --db "$tmp/src.db" "$tmp/plan.yaml"
expect_status 0
STEPPY_SECRET_KEY_FILE="$tmp/a/secret.key" run "$STEPPY" store migrate --force "$tmp/src.db" "$db"
[ "$status" -ne 0 ] || problem "migrate with another key than the source's went on"
expect_err_contains "$tmp/a/secret.key holds another key"
STEPPY_SECRET_KEY_FILE="$tmp/c/other.key" run "$STEPPY" store migrate --force "$tmp/src.db" "$db"
expect_status 0
expect_out_contains '1 release copied'
end

finish
