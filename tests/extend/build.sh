#!/bin/sh
# build.sh - builds a steppy with one more step type: the proof that a step
# type is one file and one registry row (docs/ARCHITECTURE.md, "Adding a
# step type").
#
#   sh tests/extend/build.sh BUILD-DIR OUTPUT
#
# Compiles tests/extend/jenkins.c and a copy of src/steps/registry.c with
# one row added (X(step_jenkins)), and links them with BUILD-DIR's
# src/main.o before its libsteppy-cli.a and libsteppy.a, whose own
# registry.o is then not used. No other file changes. With
# STEPPY_SANITIZED=1 (an ASan+UBSan build dir) it compiles with clang and
# the sanitizers, as the Makefile's SAN=1 does.
set -eu
build=$1
out=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/steppy-extend.XXXXXX")
trap 'rm -rf "$work"' EXIT

for f in src/main.o libsteppy-cli.a libsteppy.a; do
    [ -e "$build/$f" ] || { echo "build.sh: $build/$f is missing: build steppy first" >&2; exit 2; }
done

pkgs=$(make -s -C "$repo" print-pkgs)
cc=${CC:-cc}
flags="-O2 -g"
if [ "${STEPPY_SANITIZED:-0}" = 1 ]; then
    cc=clang
    flags="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
fi
cflags="-std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wconversion -Wstrict-prototypes
        -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral $flags -I$repo/src
        $(pkg-config --cflags $pkgs)"

# The one registry row.
sed 's|^\([[:space:]]*\)/\* new types go above this line \*/$|\1X(step_jenkins) \\\n&|' \
    "$repo/src/steps/registry.c" >"$work/registry.c"
[ "$(diff "$repo/src/steps/registry.c" "$work/registry.c" | grep -c '^[<>]')" = 1 ] ||
    { echo "build.sh: the registry row was not added" >&2; exit 1; }

# shellcheck disable=SC2086
$cc $cflags -c "$work/registry.c" -o "$work/registry.o"
# shellcheck disable=SC2086
$cc $cflags -c "$repo/tests/extend/jenkins.c" -o "$work/jenkins.o"
# shellcheck disable=SC2086
$cc $flags -o "$out" "$build/src/main.o" "$work/registry.o" "$work/jenkins.o" \
    "$build/libsteppy-cli.a" "$build/libsteppy.a" $(pkg-config --libs $pkgs) -lm
