#!/bin/sh
# layers.sh - the include rules between the modules of src/ (docs/ARCHITECTURE.md).
#
# Each module may include its own headers and those of the modules listed
# for it below, nothing else: the layers only look down. A file that breaks
# a rule is named with the header it must not include. Prints
# "# N passed, M failed" (one check per module) and exits 1 on a failure.
set -u
cd "$(dirname "$0")/../.." || exit 2

allowed() { # module -> the modules it may include besides itself
    case $1 in
    util) echo "" ;;
    sheet) echo "util" ;;
    plan) echo "util sheet" ;;
    core) echo "util plan" ;;
    store) echo "util plan core" ;;
    http) echo "util" ;;
    aws) echo "util http" ;;
    notify) echo "util plan http aws" ;;
    runtime) echo "util plan core store notify" ;;
    steps) echo "util plan core http aws notify runtime" ;;
    server) echo "util plan core store http aws notify runtime" ;;
    cli) echo "util plan core store http aws notify runtime steps server" ;;
    *) echo "?" ;;
    esac
}

# Known breaks being taken apart (file header); empty when the layering holds.
EXCEPTIONS=$(sed -n 's/^# except: //p' "$0")

passed=0
failed=0
for dir in src/*/; do
    module=$(basename "$dir")
    ok=$(allowed "$module")
    if [ "$ok" = "?" ]; then
        echo "layers: src/$module/ is not a known module: give it a place in tests/lint/layers.sh" >&2
        failed=$((failed + 1))
        continue
    fi
    bad=0
    for f in "$dir"*.c "$dir"*.h; do
        [ -e "$f" ] || continue
        for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            case $inc in */*) ;; *) continue ;; esac
            target=${inc%%/*}
            [ "$target" = "$module" ] && continue
            case " $ok " in *" $target "*) continue ;; esac
            case "$EXCEPTIONS" in *"$f $inc"*) continue ;; esac
            echo "layers: $f includes $inc: src/$module/ may include only: ${ok:-nothing outside itself}" >&2
            bad=1
        done
    done
    if [ $bad -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "# $passed passed, $failed failed"
[ $failed -eq 0 ]

# The exceptions (issue 11 removes them: the approval rule into the core,
# the AWS runners into their step types):
