#!/usr/bin/python3
"""steppy serve against hostile clients, on loopback. Prints figures; asserts
nothing (tests/cli/t0019-serve-limits.sh checks the behaviour).

  bench/serve-limits.py [--steppy build/steppy] [--old] [--bodies 400]
                        [--body-bytes 1048576] [--slow 1000] [--seconds 20]

1. Bodies before authentication: --bodies connections from 20 loopback
   addresses each send POST /api/v1/executions without a token, announcing
   and sending --body-bytes but its last byte; the server's RSS (VmRSS) is
   read before and while they are all open (the bodies incomplete).
2. Slow heads: --slow connections from 50 addresses send a request line and
   then one header line every 5 s, for --seconds; meanwhile one client asks
   GET /healthz every 0.5 s (5 s timeout). Prints how many answers it got
   and their latency.

--old runs a binary from before the limits (no new configuration keys).
"""
import argparse
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(steppy, tmp, old):
    tok = subprocess.run([steppy, "token", "bench", "admin"], capture_output=True,
                         text=True, check=True).stdout
    conf = os.path.join(tmp, "config.yaml")
    with open(conf, "w") as f:
        f.write("tokens:\n")
        f.write(tok[tok.index("  - name:"):])
        if not old:
            f.write("maxConnections: 4096\nmaxConnectionsPerAddress: 64\n")
    log = open(os.path.join(tmp, "serve.log"), "w")
    p = subprocess.Popen([steppy, "serve", "--config", conf, "--listen", "127.0.0.1:0",
                          "--db", os.path.join(tmp, "s.db")], stdout=log, stderr=log)
    for _ in range(100):
        time.sleep(0.1)
        text = open(os.path.join(tmp, "serve.log")).read()
        if "listening on " in text:
            url = text.split("listening on ")[1].split()[0]
            return p, url
    sys.exit("the server did not start")


def connect(addr, port, src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(5)
    s.connect((addr, port))
    return s


def bodies(url, pid, n, size):
    host, port = url.split("//")[1].split(":")
    port = int(port)
    before = rss_kb(pid)
    socks = []
    chunk = b"x" * 65536
    for i in range(n):
        try:
            s = connect(host, port, "127.0.0.%d" % (2 + i % 20))
            s.sendall(b"POST /api/v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size)
            s.setblocking(False)
            socks.append([s, size - 1])  # the last byte after the measurement
        except OSError:
            pass
    end = time.time() + 30
    while time.time() < end and any(left > 0 for _, left in socks):
        for item in socks:
            s, left = item
            if left <= 0:
                continue
            try:
                item[1] -= s.send(chunk[:min(left, len(chunk))])
            except BlockingIOError:
                pass
            except OSError:
                item[1] = 0  # refused and closed: nothing more to send
        time.sleep(0.001)
    time.sleep(1)
    peak = rss_kb(pid)
    answered = 0
    for s, _ in socks:
        try:
            s.setblocking(True)
            s.settimeout(5)
            try:
                s.send(b"x")
            except OSError:
                pass
            if s.recv(20).startswith(b"HTTP/1.1 4"):
                answered += 1
        except OSError:
            pass
        s.close()
    print("bodies: %d connections x %d bytes, no token: RSS %.1f MB -> %.1f MB (+%.1f MB); "
          "%d answered 4xx" % (len(socks), size, before / 1024, peak / 1024,
                                (peak - before) / 1024, answered))


def slow(url, n, seconds):
    host, port = url.split("//")[1].split(":")
    port = int(port)
    socks = []
    t0 = time.time()
    lat, fails = [], 0
    next_line = {}
    while time.time() - t0 < seconds:
        while len(socks) < n:
            try:
                s = connect(host, port, "127.0.0.%d" % (2 + len(socks) % 50))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                s.setblocking(False)
                socks.append(s)
                next_line[s] = time.time() + 5
            except OSError:
                break
        now = time.time()
        for s in list(socks):
            if next_line[s] <= now:
                try:
                    s.send(b"X-Slow: 1\r\n")
                    next_line[s] = now + 5
                except OSError:
                    socks.remove(s)
                    s.close()
        start = time.time()
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
                r.read()
            lat.append(time.time() - start)
        except Exception:
            fails += 1
        time.sleep(0.5)
    for s in socks:
        s.close()
    if lat:
        print("slow heads: %d kept open (reopened when cut), %.0f s: /healthz answered %d of %d, latency median "
              "%.1f ms, max %.1f ms" % (n, seconds, len(lat), len(lat) + fails,
                                        statistics.median(lat) * 1000, max(lat) * 1000))
    else:
        print("slow heads: %d kept open (reopened when cut), %.0f s: /healthz answered 0 of %d" % (n, seconds, fails))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default="build/steppy")
    ap.add_argument("--old", action="store_true")
    ap.add_argument("--bodies", type=int, default=400)
    ap.add_argument("--body-bytes", type=int, default=1 << 20)
    ap.add_argument("--slow", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        p, url = start(os.path.abspath(a.steppy), tmp, a.old)
        try:
            print("server %s at %s, idle RSS %.1f MB" % (a.steppy, url, rss_kb(p.pid) / 1024))
            bodies(url, p.pid, a.bodies, a.body_bytes)
            slow(url, a.slow, a.seconds)
        finally:
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
