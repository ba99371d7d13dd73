#!/bin/sh
# The README's demo command: installs what is missing (as root), builds
# steppy, checks the demo plan and shows what it would run.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --check 2>/dev/null || scripts/install-deps.sh
make -s -j"$(nproc 2>/dev/null || echo 2)" build/steppy
echo "\$ steppy validate examples/demo.yaml"
build/steppy validate examples/demo.yaml
echo
echo "\$ steppy plan examples/demo.yaml --var VERSION=2.0.0"
build/steppy plan examples/demo.yaml --var VERSION=2.0.0
echo
echo "\$ steppy graph examples/demo.yaml"
build/steppy graph examples/demo.yaml
