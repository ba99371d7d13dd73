#!/bin/sh
# t0052: what the store file holds stays private. The store (and its -wal
# and -shm files) is created 0600 whatever the umask; `secret: true` values
# are sealed in a table encrypted with a key file outside the store, so a
# copy of the store file does not leak them, while a resume after SIGKILL
# still sends the same StartBuild with the right secret.
. "$(dirname "$0")/lib.sh"

mode() { stat -c %a "$1"; }

cat >"$tmp/hello.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: hi, command: ["true"]}
PLAN

begin 'a new store in an existing directory is 0600, also its -wal and -shm, whatever the umask'
status=0 out= err=
mkdir -p "$tmp/state"
(umask 022 && "$STEPPY" run --db "$tmp/state/a.db" "$tmp/hello.yaml" >/dev/null 2>&1)
[ "$(mode "$tmp/state/a.db")" = 600 ] || problem "store mode $(mode "$tmp/state/a.db")"
# a run that waits, so the -wal and -shm files exist while we look
cat >"$tmp/sleepy.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: nap, command: ["sleep", "2"]}
PLAN
(umask 000 && exec "$STEPPY" run --db "$tmp/state/b.db" "$tmp/sleepy.yaml" >/dev/null 2>&1) &
pid=$!
i=0
while [ ! -e "$tmp/state/b.db-shm" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
for f in "$tmp/state/b.db" "$tmp/state/b.db-wal" "$tmp/state/b.db-shm"; do
    [ -e "$f" ] || problem "$f missing"
    [ ! -e "$f" ] || [ "$(mode "$f")" = 600 ] || problem "$f mode $(mode "$f") under umask 000"
done
wait $pid
end

# ---- secret: true values ---------------------------------------------------------
export STEPPY_DB="$tmp/sec.db" XDG_STATE_HOME="$tmp/xdg"
unset STEPPY_SECRET_KEY_FILE
start_fake_aws
trap 'kill $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
configure() { curl -sf -XPOST "$fake/_fake/configure" -d "$1" >/dev/null || echo "configure failed: $1"; }
fake_calls() { curl -sf "$fake/_fake/calls?operation=$1"; }
last_id() { "$STEPPY" list --limit 1 --format json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["executions"][0]["id"])'; }
# store_leaks FILE...: prints the secret values found in the files, raw or through SQLite
store_leaks() {
    for f in "$@"; do
        [ -e "$f" ] || continue
        strings -a "$f"
        case "$f" in *.db) sqlite3 "$f" .dump 2>/dev/null ;; esac
    done | grep -o -e 'plainsecret-4711' -e 'varsecret-0815' | sort -u
}
configure '{"codebuild": {"projects": {"sealed": {"durationSeconds": 3}}}}'
cat >"$tmp/secret.yaml" <<'PLAN'
variables:
  API_KEY: {description: a key for the build}
stages:
  - name: build
    steps:
      - type: CodeBuild
        name: Build
        codeBuildName: sealed
        environmentVariableOverrides:
          - {name: TOKEN, value: plainsecret-4711, secret: true}
          - {name: API_KEY, value: "${var.API_KEY}", secret: true}
          - {name: VISIBLE, value: shown-value}
PLAN

begin 'secret values are not in the store file; the key file is 0600 outside it'
run "$STEPPY" run "$tmp/secret.yaml" --var API_KEY=varsecret-0815
expect_status 0
leaks=$(store_leaks "$tmp/sec.db" "$tmp/sec.db-wal")
[ -z "$leaks" ] || problem "the store holds: $leaks"
sqlite3 "$tmp/sec.db" .dump | grep -q 'shown-value' || problem "the plan itself is not in the store"
key="$tmp/xdg/steppy/secret.key"
[ -f "$key" ] || problem "no key file at $key"
[ ! -f "$key" ] || [ "$(mode "$key")" = 600 ] || problem "key mode $(mode "$key")"
calls=$(fake_calls StartBuild)
case "$calls" in *plainsecret-4711*varsecret-0815* | *varsecret-0815*plainsecret-4711*) ;; *) problem "StartBuild lacks the secrets: $calls" ;; esac
run "$STEPPY" history "$(last_id)" --format json
expect_out_lacks 'plainsecret-4711'
expect_out_lacks 'varsecret-0815'
expect_out_contains 'shown-value'
end

