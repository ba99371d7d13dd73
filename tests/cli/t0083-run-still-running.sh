#!/bin/sh
# t0083: steppy run writing to a pipe (a CI log) is not silent while a step
# runs for long: after a minute without a line it says what still runs.
# (Takes about 70 s: a Wait step of 70 s.)
. "$(dirname "$0")/lib.sh"
export STEPPY_DB="$tmp/steppy.db"
status=0 out="" err=""
cat >"$tmp/long.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - {type: Wait, name: rollout, seconds: 70}
PLAN
begin 'a pipe gets a "still running" line naming the step'
run "$STEPPY" run "$tmp/long.yaml"
expect_status 0
expect_out_contains "still running: rollout (Wait, for "
end
finish
