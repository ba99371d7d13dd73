#!/usr/bin/python3
"""steppy serve under load: wrk on loopback against GET /api/v1/executions
with --stored executions in the store while --running releases run, next to
a raw libmicrohttpd server (bench/raw-mhd.c) serving the identical answer.
Prints figures; asserts nothing.

  bench/serve.py [--steppy build/steppy ...] [--stored 10000] [--running 100]
                 [--connections 50] [--seconds 20] [--rounds 1]
                 [--per-address N] [--no-raw] [--etag] [--path PATH]
                 [--writes N] [--pg]

--steppy may be given several times (a build before a change and one after):
each binary gets its own copy of the same store and its own server, and the
rounds run every server (and the raw one) in turn, so that a machine whose
load changes affects them alike; medians over the rounds are printed last.

The stored executions are copies of one real recorded release (its history
cloned under new ids, as bench/engine.py does); the running ones are
submitted through the API and wait on a 10-minute Wait step, so they are
held by the server (leases renewed, timers armed) during the measurement.

The raw server is built from bench/raw-mhd.c with cc into the work
directory: the bytes it serves are those the first steppy server answered,
with the same headers, to requests with the same bearer token. --etag makes
wrk send If-None-Match with the ETag of the answer (steppy then answers 304
without a body; the raw server ignores the header).
--writes N submits N releases a second (a Wait of 0 s each: a few commits
apiece) to the steppy server under load while wrk runs, so that the kept
answers are made again and again (reads during writes).
--pg puts each steppy's store on PostgreSQL instead: a throwaway
PostgreSQL 15 (tests/lib/pg.sh, a Unix socket in a temporary directory), a
database per binary, the seed store copied there with `steppy store
migrate`.
wrk comes from Debian (installed here if missing).
"""
import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
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


def wait_listening(log_path, proc):
    for _ in range(600):
        m = re.search(r"listening on (\S+)", open(log_path).read())
        if m:
            return m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit("the server did not start: see " + log_path)


def get(url, token, etag=None):
    headers = {"Authorization": "Bearer " + token}
    if etag:
        headers["If-None-Match"] = etag
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers))


def wrk(url, token, args, etag=None):
    cmd = ["wrk", "-t2", "-c%d" % args.connections, "-d%ds" % args.seconds, "--latency",
           "-H", "Authorization: Bearer " + token]
    if etag:
        cmd += ["-H", "If-None-Match: " + etag]
    load_before = os.getloadavg()[0]
    t0 = os.times()
    out = subprocess.check_output(cmd + [url]).decode()
    t1 = os.times()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": ms(lat.get("50")), "p90": ms(lat.get("90")),
            "p99": ms(lat.get("99")), "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "none",
            "wrk_cpu": (t1.children_user + t1.children_system) -
                       (t0.children_user + t0.children_system),
            "load": load_before}


def ms(text):
    """wrk's latency ("812.00us", "1.20ms", "1.05s") in milliseconds."""
    if not text:
        return float("nan")
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writer(url, token, per_second, stop, done):
    """Submits per_second releases a second to url until stop is set;
    counts them in done[0]."""
    body = json.dumps({"name": "churn", "plan": {"stages": [{"name": "s", "steps": [
        {"type": "Wait", "name": "w", "seconds": 0}]}]}}).encode()
    start = time.monotonic()
    while not stop.is_set():
        req = urllib.request.Request(url + "/api/v1/executions", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req).read()
            done[0] += 1
        except OSError:
            pass
        delay = start + done[0] / per_second - time.monotonic()
        if delay > 0:
            stop.wait(delay)


