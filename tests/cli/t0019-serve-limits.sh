#!/bin/sh
# t0019: steppy serve under hostile clients - slow request heads from many
# addresses, bodies announced before authentication, Expect: 100-continue,
# and libmicrohttpd's own messages in the log. Real loopback HTTP (python3
# sockets and curl), the real binary.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

mk() { "$STEPPY" token "$1" "$2" >"$tmp/t-$1.out"; sed -n 's/^token: //p' "$tmp/t-$1.out"; }
ADMIN=$(mk admin admin)
VIEW=$(mk viewer viewer)
{
    echo "tokens:"
    for n in admin viewer; do sed -n '/^  - name:/,$p' "$tmp/t-$n.out"; done
    echo "maxBodyBytes: 1048576"
    echo "maxConnections: 128"
    echo "maxConnectionsPerAddress: 16"
    echo "requestHeadTimeoutSeconds: 2"
} >"$tmp/config.yaml"

begin 'the new limits are checked like every other setting'
cat >"$tmp/bad.yaml" <<'EOF'
maxConnections: 1
maxConnectionsPerAddress: 0
requestHeadTimeoutSeconds: 100000
EOF
run "$STEPPY" serve --config "$tmp/bad.yaml" --db "$db"
expect_status 1
expect_err_contains '/maxConnections'
expect_err_contains '/maxConnectionsPerAddress'
expect_err_contains '/requestHeadTimeoutSeconds'
end

start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid 2>/dev/null; rm -rf "$tmp"' EXIT

# raw REQUEST-PYTHON-BYTES: sends the bytes on a new connection, prints what
# comes back within 5 s (or until the server closes).
raw() {
    /usr/bin/python3 - "$url" "$1" <<'EOF'
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
s = socket.create_connection((u.hostname, u.port))
s.sendall(eval(sys.argv[2]))
s.settimeout(0.5)
got = b""
end = time.time() + 5
while time.time() < end:
    try:
        d = s.recv(65536)
    except socket.timeout:
        if got:
            break
        continue
    except ConnectionResetError:
        break
    if not d:
        break
    got += d
sys.stdout.write(got.decode("latin-1"))
EOF
}

begin 'Expect: 100-continue with 1 GB to a route that needs a token, without one: 401, no 100'
run raw "b'POST /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n'"
expect_out_contains 'HTTP/1.1 401'
expect_out_lacks '100 Continue'
expect_out_contains '"unauthenticated"'
end

begin 'a token without the role: 403 on headers alone, no 100'
run raw "b'POST /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer $VIEW\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n'"
expect_out_contains 'HTTP/1.1 403'
expect_out_lacks '100 Continue'
end

begin 'Content-Length above maxBodyBytes: 413 on headers alone, no 100, even with the role'
run raw "b'POST /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\nExpect: 100-continue\r\n\r\n'"
expect_out_contains 'HTTP/1.1 413'
expect_out_lacks '100 Continue'
expect_out_contains '"too-large"'
end

begin 'with the role and a body within the limit: 100 Continue, then the answer'
run raw "b'POST /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer $ADMIN\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n'"
expect_out_contains '100 Continue'
end

begin 'a route open to all takes a small body only before authentication (413 for 512 KiB)'
run raw "b'POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 524288\r\n\r\n'"
expect_out_contains 'HTTP/1.1 413'
end

begin 'open routes still work: a wrong session token is 401 after its body'
run curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary '{"token":"stp_nope"}' "$url/api/v1/session"
expect_out_contains '401'
end

begin 'a path that is not UTF-8 is answered 404 (it stopped the server) and the server lives on'
run curl -s -w ' %{http_code}' "$url/%ff%fe"
expect_out_contains '"not-found"'
expect_out_contains ' 404'
run curl -s -w ' %{http_code}' -H "Authorization: Bearer $VIEW" "$url/api/v1/executions?status=%ff"
expect_out_contains ' 400'
run curl -s "$url/healthz"
expect_out_contains '"ok"'
end

# trickle HEAD DRIP: opens a connection to $url, sends HEAD, then DRIP again
# and again (both with \r\n escapes) for up to 15 s; succeeds when the
# server closes the connection.
cat >"$tmp/trickle.py" <<'EOF'
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
head, drip = (a.encode().decode("unicode_escape").encode() for a in sys.argv[2:4])
s = socket.create_connection((u.hostname, u.port))
s.sendall(head)
s.settimeout(0.3)
end = time.time() + 15
while time.time() < end:
    try:
        s.sendall(drip)
        d = s.recv(100)
        if not d:
            sys.exit(0)
    except socket.timeout:
        pass
    except (BrokenPipeError, ConnectionResetError):
        sys.exit(0)
