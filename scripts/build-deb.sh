#!/bin/sh
# build-deb.sh - builds the Debian package from what is committed (a clone
# of HEAD, so local changes and build/ stay out of it) with Debian's tools,
# then runs lintian on it.
#
#   scripts/build-deb.sh [OUTDIR]     (default build/deb-out)
#
# Prints the path of the .deb on its last line. Needs dpkg-dev, debhelper,
# lintian and the build dependencies (scripts/install-deps.sh).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/build/deb-out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/steppy-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/steppy"
cd "$work/steppy"
dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2
    echo "build-deb.sh: dpkg-buildpackage failed" >&2
    exit 1
}
deb=$(ls "$work"/steppy_*.deb)
cp "$work"/steppy_*.deb "$work"/steppy_*.changes "$work"/steppy_*.buildinfo "$out/" 2>/dev/null || cp "$deb" "$out/"
echo "lintian:" >&2
lintian --info --display-info "$out/$(basename "$deb")" >&2 || true
echo "$out/$(basename "$deb")"
