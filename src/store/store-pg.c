/*
 * store-pg.c - the store in a PostgreSQL database (see store.h), on libpq.
 *
 * One connection per handle, used by one thread at a time (like a SQLite
 * handle). Every statement is a constant text with $n parameters, prepared
 * once per connection ("s0", "s1", ...) and run with PQexecPrepared: no SQL
 * is ever built from values. Each connection sets at connect (and again
 * after a reconnect): statement_timeout 10 s, lock_timeout (store_busy_timeout,
 * 10 s at open), synchronous_commit on (a commit that returned survives a
 * crash of the database server), client_min_messages warning.
 *
 * Writes are transactions (READ COMMITTED); the ones that depend on a lease
 * lock its row first (SELECT ... FOR UPDATE), so the check and the write
 * cannot be split by another node. Appends for many executions go in one
 * transaction (group commit). Every write transaction that changes what
 * another process may wait for (histories, the inbox) sends NOTIFY steppy
 * with the execution id; store_data_version() counts the notifications of
 * other connections (LISTEN starts at its first call; a handle stops at its
 * next call 10 s after its last store_data_version(), and while it listens
 * the server ends its session after 15 s idle, so a handle nobody calls any
 * more never pins PostgreSQL's notification queue).
 *
 * The schema is created by the first open, under a transaction-level
 * advisory lock so that several nodes starting at once do not collide, and
 * stamped in meta ("schema"); a newer one is refused, never changed. Tables
 * live in the connection's current schema (search_path), so one database
 * may hold several stores in separate schemas (the tests do).
 *
 * A lost connection (the server restarted, a network cut) fails the call
 * with SP_ESTORE and is reset (PQreset) at the start of the next one.
 */
#include "store/store-backend.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The PostgreSQL schema's version (meta key "schema"), numbered apart from
 * the SQLite file's: bumped with every change of the tables below. */
#define PG_SCHEMA_VERSION 2
/* pg_advisory_xact_lock key around creating or migrating the schema
 * ("steppy" in ASCII). */
#define SCHEMA_LOCK_KEY   "126943972188281"
#define STATEMENT_TIMEOUT 10000
#define CONNECT_TIMEOUT_S "10"
#define FENCE_BUCKETS     1024
#define MAX_PARAMS        12
/* A handle that has not asked for the data version this long stops listening. */
#define UNLISTEN_AFTER_MS 10000
/* While a handle listens, the server ends its session after this long idle
 * (idle_session_timeout): a handle nobody calls any more (parked in a pool)
 * would otherwise keep listening, and its unread notifications pin
 * PostgreSQL's shared queue. The next call reconnects (ready()). */
#define LISTEN_SQL                                                                                 \
	"LISTEN steppy; SELECT set_config('idle_session_timeout', '" IDLE_LISTENER_MS "', false)"
#define UNLISTEN_SQL     "UNLISTEN steppy; SELECT set_config('idle_session_timeout', '0', false)"
#define IDLE_LISTENER_MS "15000"
/* ...and a listening handle idle this long (no statement) reconnects by
 * itself first, so that a call never races the server's timeout. */
#define LISTENER_STALE_MS 10000

/* How many option values of a URL a message may never show (secret_options). */
#define NSECRETS 5

/* A fence this handle got for an execution (store_lease_take, store_create). */
struct fence {
	char *id;
	int64_t fence;
	struct fence *next;
};

struct pg_store {
	struct store base;
	PGconn *conn;           /* never NULL; may be CONNECTION_BAD until the next call */
	char *display;          /* store_display_name(): user, host, port, database */
	char *secret[NSECRETS]; /* texts of the URL never shown (secret_options); NULL: none */
	int lock_timeout;       /* ms, store_busy_timeout() */
	bool listening;         /* LISTEN steppy was sent (store_data_version) */
	int64_t listened;       /* CLOCK_MONOTONIC ms of the last store_data_version() */
	int64_t sent;           /* CLOCK_MONOTONIC ms when the last statement ended */
	bool broken;            /* reset at the next call even if libpq thinks it is fine */
	bool in_tx;             /* between begin() and finish(): ready() never resets */
	int64_t version;        /* store_data_version(): bumped per foreign notification */
	char **prepared;        /* statement "sN" on this connection is prepared[N] */
	size_t nprepared;
	struct fence **fences; /* FENCE_BUCKETS chains, allocated at the first lease */
	/* The database's clock minus this host's (ms), measured at the first
	 * lease call and again after CLOCK_MEASURE_MS (lease_clock). */
	int64_t clock_offset;
	int64_t clock_measured; /* CLOCK_MONOTONIC ms; 0: never */
	/* This host's wall clock minus CLOCK_BOOTTIME when the offset was
	 * measured: a wall clock step since then is the change of it. */
	int64_t clock_wall_boot;
	int64_t copy_now; /* store_copy() into it: its now by the database's clock */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* This host's wall clock minus CLOCK_BOOTTIME (ms), as the lease clock
 * sees it (with the test's skew). It changes only when the wall clock is
 * stepped or slewed. */
static int64_t wall_minus_boot(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	int64_t boot = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	return wall_clock_ms() + atomic_load(&store_test_clock_skew_ms) - boot;
}

static struct pg_store *pg(struct store *st)
{
	return (struct pg_store *)st;
}

static const char pg_schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS executions ("
    "  id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  created_ms BIGINT NOT NULL,"
    "  updated_ms BIGINT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  plan_name TEXT, environment TEXT, plan_file TEXT, started_by TEXT,"
    "  last_seq BIGINT NOT NULL,"
    "  next_due_ms BIGINT NOT NULL DEFAULT 0,"
    "  waiting TEXT);"
    "CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, created_ms);"
    "CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created_ms);"
    "CREATE TABLE IF NOT EXISTS events ("
    "  execution_id TEXT COLLATE \"C\" NOT NULL,"
    "  seq BIGINT NOT NULL,"
    "  time_ms BIGINT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY (execution_id, seq));"
    "CREATE SEQUENCE IF NOT EXISTS lease_fence;"
    "CREATE TABLE IF NOT EXISTS leases ("
    "  execution_id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  owner TEXT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,"
    "  expires_ms BIGINT NOT NULL,"
    "  fence BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS leases_by_owner ON leases (owner);"
    "CREATE TABLE IF NOT EXISTS inbox ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  execution_id TEXT COLLATE \"C\" NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  created_ms BIGINT NOT NULL,"
    "  done_ms BIGINT, result TEXT);"
    "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (execution_id) WHERE done_ms IS NULL;"
    "CREATE TABLE IF NOT EXISTS approval_links ("
    "  token_sha256 BYTEA PRIMARY KEY,"
    "  execution_id TEXT COLLATE \"C\" NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  created_ms BIGINT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS approval_links_by_attempt ON approval_links "
    "  (execution_id, stage, step, attempt);"
    "CREATE TABLE IF NOT EXISTS inbox_files ("
    "  version TEXT COLLATE \"C\" PRIMARY KEY,"
    "  status TEXT NOT NULL,"
    "  created_ms BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS personal_links ("
    "  token_sha256 BYTEA PRIMARY KEY,"
    "  execution_id TEXT COLLATE \"C\" NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  person TEXT NOT NULL,"
    "  created_ms BIGINT NOT NULL, used_ms BIGINT);"
    "CREATE TABLE IF NOT EXISTS sealed_secrets ("
    "  execution_id TEXT COLLATE \"C\" PRIMARY KEY,"
    "  box BYTEA NOT NULL);";

/* Schema 2: the fingerprint of the secret key that seals the store's
 * secrets (store_key_check), one row. */
static const char pg_key_schema[] = "CREATE TABLE IF NOT EXISTS secret_key ("
                                    "  one INTEGER PRIMARY KEY CHECK (one = 1),"
                                    "  fingerprint TEXT NOT NULL,"
                                    "  created_ms BIGINT NOT NULL);";

/* The steps from one schema version to the next: pg_migrations[i] takes a
 * schema of version i (0: none) to i + 1. */
static const char *const pg_migrations[PG_SCHEMA_VERSION] = { pg_schema, pg_key_schema };

/* The tables of PG_SCHEMA_VERSION, for store_check(). */
static const char *const pg_tables[] = { "meta",        "executions",     "events",
	                                 "leases",      "inbox",          "approval_links",
	                                 "inbox_files", "personal_links", "sealed_secrets",
	                                 "secret_key" };

/* ---- parameters -------------------------------------------------------------- */

/* The values of one statement: text, or binary for bytea (fmt 1). */
struct params {
	int n;
	const char *v[MAX_PARAMS];
	int len[MAX_PARAMS];
	int fmt[MAX_PARAMS];
	char num[MAX_PARAMS][24];
};

static void p_text(struct params *p, const char *s)
{
	p->v[p->n] = s; /* NULL: SQL NULL */
	p->len[p->n] = 0;
	p->fmt[p->n++] = 0;
}

static void p_int(struct params *p, int64_t x)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%lld", (long long)x);
	p_text(p, p->num[p->n]);
}

static void p_bytes(struct params *p, const unsigned char *b, size_t n)
{
	p->v[p->n] = (const char *)b;
	p->len[p->n] = (int)n;
	p->fmt[p->n++] = 1;
}

/* ---- connection ------------------------------------------------------------- */

/* What a message says instead of the URL libpq cannot parse: libpq's own
 * parse errors quote the text, password included. */
#define BAD_URL_SHOWN   "postgresql://\u2026"
#define BAD_URL_MESSAGE "the store URL is not a valid PostgreSQL URL"

/* Adds s, each control character as '?' (a log line stays one line). */
static void add_shown(struct strbuf *out, const char *s)
{
	for (; *s; s++)
		strbuf_addch(out, (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* A port as libpq takes it: digits, a comma between the ports of several
 * hosts. Anything else (a password typed where the port goes) is never
 * shown. */
static bool plain_port(const char *port)
{
	return *port && strspn(port, "0123456789,") == strlen(port);
}

/* A database name that is itself a URL or a key=value connection string
 * (libpq takes one in dbname): it may hold a password. */
static bool conninfo_like(const char *db)
{
	return strchr(db, '=') || strstr(db, "://");
}

/*
 * The option values of a parsed URL that no message shows (masked as ****
 * in libpq's messages, add_pq_message): the password and sslpassword; a
 * user name with a ':' (user:password put in the user); a port that is not
 * a port number; a database name that is a connection string. Sets
 * out[0..NSECRETS) (copies, or NULL).
 */
static void secret_options(const PQconninfoOption *opts, char *out[NSECRETS])
{
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		int slot = -1;
		if (!strcmp(o->keyword, "password"))
			slot = 0;
		else if (!strcmp(o->keyword, "sslpassword"))
			slot = 1;
		else if (!strcmp(o->keyword, "user") && strchr(o->val, ':'))
			slot = 2;
		else if (!strcmp(o->keyword, "port") && !plain_port(o->val))
			slot = 3;
		else if (!strcmp(o->keyword, "dbname") && conninfo_like(o->val))
			slot = 4;
		if (slot >= 0 && !out[slot])
			out[slot] = xstrdup(o->val);
	}
}

char *store_pg_display_name(const char *url)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &errmsg);
	PQfreemem(errmsg); /* it may quote the URL */
	if (!opts)
		return xstrdup(BAD_URL_SHOWN);
	const char *user = NULL, *host = NULL, *port = NULL, *db = NULL;
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "dbname"))
			db = o->val;
	}
	/* Only user, host, port and database: never a password, sslpassword
	 * or another option. A host with a '/' is a socket directory. */
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "postgresql://");
	if (user) {
		/* user:password given as the user name: the name only */
		char *name = xstrndup(user, strcspn(user, ":"));
		add_shown(&out, name);
		free(name);
		strbuf_addch(&out, '@');
	}
	bool socket = host && strchr(host, '/');
	if (host && !socket)
		add_shown(&out, host);
	if (port) {
		strbuf_addch(&out, ':');
		add_shown(&out, plain_port(port) ? port : "\u2026");
	}
	strbuf_addch(&out, '/');
	/* a database name that looks like a connection string is not shown */
	if (db)
		add_shown(&out, conninfo_like(db) ? "\u2026" : db);
	if (socket) {
		strbuf_addstr(&out, "?host=");
		add_shown(&out, host);
	}
	PQconninfoFree(opts);
	return strbuf_detach(&out, NULL);
}