def line(name, r):
    return ("%-28s %9.0f req/s  p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  server CPU %5.1f s"
            "  load %.1f  non-2xx %d  socket errors: %s%s" %
            (name, r["rps"], r["p50"], r["p90"], r["p99"], r.get("cpu", float("nan")),
             r["load"], r["non2xx"], r["errors"],
             "  writes/s %.0f" % r["writes"] if r.get("writes") else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", action="append",
                    help="a steppy binary (several: compared side by side)")
    ap.add_argument("--stored", type=int, default=10000)
    ap.add_argument("--running", type=int, default=100)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--per-address", type=int, default=0,
                    help="maxConnectionsPerAddress for the server (0: its default)")
    ap.add_argument("--no-raw", action="store_true", help="without the raw libmicrohttpd server")
    ap.add_argument("--raw-threads", type=int, default=2)
    ap.add_argument("--etag", action="store_true",
                    help="send If-None-Match with the answer's ETag (304s)")
    ap.add_argument("--path", default="/api/v1/executions",
                    help="what wrk asks (with its query string)")
    ap.add_argument("--pg", action="store_true",
                    help="stores on a throwaway PostgreSQL 15 (tests/lib/pg.sh)")
    ap.add_argument("--writes", type=float, default=0,
                    help="releases submitted per second to steppy during the load")
    args = ap.parse_args()
    binaries = [os.path.abspath(b) for b in (args.steppy or [os.path.join(REPO, "build", "steppy")])]
    ensure_wrk()
    work = tempfile.mkdtemp(prefix="steppy-bench-serve.")
    procs = []
    try:
        # One store, copied for each binary.
        seed = os.path.join(work, "seed.db")
        env = dict(os.environ, STEPPY_DB=seed)
        plan = os.path.join(work, "done.yaml")
        with open(plan, "w") as f:
            f.write("name: stored\nenvironmentName: prod\nstages:\n  - name: build\n    steps:\n"
                    "      - {type: Wait, name: compile, seconds: 0}\n      - {type: Wait, name: test, seconds: 0}\n"
                    "  - name: deploy\n    steps:\n      - {type: Wait, name: ship, seconds: 0}\n")
        subprocess.check_call([binaries[0], "run", plan], env=env, stdout=subprocess.DEVNULL)
        src = json.loads(subprocess.check_output([binaries[0], "list", "--format", "json"], env=env))
        clone(seed, src["executions"][0]["id"], args.stored - 1)

        tok = subprocess.check_output([binaries[0], "token", "bench", "admin"]).decode()
        token = re.search(r"token: (\S+)", tok).group(1)
        config = os.path.join(work, "config.yaml")
        with open(config, "w") as f:
            f.write("tokens:\n" + tok.split("for the configuration:\n")[1])
            f.write("exec: {enabled: true}\n")
            if args.per_address:  # wrk's connections all come from 127.0.0.1
                f.write("maxConnectionsPerAddress: %d\n" % args.per_address)

        pg_url = None
        if args.pg:  # lives while its stdin is open; pg.sh's EXIT trap stops it
            pg = subprocess.Popen(["sh", "-c", '. "$0/tests/lib/pg.sh"; pg_start >&2 || exit $?; '
                                   'echo "$STEPPY_TEST_PG"; cat >/dev/null', REPO],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            procs.append(pg)
            pg_url = pg.stdout.readline().decode().strip()
            if not pg_url:
                raise SystemExit("PostgreSQL did not start")
            pg_host = re.search(r"host=([^&]+)", pg_url).group(1)

        servers = []  # (name, process, url)
        body = json.dumps({"plan": {"stages": [{"name": "s", "steps": [
            {"type": "Wait", "name": "long", "seconds": 600}]}]}}).encode()
        for i, binary in enumerate(binaries):
            db = os.path.join(work, "steppy-%d.db" % i)
            shutil.copyfile(seed, db)
            if pg_url:
                name_db = "bench_serve_%d" % i
                subprocess.check_call(["/usr/lib/postgresql/15/bin/psql", "-q", "-X", "-h", pg_host,
                                       "-U", "steppy", "-d", "postgres", "-c",
                                       "CREATE DATABASE %s" % name_db])
                url_db = pg_url.replace("///steppy?", "///%s?" % name_db)
                subprocess.check_call([binary, "store", "migrate", db, url_db],
                                      stdout=subprocess.DEVNULL)
                db = url_db
            log_path = os.path.join(work, "serve-%d.log" % i)
            log = open(log_path, "w")
            p = subprocess.Popen([binary, "serve", "--config", config, "--listen",
                                  "127.0.0.1:0", "--db", db], stdout=log, stderr=log)
            procs.append(p)
            url = wait_listening(log_path, p)
            for _ in range(args.running):
                req = urllib.request.Request(url + "/api/v1/executions", data=body, method="POST",
                                             headers={"Authorization": "Bearer " + token,
                                                      "Content-Type": "application/json"})
                urllib.request.urlopen(req).read()
            name = "steppy %s" % binary if len(binaries) > 1 else "steppy"
            servers.append((name, p, url))

        # The raw server answers what the first steppy answered.
        if not args.no_raw:
            answer = get(servers[0][2] + args.path, token).read()
            body_file = os.path.join(work, "answer.json")
            with open(body_file, "wb") as f:
                f.write(answer)
            raw_bin = os.path.join(work, "raw-mhd")
            subprocess.check_call(["cc", "-std=c17", "-O2", "-o", raw_bin,
                                   os.path.join(HERE, "raw-mhd.c"), "-lmicrohttpd"])
            log_path = os.path.join(work, "raw.log")
            p = subprocess.Popen([raw_bin, body_file, token, str(args.raw_threads)],
                                 stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
            procs.append(p)
            servers.append(("raw libmicrohttpd (%d threads)" % args.raw_threads, p,
                            wait_listening(log_path, p)))
            print("answer: %d bytes" % len(answer))
        time.sleep(1)

        etags = {}
        for name, _, url in servers:
            etags[name] = get(url + args.path, token).headers.get("ETag") if args.etag else None

        print("store%s: %d finished executions + %d running (Wait 600 s), GET %s"
              % (" (PostgreSQL)" if args.pg else "", args.stored, args.running, args.path))
        print("wrk: 2 threads, %d connections, %d s, loopback, %d round(s)%s%s"
              % (args.connections, args.seconds, args.rounds,
                 ", If-None-Match" if args.etag else "",
                 ", %g releases submitted a second meanwhile" % args.writes
                 if args.writes else ""))
        results = {name: [] for name, _, _ in servers}
        for rnd in range(args.rounds):
            order = servers if rnd % 2 == 0 else list(reversed(servers))
            for name, p, url in order:
                c0 = cpu_seconds(p.pid)
                stop, done, w = threading.Event(), [0], None
                if args.writes and not name.startswith("raw"):
                    w = threading.Thread(target=writer,
                                         args=(url, token, args.writes, stop, done))
                    w.start()
                r = wrk(url + args.path, token, args, etags[name])
                stop.set()
                if w:
                    w.join()
                r["writes"] = done[0] / args.seconds
                r["cpu"] = cpu_seconds(p.pid) - c0
                results[name].append(r)
                print("round %d  %s" % (rnd + 1, line(name, r)), flush=True)
        if args.rounds > 1:
            print("medians of %d rounds:" % args.rounds)
            for name, _, _ in servers:
                rs = results[name]
                med = {k: statistics.median(r[k] for r in rs)
                       for k in ("rps", "p50", "p90", "p99", "cpu", "load", "writes")}
                med["non2xx"] = sum(r["non2xx"] for r in rs)
                med["errors"] = "; ".join(sorted({r["errors"] for r in rs}))
                print("  " + line(name, med))
        for name, _, url in servers:
            if name.startswith("raw"):
                continue
            running = json.loads(get(url + "/api/v1/executions?status=RUNNING&limit=1000",
                                     token).read())["executions"]
            print("%s: still running after the load: %d" % (name, len(running)))
    finally:
        for p in procs:
            if p.stdin:  # PostgreSQL: its shell stops it when its stdin closes
                p.stdin.close()
            else:
                p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
