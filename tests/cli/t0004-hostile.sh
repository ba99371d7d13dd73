#!/bin/sh
# t0004: hostile input gets a clear error, no crash, and bounded memory.
. "$(dirname "$0")/lib.sh"

# Outside the sanitizers (which reserve terabytes of address space), cap
# virtual memory: a reader that slurped or exploded its input would abort.
limit=""
if [ -z "${STEPPY_SANITIZED:-}" ]; then
    limit="ulimit -v 400000;" # 400 MB
fi
capped() { sh -c "$limit exec \"\$@\"" capped "$@"; }

begin 'a 50 MB plan is refused without being read'
head -c 52428800 /dev/zero | tr '\0' ' ' >"$tmp/big.json"
run capped "$STEPPY" validate "$tmp/big.json"
expect_status 2
expect_err_contains 'big.json: error: cannot read plan: file is 50.0 MiB, over the 8.0 MiB limit'
end

begin 'a 50 MB plan on standard input is refused at the limit'
head -c 52428800 /dev/zero | tr '\0' ' ' | capped "$STEPPY" validate - >"$tmp/out" 2>"$tmp/err"
status=$?
out=$(cat "$tmp/out"); err=$(cat "$tmp/err")
expect_status 2
expect_err_contains '<stdin>: error: cannot read plan: input is over the 8.0 MiB limit'
end

begin '100,000 levels of nesting in JSON'
/usr/bin/python3 -c 'print("[" * 100000 + "]" * 100000)' >"$tmp/deep.json"
run capped "$STEPPY" validate "$tmp/deep.json"
expect_status 1
expect_err_contains 'deep.json:1:101: error: values are nested more than 100 levels deep'
end

begin '100,000 levels of nesting in YAML'
/usr/bin/python3 -c 'print("a: " + "[" * 100000 + "]" * 100000)' >"$tmp/deep.yaml"
run capped "$STEPPY" validate "$tmp/deep.yaml"
expect_status 1
expect_err_contains 'values are nested more than 100 levels deep'
end

begin 'more than a million values'
/usr/bin/python3 -c 'print("[" + ",".join(["0"] * 1100000) + "]")' >"$tmp/many.json"
run capped "$STEPPY" validate "$tmp/many.json"
expect_status 1
expect_err_contains 'the plan has more than 1000000 values'
end

begin 'YAML alias bombs ("billion laughs") stop at the value limit'
/usr/bin/python3 - "$tmp/laughs.yaml" <<'PY'
import sys
lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
for i in range(1, 10):
    lines.append("a%d: &a%d [%s]" % (i, i, ",".join(["*a%d" % (i - 1)] * 10)))
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
run capped "$STEPPY" validate "$tmp/laughs.yaml"
expect_status 1
expect_err_contains 'aliases expand the plan to more than 1000000 values'
end

begin 'invalid UTF-8'
printf '{"stages": [{"name": "caf\351", "steps": []}]}\n' >"$tmp/latin1.json"
run "$STEPPY" validate "$tmp/latin1.json"
expect_status 1
expect_err_contains 'latin1.json:1:26: error: invalid UTF-8 (byte 0xE9); a plan must be UTF-8 text'
end

begin 'NUL bytes'
printf '{"stages": \000[]}\n' >"$tmp/nul.json"
run "$STEPPY" validate "$tmp/nul.json"
expect_status 1
expect_err_contains 'nul.json:1:12: error: NUL byte in the file; a plan must be text'
end

begin 'a directory'
mkdir "$tmp/dir.json"
run "$STEPPY" validate "$tmp/dir.json"
expect_status 2
expect_err_contains 'dir.json: error: cannot read plan: is a directory, not a file'
end

begin 'an unreadable file'
cp "$repo/tests/plans/valid/original.jsonc" "$tmp/secret.json"
chmod 000 "$tmp/secret.json"
chmod 755 "$tmp"
if [ "$(id -u)" -eq 0 ]; then
    # root reads anything: drop to nobody for this one
    run setpriv --reuid=65534 --regid=65534 --clear-groups "$STEPPY" validate "$tmp/secret.json"
else
    run "$STEPPY" validate "$tmp/secret.json"
fi
expect_status 2
expect_err_contains 'secret.json: error: cannot read plan: Permission denied'
end

begin 'random bytes never crash either reader'
i=0
while [ $i -lt 30 ]; do
    head -c 2000 /dev/urandom >"$tmp/rand.$i"
    run "$STEPPY" validate "$tmp/rand.$i"
    [ "$status" -eq 1 ] || problem "random input $i: exit $status"
    i=$((i + 1))
done
end

finish
