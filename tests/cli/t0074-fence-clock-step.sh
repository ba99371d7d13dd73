#!/bin/sh
# t0074 (review of the lease fence, 02c9fc3..3678ba6): a stepped wall clock.
# The fence mixes clocks: the deadline the supervisors obey is
# CLOCK_MONOTONIC, but when to renew (runtime.c: now - last_renew_ms) and
# lease expiry (store: now + TTL, on PostgreSQL now + an offset measured
# every 60 s) are CLOCK_REALTIME. A small LD_PRELOAD shim (compiled here)
# steps CLOCK_REALTIME of one steppy process by CLOCKSHIFT_SECONDS once the
# file CLOCKSHIFT_FILE exists, as NTP (chrony makestep), `date -s` or a VM
# resume do to the system clock; CLOCK_MONOTONIC is untouched.
. "$(dirname "$0")/lib.sh"
status=0 out="" err=""
if ! command -v cc >/dev/null 2>&1; then
    echo "ok - # SKIP no C compiler for the clock shim"
    exit 0
fi
cat >"$tmp/clockshift.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int clock_gettime(clockid_t id, struct timespec *ts)
{
	static int (*real)(clockid_t, struct timespec *);
	if (!real)
		real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
	int r = real(id, ts);
	const char *f = getenv("CLOCKSHIFT_FILE"), *s = getenv("CLOCKSHIFT_SECONDS");
	if (r == 0 && f && s && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE) &&
	    access(f, F_OK) == 0)
		ts->tv_sec -= atol(s);
	return r;
}
EOF
cc -shared -fPIC -O2 -o "$tmp/clockshift.so" "$tmp/clockshift.c" -ldl || {
    echo "ok - # SKIP the clock shim does not build"
    exit 0
}

begin 'steppy run: the wall clock stepped back 4 s does not kill a running command'
cat >"$tmp/plan.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: long, command: [sh, -c, 'touch "$TRIG"; sleep 9; echo finished']}
PLAN
TRIG="$tmp/step-back" LD_PRELOAD="$tmp/clockshift.so" CLOCKSHIFT_FILE="$tmp/step-back" \
    CLOCKSHIFT_SECONDS=4 run "$STEPPY" run --db "$tmp/run.db" "$tmp/plan.yaml"
expect_status 0
expect_out_contains 'ok long'
expect_out_lacks 'could not renew its leases'
expect_out_lacks 'the command was killed'
end

# Two serve nodes on PostgreSQL (node B "on another machine": its own
# clock); A runs a command that holds an flock for a minute; then B's clock
# steps forward 60 s. A is healthy and renews every 2 s, so the release is
# A's: B must not take it over, and if it does, A's command must be dead
# before B's attempt runs (the lock tells; no timing asserted).
pg=""
pid_a=""
pid_b=""
cleanup() {
    kill -KILL $pid_a $pid_b 2>/dev/null
    [ -z "$pg" ] || pg_stop
    rm -rf "$tmp"
}
if [ -f "$repo/tests/lib/pg.sh" ] && [ -z "${STEPPY_NO_PG:-}" ]; then
    . "$repo/tests/lib/pg.sh"
    pg_start >"$tmp/pg.log" 2>&1 && pg=$STEPPY_TEST_PG
fi
trap cleanup EXIT
if [ -z "$pg" ]; then
    echo "ok - # SKIP no PostgreSQL for the two-node story"
    finish
    exit
fi
printf 'exec:\n  enabled: true\n' >"$tmp/serve.yaml"
script='exec 9>"$LOCK"
if flock -n 9; then
  echo "locked $STEPPY_ATTEMPT $(date +%T.%N)" >>"$LOG"
  [ "$STEPPY_ATTEMPT" = 1 ] && sleep 60
  exit 0
fi
echo "busy $STEPPY_ATTEMPT $(date +%T.%N)" >>"$LOG"
exit 1'

begin 'postgresql: a successor whose clock stepped forward does not run an attempt beside the live owner'
# A in PID and UTS namespaces of its own, as on another machine (B cannot
# reap A's processes: the handle's PID namespace differs), as in t0068.
if ! unshare --uts --pid --fork --mount-proc true 2>/dev/null; then
    echo "ok - # SKIP unshare (PID namespaces) is not allowed here"
    finish
    exit
fi
: >"$tmp/serve.log"
unshare --uts --pid --fork --mount-proc sh -c \
    'hostname node-a && exec "$0" serve --config "$1" --listen 127.0.0.1:0 --db "$2"' \
    "$STEPPY" "$tmp/serve.yaml" "$pg" >>"$tmp/serve.log" 2>&1 &
unshare_pid=$!
wait_file "$tmp/serve.log" 'listening on' || problem "node A did not start"
url_a=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/serve.log")
pid_a=$(tr -d ' ' <"/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null)
CLOCKSHIFT_FILE="$tmp/step-fwd" CLOCKSHIFT_SECONDS=-60 LD_PRELOAD="$tmp/clockshift.so" \
    "$STEPPY" serve --config "$tmp/serve.yaml" --listen 127.0.0.1:0 --db "$pg" >"$tmp/b.log" 2>&1 &
pid_b=$!
wait_file "$tmp/b.log" 'listening on' || problem "node B did not start: $(tail -3 "$tmp/b.log")"
url_b=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/b.log")
body=$(LOCK="$tmp/lock" LOG="$tmp/attempts.log" SCRIPT="$script" /usr/bin/python3 -c '
import json, os
step = {"type": "Exec", "name": "deploy", "command": ["sh", "-c", os.environ["SCRIPT"]],
        "env": {"LOCK": os.environ["LOCK"], "LOG": os.environ["LOG"]},
        "retry": {"maxAttempts": 3, "intervalSeconds": 0}}
print(json.dumps({"plan": {"name": "web", "stages": [{"name": "prod", "steps": [step]}]}}))')
# B measures its clock's offset from the database's (lease_clock) now,
# with a release of its own; it measures again only 60 s later.
url=$url_b
warm=$(submit_plan '{"plan": {"name": "warm", "stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 0}]}]}}')
wait_status "$warm" SUCCEEDED || problem "node B's own release did not end"
url=$url_a
id=$(submit_plan "$body")
wait_file "$tmp/attempts.log" 'locked 1' || problem "the first attempt did not start"
touch "$tmp/step-fwd"; echo "stepped $(date +%T.%N)" >>"$tmp/attempts.log"
# Until B took the release over and tried again, or 20 s (then: not taken).
i=0
while [ $i -lt 200 ] && ! grep -q 'busy\|locked 2' "$tmp/attempts.log"; do sleep 0.1; i=$((i + 1)); done
grep -q 'releases.taken-over' "$tmp/b.log" &&
    problem "node B took over a release of live node A (its lease looked expired to B's stepped clock)"
grep -q busy "$tmp/attempts.log" &&
    problem "node B ran an attempt while node A's command still ran: $(cat "$tmp/attempts.log")"
end
[ -z "${KEEP_LOGS:-}" ] || cp "$tmp"/*.log "$KEEP_LOGS"/ 2>/dev/null
finish