/* libpq prints notices to stderr by default; a library never prints. */
static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* libpq's message on one line (its lines joined by "; ", runs of blanks
 * made one), into err; any text of the URL's password or sslpassword in it
 * (libpq quotes option values in some messages) as ****. */
static void add_pq_message(const struct pg_store *st, struct strbuf *err, const char *msg)
{
	size_t start = err->len;
	bool blank = false;
	for (const char *p = msg ? msg : ""; *p; p++) {
		if (*p == '\n' || *p == ' ' || *p == '\t') {
			if (*p == '\n' && p[1] && err->len > start && err->buf[err->len - 1] != ';')
				strbuf_addch(err, ';');
			blank = true;
			continue;
		}
		if (blank && err->len > start)
			strbuf_addch(err, ' ');
		blank = false;
		size_t skip = 0;
		for (int i = 0; i < NSECRETS && !skip; i++) {
			const char *secret = st->secret[i];
			if (secret && !strncmp(p, secret, strlen(secret)))
				skip = strlen(secret);
		}
		if (skip) {
			strbuf_addstr(err, "****");
			p += skip - 1;
			continue;
		}
		strbuf_addch(err, (unsigned char)*p < 0x20 ? '?' : *p);
	}
	if (err->len == start)
		strbuf_addstr(err, "unknown error");
}

/* Counts the notifications other connections sent; frees them all. */
static void drain_notifies(struct pg_store *st)
{
	PGnotify *n;
	int me = PQbackendPID(st->conn);
	while ((n = PQnotifies(st->conn)) != NULL) {
		if (n->be_pid != me)
			st->version++;
		PQfreemem(n);
	}
}

static void forget_prepared(struct pg_store *st)
{
	for (size_t i = 0; i < st->nprepared; i++)
		free(st->prepared[i]);
	free(st->prepared);
	st->prepared = NULL;
	st->nprepared = 0;
}

/* Runs a constant statement without parameters (session settings). */
static int simple(struct pg_store *st, const char *sql, struct strbuf *err)
{
	PGresult *res = PQexec(st->conn, sql);
	st->sent = mono_ms();
	ExecStatusType s = PQresultStatus(res);
	int r = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		if (err) {
			strbuf_addf(err, "PostgreSQL at %s: ", st->display);
			add_pq_message(st, err, PQerrorMessage(st->conn));
		}
		r = SP_ESTORE;
	}
	PQclear(res);
	return r;
}

/* A session idle inside a transaction this long is ended by the server,
 * its locks let go (a node paused in the middle of a lease take holds that
 * lease's row lock; renewals skip it meanwhile). No transaction of steppy
 * waits on its client this long between statements. */
#define IDLE_IN_TX_MS "3000"

/* What each connection sets once connected. */
static int session_setup(struct pg_store *st, struct strbuf *err)
{
	char lock[24], stmt[24];
	snprintf(lock, sizeof(lock), "%d", st->lock_timeout);
	snprintf(stmt, sizeof(stmt), "%d",
	         st->lock_timeout > STATEMENT_TIMEOUT ? st->lock_timeout : STATEMENT_TIMEOUT);
	const char *vals[] = { stmt, lock };
	PGresult *res = PQexecParams(st->conn,
	                             "SELECT set_config('statement_timeout', $1, false), "
	                             "set_config('lock_timeout', $2, false), "
	                             "set_config('synchronous_commit', 'on', false), "
	                             "set_config('idle_in_transaction_session_timeout', "
	                             "'" IDLE_IN_TX_MS "', false), "
	                             "set_config('client_min_messages', 'warning', false)",
	                             2, NULL, vals, NULL, NULL, 0);
	int r = 0;
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		if (err) {
			strbuf_addf(
			    err, "cannot set up the connection to PostgreSQL at %s: ", st->display);
			add_pq_message(st, err, PQerrorMessage(st->conn));
		}
		r = SP_ESTORE;
	}
	PQclear(res);
	if (r == 0 && st->listening)
		r = simple(st, LISTEN_SQL, err);
	return r;
}

static int pq_error(struct pg_store *st, const PGresult *res, const char *what, struct strbuf *err);

/*
 * Makes sure the connection works before a call: a connection found broken
 * (the server restarted, or a statement failed on a lost connection) is
 * reset once; the statements are prepared again
 * and store_data_version() moves (notifications may have been missed).
 * Returns 0, or SP_ESTORE with the reason.
 */
static int ready(struct pg_store *st, struct strbuf *err)
{
	/* Inside a transaction (a write that calls another), a new
	 * connection would lose what it did so far: fail instead. */
	if (st->in_tx) {
		if (PQstatus(st->conn) == CONNECTION_OK)
			return 0;
		return pq_error(st, NULL, "in a transaction", err);
	}
	/* Reading what waits on the socket (a non-blocking read) finds a
	 * connection the server closed meanwhile (a restart says goodbye)
	 * before a statement is lost on it. */
	/* A listening connection about to reach the server's idle timeout
	 * (LISTEN_SQL) is reopened here rather than cut under a statement. */
	bool stale = st->listening && mono_ms() - st->sent > LISTENER_STALE_MS;
	if (!st->broken && !stale && PQstatus(st->conn) == CONNECTION_OK &&
	    PQconsumeInput(st->conn) != 0) {
		drain_notifies(st);
		/* the goodbye message came first: the second read meets the end */
		if (PQconsumeInput(st->conn) != 0 && PQstatus(st->conn) == CONNECTION_OK) {
			/* A handle that stopped asking for the data version (a live
			 * stream's, back in a pool) stops listening: unread
			 * notifications would hold the server's queue. */
			if (st->listening && mono_ms() - st->listened > UNLISTEN_AFTER_MS &&
			    PQtransactionStatus(st->conn) == PQTRANS_IDLE &&
			    simple(st, UNLISTEN_SQL, NULL) == 0)
				st->listening = false;
			return 0;
		}
	}
	forget_prepared(st);
	st->broken = false;
	/* the new connection listens only if the version is still asked for */
	if (st->listening && mono_ms() - st->listened > UNLISTEN_AFTER_MS)
		st->listening = false;
	PQreset(st->conn);
	st->version++;
	if (PQstatus(st->conn) != CONNECTION_OK) {
		if (err) {
			strbuf_addf(err, "cannot reach PostgreSQL at %s: ", st->display);
			add_pq_message(st, err, PQerrorMessage(st->conn));
		}
		return SP_ESTORE;
	}
	return session_setup(st, err);
}

/* Fills err for a failed statement; a lost connection says so. */
static int pq_error(struct pg_store *st, const PGresult *res, const char *what, struct strbuf *err)
{
	if (!err)
		return SP_ESTORE;
	strbuf_addf(err, "%s: ", what);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		strbuf_addf(err, "the connection to PostgreSQL at %s was lost (", st->display);
		add_pq_message(st, err, PQerrorMessage(st->conn));
		strbuf_addstr(err, "); it is opened again at the next call");
	} else {
		add_pq_message(st, err, res ? PQresultErrorMessage(res) : PQerrorMessage(st->conn));
	}
	return SP_ESTORE;
}

/* The index of sql among the statements prepared on this connection (its
 * name is "s<index>"), or nprepared if it is not prepared yet; the name in
 * name either way. */
static size_t prepared_index(const struct pg_store *st, const char *sql, char name[24])
{
	size_t i;
	for (i = 0; i < st->nprepared && strcmp(st->prepared[i], sql) != 0; i++)
		;
	snprintf(name, 24, "s%zu", i);
	return i;
}

/* Records that sql is prepared under the next name. */
static void prepared_add(struct pg_store *st, const char *sql)
{
	st->prepared = xreallocarray(st->prepared, st->nprepared + 1, sizeof(*st->prepared));
	st->prepared[st->nprepared++] = xstrdup(sql);
}

/* The name of sql prepared on this connection (preparing it the first time),
 * or NULL with err filled. */
static const char *statement(struct pg_store *st, const char *sql, char name[24], const char *what,
                             struct strbuf *err)
{
	if (prepared_index(st, sql, name) < st->nprepared)
		return name;
	PGresult *res = PQprepare(st->conn, name, sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pq_error(st, res, what, err);
		PQclear(res);
		return NULL;
	}
	PQclear(res);
	prepared_add(st, sql);
	return name;
}

/*
 * Runs sql with p (NULL: none). Returns 0 and *ret (caller PQclears; NULL
 * ret: cleared here), SP_ECONFLICT for a unique key violation (err
 * untouched: the caller says what exists), or SP_ESTORE with err as
 * "what: reason".
 */
static int run(struct pg_store *st, const char *sql, const struct params *p, PGresult **ret,
               const char *what, struct strbuf *err)
{
	char name[24];
	if (!statement(st, sql, name, what, err))
		return SP_ESTORE;
	PGresult *res = PQexecPrepared(st->conn, name, p ? p->n : 0, p ? p->v : NULL,
	                               p ? p->len : NULL, p ? p->fmt : NULL, 0);
	st->sent = mono_ms();
	drain_notifies(st);
	ExecStatusType s = PQresultStatus(res);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
		if (ret)
			*ret = res;
		else
			PQclear(res);
		return 0;
	}
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	int r;
	if (state && !strcmp(state, "55P03")) { /* lock_not_available: NOWAIT */
		if (err)
			strbuf_addf(err, "%s: the row is locked by another session", what);
		r = SP_EBUSY;
	} else {
		r = state && !strcmp(state, "23505") ? SP_ECONFLICT : pq_error(st, res, what, err);
	}
	PQclear(res);
	return r;
}

/* ready() then run(): one statement, outside a transaction or inside one
 * (begin() .. finish()). */
static int query(struct pg_store *st, const char *sql, const struct params *p, PGresult **ret,
                 const char *what, struct strbuf *err)
{
	int r = ready(st, err);
	return r < 0 ? r : run(st, sql, p, ret, what, err);
}

/* A command's count of rows (UPDATE, DELETE). */
static int affected(PGresult *res)
{
	return atoi(PQcmdTuples(res));
}

