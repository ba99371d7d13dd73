#!/bin/sh
# t0010: steppy serve's inbox directory: each dropped plan file starts
# exactly one release, also across a restart (SIGKILL); its outcome is
# written next to it (0600, never through a symlink); invalid plans get
# their errors there, reported once (not again after a restart); symlinks
# are not followed; half-written files wait; variables come from
# NAME.vars.json; an extension-less `input` is sniffed (JSONC or YAML).
. "$(dirname "$0")/lib.sh"
umask 000 # results are 0600 whatever the umask
db="$tmp/steppy.db"
mkdir -p "$tmp/inbox"
cat >"$tmp/config.yaml" <<EOF
inbox:
  directory: $tmp/inbox
  pollSeconds: 1
EOF

# wait_result FILE STATUS: until FILE.result.json says STATUS (up to 20 s)
wait_result() {
    i=0
    while [ $i -lt 200 ]; do
        grep -q "\"status\": \"$2\"" "$1.result.json" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
count_releases() { "$STEPPY" list --db "$db" --limit 1000 --format json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))'; }
# count_plan NAME: releases of plan NAME
count_plan() { "$STEPPY" list --db "$db" --limit 1000 --format json | /usr/bin/python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["executions"] if e["plan"] == sys.argv[1]))' "$1"; }
# steps_of FILE: the step names of the release named in FILE.result.json
steps_of() {
    "$STEPPY" show --db "$db" --format json \
        "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$1.result.json")" |
        /usr/bin/python3 -c 'import json,sys; print(" ".join(s["name"] for st in json.load(sys.stdin)["stages"] for s in st["steps"]))'
}

# stop_server: SIGTERM, wait; a sanitizer's report in the log is a failure
stop_server() {
    kill -TERM $server_pid
    wait $server_pid 2>/dev/null
    begin 'the server stopped cleanly (no sanitizer report)'
    grep -E 'Sanitizer|runtime error' "$tmp/serve.log" && problem "sanitizer report"
    end
}

start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT

begin 'a plan dropped into the inbox starts one release; its result is written next to it'
cat >"$tmp/inbox/.release.yaml.part" <<'EOF'
name: from-inbox
stages:
  - name: s
    steps:
      - {type: Wait, name: w, seconds: 3}
EOF
mv "$tmp/inbox/.release.yaml.part" "$tmp/inbox/release.yaml"
wait_result "$tmp/inbox/release.yaml" RUNNING || problem "no RUNNING result"
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/inbox/release.yaml.result.json")
run "$STEPPY" show --db "$db" "$id" --format json
expect_json 'd["status"] == "RUNNING" and d["startedBy"].startswith("inbox:") and d["plan"] == "from-inbox"'
end

begin 'SIGKILL of the server, restart: the same file does not start a second release'
kill -9 $server_pid
wait $server_pid 2>/dev/null
start_server "$tmp/config.yaml" "$db"
wait_result "$tmp/inbox/release.yaml" SUCCEEDED || problem "no SUCCEEDED result"
sleep 2.5 # more polls
n=$(count_releases)
[ "$n" = 1 ] || problem "$n releases"
run "$STEPPY" show --db "$db" "$id" --format json
expect_json 'd["status"] == "SUCCEEDED"'
end

begin 'an invalid plan gets its errors in the result file and starts nothing'
printf '{ "stages": [ { "name": "s", "steps": [ { "type": "Wait", "name": "w", "seconds": -1 } ] } ] }\n' \
    >"$tmp/inbox/bad.json"
wait_result "$tmp/inbox/bad.json" INVALID || problem "no INVALID result"
run cat "$tmp/inbox/bad.json.result.json"
expect_json 'd["errors"][0]["pointer"] == "/stages/0/steps/0/seconds" and d["errors"][0]["line"] == 1'
n=$(count_releases)
[ "$n" = 1 ] || problem "$n releases"
end

begin 'a plan naming a channel the server does not have is INVALID, naming it'
printf '{ "stages": [ { "name": "s", "steps": [ { "type": "Human", "name": "h", "message": "?", "channels": ["ops"] } ] } ] }\n' \
    >"$tmp/inbox/chan.json"
wait_result "$tmp/inbox/chan.json" INVALID || problem "no INVALID result"
run cat "$tmp/inbox/chan.json.result.json"
expect_json 'd["errors"][0]["pointer"] == "/stages/0/steps/0/channels/0" and "no channel \"ops\" is configured: this server has no channels" in d["errors"][0]["message"]'
n=$(count_releases)
[ "$n" = 1 ] || problem "$n releases"
end

