#!/bin/sh
# t0062: steppy serve under a service manager - READY=1 once it listens
# with the store open, WATCHDOG=1 at half WatchdogSec from the loop thread,
# STOPPING=1 on a graceful stop (sd_notify's datagrams, received by a
# stand-in for systemd on a Unix socket); and the unit file's checks.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

# notify_listen SOCKET LOG: records every datagram, one message a line.
/usr/bin/python3 - "$tmp/notify.sock" "$tmp/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode()
        log.write(msg.replace("\n", " | ") + "\n")
        if "STOPPING=1" in msg:
            break
EOF
listener=$!
trap 'kill $listener $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT
i=0
while [ ! -S "$tmp/notify.sock" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done

begin 'READY=1 once the listener is up; the watchdog is fed; STOPPING=1 on SIGTERM'
NOTIFY_SOCKET="$tmp/notify.sock" WATCHDOG_USEC=600000 "$STEPPY" serve --listen 127.0.0.1:0 \
    --db "$db" >"$tmp/serve.log" 2>&1 &
server_pid=$!
i=0
while ! grep -q 'READY=1' "$tmp/notify.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'READY=1 | STATUS=http://127.0.0.1:' "$tmp/notify.log" || problem "no READY=1: $(cat "$tmp/notify.log" 2>/dev/null)"
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
[ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ] || problem "not serving when ready"
# 300 ms apart: at least three in two seconds
i=0
while [ "$(grep -c 'WATCHDOG=1' "$tmp/notify.log")" -lt 3 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ "$(grep -c 'WATCHDOG=1' "$tmp/notify.log")" -ge 3 ] || problem "the watchdog was not fed: $(cat "$tmp/notify.log")"
kill -TERM $server_pid
wait $server_pid
run true
wait $listener
grep -q 'STOPPING=1' "$tmp/notify.log" || problem "no STOPPING=1: $(cat "$tmp/notify.log")"
end

begin 'without NOTIFY_SOCKET nothing is sent and the server runs as before'
"$STEPPY" serve --listen 127.0.0.1:0 --db "$db" >"$tmp/serve2.log" 2>&1 &
server_pid=$!
i=0
while ! grep -q 'listening on' "$tmp/serve2.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $server_pid
wait $server_pid
run true
grep -q 'steppy serve: stopped' "$tmp/serve2.log" || problem "no graceful stop: $(cat "$tmp/serve2.log")"
end

# ---- SIGHUP ----------------------------------------------------------------------
mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
OLD=$(mk old admin)
NEW=$(mk new admin)
KEEP=$(mk keep viewer)
conf() { # NAME...: a configuration with these tokens and a log channel
    {
        echo "tokens:"
        for n in "$@"; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
        echo "channels:"
        echo "  audit: {type: log, path: $tmp/audit.log}"
        echo "defaultChannels: [audit]"
    } >"$tmp/config.yaml.new"
    mv "$tmp/config.yaml.new" "$tmp/config.yaml"
}
code() { curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $1" "$url$2"; }
conf old keep
"$STEPPY" serve --config "$tmp/config.yaml" --listen 127.0.0.1:0 --db "$tmp/hup.db" \
    >"$tmp/hup.out" 2>"$tmp/hup.err" &
server_pid=$!
i=0
while ! grep -q 'listening on' "$tmp/hup.out" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
url=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/hup.out")
/usr/bin/python3 -c 'import json; print(json.dumps({"plan": {"name": "p", "stages": [{"name": "go", "steps": [{"type": "Human", "name": "ship", "message": "Ship?"}]}]}}))' >"$tmp/submit.json"
curl -s -o "$tmp/body" -X POST -H "Authorization: Bearer $OLD" -H 'Content-Type: application/json' \
    --data-binary @"$tmp/submit.json" "$url/api/v1/executions"
id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/body")
i=0
while ! grep -q 'Approval requested' "$tmp/audit.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
hups() { grep -c "config.reload" "$tmp/hup.err"; }
wait_hup() { # N: waits for the Nth reload line
    i=0
    while [ "$(hups)" -lt "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
}

begin 'SIGHUP: the new token is accepted, the old one refused, the release and an open stream go on'
[ "$(code "$OLD" /api/v1/executions)" = 200 ] || problem "the old token was refused before the reload"
[ "$(code "$NEW" /api/v1/executions)" = 401 ] || problem "the new token was accepted before the reload"
# a live stream opened before the reload, with a token both configurations have
curl -sN -H "Authorization: Bearer $KEEP" "$url/api/v1/executions/$id/stream" >"$tmp/sse" 2>/dev/null &
stream=$!
i=0
while ! grep -q '"status"' "$tmp/sse" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
conf new keep
kill -HUP $server_pid
wait_hup 1
grep -q 'config.reloaded .*tokens=2 channels=1' "$tmp/hup.err" || problem "no reload line: $(cat "$tmp/hup.err")"
[ "$(code "$OLD" /api/v1/executions)" = 401 ] || problem "the old token still works"
[ "$(code "$NEW" "/api/v1/executions/$id")" = 200 ] || problem "the new token is refused"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["status"] == "RUNNING" and d["waitingFor"] else 1)' "$tmp/body" ||
    problem "the release is not waiting any more: $(cat "$tmp/body")"
kill -0 $server_pid || problem "the server is gone"
status=$(curl -s -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $NEW" \
    -H 'Content-Type: application/json' --data-binary '{}' "$url/api/v1/executions/$id/steps/0/0/approve")
[ "$status" = 200 ] || problem "approve answered $status: $(cat "$tmp/body")"
i=0
while [ "$(code "$NEW" "/api/v1/executions/$id")" = 200 ] &&
    ! grep -q '"SUCCEEDED"' "$tmp/body" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q '"SUCCEEDED"' "$tmp/body" || problem "the release did not end: $(cat "$tmp/body")"
i=0
while ! grep -q '"status":"SUCCEEDED"' "$tmp/sse" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q '"status":"SUCCEEDED"' "$tmp/sse" || problem "the stream opened before the reload missed the end: $(tail -c 300 "$tmp/sse")"
kill $stream 2>/dev/null
run true
end

begin 'SIGHUP with a broken configuration, or one without tokens, changes nothing'
echo 'tokens: [{name: x}]' >"$tmp/config.yaml"
kill -HUP $server_pid
wait_hup 2
grep -q 'config.reload.refused.*config.yaml:1' "$tmp/hup.err" || problem "no refusal: $(cat "$tmp/hup.err")"
[ "$(code "$NEW" /api/v1/executions)" = 200 ] || problem "the token of the last good configuration is refused"
echo 'exec: {enabled: false}' >"$tmp/config.yaml"
kill -HUP $server_pid
wait_hup 3
grep -q 'removing every token takes a restart' "$tmp/hup.err" || problem "no refusal: $(cat "$tmp/hup.err")"
[ "$(code "$NEW" /api/v1/executions)" = 200 ] || problem "the token was dropped"
[ "$(code "" /api/v1/executions)" = 401 ] || problem "the server lets everyone in"
run true
end

begin 'SIGHUP many times: no descriptor per reload (the hubs share one notifier)'
conf new keep
fds() { ls "/proc/$server_pid/fd" | wc -l; }
before=$(fds)
n=0
while [ $n -lt 200 ]; do kill -HUP $server_pid; n=$((n + 1)); sleep 0.01; done
wait_hup 4
sleep 1
after=$(fds)
[ "$after" -le $((before + 4)) ] || problem "descriptors grew from $before to $after over 200 reloads"
[ "$(code "$NEW" /api/v1/executions)" = 200 ] || problem "the server stopped answering after the reloads"
run true
end

begin 'SIGHUP with the configuration replaced by a FIFO: refused, the loop does not block'
rm -f "$tmp/config.yaml"
mkfifo "$tmp/config.yaml"
kill -HUP $server_pid
i=0
while ! grep -q 'config.yaml is not a regular file' "$tmp/hup.err" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'config.reload.refused.*not a regular file' "$tmp/hup.err" || problem "no refusal: $(tail -3 "$tmp/hup.err")"
status=$(curl -s -m 10 -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $NEW" \
    -H 'Content-Type: application/json' --data-binary @"$tmp/submit.json" "$url/api/v1/executions")
[ "$status" = 201 ] || problem "a submit after the FIFO reload answered $status (the loop blocked?)"
rm -f "$tmp/config.yaml"
kill -TERM $server_pid
wait $server_pid
grep -q 'steppy serve: stopped' "$tmp/hup.out" || problem "no graceful stop: $(cat "$tmp/hup.out" "$tmp/hup.err")"
run true
end

finish
