#!/bin/sh
# t0067: an approval page's form works whichever node it is posted to. Two
# `steppy serve` nodes share one store and one secret key file (as
# docs/scale-out.md asks) behind one public URL; a load balancer may send
# the page's GET to one and its POST to the other, or restart a node between.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
status=0 out="" err="" # what end() shows; these tests use curl, not run
cat >"$tmp/a.yaml" <<EOF
secretKeyFile: $tmp/secret.key
channels:
  file:
    type: log
    path: $tmp/notices.log
EOF
start_server "$tmp/a.yaml" "$db"
url_a=$url
pid_a=$server_pid
pid_b=
trap 'kill $pid_a $pid_b 2>/dev/null; rm -rf "$tmp"' EXIT
# Node B: the same store, key file and channels; its public URL is A's, as
# behind one load balancer.
{
    cat "$tmp/a.yaml"
    echo "publicUrl: $url_a"
} >"$tmp/b.yaml"
start_b() {
    : >"$tmp/b.log"
    "$STEPPY" serve --config "$tmp/b.yaml" --listen 127.0.0.1:0 --db "$db" >>"$tmp/b.log" 2>&1 &
    pid_b=$!
    i=0
    while ! grep -q 'listening on' "$tmp/b.log" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
    url_b=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/b.log")
}
start_b

# wait_link N: the path of the Nth approval link written to the notices log
wait_link() {
    i=0
    while [ $i -lt 150 ]; do
        l=$(grep -o 'http://[^ "	]*/approvals/[A-Za-z0-9_-]*' "$tmp/notices.log" 2>/dev/null | sed -n "$1p")
        if [ -n "$l" ]; then
            printf '%s' "${l#"$url_a"}"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
# form_of PATH: the csrf field of the page node A serves
form_of() { curl -s "$url_a$1" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p'; }
# post_b PATH CSRF: the form's POST, to node B
post_b() {
    code=$(curl -s -o "$tmp/post" -w '%{http_code}' -X POST -H "Origin: $url_a" \
        -d "csrf=$2&decision=approve" "$url_b$1")
}
submit() {
    curl -s -X POST -H 'Content-Type: application/json' --data-binary \
        '{"plan": {"name": "web", "stages": [{"name": "prod", "steps": [{"type": "Human", "name": "Go", "message": "?", "channels": ["file"]}]}]}}' \
        "$url_a/api/v1/executions" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

begin 'a form from node A posted to node B decides (one key file, one public URL)'
id=$(submit)
path=$(wait_link 1) || problem "no link delivered"
csrf=$(form_of "$path")
[ -n "$csrf" ] || problem "no form on the page"
post_b "$path" "$csrf"
[ "$code" = 303 ] || problem "node B answered $code: $(head -c 300 "$tmp/post")"
i=0
while [ $i -lt 100 ] && ! curl -s "$url_b/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"'; do
    sleep 0.1
    i=$((i + 1))
done
curl -s "$url_b/api/v1/executions/$id" | grep -q '"status":"SUCCEEDED"' || problem "not SUCCEEDED"
end

begin 'and after node B restarts between the page and the post (the key comes from the key file)'
submit >/dev/null
path=$(wait_link 2) || problem "no second link"
csrf=$(form_of "$path")
kill -TERM $pid_b
wait $pid_b 2>/dev/null
start_b
post_b "$path" "$csrf"
[ "$code" = 303 ] || problem "the restarted node B answered $code: $(head -c 300 "$tmp/post")"
end

begin 'a form token not made under the shared key is refused'
submit >/dev/null
path=$(wait_link 3) || problem "no third link"
post_b "$path" 0000000000000000000000000000000000000000000000000000000000000000
[ "$code" = 403 ] || problem "a made-up form token: $code"
end

begin 'when node A dies, node B takes its waiting release over and says so in its log'
id=$(submit)
wait_link 4 >/dev/null || problem "no fourth link"
kill -KILL $pid_a
wait $pid_a 2>/dev/null
i=0
while ! grep -q 'releases.taken-over' "$tmp/b.log" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'releases.taken-over count=[1-9]' "$tmp/b.log" || problem "no take-over line: $(tail -3 "$tmp/b.log")"
# /metrics counts what the log lines say (read until both are settled:
# later rounds may take more of A's releases).
i=0
while [ $i -lt 50 ]; do
    n=$(grep 'releases.taken-over' "$tmp/b.log" | grep -o 'count=[0-9]*' | cut -d= -f2 |
        awk '{ s += $1 } END { print s + 0 }')
    metric=$(curl -s "$url_b/metrics" | sed -n 's/^steppy_releases_taken_over_total \([0-9]*\)$/\1/p')
    [ "$metric" = "$n" ] && break
    sleep 0.1; i=$((i + 1))
done
[ -n "$metric" ] && [ "$metric" -ge 1 ] && [ "$metric" = "$n" ] ||
    problem "steppy_releases_taken_over_total is '$metric', the log counted $n"
end

finish
