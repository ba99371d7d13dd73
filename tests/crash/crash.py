#!/usr/bin/python3
"""Crash test: SIGKILL steppy at random moments and check nothing breaks.

Runs several releases of many parallel Exec and Wait steps, kills the steppy
process with SIGKILL at random moments (at least --kills times), restarts it
with `steppy resume`, until every release has ended. Then checks:

  - every release ended SUCCEEDED (the plan always succeeds when not killed,
    and its retry budget outlasts the kills);
  - no Exec attempt ran twice: each attempt creates a marker directory named
    by execution, step and attempt with mkdir, which fails if it exists;
  - every marker belongs to an attempt the history scheduled (no work
    without a recorded intent), and every succeeded attempt left a marker;
  - each history is well-formed: numbered 1..n without gaps, starts with
    ExecutionStarted, ends with ExecutionFinished, and `steppy show` folds
    it (the engine rejects any event that does not fit);
  - no event is duplicated: each attempt is scheduled once, started at most
    once and ended at most once;
  - Wait steps are never restarted and fire at or after their due time;
  - no command outlives the test (no leftover process of the plan);
  - with --plugin, each stage also has a step of the example plugin
    plugins/job (docs/plugins.md): no attempt's job is started twice (its
    starts.log holds each idempotency key at most once), and every
    succeeded plugin attempt started its job.

Prints "N passed, M failed". Usage:
  tests/crash/crash.py --steppy build/steppy [--kills 20] [--seed N] [--plugin]
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PLAN = """
name: crash test
stages:
%s
"""


def make_plan(stages, width, token):
    out = []
    for s in range(stages):
        out.append("  - name: stage%d\n    steps:" % s)
        for j in range(width):
            if j % 3 == 2:
                out.append("      - {type: Wait, name: w%d, seconds: 1}" % j)
            else:
                # The marker is made with mkdir: it fails if the attempt ran before.
                cmd = ('m="$MARKERS/$STEPPY_EXECUTION_ID.$STEPPY_STEP_ID.$STEPPY_ATTEMPT"; '
                       'mkdir "$m" 2>/dev/null || { echo "$m" >> "$MARKERS/DUPLICATES"; exit 99; }; '
                       'sleep 0.$((RANDOM %% 4 + 1)) # %s' % token)
                out.append("      - {type: Exec, name: e%d, command: [bash, -c, '%s'], "
                           "retry: {maxAttempts: 100, intervalSeconds: 0}}" % (j, cmd))
        if ARGS.plugin:
            out.append("      - {type: Job, name: p0, seconds: 1, "
                       "retry: {maxAttempts: 100, intervalSeconds: 1}}")
    return PLAN % "\n".join(out)


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


def steppy(args, env, **kw):
    return subprocess.run([ARGS.steppy] + args, env=env, capture_output=True, text=True, **kw)


def main():
    rnd = random.Random(ARGS.seed)
    work = tempfile.mkdtemp(prefix="steppy-crash.")
    token = "crash-token-%d" % os.getpid()
    env = dict(os.environ, STEPPY_DB=os.path.join(work, "steppy.db"),
               MARKERS=os.path.join(work, "markers"), NO_COLOR="1")
    os.mkdir(env["MARKERS"])
    if ARGS.plugin:
        plugins = os.path.join(work, "plugins")
        os.mkdir(plugins, 0o755)
        os.chmod(work, 0o755)
        shutil.copy(os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "job"), plugins)
        os.chmod(os.path.join(plugins, "job"), 0o755)
        env["STEPPY_PLUGIN_PATH"] = plugins
        env["JOB_PLUGIN_STATE"] = os.path.join(work, "job-state")
    plan = os.path.join(work, "plan.yaml")
    with open(plan, "w") as f:
        f.write(make_plan(ARGS.stages, ARGS.width, token))
    c = Checks()
    kills = 0
    started = 0
    deadline = time.time() + ARGS.max_seconds
    log = open(os.path.join(work, "steppy.log"), "w")
    def running():
        out = steppy(["list", "--status", "RUNNING", "--format", "json"], env).stdout
        return len(json.loads(out)["executions"])

    while time.time() < deadline:
        # Keep work in the store until enough kills have landed: start a new
        # release whenever none is unfinished, otherwise resume.
        if started < ARGS.releases or (kills < ARGS.kills and running() == 0):
            cmd = [ARGS.steppy, "run", plan]
            started += 1
        else:
            cmd = [ARGS.steppy, "resume"]
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=log)
        if kills < ARGS.kills:
            time.sleep(rnd.uniform(0.02, 0.7))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
        elif p.wait() == 0 and running() == 0:
            break
    log.close()
    print("kills: %d, releases: %d" % (kills, started), flush=True)
    c.check(kills >= ARGS.kills, "only %d kills" % kills)

    listing = json.loads(steppy(["list", "--limit", "1000", "--format", "json"], env).stdout)
    ids = [e["id"] for e in listing["executions"]]
    # A run killed before it committed its release started nothing and said
    # nothing; every release a run announced must be recorded, and no more
    # releases than runs.
    with open(os.path.join(work, "steppy.log")) as f:
        announced = set(re.findall(r'release ([0-9a-z]+) .*started', f.read()))
    c.check(announced <= set(ids), "announced but not recorded: %s" % sorted(announced - set(ids)))
    c.check(len(announced) <= len(ids) <= started,
            "%d releases recorded, %d announced, %d runs" % (len(ids), len(announced), started))
    markers = set(os.listdir(env["MARKERS"])) - {"DUPLICATES"}
    c.check(not os.path.exists(os.path.join(env["MARKERS"], "DUPLICATES")),
            "an attempt ran twice: " + (open(os.path.join(env["MARKERS"], "DUPLICATES")).read()
                                         if os.path.exists(os.path.join(env["MARKERS"], "DUPLICATES")) else ""))
    scheduled_all = set()
    for rid in ids:
        status = [e for e in listing["executions"] if e["id"] == rid][0]["status"]
        c.check(status == "SUCCEEDED", "release %s ended %s" % (rid, status))
        show = steppy(["show", rid], env)
        c.check(show.returncode == 0, "steppy show %s failed: %s" % (rid, show.stderr))
        hist = json.loads(steppy(["history", "--format", "json", rid], env).stdout)["events"]
        seqs = [e["seq"] for e in hist]
        c.check(seqs == list(range(1, len(hist) + 1)), "%s: event numbers have gaps" % rid)
        c.check(hist[0]["type"] == "ExecutionStarted", "%s: does not start with ExecutionStarted" % rid)
        c.check(hist[-1]["type"] == "ExecutionFinished", "%s: does not end with ExecutionFinished" % rid)
        per_attempt = {}
        for e in hist:
            if "step" in e:
                key = (e["stage"], e["step"], e.get("attempt", 0))
                per_attempt.setdefault(key, []).append(e)
        ok_dup = True
        for key, evs in per_attempt.items():
            types = [e["type"] for e in evs]
            for t in ("StepScheduled", "StepStarted", "StepSucceeded", "StepFailed"):
                if types.count(t) > 1:
                    ok_dup = c.check(False, "%s attempt %s: %s recorded %d times" % (rid, key, t, types.count(t)))
            if "StepScheduled" in types:
                scheduled_all.add("%s.%d.%d.%d" % (rid, key[0], key[1], key[2]))
            name = evs[0].get("stepName", "")
            if name.startswith("e") and "StepSucceeded" in types:
                marker = "%s.%d.%d.%d" % (rid, key[0], key[1], key[2])
                if marker not in markers:
                    c.check(False, "%s: succeeded attempt %s left no marker" % (rid, key))
            if name.startswith("w"):
                started_ev = [e for e in evs if e["type"] == "StepStarted"]
                fired = [e for e in evs if e["type"] == "TimerFired"]
                if fired and started_ev:
                    c.check(fired[0]["timeMs"] >= started_ev[0]["data"]["dueMs"],
                            "%s: wait %s fired before its due time" % (rid, key))
        c.check(ok_dup, "%s: no duplicated events" % rid)
        waits = [k for k, evs in per_attempt.items() if evs[0].get("stepName", "").startswith("w") and k[2] > 1]
        c.check(not waits, "%s: Wait steps restarted: %s" % (rid, waits))
    if ARGS.plugin:
        starts_log = os.path.join(env["JOB_PLUGIN_STATE"], "starts.log")
        lines = open(starts_log).read().split("\n") if os.path.exists(starts_log) else []
        keys = [l.split(" ")[2] for l in lines if l.startswith("start ")]
        dups = sorted(k for k in set(keys) if keys.count(k) > 1)
        c.check(not dups, "plugin jobs started twice: %s" % dups[:5])
        for rid in ids:
            hist = json.loads(steppy(["history", "--format", "json", rid], env).stdout)["events"]
            plugin_steps = {(e["stage"], e["step"]) for e in hist
                            if e["type"] == "StepScheduled" and e.get("stepName") == "p0"}
            c.check(plugin_steps, "%s: no plugin step scheduled" % rid)
            for e in hist:
                if e["type"] == "StepSucceeded" and (e["stage"], e["step"]) in plugin_steps:
                    key = "%s/%d/%d/%d" % (rid, e["stage"], e["step"], e["attempt"])
                    c.check(key in keys, "%s: plugin attempt %s succeeded without a start" % (rid, key))
    stray = sorted(m for m in markers if m.rsplit(".", 3)[0] and ".".join(m.split(".")) not in scheduled_all)
    c.check(not stray, "markers without a recorded intent: %s" % stray[:5])
    time.sleep(0.3)
    ps = subprocess.run(["pgrep", "-f", token], capture_output=True, text=True)
    if ps.stdout.strip():
        subprocess.run(["ps", "-o", "pid,ppid,sid,pgid,stat,etime,args", "-p",
                        ",".join(ps.stdout.split())])
    c.check(ps.stdout.strip() == "", "leftover processes: " + ps.stdout.strip())
    print("%d passed, %d failed" % (c.passed, c.failed))
    if c.failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("work directory kept: " + work)
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", required=True)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--releases", type=int, default=3)
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--width", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-seconds", type=int, default=600)
    ap.add_argument("--plugin", action="store_true",
                    help="add a step of the example plugin plugins/job to each stage")
    ARGS = ap.parse_args()
    if ARGS.seed is None:
        ARGS.seed = int(time.time())
    print("seed %d" % ARGS.seed, flush=True)
    sys.exit(main())
