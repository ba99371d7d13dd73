#!/bin/sh
# channel-xyz.sh - a channel kind takes one file and one table row (issue 11):
# compiles tests/extend/channel-xyz.c and a copy of src/notify/channels.c
# with the row X(xyz) added by sed, links them before the libraries of the
# build $STEPPY comes from, and drives that binary: the configuration
# checks of the new kind, and a `steppy serve` whose Notify and Human steps
# use it, with a stub of the chat service on 127.0.0.1 that records what
# it receives. CC (default cc; clang for a clang build) compiles; with
# STEPPY_SANITIZED=1 the sanitizers are linked in as for the build.
. "$(dirname "$0")/../cli/lib.sh"
build=$(cd "$(dirname "$STEPPY")" && pwd)
cc=${CC:-cc}
pkgs=$(make -s -C "$repo" print-pkgs)
flags="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wconversion -Wmissing-prototypes -I$repo/src $(pkg-config --cflags $pkgs)"
[ "${STEPPY_SANITIZED:-0}" = 1 ] && flags="$flags -fsanitize=address,undefined -fno-omit-frame-pointer"

begin 'the new kind is one file and one row: the table copy differs by the row X(xyz) alone'
sed '/^[[:space:]]*X(terminal)/i\	X(xyz)           \\' "$repo/src/notify/channels.c" >"$tmp/channels.c"
added=$(diff "$repo/src/notify/channels.c" "$tmp/channels.c" | grep -c '^>')
removed=$(diff "$repo/src/notify/channels.c" "$tmp/channels.c" | grep -c '^<')
[ "$added" = 1 ] && [ "$removed" = 0 ] || problem "the copy differs by $added added, $removed removed lines"
grep -q 'X(xyz)' "$tmp/channels.c" || problem "no row added"
run $cc $flags -c "$tmp/channels.c" -o "$tmp/channels.o"
expect_status 0
run $cc $flags -c "$repo/tests/extend/channel-xyz.c" -o "$tmp/channel-xyz.o"
expect_status 0
run $cc $flags -o "$tmp/steppy" "$build/src/main.o" "$tmp/channels.o" "$tmp/channel-xyz.o" \
    "$build/libsteppy-cli.a" "$build/libsteppy.a" $(pkg-config --libs $pkgs) -lm
expect_status 0
end
xyz="$tmp/steppy"

# The chat service: records each request body (one JSON per line), answers 200.
start_webhook_receiver "$tmp/chat.jsonl"
server_pid=
trap 'kill $hook_pid $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
dead=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

begin 'the configuration of the new kind is checked like the others: its fields, its room, the list of types'
cat >"$tmp/bad.yaml" <<EOF
channels:
  a:
    type: xyz
    url: http://127.0.0.1:1/x
  b:
    type: xyz
    url: http://127.0.0.1:1/x
    urlEnv: X
    room: Not A Room
  c:
    type: xzy
EOF
printf 'stages: [{name: s, steps: [{type: Notify, name: n, message: m}]}]\n' >"$tmp/plan.yaml"
run "$xyz" validate --config "$tmp/bad.yaml" "$tmp/plan.yaml"
expect_status 2
expect_err_contains '/channels/a/room: an xyz channel needs a "room" field'
expect_err_contains '/channels/b/room: "Not A Room" is not an xyz room'
expect_err_contains '/channels/b/urlEnv: give "url" or "urlEnv", not both'
expect_err_contains '"type" must be one of slack, teams, webhook, email, sns, log, xyz, found "xzy"; did you mean "xyz"?'
end

cat >"$tmp/config.yaml" <<EOF
channels:
  chat:
    type: xyz
    url: http://127.0.0.1:$(cat "$tmp/hook.port")/hooks/releases
    room: releases
  dead:
    type: xyz
    url: http://127.0.0.1:$dead/nowhere
    room: void
defaultChannels: [chat]
EOF
STEPPY=$xyz start_server "$tmp/config.yaml" "$tmp/steppy.db"
message() { # KIND: the first message of that kind, as JSON
    grep "\"kind\":\"$1\"" "$tmp/chat.jsonl" | head -n 1
}

begin 'a Notify step and a Human step reach the new channel; the approval link in it decides'
id=$(submit_plan '{"plan": {"name": "web", "environmentName": "prod", "stages": [{"name": "tell", "steps": [{"type": "Notify", "name": "Tell", "subject": "Release 3.2", "message": "v3.2 <b>is</b> out", "channels": ["chat"]}]}, {"name": "go", "steps": [{"type": "Human", "name": "Go", "message": "Ship it?", "channels": ["chat"]}]}]}}')
wait_file "$tmp/chat.jsonl" '"kind":"approval"' || problem "no approval message"
message notify | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
assert d == {"room": "releases", "kind": "notify", "text": "Release 3.2\nv3.2 <b>is</b> out", "link": None}, d' ||
    problem "the Notify message: $(message notify)"
link=$(message approval | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.readline())
assert d["room"] == "releases" and d["text"] == "Approval requested: Go\nShip it?", d
print(d["link"])') || problem "the approval message: $(message approval)"
case "$link" in "$url/approvals/"*) ;; *) problem "link: $link" ;; esac
page=$(curl -s "$link")
csrf=$(printf '%s' "$page" | sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p')
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Origin: $url" -d "csrf=$csrf&decision=approve" "$link")
[ "$code" = 303 ] || problem "decision: $code"
wait_status "$id" SUCCEEDED || problem "not SUCCEEDED"
end

begin 'the release notices go to the new kind as a default channel'
wait_file "$tmp/chat.jsonl" '"kind":"succeeded"' || problem "no end notice"
message started | grep -q '"text":"Release web started in prod' || problem "start notice: $(message started)"
message succeeded | grep -q "#/executions/$id" || problem "no release link: $(message succeeded)"
end

begin 'a channel of the new kind that cannot be reached: retried like every channel, then a warning'
id2=$(submit_plan '{"plan": {"stages": [{"name": "n", "steps": [{"type": "Notify", "name": "tell", "message": "x", "channels": ["dead"]}]}]}}')
wait_status "$id2" SUCCEEDED || problem "not SUCCEEDED"
curl -s "$url/api/v1/executions/$id2/events" | /usr/bin/python3 -c '
import json, sys
ev = json.load(sys.stdin)["events"]
ok = [e for e in ev if e["type"] == "StepSucceeded"][0]["data"]
w = ok.get("warning", "")
assert w.startswith("xyz channel \"dead\": cannot reach 127.0.0.1") and w.endswith("(3 attempts)"), ok' ||
    problem "no warning naming the channel"
end

kill -TERM $server_pid
wait $server_pid 2>/dev/null
finish
