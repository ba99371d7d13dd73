#!/bin/sh
# The README's demo command: installs what is missing (as root), builds
# steppy, and runs the demo release (examples/demo.yaml) on the embedded
# default, a SQLite store (here build/demo/steppy.db, to keep yours clean).
# The release stops at a Human step; this script then shows how a person
# approves it from another terminal, and the release goes on to the end.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --check 2>/dev/null || scripts/install-deps.sh
make -s -j"$(nproc 2>/dev/null || echo 2)" build/steppy
STEPPY=build/steppy
export STEPPY_DB="$(pwd)/build/demo/steppy.db"
rm -rf build/demo /tmp/steppy-demo
mkdir -p build/demo

if [ -t 1 ]; then
    say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
else # a log file or a pipe: no terminal escapes
    say() { printf '\n%s\n' "$*"; }
fi

say "\$ steppy validate examples/demo.yaml"
$STEPPY validate examples/demo.yaml
say "\$ steppy plan examples/demo.yaml --var VERSION=2.0.0"
$STEPPY plan examples/demo.yaml --var VERSION=2.0.0

say "\$ steppy run examples/demo.yaml --var VERSION=2.0.0"
$STEPPY run examples/demo.yaml --var VERSION=2.0.0 </dev/null &
run=$!
# Wait until the release asks for a decision.
i=0
until $STEPPY list --status RUNNING 2>/dev/null | grep -q 'approval of'; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 $run 2>/dev/null; then
        echo "demo: the release never reached its Human step" >&2
        exit 1
    fi
    sleep 0.1
done
id=$($STEPPY list --status RUNNING --format json | /usr/bin/python3 -c \
    'import json, sys; print(json.load(sys.stdin)["executions"][0]["id"])')
sleep 1
say "(from another terminal) \$ steppy approve $id 'Release manager approval' --comment 'ship it'"
$STEPPY approve "$id" 'Release manager approval' --comment 'ship it'
wait $run
say "\$ steppy show $id"
$STEPPY show "$id"
say "\$ steppy list"
$STEPPY list
