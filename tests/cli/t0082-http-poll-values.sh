#!/bin/sh
# t0082: an Http step's poll rule `equals: [1, [2]]` holds a list inside
# the list of values, which can match nothing (each item is one value):
# validate refuses it at the inner list's file:line:col.
. "$(dirname "$0")/lib.sh"
status=0 out="" err=""
cat >"$tmp/nested.yaml" <<'PLAN'
stages:
  - name: s
    steps:
      - type: Http
        name: call
        url: http://127.0.0.1:9/x
        poll:
          url: http://127.0.0.1:9/status
          until: {pointer: /state, equals: [1, [2]]}
PLAN
begin 'a list inside equals is refused with its position'
run "$STEPPY" validate "$tmp/nested.yaml"
expect_status 1
expect_err_contains "nested.yaml:9:48: error:"
expect_err_contains "a list inside the list of values matches nothing"
end
finish
