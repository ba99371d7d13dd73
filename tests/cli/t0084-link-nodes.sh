#!/bin/sh
# t0084: steppy link on a store shared by two `steppy serve` nodes. The
# release id may be a unique prefix (as for approve and abort); the node
# that does not run the release refuses with 409 and says to ask the node
# that runs it; a decision through another node's page is shown as made
# through the link; the node that takes a release over names it in its
# log. A real PostgreSQL 15 (tests/lib/pg.sh).
. "$(dirname "$0")/lib.sh"
. "$repo/tests/lib/pg.sh"
pg_require
pid_a="" pid_b=""
trap 'kill $pid_a $pid_b 2>/dev/null; pg_stop; rm -rf "$tmp"' EXIT
db=$STEPPY_TEST_PG
status=0 out="" err=""
printf 'secretKeyFile: %s\n' "$tmp/secret.key" >"$tmp/serve.yaml"
start_server "$tmp/serve.yaml" "$db"
pid_a=$server_pid url_a=$url
cp "$tmp/serve.log" "$tmp/a.log"
start_server "$tmp/serve.yaml" "$db"
pid_b=$server_pid url_b=$url
[ -n "$url_a" ] && [ -n "$url_b" ] || problem "the nodes did not start"
url=$url_a
id=$(submit_plan '{"plan":{"name":"ask","stages":[{"name":"s","steps":[{"type":"Human","name":"go","message":"Ship?"}]}]}}')
i=0
while [ $i -lt 150 ] && ! curl -s "$url_a/api/v1/executions/$id" | grep -q '"status":"WAITING"'; do
    sleep 0.1; i=$((i + 1))
done

begin 'steppy link takes a unique prefix of the release id'
prefix=$(printf '%s' "$id" | cut -c1-5)
run "$STEPPY" link --server "$url_a" "$prefix" go
expect_status 0
expect_out_contains "$url_a/approvals/"
link=$(printf '%s' "$out" | head -1)
end

begin 'the node that does not run the release refuses and says which to ask'
run "$STEPPY" link --server "$url_b" "$prefix" go
[ "$status" -ne 0 ] || problem "node B re-issued a link of a release it does not run"
expect_err_contains "runs this release"
expect_err_contains "--server"
end

begin 'the link decides through the other node; show says it was decided through its link'
token=${link##*/approvals/}
page=$(curl -s "$url_b/approvals/$token")
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url_b" \
    -d "csrf=$csrf&decision=approve" "$url_b/approvals/$token")
[ "$code" = 303 ] || problem "decision through node B: $code"
i=0
while [ $i -lt 150 ] && ! curl -s "$url_a/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"'; do
    sleep 0.1; i=$((i + 1))
done
run "$STEPPY" show --db "$db" "$id"
expect_status 0
expect_out_contains "approved through its link"
case "$out" in *"by "[[:space:]]*) problem "an empty \"by\": $out" ;; esac
end

begin 'the take-over line names the releases taken over'
id2=$(submit_plan '{"plan":{"name":"long","stages":[{"name":"s","steps":[{"type":"Wait","name":"w","seconds":30}]}]}}')
kill -9 "$pid_a"
wait "$pid_a" 2>/dev/null
pid_a=""
wait_file "$tmp/serve.log" "releases.taken-over count=1 releases=$id2" ||
    problem "no take-over line naming $id2: $(grep taken-over "$tmp/serve.log")"
end

finish