static char *get_text(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

static int64_t get_int(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static int begin(struct pg_store *st, struct strbuf *err)
{
	int r = ready(st, err);
	if (r == 0)
		r = run(st, "BEGIN", NULL, NULL, "starting a transaction", err);
	st->in_tx = r == 0;
	return r;
}

/* Commits when r is 0, else rolls back; returns r or the commit's error:
 * SP_EUNKNOWN if the connection was lost during COMMIT (the server may
 * have committed before the answer was lost). */
static int finish(struct pg_store *st, int r, struct strbuf *err)
{
	st->in_tx = false;
	if (r == 0) {
		r = run(st, "COMMIT", NULL, NULL, "committing", err);
		if (r < 0 && PQstatus(st->conn) != CONNECTION_OK) {
			if (err)
				strbuf_addstr(err, "; whether the commit went through is unknown");
			return SP_EUNKNOWN;
		}
	}
	if (r < 0 && PQstatus(st->conn) == CONNECTION_OK &&
	    PQtransactionStatus(st->conn) != PQTRANS_IDLE)
		simple(st, "ROLLBACK", NULL);
	return r;
}

/*
 * Lease times are the database server's clock, so that the nodes' clocks do
 * not matter for who holds a lease: the caller's now (its wall clock) plus
 * the offset of the database's clock from this host's, measured with one
 * round trip (to within half of it) and again every CLOCK_MEASURE_MS (a
 * clock that is slewed meanwhile). A step of this host's wall clock since
 * the measurement (NTP, `date -s`, a VM resumed) is taken out at once: it
 * is the change of wall - CLOCK_BOOTTIME, and a steady clock does not
 * step; so a node whose clock jumps forward does not see live leases as
 * expired, nor one whose clock jumps back its own as live. A constant
 * offset per handle keeps a caller's own times exact (a test's made-up now
 * moves as given).
 * Call on a connection that works, outside pipeline mode. Returns 0 and
 * *ret, or SP_ESTORE.
 */
#define CLOCK_MEASURE_MS 60000
static int lease_clock(struct pg_store *st, int64_t now, int64_t *ret, struct strbuf *err)
{
	if (!st->clock_measured || mono_ms() - st->clock_measured > CLOCK_MEASURE_MS) {
		int64_t before = wall_clock_ms() + atomic_load(&store_test_clock_skew_ms);
		PGresult *res = PQexec(
		    st->conn, "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint");
		int64_t after = wall_clock_ms() + atomic_load(&store_test_clock_skew_ms);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
			int r = pq_error(st, res, "reading the database's clock", err);
			PQclear(res);
			return r;
		}
		st->clock_offset = get_int(res, 0, 0) - (before + (after - before) / 2);
		st->clock_measured = mono_ms();
		st->clock_wall_boot = wall_minus_boot();
		PQclear(res);
	}
	*ret = now + st->clock_offset - (wall_minus_boot() - st->clock_wall_boot);
	return 0;
}

/* NOTIFY steppy (sent at commit), payload the execution id or "". */
#define SQL_NOTIFY "SELECT pg_notify('steppy', $1::text)"
static int notify(struct pg_store *st, const char *id, struct strbuf *err)
{
	struct params p = { 0 };
	p_text(&p, id ? id : "");
	return run(st, SQL_NOTIFY, &p, NULL, "notifying", err);
}

/* ---- fences -------------------------------------------------------------------- */

static unsigned fence_hash(const char *id)
{
	unsigned h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % FENCE_BUCKETS;
}

static struct fence **fence_slot(struct pg_store *st, const char *id)
{
	if (!st->fences)
		st->fences = xcalloc(FENCE_BUCKETS, sizeof(*st->fences));
	struct fence **p = &st->fences[fence_hash(id)];
	while (*p && strcmp((*p)->id, id) != 0)
		p = &(*p)->next;
	return p;
}

static void fence_remember(struct pg_store *st, const char *id, int64_t fence)
{
	struct fence **p = fence_slot(st, id);
	if (!*p) {
		*p = xcalloc(1, sizeof(**p));
		(*p)->id = xstrdup(id);
	}
	(*p)->fence = fence;
}

/* The fence this handle holds for id, or 0 (fences start at 1). */
static int64_t fence_of(struct pg_store *st, const char *id)
{
	struct fence **p = fence_slot(st, id);
	return *p ? (*p)->fence : 0;
}

static void fence_forget(struct pg_store *st, const char *id)
{
	struct fence **p = fence_slot(st, id);
	if (*p) {
		struct fence *f = *p;
		*p = f->next;
		free(f->id);
		free(f);
	}
}

static void fences_free(struct pg_store *st)
{
	if (!st->fences)
		return;
	for (size_t i = 0; i < FENCE_BUCKETS; i++)
		while (st->fences[i]) {
			struct fence *f = st->fences[i];
			st->fences[i] = f->next;
			free(f->id);
			free(f);
		}
	free(st->fences);
}

/* ---- open, schema -------------------------------------------------------------- */

static void pg_close(struct store *base)
{
	struct pg_store *st = pg(base);
	PQfinish(st->conn);
	forget_prepared(st);
	fences_free(st);
	free(st->display);
	for (int i = 0; i < NSECRETS; i++)
		if (st->secret[i]) {
			explicit_bzero(st->secret[i], strlen(st->secret[i]));
			free(st->secret[i]);
		}
	free(st);
}

/* The schema version stamped in the current schema: 0 when there is no
 * steppy schema (no meta table with text columns key and value there, or
 * no stamp in it). The stamp is digits only. Returns 0 or SP_ESTORE. */
static int read_version(struct pg_store *st, int *ret, struct strbuf *err)
{
	PGresult *res = NULL;
	int r = run(st,
	            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
	            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = "
	            "current_schema() AND c.relname = 'meta' AND c.relkind = 'r' AND a.attname "
	            "IN ('key', 'value') AND NOT a.attisdropped AND a.atttypid = 'text'::regtype",
	            NULL, &res, "reading the store's schema", err);
	if (r < 0)
		return r;
	bool have_meta = !strcmp(PQgetvalue(res, 0, 0), "2");
	PQclear(res);
	*ret = 0;
	if (!have_meta)
		return 0;
	r = run(st, "SELECT value FROM meta WHERE key = 'schema'", NULL, &res,
	        "reading the store's schema", err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1) {
		const char *v = PQgetvalue(res, 0, 0);
		size_t len = strlen(v);
		long n = 0;
		if (len > 0 && len <= 7 && strspn(v, "0123456789") == len)
			n = strtol(v, NULL, 10);
		if (n < 1) {
			if (err) {
				strbuf_addf(err, "%s has store schema \"", st->display);
				for (const char *c = v; *c && c - v < 40; c++)
					strbuf_addch(err, (unsigned char)*c < 0x20 ? '?' : *c);
				strbuf_addstr(err, "\", which is not a version");
			}
			r = SP_ESTORE;
		}
		*ret = (int)n;
	}
	PQclear(res);
	return r;
}

/* Refuses (SP_ESTORE) a current schema without steppy's stamp that holds a
 * table named like one of steppy's (the names of pg_tables): another application's, never adopted
 * nor written into. */
static int foreign_tables(struct pg_store *st, struct strbuf *err)
{
	PGresult *res = NULL;
	int r = run(st,
	            "SELECT current_schema(), c.relname FROM pg_class c JOIN pg_namespace n ON "
	            "n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relname = "
	            "ANY (ARRAY['meta', 'executions', 'events', 'leases', 'inbox', "
	            "'approval_links', 'inbox_files', 'personal_links', 'sealed_secrets', "
	            "'secret_key']) "
	            "ORDER BY c.relname = 'executions' DESC, c.relname LIMIT 1",
	            NULL, &res, "reading the store's schema", err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1) {
		if (err)
			strbuf_addf(err,
			            "not a steppy store: %s already has a table named %s (another "
			            "application's?); steppy did not change it",
			            PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		r = SP_ESTORE;
	}
	PQclear(res);
	return r;
}

static int newer_schema(struct pg_store *st, int version, struct strbuf *err)
{
	if (err)
		strbuf_addf(err,
		            "%s was written by a newer steppy (store schema %d; this steppy knows "
		            "schemas up to %d): run that version or a newer one; this one does "
		            "not change the database",
		            st->display, version, PG_SCHEMA_VERSION);
	return SP_ESTORE;
}

static int not_a_store(struct pg_store *st, struct strbuf *err)
{
	if (err)
		strbuf_addf(err,
		            "%s is not a steppy store (no steppy schema in it); this command "
		            "does not create one and did not change the database",
		            st->display);
	return SP_ESTORE;
}

/*
 * Creates or migrates the schema when needed: under pg_advisory_xact_lock,
 * so that nodes starting at once take turns (the second one finds it made).
 */
static int init_schema(struct pg_store *st, bool create, struct strbuf *err)
{
	int version = 0;
	int r = read_version(st, &version, err);
	if (r < 0)
		return r;
	if (version > PG_SCHEMA_VERSION)
		return newer_schema(st, version, err);
	if (version == PG_SCHEMA_VERSION)
		return 0;
	if (version == 0 && !create)
		return not_a_store(st, err);
	r = begin(st, err);
	if (r == 0)
		r = run(st, "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", NULL, NULL,
		        "locking the schema", err);
	if (r == 0)
		r = read_version(st, &version, err);
	if (r == 0 && version > PG_SCHEMA_VERSION)
		r = newer_schema(st, version, err);
	if (r == 0 && version == 0)
		r = foreign_tables(st, err);
	if (r == 0 && version < PG_SCHEMA_VERSION) {
		for (int v = version; v < PG_SCHEMA_VERSION && r == 0; v++)
			r = simple(st, pg_migrations[v], err);
		struct params p = { 0 };
		p_int(&p, PG_SCHEMA_VERSION);
		if (r == 0)
			r = run(st,
			        "INSERT INTO meta (key, value) VALUES ('schema', $1::text) "
			        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
			        &p, NULL, "stamping the schema", err);
	}
	return finish(st, r, err);
}

static int pg_open(const char *url, bool create, struct store **ret, struct strbuf *err)
{
	struct pg_store *st = xcalloc(1, sizeof(*st));
	store_base_init(&st->base, &store_pg_ops);
	/* Nodes on other machines (or containers) may share a host name: the
	 * lease rows name the PID namespace too, so that "its process is gone"
	 * is only ever concluded where the PID means the same process. */
	char ns[64];
	ssize_t n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	if (n > 0) {
		ns[n] = '\0';
		size_t len = strlen(st->base.host);
		snprintf(st->base.host + len, sizeof(st->base.host) - len, " %s", ns);
	}
	/* libpq's parse errors quote the URL, password included: checked
	 * here, with a message of our own. */
	char *parse_err = NULL;
	PQconninfoOption *parsed = PQconninfoParse(url, &parse_err);
	PQfreemem(parse_err);
	if (!parsed) {
		if (err)
			strbuf_addstr(err, BAD_URL_MESSAGE);
		free(st);
		return SP_ESTORE;
	}
	secret_options(parsed, st->secret);
	PQconninfoFree(parsed);
	st->display = store_display_name(url);
	st->lock_timeout = 10000;
	/* The URL's own settings come last and win. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { CONNECT_TIMEOUT_S, "steppy", url, NULL };
	st->conn = PQconnectdbParams(keys, vals, 1);
	int r = 0;
	if (!st->conn) {
		if (err)
			strbuf_addstr(err, "out of memory");
		pg_close(&st->base); /* PQfinish(NULL) does nothing */
		return SP_ENOMEM;
	}
	PQsetNoticeProcessor(st->conn, quiet_notices, NULL);
	if (PQstatus(st->conn) != CONNECTION_OK) {
		if (err) {
			strbuf_addf(err, "cannot connect to PostgreSQL at %s: ", st->display);
			add_pq_message(st, err, PQerrorMessage(st->conn));
		}
		r = SP_ESTORE;
	}
	if (r == 0)
		r = session_setup(st, err);
	if (r == 0)
		r = init_schema(st, create, err);
	if (r < 0) {
		pg_close(&st->base);
		return r;
	}
	*ret = &st->base;
	return 0;
}

static int pg_schema_version(struct store *base, int *ret_version, int *ret_known,
                             struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int version = 0;
	int r = ready(st, err);
	if (r == 0)
		r = read_version(st, &version, err);
	if (r < 0)
		return r;
	*ret_version = version;
	*ret_known = PG_SCHEMA_VERSION;
	return 0;
}

/*
 * Checks: the schema version is this steppy's, every table is there, every
 * history runs 1..n without a gap, and every execution row's last_seq is
 * its history's last event. PostgreSQL checks its own pages (checksums,
 * if the cluster has them on).
 */
static int pg_check(struct store *base, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct strbuf found = STRBUF_INIT;
	int version = 0;
	int r = ready(st, err);
	if (r == 0)
		r = read_version(st, &version, err);
	if (r < 0) {
		strbuf_release(&found);
		return r;
	}
	if (version != PG_SCHEMA_VERSION)
		strbuf_addf(&found, "schema version %d, expected %d", version, PG_SCHEMA_VERSION);
	for (size_t i = 0; i < sizeof(pg_tables) / sizeof(*pg_tables) && r == 0; i++) {
		struct params p = { 0 };
		p_text(&p, pg_tables[i]);
		PGresult *res = NULL;
		r = run(st, "SELECT to_regclass($1::text) IS NOT NULL", &p, &res,
		        "checking the tables", err);
		if (r == 0 && strcmp(PQgetvalue(res, 0, 0), "t") != 0)
			strbuf_addf(&found, "%stable %s is missing", found.len ? "; " : "",
			            pg_tables[i]);
		PQclear(res);
	}
	if (r == 0 && found.len == 0) {
		PGresult *res = NULL;
		/* It reads every event number: no statement timeout for it (in a
		 * transaction of its own, so the setting ends with it). */
		r = begin(st, err);
		if (r == 0)
			r = run(st, "SET LOCAL statement_timeout = 0", NULL, NULL,
			        "checking the histories", err);
		if (r == 0)
			r = run(st, STORE_CHECK_GAPS_SQL, NULL, &res, "checking the histories",
			        err);
		for (int i = 0; r == 0 && i < PQntuples(res); i++)
			store_check_gap(&found, i, get_int(res, i, 4), PQgetvalue(res, i, 0),
			                get_int(res, i, 1), get_int(res, i, 2), get_int(res, i, 3));
		PQclear(res);
		res = NULL;
		if (r == 0)
			r = run(st, STORE_CHECK_ROWS_SQL, NULL, &res, "checking the histories",
			        err);
		for (int i = 0; r == 0 && i < PQntuples(res); i++)
			store_check_row(&found, i, get_int(res, i, 3), PQgetvalue(res, i, 0),
			                get_int(res, i, 1), get_int(res, i, 2));
		PQclear(res);
		r = finish(st, r, err);
	}
	if (r == 0 && found.len) {
		if (err)
			strbuf_addf(err, "the store %s is damaged: %s", st->display, found.buf);
		r = SP_ESTORE;
	}
	strbuf_release(&found);
	return r;
}

static int pg_backup(struct store *base, const char *path, bool force, struct strbuf *err)
{
	(void)path;
	(void)force;
	if (err)
		strbuf_addf(
		    err,
		    "%s is a PostgreSQL store: back it up with pg_dump (docs/operations.md, "
		    "\"PostgreSQL store\"); steppy store backup copies SQLite stores",
		    pg(base)->display);
	return SP_EINVAL;
}

/* ---- histories ----------------------------------------------------------------- */

/*
 * The statements of a write (pg_create, pg_append), sent together in
 * libpq's pipeline mode and read back at once: one round trip for a whole
 * group commit, where one by one costs three per execution. Each statement
 * says how its result is judged; the first failure is kept and the rest of
 * the pipeline is aborted by the server.
 */
enum check {
	CHECK_OK,       /* succeeds */
	CHECK_PREPARED, /* a statement prepared in the pipeline */
	CHECK_LEASE,    /* the lease row of id: owner's, unexpired, this handle's fence */
	CHECK_EVENT,    /* an event insert: a duplicate is a conflict */
	CHECK_ONE_ROW,  /* a projection update: exactly one row */
	CHECK_NEW,      /* a new execution row: a duplicate id is a conflict */
	CHECK_FENCE,    /* a lease given out: its fence is kept in the batch */
};

struct sent {
	enum check check;
	const char *id; /* borrowed: the caller's item */
	int64_t seq;
	const char *what;
	size_t prepared; /* CHECK_PREPARED: its index in st->prepared */
};

struct batch {
	struct pg_store *st;
	const char *owner; /* CHECK_LEASE */
	int64_t now;
	int64_t lease_now; /* CHECK_LEASE: now by the database's clock (lease_clock) */
	struct sent *q;    /* what was sent, in order */
	size_t n;
	int r;         /* the first failure, or 0 */
	int64_t fence; /* CHECK_FENCE's result */
	struct strbuf *err;
};

static int lease_verdict(struct batch *b, const char *id, const PGresult *res)
{
	int64_t mine = fence_of(b->st, id);
	struct strbuf *err = b->err;
	if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), b->owner) != 0) {
		if (err)
			strbuf_addf(err, "this process no longer holds execution %s", id);
		return SP_ECONFLICT;
	}
	if (get_int(res, 0, 1) < b->lease_now) {
		if (err)
			strbuf_addf(err,
			            "the lease of execution %s expired; this process must take it "
			            "again",
			            id);
		return SP_ECONFLICT;
	}
	if (get_int(res, 0, 2) != mine) {
		if (err)
			strbuf_addf(err,
			            "execution %s changed hands since this process took it (fence "
			            "%lld, now %lld)",
			            id, (long long)mine, (long long)get_int(res, 0, 2));
		return SP_ECONFLICT;
	}
	return 0;
}

