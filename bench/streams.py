#!/usr/bin/python3
"""Live streams of one large release under `steppy serve`. Prints figures;
asserts nothing.

  bench/streams.py [--steppy build/steppy] [--steps 2000] [--streams 20] [--seconds 15]

Submits a release whose first stage has --steps Wait steps of 0 seconds (a
history of about 4 events per step) and whose second stage has Wait steps
ending one a second (a change every second). Once the first stage is done,
opens --streams clients on /api/v1/executions/ID/stream and measures, over
--seconds: the server's CPU time (user + system, /proc/PID/stat), its
resident memory at the end and its peak (VmRSS, VmHWM), and the bytes the
streams received. Run it with an older binary to compare.
"""
import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request

from benchlib import start_serve


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def proc_mem(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                k, v = line.split(":")
                out[k] = int(v.split()[0]) / 1024.0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steppy", default="build/steppy")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    steppy = os.path.abspath(a.steppy)
    tmp = tempfile.mkdtemp(prefix="steppy-streams-")
    db = os.path.join(tmp, "steppy.db")
    srv, url = start_serve(steppy, tmp, db)
    plan = {"name": "large", "stages": [
        {"name": "many", "steps": [{"type": "Wait", "name": "w%d" % i, "seconds": 0}
                                   for i in range(a.steps)]},
        {"name": "ticks", "steps": [{"type": "Wait", "name": "t%d" % i, "seconds": i + 1}
                                    for i in range(a.seconds + 30)]}]}
    req = urllib.request.Request(url + "/api/v1/executions", data=json.dumps({"plan": plan}).encode(),
                                 headers={"Content-Type": "application/json"})
    rid = json.load(urllib.request.urlopen(req))["id"]
    events = 0
    for _ in range(600):
        r = json.load(urllib.request.urlopen(url + "/api/v1/executions/" + rid))
        events = r["events"]
        if r["stages"][0]["state"] == "SUCCEEDED":
            break
        time.sleep(0.2)
    received = [0] * a.streams
    stop = threading.Event()

    def reader(k):
        try:
            with urllib.request.urlopen(url + "/api/v1/executions/%s/stream" % rid) as s:
                while not stop.is_set():
                    chunk = s.read1(65536)
                    if not chunk:
                        break
                    received[k] += len(chunk)
        except Exception:
            pass  # the server stopped

    threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(a.streams)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the first report of each stream
    cpu0, t0 = proc_cpu(srv.pid), time.time()
    time.sleep(a.seconds)
    cpu1, t1 = proc_cpu(srv.pid), time.time()
    mem = proc_mem(srv.pid)
    stop.set()
    srv.terminate()
    srv.wait()
    subprocess.run(["rm", "-rf", tmp])
    print("steppy %s: release with %d events, %d streams, %d s" % (a.steppy, events, a.streams, a.seconds))
    print("  server CPU %.2f s in %.1f s (%.0f%% of one core)" %
          (cpu1 - cpu0, t1 - t0, (cpu1 - cpu0) / (t1 - t0) * 100))
    print("  server memory: resident %.0f MB at the end, peak %.0f MB" % (mem["VmRSS"], mem["VmHWM"]))
    print("  streams received %.1f MB in all" % (sum(received) / 1e6))


if __name__ == "__main__":
    main()
