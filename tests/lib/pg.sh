# pg.sh - a throwaway PostgreSQL 15 for tests (sourced: . tests/lib/pg.sh).
#
#   pg_start      starts one in a new temporary directory and exports
#                 STEPPY_TEST_PG (postgresql:///steppy?host=DIR&user=steppy,
#                 a database made for the tests) and STEPPY_TEST_PG_CTL
#                 (its pg_ctl command, to which tests add stop, start);
#                 returns 77 after printing
#                 "skipped: no PostgreSQL" when the binaries are missing,
#                 unless CI is set (then missing PostgreSQL is an error, 1)
#   pg_require    pg_start, or exit with its status (77: skipped)
#   pg_restart    restarts the server (fast shutdown), same directory
#   pg_stop       stops it and removes the directory; safe to call twice
#   pg_psql SQL   runs SQL in the test database (as the steppy superuser)
#
# The server runs as an unprivileged user (initdb and postgres refuse root;
# PG_USER, default nobody, when the tests run as root), listens on a Unix
# socket only (listen_addresses=''), with fsync on. pg_start sets an EXIT
# trap that calls pg_stop; a caller with an EXIT trap of its own sets it
# after pg_start and calls pg_stop from it.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=""

# Runs a command as the server's user (root: PG_USER; otherwise oneself).
pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid="${PG_USER:-nobody}" --regid="$(id -g "${PG_USER:-nobody}")" \
            --clear-groups -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ] || [ ! -x "$PG_BIN/psql" ]; then
        if [ -n "${CI:-}" ] && [ "${CI:-}" != false ]; then
            echo "error: PostgreSQL 15 is missing ($PG_BIN/initdb): scripts/install-deps.sh installs postgresql-15" >&2
            return 1
        fi
        echo "skipped: no PostgreSQL ($PG_BIN/initdb is missing; scripts/install-deps.sh installs postgresql-15)"
        return 77
    fi
    PG_DIR=$(mktemp -d /tmp/steppy-pg.XXXXXX) || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown "${PG_USER:-nobody}" "$PG_DIR" || return 1
    fi
    if ! pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U steppy -E UTF8 --locale=C \
        >"$PG_DIR/initdb.log" 2>&1; then
        echo "error: initdb failed:" >&2
        cat "$PG_DIR/initdb.log" >&2
        return 1
    fi
    # In the configuration, so that a plain pg_ctl start/restart keeps them.
    printf "listen_addresses = ''\nunix_socket_directories = '%s'\nfsync = on\n" "$PG_DIR" |
        pg_as tee -a "$PG_DIR/data/postgresql.conf" >/dev/null || return 1
    trap 'pg_stop' EXIT
    trap 'exit 130' INT TERM
    if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        start >/dev/null 2>&1; then
        echo "error: PostgreSQL did not start:" >&2
        cat "$PG_DIR/server.log" >&2
        return 1
    fi
    "$PG_BIN/psql" -q -h "$PG_DIR" -U steppy -d postgres -c 'CREATE DATABASE steppy' \
        >/dev/null || return 1
    STEPPY_TEST_PG="postgresql:///steppy?host=$PG_DIR&user=steppy"
    # For tests in other languages (tests/unit/test-store.c): pg_ctl for
    # this server, as its user; they add "stop -m fast", "start" ...
    pg_prefix=""
    if [ "$(id -u)" -eq 0 ]; then
        pg_prefix="setpriv --reuid=${PG_USER:-nobody} --regid=$(id -g "${PG_USER:-nobody}") --clear-groups --"
    fi
    STEPPY_TEST_PG_CTL="$pg_prefix $PG_BIN/pg_ctl -D $PG_DIR/data -l $PG_DIR/server.log -w -t 60"
    export STEPPY_TEST_PG STEPPY_TEST_PG_CTL
}

pg_require() {
    pg_start
    pg_rc=$?
    [ "$pg_rc" -eq 0 ] || exit "$pg_rc"
}

pg_restart() {
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 -m fast \
        restart >/dev/null 2>&1
}

pg_psql() {
    "$PG_BIN/psql" -q -X -A -t -h "$PG_DIR" -U steppy -d steppy -c "$1"
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1
    rm -rf "$PG_DIR"
    PG_DIR=""
}