/* Judges one statement's result: 0 or the failure (err filled). */
static int verdict(struct batch *b, const struct sent *s, PGresult *res)
{
	ExecStatusType status = PQresultStatus(res);
	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (s->check == CHECK_PREPARED)
			b->st->prepared[s->prepared][0] = '\0'; /* never matched again */
		if (state && !strcmp(state, "23505") && s->check == CHECK_NEW) {
			if (b->err)
				strbuf_addf(b->err, "an execution %s exists already", s->id);
			return SP_ECONFLICT;
		}
		if (state && !strcmp(state, "23505") && s->check == CHECK_EVENT) {
			if (b->err)
				strbuf_addf(b->err, "event %lld of %s was already recorded",
				            (long long)s->seq, s->id);
			return SP_ECONFLICT;
		}
		return pq_error(b->st, res, s->what, b->err);
	}
	if (s->check == CHECK_LEASE)
		return lease_verdict(b, s->id, res);
	if (s->check == CHECK_FENCE)
		b->fence = PQntuples(res) == 1 ? get_int(res, 0, 0) : 0;
	if (s->check == CHECK_ONE_ROW && affected(res) != 1) {
		if (b->err)
			strbuf_addf(b->err, "execution %s changed under us", s->id);
		return SP_ECONFLICT;
	}
	return 0;
}

static void batch_queue(struct batch *b, struct sent s)
{
	b->q = xreallocarray(b->q, b->n + 1, sizeof(*b->q));
	b->q[b->n++] = s;
}

/* Sends sql with p, judged by check when the results are read. */
static void batch_add(struct batch *b, const char *sql, const struct params *p, enum check check,
                      const char *id, int64_t seq, const char *what)
{
	if (b->r < 0)
		return;
	struct pg_store *st = b->st;
	struct sent s = { .check = check, .id = id, .seq = seq, .what = what };
	char name[24];
	size_t i = prepared_index(st, sql, name);
	if (i == st->nprepared) {
		if (!PQsendPrepare(st->conn, name, sql, 0, NULL)) {
			b->r = pq_error(st, NULL, what, b->err);
			return;
		}
		prepared_add(st, sql);
		batch_queue(b,
		            (struct sent){ .check = CHECK_PREPARED, .what = what, .prepared = i });
	}
	if (!PQsendQueryPrepared(st->conn, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
	                         p ? p->fmt : NULL, 0)) {
		b->r = pq_error(st, NULL, what, b->err);
		return;
	}
	batch_queue(b, s);
}

/* Sends the sync and reads every result in order, judging each until the
 * first failure. Returns b->r. */
static int batch_finish(struct batch *b)
{
	struct pg_store *st = b->st;
	bool synced = PQpipelineSync(st->conn) == 1;
	if (!synced && b->r == 0)
		b->r = pq_error(st, NULL, "committing", b->err);
	for (size_t i = 0; i < b->n && synced; i++) {
		PGresult *res = PQgetResult(st->conn);
		if (!res) {
			if (b->r == 0)
				b->r = pq_error(st, NULL, b->q[i].what, b->err);
			synced = false;
			break;
		}
		if (b->r == 0)
			b->r = verdict(b, &b->q[i], res);
		PQclear(res);
		while ((res = PQgetResult(st->conn)) != NULL) /* the end of this one */
			PQclear(res);
	}
	PGresult *res;
	while (synced && (res = PQgetResult(st->conn)) != NULL) { /* the sync */
		bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
		PQclear(res);
		if (sync)
			break;
	}
	/* A pipeline left unfinished (the connection failed in it) leaves
	 * the connection unusable: reset at the next call. */
	if (PQexitPipelineMode(st->conn) != 1)
		st->broken = true;
	drain_notifies(st);
	free(b->q);
	b->q = NULL;
	b->n = 0;
	return b->r;
}

/*
 * Starts a write's pipeline on a connection that works: the lease clock
 * read first (lease_now), then BEGIN queued. Returns 0 with b set, or an
 * error (nothing sent).
 */
static int batch_begin(struct pg_store *st, struct batch *b, const char *owner, int64_t now,
                       struct strbuf *err)
{
	*b = (struct batch){ .st = st, .owner = owner, .now = now, .err = err };
	int r = ready(st, err);
	if (r == 0)
		r = lease_clock(st, now, &b->lease_now, err);
	if (r < 0)
		return r;
	if (PQenterPipelineMode(st->conn) != 1)
		return pq_error(st, NULL, "starting a transaction", err);
	batch_add(b, "BEGIN", NULL, CHECK_OK, NULL, 0, "starting a transaction");
	return 0;
}

/* Queues the NOTIFY (payload: the one execution, or ""), reads the
 * pipeline's results and commits if every one passed (else rolls back). */
static int batch_commit(struct batch *b, const char *payload)
{
	struct params p = { 0 };
	p_text(&p, payload ? payload : "");
	batch_add(b, SQL_NOTIFY, &p, CHECK_OK, NULL, 0, "notifying");
	return finish(b->st, batch_finish(b), b->err);
}

