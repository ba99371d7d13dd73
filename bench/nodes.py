#!/usr/bin/python3
"""Several `steppy serve` nodes on one store: durable step completions per
second with 1 and 3 nodes, SQLite and PostgreSQL side by side in one run, and
the distribution of takeover times. Prints figures; asserts nothing.

  bench/nodes.py [--steppy build/steppy] [--pg URL | --pg auto] [--releases 60]
                 [--steps 500] [--repeat 3] [--idle 3000] [--takeover-rounds 4]

1. Throughput: RELEASES releases of one stage of STEPS Wait-0 steps (decided
   inside the engine: what is measured is the store's durable commits, by
   group commit), submitted round robin through the nodes' API. The figure:
   StepSucceeded events / (last release's end - first release's creation),
   both read from the store. Each configuration gets a fresh store (a new
   SQLite file, a new PostgreSQL database); each runs --repeat times. Beside
   each figure: CPU seconds used by the nodes and by PostgreSQL's processes,
   and how busy the whole machine was (other work on it included).
2. Idle cost: 3 nodes holding --idle releases that wait for a person; the
   CPU their lease renewals and take-over rounds cost per second, in the
   nodes and in PostgreSQL.
3. Takeover: 3 nodes, 30 releases each running an Exec `sleep` of 30 s; one
   node is SIGSTOPped (as a machine that stops answering: its pid is alive,
   so only the lease's expiry frees its releases) or SIGKILLed (a dead
   process of this host: freed at once). Per release it held, the seconds from
   the signal to the first event another node appended. Repeated per round on
   a fresh store.

--pg auto starts a throwaway PostgreSQL 15 with tests/lib/pg.sh; without
--pg only SQLite is measured.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import start_serve  # noqa: E402

PSQL = "/usr/lib/postgresql/15/bin/psql"
SPREAD = []  # per takeover round: how many releases each surviving node took


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def steppy_json(steppy, db, *args):
    p = subprocess.run([steppy, args[0], "--db", db] + list(args[1:]), capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise SystemExit("steppy %s: %s" % (args[0], p.stderr))
    return json.loads(p.stdout)


class Stores:
    """Fresh stores: SQLite files in work, PostgreSQL databases beside the given one."""

    def __init__(self, work, pg):
        self.work = work
        self.pg = pg
        self.n = 0

    def fresh(self, kind):
        self.n += 1
        if kind == "sqlite":
            return os.path.join(self.work, "s%d.db" % self.n)
        name = "bench%d_%d" % (os.getpid(), self.n)
        subprocess.run([PSQL, "-X", "-q", "-d", self.pg, "-c", "CREATE DATABASE " + name],
                       check=True, capture_output=True)
        base, _, query = self.pg.partition("?")
        return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


def start_nodes(steppy, work, db, n, config):
    nodes = []
    for i in range(n):
        d = os.path.join(work, "node%d-%d" % (i, time.monotonic_ns()))
        os.mkdir(d)
        srv, url = start_serve(steppy, d, db, "--config", config)
        if not url:
            raise SystemExit("a node did not start: " + open(os.path.join(d, "serve.log")).read())
        nodes.append((srv, url))
    return nodes


def stop_nodes(nodes):
    for srv, _ in nodes:
        if srv.poll() is None:
            srv.send_signal(signal.SIGCONT)
            srv.send_signal(signal.SIGTERM)
    for srv, _ in nodes:
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def ticks(pids):
    """User + system clock ticks used so far by these processes."""
    n = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            n += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return n


def machine_ticks():
    """(busy, total) clock ticks of all CPUs since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def pg_pids(url):
    """The PostgreSQL server's processes (postmaster and children)."""
    if not url:
        return []
    p = subprocess.run([PSQL, "-X", "-A", "-t", "-q", "-d", url, "-c", "SHOW data_directory"],
                       capture_output=True, text=True)
    try:
        master = int(open(os.path.join(p.stdout.strip(), "postmaster.pid")).readline())
    except (OSError, ValueError):
        return []
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def throughput(args, stores, kind, nnodes, config):
    db = stores.fresh(kind)
    nodes = start_nodes(args.steppy, args.work, db, nnodes, config)
    pgp = pg_pids(args.pg) if kind == "postgresql" else []
    hz = os.sysconf("SC_CLK_TCK")
    t_nodes, t_pg, t_machine = ticks([s.pid for s, _ in nodes]), ticks(pgp), machine_ticks()
    t0 = time.time()
    plan = {"name": "bench", "stages": [{"name": "s", "steps": [
        {"type": "Wait", "name": "w%d" % j, "seconds": 0} for j in range(args.steps)]}]}
    try:
        # Submitted from several threads at once, as clients behind a balancer.
        def submit(k):
            for i in range(k, args.releases, 6):
                post(nodes[i % nnodes][1] + "/api/v1/executions", {"plan": plan})
        threads = [threading.Thread(target=submit, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.time() + 600
        while time.time() < deadline:
            running = steppy_json(args.steppy, db, "list", "--status", "RUNNING", "--format", "json")
            if not running["executions"]:
                break
            time.sleep(0.5)
        wall = time.time() - t0
        cpu_nodes = (ticks([s.pid for s, _ in nodes]) - t_nodes) / hz
        cpu_pg = (ticks(pg_pids(args.pg) if pgp else []) - t_pg) / hz
        busy, total = machine_ticks()
        load = (busy - t_machine[0]) / max(1, total - t_machine[1])
    finally:
        stop_nodes(nodes)
    rows = steppy_json(args.steppy, db, "list", "--limit", "1000", "--format", "json")["executions"]
    start = min(r["createdMs"] for r in rows)
    end = max(r["updatedMs"] for r in rows)
    done = sum(1 for r in rows if r["status"] == "SUCCEEDED") * args.steps
    seconds = (end - start) / 1000.0
    print("  %-10s %d node%s  %6d steps  %6.2f s  %8.0f completions/s   CPU: nodes %.2f s, "
          "PostgreSQL %.2f s, machine busy %.0f %% of %.1f s" %
          (kind, nnodes, " " if nnodes == 1 else "s", done, seconds, done / seconds,
           cpu_nodes, cpu_pg, 100 * load, wall), flush=True)
    return done / seconds


def takeover_round(args, stores, kind, how, config, markers):
    db = stores.fresh(kind)
    nodes = start_nodes(args.steppy, args.work, db, 3, config)
    cmd = ('echo "$(tr "\\\\0" " " < /proc/$PPID/cmdline | cut -d" " -f4)" > %s/$STEPPY_EXECUTION_ID; '
           'sleep 30' % markers)
    plan = {"name": "hold", "stages": [{"name": "s", "steps": [
        {"type": "Exec", "name": "e", "command": ["bash", "-c", cmd],
         "retry": {"maxAttempts": 3, "intervalSeconds": 0}}]}]}
    times = []
    try:
        ids = [post(nodes[i % 3][1] + "/api/v1/executions", {"plan": plan})["id"] for i in range(30)]
        deadline = time.time() + 30
        while time.time() < deadline and not all(os.path.exists(os.path.join(markers, i)) for i in ids):
            time.sleep(0.1)
        victim, _ = nodes[0]
        held = [i for i in ids if open(os.path.join(markers, i)).read().strip() == str(victim.pid)]
        t = time.time()
        victim.send_signal(signal.SIGSTOP if how == "stop" else signal.SIGKILL)
        pending = set(held)
        deadline = t + 60
        while pending and time.time() < deadline:
            for rid in list(pending):
                ev = steppy_json(args.steppy, db, "history", "--format", "json", rid)["events"]
                after = [e["timeMs"] for e in ev if e["timeMs"] > t * 1000]
                if after:
                    times.append(min(after) / 1000.0 - t)
                    pending.discard(rid)
            time.sleep(0.2)
        # Who took them: the retried attempt writes its node's pid again.
        deadline = time.time() + 10
        while time.time() < deadline:
            took = [open(os.path.join(markers, i)).read().strip() for i in held]
            if str(victim.pid) not in took:
                break
            time.sleep(0.2)
        spread = sorted(took.count(str(s.pid)) for s, _ in nodes[1:])
        SPREAD.append(spread)
        if how == "stop":
            victim.send_signal(signal.SIGKILL)
    finally:
        stop_nodes(nodes)
        for name in os.listdir(markers):
            os.unlink(os.path.join(markers, name))
    return times


def idle_cost(args, stores, kind, config):
    """CPU the lease machinery costs while nothing happens: 3 nodes holding
    IDLE releases that wait for a person (renewals every 2 s, take-over
    rounds every second), measured over 10 s."""
    db = stores.fresh(kind)
    nodes = start_nodes(args.steppy, args.work, db, 3, config)
    plan = {"name": "asks", "stages": [{"name": "s", "steps": [
        {"type": "Human", "name": "go", "message": "go?"}]}]}
    try:
        def submit(k):
            for i in range(k, args.idle, 6):
                post(nodes[i % 3][1] + "/api/v1/executions", {"plan": plan})
        threads = [threading.Thread(target=submit, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(3)
        pgp = pg_pids(args.pg) if kind == "postgresql" else []
        hz = os.sysconf("SC_CLK_TCK")
        t_nodes, t_pg = ticks([s.pid for s, _ in nodes]), ticks(pgp)
        time.sleep(10)
        cpu_nodes = (ticks([s.pid for s, _ in nodes]) - t_nodes) / hz
        cpu_pg = (ticks(pgp) - t_pg) / hz
    finally:
        stop_nodes(nodes)
    print("  %-10s 3 nodes holding %d waiting releases: CPU per second: nodes %.3f s, "
          "PostgreSQL %.3f s" % (kind, args.idle, cpu_nodes / 10, cpu_pg / 10), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default="build/steppy")
    ap.add_argument("--pg", default=None, help="a postgres:// URL, or auto (tests/lib/pg.sh)")
    ap.add_argument("--releases", type=int, default=60)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--takeover-rounds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="throughput runs per configuration")
    ap.add_argument("--idle", type=int, default=3000, help="waiting releases for the idle cost")
    args = ap.parse_args()
    args.steppy = os.path.abspath(args.steppy)
    args.work = tempfile.mkdtemp(prefix="steppy-bench-nodes.", dir=os.environ.get("BENCH_DIR"))
    pg_keeper = None
    try:
        if args.pg == "auto":
            lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib", "pg.sh")
            pg_keeper = subprocess.Popen(
                ["sh", "-c", '. "$0" && pg_start >&2 && echo "$STEPPY_TEST_PG" && read x', lib],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            args.pg = pg_keeper.stdout.readline().strip()
            if not args.pg:
                raise SystemExit("tests/lib/pg.sh could not start PostgreSQL")
        print("machine: %d cores, %s" % (os.cpu_count(), open("/proc/cpuinfo").read()
                                          .split("model name")[1].split(":")[1].split("\n")[0].strip()))
        config = os.path.join(args.work, "serve.yaml")
        with open(config, "w") as f:
            f.write("exec:\n  enabled: true\nmaxBodyBytes: 4194304\n")
        stores = Stores(args.work, args.pg)
        kinds = ["sqlite"] + (["postgresql"] if args.pg else [])
        print("throughput: %d releases x 1 stage x %d Wait 0, submitted through the nodes' API" %
              (args.releases, args.steps))
        best = {}
        for _ in range(args.repeat):
            for kind in kinds:
                for n in (1, 3):
                    r = throughput(args, stores, kind, n, config)
                    best[(kind, n)] = best.get((kind, n), []) + [r]
        print("median of %d runs:" % args.repeat)
        for (kind, n), rs in best.items():
            print("  %-10s %d node%s  %8.0f completions/s  (min %.0f, max %.0f)" %
                  (kind, n, " " if n == 1 else "s", statistics.median(rs), min(rs), max(rs)))
        if args.idle:
            print("idle cost of leases and take-over rounds:")
            for kind in kinds:
                idle_cost(args, stores, kind, config)
        markers = os.path.join(args.work, "markers")
        os.mkdir(markers)
        print("takeover: 3 nodes, 30 releases in an Exec step; one node stopped or killed; "
              "per release it held, seconds to the first event appended by another node")
        for kind in kinds:
            for how in ("stop", "kill"):
                xs = []
                del SPREAD[:]
                for _ in range(args.takeover_rounds):
                    xs += takeover_round(args, stores, kind, how, config, markers)
                if xs:
                    q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
                    print("  %-10s %-5s %3d releases  min %.2f  median %.2f  p90 %.2f  max %.2f s" %
                          (kind, "SIGSTOP" if how == "stop" else "SIGKILL", len(xs), min(xs),
                           statistics.median(xs), q[8], max(xs)), flush=True)
                    print("             taken by the two others, per round: %s" %
                          ", ".join("%d+%d" % tuple(r) for r in SPREAD), flush=True)
    finally:
        if pg_keeper:
            pg_keeper.stdin.close()
            pg_keeper.wait()
        shutil.rmtree(args.work, ignore_errors=True)


if __name__ == "__main__":
    main()
