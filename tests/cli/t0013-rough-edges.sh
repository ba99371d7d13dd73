#!/bin/sh
# t0013: rough edges a new user hit (issue 10 item 13): Wait steps and the
# default timeout, attempt numbers after a retry, the status line on Ctrl-C,
# graph without --var, "did you mean" for options, case in --status, the
# abort's reason and author everywhere.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

begin 'a Wait step is not cut by defaults.timeoutSeconds: its duration is its timeout'
cat >"$tmp/wait.yaml" <<'EOF'
name: waits
defaults: {timeoutSeconds: 1}
stages:
  - name: s
    steps:
      - {type: Wait, name: pause, seconds: 2}
EOF
run "$STEPPY" run --db "$db" "$tmp/wait.yaml"
expect_status 0
expect_out_lacks 'TIMED OUT'
expect_out_contains 'SUCCEEDED'
end

finish
