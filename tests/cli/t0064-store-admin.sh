#!/bin/sh
# t0060: steppy store backup and check - a consistent copy while a server
# writes, restoring it, a damaged copy, a store from a newer steppy, a store
# from before later tables (migrated forward). Real SQLite files, the real
# binary, a real `steppy serve` on loopback.
. "$(dirname "$0")/lib.sh"
db="$tmp/steppy.db"

cat >"$tmp/config.yaml" <<'EOF'
exec: {enabled: true}
EOF
# Five stages of quick commands: every release writes a few dozen events.
/usr/bin/python3 - "$tmp/body.json" <<'EOF'
import json, sys
stages = [{"name": "s%d" % i, "steps": [{"type": "Exec", "name": "e%d" % j, "command": ["true"]} for j in range(3)]} for i in range(5)]
json.dump({"plan": {"name": "busy", "stages": stages}, "name": "busy.json"}, open(sys.argv[1], "w"))
EOF

start_server "$tmp/config.yaml" "$db"
trap 'kill $server_pid $writer 2>/dev/null; rm -rf "$tmp"' EXIT
writer=""

# Submits 40 releases one after the other (the server runs them meanwhile).
(
    for _ in $(seq 40); do
        curl -s -o /dev/null -X POST -H 'Content-Type: application/json' \
            --data-binary @"$tmp/body.json" "$url/api/v1/executions"
    done
) &
writer=$!

begin 'backup while steppy serve writes: every copy is sound, 0600, and lists'
i=0
while [ $i -lt 5 ]; do
    i=$((i + 1))
    run "$STEPPY" store backup --db "$db" "$tmp/copy$i.db"
    expect_status 0
    expect_out_contains "copy$i.db written"
    [ "$(stat -c %a "$tmp/copy$i.db")" = 600 ] || problem "copy$i.db has mode $(stat -c %a "$tmp/copy$i.db")"
    run "$STEPPY" store check --db "$tmp/copy$i.db"
    expect_status 0
    expect_out_contains 'ok (schema 2'
    run "$STEPPY" list --db "$tmp/copy$i.db" --format json --limit 1000
    expect_status 0
done
ls "$tmp" | grep -q 'tmp-' && problem "a temporary file was left: $(ls "$tmp")"
end

wait $writer
writer=""
# Waits for the 40 releases to end.
i=0
while [ $i -lt 300 ]; do
    n=$("$STEPPY" list --db "$db" --status SUCCEEDED --limit 1000 --format json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["executions"]))' 2>/dev/null)
    [ "${n:-0}" -ge 40 ] && break
    sleep 0.1
    i=$((i + 1))
done

begin 'a backup taken under load holds every release that ended before it'
run "$STEPPY" store backup --db "$db" "$tmp/final.db"
expect_status 0
run "$STEPPY" list --db "$tmp/final.db" --status SUCCEEDED --limit 1000 --format json
expect_status 0
expect_json 'len(d["executions"]) == 40'
end

kill -TERM $server_pid
wait $server_pid

begin 'restore: the copy in the store'"'"'s place, and steppy list shows every release'
rm -f "$db" "$db-wal" "$db-shm"
cp "$tmp/final.db" "$db"
run "$STEPPY" list --db "$db" --limit 1000 --format json
expect_status 0
expect_json 'len(d["executions"]) == 40 and all(e["status"] == "SUCCEEDED" for e in d["executions"])'
run "$STEPPY" store check --db "$db"
expect_status 0
end

begin 'backup refuses to replace a file unless --force, and never follows a link'
echo keep >"$tmp/there.db"
run "$STEPPY" store backup --db "$db" "$tmp/there.db"
expect_status 2
expect_err_contains 'there.db exists; --force replaces it'
[ "$(cat "$tmp/there.db")" = keep ] || problem "there.db changed"
run "$STEPPY" store backup --db "$db" --force "$tmp/there.db"
expect_status 0
run "$STEPPY" store check --db "$tmp/there.db"
expect_status 0
echo target >"$tmp/target"
ln -s "$tmp/target" "$tmp/link.db"
run "$STEPPY" store backup --db "$db" --force "$tmp/link.db"
expect_status 2
expect_err_contains 'link.db is a symbolic link'
[ "$(cat "$tmp/target")" = target ] || problem "the link's target changed"
ln -s "$tmp/nothing" "$tmp/dangling.db"
run "$STEPPY" store backup --db "$db" "$tmp/dangling.db"
expect_status 2
expect_err_contains 'dangling.db is a symbolic link'
[ -e "$tmp/nothing" ] && problem "a file was made through the dangling link"
run "$STEPPY" store backup --db "$tmp/none.db" "$tmp/x.db"
expect_status 2
expect_err_contains 'no store at'
run "$STEPPY" store backup --db "$db"
expect_status 2
run "$STEPPY" store frobnicate
expect_status 2
expect_err_contains 'store has no "frobnicate"'
end

begin 'backup --force never replaces the live store or its -wal/-shm/-journal files'
start_server "$tmp/config.yaml" "$db"
[ -e "$db-wal" ] && [ -e "$db-shm" ] || problem "the live store has no -wal/-shm files"
ino=$(stat -c %i "$db")
for f in "$db" "$db-wal" "$db-shm" "$db-journal"; do
    run "$STEPPY" store backup --db "$db" --force "$f"
    expect_status 2
    expect_err_contains 'is the store itself'
