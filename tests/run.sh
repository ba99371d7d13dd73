#!/bin/sh
# The whole test suite: the README's test command, and what .ci/run calls.
#
# Installs missing Debian packages (as root), builds with gcc and clang,
# runs the unit tests, runs them again under AddressSanitizer + UBSan and
# under valgrind, replays the fuzz corpus, runs the CLI tests against the
# real binary (plain and sanitized), drives the dashboard in Chromium, and
# checks formatting. Ends with one line: "total: N passed, M failed". Exit
# status 0 only if nothing failed.
#
# Long modes live elsewhere: `make fuzz` (see tests/fuzz/README.md).
set -u
cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if ! scripts/install-deps.sh --check 2>/dev/null; then
    scripts/install-deps.sh || { echo "tests/run.sh: cannot install the Debian packages" >&2; exit 2; }
fi

# Nothing in the tests may reach a real AWS endpoint or instance metadata:
# AWS tests point steppy at the fake (tests/aws) themselves.
export AWS_EC2_METADATA_DISABLED=true

passed=0
failed=0
failures=""
log=$(mktemp -d "${TMPDIR:-/tmp}/steppy-tests.XXXXXX")
trap 'rm -rf "$log"' EXIT

# A throwaway PostgreSQL 15 for the store's conformance suite and the
# PostgreSQL CLI tests (tests/lib/pg.sh exports STEPPY_TEST_PG); without
# one (not installed, and CI unset) those parts say they are skipped.
. tests/lib/pg.sh
pg_start
pg_rc=$?
if [ "$pg_rc" -eq 1 ]; then
    failed=$((failed + 1))
    failures="$failures postgresql"
fi
trap 'pg_stop; rm -rf "$log"' EXIT

# Adds the counts a test program printed: cmocka's "[  PASSED  ] N test(s)."
# and "[  FAILED  ] N test(s)", our shell tests' "# N passed, M failed", or
# the crash test's "N passed, M failed".
count() { # name logfile status
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p; s/^#* *\([0-9]*\) passed, [0-9]* failed$/\1/p' "$2" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p; s/^#* *[0-9]* passed, \([0-9]*\) failed$/\1/p' "$2" | awk '{s+=$1} END {print s+0}')
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1 # crashed or failed without saying how many
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        failures="$failures $1"
        echo "FAILED: $1 (log follows)"
        tail -n 60 "$2"
    else
        echo "ok: $1 ($p passed)"
    fi
}

# Runs a one-check step (a build, a lint): one pass or one failure.
step() { # name command...
    name=$1
    shift
    if "$@" >"$log/step.log" 2>&1; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        failures="$failures $name"
        echo "FAILED: $name (log follows)"
        tail -n 60 "$log/step.log"
    fi
}

run_units() { # label build-dir [wrapper...]
    label=$1
    dir=$2
    shift 2
    for t in "$dir"/tests/test-*; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        "$@" "$t" >"$log/$n.log" 2>&1
        count "$label $n" "$log/$n.log" $?
    done
}

step "build with gcc" make -j"$JOBS" CC=gcc unit
step "build with clang" make -j"$JOBS" CC=clang BUILD=build/clang build/clang/steppy
step "build with ASan+UBSan (clang)" make -j"$JOBS" CC=clang BUILD=build/asan SAN=1 CFLAGS="-O1 -g" unit

run_units "unit" build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_units "asan" build/asan
run_units "valgrind" build valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99

step "fuzz corpus replay (ASan+UBSan)" build/asan/fuzz-plan-replay tests/fuzz/corpus tests/plans
step "fuzz corpus replay: API requests (ASan+UBSan)" build/asan/fuzz-api-replay tests/fuzz/corpus-api
step "fuzz corpus replay: server configuration (ASan+UBSan)" build/asan/fuzz-config-replay \
    tests/fuzz/corpus-config

for t in tests/cli/t[0-9]*.sh; do
    n=$(basename "$t" .sh)
    # A hung test must not hang the suite: each script gets 10 minutes.
    STEPPY="$root/build/steppy" timeout 600 sh "$t" >"$log/$n.log" 2>&1
    count "cli $n" "$log/$n.log" $?
    STEPPY="$root/build/asan/steppy" STEPPY_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 \
        timeout 600 sh "$t" >"$log/$n-asan.log" 2>&1
    count "cli-asan $n" "$log/$n-asan.log" $?
done

# A channel kind in one file and one table row, linked into a binary of its own (tests/extend/).
for b in build build/asan; do
    cc=cc; [ "$b" = build/asan ] && cc=clang
    STEPPY="$root/$b/steppy" STEPPY_SANITIZED=$([ "$b" = build/asan ] && echo 1 || echo 0) CC=$cc \
        ASAN_OPTIONS=detect_leaks=1 timeout 300 sh tests/extend/channel-xyz.sh >"$log/extend-channel.log" 2>&1
    count "extend: a channel in one file and one row ($b)" "$log/extend-channel.log" $?
done

# The fake AWS endpoint itself, proved with the AWS CLI (tests/aws/t-awscli.sh).
timeout 300 sh tests/aws/t-awscli.sh >"$log/awscli.log" 2>&1
count "fake AWS vs the AWS CLI" "$log/awscli.log" $?

# The dashboard and the approval pages in Debian's Chromium against the real server (tests/web/run.sh).
STEPPY="$root/build/steppy" timeout 300 sh tests/web/run.sh >"$log/web.log" 2>&1
count "dashboard and approval pages in Chromium" "$log/web.log" $?

# SIGKILL at random moments, restart, check every invariant (tests/crash/crash.py).
timeout 900 /usr/bin/python3 tests/crash/crash.py --steppy "$root/build/steppy" --kills "${CRASH_KILLS:-20}" \
    >"$log/crash.log" 2>&1
count "crash test (${CRASH_KILLS:-20} kills)" "$log/crash.log" $?

# The API's description must stay valid YAML (tools read it).
step "docs/openapi.yaml parses" /usr/bin/python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' docs/openapi.yaml

# The layering of src/ and the length of its functions (tests/lint/).
for lint in layers functions; do
    sh "tests/lint/$lint.sh" >"$log/lint.log" 2>&1
    count "lint: $lint" "$log/lint.log" $?
done

step "clang-format" sh -c 'clang-format --dry-run -Werror $(git ls-files "*.c" "*.h" 2>/dev/null || find src tests -name "*.[ch]")'

echo
[ -z "$failures" ] || echo "failed:$failures"
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
