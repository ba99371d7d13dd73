#!/usr/bin/python3
"""Engine benchmarks: durable step completions per second, and memory of
thousands of waiting releases. Prints figures; asserts nothing.

  bench/engine.py [--steppy build/steppy] [--waiting 10000]

1. This machine's limit: single-row SQLite commits per second in WAL mode
   with synchronous=FULL (what steppy uses), one transaction per row.
2. Throughput: `steppy run` of 1 stage x 10,000 Wait-0 steps, of 1,000
   stages x 10 Wait-0 steps, and of 1 stage x 300 Exec `true` steps: wall
   time, durable step completions per second, events and transactions.
3. Memory: N releases each waiting on a Human step, resumed by one
   `steppy resume`: time to take them all over, and resident memory.
"""
import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time


def sqlite_commit_rate(path, seconds=2.0):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    n = 0
    start = time.time()
    while time.time() - start < seconds:
        db.execute("BEGIN")
        db.execute("INSERT INTO t (v) VALUES ('x')")
        db.execute("COMMIT")
        n += 1
    rate = n / (time.time() - start)
    db.close()
    return rate


def write_plan(path, stages, width, step):
    with open(path, "w") as f:
        f.write("stages:\n")
        for s in range(stages):
            f.write("  - name: s%d\n    steps:\n" % s)
            for j in range(width):
                f.write("      - {name: x%d, %s}\n" % (j, step))


def run_plan(steppy, work, name, stages, width, step):
    plan = os.path.join(work, name + ".yaml")
    db = os.path.join(work, name + ".db")
    write_plan(plan, stages, width, step)
    env = dict(os.environ, STEPPY_DB=db, NO_COLOR="1")
    start = time.time()
    p = subprocess.run([steppy, "run", plan], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.time() - start
    if p.returncode != 0:
        raise SystemExit("%s failed: %s" % (name, p.stderr))
    con = sqlite3.connect(db)
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    done = con.execute("SELECT count(*) FROM events WHERE type = 'StepSucceeded'").fetchone()[0]
    con.close()
    steps = stages * width
    print("  %-32s %7d steps  %6.2f s  %8.0f completions/s  %7d events" %
          (name, steps, elapsed, done / elapsed, events))
    return done / elapsed


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def waiting_releases(steppy, work, n):
    db = os.path.join(work, "waiting.db")
    plan = os.path.join(work, "human.yaml")
    with open(plan, "w") as f:
        f.write("stages:\n  - name: ask\n    steps:\n"
                "      - {type: Human, name: go, message: ship it?}\n"
                "  - name: after\n    steps:\n      - {type: Wait, name: w, seconds: 0}\n")
    env = dict(os.environ, STEPPY_DB=db, NO_COLOR="1")
    p = subprocess.Popen([steppy, "run", plan], env=env, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if "waits for approval" in line:
            break
    one_rss = rss_kb(p.pid)
    p.send_signal(signal.SIGKILL)
    p.wait()
    # Clone the waiting release n - 1 times (same history, new ids).
    con = sqlite3.connect(db, isolation_level=None)
    (src,) = con.execute("SELECT id FROM executions").fetchone()
    row = con.execute("SELECT * FROM executions WHERE id = ?", (src,)).fetchone()
    events = con.execute("SELECT * FROM events WHERE execution_id = ?", (src,)).fetchall()
    con.execute("DELETE FROM leases")
    con.execute("BEGIN")
    for i in range(1, n):
        nid = "%s%05d" % (src[:5], i)
        con.execute("INSERT INTO executions VALUES (%s)" % ",".join("?" * len(row)),
                    (nid,) + tuple(row[1:]))
        con.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)",
                        [(nid,) + tuple(e[1:]) for e in events])
    con.execute("COMMIT")
    con.close()
    start = time.time()
    p = subprocess.Popen([steppy, "resume"], env=env, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("resuming"):
            break
    taken = time.time() - start
    time.sleep(1.0)
    rss = rss_kb(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait()
    print("  %d releases waiting on a Human step, resumed by one process:" % n)
    print("    took them all over in %.2f s (%.0f per second)" % (taken, n / taken))
    print("    resident memory %.1f MB (one waiting release alone: %.1f MB)" %
          (rss / 1024.0, one_rss / 1024.0))
    print("    per release beyond the first: %.2f KB" % ((rss - one_rss) / max(1, n - 1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default="build/steppy")
    ap.add_argument("--waiting", type=int, default=10000)
    args = ap.parse_args()
    steppy = os.path.abspath(args.steppy)
    work = tempfile.mkdtemp(prefix="steppy-bench.", dir=os.environ.get("BENCH_DIR"))
    try:
        print("machine: %d cores, %s" % (os.cpu_count(), open("/proc/cpuinfo").read()
                                          .split("model name")[1].split(":")[1].split("\n")[0].strip()))
        rate = sqlite_commit_rate(os.path.join(work, "limit.db"))
        print("SQLite single-row commits/s (WAL, synchronous=FULL): %.0f" % rate)
        print("throughput (steppy run, wall time including start-up):")
        run_plan(steppy, work, "1 stage x 10,000 Wait 0", 1, 10000, "type: Wait, seconds: 0")
        run_plan(steppy, work, "1,000 stages x 10 Wait 0", 1000, 10, "type: Wait, seconds: 0")
        run_plan(steppy, work, "1 stage x 300 Exec true", 1, 300, "type: Exec, command: ['true']")
        run_plan(steppy, work, "100 stages x 3 Exec true", 100, 3, "type: Exec, command: ['true']")
        print("memory:")
        waiting_releases(steppy, work, args.waiting)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
