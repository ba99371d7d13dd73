#!/bin/sh
# t0001: help, version, unknown commands, usage errors.
. "$(dirname "$0")/lib.sh"

begin 'steppy help lists every command'
run "$STEPPY" help
expect_status 0
for c in validate plan graph help version; do expect_out_contains "  $c "; done
end

begin 'steppy without arguments prints help and exits 2'
run "$STEPPY"
expect_status 2
expect_out_contains 'usage: steppy'
end

begin '--version and version print the version'
run "$STEPPY" --version
expect_status 0
expect_out_contains 'steppy 0.'
run "$STEPPY" version
expect_status 0
expect_out_contains 'steppy 0.'
end

begin 'every command has --help and help COMMAND'
for c in validate plan graph help version; do
    run "$STEPPY" "$c" --help
    [ "$status" -eq 0 ] || problem "$c --help exit $status"
    case "$out" in "usage: steppy $c"*) ;; *) problem "$c --help: $out" ;; esac
    run "$STEPPY" help "$c"
    [ "$status" -eq 0 ] || problem "help $c exit $status"
done
end

begin 'an unknown command suggests the closest and exits 2'
run "$STEPPY" valdate x.json
expect_status 2
expect_err_contains 'no command "valdate"; did you mean "validate"?'
end

begin 'help for an unknown command exits 2'
run "$STEPPY" help nope
expect_status 2
expect_err_contains 'no command "nope"'
end

begin 'an unknown option is a usage error'
run "$STEPPY" validate --frobnicate "$repo/tests/plans/valid/original.jsonc"
expect_status 2
expect_err_contains 'frobnicate'
end

finish
