#!/usr/bin/python3
"""steppy serve under load: wrk on loopback against GET /api/v1/executions
with --stored executions in the store while --running releases run.
Prints figures; asserts nothing.

  bench/serve.py [--steppy build/steppy] [--stored 10000] [--running 100]
                 [--connections 50] [--seconds 20] [--per-address N]

The stored executions are copies of one real recorded release (its history
cloned under new ids, as bench/engine.py does); the running ones are
submitted through the API and wait on a 10-minute Wait step, so they are
held by the server (leases renewed, timers armed) during the measurement.
wrk comes from Debian (installed here if missing).
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    subprocess.check_call(["apt-get", "install", "-y", "-qq", "wrk"],
                          stdout=subprocess.DEVNULL)


def clone(db_path, source_id, n):
    db = sqlite3.connect(db_path)
    row = db.execute("SELECT * FROM executions WHERE id = ?", (source_id,)).fetchone()
    cols = [d[0] for d in db.execute("SELECT * FROM executions LIMIT 0").description]
    events = db.execute("SELECT * FROM events WHERE execution_id = ?", (source_id,)).fetchall()
    ecols = [d[0] for d in db.execute("SELECT * FROM events LIMIT 0").description]
    base = row[cols.index("created_ms")]
    for i in range(n):
        nid = "b%09d" % i
        r = list(row)
        r[cols.index("id")] = nid
        r[cols.index("created_ms")] = base - (n - i) * 1000
        db.execute("INSERT INTO executions (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))), r)
        for e in events:
            e = list(e)
            e[ecols.index("execution_id")] = nid
            db.execute("INSERT INTO events (%s) VALUES (%s)" % (",".join(ecols), ",".join("?" * len(ecols))), e)
    db.commit()
    db.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default=os.path.join(REPO, "build", "steppy"))
    ap.add_argument("--stored", type=int, default=10000)
    ap.add_argument("--running", type=int, default=100)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--per-address", type=int, default=0,
                    help="maxConnectionsPerAddress for the server (0: its default)")
    args = ap.parse_args()
    ensure_wrk()
    work = tempfile.mkdtemp(prefix="steppy-bench-serve.")
    db = os.path.join(work, "steppy.db")
    env = dict(os.environ, STEPPY_DB=db)
    server = None
    try:
        plan = os.path.join(work, "done.yaml")
        with open(plan, "w") as f:
            f.write("name: stored\nenvironmentName: prod\nstages:\n  - name: build\n    steps:\n"
                    "      - {type: Wait, name: compile, seconds: 0}\n      - {type: Wait, name: test, seconds: 0}\n"
                    "  - name: deploy\n    steps:\n      - {type: Wait, name: ship, seconds: 0}\n")
        subprocess.check_call([args.steppy, "run", plan], env=env, stdout=subprocess.DEVNULL)
        src = json.loads(subprocess.check_output([args.steppy, "list", "--format", "json"], env=env))
        clone(db, src["executions"][0]["id"], args.stored - 1)

        tok = subprocess.check_output([args.steppy, "token", "bench", "admin"]).decode()
        token = re.search(r"token: (\S+)", tok).group(1)
        config = os.path.join(work, "config.yaml")
        with open(config, "w") as f:
            f.write("tokens:\n" + tok.split("for the configuration:\n")[1])
            f.write("exec: {enabled: true}\n")
            if args.per_address:  # wrk's connections all come from 127.0.0.1
                f.write("maxConnectionsPerAddress: %d\n" % args.per_address)
        log = open(os.path.join(work, "serve.log"), "w")
        server = subprocess.Popen([args.steppy, "serve", "--config", config, "--listen",
                                   "127.0.0.1:0", "--db", db], stdout=log, stderr=log)
        url = None
        for _ in range(100):
            m = re.search(r"listening on (\S+)", open(os.path.join(work, "serve.log")).read())
            if m:
                url = m.group(1)
                break
            time.sleep(0.1)
        body = json.dumps({"plan": {"stages": [{"name": "s", "steps": [
            {"type": "Wait", "name": "long", "seconds": 600}]}]}}).encode()
        for _ in range(args.running):
            req = urllib.request.Request(url + "/api/v1/executions", data=body, method="POST",
                                         headers={"Authorization": "Bearer " + token,
                                                  "Content-Type": "application/json"})
            urllib.request.urlopen(req).read()
        time.sleep(1)
        out = subprocess.check_output(
            ["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.seconds, "--latency",
             "-H", "Authorization: Bearer " + token, url + "/api/v1/executions"]).decode()
        rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
        lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        errors = re.search(r"Socket errors: (.*)", out)
        print("store: %d finished executions + %d running (Wait 600 s), GET /api/v1/executions "
              "(50 newest, default page)" % (args.stored, args.running))
        print("wrk: 2 threads, %d connections, %d s, loopback" % (args.connections, args.seconds))
        print("requests/s: %s   latency p50 %s, p90 %s, p99 %s" % (rps, lat.get("50"),
                                                                   lat.get("90"), lat.get("99")))
        print("non-2xx answers: %s; socket errors: %s" % (non2xx.group(1) if non2xx else 0,
                                                         errors.group(1) if errors else "none"))
        running = json.loads(urllib.request.urlopen(urllib.request.Request(
            url + "/api/v1/executions?status=RUNNING&limit=1000",
            headers={"Authorization": "Bearer " + token})).read())["executions"]
        print("still running after the load: %d" % len(running))
    finally:
        if server:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
