#!/bin/sh
# t0063: make install and make uninstall with PREFIX and DESTDIR - the
# binary, the plugins directory, man pages made from the docs (and clean
# for man's checks), bash and zsh completion, the example configuration
# (never overwritten), the systemd unit pointing at the installed binary.
# Uses the build directory of $STEPPY; needs make and pandoc.
. "$(dirname "$0")/lib.sh"
build=$(cd "$(dirname "$STEPPY")" && pwd)
if ! command -v pandoc >/dev/null || ! command -v make >/dev/null; then
    echo "# skipped: needs make and pandoc"
    finish
    exit
fi
root="$tmp/root"
mk() { make -s -C "$repo" BUILD="$build" PREFIX=/usr DESTDIR="$root" "$@"; }

begin 'make install puts every piece under DESTDIR and PREFIX'
run mk install
expect_status 0
for f in usr/bin/steppy usr/share/man/man1/steppy.1 usr/share/man/man1/steppy-serve.1 \
    usr/share/man/man1/steppy-store.1 usr/share/man/man1/steppy-approve.1 \
    usr/share/man/man1/steppy-reject.1 usr/share/man/man5/steppy-plan.5 \
    usr/share/man/man5/steppy-serve.conf.5 usr/share/bash-completion/completions/steppy \
    usr/share/zsh/vendor-completions/_steppy usr/lib/systemd/system/steppy.service \
    etc/steppy/serve.yaml usr/share/doc/steppy/examples/serve.yaml; do
    [ -f "$root/$f" ] || problem "missing $f"
done
[ -d "$root/usr/lib/steppy/plugins" ] || problem "no plugins directory"
[ -x "$root/usr/bin/steppy" ] || problem "the binary is not executable"
# The configuration's store: decides (a --db here would hide a PostgreSQL URL put there).
grep -q '^ExecStart=/usr/bin/steppy serve --config /etc/steppy/serve.yaml$' \
    "$root/usr/lib/systemd/system/steppy.service" || problem "ExecStart: $(grep ExecStart "$root/usr/lib/systemd/system/steppy.service")"
"$root/usr/bin/steppy" version >/dev/null || problem "the installed binary does not run"
end

begin 'the man pages come from the docs, and man reads them without errors'
for p in "$root"/usr/share/man/man1/*.1 "$root"/usr/share/man/man5/*.5; do
    MANWIDTH=100 man -l "$p" >"$tmp/page" 2>"$tmp/warn" || problem "man fails on $p"
    grep -q 'NAME' "$tmp/page" || problem "$p has no NAME"
    grep -qi 'error' "$tmp/warn" && problem "$p: $(cat "$tmp/warn")"
done
MANWIDTH=100 man -l "$root/usr/share/man/man1/steppy-store.1" 2>/dev/null | grep -q 'steppy store backup' ||
    problem "steppy-store(1) lacks the synopsis"
MANWIDTH=100 man -l "$root/usr/share/man/man5/steppy-serve.conf.5" 2>/dev/null | grep -q 'publicUrl' ||
    problem "steppy-serve.conf(5) lacks the keys"
MANWIDTH=100 man -l "$root/usr/share/man/man1/steppy.1" 2>/dev/null | grep -q 'steppy-store' ||
    problem "steppy(1) does not list the commands"
end

begin 'the example configuration is valid, and a second install keeps the one there'
"$root/usr/bin/steppy" serve --config "$root/etc/steppy/serve.yaml" --listen 127.0.0.1:0 \
    --db "$tmp/x.db" >"$tmp/serve.log" 2>&1 &
pid=$!
i=0
while ! grep -q 'listening on' "$tmp/serve.log" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid
grep -q 'listening on' "$tmp/serve.log" || problem "the example does not start: $(cat "$tmp/serve.log")"
echo "# mine" >>"$root/etc/steppy/serve.yaml"
run mk install
expect_status 0
grep -q '^# mine' "$root/etc/steppy/serve.yaml" || problem "the configuration was overwritten"
end

begin 'bash completion completes commands, store actions and options'
out=$(PATH="$root/usr/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(steppy sto); COMP_CWORD=1; _steppy; echo "${COMPREPLY[*]}";
    COMP_WORDS=(steppy store ""); COMP_CWORD=2; _steppy; echo "${COMPREPLY[*]}";
    COMP_WORDS=(steppy serve --log); COMP_CWORD=2; _steppy; echo "${COMPREPLY[*]}"' _ \
    "$root/usr/share/bash-completion/completions/steppy")
expect_out_contains 'store'
expect_out_contains 'backup check'
expect_out_contains '--log-format'
end

begin 'make uninstall leaves only the configuration'
run mk uninstall
expect_status 0
left=$(cd "$root" && find . -type f)
[ "$left" = "./etc/steppy/serve.yaml" ] || problem "left behind: $left"
end

begin 'a DESTDIR with a space: every path stays one word, and uninstall removes only what install put there'
sp="$tmp/a b"
mkdir -p "$tmp/a"
echo keep >"$tmp/a/keep"
run make -s -C "$repo" BUILD="$build" PREFIX=/usr DESTDIR="$sp" install
expect_status 0
for f in usr/bin/steppy usr/share/man/man1/steppy.1 usr/share/man/man1/steppy-store.1 \
    usr/share/man/man5/steppy-plan.5 usr/lib/systemd/system/steppy.service \
    etc/steppy/serve.yaml usr/share/doc/steppy/examples/serve.yaml; do
    [ -f "$sp/$f" ] || problem "missing $f under \"$sp\""
done
[ -e "$tmp/a/usr" ] && problem "the DESTDIR was split at its space"
echo mine >"$sp/usr/share/doc/steppy/my-notes.txt"
echo mine >"$sp/usr/share/man/man1/steppy-local.1"
run make -s -C "$repo" BUILD="$build" PREFIX=/usr DESTDIR="$sp" uninstall
expect_status 0
left=$(cd "$sp" && find . -type f | sort | tr '\n' ' ')
[ "$left" = "./etc/steppy/serve.yaml ./usr/share/doc/steppy/my-notes.txt ./usr/share/man/man1/steppy-local.1 " ] ||
    problem "left behind: $left"
[ -d "$sp/usr/share/doc/steppy/examples" ] && problem "the emptied examples directory stayed"
[ "$(cat "$tmp/a/keep")" = keep ] || problem "a file outside DESTDIR changed"
end

finish
