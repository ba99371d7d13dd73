#!/usr/bin/python3
"""fake_smtp.py - a minimal SMTP receiver for steppy's tests (127.0.0.1 only).

Each message is written to DIR/N.eml, its envelope recipients first as
"X-Rcpt: <addr>" lines. Speaks just enough SMTP for libcurl: EHLO/HELO,
MAIL FROM, RCPT TO, DATA (dot-unstuffed), RSET, NOOP, QUIT.

Run: fake_smtp.py --port-file FILE --dir DIR
"""
import argparse
import os
import socketserver
import threading

counter = [0]
lock = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def say(self, line):
        self.wfile.write((line + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.say("220 fake-smtp ready")
        rcpt = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.say("250 fake-smtp")
            elif verb == "MAIL":
                rcpt = []
                self.say("250 ok")
            elif verb == "RCPT":
                rcpt.append(line.split(":", 1)[1].strip())
                self.say("250 ok")
            elif verb == "DATA":
                self.say("354 go on")
                body = []
                while True:
                    l = self.rfile.readline()
                    if not l or l in (b".\r\n", b".\n"):
                        break
                    if l.startswith(b".."):
                        l = l[1:]
                    body.append(l)
                with lock:
                    counter[0] += 1
                    path = os.path.join(self.server.dir, "%d.eml" % counter[0])
                with open(path + ".tmp", "wb") as f:
                    for r in rcpt:
                        f.write(("X-Rcpt: %s\r\n" % r).encode())
                    f.write(b"".join(body))
                os.rename(path + ".tmp", path)
                self.say("250 queued")
            elif verb == "RSET" or verb == "NOOP":
                self.say("250 ok")
            elif verb == "QUIT":
                self.say("221 bye")
                return
            else:
                self.say("502 not implemented")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.dir = a.dir
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
