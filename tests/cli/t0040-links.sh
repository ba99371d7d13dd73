#!/bin/sh
# t0040: approval links that go nowhere. A Human step whose channel is down
# leaves its link undelivered; an approver re-issues it (API, and steppy
# link): a fresh token, the old link dead, the request sent again, the
# history saying who asked (never the token). Only approvers may; only
# while the step waits.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"
mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
ALICE=$(mk alice approver)
OPS=$(mk ops operator)
VIEW=$(mk viewer viewer)
dead=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
    echo "tokens:"
    for n in alice ops viewer; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
    cat <<EOF
channels:
  down:
    type: webhook
    url: http://127.0.0.1:$dead/hook
    timeoutSeconds: 1
  file:
    type: log
    path: $tmp/notices.log
EOF
} >"$tmp/config.yaml"
start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT

api() { # METHOD PATH TOKEN [BODY]
    status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3" \
        -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$url$2")
    out=$(cat "$tmp/body")
    err=""
}
wait_events() { # ID TEXT
    i=0
    while [ $i -lt 150 ]; do
        api GET "/api/v1/executions/$1/events" "$VIEW"
        case "$out" in *"$2"*) return 0 ;; esac
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

api POST /api/v1/executions "$OPS" '{"plan": {"name": "web", "stages": [{"name": "prod", "steps": [{"type": "Human", "name": "Go live", "message": "?", "channels": ["down"]}]}]}}'
id=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

begin 'the request reached nobody: the history says so'
wait_events "$id" 'notification not delivered' || problem "no warning"
end

begin 'a viewer or an operator may not re-issue the link (403); a bad step is 404'
api POST "/api/v1/executions/$id/steps/0/0/link" "$VIEW"
expect_status 403
api POST "/api/v1/executions/$id/steps/0/0/link" "$OPS"
expect_status 403
api POST "/api/v1/executions/$id/steps/0/7/link" "$ALICE"
expect_status 404
api POST "/api/v1/executions/nope/steps/0/0/link" "$ALICE"
expect_status 404
end

begin 'an approver re-issues it: a fresh link, sent again, recorded without the token'
api POST "/api/v1/executions/$id/steps/0/0/link" "$ALICE"
expect_status 201
expect_json 'd["stage"] == 0 and d["step"] == 0 and d["attempt"] == 1 and d["channels"] == ["down"] and d["url"].startswith("'"$url"'/approvals/")'
link1=$(printf '%s' "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
[ "$(curl -s -o /dev/null -w '%{http_code}' "$link1")" = 200 ] || problem "the new link does not open"
wait_events "$id" 'approval link re-issued' || problem "not in the history"
expect_out_contains '"notice":"approval link re-issued","by":"alice","channels":["down"]'
expect_out_lacks "${link1##*/}"
end

begin 'steppy link: by step name, prints the new link; the previous one stops working'
printf '%s\n' "$ALICE" >"$tmp/alice.token"
chmod 644 "$tmp/alice.token"
run "$STEPPY" link --server "$url" --token-file "$tmp/alice.token" "$id" "Go live"
expect_status 2
expect_err_contains 'can be read by others (mode 0644)'
chmod 600 "$tmp/alice.token"
run "$STEPPY" link --server "$url" --token-file "$tmp/alice.token" "$id" "Go live"
expect_status 0
expect_out_contains "$url/approvals/"
expect_err_contains 'new approval link for'
expect_err_contains 'sent to down; the old link no longer works'
link2=$out
[ "$link2" != "$link1" ] || problem "the same link"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$link1")" = 404 ] || problem "the old link still opens"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$link2")" = 200 ] || problem "the new link does not open"
end

begin 'steppy link: an unknown step gets "did you mean"; a viewer token is refused'
run "$STEPPY" link --server "$url" --token-file "$tmp/alice.token" "$id" "Go liv"
expect_status 1
expect_err_contains 'the release has no step "Go liv"; did you mean "Go live"?'
STEPPY_TOKEN=$VIEW run "$STEPPY" link --server "$url" "$id" "Go live"
expect_status 1
expect_err_contains 'HTTP 403'
end

begin 'the re-issued link decides; afterwards there is nothing to re-issue (409)'
page=$(curl -s "$link2")
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
# a step without approvers: the link alone decides
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -d "csrf=$csrf&decision=approve" "$link2")
[ "$code" = 303 ] || problem "decision: $code"
wait_events "$id" 'ExecutionFinished' || problem "not finished"
api POST "/api/v1/executions/$id/steps/0/0/link" "$ALICE"
expect_status 409
expect_out_contains 'does not wait for a decision'
end

finish