begin 'a changed file starts a new release; other files are ignored'
sleep 1.1
cat >"$tmp/inbox/release.yaml" <<'EOF'
name: from-inbox-2
stages:
  - name: s
    steps:
      - {type: Wait, name: w, seconds: 0}
EOF
echo 'not a plan' >"$tmp/inbox/notes.txt"
i=0
while [ $i -lt 200 ] && grep -q "$id" "$tmp/inbox/release.yaml.result.json"; do sleep 0.1; i=$((i + 1)); done
wait_result "$tmp/inbox/release.yaml" SUCCEEDED || problem "no SUCCEEDED result"
run cat "$tmp/inbox/release.yaml.result.json"
expect_json 'd["id"] != "'"$id"'" and d["status"] == "SUCCEEDED"'
n=$(count_releases)
[ "$n" = 2 ] || problem "$n releases"
end

begin 'a result says RUNNING only once its release is recorded (store write-locked meanwhile)'
# Another process holds the store's write lock for 4 s: the release cannot be
# recorded until then, so no result may name it before.
/usr/bin/python3 - "$db" "$tmp/locked" <<'EOF' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
time.sleep(4)
c.execute("ROLLBACK")
EOF
locker=$!
i=0
while [ ! -e "$tmp/locked" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
cat >"$tmp/inbox/.locked.yaml.part" <<'EOF'
name: while-locked
stages:
  - name: s
    steps:
      - {type: Wait, name: w, seconds: 1}
EOF
mv "$tmp/inbox/.locked.yaml.part" "$tmp/inbox/locked.yaml"
i=0
while kill -0 $locker 2>/dev/null && [ $i -lt 60 ]; do
    if [ -e "$tmp/inbox/locked.yaml.result.json" ]; then
        problem "a result was written while the release could not be recorded: $(cat "$tmp/inbox/locked.yaml.result.json")"
        break
    fi
    sleep 0.1
    i=$((i + 1))
done
wait $locker
wait_result "$tmp/inbox/locked.yaml" SUCCEEDED || problem "no SUCCEEDED result after the lock"
end

begin 'results are regular files of mode 0600, whatever the umask'
[ -f "$tmp/inbox/release.yaml.result.json" ] && [ ! -L "$tmp/inbox/release.yaml.result.json" ] ||
    problem "not a regular file"
m=$(stat -c %a "$tmp/inbox/release.yaml.result.json" "$tmp/inbox/bad.json.result.json" | sort -u)
[ "$m" = 600 ] || problem "modes: $m"
end

begin 'a symlink is not followed: not as a plan, not at the temporary result name'
printf 'name: outside\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 0}\n' >"$tmp/outside.yaml"
ln -s "$tmp/outside.yaml" "$tmp/inbox/link.yaml"
echo precious >"$tmp/victim"
ln -s "$tmp/victim" "$tmp/inbox/target.yaml.result.json.tmp"
printf 'name: target\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 0}\n' >"$tmp/inbox/.target.part"
mv "$tmp/inbox/.target.part" "$tmp/inbox/target.yaml"
wait_result "$tmp/inbox/target.yaml" SUCCEEDED || problem "no SUCCEEDED result"
sleep 1.1 # one more poll for link.yaml
[ "$(cat "$tmp/victim")" = precious ] || problem "the symlink's target was overwritten: $(cat "$tmp/victim")"
[ -f "$tmp/inbox/target.yaml.result.json" ] && [ ! -L "$tmp/inbox/target.yaml.result.json" ] ||
    problem "target.yaml.result.json is not a regular file"
[ -e "$tmp/inbox/link.yaml.result.json" ] && problem "a result for the symlink: $(cat "$tmp/inbox/link.yaml.result.json")"
n=$(count_plan outside)
[ "$n" = 0 ] || problem "$n releases from the symlink's target"
n=$(grep -c 'link.yaml.*not a regular file' "$tmp/serve.log")
[ "$n" = 1 ] || problem "the symlink is mentioned $n times in the log: $(cat "$tmp/serve.log")"
end

begin 'file names reach the log escaped (newlines, escape sequences)'
evil=$(printf 'evil\n\033[2Jname.json')
echo '{' >"$tmp/inbox/$evil"
wait_result "$tmp/inbox/$evil" INVALID || problem "no INVALID result"
esc=$(printf '\033')
grep -q "$esc" "$tmp/serve.log" && problem "an escape character reached the log"
grep -q '^\[2Jname.json' "$tmp/serve.log" && problem "a newline of a file name reached the log"
grep -qF 'evil\n\x1b[2Jname.json' "$tmp/serve.log" || problem "the escaped name is not in the log: $(cat "$tmp/serve.log")"
ok=$(printf 'ok\033[31m.yaml')
printf 'name: ok-name\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 0}\n' >"$tmp/inbox/.ok.part"
mv "$tmp/inbox/.ok.part" "$tmp/inbox/$ok"
wait_result "$tmp/inbox/$ok" SUCCEEDED || problem "no SUCCEEDED result"
"$STEPPY" list --db "$db" --limit 1000 >"$tmp/list.txt" 2>&1
"$STEPPY" show --db "$db" "$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/inbox/$ok.result.json")" >>"$tmp/list.txt" 2>&1
grep -q "$esc" "$tmp/list.txt" && problem "an escape character reached list or show"
grep -qF 'ok\x1b[31m.yaml' "$tmp/list.txt" || problem "the escaped name is not in show: $(cat "$tmp/list.txt")"
cp "$tmp/inbox/release.yaml" "$tmp/inbox/$(printf 'latin\351.yaml')"
sleep 2.2 # two polls
kill -0 $server_pid || problem "the server died"
grep -qF 'latin\xe9.yaml ignored: the name is not UTF-8' "$tmp/serve.log" || problem "no word of the name that is not UTF-8"
end

