#!/bin/sh
# t0075 (review of the lease fence, 02c9fc3..3678ba6): the supervisor and
# the shared lease deadline under hostile or unlucky commands.
. "$(dirname "$0")/lib.sh"
status=0 out="" err=""
leftover=""
trap 'kill -KILL $leftover 2>/dev/null; rm -rf "$tmp"' EXIT

begin 'a command cannot move the lease deadline of its steppy (memfd reopened through /proc)'
# The deadline's memfd is close-on-exec and the supervisor closes its copy,
# but the runtime keeps it open: /proc/STEPPY/fd/N opens it again, read and
# write. Writing 0 there kills every sibling command at once (and INT64_MAX
# would switch the fence off). It should be sealed (F_SEAL_FUTURE_WRITE).
cat >"$tmp/w.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: victim, command: [sh, -c, 'sleep 3; echo done']}
      - type: Exec
        name: writer
        command: [sh, -c, 'rt=$(cut -d" " -f4 /proc/$PPID/stat); for f in /proc/$rt/fd/*; do case "$(readlink $f)" in *steppy-lease*) printf "\000\000\000\000\000\000\000\000" 2>/dev/null >$f && echo "wrote $f" >>"$WROTE";; esac; done; true']
PLAN
# The writer says in a file whether a write went through (a command's
# output is not on steppy run's stdout); steppy's fd must be found, or the
# case proves nothing.
WROTE="$tmp/wrote.log" run "$STEPPY" run --db "$tmp/w.db" "$tmp/w.yaml"
expect_status 0
[ -s "$tmp/wrote.log" ] && problem "a command wrote its steppy's lease deadline: $(cat "$tmp/wrote.log")"
"$STEPPY" history --db "$tmp/w.db" "$(sqlite3 "$tmp/w.db" 'SELECT id FROM executions' 2>/dev/null | head -1)" >"$tmp/w.hist" 2>&1
grep -q 'could not renew its leases\|lease' "$tmp/w.hist" &&
    problem "the victim was stopped for the lease: $(grep lease "$tmp/w.hist" | head -2)"
end

begin 'a supervisor killed with SIGKILL leaves no command running into the retry'
cat >"$tmp/k.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Exec
        name: deploy
        retry: {maxAttempts: 2, intervalSeconds: 0}
        command: [sh, -c, 'exec 9>"$LOCK"; if flock -n 9; then echo "locked $STEPPY_ATTEMPT" >>"$LOG"; [ "$STEPPY_ATTEMPT" = 1 ] && { sleep 30 & echo "$$ $!" >"$PIDF"; wait; }; exit 0; fi; echo "busy $STEPPY_ATTEMPT" >>"$LOG"; exit 1']
PLAN
LOCK="$tmp/lock" LOG="$tmp/attempts.log" PIDF="$tmp/cmd.pid" \
    "$STEPPY" run --db "$tmp/k.db" "$tmp/k.yaml" >"$tmp/k.out" 2>&1 &
run_pid=$!
wait_file "$tmp/attempts.log" 'locked 1' || problem "attempt 1 did not start"
sup=$(cat "/proc/$run_pid/task/$run_pid/children" 2>/dev/null | tr ' ' '\n' | while read -r p; do
    [ -n "$p" ] && grep -q __supervise "/proc/$p/cmdline" 2>/dev/null && echo "$p"; done | head -1)
[ -n "$sup" ] || problem "no supervisor found"
kill -KILL "$sup"
wait "$run_pid"
leftover=$(cat "$tmp/cmd.pid" 2>/dev/null)
grep -q busy "$tmp/attempts.log" &&
    problem "attempt 2 ran while attempt 1's command still held the lock: $(cat "$tmp/attempts.log")"
# SIGKILLed processes may take a moment to leave /proc (and PID 1 here
# may reap late): a zombie or a gone pid is dead; 10 s is only a bound.
alive() {
    for p in "$@"; do
        st=$(sed 's/.*) \(.\).*/\1/' "/proc/$p/stat" 2>/dev/null)
        [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] && return 0
    done
    return 1
}
i=0
while [ -n "$leftover" ] && alive $leftover && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -n "$leftover" ] && alive $leftover &&
    problem "attempt 1's command (pid $leftover) still runs after steppy run ended"
end

begin 'a command its supervisor killed for the lease fails its attempt saying so'
# steppy run is stopped (SIGSTOP) until the supervisor has killed the
# command for the lease, then continued: the attempt's error must give the
# lease as the reason, not "killed by Killed".
cat >"$tmp/f.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: long, command: [sh, -c, 'echo $$ >"$PIDF"; sleep 60']}
PLAN
PIDF="$tmp/f.pid" "$STEPPY" run --db "$tmp/f.db" "$tmp/f.yaml" >"$tmp/f.out" 2>&1 &
run_pid=$!
wait_file "$tmp/f.pid" . || problem "the command did not start"
cmd=$(cat "$tmp/f.pid")
leftover="$leftover $cmd"
kill -STOP "$run_pid"
i=0
while alive "$cmd" && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
alive "$cmd" && problem "the supervisor did not kill the command of a stopped steppy"
kill -CONT "$run_pid"
wait "$run_pid"
"$STEPPY" history --format json --db "$tmp/f.db" "$(sqlite3 "$tmp/f.db" 'SELECT id FROM executions' | head -1)" >"$tmp/f.hist" 2>&1
# The StepFailed event's error field itself (the text view cuts long lines).
error=$(/usr/bin/python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
events = doc["events"] if isinstance(doc, dict) else doc
print([e for e in events if e.get("type") == "StepFailed"][0]["data"].get("error", ""))' "$tmp/f.hist" 2>&1)
case "$error" in
*lease*) ;;
*) problem "the attempt's error does not give the lease as the reason: $error" ;;
esac
end

begin 'a command whose daemon keeps an unreaped zombie in its group still ends'
# D forks E (in the command's group), E exits (a zombie), D moves to a
# session of its own and never reaps E: kill(-group) keeps succeeding on
# the zombie, and kill_group() (b3d8e96) loops until D exits. Before, the
# group got one SIGKILL after the grace period and the step ended.
cat >"$tmp/zd.py" <<'EOF'
import os, sys, time
pid = os.fork()
if pid == 0:
    os._exit(0)
os.setsid()
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(120)
EOF
cat >"$tmp/z.yaml" <<PLAN
stages:
  - name: s
    steps:
      - {type: Exec, name: daemon, command: [sh, -c, '/usr/bin/python3 $tmp/zd.py $tmp/daemon.pid & sleep 1; echo started']}
PLAN
"$STEPPY" run --db "$tmp/z.db" "$tmp/z.yaml" >"$tmp/z.out" 2>&1 &
run_pid=$!
wait_file "$tmp/daemon.pid" . || problem "the daemon did not start"
leftover="$leftover $(cat "$tmp/daemon.pid")"
# The release must end while the daemon still lives (it sleeps 120 s):
# steppy run ending only once the daemon is gone means it waited for it.
# (No timing asserted: whatever the load, the run's end is compared with
# the daemon's.)
wait "$run_pid"
daemon=$(cat "$tmp/daemon.pid")
kill -0 "$daemon" 2>/dev/null ||
    problem "steppy run waited for the daemon's end (its unreaped zombie held the step): $(tail -2 "$tmp/z.out")"
end
finish
