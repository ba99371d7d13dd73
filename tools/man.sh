#!/bin/sh
# man.sh - the man pages, made from the docs at build time (docs stay the
# one source): steppy(1) from the start of docs/cli.md (up to the first
# command) and a list of commands, steppy-COMMAND(1) from each "## steppy
# COMMAND" section of docs/cli.md, steppy-plan(5) from docs/plan-format.md,
# steppy-serve.conf(5) from docs/configuration.md. Uses pandoc (Debian's).
#
#   tools/man.sh OUTDIR VERSION [STEPPY]   (STEPPY: the binary, for the
#                                          commands' one-line summaries)
set -eu
out=$1
version=$2
bin=${3:-}
docs=$(cd "$(dirname "$0")/../docs" && pwd)
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A fixed date keeps builds reproducible: the last change of the docs.
date=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$docs/cli.md")}" +%Y-%m-%d)

# summary COMMAND: its line of `steppy help`, else a plain one
summary() {
    s=""
    [ -n "$bin" ] && s=$("$bin" help 2>/dev/null | sed -n "s/^  $1  *//p")
    echo "${s:-the steppy $1 command}"
}

# page NAME SECTION TITLE FILE: one man page from a Markdown file.
page() {
    pandoc -s -f gfm -t man \
        -M title="$1" -M section="$2" -M header="Steppy Manual" \
        -M footer="steppy $version" -M date="$date" \
        -V adjusting=l -V hyphenate=false "$4" -o "$out/$1.$2"
}

# the NAME section man(7) wants, then the body with its headings one level up
named() { # NAME SUMMARY FILE-IN FILE-OUT
    {
        printf '# NAME\n\n%s - %s\n\n' "$1" "$2"
        sed -e 's/^## /# /' -e 's/^### /## /' -e 's/^#### /### /' "$3"
    } >"$4"
}

# steppy(1): everything before the first command's section, minus its title
awk '/^## steppy /{exit} NR > 1 {print}' "$docs/cli.md" >"$tmp/intro.md"
{
    cat "$tmp/intro.md"
    printf '\n## Commands\n\n'
    sed -n 's/^## steppy \(.*\)/\1/p' "$docs/cli.md" | tr ',' '\n' | sed 's/^ *steppy //; s/^ *//' |
        while read -r c; do printf -- '- **steppy-%s**(1)\n' "$c"; done
    printf '\n## See also\n\n**steppy-plan**(5), **steppy-serve.conf**(5)\n'
} >"$tmp/steppy.body"
named steppy "run release plans: stages of steps, approvals, AWS builds" "$tmp/steppy.body" "$tmp/steppy.md"
page steppy 1 steppy "$tmp/steppy.md"

# one page per command section; "steppy approve, steppy reject" makes both
awk -v dir="$tmp" '
    /^## steppy / { f = dir "/sec" (++n) ".md"; print > f; next }
    /^## / { f = "" }
    f { print > f }
' "$docs/cli.md"
for f in "$tmp"/sec*.md; do
    names=$(head -1 "$f" | sed 's/^## //' | tr ',' '\n' | sed 's/^ *steppy //; s/^ *//')
    tail -n +2 "$f" >"$tmp/body.md"
    for c in $names; do
        named "steppy-$c" "$(summary "$c")" "$tmp/body.md" "$tmp/cmd.md"
        page "steppy-$c" 1 "steppy-$c" "$tmp/cmd.md"
    done
done

tail -n +2 "$docs/plan-format.md" >"$tmp/plan.body"
named steppy-plan "the release plan format of steppy" "$tmp/plan.body" "$tmp/plan.md"
page steppy-plan 5 steppy-plan "$tmp/plan.md"
tail -n +2 "$docs/configuration.md" >"$tmp/conf.body"
named steppy-serve.conf "the configuration file of steppy serve" "$tmp/conf.body" "$tmp/conf.md"
page steppy-serve.conf 5 steppy-serve.conf "$tmp/conf.md"