begin 'a file written slowly (longer than a poll) starts one release, from the whole plan'
{
    printf 'name: slow\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w1, seconds: 0}\n'
    sleep 3
    printf '      - {type: Wait, name: w2, seconds: 0}\n'
} >"$tmp/inbox/slow.yaml"
wait_result "$tmp/inbox/slow.yaml" SUCCEEDED || problem "no SUCCEEDED result"
sleep 1.1
n=$(count_plan slow)
[ "$n" = 1 ] || problem "$n releases of the slow plan"
s=$(steps_of "$tmp/inbox/slow.yaml")
[ "$s" = "w1 w2" ] || problem "steps: $s"
end

begin 'written as NAME.tmp and renamed: the .tmp file is never taken'
{
    printf 'name: slow-tmp\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w1, seconds: 0}\n'
    sleep 2.5
    printf '      - {type: Wait, name: w2, seconds: 0}\n'
} >"$tmp/inbox/slow2.yaml.tmp"
mv "$tmp/inbox/slow2.yaml.tmp" "$tmp/inbox/slow2.yaml"
wait_result "$tmp/inbox/slow2.yaml" SUCCEEDED || problem "no SUCCEEDED result"
n=$(count_plan slow-tmp)
[ "$n" = 1 ] || problem "$n releases"
s=$(steps_of "$tmp/inbox/slow2.yaml")
[ "$s" = "w1 w2" ] || problem "steps: $s"
end

begin 'an extension-less input file (YAML, sniffed) with its variables in input.vars.json'
printf '{"VERSION": "1.2.3"}\n' >"$tmp/inbox/.v.part"
mv "$tmp/inbox/.v.part" "$tmp/inbox/input.vars.json"
printf '# the original design named its plan "input"\nname: with-vars\nvariables:\n  VERSION: {description: the version}\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: "w-${var.VERSION}", seconds: 0}\n' >"$tmp/inbox/.i.part"
mv "$tmp/inbox/.i.part" "$tmp/inbox/input"
wait_result "$tmp/inbox/input" SUCCEEDED || problem "no SUCCEEDED result: $(cat "$tmp/inbox/input.result.json" 2>&1)"
s=$(steps_of "$tmp/inbox/input")
[ "$s" = "w-1.2.3" ] || problem "steps: $s"
[ -e "$tmp/inbox/input.vars.json.result.json" ] && problem "the vars file was taken as a plan"
rm "$tmp/inbox/input.vars.json"
sleep 2.2 # two polls
n=$(count_plan with-vars)
[ "$n" = 1 ] || problem "$n releases after the vars file was deleted"
grep -q 'SUCCEEDED' "$tmp/inbox/input.result.json" || problem "result rewritten: $(cat "$tmp/inbox/input.result.json")"
end

