#!/usr/bin/python3
"""steppy serve under load: wrk on loopback against GET /api/v1/executions
with --stored executions in the store while --running releases run, next to
a raw libmicrohttpd server (bench/raw-mhd.c) serving the identical answer.
Prints figures; asserts nothing.

  bench/serve.py [--steppy build/steppy ...] [--stored 10000] [--running 100]
                 [--connections 50] [--seconds 20] [--rounds 1]
                 [--per-address N] [--no-raw] [--etag] [--path PATH]
                 [--writes N] [--pg]
  bench/serve.py --nodes [--steppy build/steppy] [--rounds 2] [--fresh 20]
                 [--strace DIR]

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
--nodes measures reads through several nodes instead: one node on SQLite,
one node on PostgreSQL and three nodes on one PostgreSQL database (a
throwaway PostgreSQL 15, databases filled by `steppy store migrate`), and
raw libmicrohttpd servers (1 and 3 processes, 4 threads each unless
--raw-threads) serving the same bytes; wrk's 3 threads each send their
connections to one port, round robin over a configuration's servers (as a
balancer spreading connections). Both the list and one release's report
are asked. Then read-after-write across nodes: a Human release submitted on
node A, approved on node B, node C's list asked until it shows each change
(--fresh samples idle, then as many as fit in one run under load).
--strace DIR runs the PostgreSQL nodes under strace -f -e trace=connect
(logs in DIR, and the time the loads start is printed): which threads
connect, and when; ptrace slows those nodes several times, so their
latency figures mean nothing in such a run.
wrk comes from Debian (installed here if missing).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
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


def make_seed(work, binary, stored):
    """A SQLite store of STORED finished releases (one recorded by `steppy
    run`, cloned); returns its path."""
    seed = os.path.join(work, "seed.db")
    env = dict(os.environ, STEPPY_DB=seed)
    plan = os.path.join(work, "done.yaml")
    with open(plan, "w") as f:
        f.write("name: stored\nenvironmentName: prod\nstages:\n  - name: build\n    steps:\n"
                "      - {type: Wait, name: compile, seconds: 0}\n      - {type: Wait, name: test, seconds: 0}\n"
                "  - name: deploy\n    steps:\n      - {type: Wait, name: ship, seconds: 0}\n")
    subprocess.check_call([binary, "run", plan], env=env, stdout=subprocess.DEVNULL)
    src = json.loads(subprocess.check_output([binary, "list", "--format", "json"], env=env))
    clone(seed, src["executions"][0]["id"], stored - 1)
    return seed


def make_config(work, binary, per_address):
    """A serve configuration with one admin token; returns (path, token)."""
    tok = subprocess.check_output([binary, "token", "bench", "admin"]).decode()
    token = re.search(r"token: (\S+)", tok).group(1)
    config = os.path.join(work, "config.yaml")
    with open(config, "w") as f:
        f.write("tokens:\n" + tok.split("for the configuration:\n")[1])
        f.write("exec: {enabled: true}\n")
        if per_address:  # wrk's connections all come from 127.0.0.1
            f.write("maxConnectionsPerAddress: %d\n" % per_address)
    return config, token


def start_pg(procs):
    """A throwaway PostgreSQL 15 (tests/lib/pg.sh); returns its URL. It lives
    while its stdin is open (appended to procs; pg.sh's EXIT trap stops it)."""
    pg = subprocess.Popen(["sh", "-c", '. "$0/tests/lib/pg.sh"; pg_start >&2 || exit $?; '
                           'echo "$STEPPY_TEST_PG"; cat >/dev/null', REPO],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    procs.append(pg)
    pg_url = pg.stdout.readline().decode().strip()
    if not pg_url:
        raise SystemExit("PostgreSQL did not start")
    return pg_url


def pg_database(pg_url, name, binary, sqlite_db):
    """A new database NAME beside pg_url, filled from sqlite_db by `steppy
    store migrate`; returns its URL."""
    pg_host = re.search(r"host=([^&]+)", pg_url).group(1)
    subprocess.check_call(["/usr/lib/postgresql/15/bin/psql", "-q", "-X", "-h", pg_host,
                           "-U", "steppy", "-d", "postgres", "-c", "CREATE DATABASE %s" % name])
    url = pg_url.replace("///steppy?", "///%s?" % name)
    subprocess.check_call([binary, "store", "migrate", sqlite_db, url], stdout=subprocess.DEVNULL)
    return url


def with_children(pids):
    """pids and their children (a node run under strace: the node itself)."""
    out = list(pids)
    for pid in pids:
        try:
            out += [int(c) for c in
                    open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
        except OSError:
            pass
    return out


def start_server(binary, config, db, log_path, wrap=()):
    """`steppy serve` on a port the kernel picks (under the command wrap, if
    given); returns (process, URL)."""
    log = open(log_path, "w")
    p = subprocess.Popen(list(wrap) + [binary, "serve", "--config", config, "--listen", "127.0.0.1:0",
                          "--db", db], stdout=log, stderr=log)
    return p, wait_listening(log_path, p)


def build_raw(work):
    raw_bin = os.path.join(work, "raw-mhd")
    if not os.path.exists(raw_bin):
        subprocess.check_call(["cc", "-std=c17", "-O2", "-o", raw_bin,
                               os.path.join(HERE, "raw-mhd.c"), "-lmicrohttpd"])
    return raw_bin


def start_raw(work, answer, token, threads, tag):
    """bench/raw-mhd.c serving answer (bytes); returns (process, URL)."""
    body_file = os.path.join(work, "answer-%s.json" % tag)
    with open(body_file, "wb") as f:
        f.write(answer)
    log_path = os.path.join(work, "raw-%s.log" % tag)
    p = subprocess.Popen([build_raw(work), body_file, token, str(threads)],
                         stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    return p, wait_listening(log_path, p)


def post_json(url, token, doc):
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="POST",
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def submit_running(url, token, n):
    """Submits n releases that wait on a 10-minute Wait step (the server holds
    them: leases renewed, timers armed)."""
    doc = {"plan": {"stages": [{"name": "s", "steps": [
        {"type": "Wait", "name": "long", "seconds": 600}]}]}}
    for _ in range(n):
        post_json(url + "/api/v1/executions", token, doc)


def get(url, token, etag=None):
    headers = {"Authorization": "Bearer " + token}
    if etag:
        headers["If-None-Match"] = etag
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers))


def wrk(url, token, args, etag=None, threads=2, connections=None, script=None):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % (connections or args.connections),
           "-d%ds" % args.seconds, "--latency", "-H", "Authorization: Bearer " + token]
    if etag:
        cmd += ["-H", "If-None-Match: " + etag]
    if script:
        cmd += ["-s", script]
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


# ---- --nodes: reads through 3 nodes on one PostgreSQL -------------------------------

# wrk's threads each keep their connections to one address: thread i goes to
# port i modulo the ports given, as a balancer spreading connections would.
SPREAD_LUA = """local ports = {%s}
local n = 0
function setup(thread)
  n = n + 1
  thread.addr = wrk.lookup("127.0.0.1", tostring(ports[(n - 1) %% #ports + 1]))[1]
end
"""


def port_of(url):
    return int(url.rsplit(":", 1)[1].split("/")[0])


def list_statuses(conn, token):
    """{id: status} of the default list page, on a kept-alive connection."""
    conn.request("GET", "/api/v1/executions", headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise OSError("list answered %d" % r.status)
    return {e["id"]: e["status"] for e in json.loads(body)["executions"]}


def freshness(urls, token, samples, stop=None, gap=0.1):
    """Read-after-write across nodes: a release with a Human step submitted
    on node A (urls[0]), then approved on node B (urls[1]); after each answer,
    node C's list (urls[2]) is asked again and again until it shows the
    change. Returns ([submission delays], [decision delays], timeouts) in
    seconds, from the write's answer to the first list showing it."""
    conn = http.client.HTTPConnection("127.0.0.1", port_of(urls[2]), timeout=10)
    plan = {"name": "fresh", "plan": {"stages": [{"name": "s", "steps": [
        {"type": "Human", "name": "go", "message": "go?"}]}]}}
    plan = plan["plan"]

    def wait_for(check):
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            if check(list_statuses(conn, token)):
                return time.monotonic() - t0
        return None

    subs, decs, timeouts = [], [], 0
    for _ in range(samples):
        if stop is not None and stop.is_set():
            break
        rid = post_json(urls[0] + "/api/v1/executions", token, {"plan": plan})["id"]
        d = wait_for(lambda seen: rid in seen)
        if d is None:
            timeouts += 1
            continue
        subs.append(d)
        time.sleep(gap)
        post_json(urls[1] + "/api/v1/executions/%s/steps/0/0/approve" % rid, token, {})
        d = wait_for(lambda seen: seen.get(rid, "RUNNING") != "RUNNING")
        if d is None:
            timeouts += 1
        else:
            decs.append(d)
        time.sleep(gap)
    conn.close()
    return subs, decs, timeouts


def delays(name, xs):
    if not xs:
        return "%s: none" % name
    xs = sorted(xs)
    return "%s: %d, median %.1f ms, p90 %.1f ms, max %.1f ms" % (
        name, len(xs), 1000 * statistics.median(xs), 1000 * xs[int(0.9 * (len(xs) - 1))],
        1000 * xs[-1])


def scale_out(args, binary, work, procs):
    """SQLite 1 node, PostgreSQL 1 node and PostgreSQL 3 nodes, each with
    --stored releases, read under the same load (wrk's threads spread over
    the nodes' ports), in turn per round; then read-after-write across the
    3 nodes, idle and under load."""
    from nodes import pg_pids, ticks  # noqa: E402 (bench/nodes.py)
    seed = make_seed(work, binary, args.stored)
    config, token = make_config(work, binary, max(args.per_address, 64))
    pg_url = start_pg(procs)
    hz = os.sysconf("SC_CLK_TCK")
    setups = []  # (name, [processes], [urls])
    for name, kind, n in (("SQLite, 1 node", "sqlite", 1), ("PostgreSQL, 1 node", "pg", 1),
                          ("PostgreSQL, 3 nodes", "pg", 3)):
        db = os.path.join(work, "%s-%d.db" % (kind, n))
        shutil.copyfile(seed, db)
        if kind == "pg":
            db = pg_database(pg_url, "bench_nodes_%d" % n, binary, db)
        ps, urls = [], []
        for i in range(n):
            wrap = ()
            if args.strace and kind == "pg":  # its connects, timed, per thread
                wrap = ("strace", "-f", "--seccomp-bpf", "-qq", "-tt", "-e", "trace=connect",
                        "-o", os.path.join(args.strace, "connects-%s-%d-%d" % (kind, n, i)))
            p, url = start_server(binary, config, db,
                                  os.path.join(work, "serve-%s-%d-%d.log" % (kind, n, i)), wrap)
            procs.append(p)
            ps.append(p)
            urls.append(url)
        for i in range(args.running):  # round robin, as a balancer would
            submit_running(urls[i % n], token, 1)
        setups.append((name, ps, urls))
    pgp = pg_pids(pg_url)
    report = "/api/v1/executions/b%09d" % (args.stored - 2)
    paths = [args.path, report]
    # The yardstick: raw libmicrohttpd processes (as many threads as a node's
    # epoll threads) serving the bytes of each path, 1 and 3 of them.
    raw_threads = args.raw_threads or 4
    raws = {}  # (path, name) -> ([processes], [urls])
    if not args.no_raw:
        for k, path in enumerate(paths):
            answer = get(setups[0][2][0] + path, token).read()
            for n in (1, 3):
                ps, urls = [], []
                for i in range(n):
                    p, url = start_raw(work, answer, token, raw_threads, "%d-%d-%d" % (k, n, i))
                    procs.append(p)
                    ps.append(p)
                    urls.append(url)
                raws[(path, "raw libmicrohttpd x%d" % n)] = (ps, urls)
    threads = 3
    conns = -(-args.connections // threads) * threads  # at least --connections
    print("PostgreSQL: %d processes watched for CPU" % len(pgp))
    print("machine: %d cores; store: %d finished releases + %d running (Wait 600 s, "
          "submitted round robin over the nodes)" % (os.cpu_count(), args.stored, args.running))
    print("wrk: %d threads, %d connections (%d per thread; with 3 nodes each thread's "
          "connections go to one node), %d s, loopback, %d round(s); GET %s and GET %s (%d bytes)"
          % (threads, conns, conns // threads, args.seconds, args.rounds, args.path, report,
             len(get(setups[0][2][0] + report, token).read())))
    print("raw libmicrohttpd: %d threads a process, serving each path's bytes" % raw_threads
          if raws else "raw libmicrohttpd: not run (--no-raw)")

    def spread(urls):
        script = os.path.join(work, "spread-%s.lua" % "-".join(str(port_of(u)) for u in urls))
        if not os.path.exists(script):
            with open(script, "w") as f:
                f.write(SPREAD_LUA % ", ".join(str(port_of(u)) for u in urls))
        return script
    time.sleep(1)

    def made(urls):
        """Answers the nodes made from the store so far (not from memory)."""
        n = 0
        for u in urls:
            m = re.search(r'steppy_http_answers_total\{from="store"\} (\d+)',
                          get(u + "/metrics", token).read().decode())
            n += int(m.group(1)) if m else 0
        return n

    def run(name, ps, urls, path):
        raw = name.startswith("raw")
        c0, g0, m0 = ticks(with_children([p.pid for p in ps])), ticks(pgp), 0 if raw else made(urls)
        r = wrk(urls[0] + path, token, args, threads=threads, connections=conns,
                script=spread(urls))
        r["cpu"] = (ticks(with_children([p.pid for p in ps])) - c0) / hz
        r["pg_cpu"] = (ticks(pgp) - g0) / hz
        r["made"] = 0 if raw else made(urls) - m0
        return r

    def show(label, r):
        return line(label, r) + "  PostgreSQL CPU %.1f s  made from the store %d" % (
            r["pg_cpu"], r["made"])

    results = {}
    if args.strace:  # what the nodes connect after this is steady state
        print("loads start at %s (UTC)" % time.strftime("%H:%M:%S", time.gmtime()))
    for rnd in range(args.rounds):
        for path in paths:
            order = setups + [(name, ps, urls) for (p, name), (ps, urls) in raws.items()
                              if p == path]
            if rnd % 2:
                order.reverse()
            for name, ps, urls in order:
                r = run(name, ps, urls, path)
                results.setdefault((path, name), []).append(r)
                print("round %d  %-14s %s" % (rnd + 1, "list" if path == args.path else "report",
                                               show(name, r)), flush=True)
    if args.rounds > 1:
        print("medians of %d rounds:" % args.rounds)
        for path in paths:
            for name in [n for n, _, _ in setups] + [n for p, n in raws if p == path]:
                rs = results[(path, name)]
                med = {k: statistics.median(r[k] for r in rs)
                       for k in ("rps", "p50", "p90", "p99", "cpu", "pg_cpu", "load", "made")}
                med["non2xx"] = sum(r["non2xx"] for r in rs)
                med["errors"] = "; ".join(sorted({r["errors"] for r in rs}))
                print("  %-14s %s" % ("list" if path == args.path else "report", show(name, med)))

    _, ps, urls = setups[2]
    print("read-after-write across nodes (PostgreSQL, 3 nodes): a Human release submitted on "
          "node A, then approved on node B; node C's list asked until it shows each")
    load = os.getloadavg()[0]
    subs, decs, timeouts = freshness(urls, token, args.fresh)
    print("  idle (load %.1f): %s; %s; not seen within 10 s: %d" %
          (load, delays("submissions", subs), delays("decisions", decs), timeouts))
    stop, got = threading.Event(), []
    prober = threading.Thread(target=lambda: got.append(
        freshness(urls, token, 100000, stop, gap=0.2)))
    r = None
    try:
        prober.start()
        r = run(setups[2][0], ps, urls, args.path)
    finally:
        stop.set()
        prober.join()
    subs, decs, timeouts = got[0] if got else ([], [], 0)
    print("  under the list load (%s): %s; %s; not seen within 10 s: %d" %
          (show(setups[2][0], r), delays("submissions", subs), delays("decisions", decs),
           timeouts))
    for name, _, urls in setups:
        running = json.loads(get(urls[0] + "/api/v1/executions?status=RUNNING&limit=1000",
                                 token).read())["executions"]
        print("%s: running after the load: %d (%d held on a Wait of 600 s, + Human ones "
              "the probe left unapproved)" % (name, len(running), args.running))


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
    ap.add_argument("--raw-threads", type=int, default=0,
                    help="the raw server's epoll threads (default 2; with --nodes 4, "
                    "as a node has)")
    ap.add_argument("--etag", action="store_true",
                    help="send If-None-Match with the answer's ETag (304s)")
    ap.add_argument("--path", default="/api/v1/executions",
                    help="what wrk asks (with its query string)")
    ap.add_argument("--pg", action="store_true",
                    help="stores on a throwaway PostgreSQL 15 (tests/lib/pg.sh)")
    ap.add_argument("--nodes", action="store_true",
                    help="reads through 3 nodes on one PostgreSQL (see above) instead")
    ap.add_argument("--fresh", type=int, default=20,
                    help="with --nodes: read-after-write samples while idle")
    ap.add_argument("--strace", metavar="DIR",
                    help="with --nodes: run the PostgreSQL nodes under strace -f -e "
                    "trace=connect (seccomp: only connect() stops), logs in DIR")
    ap.add_argument("--writes", type=float, default=0,
                    help="releases submitted per second to steppy during the load")
    args = ap.parse_args()
    if not args.nodes:
        args.raw_threads = args.raw_threads or 2
    binaries = [os.path.abspath(b) for b in (args.steppy or [os.path.join(REPO, "build", "steppy")])]
    ensure_wrk()
    work = tempfile.mkdtemp(prefix="steppy-bench-serve.")
    procs = []
    try:
        if args.nodes:
            scale_out(args, binaries[0], work, procs)
            return 0
        seed = make_seed(work, binaries[0], args.stored)
        config, token = make_config(work, binaries[0], args.per_address)
        pg_url = start_pg(procs) if args.pg else None

        servers = []  # (name, process, url)
        for i, binary in enumerate(binaries):
            db = os.path.join(work, "steppy-%d.db" % i)
            shutil.copyfile(seed, db)
            if pg_url:
                db = pg_database(pg_url, "bench_serve_%d" % i, binary, db)
            p, url = start_server(binary, config, db, os.path.join(work, "serve-%d.log" % i))
            procs.append(p)
            submit_running(url, token, args.running)
            name = "steppy %s" % binary if len(binaries) > 1 else "steppy"
            servers.append((name, p, url))

        # The raw server answers what the first steppy answered.
        if not args.no_raw:
            answer = get(servers[0][2] + args.path, token).read()
            p, url = start_raw(work, answer, token, args.raw_threads, "main")
            procs.append(p)
            servers.append(("raw libmicrohttpd (%d threads)" % args.raw_threads, p, url))
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
                for c in with_children([p.pid])[1:]:  # under strace: the node first
                    try:
                        os.kill(c, signal.SIGTERM)
                    except OSError:
                        pass
                p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
