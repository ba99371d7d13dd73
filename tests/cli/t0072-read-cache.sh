#!/bin/sh
# t0072: the list of executions answered from memory (src/server/answers.c)
# is never stale. Other processes change the store (`steppy run` to the
# end, `steppy approve` of a release another `steppy run` holds) and the
# very next list shows it, with a new ETag; an unchanged list is 304 for its
# ETag; what a caller may see is decided as before (no token, a bad token:
# 401, never the kept answer nor a 304). Real processes, real HTTP on
# loopback (curl), a real SQLite store.
. "$(dirname "$0")/lib.sh"
db=${READ_CACHE_DB:-$tmp/steppy.db} # t0073: a PostgreSQL URL

mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
VIEW=$(mk viewer viewer)
OPS=$(mk ops operator)
{
    echo "tokens:"
    for n in viewer ops; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
} >"$tmp/config.yaml"

cat >"$tmp/quick.yaml" <<'EOF'
name: quick
stages:
  - name: one
    steps:
      - {type: Wait, name: w, seconds: 0}
EOF
cat >"$tmp/gate.yaml" <<'EOF'
name: gated
stages:
  - name: one
    steps:
      - {type: Human, name: Gate, message: go?}
EOF

# A first release, so that the store exists before the server starts.
STEPPY_DB=$db "$STEPPY" run "$tmp/quick.yaml" >/dev/null 2>&1
start_server "$tmp/config.yaml" "$db"
readers=
trap 'kill $server_pid $run_pid $readers 2>/dev/null; rm -rf "$tmp"' EXIT
run_pid=
[ -n "$url" ] || { echo "the server did not start"; cat "$tmp/serve.log"; exit 1; }

# list [TOKEN] [IF-NONE-MATCH] [QUERY]: GET /api/v1/executions; sets $status
# (HTTP), $out (body) and $etag (the ETag header, quotes included)
list() {
    rm -f "$tmp/body" "$tmp/headers" # curl makes no file for an answer without a body
    curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' \
        ${1:+-H "Authorization: Bearer $1"} ${2:+-H "If-None-Match: $2"} \
        "$url/api/v1/executions${3:-}" >"$tmp/code"
    status=$(cat "$tmp/code")
    out=$(cat "$tmp/body" 2>/dev/null)
    etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^[:space:]]*\).*/\1/p' "$tmp/headers")
    err=""
}

# Another process's commit reaches a SQLite server at its next read (the
# file's data_version); a PostgreSQL server learns it from the NOTIFY its
# listening connection receives a moment after the commit: there the next
# list may come a little early, and is asked again for up to 5 s.
case "${READ_CACHE_DB:-}" in postgres*) patience=50 ;; *) patience=1 ;; esac

# list TOKEN ETAG, asked again (PostgreSQL) while it answers 304.
list_changed() {
    i=0
    while :; do
        list "$1" "$2"
        i=$((i + 1))
        [ "$status" = 304 ] && [ $i -lt $patience ] || break
        sleep 0.1
    done
}

# The number of releases in the list, asked again (PostgreSQL) until it is N.
count_listed() {
    i=0
    while :; do
        list "$VIEW"
        got=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))')
        i=$((i + 1))
        [ "$got" != "$1" ] && [ $i -lt $patience ] || break
        sleep 0.1
    done
}

begin 'the list carries a strong ETag, the same while nothing changes'
list "$VIEW"
[ "$status" = 200 ] || problem "status $status"
first=$etag
case "$first" in '"'*'"') ;; *) problem "no strong ETag: '$first'" ;; esac
expect_json 'len(d["executions"]) == 1'
list "$VIEW"
[ "$etag" = "$first" ] || problem "ETag moved without a change: $first -> $etag"
grep -qi '^cache-control: no-store' "$tmp/headers" || problem "Cache-Control is not no-store"
end

begin 'If-None-Match with the ETag: 304 without a body; another tag or W/ forms as RFC 9110 says'
list "$VIEW" "$first"
[ "$status" = 304 ] || problem "status $status, expected 304"
[ -z "$out" ] || problem "a 304 with a body: $out"
[ "$etag" = "$first" ] || problem "the 304 names $etag"
list "$VIEW" "W/$first"
[ "$status" = 304 ] || problem "weak form: status $status"
list "$VIEW" "\"0000\", $first"
[ "$status" = 304 ] || problem "in a list: status $status"
list "$VIEW" '"0000"'
[ "$status" = 200 ] || problem "another tag: status $status"
expect_json 'len(d["executions"]) == 1'
end

begin 'a caller who may not list gets 401, never the kept answer nor a 304'
list "" "$first"
[ "$status" = 401 ] || problem "no token: status $status"
expect_json 'd["error"]["code"] == "unauthenticated"'
expect_out_lacks '"executions"'
list "stp_not_a_token" "$first"
[ "$status" = 401 ] || problem "bad token: status $status"
expect_out_lacks '"executions"'
list "stp_not_a_token"
[ "$status" = 401 ] || problem "bad token, no ETag: status $status"
expect_out_lacks '"executions"'
end