begin 'a plan whose required variable has no value is invalid, and says which'
printf 'name: no-vars\nvariables:\n  VERSION: null\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: "w-${var.VERSION}", seconds: 0}\n' >"$tmp/inbox/.nv.part"
mv "$tmp/inbox/.nv.part" "$tmp/inbox/novars.yaml"
wait_result "$tmp/inbox/novars.yaml" INVALID || problem "no INVALID result"
run cat "$tmp/inbox/novars.yaml.result.json"
expect_json 'any("VERSION" in e["message"] for e in d["errors"]) and any("novars.yaml.vars.json" in e["message"] for e in d["errors"])'
end

begin 'a wrapper {plan, vars}: the plan and its variables in one file; errors point into it'
cat >"$tmp/inbox/.w.part" <<'EOF'
plan:
  name: wrapped
  variables:
    VERSION: null
  stages:
    - name: s
      steps:
        - {type: Wait, name: "w-${var.VERSION}", seconds: 0}
vars:
  VERSION: "4.5"
EOF
mv "$tmp/inbox/.w.part" "$tmp/inbox/wrapped.yaml"
printf '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": -1}]}]},\n "vars": {"A": 1}}\n' >"$tmp/inbox/.wb.part"
mv "$tmp/inbox/.wb.part" "$tmp/inbox/wrapbad.json"
wait_result "$tmp/inbox/wrapped.yaml" SUCCEEDED || problem "no SUCCEEDED result: $(cat "$tmp/inbox/wrapped.yaml.result.json" 2>&1)"
s=$(steps_of "$tmp/inbox/wrapped.yaml")
[ "$s" = "w-4.5" ] || problem "steps: $s"
wait_result "$tmp/inbox/wrapbad.json" INVALID || problem "no INVALID result"
run cat "$tmp/inbox/wrapbad.json.result.json"
expect_json 'd["errors"][0]["pointer"] == "/vars/A" and d["errors"][0]["line"] == 2'
printf '{"plan": {"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": -1}]}]}}\n' >"$tmp/inbox/.wb.part"
mv "$tmp/inbox/.wb.part" "$tmp/inbox/wrapbad.json"
i=0
while [ $i -lt 100 ] && grep -q '/vars/A' "$tmp/inbox/wrapbad.json.result.json"; do sleep 0.1; i=$((i + 1)); done
run cat "$tmp/inbox/wrapbad.json.result.json"
expect_json 'd["status"] == "INVALID" and d["errors"][0]["pointer"] == "/plan/stages/0/steps/0/seconds"'
end

begin 'after a restart, invalid files are not reported again'
grep -q 'bad.json' "$tmp/serve.log" || problem "bad.json was never reported"
kill -9 $server_pid
wait $server_pid 2>/dev/null
before=$(cat "$tmp/inbox/bad.json.result.json")
start_server "$tmp/config.yaml" "$db"
sleep 2.5 # more polls
run cat "$tmp/serve.log"
expect_out_lacks 'bad.json'
expect_out_lacks 'evil'
expect_out_lacks 'novars'
expect_out_lacks 'notes.txt'
expect_out_lacks 'link.yaml'
[ "$(cat "$tmp/inbox/bad.json.result.json")" = "$before" ] || problem "the result was rewritten"
n=$(count_plan slow)
[ "$n" = 1 ] || problem "$n releases of the slow plan"
n=$(count_plan with-vars)
[ "$n" = 1 ] || problem "$n releases of input (its vars file deleted)"
end

stop_server

# ---- an S3 prefix as inbox, against the fake AWS endpoint ------------------------
start_fake_aws
trap 'kill $server_pid $fake_pid 2>/dev/null; rm -rf "$tmp"' EXIT
s3get() { /usr/bin/aws --endpoint-url "$fake" s3 cp "s3://releases/$1" - 2>/dev/null; }
cat >"$tmp/config.yaml" <<EOF
inbox:
  s3: s3://releases/incoming/
  pollSeconds: 1
EOF
printf 'name: from-s3\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: w, seconds: 1}\n' >"$tmp/s3plan.yaml"

begin 'an S3 prefix as inbox: each object starts one release, across a restart; results next to it'
/usr/bin/aws --endpoint-url "$fake" s3 cp "$tmp/s3plan.yaml" s3://releases/incoming/plan.yaml >/dev/null 2>&1 ||
    problem "upload failed"
