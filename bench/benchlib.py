"""What the benchmark scripts share: starting `steppy serve` and finding its
URL. Imported by the scripts beside it (bench/lookup.py, bench/streams.py).
"""
import os
import subprocess
import time


def start_serve(steppy, tmp, db, *args):
    """Starts `steppy serve --listen 127.0.0.1:0 --db DB [ARGS...]`, its output
    in TMP/serve.log; returns (process, URL) once it listens (60 s at most;
    URL None if it never did). The caller terminates the process."""
    log = open(os.path.join(tmp, "serve.log"), "w+")
    srv = subprocess.Popen([steppy, "serve", "--listen", "127.0.0.1:0", "--db", db, *args],
                           stdout=log, stderr=subprocess.STDOUT)
    url = None
    for _ in range(600):
        log.seek(0)
        for line in log:
            if "listening on " in line:
                url = line.split("listening on ")[1].split()[0]
        if url:
            break
        time.sleep(0.1)
    return srv, url
