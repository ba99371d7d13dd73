#!/bin/sh
# t0010: steppy serve's inbox directory: each dropped plan file starts
# exactly one release, also across a restart (SIGKILL); its outcome is
# written next to it; invalid plans get their errors there.
. "$(dirname "$0")/lib.sh"
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

kill -TERM $server_pid
wait $server_pid 2>/dev/null

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
start_server "$tmp/config.yaml" "$db"
i=0
while [ $i -lt 100 ] && ! s3get incoming/plan.yaml.result.json | grep -q SUCCEEDED; do sleep 0.2; i=$((i + 1)); done
s3get incoming/plan.yaml.result.json | grep -q '"status": "SUCCEEDED"' || problem "no SUCCEEDED result in S3"
kill -9 $server_pid
wait $server_pid 2>/dev/null
start_server "$tmp/config.yaml" "$db"
sleep 2.5
n=$("$STEPPY" list --db "$db" --limit 1000 --format json | /usr/bin/python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["executions"] if e["plan"] == "from-s3"))')
[ "$n" = 1 ] || problem "$n releases from S3"
v=$(curl -sf "$fake/_fake/violations")
[ "$v" = "[]" ] || problem "violations: $v"
end

kill -TERM $server_pid
wait $server_pid 2>/dev/null
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
