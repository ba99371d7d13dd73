#!/usr/bin/python3
"""fake_jenkins.py - a stub of Jenkins's remote API on 127.0.0.1, for the
JenkinsJob step type of tests/extend/jenkins.c.

    POST /job/J/buildWithParameters?P=V...  201, Location: /queue/item/Q/
         identical parameters while the item exists give the same item, as
         Jenkins merges identical queued builds (no second start)
    GET  /queue/item/Q/api/json             {"executable": {"number": N}} unless held
    GET  /job/J/N/api/json                  {"building": bool, "result": ...}
    POST /job/J/N/stop                      the build ends ABORTED

A build of job "fail" ends FAILURE, any other SUCCESS, after two polls of
its status, unless builds are held. Control (for the test only):
    GET  /_stats     {"starts": n, "stops": n, "builds": [...]}
    POST /_control   {"holdQueue": bool, "holdBuilds": bool}
Usage: fake_jenkins.py --port-file FILE (listens on a free port).
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

lock = threading.Lock()
state = {"starts": 0, "stops": 0, "holdQueue": False, "holdBuilds": False}
queue = {}   # id -> {"job", "params", "build": number or None}
builds = {}  # (job, number) -> {"polls", "result", "params"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, body=None, headers=None):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        parts = [p for p in urlsplit(self.path).path.split("/") if p]
        with lock:
            if parts == ["_stats"]:
                return self.reply(200, {"starts": state["starts"], "stops": state["stops"],
                                        "builds": [dict(job=j, number=n, **b) for (j, n), b in builds.items()]})
            if len(parts) == 5 and parts[:2] == ["queue", "item"] and parts[3:] == ["api", "json"]:
                item = queue.get(int(parts[2]))
                if item is None:
                    return self.reply(404, {"error": "no such queue item"})
                if item["build"] is None and not state["holdQueue"]:
                    number = 1 + max([n for (j, n) in builds if j == item["job"]] or [0])
                    builds[(item["job"], number)] = {"polls": 0, "result": None, "params": item["params"]}
                    item["build"] = number
                if item["build"] is None:
                    return self.reply(200, {"id": int(parts[2]), "why": "held"})
                return self.reply(200, {"id": int(parts[2]), "executable": {"number": item["build"]}})
            if len(parts) == 5 and parts[0] == "job" and parts[4] == "json":
                b = builds.get((parts[1], int(parts[2])))
                if b is None:
                    return self.reply(404, {"error": "no such build"})
                b["polls"] += 1
                if b["result"] is None and b["polls"] > 2 and not state["holdBuilds"]:
                    b["result"] = "FAILURE" if parts[1] == "fail" else "SUCCESS"
                return self.reply(200, {"number": int(parts[2]), "building": b["result"] is None,
                                        "result": b["result"]})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        data = self.body()
        with lock:
            if parts == ["_control"]:
                state.update(json.loads(data or b"{}"))
                return self.reply(200, {})
            if len(parts) == 3 and parts[0] == "job" and parts[2] == "buildWithParameters":
                params = dict(parse_qsl(url.query))
                for qid, item in queue.items():
                    if item["job"] == parts[1] and item["params"] == params:
                        break
                else:
                    state["starts"] += 1
                    qid = len(queue) + 1
                    queue[qid] = {"job": parts[1], "params": params, "build": None}
                host = self.headers.get("Host")
                return self.reply(201, None, {"Location": f"http://{host}/queue/item/{qid}/"})
            if len(parts) == 4 and parts[0] == "job" and parts[3] == "stop":
                b = builds.get((parts[1], int(parts[2])))
                if b is None:
                    return self.reply(404, {"error": "no such build"})
                state["stops"] += 1
                if b["result"] is None:
                    b["result"] = "ABORTED"
                return self.reply(200, {})
        self.reply(404, {"error": "not found"})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    import os
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
