#!/usr/bin/python3
"""Scale-out chaos test: several `steppy serve` nodes on one store, nodes
SIGKILLed and SIGSTOPped at random, and what must still hold.

Starts --nodes servers on one store (--db: a SQLite file by default, or a
postgres:// URL), submits --releases releases through random nodes, approves
their Human steps through random nodes, and meanwhile:
  - SIGKILLs a random node and restarts it a moment later;
  - SIGSTOPs a random node past the lease TTL (others take its releases
    over), then SIGCONTs it (it must let them go);
  - runs --restart-store once (a shell command, e.g. restarting PostgreSQL).
At least one node is always left running. Each release:
    stage 1: Exec e1 (makes a marker) | Wait w1 (1 s)
    stage 2: Human go
    stage 3: Exec e2 (makes a marker) | Wait w2 (1 s)
Exec steps make their marker directory with mkdir, which fails if it exists
(named by release, step and attempt: an attempt started twice fails the
release); the marker records the node (pid) that ran it.

Afterwards (all nodes stopped) it checks, through `steppy list/history`:
  - every acknowledged submission (201) is in the store exactly once, and
    every release SUCCEEDED;
  - no marker was made twice; every marker belongs to a scheduled attempt;
  - every acknowledged decision (200, or 202 queued) is in its history
    exactly once, and no step has two decisions;
  - histories are contiguous (seq 1..n), start with ExecutionStarted and end
    with ExecutionFinished; no attempt is scheduled, started or ended twice;
and prints the takeover times: for each Exec attempt in flight on a node when
it was killed or stopped, the seconds from that moment to the first event
its successor appended to the release (maximum and median, by kind).

Prints "N passed, M failed"; exit status 0 only if nothing failed. Usage:
  tests/crash/scale_out.py --steppy build/steppy [--db URL] [--nodes 3]
      [--releases 30] [--restart-store CMD] [--seed N] [--max-seconds 300]
"""
import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

STOP_SECONDS = (9.0, 12.0)  # past the 7 s lease TTL: the others take over


def plan(markers):
    mk = ('m=%s/$STEPPY_EXECUTION_ID.$STEPPY_STEP_ID.$STEPPY_ATTEMPT; '
          'mkdir "$m" 2>/dev/null || { echo "$m" >> %s/DUPLICATES; exit 99; }; '
          'tr "\\\\0" " " < /proc/$PPID/cmdline | cut -d" " -f4 > "$m/node"; '
          'sleep $((RANDOM %% 3 + 1)).$((RANDOM %% 10))') % (markers, markers)
    exec_step = {"type": "Exec", "command": ["bash", "-c", mk],
                 "retry": {"maxAttempts": 100, "intervalSeconds": 0}}
    return {"name": "scale-out", "stages": [
        {"name": "one", "steps": [dict(exec_step, name="e1"),
                                  {"type": "Wait", "name": "w1", "seconds": 1}]},
        {"name": "two", "steps": [{"type": "Human", "name": "go", "message": "go?"}]},
        {"name": "three", "steps": [dict(exec_step, name="e2"),
                                    {"type": "Wait", "name": "w2", "seconds": 1}]}]}