#define SQL_SEALED                                                                                 \
	"INSERT INTO sealed_secrets (execution_id, box) VALUES ($1::text, $2::bytea) ON CONFLICT " \
	"(execution_id) DO UPDATE SET box = EXCLUDED.box"
#define SQL_EVENT                                                                                  \
	"INSERT INTO events (execution_id, seq, time_ms, type, stage, step, attempt, data) "       \
	"VALUES "                                                                                  \
	"($1::text, $2::bigint, $3::bigint, $4::text, $5::int, $6::int, $7::int, $8::text)"
#define SQL_PROJECTION                                                                             \
	"UPDATE executions SET status = $1::text, updated_ms = $2::bigint, last_seq = "            \
	"$3::bigint, "                                                                             \
	"next_due_ms = $4::bigint, waiting = $5::text WHERE id = $6::text AND last_seq = "         \
	"$7::bigint"
/* NOWAIT: a lease row locked by another session (a take in progress)
 * fails the write at once, to be retried, rather than holding the loop up
 * to lock_timeout while the leases of every release go unrenewed. */
#define SQL_LEASE_CHECK                                                                            \
	"SELECT owner, expires_ms, fence FROM leases WHERE execution_id = $1::text FOR UPDATE "    \
	"NOWAIT"

/* The events of an item (secrets of an ExecutionStarted sealed first). */
static void add_events(struct batch *b, const struct store_append_item *it)
{
	for (size_t i = 0; i < it->nevents && b->r == 0; i++) {
		const struct event *e = &it->events[i];
		json_t *sealed_copy = NULL;
		if (e->type == EV_EXECUTION_STARTED) {
			unsigned char *box = NULL;
			size_t box_len = 0;
			b->r = store_secrets_seal(&b->st->base.key, it->id, e->data, &sealed_copy,
			                          &box, &box_len, b->err);
			if (b->r == 0 && box) {
				struct params p = { 0 };
				p_text(&p, it->id);
				p_bytes(&p, box, box_len);
				batch_add(b, SQL_SEALED, &p, CHECK_OK, it->id, 0,
				          "recording sealed secrets");
			}
			free(box);
		}
		char *data = json_dumps(sealed_copy ? sealed_copy : e->data,
		                        JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(sealed_copy);
		struct params p = { 0 };
		p_text(&p, it->id);
		p_int(&p, e->seq);
		p_int(&p, e->time_ms);
		p_text(&p, event_type_name(e->type));
		p_int(&p, e->stage);
		p_int(&p, e->step);
		p_int(&p, e->attempt);
		p_text(&p, data ? data : "{}");
		batch_add(b, SQL_EVENT, &p, CHECK_EVENT, it->id, e->seq, "recording an event");
		free(data);
	}
}

/* The projection row after an item's events: from last_seq = first - 1. */
static void add_projection(struct batch *b, const struct store_append_item *it)
{
	if (it->nevents == 0)
		return;
	struct params p = { 0 };
	p_text(&p, it->status);
	p_int(&p, b->now);
	p_int(&p, it->events[it->nevents - 1].seq);
	p_int(&p, it->next_due_ms);
	p_text(&p, it->waiting);
	p_text(&p, it->id);
	p_int(&p, it->events[0].seq - 1);
	batch_add(b, SQL_PROJECTION, &p, CHECK_ONE_ROW, it->id, 0, "updating an execution");
}

/* All in one pipeline, as an append (one round trip, then COMMIT). */
static int pg_create(struct store *base, const struct exec_row *row, const char *owner, int64_t now,
                     int64_t lease_ms, const struct store_append_item *first, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct batch b;
	int r = batch_begin(st, &b, owner, now, err);
	if (r < 0)
		return r;
	struct params p = { 0 };
	p_text(&p, row->id);
	p_int(&p, now);
	p_text(&p, row->plan_name);
	p_text(&p, row->environment);
	p_text(&p, row->plan_file);
	p_text(&p, row->started_by);
	batch_add(&b,
	          "INSERT INTO executions (id, created_ms, updated_ms, status, plan_name, "
	          "environment, plan_file, started_by, last_seq) VALUES ($1::text, $2::bigint, "
	          "$2::bigint, 'RUNNING', $3::text, $4::text, $5::text, $6::text, 0)",
	          &p, CHECK_NEW, row->id, 0, "creating an execution");
	struct params l = { 0 };
	p_text(&l, row->id);
	p_text(&l, owner);
	p_text(&l, st->base.host);
	p_int(&l, getpid());
	p_int(&l, b.lease_now + lease_ms);
	batch_add(&b,
	          "INSERT INTO leases (execution_id, owner, host, pid, expires_ms, fence) "
	          "VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::bigint, "
	          "nextval('lease_fence')) ON CONFLICT (execution_id) DO UPDATE SET "
	          "owner = EXCLUDED.owner, host = EXCLUDED.host, pid = EXCLUDED.pid, "
	          "expires_ms = EXCLUDED.expires_ms, fence = EXCLUDED.fence RETURNING fence",
	          &l, CHECK_FENCE, row->id, 0, "taking a lease");
	add_events(&b, first);
	add_projection(&b, first);
	r = batch_commit(&b, row->id);
	if (r == 0)
		fence_remember(st, row->id, b.fence);
	return r;
}

static int pg_append(struct store *base, const char *owner, int64_t now,
                     const struct store_append_item *items, size_t nitems, const int64_t *done_ids,
                     const char *const *done_results, size_t ndone, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct batch b;
	int r = batch_begin(st, &b, owner, now, err);
	if (r < 0)
		return r;
	const char *one = NULL; /* the notification's payload: the one execution */
	size_t written = 0;
	for (size_t i = 0; i < nitems; i++) {
		if (items[i].nevents == 0)
			continue;
		one = written++ ? "" : items[i].id;
		struct params p = { 0 };
		p_text(&p, items[i].id);
		batch_add(&b, SQL_LEASE_CHECK, &p, CHECK_LEASE, items[i].id, 0, "checking a lease");
		add_events(&b, &items[i]);
		add_projection(&b, &items[i]);
	}
	for (size_t i = 0; i < ndone; i++) {
		struct params p = { 0 };
		p_int(&p, now);
		p_text(&p, done_results[i]);
		p_int(&p, done_ids[i]);
		batch_add(&b,
		          "UPDATE inbox SET done_ms = $1::bigint, result = $2::text WHERE id = "
		          "$3::bigint",
		          &p, CHECK_OK, NULL, 0, "answering a command");
	}
	return batch_commit(&b, one);
}

static int pg_history(struct store *base, const char *id, int64_t after, struct event_list *out,
                      struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, id);
	p_int(&p, after);
	PGresult *res = NULL;
	int r = query(st,
	              "SELECT seq, time_ms, type, stage, step, attempt, data FROM events "
	              "WHERE execution_id = $1::text AND seq > $2::bigint ORDER BY seq",
	              &p, &res, "reading a history", err);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res) && r == 0; i++) {
		int type = event_type_from_name(PQgetvalue(res, i, 2));
		json_t *data = json_loads(PQgetvalue(res, i, 6), 0, NULL);
		if (type < 0 || !data) {
			if (err)
				strbuf_addf(err, "event %lld of %s is unreadable",
				            (long long)get_int(res, i, 0), id);
			json_decref(data);
			r = SP_ESTORE;
			break;
		}
		if (type == EV_EXECUTION_STARTED && json_object_get(data, "secretsSealed")) {
			struct params q = { 0 };
			p_text(&q, id);
			PGresult *box = NULL;
			int rb =
			    run(st, "SELECT box FROM sealed_secrets WHERE execution_id = $1::text",
			        &q, &box, "reading sealed secrets", NULL);
			size_t len = 0;
			unsigned char *raw =
			    rb == 0 && PQntuples(box) == 1
			        ? PQunescapeBytea((const unsigned char *)PQgetvalue(box, 0, 0),
			                          &len)
			        : NULL;
			store_secrets_unseal(&st->base.key, id, data, raw, len,
			                     rb < 0 ? "the store cannot be read" : NULL);
			PQfreemem(raw);
			PQclear(box);
		}
		struct event *e =
		    event_list_add(out, (enum event_type)type, (int)get_int(res, i, 3),
		                   (int)get_int(res, i, 4), (int)get_int(res, i, 5), data);
		e->seq = get_int(res, i, 0);
		e->time_ms = get_int(res, i, 1);
	}
	PQclear(res);
	return r;
}

/* ---- executions ---------------------------------------------------------------- */

#define ROW_COLUMNS                                                                                \
	"id, status, plan_name, environment, plan_file, started_by, created_ms, updated_ms, "      \
	"last_seq, next_due_ms, waiting"

static void read_row(const PGresult *res, int i, struct exec_row *row)
{
	row->id = get_text(res, i, 0);
	row->status = get_text(res, i, 1);
	row->plan_name = get_text(res, i, 2);
	row->environment = get_text(res, i, 3);
	row->plan_file = get_text(res, i, 4);
	row->started_by = get_text(res, i, 5);
	row->created_ms = get_int(res, i, 6);
	row->updated_ms = get_int(res, i, 7);
	row->last_seq = get_int(res, i, 8);
	row->next_due_ms = get_int(res, i, 9);
	row->waiting = get_text(res, i, 10);
}

/* PostgreSQL refuses text that is not UTF-8: such an id names nothing. */
static bool valid_utf8(const char *s)
{
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len((const unsigned char *)s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

static int pg_get_exact(struct store *base, const char *id, struct exec_row *out,
                        struct strbuf *err)
{
	struct pg_store *st = pg(base);
	if (!valid_utf8(id))
		return SP_ENOENT;
	struct params p = { 0 };
	p_text(&p, id);
	PGresult *res = NULL;
	int r = query(st, "SELECT " ROW_COLUMNS " FROM executions WHERE id = $1::text", &p, &res,
	              "reading an execution", err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1)
		read_row(res, 0, out);
	else
		r = SP_ENOENT;
	PQclear(res);
	return r;
}

/* Ids starting with prefix lie in [prefix, next) where next is prefix with
 * its last byte incremented (the ids are "C"-collated: bytewise), when
 * that stays ASCII; otherwise starts_with() filters a scan from prefix. */
static int pg_get_prefix(struct store *base, const char *prefix, struct exec_row *out,
                         struct strbuf *err)
{
	struct pg_store *st = pg(base);
	if (!valid_utf8(prefix))
		return SP_ENOENT;
	size_t n = strlen(prefix);
	char *next = xstrdup(prefix);
	bool bounded = n > 0 && (unsigned char)next[n - 1] < 0x7f;
	if (bounded)
		next[n - 1] = (char)(next[n - 1] + 1);
	struct params p = { 0 };
	p_text(&p, prefix);
	if (bounded)
		p_text(&p, next);
	PGresult *res = NULL;
	int r = query(st,
	              bounded ? "SELECT " ROW_COLUMNS " FROM executions WHERE id >= $1::text AND "
	                        "id < $2::text ORDER BY id LIMIT 2"
	                      : "SELECT " ROW_COLUMNS " FROM executions WHERE id >= $1::text AND "
	                        "starts_with(id, $1::text) ORDER BY id LIMIT 2",
	              &p, &res, "reading an execution", err);
	free(next);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1)
		read_row(res, 0, out);
	else
		r = PQntuples(res) == 0 ? SP_ENOENT : SP_EINVAL;
	PQclear(res);
	return r;
}

static int pg_list(struct store *base, const char *status, int limit, int offset,
                   void (*fn)(const struct exec_row *row, void *arg), void *arg, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, status);
	p_int(&p, limit < 1 ? 1 : limit > 1000 ? 1000 : limit);
	p_int(&p, offset < 0 ? 0 : offset);
	PGresult *res = NULL;
	int r =
	    query(st,
	          "SELECT " ROW_COLUMNS " FROM executions WHERE $1::text IS NULL OR "
	          "status = $1::text OR ($1::text = 'WAITING' AND status = 'RUNNING' AND waiting "
	          "IS NOT NULL) ORDER BY created_ms DESC, id DESC LIMIT $2::int OFFSET $3::int",
	          &p, &res, "listing executions", err);
	if (r < 0)
		return r;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		struct exec_row row = { 0 };
		read_row(res, i, &row);
		fn(&row, arg);
		exec_row_release(&row);
	}
	PQclear(res);
	return n;
}