done
ln "$db" "$tmp/hard.db"
run "$STEPPY" store backup --db "$db" --force "$tmp/hard.db"
expect_status 2
expect_err_contains 'is the store itself'
run "$STEPPY" store backup --db "$db" --force "$tmp/../$(basename "$tmp")/steppy.db-wal"
expect_status 2
expect_err_contains 'is the store itself'
[ "$(stat -c %i "$db")" = "$ino" ] || problem "the live store was replaced"
[ -e "$db-journal" ] && problem "a -journal file was made"
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/api/v1/executions")
[ "$code" = 200 ] || problem "the server no longer reads its store (HTTP $code)"
kill -TERM $server_pid
wait $server_pid
end

begin 'check and list refuse a file that is no steppy store, writing nothing'
: >"$tmp/zero.db"
run "$STEPPY" store check --db "$tmp/zero.db"
expect_status 1
expect_err_contains 'zero.db is not a steppy store'
[ "$(stat -c %s "$tmp/zero.db")" = 0 ] || problem "check wrote into the empty file"
[ -e "$tmp/zero.db-wal" ] && problem "check made a WAL file"
: >"$tmp/zero2.db"
run "$STEPPY" list --db "$tmp/zero2.db"
expect_status 2
expect_err_contains 'zero2.db is not a steppy store'
[ "$(stat -c %s "$tmp/zero2.db")" = 0 ] || problem "list wrote into the empty file"
sqlite3 "$tmp/other.db" "CREATE TABLE t(x)"
before=$(sha256sum <"$tmp/other.db")
run "$STEPPY" store check --db "$tmp/other.db"
expect_status 1
expect_err_contains 'other.db is not a steppy store'
[ "$(sha256sum <"$tmp/other.db")" = "$before" ] || problem "check changed another database"
end

begin 'check finds a damaged copy: exit 1, naming the file'
cp "$tmp/final.db" "$tmp/bad.db"
# Overwrite pages 2.. with garbage, keeping the header (page 1).
size=$(stat -c %s "$tmp/bad.db")
pages=$((size / 4096))
head -c $(((pages - 1) * 4096)) /dev/urandom |
    dd of="$tmp/bad.db" bs=4096 seek=1 conv=notrunc 2>/dev/null
run "$STEPPY" store check --db "$tmp/bad.db"
expect_status 1
expect_err_contains "bad.db"
end

begin 'check names the release of each damage: a history with a gap, a summary that disagrees'
cp "$tmp/final.db" "$tmp/gaps.db"
gap=$(sqlite3 "$tmp/gaps.db" "SELECT id FROM executions ORDER BY id LIMIT 1")
row=$(sqlite3 "$tmp/gaps.db" "SELECT id FROM executions ORDER BY id LIMIT 1 OFFSET 1")
sound=$(sqlite3 "$tmp/gaps.db" "SELECT id FROM executions ORDER BY id LIMIT 1 OFFSET 2")
sqlite3 "$tmp/gaps.db" "DELETE FROM events WHERE execution_id = '$gap' AND seq = 2;
    UPDATE executions SET last_seq = last_seq + 5 WHERE id = '$row'"
run "$STEPPY" store check --db "$tmp/gaps.db"
expect_status 1
expect_err_contains "gaps.db is damaged: release $gap: its history has a gap"
expect_err_contains "; release $row: its summary says"
expect_err_lacks "$sound"
end

begin 'a store from a newer steppy is refused with a clear message and left unchanged'
cp "$tmp/final.db" "$tmp/newer.db"
sqlite3 "$tmp/newer.db" "UPDATE meta SET value = '99' WHERE key = 'schema'"
before=$(sha256sum <"$tmp/newer.db")
run "$STEPPY" list --db "$tmp/newer.db"
expect_status 2
expect_err_contains 'newer.db was written by a newer steppy (store schema 99; this steppy knows schemas up to 2)'
run "$STEPPY" store check --db "$tmp/newer.db"
expect_status 1
expect_err_contains 'written by a newer steppy'
run "$STEPPY" store backup --db "$tmp/newer.db" "$tmp/newer-copy.db"
expect_status 2
[ -e "$tmp/newer-copy.db" ] && problem "a copy of a newer store was written"
[ "$(sha256sum <"$tmp/newer.db")" = "$before" ] || problem "the newer store was changed"
[ -e "$tmp/newer.db-wal" ] && problem "the newer store got a WAL file"
end

begin 'an older store is migrated forward at open (a table that came later is added)'
cp "$tmp/final.db" "$tmp/older.db"
sqlite3 "$tmp/older.db" "DROP TABLE personal_links; DROP TABLE inbox_files"
run "$STEPPY" list --db "$tmp/older.db" --limit 1000 --format json
expect_status 0
expect_json 'len(d["executions"]) == 40'
sqlite3 "$tmp/older.db" .tables | grep -q personal_links || problem "personal_links not added"
sqlite3 "$tmp/older.db" .tables | grep -q inbox_files || problem "inbox_files not added"
run "$STEPPY" store check --db "$tmp/older.db"
expect_status 0
# schema 1 (before the secret key's fingerprint) becomes 2
cp "$tmp/final.db" "$tmp/v1.db"
sqlite3 "$tmp/v1.db" "DROP TABLE secret_key; UPDATE meta SET value = '1' WHERE key = 'schema'"
run "$STEPPY" store check --db "$tmp/v1.db"
expect_status 0
expect_out_contains 'ok (schema 2'
sqlite3 "$tmp/v1.db" .tables | grep -q secret_key || problem "secret_key not added"
end

finish