begin 'a release run to its end by another process is in the very next list'
run env STEPPY_DB="$db" "$STEPPY" run "$tmp/quick.yaml"
expect_status 0
list_changed "$VIEW" "$first"
[ "$status" = 200 ] || problem "status $status after another process committed (stale 304?)"
expect_json 'len(d["executions"]) == 2'
[ "$etag" != "$first" ] || problem "the ETag did not change"
second=$etag
list "$VIEW" "$second"
[ "$status" = 304 ] || problem "unchanged again: status $status"
end

begin 'while other clients read all the time, each run of another process is in the next list'
# readers keep the answer kept and the version reads shared meanwhile
for r in 1 2 3; do
    (while :; do curl -s -o /dev/null -H "Authorization: Bearer $VIEW" "$url/api/v1/executions"; done) &
    readers="$readers $!"
done
n=2
for round in 1 2 3 4 5 6 7 8 9 10; do
    STEPPY_DB=$db "$STEPPY" run "$tmp/quick.yaml" >/dev/null 2>&1 || problem "run $round failed"
    n=$((n + 1))
    count_listed "$n"
    [ "$got" = "$n" ] || problem "round $round: $got releases listed, $n recorded"
done
kill $readers 2>/dev/null
wait $readers 2>/dev/null
readers=
list "$VIEW"
second=$etag
end

begin 'every query is kept apart: a filter and a page see the new state too'
list "$VIEW" "" "?status=SUCCEEDED&limit=1"
[ "$status" = 200 ] || problem "status $status"
expect_json 'len(d["executions"]) == 1 and d["nextOffset"] == 1'
page=$etag
[ "$page" != "$second" ] || problem "two queries share an ETag"
list "$VIEW" "" "?status=succeeded&limit=1&unknown=1"
[ "$etag" = "$page" ] || problem "the same query, written otherwise, has another ETag"
list "$VIEW" "" "?limit=0"
[ "$status" = 400 ] || problem "a bad limit: status $status"
end

begin 'a decision by another process on a release a third process runs is in the very next list'
STEPPY_DB=$db "$STEPPY" run "$tmp/gate.yaml" >"$tmp/gate.out" 2>&1 &
run_pid=$!
i=0
gid=""
while [ $i -lt 300 ] && [ -z "$gid" ]; do
    list "$VIEW"
    gid=$(printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print("".join(e["id"] for e in d["executions"] if e["plan"] == "gated" and e.get("waitingFor")))')
    [ -n "$gid" ] || sleep 0.1
    i=$((i + 1))
done
if [ -z "$gid" ]; then
    problem "the gated release never waited (list: $out)"
    kill $run_pid 2>/dev/null
else
    list "$VIEW"
    before=$etag
    run "$STEPPY" approve --db "$db" --by tester "$gid" Gate
    expect_status 0
    i=0
    while :; do
        list "$VIEW" "$before"
        i=$((i + 1))
        [ $i -lt $patience ] || break
        [ "$status" = 200 ] && printf '%s' "$out" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if [e for e in d["executions"] if e["id"] == sys.argv[1]][0]["waitingFor"] is None else 1)' "$gid" && break
        sleep 0.1
    done
    [ "$status" = 200 ] || problem "status $status after the approval (stale 304?)"
    expect_json '[e for e in d["executions"] if e["id"] == "'"$gid"'"][0]["waitingFor"] is None'
fi
wait $run_pid
run_pid=
end

begin 'a release submitted through the server is in the next list'
list "$VIEW"
before=$etag
curl -s -H "Authorization: Bearer $OPS" -H 'Content-Type: application/json' \
    --data-binary '{"plan": {"name": "api", "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 600}]}]}}' \
    "$url/api/v1/executions" >"$tmp/submit.json"
list "$VIEW" "$before"
[ "$status" = 200 ] || problem "status $status after a submission"
expect_json 'd["executions"][0]["plan"] == "api" and d["executions"][0]["status"] == "RUNNING"'
end

begin 'HEAD answers the same headers without a body'
list "$VIEW"
curl -s -I -H "Authorization: Bearer $VIEW" "$url/api/v1/executions" >"$tmp/head"
grep -q "^HTTP/1.1 200" "$tmp/head" || problem "HEAD: $(head -1 "$tmp/head")"
grep -qi "^etag: $etag" "$tmp/head" || problem "HEAD has another ETag than GET"
end

begin '/metrics counts the answers from memory and those made from the store'
out=$(curl -s -H "Authorization: Bearer $VIEW" "$url/metrics")
printf '%s\n' "$out" | grep -q '^steppy_http_answers_total{from="memory"} [1-9]' ||
    problem "no answer from memory counted"
printf '%s\n' "$out" | grep -q '^steppy_http_answers_total{from="store"} [1-9]' ||
    problem "no answer from the store counted"
end

finish