static int pg_count_by_status(struct store *base,
                              void (*fn)(const char *status, int64_t n, void *arg), void *arg,
                              struct strbuf *err)
{
	struct pg_store *st = pg(base);
	PGresult *res = NULL;
	int r = query(st,
	              "SELECT status, count(*) FROM executions GROUP BY status "
	              "UNION ALL SELECT 'WAITING', count(*) FROM executions "
	              "WHERE status = 'RUNNING' AND waiting IS NOT NULL",
	              NULL, &res, "counting executions", err);
	if (r < 0)
		return r;
	for (int i = 0; i < PQntuples(res); i++)
		fn(PQgetvalue(res, i, 0), get_int(res, i, 1), arg);
	PQclear(res);
	return 0;
}

static int pg_unfinished(struct store *base, char ***ret_ids, size_t *ret_n, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	PGresult *res = NULL;
	int r = query(st, "SELECT id FROM executions WHERE status = 'RUNNING' ORDER BY created_ms",
	              NULL, &res, "listing unfinished executions", err);
	if (r < 0)
		return r;
	size_t n = (size_t)PQntuples(res);
	char **ids = xcalloc(n ? n : 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++)
		ids[i] = get_text(res, (int)i, 0);
	PQclear(res);
	if (n == 0) {
		free(ids);
		ids = NULL;
	}
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

/* ---- leases ---------------------------------------------------------------------- */

/* Of a lease row read as (owner, host, pid, expires_ms): true if a live
 * process other than owner holds it at now (the database's clock): not
 * free, not expired, its holder not known dead. */
static bool held_by_other(struct pg_store *st, const PGresult *res, const char *owner, int64_t now)
{
	const char *holder = PQgetvalue(res, 0, 0);
	return *holder && strcmp(holder, owner) != 0 && get_int(res, 0, 3) >= now &&
	       !store_owner_dead(&st->base, PQgetvalue(res, 0, 1), (pid_t)get_int(res, 0, 2));
}

/*
 * Takes the lease: the row is made if missing (a placeholder nobody holds),
 * locked, checked, and given to owner. The fence stays when owner renews
 * its own live lease, and takes the next value of the lease_fence sequence
 * in every other case (another owner, a free or expired lease), so it
 * never repeats, even after a release deleted the row. A row another
 * session holds locked (its own take in progress) answers SP_EBUSY at once
 * (NOWAIT): no caller waits for it on its loop.
 */
static int pg_lease_take(struct store *base, const char *id, const char *owner, int64_t now,
                         int64_t ttl_ms, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = begin(st, err);
	if (r == 0)
		r = lease_clock(st, now, &now, err);
	if (r < 0)
		return finish(st, r, err);
	struct params p = { 0 };
	p_text(&p, id);
	r = run(st,
	        "INSERT INTO leases (execution_id, owner, host, pid, expires_ms, fence) VALUES "
	        "($1::text, '', '', 0, 0, 0) ON CONFLICT (execution_id) DO NOTHING",
	        &p, NULL, "taking a lease", err);
	PGresult *res = NULL;
	if (r == 0)
		r = run(st,
		        "SELECT owner, host, pid, expires_ms FROM leases WHERE execution_id = "
		        "$1::text FOR UPDATE NOWAIT",
		        &p, &res, "taking a lease", err);
	bool keep = false;
	if (r == 0 && PQntuples(res) == 1) {
		const char *holder = PQgetvalue(res, 0, 0);
		int64_t expires = get_int(res, 0, 3);
		keep = !strcmp(holder, owner) && expires >= now;
		if (held_by_other(st, res, owner, now)) {
			if (err)
				strbuf_addf(
				    err,
				    "execution %s is run by another steppy process (%s, pid %lld)",
				    id, PQgetvalue(res, 0, 1), (long long)get_int(res, 0, 2));
			r = SP_EBUSY;
		}
	}
	PQclear(res);
	res = NULL;
	if (r == 0) {
		struct params u = { 0 };
		p_text(&u, id);
		p_text(&u, owner);
		p_text(&u, st->base.host);
		p_int(&u, getpid());
		p_int(&u, now + ttl_ms);
		p_text(&u, keep ? "true" : "false");
		r = run(st,
		        "UPDATE leases SET owner = $2::text, host = $3::text, pid = $4::bigint, "
		        "expires_ms = $5::bigint, fence = CASE WHEN $6::boolean THEN fence ELSE "
		        "nextval('lease_fence') END WHERE execution_id = $1::text RETURNING fence",
		        &u, &res, "taking a lease", err);
	}
	int64_t fence = r == 0 && PQntuples(res) == 1 ? get_int(res, 0, 0) : 0;
	PQclear(res);
	r = finish(st, r, err);
	if (r == 0)
		fence_remember(st, id, fence);
	return r;
}

/*
 * One statement, which never waits for a row lock: a lease row another
 * session holds locked (a take in progress, paused or slow; someone's
 * psql) is skipped (SKIP LOCKED) and not renewed this round, instead of
 * stalling the renewal of every lease of this node until the fence stops
 * all its commands. A skipped lease is not lost: nobody can take it while
 * the lock is held, and the locker's transaction ends or is ended
 * (idle_in_transaction_session_timeout); but it is not proven either, and
 * the caller learns which leases were renewed (renewed) to stop the local
 * work of the others in time.
 */
static int pg_lease_renew(struct store *base, const char *owner, int64_t now, int64_t ttl_ms,
                          void (*renewed)(const char *id, void *arg), void *arg, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = ready(st, err);
	if (r == 0)
		r = lease_clock(st, now, &now, err);
	if (r < 0)
		return r;
	struct params p = { 0 };
	p_int(&p, now + ttl_ms);
	p_text(&p, owner);
	PGresult *res = NULL;
	r = run(st,
	        "UPDATE leases SET expires_ms = $1::bigint WHERE owner = $2::text AND "
	        "execution_id IN (SELECT execution_id FROM leases WHERE owner = $2::text "
	        "FOR UPDATE SKIP LOCKED) RETURNING execution_id",
	        &p, &res, "renewing leases", err);
	for (int i = 0; r == 0 && renewed && i < PQntuples(res); i++)
		renewed(PQgetvalue(res, i, 0), arg);
	PQclear(res);
	return r;
}

static int pg_lease_release(struct store *base, const char *id, const char *owner,
                            struct strbuf *err)
{
	struct pg_store *st = pg(base);
	fence_forget(st, id);
	struct params p = { 0 };
	p_text(&p, id);
	p_text(&p, owner);
	return query(st, "DELETE FROM leases WHERE execution_id = $1::text AND owner = $2::text",
	             &p, NULL, "releasing a lease", err);
}

static bool pg_lease_held_elsewhere(struct store *base, const char *id, const char *owner,
                                    int64_t now)
{
	struct pg_store *st = pg(base);
	if (ready(st, NULL) < 0 || lease_clock(st, now, &now, NULL) < 0)
		return false;
	struct params p = { 0 };
	p_text(&p, id);
	PGresult *res = NULL;
	if (run(st, "SELECT owner, host, pid, expires_ms FROM leases WHERE execution_id = $1::text",
	        &p, &res, "reading a lease", NULL) < 0)
		return false;
	bool held = PQntuples(res) == 1 && held_by_other(st, res, owner ? owner : "", now);
	PQclear(res);
	return held;
}

/* ---- inbox --------------------------------------------------------------------- */

static int pg_inbox_add(struct store *base, const char *execution_id, const char *kind,
                        json_t *data, int64_t now, int64_t *ret_id, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = begin(st, err);
	if (r < 0)
		return r;
	char *text = json_dumps(data, JSON_COMPACT);
	struct params p = { 0 };
	p_text(&p, execution_id);
	p_text(&p, kind);
	p_text(&p, text ? text : "{}");
	p_int(&p, now);
	PGresult *res = NULL;
	r = run(st,
	        "INSERT INTO inbox (execution_id, kind, data, created_ms) VALUES ($1::text, "
	        "$2::text, $3::text, $4::bigint) RETURNING id",
	        &p, &res, "sending a command", err);
	free(text);
	int64_t id = r == 0 ? get_int(res, 0, 0) : 0;
	PQclear(res);
	if (r == 0)
		r = notify(st, execution_id, err);
	r = finish(st, r, err);
	if (r == 0)
		*ret_id = id;
	return r;
}

static int pg_inbox_pending(struct store *base, const char *owner, struct inbox_cmd **ret,
                            size_t *ret_n, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, owner);
	PGresult *res = NULL;
	int r =
	    query(st,
	          "SELECT i.id, i.execution_id, i.kind, i.data FROM inbox i JOIN leases l ON "
	          "l.execution_id = i.execution_id WHERE i.done_ms IS NULL AND l.owner = $1::text "
	          "ORDER BY i.id",
	          &p, &res, "reading commands", err);
	if (r < 0)
		return r;
	size_t n = (size_t)PQntuples(res);
	struct inbox_cmd *cmds = n ? xcalloc(n, sizeof(*cmds)) : NULL;
	for (size_t i = 0; i < n; i++) {
		cmds[i].id = get_int(res, (int)i, 0);
		cmds[i].execution_id = get_text(res, (int)i, 1);
		cmds[i].kind = get_text(res, (int)i, 2);
		cmds[i].data = json_loads(PQgetvalue(res, (int)i, 3), 0, NULL);
		if (!cmds[i].data)
			cmds[i].data = json_object();
	}
	PQclear(res);
	*ret = cmds;
	*ret_n = n;
	return 0;
}

static int pg_inbox_withdraw(struct store *base, int64_t cmd_id, int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_int(&p, now);
	p_int(&p, cmd_id);
	PGresult *res = NULL;
	int r = query(st,
	              "UPDATE inbox SET done_ms = $1::bigint, result = 'withdrawn' WHERE id = "
	              "$2::bigint AND done_ms IS NULL",
	              &p, &res, "withdrawing a command", err);
	if (r == 0)
		r = affected(res);
	PQclear(res);
	return r;
}

static int pg_inbox_result(struct store *base, int64_t id, char **ret_result, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_int(&p, id);
	PGresult *res = NULL;
	int r = query(st, "SELECT done_ms, result FROM inbox WHERE id = $1::bigint", &p, &res,
	              "reading a command's result", err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		*ret_result = get_text(res, 0, 1);
		r = 1;
	}
	PQclear(res);
	return r;
}

