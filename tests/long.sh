#!/bin/sh
# Long test modes, kept out of tests/run.sh (which CI runs):
#   - the crash test with 500 SIGKILLs (CRASH_KILLS to change);
#   - the scale-out chaos test with 200 releases (SCALE_RELEASES to change);
#   - libFuzzer on the plan reader for 10 minutes (FUZZ_SECONDS to change), then
#     on the API's request handling and on the server configuration reader.
# Prints what each found; exit status 0 only if nothing failed.
set -u
cd "$(dirname "$0")/.." || exit 2
scripts/install-deps.sh --check 2>/dev/null || scripts/install-deps.sh || exit 2
make -s -j"$(nproc)" build/steppy || exit 2
status=0
/usr/bin/python3 tests/crash/crash.py --steppy "$(pwd)/build/steppy" --kills "${CRASH_KILLS:-500}" \
    --max-seconds 3600 || status=1
# Scale-out chaos: 3 serve nodes on one store (PostgreSQL when tests/lib/pg.sh
# can start one), 200 releases, nodes SIGKILLed and SIGSTOPped at random.
SCALE_RELEASES=${SCALE_RELEASES:-200} STEPPY="$(pwd)/build/steppy" sh tests/cli/t0065-scale-out.sh || status=1
make -s fuzz || exit 2
mkdir -p build/fuzz/corpus
build/fuzz/fuzz-plan -dict=tests/fuzz/plan.dict -max_total_time="${FUZZ_SECONDS:-600}" \
    -rss_limit_mb=2048 -print_final_stats=1 build/fuzz/corpus tests/fuzz/corpus || status=1
for t in api config; do
    mkdir -p build/fuzz/corpus-$t
    build/fuzz/fuzz-$t -dict=tests/fuzz/$t.dict -max_total_time="${FUZZ_SECONDS:-600}" \
        -rss_limit_mb=2048 -print_final_stats=1 build/fuzz/corpus-$t tests/fuzz/corpus-$t || status=1
done
exit $status