begin 'SIGKILL after StartBuild reached AWS: resume sends the same StartBuild, secrets included'
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "slow-after", "seconds": 5, "count": 1}]}'
"$STEPPY" run "$tmp/secret.yaml" --var API_KEY=varsecret-0815 >"$tmp/a.out" 2>&1 &
pid=$!
sleep 1.5
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
leaks=$(store_leaks "$tmp/sec.db" "$tmp/sec.db-wal")
[ -z "$leaks" ] || problem "the store holds after the kill: $leaks"
run "$STEPPY" resume "$id"
expect_status 0
fake_calls StartBuild >"$tmp/calls.json"
/usr/bin/python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 2, len(c)
assert c[0]["params"] == c[1]["params"], c
env = {e["name"]: e["value"] for e in c[1]["params"]["environmentVariablesOverride"]}
assert env == {"TOKEN": "plainsecret-4711", "API_KEY": "varsecret-0815", "VISIBLE": "shown-value"}, env
' "$tmp/calls.json" || problem "the resumed StartBuild differs"
end

begin 'a copy of the store alone: readable, secrets masked; resuming without the key says why'
curl -sf -XPOST "$fake/_fake/reset?only=calls" >/dev/null
configure '{"faults": [{"service": "codebuild", "operation": "StartBuild", "kind": "slow-after", "seconds": 5, "count": 1}]}'
"$STEPPY" run "$tmp/secret.yaml" --var API_KEY=varsecret-0815 >"$tmp/a.out" 2>&1 &
pid=$!
sleep 1.5
kill -9 $pid
wait $pid 2>/dev/null
id=$(last_id)
mkdir -p "$tmp/elsewhere"
sqlite3 "$tmp/sec.db" ".backup '$tmp/elsewhere/copy.db'"
XDG_STATE_HOME="$tmp/elsewhere/xdg" run "$STEPPY" show --db "$tmp/elsewhere/copy.db" "$id"
expect_status 0
XDG_STATE_HOME="$tmp/elsewhere/xdg" run "$STEPPY" resume --db "$tmp/elsewhere/copy.db" "$id"
[ "$status" -ne 0 ] || problem "resumed without the key"
expect_err_contains 'secret'
# the killed run's StartBuild is recorded when the fake answers it (5 s)
count_starts() { fake_calls StartBuild | /usr/bin/python3 -c "import json,sys; print(len(json.load(sys.stdin)))"; }
i=0
while [ "$(count_starts)" -lt 1 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
n=$(count_starts)
[ "$n" = 1 ] || problem "$n StartBuild calls: the copy without its key sent one"
fake_calls StartBuild | grep -q '[*][*][*][*]' && problem "a StartBuild carried ****"
run "$STEPPY" resume "$id"
expect_status 0
end

begin 'steppy serve: secretKeyFile; submitted secrets are sealed, the API shows ****'
printf 'secretKeyFile: %s\n' "$tmp/serve/secret.key" >"$tmp/serve.yaml"
start_server "$tmp/serve.yaml" "$tmp/serve.db"
trap 'kill $server_pid $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
body=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps({"plan": open(sys.argv[1]).read(), "name": "secret.yaml", "variables": {"API_KEY": "varsecret-0815"}}))' "$tmp/secret.yaml")
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$body" "$url/api/v1/executions")
[ "$status" = 201 ] || problem "submit: $status $(cat "$tmp/body")"
sid=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/body")
i=0
while [ $i -lt 100 ]; do
    curl -s "$url/api/v1/executions/$sid" >"$tmp/body"
    grep -q '"status":"SUCCEEDED"' "$tmp/body" && break
    sleep 0.1; i=$((i + 1))
done
grep -q '"status":"SUCCEEDED"' "$tmp/body" || problem "not SUCCEEDED: $(cat "$tmp/body")"
[ "$(mode "$tmp/serve/secret.key")" = 600 ] || problem "no 0600 key file at secretKeyFile"
leaks=$(store_leaks "$tmp/serve.db" "$tmp/serve.db-wal")
[ -z "$leaks" ] || problem "the server's store holds: $leaks"
curl -s "$url/api/v1/executions/$sid/events" >"$tmp/body"
grep -q 'plainsecret-4711\|varsecret-0815' "$tmp/body" && problem "the API shows a secret"
grep -q '[*][*][*][*]' "$tmp/body" || problem "the API shows no ****"
kill $server_pid; wait $server_pid 2>/dev/null
end


begin 'a store path that is a link to nothing is refused, not created with the umask mode'
mkdir -p "$tmp/lnk"
ln -s "$tmp/lnk/target.db" "$tmp/lnk/link.db"
printf 'stages: [{name: s, steps: [{type: Wait, name: w, seconds: 0}]}]\n' >"$tmp/lnk/p.yaml"
run sh -c "umask 022; exec \"\$0\" run --db \"\$1\" \"\$2\"" "$STEPPY" "$tmp/lnk/link.db" "$tmp/lnk/p.yaml"
expect_status 2
expect_err_contains 'symbolic link to a file that does not exist'
[ -e "$tmp/lnk/target.db" ] && problem "the link's target was created: $(ls -l "$tmp/lnk")"
end

finish