/* ---- approval and personal links ---------------------------------------------- */

/* Inserts a link row (on a connection made ready); a token that exists already (a 256-bit
 * collision, or a bug) is a store error, never a conflict a caller could retry. */
static int insert_link(struct pg_store *st, const char *sql, struct params *p, const char *what,
                       struct strbuf *err)
{
	int r = query(st, sql, p, NULL, what, err);
	if (r == SP_ECONFLICT) {
		if (err)
			strbuf_addf(err, "%s: the token exists already", what);
		r = SP_ESTORE;
	}
	return r;
}

static int pg_approval_link_add(struct store *base, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_bytes(&p, hash, 32);
	p_text(&p, execution_id);
	p_int(&p, stage);
	p_int(&p, step);
	p_int(&p, attempt);
	p_int(&p, now);
	return insert_link(st,
	                   "INSERT INTO approval_links (token_sha256, execution_id, stage, step, "
	                   "attempt, created_ms) VALUES ($1::bytea, $2::text, $3::int, $4::int, "
	                   "$5::int, $6::bigint)",
	                   &p, "recording an approval link", err);
}

/* Reads a link row whose first columns are execution_id, stage, step,
 * attempt, created_ms: 0 with *ret_res (caller clears), SP_ENOENT, SP_ESTORE. */
static int link_find(struct pg_store *st, const char *sql, const unsigned char hash[32],
                     struct approval_link *out, PGresult **ret_res, const char *what,
                     struct strbuf *err)
{
	struct params p = { 0 };
	p_bytes(&p, hash, 32);
	PGresult *res = NULL;
	int r = query(st, sql, &p, &res, what, err);
	if (r < 0)
		return r;
	if (PQntuples(res) != 1) {
		PQclear(res);
		return SP_ENOENT;
	}
	out->execution_id = get_text(res, 0, 0);
	out->stage = (int)get_int(res, 0, 1);
	out->step = (int)get_int(res, 0, 2);
	out->attempt = (int)get_int(res, 0, 3);
	out->created_ms = get_int(res, 0, 4);
	*ret_res = res;
	return 0;
}

static int pg_approval_link_find(struct store *base, const unsigned char hash[32],
                                 struct approval_link *out, struct strbuf *err)
{
	PGresult *res = NULL;
	int r = link_find(pg(base),
	                  "SELECT execution_id, stage, step, attempt, created_ms FROM "
	                  "approval_links WHERE token_sha256 = $1::bytea",
	                  hash, out, &res, "reading an approval link", err);
	PQclear(res);
	return r;
}

static int pg_approval_link_replace(struct store *base, const unsigned char hash[32],
                                    const char *execution_id, int stage, int step, int attempt,
                                    int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = begin(st, err);
	if (r < 0)
		return r;
	struct params p = { 0 };
	p_text(&p, execution_id);
	p_int(&p, stage);
	p_int(&p, step);
	p_int(&p, attempt);
	r = run(st,
	        "DELETE FROM approval_links WHERE execution_id = $1::text AND stage = $2::int "
	        "AND step = $3::int AND attempt = $4::int",
	        &p, NULL, "removing approval links", err);
	if (r == 0)
		r = pg_approval_link_add(base, hash, execution_id, stage, step, attempt, now, err);
	return finish(st, r, err);
}

static bool pg_approval_link_exists(struct store *base, const char *execution_id, int stage,
                                    int step, int attempt)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, execution_id);
	p_int(&p, stage);
	p_int(&p, step);
	p_int(&p, attempt);
	PGresult *res = NULL;
	if (query(st,
	          "SELECT 1 FROM approval_links WHERE execution_id = $1::text AND stage = $2::int "
	          "AND step = $3::int AND attempt = $4::int",
	          &p, &res, "reading approval links", NULL) < 0)
		return false;
	bool found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

static int pg_personal_link_add(struct store *base, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                const char *person, int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_bytes(&p, hash, 32);
	p_text(&p, execution_id);
	p_int(&p, stage);
	p_int(&p, step);
	p_int(&p, attempt);
	p_text(&p, person);
	p_int(&p, now);
	return insert_link(st,
	                   "INSERT INTO personal_links (token_sha256, execution_id, stage, step, "
	                   "attempt, person, created_ms) VALUES ($1::bytea, $2::text, $3::int, "
	                   "$4::int, $5::int, $6::text, $7::bigint)",
	                   &p, "recording a personal link", err);
}

static int pg_personal_link_find(struct store *base, const unsigned char hash[32],
                                 struct personal_link *out, struct strbuf *err)
{
	PGresult *res = NULL;
	struct approval_link link;
	int r = link_find(pg(base),
	                  "SELECT execution_id, stage, step, attempt, created_ms, person, used_ms "
	                  "FROM personal_links WHERE token_sha256 = $1::bytea",
	                  hash, &link, &res, "reading a personal link", err);
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		out->link = link;
		out->person = get_text(res, 0, 5);
		out->used_ms = get_int(res, 0, 6);
	}
	PQclear(res);
	return r;
}

static int pg_personal_link_use(struct store *base, const unsigned char hash[32], bool used,
                                int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_int(&p, now);
	p_bytes(&p, hash, 32);
	PGresult *res = NULL;
	int r =
	    query(st,
	          used ? "UPDATE personal_links SET used_ms = $1::bigint WHERE token_sha256 = "
	                 "$2::bytea AND used_ms IS NULL"
	               : "UPDATE personal_links SET used_ms = NULL WHERE used_ms = $1::bigint AND "
	                 "token_sha256 = $2::bytea",
	          &p, &res, "using a personal link", err);
	if (r == 0)
		r = affected(res) > 0;
	PQclear(res);
	return r;
}

/* ---- settings, inbox files ------------------------------------------------------ */

/* A lookup of one text value by key: 0/1 found, or SP_ESTORE. */
static int lookup(struct pg_store *st, const char *sql, const char *key, char **ret,
                  const char *what, struct strbuf *err)
{
	struct params p = { 0 };
	p_text(&p, key);
	PGresult *res = NULL;
	int r = query(st, sql, &p, &res, what, err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1) {
		*ret = get_text(res, 0, 0);
		r = 1;
	}
	PQclear(res);
	return r;
}

static int pg_meta_get(struct store *base, const char *key, char **ret_value, struct strbuf *err)
{
	int r = lookup(pg(base), "SELECT value FROM meta WHERE key = $1::text", key, ret_value,
	               "reading the store's settings", err);
	return r < 0 ? r : r == 1 ? 0 : SP_ENOENT;
}

static int pg_meta_set(struct store *base, const char *key, const char *value, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, key);
	if (value)
		p_text(&p, value);
	return query(st,
	             value ? "INSERT INTO meta (key, value) VALUES ($1::text, $2::text) "
	                     "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
	                   : "DELETE FROM meta WHERE key = $1::text",
	             &p, NULL, "writing the store's settings", err);
}

static int pg_inbox_file_get(struct store *base, const char *version, char **ret_status,
                             struct strbuf *err)
{
	return lookup(pg(base), "SELECT status FROM inbox_files WHERE version = $1::text", version,
	              ret_status, "reading the inbox files", err);
}

static int pg_inbox_file_put(struct store *base, const char *version, const char *status,
                             int64_t now, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	struct params p = { 0 };
	p_text(&p, version);
	p_text(&p, status);
	p_int(&p, now);
	return query(st,
	             "INSERT INTO inbox_files (version, status, created_ms) VALUES ($1::text, "
	             "$2::text, $3::bigint) ON CONFLICT (version) DO UPDATE SET status = "
	             "EXCLUDED.status, created_ms = EXCLUDED.created_ms",
	             &p, NULL, "recording an inbox file", err);
}

/* ---- the secret key's fingerprint ------------------------------------------------ */

static int pg_key_record(struct store *base, const char *fp, int64_t now, char **ret,
                         struct strbuf *err)
{
	struct pg_store *st = pg(base);
	*ret = NULL;
	int r = ready(st, err);
	if (r == 0 && fp) {
		struct params p = { 0 };
		p_text(&p, fp);
		p_int(&p, now);
		r = run(
		    st,
		    "INSERT INTO secret_key (one, fingerprint, created_ms) VALUES (1, $1::text, "
		    "$2::bigint) ON CONFLICT (one) DO NOTHING",
		    &p, NULL, "recording the secret key's fingerprint", err);
	}
	if (r < 0)
		return r;
	return lookup(st, "SELECT fingerprint FROM secret_key WHERE one = $1::int", "1", ret,
	              "reading the secret key's fingerprint", err) < 0
	           ? SP_ESTORE
	           : 0;
}

static int pg_sealed_sample(struct store *base, char **ret_id, unsigned char **ret_box,
                            size_t *ret_len, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = ready(st, err);
	PGresult *res = NULL;
	if (r == 0)
		r = run(
		    st,
		    "SELECT execution_id, box FROM sealed_secrets ORDER BY execution_id LIMIT 1",
		    NULL, &res, "reading sealed secrets", err);
	if (r < 0)
		return r;
	if (PQntuples(res) == 1) {
		size_t len = 0;
		unsigned char *raw =
		    PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &len);
		if (raw) {
			*ret_id = get_text(res, 0, 0);
			*ret_box = (unsigned char *)xmemdup0(raw, len);
			*ret_len = len;
			PQfreemem(raw);
			r = 1;
		} else {
			r = pq_error(st, res, "reading sealed secrets", err);
		}
	}
	PQclear(res);
	return r;
}

/* ---- waiting -------------------------------------------------------------------- */

/* lock_timeout is the wait for another writer's row lock (SQLite's busy
 * timeout); statement_timeout stays 10 s, or ms when longer. */
static void pg_busy_timeout(struct store *base, int ms)
{
	struct pg_store *st = pg(base);
	st->lock_timeout = ms < 1 ? 1 : ms;
	if (PQstatus(st->conn) == CONNECTION_OK)
		session_setup(st, NULL);
}

static int64_t pg_data_version(struct store *base)
{
	struct pg_store *st = pg(base);
	if (ready(st, NULL) < 0)
		return st->version;
	st->listened = mono_ms();
	if (!st->listening) {
		/* What other connections wrote while this one did not listen was
		 * not counted: the version moves, so that the caller reads again. */
		st->version++;
		st->listening = true;
		if (simple(st, LISTEN_SQL, NULL) < 0)
			st->listening = false;
	}
	if (PQconsumeInput(st->conn) == 0)
		st->version++; /* the connection broke: ready() resets it next time */
	drain_notifies(st);
	return st->version;
}

/* One cheap statement, so that a listening connection is never idle long
 * enough to be reconnected (LISTENER_STALE_MS) or cut (LISTEN_SQL); ready()
 * before it resets a connection found broken, moving the version. */
static int pg_keep_alive(struct store *base, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	int r = ready(st, err);
	if (r == 0)
		r = simple(st, "SELECT 1", err);
	drain_notifies(st);
	return r;
}

/* ---- store_copy() into PostgreSQL ------------------------------------------------ */

