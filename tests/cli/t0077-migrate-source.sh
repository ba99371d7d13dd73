#!/bin/sh
# t0077: steppy store migrate only reads its SQLite source. A source that
# records no secret key stays so, whatever key the migrating process has
# (a wrong default key must not become the old store's), a refusal for
# another key says what to do for migrate (point STEPPY_SECRET_KEY_FILE at
# the service's key, not copy a key over one's own), a store without
# secret values is not said to have any, and the end of migrate says that
# the source must no longer be served, run or resumed. A real PostgreSQL
# 15 (tests/lib/pg.sh).
. "$(dirname "$0")/lib.sh"
. "$repo/tests/lib/pg.sh"
pg_require
trap 'pg_stop; rm -rf "$tmp"' EXIT
db=$STEPPY_TEST_PG
status=0 out="" err=""
cat >"$tmp/plan.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: hi, command: ["true"]}
PLAN
head -c 32 /dev/urandom >"$tmp/root.key"
head -c 32 /dev/urandom >"$tmp/service.key"
chmod 600 "$tmp/root.key" "$tmp/service.key"

begin 'migrate leaves a source that records no key without one'
STEPPY_SECRET_KEY_FILE="$tmp/none.key" run "$STEPPY" run --db "$tmp/src.db" "$tmp/plan.yaml"
expect_status 0
cp "$tmp/src.db" "$tmp/before.db"
STEPPY_SECRET_KEY_FILE="$tmp/root.key" run "$STEPPY" store migrate "$tmp/src.db" "$db"
expect_status 0
expect_out_contains '1 release copied'
cmp -s "$tmp/src.db" "$tmp/before.db" || problem "migrate changed its source file"
# the service's key still opens the old store (it records none)
STEPPY_SECRET_KEY_FILE="$tmp/service.key" run "$STEPPY" run --db "$tmp/src.db" "$tmp/plan.yaml"
expect_status 0
end

begin 'migrate says that the source must no longer be served, run or resumed'
STEPPY_SECRET_KEY_FILE="$tmp/service.key" run "$STEPPY" store migrate --force "$tmp/src.db" "$db"
expect_status 0
expect_out_contains "do not serve, run or resume $tmp/src.db"
end

begin 'a migrate with another key says to name the service key, not to copy one over it'
STEPPY_SECRET_KEY_FILE="$tmp/root.key" run "$STEPPY" store migrate --force "$tmp/src.db" "$db"
[ "$status" -ne 0 ] || problem "migrate with another key than the source's went on"
expect_err_contains "$tmp/root.key holds another key"
expect_err_contains "STEPPY_SECRET_KEY_FILE"
expect_err_lacks "over it"
expect_err_lacks "secret values are sealed"
expect_err_contains "this store records"
end

begin 'serve with another key is told to copy the shared key (the store records one)'
printf 'secretKeyFile: %s\n' "$tmp/root.key" >"$tmp/n.yaml"
run timeout 15 "$STEPPY" serve --config "$tmp/n.yaml" --listen 127.0.0.1:0 --db "$tmp/src.db"
[ "$status" -ne 0 ] && [ "$status" -ne 124 ] || problem "serve with another key started"
expect_err_contains "copy the secret key file from another node"
expect_err_lacks "secret values are sealed"
end

finish
