#!/bin/sh
# t0073: t0072 (the kept list answer is never stale after another process's
# commit; ETag, 304, 401) on a PostgreSQL store, where the store's version
# moves with the NOTIFY of other connections' commits. A real PostgreSQL 15
# on a Unix socket (tests/lib/pg.sh), the real binary.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/pg.sh"
pg_require
READ_CACHE_DB=$STEPPY_TEST_PG sh "$here/t0072-read-cache.sh"
status=$?
pg_stop
exit $status