static int pg_copy_begin(struct store *base, struct store_copy_run *cr, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	PGresult *res = NULL;
	int r = ready(st, err);
	if (r == 0)
		r = run(st, "SELECT count(*) FROM executions", NULL, &res, "counting executions",
		        err);
	if (r < 0)
		return r;
	int64_t n = get_int(res, 0, 0);
	PQclear(res);
	/* Which leases of the target still hold: by the database's clock, as
	 * the nodes judge them, not this machine's. */
	r = lease_clock(st, cr->o->now, &st->copy_now, err);
	if (r < 0)
		return r;
	if (n > 0 && !cr->o->force) {
		if (err)
			strbuf_addf(
			    err,
			    "%s holds %lld release%s already; --force copies into it anyway "
			    "(a release in both is left, or replaced whole when the source "
			    "went on)",
			    st->display, (long long)n, n == 1 ? "" : "s");
		return SP_EINVAL;
	}
	return begin(st, err);
}

/* A plain INSERT of a copied row (constant names from store.c's list; the
 * values are parameters, typed by their columns); a key already there is
 * an error unless keep_existing. */
static int copy_insert(struct pg_store *st, const struct store_table *t,
                       const struct store_value *vals, bool keep_existing, struct strbuf *err)
{
	struct strbuf sql = STRBUF_INIT;
	strbuf_addf(&sql, "INSERT INTO %s (", t->name);
	for (size_t i = 0; i < t->ncols; i++)
		strbuf_addf(&sql, "%s%s", i ? ", " : "", t->cols[i]);
	strbuf_addstr(&sql, ") VALUES (");
	for (size_t i = 0; i < t->ncols; i++)
		strbuf_addf(&sql, "%s$%zu", i ? ", " : "", i + 1);
	strbuf_addstr(&sql, keep_existing ? ") ON CONFLICT DO NOTHING" : ")");
	struct params p = { 0 };
	for (size_t i = 0; i < t->ncols && i < MAX_PARAMS; i++) {
		if (vals[i].p && (t->blobs & (1u << i)))
			p_bytes(&p, vals[i].p, vals[i].len);
		else
			p_text(&p, vals[i].p);
	}
	char what[96];
	snprintf(what, sizeof(what), "copying into %s", t->name);
	int r = run(st, sql.buf, &p, NULL, what, err);
	strbuf_release(&sql);
	return r;
}

/* The executions row of a release: new, the same as dst's (kept), longer
 * than dst's (dst's replaced whole), or refused (dst's went on). */
static int copy_execution(struct pg_store *st, struct store_copy_run *cr,
                          const struct store_table *t, const struct store_value *vals,
                          struct strbuf *err)
{
	const char *id = vals[0].p;
	int64_t updated = vals[2].p ? strtoll(vals[2].p, NULL, 10) : 0;
	int64_t last = vals[8].p ? strtoll(vals[8].p, NULL, 10) : 0;
	struct params p = { 0 };
	p_text(&p, id);
	PGresult *res = NULL;
	int r = run(st,
	            "SELECT last_seq, updated_ms, (SELECT expires_ms FROM leases WHERE "
	            "execution_id = $1::text) FROM executions WHERE id = $1::text",
	            &p, &res, "reading the release to copy over", err);
	if (r < 0)
		return r;
	bool there = PQntuples(res) > 0;
	int64_t there_last = there ? get_int(res, 0, 0) : 0;
	int64_t there_updated = there ? get_int(res, 0, 1) : 0;
	int64_t lease = there && !PQgetisnull(res, 0, 2) ? get_int(res, 0, 2) : 0;
	PQclear(res);
	if (!there) {
		cr->n.copied++;
		return copy_insert(st, t, vals, false, err);
	}
	if (there_last == last && there_updated == updated) {
		cr->n.unchanged++;
		store_copy_keep(cr, id);
		return 0;
	}
	if (there_last >= last) {
		if (err)
			strbuf_addf(
			    err,
			    "release %s %s %s (%lld events there, %lld in the source): copying "
			    "over it would lose events; nothing was copied",
			    id, there_last > last ? "went further in" : "differs in", st->display,
			    (long long)there_last, (long long)last);
		return SP_ECONFLICT;
	}
	if (lease > st->copy_now) {
		if (err)
			strbuf_addf(err,
			            "release %s is run from %s now (its lease holds): it is not "
			            "replaced under a running process; nothing was copied",
			            id, st->display);
		return SP_EBUSY;
	}
	/* Replaced whole, in this transaction: nothing of dst's copy stays to
	 * disagree with the source's history. */
	static const char *const drop[] = {
		"DELETE FROM events WHERE execution_id = $1::text",
		"DELETE FROM approval_links WHERE execution_id = $1::text",
		"DELETE FROM personal_links WHERE execution_id = $1::text",
		"DELETE FROM sealed_secrets WHERE execution_id = $1::text",
		"DELETE FROM leases WHERE execution_id = $1::text",
		"DELETE FROM executions WHERE id = $1::text",
	};
	/* Its last event there must come again from the source (checked as
	 * the events are copied): else both went on apart. */
	struct params q = { 0 };
	p_text(&q, id);
	p_int(&q, there_last);
	r = run(st,
	        "SELECT time_ms, type, data FROM events WHERE execution_id = $1::text AND seq = "
	        "$2::bigint",
	        &q, &res, "reading the release to replace", err);
	if (r < 0)
		return r;
	if (PQntuples(res) > 0)
		store_copy_tail_add(cr, id, there_last, PQgetvalue(res, 0, 0),
		                    PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2));
	PQclear(res);
	for (size_t i = 0; i < sizeof(drop) / sizeof(*drop) && r == 0; i++)
		r = run(st, drop[i], &p, NULL, "removing the release to replace", err);
	if (r == 0) {
		cr->n.replaced++;
		r = copy_insert(st, t, vals, false, err);
	}
	return r;
}

/* An inbox command: under its id; already there (the same id, or another
 * id with the same release, kind, data and time); or, when dst used its id
 * for another command, later under a new id. */
static int copy_command(struct pg_store *st, struct store_copy_run *cr, const struct store_table *t,
                        const struct store_value *vals, struct strbuf *err)
{
	struct params p = { 0 };
	for (size_t i = 0; i < 5; i++)
		p_text(&p, vals[i].p);
	PGresult *res = NULL;
	int r = run(st,
	            "SELECT bool_or(id = $1::bigint), bool_or(execution_id = $2::text AND kind = "
	            "$3::text AND data = $4::text AND created_ms = $5::bigint) FROM inbox WHERE "
	            "id = $1::bigint OR (execution_id = $2::text AND kind = $3::text AND data = "
	            "$4::text AND created_ms = $5::bigint)",
	            &p, &res, "reading the inbox to copy into it", err);
	if (r < 0)
		return r;
	bool id_used = !PQgetisnull(res, 0, 0) && !strcmp(PQgetvalue(res, 0, 0), "t");
	bool same = !PQgetisnull(res, 0, 1) && !strcmp(PQgetvalue(res, 0, 1), "t");
	PQclear(res);
	if (same) {
		cr->n.commands_there++;
		return 0;
	}
	if (id_used) {
		store_copy_later(cr, vals);
		return 0;
	}
	cr->n.commands++;
	return copy_insert(st, t, vals, false, err);
}

static bool same_text(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* The column execution_id of t, or -1. */
static int release_column(const struct store_table *t)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (!strcmp(t->cols[i], "execution_id"))
			return (int)i;
	return -1;
}

static int pg_copy_row(struct store *base, struct store_copy_run *cr, const struct store_table *t,
                       const struct store_value *vals, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	if (!strcmp(t->name, "executions"))
		return copy_execution(st, cr, t, vals, err);
	if (!strcmp(t->name, "inbox"))
		return copy_command(st, cr, t, vals, err);
	/* Settings and inbox file versions dst has stay. */
	if (!strcmp(t->name, "meta") || !strcmp(t->name, "inbox_files"))
		return copy_insert(st, t, vals, true, err);
	/* The rest belongs to one release: skipped when dst keeps its own. */
	int col = release_column(t);
	if (col >= 0 && store_copy_kept(cr, vals[col].p))
		return 0;
	if (!strcmp(t->name, "events")) {
		const struct store_copy_tail *tail = store_copy_tail_of(cr, vals[0].p);
		if (tail && vals[1].p && strtoll(vals[1].p, NULL, 10) == tail->seq &&
		    !(same_text(vals[2].p, tail->time_ms) && same_text(vals[3].p, tail->type) &&
		      same_text(vals[7].p, tail->data))) {
			if (err)
				strbuf_addf(
				    err,
				    "release %s differs in %s: its event %lld there is not "
				    "the source's (it went on apart in both); copying over it "
				    "would lose events; nothing was copied",
				    tail->id, st->display, (long long)tail->seq);
			return SP_ECONFLICT;
		}
	}
	return copy_insert(st, t, vals, false, err);
}

static int pg_copy_end(struct store *base, struct store_copy_run *cr, int r, struct strbuf *err)
{
	struct pg_store *st = pg(base);
	/* New commands are numbered after the copied ones. */
	if (r == 0)
		r = run(st,
		        "SELECT setval(pg_get_serial_sequence('inbox', 'id'), GREATEST((SELECT "
		        "max(id) FROM inbox), 1))",
		        NULL, NULL, "numbering the inbox", err);
	for (size_t i = 0; i < cr->nlater && r == 0; i++) {
		struct params p = { 0 };
		for (size_t j = 0; j < STORE_COPY_INBOX_COLS; j++)
			p_text(&p, cr->later[i][j]);
		r = run(st,
		        "INSERT INTO inbox (execution_id, kind, data, created_ms, done_ms, result) "
		        "VALUES ($1, $2, $3, $4, $5, $6)",
		        &p, NULL, "copying into inbox under a new id", err);
		if (r == 0)
			cr->n.renumbered++;
	}
	if (r == 0)
		r = notify(st, "", err);
	return finish(st, r, err);
}

const struct store_ops store_pg_ops = {
	.name = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.check = pg_check,
	.key_record = pg_key_record,
	.sealed_sample = pg_sealed_sample,
	.schema_version = pg_schema_version,
	.backup = pg_backup,
	.create = pg_create,
	.append = pg_append,
	.history = pg_history,
	.get_exact = pg_get_exact,
	.get_prefix = pg_get_prefix,
	.list = pg_list,
	.lease_take = pg_lease_take,
	.lease_renew = pg_lease_renew,
	.lease_release = pg_lease_release,
	.lease_held_elsewhere = pg_lease_held_elsewhere,
	.count_by_status = pg_count_by_status,
	.unfinished = pg_unfinished,
	.inbox_add = pg_inbox_add,
	.inbox_pending = pg_inbox_pending,
	.inbox_withdraw = pg_inbox_withdraw,
	.inbox_result = pg_inbox_result,
	.approval_link_add = pg_approval_link_add,
	.approval_link_find = pg_approval_link_find,
	.approval_link_replace = pg_approval_link_replace,
	.approval_link_exists = pg_approval_link_exists,
	.meta_get = pg_meta_get,
	.meta_set = pg_meta_set,
	.inbox_file_get = pg_inbox_file_get,
	.inbox_file_put = pg_inbox_file_put,
	.personal_link_add = pg_personal_link_add,
	.personal_link_find = pg_personal_link_find,
	.personal_link_use = pg_personal_link_use,
	.busy_timeout = pg_busy_timeout,
	.data_version = pg_data_version,
	.keep_alive = pg_keep_alive,
	.copy_begin = pg_copy_begin,
	.copy_row = pg_copy_row,
	.copy_end = pg_copy_end,
};
