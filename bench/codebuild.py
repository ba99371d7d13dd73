#!/usr/bin/python3
"""CodeBuild watching: AWS calls per build-minute and how soon a build's end
is seen, for many concurrent CodeBuild steps against the fake AWS endpoint.
Prints figures; asserts nothing.

  bench/codebuild.py [--steppy build/steppy] [--builds 1000] [--projects 10]
                     [--minutes 5] [--jitter 0.15] [--history 20]

One release with one stage of --builds CodeBuild steps, spread over
--projects projects whose builds take about --minutes minutes (each build
+/- --jitter of that, uniformly). With --history N each project has N
completed builds before the release (what a project that is released
regularly has); --history 0 is a project's first release.

Reported, from the fake's records and the release's history:
- polling calls (BatchGetBuilds and ListBuildsForProject) per build-minute;
- detection: time from a build's end (the fake's endTime) to the
  StepSucceeded event of its step: median, p90, p99, max;
- the original design on the same builds: each build polled every 30 s
  from its start (one call per build per poll), its end seen at the next
  poll after it.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def http(url, body=None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)


def percentile(values, q):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(math.ceil(q / 100.0 * len(v))) - 1)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default=os.path.join(REPO, "build", "steppy"))
    ap.add_argument("--builds", type=int, default=1000)
    ap.add_argument("--projects", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--jitter", type=float, default=0.15)
    ap.add_argument("--history", type=int, default=20)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="steppy-bench-cb.")
    port_file = os.path.join(tmp, "port")
    fake = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(REPO, "tests", "aws", "fake_aws.py"), "--port", "0",
         "--port-file", port_file, "--quiet", "--max-calls", "1000000"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "fake.log"), "w"))
    try:
        while not os.path.exists(port_file):
            time.sleep(0.05)
        base = "http://127.0.0.1:%s" % open(port_file).read().strip()
        seconds = args.minutes * 60
        projects = {}
        for p in range(args.projects):
            projects["bench-%d" % p] = {"durationSeconds": seconds,
                                        "jitterSeconds": seconds * args.jitter,
                                        "history": args.history, "result": "SUCCEEDED"}
        http(base + "/_fake/configure", json.dumps({"codebuild": {"projects": projects}}).encode())
        http(base + "/_fake/reset?only=calls,stats", b"")

        steps = [{"type": "CodeBuild", "name": "build %d" % i,
                  "codeBuildName": "bench-%d" % (i % args.projects)} for i in range(args.builds)]
        plan = os.path.join(tmp, "plan.json")
        with open(plan, "w") as f:
            json.dump({"stages": [{"name": "build", "steps": steps}]}, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": "AKIDSTEPPYTEST",
                    "AWS_SECRET_ACCESS_KEY": "steppy/test+secret", "AWS_REGION": "eu-west-1",
                    "AWS_ENDPOINT_URL": base, "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                    "STEPPY_DB": os.path.join(tmp, "steppy.db")})
        started = time.time()
        rc = subprocess.call([args.steppy, "run", plan], env=env, stdout=subprocess.DEVNULL)
        wall = time.time() - started
        out = subprocess.check_output([args.steppy, "list", "--limit", "1", "--format", "json"],
                                      env=env)
        rid = json.loads(out)["executions"][0]["id"]
        hist = json.loads(subprocess.check_output([args.steppy, "history", rid, "--format",
                                                   "json"], env=env))
        seen_ms = {}
        for e in hist["events"]:
            if e["type"] == "StepSucceeded" and "buildId" in (e.get("data") or {}):
                seen_ms[e["data"]["buildId"]] = e["timeMs"]
        builds = [b for b in http(base + "/_fake/builds") if b["id"] in seen_ms]
        calls = http(base + "/_fake/calls?service=codebuild")
        polls = [c for c in calls if c["operation"] in ("BatchGetBuilds", "ListBuildsForProject")]
        build_minutes = sum(b["endTime"] - b["startTime"] for b in builds) / 60.0
        detect = [seen_ms[b["id"]] / 1000.0 - b["endTime"] for b in builds]
        orig_calls = sum(math.ceil((b["endTime"] - b["startTime"]) / 30.0) for b in builds)
        orig_detect = [30.0 * math.ceil((b["endTime"] - b["startTime"]) / 30.0) -
                       (b["endTime"] - b["startTime"]) for b in builds]

        print("builds: %d over %d projects, about %.1f min each (+/- %d%%), history %d per project"
              % (len(builds), args.projects, args.minutes, args.jitter * 100, args.history))
        print("release: exit %d, %.0f s wall, %.0f build-minutes" % (rc, wall, build_minutes))
        print("%-28s %14s %12s %10s %10s %10s %10s" % ("", "polling calls", "per build-min",
                                                      "median", "p90", "p99", "max"))
        print("%-28s %14d %12.3f %9.2fs %9.2fs %9.2fs %9.2fs" % (
            "steppy (batched, adaptive)", len(polls), len(polls) / build_minutes,
            percentile(detect, 50), percentile(detect, 90), percentile(detect, 99), max(detect)))
        print("%-28s %14d %12.3f %9.2fs %9.2fs %9.2fs %9.2fs" % (
            "original (every 30 s each)", orig_calls, orig_calls / build_minutes,
            percentile(orig_detect, 50), percentile(orig_detect, 90), percentile(orig_detect, 99),
            max(orig_detect)))
        print("calls: %.1fx fewer; other codebuild calls: %d StartBuild" % (
            orig_calls / max(1, len(polls)), sum(1 for c in calls if c["operation"] == "StartBuild")))
        bad = http(base + "/_fake/violations")
        if bad:
            print("fake saw %d violations, first: %s" % (len(bad), bad[0]["message"]))
    finally:
        fake.terminate()
        fake.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
