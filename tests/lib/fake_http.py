#!/usr/bin/python3
"""fake_http.py - a scriptable HTTP server on 127.0.0.1 for the Http step's
tests (tests/cli/t0080-http-step.sh).

Every request except /_* is recorded (method, path, headers, body) and
GET /_requests returns the list as JSON. Routes:

  /ok                 200 {"ok": true}
  /echo               201, the request as JSON (headers included: it quotes
                      an Authorization header back, as careless servers do)
  /status/N           status N, body "status N from the fake"
  /poll/NAME          200 {"state": S, "n": polls of NAME so far}, S the next
                      item of the sequence set for NAME (its last item once
                      the sequence is used up; "running" if none was set)
  /slow               waits 30 s before answering
  /html               200 text/html, not JSON
  /big                200, 20 MiB of "x" (chunked, no length announced)
  /redirect           302 to /ok
POST /_control        {"poll": {"NAME": ["running", "done"]}} sets sequences
GET  /_requests       the recorded requests
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
requests = []
sequences = {}
counts = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json", extra=None):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        path = self.path.split("?")[0]
        if path == "/_requests":
            with lock:
                return self.reply(200, json.dumps(requests))
        if path == "/_control":
            ctl = json.loads(body or b"{}")
            with lock:
                for name, seq in ctl.get("poll", {}).items():
                    sequences[name] = list(seq)
                    counts[name] = 0
            return self.reply(200, "{}")
        rec = {"method": self.command, "path": self.path,
               "headers": {k: v for k, v in self.headers.items()},
               "body": body.decode("utf-8", "replace")}
        with lock:
            requests.append(rec)
        if path == "/ok":
            return self.reply(200, '{"ok": true}')
        if path == "/echo":
            return self.reply(201, json.dumps(rec))
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            return self.reply(code, "status %d from the fake" % code, "text/plain")
        if path.startswith("/poll/"):
            name = path.split("/")[2]
            with lock:
                seq = sequences.get(name) or ["running"]
                i = counts.get(name, 0)
                counts[name] = i + 1
                state = seq[min(i, len(seq) - 1)]
            return self.reply(200, json.dumps({"state": state, "n": i + 1}))
        if path == "/slow":
            time.sleep(30)
            return self.reply(200, "{}")
        if path == "/html":
            return self.reply(200, "<html><body>login</body></html>", "text/html")
        if path == "/big":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(320):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            return None
        if path == "/redirect":
            return self.reply(302, "", "text/plain", {"Location": "/ok"})
        return self.reply(404, "no such route", "text/plain")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    port_file = sys.argv[sys.argv.index("--port-file") + 1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    import os
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