sys.exit(1)
EOF
trickle() {
    /usr/bin/python3 "$tmp/trickle.py" "$url" "$1" "$2"
}

begin 'a slow request head is cut off after requestHeadTimeoutSeconds although it keeps sending'
trickle 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' 'X-Slow: 1\r\n' ||
    problem "the slow head was not cut off"
end

begin 'without a token, a slow body is cut off too: the whole request has requestHeadTimeoutSeconds'
trickle 'POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{' ' ' ||
    problem "the slow body was not cut off"
end

# The flood: with a head deadline far longer than the test, only evicting old
# unfinished heads keeps room for the others (the deadline alone would make
# them wait up to a minute; the client gives up after 10 s).
kill -TERM $server_pid
wait $server_pid 2>/dev/null
sed 's/^requestHeadTimeoutSeconds: .*/requestHeadTimeoutSeconds: 60/' "$tmp/config.yaml" >"$tmp/config-flood.yaml"
start_server "$tmp/config-flood.yaml" "$tmp/flood.db"
[ -n "$url" ] || { echo "the second server did not start:"; cat "$tmp/serve.log"; }

begin 'hundreds of slow connections from 20 addresses: others still get answers'
/usr/bin/python3 - "$url" "$VIEW" <<'EOF' >"$tmp/flood.out" 2>&1 || problem "$(cat "$tmp/flood.out")"
import socket, sys, time, threading, urllib.parse, urllib.request
u = urllib.parse.urlparse(sys.argv[1])
token = sys.argv[2]
socks = []
def open_slow(addr):
    try:
        s = socket.socket()
        s.setblocking(True)
        s.bind((addr, 0))
        s.settimeout(2)
        s.connect((u.hostname, u.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        s.setblocking(False)
        socks.append(s)
    except OSError:
        pass
stop = False
def attack():
    # keep 300 slow connections open: reopen those the server closes
    while not stop:
        for i in range(300 - len(socks)):
            open_slow("127.0.0.%d" % (2 + i % 20))
        for s in list(socks):
            try:
                s.send(b"X-Slow: 1\r\n")
            except BlockingIOError:
                pass
            except OSError:
                socks.remove(s)
                s.close()
        time.sleep(0.2)
t = threading.Thread(target=attack)
t.start()
time.sleep(1.5)
ok = 0
fails = []
for i in range(8):
    for path, auth in (("/healthz", None), ("/api/v1/executions", token)):
        req = urllib.request.Request(sys.argv[1] + path)
        if auth:
            req.add_header("Authorization", "Bearer " + auth)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                if r.status == 200:
                    ok += 1
        except Exception as e:
            fails.append("%s: %s" % (path, e))
    time.sleep(0.3)
opened = len(socks)
stop = True
t.join()
for s in socks:
    s.close()
print("answers: %d of 16; slow connections held at the end: %d" % (ok, opened))
for f in fails:
    print(f)
sys.exit(0 if ok == 16 else 1)
EOF
cat "$tmp/flood.out"
end

begin 'the server still answers after the flood'
run curl -s "$url/healthz"
expect_out_contains '"ok"'
end

begin 'clients that leave (mid-request, mid-stream) leave no libmicrohttpd messages in the log; real ones stay'
raw "b'GET /healthz HTTP/1.1\r\nHost: 127'" >/dev/null
/usr/bin/python3 - "$url" "$VIEW" <<'EOF'
import socket, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
for req in (b"POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nab",
            b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + sys.argv[2].encode() + b"\r\n\r\n"):
    s = socket.create_connection((u.hostname, u.port))
    s.sendall(req)
    time.sleep(0.7)
    s.close()
time.sleep(1.5)
EOF
curl -s -o /dev/null -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "$url/healthz"
run cat "$tmp/serve.log"
# what is not routine still reaches the log, through the server's own logger
expect_out_contains 'steppy serve: http: Error processing request (HTTP response code is 431'
expect_out_lacks 'closed by remote side'
expect_out_lacks 'Failed to send'
expect_out_lacks 'Connection was'
expect_out_lacks 'MHD_OPTION'
expect_out_contains 'listening on'
end

kill -TERM $server_pid
wait $server_pid 2>/dev/null
server_status=$?
begin 'the server stops cleanly after all that'
[ "$server_status" -eq 0 ] || problem "exit status $server_status"
end

finish