class Node:
    def __init__(self, slot, work):
        self.slot = slot
        self.work = work
        self.proc = None
        self.url = None
        self.stopped_until = 0.0
        self.starts = 0

    def start(self):
        self.starts += 1
        log = os.path.join(self.work, "node%d.%d.log" % (self.slot, self.starts))
        f = open(log, "w+")
        self.proc = subprocess.Popen(
            [ARGS.steppy, "serve", "--config", os.path.join(self.work, "serve.yaml"),
             "--listen", "127.0.0.1:0", "--db", ARGS.db],
            stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = None
        for _ in range(300):
            f.seek(0)
            for line in f:
                if "listening on " in line:
                    self.url = line.split("listening on ")[1].split()[0]
            if self.url or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        f.close()
        if not self.url:
            raise SystemExit("node %d did not start: %s" % (self.slot, open(log).read()[-2000:]))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def usable(self):
        return self.alive() and time.time() >= self.stopped_until


def http(method, url, body=None, timeout=15):
    """(status, json or None); status 0 when the request failed."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except (OSError, ValueError):
        return 0, None


class Chaos:
    def __init__(self, rnd, nodes):
        self.rnd = rnd
        self.nodes = nodes
        self.lock = threading.Lock()
        self.deaths = []  # (pid, time, "kill" | "stop")
        self.acked = []  # release ids answered 201
        self.decisions = {}  # release id -> "200" | "202"
        self.done = False
        self.store_restarted = False
        self.store_restart_rc = 0

    def pick(self):
        with self.lock:
            live = [n for n in self.nodes if n.usable()]
        return self.rnd.choice(live) if live else None

    def submitter(self, body):
        for i in range(ARGS.releases):
            while not self.done:
                n = self.pick()
                st, d = http("POST", n.url + "/api/v1/executions", {"plan": body}) if n else (0, None)
                if st == 201:
                    with self.lock:
                        self.acked.append(d["id"])
                    break
                time.sleep(0.2)  # refused (503), or the node died meanwhile: another try
            time.sleep(ARGS.submit_every)

    def approver(self):
        while not self.done:
            n = self.pick()
            st, d = http("GET", n.url + "/api/v1/executions?status=WAITING&limit=1000") if n else (0, None)
            for e in (d or {}).get("executions", []) if st == 200 else []:
                if e["id"] in self.decisions:
                    continue
                m = self.pick()
                if not m:
                    break
                s2, _ = http("POST", m.url + "/api/v1/executions/%s/steps/1/0/approve" % e["id"], {})
                if s2 in (200, 202):
                    with self.lock:
                        self.decisions[e["id"]] = str(s2)
            time.sleep(0.3)

    def monkey(self):
        """Kills and stops nodes at random, keeping one always usable."""
        start = time.time()
        while not self.done:
            time.sleep(self.rnd.uniform(*ARGS.chaos_every))
            if self.done:
                break
            if ARGS.restart_store and not self.store_restarted and time.time() - start > 8:
                self.store_restarted = True
                self.store_restart_rc = subprocess.run(ARGS.restart_store, shell=True).returncode
                print("restarted the store: exit status %d" % self.store_restart_rc, flush=True)
                continue
            with self.lock:
                usable = [n for n in self.nodes if n.usable()]
            if len(usable) < 2:
                continue
            victim = self.rnd.choice(usable)
            pid = victim.proc.pid
            if self.rnd.random() < 0.5:
                with self.lock:
                    self.deaths.append((pid, time.time(), "kill"))
                victim.proc.send_signal(signal.SIGKILL)
                victim.proc.wait()
                time.sleep(self.rnd.uniform(0.2, 2.0))
                with self.lock:
                    victim.start()
            else:
                until = time.time() + self.rnd.uniform(*STOP_SECONDS)
                with self.lock:
                    self.deaths.append((pid, time.time(), "stop"))
                    victim.stopped_until = until
                victim.proc.send_signal(signal.SIGSTOP)
                threading.Timer(until - time.time(), victim.proc.send_signal,
                                (signal.SIGCONT,)).start()


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: " + what, flush=True)
        return ok


def steppy(*args):
    p = subprocess.run([ARGS.steppy, args[0], "--db", ARGS.db] + list(args[1:]),
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("steppy %s failed: %s" % (" ".join(args), p.stderr))
    return json.loads(p.stdout)


def ended(events, stage, step, attempt, before_ms):
    return any(e["type"] in ("StepSucceeded", "StepFailed", "StepTimedOut", "StepCancelled")
               and e.get("stage") == stage and e.get("step") == step
               and e.get("attempt") == attempt and e["timeMs"] <= before_ms for e in events)


def takeovers(chaos, histories, markers_dir):
    """Seconds from each death to the successor's first event, per kind."""
    out = {"kill": [], "stop": []}
    for name in os.listdir(markers_dir):
        if name == "DUPLICATES":
            continue
        try:
            node = int(open(os.path.join(markers_dir, name, "node")).read().strip())
        except (OSError, ValueError):
            continue
        made = os.stat(os.path.join(markers_dir, name)).st_mtime
        rid, stage, step, attempt = name.rsplit(".", 3)
        events = histories.get(rid, [])
        for pid, t, kind in chaos.deaths:
            if pid != node or made > t or ended(events, int(stage), int(step), int(attempt), t * 1000):
                continue
            after = [e["timeMs"] for e in events
                     if e["timeMs"] > t * 1000 and e["type"] != "HumanDecision"]
            if after:
                out[kind].append(min(after) / 1000.0 - t)
    return out


def report_times(label, xs):
    if xs:
        print("takeover after %s: %d attempts in flight, max %.2f s, median %.2f s" %
              (label, len(xs), max(xs), statistics.median(xs)), flush=True)
    else:
        print("takeover after %s: no attempt was in flight" % label, flush=True)


def main():
    rnd = random.Random(ARGS.seed)
    work = tempfile.mkdtemp(prefix="steppy-scale.")
    markers = os.path.join(work, "markers")
    os.mkdir(markers)
    if not ARGS.db:
        ARGS.db = os.path.join(work, "steppy.db")
    with open(os.path.join(work, "serve.yaml"), "w") as f:
        f.write("exec:\n  enabled: true\n")
    nodes = [Node(i, work) for i in range(ARGS.nodes)]
    for n in nodes:
        n.start()
    chaos = Chaos(rnd, nodes)
    threads = [threading.Thread(target=chaos.submitter, args=(plan(markers),)),
               threading.Thread(target=chaos.approver), threading.Thread(target=chaos.monkey)]
    for t in threads:
        t.start()
    deadline = time.time() + ARGS.max_seconds
    finished = False
    while time.time() < deadline:
        time.sleep(1.0)
        with chaos.lock:
            acked = list(chaos.acked)
        if len(acked) < ARGS.releases:
            continue
        n = chaos.pick()
        st, d = http("GET", n.url + "/api/v1/executions?status=RUNNING&limit=1000") if n else (0, None)
        if st == 200 and not d["executions"]:
            finished = True
            break
    chaos.done = True
    for t in threads:
        t.join()
    time.sleep(max(0.0, max(n.stopped_until for n in nodes) - time.time()) + 0.2)
    for n in nodes:
        if n.alive():
            n.proc.send_signal(signal.SIGCONT)
            n.proc.send_signal(signal.SIGTERM)
    c = Checks()
    for n in nodes:
        if n.proc:
            try:
                n.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
            c.check(n.proc.returncode == 0, "node %d exited with %s after SIGTERM" %
                    (n.slot, n.proc.returncode))
    # No node crashed on its own, and sanitizers (a sanitized build) said nothing.
    for name in sorted(os.listdir(work)):
        if name.startswith("node") and name.endswith(".log"):
            text = open(os.path.join(work, name), errors="replace").read()
            for bad in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                        "Segmentation fault", "Aborted"):
                c.check(bad not in text, "%s: %s" % (name, bad))
    kills = sum(1 for d in chaos.deaths if d[2] == "kill")
    stops = sum(1 for d in chaos.deaths if d[2] == "stop")
    print("releases: %d acknowledged; decisions: %d acknowledged; %d SIGKILLs, %d SIGSTOPs%s" %
          (len(chaos.acked), len(chaos.decisions), kills, stops,
           ", store restarted" if chaos.store_restarted else ""), flush=True)
    c.check(finished, "not every release ended within %d s" % ARGS.max_seconds)
    c.check(kills + stops > 0, "no node was killed or stopped")
    c.check(not ARGS.restart_store or chaos.store_restarted, "the store was not restarted")
    c.check(chaos.store_restart_rc == 0, "restarting the store failed (%d)" % chaos.store_restart_rc)

    listing = steppy("list", "--limit", "1000", "--format", "json")["executions"]
    ids = [e["id"] for e in listing]
    status = {e["id"]: e["status"] for e in listing}
    c.check(len(ids) == len(set(ids)), "a release is listed twice")
    for rid in chaos.acked:
        c.check(ids.count(rid) == 1, "acknowledged release %s is in the store %d times" %
                (rid, ids.count(rid)))
    c.check(len(ids) >= len(chaos.acked), "fewer releases than acknowledged")
    dup = os.path.join(markers, "DUPLICATES")
    c.check(not os.path.exists(dup), "an attempt ran twice: " +
            (open(dup).read() if os.path.exists(dup) else ""))
    histories = {}
    scheduled = set()
    for rid in ids:
        c.check(status[rid] == "SUCCEEDED", "release %s ended %s" % (rid, status[rid]))
        hist = steppy("history", "--format", "json", rid)["events"]
        histories[rid] = hist
        seqs = [e["seq"] for e in hist]
        c.check(seqs == list(range(1, len(hist) + 1)), "%s: event numbers are not 1..n" % rid)
        c.check(hist[0]["type"] == "ExecutionStarted", "%s: does not start with ExecutionStarted" % rid)
        c.check(hist[-1]["type"] == "ExecutionFinished", "%s: does not end with ExecutionFinished" % rid)
        per_attempt = {}
        for e in hist:
            if "step" in e:
                per_attempt.setdefault((e["stage"], e["step"], e.get("attempt", 0)), []).append(e["type"])
        for key, types in per_attempt.items():
            for t in ("StepScheduled", "StepStarted", "StepSucceeded", "StepFailed", "HumanDecision"):
                c.check(types.count(t) <= 1, "%s attempt %s: %s recorded %d times" %
                        (rid, key, t, types.count(t)))
            if "StepScheduled" in types:
                scheduled.add("%s.%d.%d.%d" % ((rid,) + key))
        decisions = [e for e in hist if e["type"] == "HumanDecision"]
        if rid in chaos.decisions:
            c.check(len(decisions) == 1, "%s: decision acknowledged with %s recorded %d times" %
                    (rid, chaos.decisions[rid], len(decisions)))
    stray = sorted(m for m in os.listdir(markers) if m != "DUPLICATES" and m not in scheduled)
    c.check(not stray, "markers without a recorded intent: %s" % stray[:5])
    times = takeovers(chaos, histories, markers)
    report_times("SIGKILL", times["kill"])
    report_times("SIGSTOP (as a machine that stops answering)", times["stop"])
    allt = times["kill"] + times["stop"]
    if allt:
        print("takeover overall: max %.2f s, median %.2f s" % (max(allt), statistics.median(allt)))
    print("%d passed, %d failed" % (c.passed, c.failed))
    if c.failed == 0 and not ARGS.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", required=True)
    ap.add_argument("--db", default=None, help="store: a SQLite file (default: in a temporary "
                    "directory) or a postgres:// URL")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--releases", type=int, default=30)
    ap.add_argument("--submit-every", type=float, default=0.3)
    ap.add_argument("--chaos-every", type=float, nargs=2, default=(2.0, 5.0))
    ap.add_argument("--restart-store", default=None, help="a shell command run once mid-test")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-seconds", type=int, default=300)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ARGS = ap.parse_args()
    ARGS.steppy = os.path.abspath(ARGS.steppy)
    if ARGS.seed is None:
        ARGS.seed = int(time.time())
    print("seed %d" % ARGS.seed, flush=True)
    sys.exit(main())
