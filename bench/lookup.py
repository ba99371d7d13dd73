#!/usr/bin/python3
"""Looking a release up by id or prefix in a large store. Prints figures;
asserts nothing.

  bench/lookup.py [--steppy build/steppy] [--releases 200000] [--requests 300]

Records one real release with `steppy run`, adds --releases summary rows
beside it (random ids of the same shape, written with Python's sqlite3),
then measures:
  - GET /api/v1/executions/ID under `steppy serve`, sequential requests on
    loopback (the lookup by id, then reading and folding one short history);
  - `steppy show ID` and `steppy show PREFIX` as whole processes (start-up
    included), median of 20;
  - the query plans SQLite picks for the lookups (EXPLAIN QUERY PLAN).
Run it with an older binary to compare.
"""
import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request

from benchlib import start_serve

PLAN = """name: tiny
stages:
  - name: one
    steps:
      - {type: Exec, name: a, command: ['true']}
"""
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default="build/steppy")
    ap.add_argument("--releases", type=int, default=200000)
    ap.add_argument("--requests", type=int, default=300)
    a = ap.parse_args()
    steppy = os.path.abspath(a.steppy)
    tmp = tempfile.mkdtemp(prefix="steppy-lookup-")
    db = os.path.join(tmp, "steppy.db")
    plan = os.path.join(tmp, "tiny.yaml")
    with open(plan, "w") as f:
        f.write(PLAN)
    subprocess.run([steppy, "run", "--db", db, plan], check=True, stdout=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    row = con.execute("SELECT * FROM executions").fetchone()
    rid = row[0]
    rnd = random.Random(7)
    con.execute("BEGIN")
    for _ in range(a.releases):
        nid = "".join(rnd.choice(ALPHABET) for _ in range(10))
        if nid.startswith(rid[:6]):
            continue
        con.execute("INSERT OR IGNORE INTO executions VALUES (%s)" % ",".join("?" * len(row)),
                    (nid,) + tuple(row[1:]))
    con.execute("COMMIT")
    n = con.execute("SELECT count(*) FROM executions").fetchone()[0]
    print("steppy %s, store with %d releases" % (a.steppy, n))
    for what, sql in [
        ("old: id = ?1 OR substr(id, 1, length(?1)) = ?1",
         "SELECT * FROM executions WHERE id = ?1 OR (substr(id, 1, length(?1)) = ?1) "
         "ORDER BY id = ?1 DESC LIMIT 2"),
        ("new: id = ?1", "SELECT * FROM executions WHERE id = ?1"),
        ("new: id >= ?1 AND id < ?2",
         "SELECT * FROM executions WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 2"),
    ]:
        args = (rid,) if "?2" not in sql else (rid[:6], rid[:5] + chr(ord(rid[5]) + 1))
        qp = " / ".join(r[-1] for r in con.execute("EXPLAIN QUERY PLAN " + sql, args))
        t0 = time.perf_counter()
        for _ in range(200):
            con.execute(sql, args).fetchall()
        per = (time.perf_counter() - t0) / 200 * 1000
        print("  query %-50s %8.3f ms  (%s)" % (what, per, qp))
    con.close()

    def median_run(args):
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000

    print("  steppy show ID        %8.1f ms per process (median of 20)" %
          median_run([steppy, "show", "--db", db, rid]))
    print("  steppy show PREFIX    %8.1f ms per process (median of 20)" %
          median_run([steppy, "show", "--db", db, rid[:6]]))

    srv, url = start_serve(steppy, tmp, db)
    try:
        times = []
        for _ in range(a.requests):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url + "/api/v1/executions/" + rid) as r:
                json.load(r)
            times.append(time.perf_counter() - t0)
        times.sort()
        print("  GET /api/v1/executions/ID  median %.2f ms, p90 %.2f ms (%d sequential requests)" %
              (statistics.median(times) * 1000, times[int(len(times) * 0.9)] * 1000, a.requests))
    finally:
        srv.terminate()
        srv.wait()
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