/usr/bin/aws --endpoint-url "$fake" s3 cp "$tmp/s3plan.yaml" s3://releases/elsewhere/plan.yaml >/dev/null 2>&1
# the original design's extension-less "input" object, JSON with comments
cat >"$tmp/input" <<'EOF'
{
  // as in the original design
  "name": "from-s3-input",
  "stages": [ { "name": "s", "steps": [ { "type": "Wait", "name": "w", "seconds": 0 } ] } ]
}
EOF
s3put() { /usr/bin/aws --endpoint-url "$fake" s3 cp "$1" "s3://releases/$2" >/dev/null 2>&1 || problem "upload of $2 failed"; }
s3put "$tmp/input" incoming/input
echo 'not a plan' >"$tmp/notes.txt"
s3put "$tmp/notes.txt" incoming/notes.txt
printf '{"VERSION": "2.0"}' >"$tmp/vars.json"
s3put "$tmp/vars.json" incoming/withvars.yaml.vars.json
printf 'name: s3-vars\nvariables:\n  VERSION: null\nstages:\n  - name: s\n    steps:\n      - {type: Wait, name: "w-${var.VERSION}", seconds: 0}\n' >"$tmp/withvars.yaml"
s3put "$tmp/withvars.yaml" incoming/withvars.yaml
printf '{"plan": {"name": "s3-wrapped", "variables": {"V": null}, "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w-${var.V}", "seconds": 0}]}]}, "vars": {"V": "3.0"}}' >"$tmp/wrapped.json"
s3put "$tmp/wrapped.json" incoming/wrapped.json
printf 'stages: []\n' >"$tmp/bad.yaml"
s3put "$tmp/bad.yaml" incoming/bad.yaml
start_server "$tmp/config.yaml" "$db"
i=0
while [ $i -lt 100 ] && ! s3get incoming/plan.yaml.result.json | grep -q SUCCEEDED; do sleep 0.2; i=$((i + 1)); done
s3get incoming/plan.yaml.result.json | grep -q '"status": "SUCCEEDED"' || problem "no SUCCEEDED result in S3"
sleep 1.1 # one more poll
cp "$tmp/serve.log" "$tmp/serve1.log"
kill -9 $server_pid
wait $server_pid 2>/dev/null
start_server "$tmp/config.yaml" "$db"
sleep 2.5
n=$("$STEPPY" list --db "$db" --limit 1000 --format json | /usr/bin/python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["executions"] if e["plan"] == "from-s3"))')
[ "$n" = 1 ] || problem "$n releases from S3"
v=$(curl -sf "$fake/_fake/violations")
[ "$v" = "[]" ] || problem "violations: $v"
end

begin 'S3: the extension-less input object is read (syntax sniffed) and starts a release'
s3get incoming/input.result.json | grep -q '"status": "SUCCEEDED"' || problem "no SUCCEEDED result: $(s3get incoming/input.result.json)"
n=$(count_plan from-s3-input)
[ "$n" = 1 ] || problem "$n releases"
end

begin 'S3: variables from NAME.vars.json beside the plan'
run s3get incoming/withvars.yaml.result.json
expect_json 'd["status"] == "SUCCEEDED"'
run "$STEPPY" show --db "$db" --format json "$(s3get incoming/withvars.yaml.result.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
expect_json 'd["stages"][0]["steps"][0]["name"] == "w-2.0"'
end

begin 'S3: a wrapper object {plan, vars} (one PUT) starts its release with its variables'
run s3get incoming/wrapped.json.result.json
expect_json 'd["status"] == "SUCCEEDED"'
run "$STEPPY" show --db "$db" --format json "$(s3get incoming/wrapped.json.result.json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
expect_json 'd["stages"][0]["steps"][0]["name"] == "w-3.0"'
end

begin 'S3: an ignored object is named in the log once, with the reason, not again after a restart'
n=$(grep -c 'notes.txt ignored: not a plan' "$tmp/serve1.log")
[ "$n" = 1 ] || problem "notes.txt is mentioned $n times: $(cat "$tmp/serve1.log")"
n=$(grep -c 'notes.txt' "$tmp/serve.log")
[ "$n" = 0 ] || problem "notes.txt is mentioned again after a restart: $(cat "$tmp/serve.log")"
end

begin 'S3: an invalid object is reported once, not again after a restart'
s3get incoming/bad.yaml.result.json | grep -q '"status": "INVALID"' || problem "no INVALID result"
kill -9 $server_pid
wait $server_pid 2>/dev/null
start_server "$tmp/config.yaml" "$db"
sleep 2.5
run cat "$tmp/serve.log"
expect_out_lacks 'bad.yaml'
expect_out_lacks 'notes.txt'
end

stop_server
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
