/*
 * store-sqlite.c - the store in one SQLite file (see store.h).
 *
 * WAL journal, synchronous=FULL, busy timeout of 10 s for the moments two
 * processes write at once. Writes are BEGIN IMMEDIATE transactions, so a
 * check (the lease) and the write that depends on it cannot be split by
 * another writer.
 */
#include "store/store-backend.h"

#include "plan/doc-json.h"
#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The store's schema version (meta key "schema"): bumped with every change
 * of the tables, each change a step in `migrations` below. A store of an
 * older version is migrated forward at open; one of a newer version (a
 * newer steppy wrote it) is refused, never changed. */
#define SCHEMA_VERSION 2

/* The SQLite handle: the shared part first (store-backend.h). */
struct sq_store {
	struct store base;
	sqlite3 *db;                /* one connection, used by one thread at a time */
	sqlite3_stmt *data_version; /* PRAGMA data_version, kept: asked per API read */
};

static struct sq_store *sq(struct store *st)
{
	return (struct sq_store *)st;
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS executions ("
    "  id TEXT PRIMARY KEY,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  plan_name TEXT, environment TEXT, plan_file TEXT, started_by TEXT,"
    "  last_seq INTEGER NOT NULL,"
    "  next_due_ms INTEGER NOT NULL DEFAULT 0,"
    "  waiting TEXT);"
    "CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, created_ms);"
    "CREATE INDEX IF NOT EXISTS executions_by_created ON executions (created_ms);"
    "CREATE TABLE IF NOT EXISTS events ("
    "  execution_id TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  time_ms INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY (execution_id, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS leases ("
    "  execution_id TEXT PRIMARY KEY,"
    "  owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS inbox ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  execution_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  done_ms INTEGER, result TEXT);"
    "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (execution_id) WHERE done_ms IS NULL;"
    "CREATE TABLE IF NOT EXISTS approval_links ("
    "  token_sha256 BLOB PRIMARY KEY,"
    "  execution_id TEXT NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS inbox_files ("
    "  version TEXT PRIMARY KEY,"
    "  status TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS personal_links ("
    "  token_sha256 BLOB PRIMARY KEY,"
    "  execution_id TEXT NOT NULL,"
    "  stage INTEGER NOT NULL, step INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  person TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL, used_ms INTEGER) WITHOUT ROWID;";

/* Sealed secrets (see "sealed secrets" below): one encrypted box per execution. */
static const char sealed_schema[] = "CREATE TABLE IF NOT EXISTS sealed_secrets ("
                                    "  execution_id TEXT PRIMARY KEY,"
                                    "  box BLOB NOT NULL) WITHOUT ROWID;";

/* The fingerprint of the secret key that seals the store's secrets
 * (store_key_check): one row, from schema 2. */
static const char key_schema[] = "CREATE TABLE IF NOT EXISTS secret_key ("
                                 "  one INTEGER PRIMARY KEY CHECK (one = 1),"
                                 "  fingerprint TEXT NOT NULL,"
                                 "  created_ms INTEGER NOT NULL);";

static int db_error(struct sq_store *st, struct strbuf *err, const char *what)
{
	if (err)
		strbuf_addf(err, "%s: %s", what, sqlite3_errmsg(st->db));
	return SP_ESTORE;
}

static int exec_sql(struct sq_store *st, const char *sql, struct strbuf *err)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (err)
			strbuf_addf(err, "%s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return SP_ESTORE;
	}
	return 0;
}

static sqlite3_stmt *prepare(struct sq_store *st, const char *sql, struct strbuf *err)
{
	sqlite3_stmt *stmt = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		db_error(st, err, "preparing a query");
		return NULL;
	}
	return stmt;
}

static char *col_text(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);
	return t ? xstrdup((const char *)t) : NULL;
}

static void bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(stmt, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(stmt, i);
}

/* ---- file permissions ------------------------------------------------------ */

/*
 * Creates the store file 0600 (whatever the umask) if it does not exist, so
 * that SQLite opens a private file: it gives the -wal and -shm files the
 * mode of the main file. An existing file keeps its mode. Returns 0 or
 * SP_ESTORE with err filled.
 */
static int create_private_file(const char *path, struct strbuf *err)
{
	if (!strcmp(path, ":memory:") || !strncmp(path, "file:", 5))
		return 0;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		struct stat target;
		if (errno == EEXIST && stat(path, &target) == 0)
			return 0; /* there is a store (or a link to one) */
		if (errno == EEXIST || errno == ENOENT) {
			/* a link to nothing: SQLite would create its target with the umask's mode
			 */
			if (err)
				strbuf_addf(
				    err,
				    "cannot open %s: it is a symbolic link to a file that does not "
				    "exist (steppy does not create a store through a link)",
				    path);
		} else if (err) {
			strbuf_addf(err, "cannot open %s: %s", path, strerror(errno));
		}
		return SP_ESTORE;
	}
	int r = fchmod(fd, 0600) < 0 ? SP_ESTORE : 0; /* the umask may have taken bits */
	if (r < 0 && err)
		strbuf_addf(err, "cannot make %s private: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* True for the answers that mean "another connection is in the way". */
static bool busy_code(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* Sleeps before retry number `round` (0, 1, ...): 1 ms doubling up to 100 ms,
 * with jitter so that processes that collided do not collide again. */
static void busy_backoff(int round)
{
	long ms = round < 7 ? 1L << round : 100;
	long us = ms * 1000 / 2 + (long)((unsigned)rand() % (unsigned)(ms * 1000 / 2 + 1));
	usleep((useconds_t)us);
}

#define OPEN_RETRY_MS 10000

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Switches the file to WAL. SQLite answers SQLITE_BUSY at once, without
 * its busy handler, while another connection is creating the same new
 * file: retried with backoff. Journal mode reads back as "wal" when done.
 */
static int set_wal(struct sq_store *st, const char *path, struct strbuf *err)
{
	int64_t deadline = mono_ms() + OPEN_RETRY_MS;
	for (int round = 0;; round++) {
		sqlite3_stmt *stmt = NULL;
		int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &stmt, NULL);
		bool wal = false;
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(stmt);
			if (rc == SQLITE_ROW) {
				const unsigned char *mode = sqlite3_column_text(stmt, 0);
				wal = mode && !strcmp((const char *)mode, "wal");
				rc = SQLITE_OK;
			}
		}
		sqlite3_finalize(stmt);
		if (wal)
			return 0;
		if ((rc != SQLITE_OK && !busy_code(rc)) || mono_ms() > deadline) {
			if (err)
				strbuf_addf(err, "cannot open store %s: %s", path,
				            sqlite3_errmsg(st->db));
			return SP_ESTORE;
		}
		busy_backoff(round);
	}
}

/*
 * The steps from one schema version to the next: migrations[i] takes a
 * store of version i (0: a new file) to version i + 1. Each is idempotent
 * (IF NOT EXISTS), so a store stamped 1 before its later tables existed
 * gets them too. A new version appends one entry and bumps SCHEMA_VERSION.
 */
static const char *const migrations[SCHEMA_VERSION][2] = {
	{ schema, sealed_schema }, /* 0 -> 1 */
	{ key_schema, NULL },      /* 1 -> 2 */
};

/*
 * Reads the schema version of the open file: 1 and *ret (0 for a file
 * without steppy's tables yet), or SP_ESTORE with the reason in err (not a
 * number, unreadable).
 */
static int read_schema_version(struct sq_store *st, const char *path, int *ret, struct strbuf *err)
{
	sqlite3_stmt *stmt = NULL;
	int rc =
	    sqlite3_prepare_v2(st->db,
	                       "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table' "
	                       "AND name = 'meta'), (SELECT count(*) FROM sqlite_master)",
	                       -1, &stmt, NULL);
	bool have_meta = false;
	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		have_meta = sqlite3_column_int(stmt, 0) > 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_OK) {
		if (err)
			strbuf_addf(err, "cannot read store %s: %s", path, sqlite3_errmsg(st->db));
		return busy_code(rc) ? SP_EBUSY : SP_ESTORE;
	}
	*ret = 0;
	if (!have_meta)
		return 1;
	stmt = NULL;
	rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &stmt,
	                        NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(stmt, 0);
		char *end = NULL;
		long n = v ? strtol(v, &end, 10) : -1;
		if (!v || end == v || *end || n < 1 || n > 1000000) {
			if (err)
				strbuf_addf(err,
				            "%s has store schema \"%s\", which is not a version",
				            path, v ? v : "");
			sqlite3_finalize(stmt);
			return SP_ESTORE;
		}
		*ret = (int)n;
		rc = SQLITE_DONE;
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		if (err)
			strbuf_addf(err, "cannot read store %s: %s", path, sqlite3_errmsg(st->db));
		return busy_code(rc) ? SP_EBUSY : SP_ESTORE;
	}
	return 1;
}

/* SP_ESTORE with the message for a store a newer steppy wrote. */
static int newer_schema(const char *path, int version, struct strbuf *err)
{
	if (err)
		strbuf_addf(err,
		            "%s was written by a newer steppy (store schema %d; this steppy knows "
		            "schemas up to %d): run that version or a newer one; this one does "
		            "not change the file",
		            path, version, SCHEMA_VERSION);
	return SP_ESTORE;
}

/* Says why store_open_existing() refuses a file without steppy's schema
 * (an empty file, another program's database): nothing is written to it. */
static int not_a_store(const char *path, struct strbuf *err)
{
	if (err)
		strbuf_addf(err,
		            "%s is not a steppy store (no steppy schema in it); this command "
		            "does not create one and did not change the file",
		            path);
	return SP_ESTORE;
}

/* Runs the migrations from version `from` to SCHEMA_VERSION and stamps the
 * version, inside the caller's transaction. Returns an SQLite code. */
static int migrate(struct sq_store *st, int from)
{
	int rc = SQLITE_OK;
	/* A store stamped with this version that lacks a table (made before
	 * it existed): every step again, each is idempotent. */
	if (from == SCHEMA_VERSION)
		from = 0;
	for (int v = from; v < SCHEMA_VERSION && rc == SQLITE_OK; v++)
		for (size_t i = 0; i < 2 && rc == SQLITE_OK && migrations[v][i]; i++)
			rc = sqlite3_exec(st->db, migrations[v][i], NULL, NULL, NULL);
	if (rc == SQLITE_OK) {
		char sql[128];
		snprintf(sql, sizeof(sql),
		         "INSERT INTO meta (key, value) VALUES ('schema', '%d') "
		         "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		         SCHEMA_VERSION);
		rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
	}
	return rc;
}

/*
 * Creates the schema if it is missing, migrates an older one forward and
 * refuses a newer one, in one write transaction. A "busy" anywhere in it
 * (another opener creating the same schema) rolls back and tries again
 * with backoff.
 */
static int init_schema(struct sq_store *st, const char *path, struct strbuf *err)
{
	/* A store in use has its schema: reading the version needs no write
	 * lock, so opening works while another process holds it. */
	sqlite3_stmt *probe = NULL;
	/* ... and every table of this version (these three came later: a store
	 * made before them gets them at its next open). */
	int found = -1;
	bool ready = sqlite3_prepare_v2(st->db,
	                                "SELECT value FROM meta WHERE key = 'schema' AND "
	                                "(SELECT count(*) FROM sqlite_master WHERE name IN "
	                                "('sealed_secrets', 'personal_links', 'inbox_files', "
	                                "'secret_key')) = 4",
	                                -1, &probe, NULL) == SQLITE_OK &&
	             sqlite3_step(probe) == SQLITE_ROW && sqlite3_column_text(probe, 0) &&
	             (found = atoi((const char *)sqlite3_column_text(probe, 0))) == SCHEMA_VERSION;
	sqlite3_finalize(probe);
	if (ready)
		return 0;
	if (found > SCHEMA_VERSION)
		return newer_schema(path, found, err);
	int64_t deadline = mono_ms() + OPEN_RETRY_MS;
	for (int round = 0;; round++) {
		struct strbuf e = STRBUF_INIT;
		int version = 0;
		int rc = sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
		if (rc == SQLITE_OK) {
			int r = read_schema_version(st, path, &version, &e);
			if (r == SP_EBUSY)
				rc = SQLITE_BUSY;
			else if (r < 0)
				rc = SQLITE_ERROR;
			else if (version > SCHEMA_VERSION)
				newer_schema(path, version, &e);
		}
		if (rc == SQLITE_OK && e.len == 0)
			rc = migrate(st, version);
		if (rc == SQLITE_OK && e.len == 0)
			rc = sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL);
		if (rc == SQLITE_OK && e.len == 0) {
			strbuf_release(&e);
			return 0;
		}
		if (rc != SQLITE_OK && busy_code(rc))
			strbuf_reset(&e);
		if (rc != SQLITE_OK && e.len == 0)
			strbuf_addf(&e, "cannot open store %s: %s", path, sqlite3_errmsg(st->db));
		if (!sqlite3_get_autocommit(st->db))
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		if (rc == SQLITE_OK || !busy_code(rc) || mono_ms() > deadline) {
			if (err)
				strbuf_add(err, e.buf, e.len);
			strbuf_release(&e);
			return SP_ESTORE;
		}
		strbuf_release(&e);
		busy_backoff(round);
	}
}

static void sq_close(struct store *base);

/* Opens path, creating the file if create; then WAL, pragmas and schema.
 * Without create, a missing file is SP_ENOENT ("no store at PATH"). */
static int sq_open(const char *path, bool create, struct store **ret, struct strbuf *err)
{
	struct stat sb;
	if (!create && stat(path, &sb) < 0 && errno == ENOENT) {
		if (err)
			strbuf_addf(err, "no store at %s", path);
		return SP_ENOENT;
	}
	if (create && create_private_file(path, err) < 0)
		return SP_ESTORE;

	struct sq_store *st = xcalloc(1, sizeof(*st));
	store_base_init(&st->base, &store_sqlite_ops);
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		if (err)
			strbuf_addf(err, "cannot open %s: %s", path,
			            st->db ? sqlite3_errmsg(st->db) : "out of memory");
		sq_close(&st->base);
		return SP_ESTORE;
	}
	sqlite3_busy_timeout(st->db, 10000);
	/* A newer steppy's store is refused before anything is written to it
	 * (switching to WAL writes its header). */
	int version = 0;
	struct strbuf verr = STRBUF_INIT;
	int r = read_schema_version(st, path, &version, &verr);
	if (r == SP_EBUSY) /* another opener is creating it: checked again below */
		r = 0;
	else if (r > 0 && version == 0 && !create)
		r = not_a_store(path, err);
	else if (r > 0)
		r = version > SCHEMA_VERSION ? newer_schema(path, version, err) : 0;
	else if (err)
		strbuf_add(err, verr.buf, verr.len);
	strbuf_release(&verr);
	if (r == 0)
		r = set_wal(st, path, err);
	if (r == 0)
		r = exec_sql(st, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err);
	if (r == 0)
		r = init_schema(st, path, err);
	if (r < 0) {
		if (err && err->len == 0)
			strbuf_addf(err, "cannot open store %s", path);
		sq_close(&st->base);
		return r;
	}
	*ret = &st->base;
	return 0;
}

static void sq_close(struct store *base)
{
	struct sq_store *st = sq(base);
	sqlite3_finalize(st->data_version);
	sqlite3_close(st->db);
	free(st);
}

/* ---- sealed secrets (store-secrets.c makes and opens the boxes) ------------ */

/* For an ExecutionStarted event about to be stored: seals its secrets into
 * sealed_secrets (in the caller's transaction); *ret_copy as
 * store_secrets_seal(). */
static int seal_secrets(struct sq_store *st, const char *id, const json_t *data, json_t **ret_copy,
                        struct strbuf *err)
{
	unsigned char *box = NULL;
	size_t box_len = 0;
	int r = store_secrets_seal(&st->base.key, id, data, ret_copy, &box, &box_len, err);
	if (r < 0 || !*ret_copy)
		return r;
	sqlite3_stmt *stmt = prepare(st,
	                             "INSERT OR REPLACE INTO sealed_secrets (execution_id, box) "
	                             "VALUES (?, ?)",
	                             err);
	if (!stmt)
		r = SP_ESTORE;
	if (r == 0) {
		bind_text(stmt, 1, id);
		sqlite3_bind_blob(stmt, 2, box, (int)box_len, SQLITE_TRANSIENT);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			r = db_error(st, err, "recording sealed secrets");
	}
	sqlite3_finalize(stmt);
	free(box);
	if (r < 0) {
		json_decref(*ret_copy);
		*ret_copy = NULL;
	}
	return r;
}

/* Puts the sealed secrets of execution id back into its ExecutionStarted data. */
static void unseal_secrets(struct sq_store *st, const char *id, json_t *data)
{
	sqlite3_stmt *stmt =
	    prepare(st, "SELECT box FROM sealed_secrets WHERE execution_id = ?", NULL);
	if (!stmt) {
		store_secrets_unseal(&st->base.key, id, data, NULL, 0, "the store cannot be read");
		return;
	}
	bind_text(stmt, 1, id);
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_blob(stmt, 0))
		store_secrets_unseal(&st->base.key, id, data, sqlite3_column_blob(stmt, 0),
		                     (size_t)sqlite3_column_bytes(stmt, 0), NULL);
	else
		store_secrets_unseal(&st->base.key, id, data, NULL, 0, NULL);
	sqlite3_finalize(stmt);
}

static int insert_events(struct sq_store *st, const struct store_append_item *it,
                         struct strbuf *err)
{
	sqlite3_stmt *stmt = prepare(st,
	                             "INSERT INTO events (execution_id, seq, time_ms, type, stage, "
	                             "step, attempt, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	                             err);
	if (!stmt)
		return SP_ESTORE;
	int r = 0;
	for (size_t i = 0; i < it->nevents && r == 0; i++) {
		const struct event *e = &it->events[i];
		json_t *sealed_copy = NULL; /* the data without its secrets, if it had any */
		if (e->type == EV_EXECUTION_STARTED &&
		    (r = seal_secrets(st, it->id, e->data, &sealed_copy, err)) < 0)
			break;
		char *data = json_dumps(sealed_copy ? sealed_copy : e->data,
		                        JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(sealed_copy);
		sqlite3_reset(stmt);
		bind_text(stmt, 1, it->id);
		sqlite3_bind_int64(stmt, 2, e->seq);
		sqlite3_bind_int64(stmt, 3, e->time_ms);
		bind_text(stmt, 4, event_type_name(e->type));
		sqlite3_bind_int(stmt, 5, e->stage);
		sqlite3_bind_int(stmt, 6, e->step);
		sqlite3_bind_int(stmt, 7, e->attempt);
		bind_text(stmt, 8, data ? data : "{}");
		int rc = sqlite3_step(stmt);
		free(data);
		if (rc == SQLITE_CONSTRAINT) {
			if (err)
				strbuf_addf(err, "event %lld of %s was already recorded",
				            (long long)e->seq, it->id);
			r = SP_ECONFLICT;
		} else if (rc != SQLITE_DONE) {
			r = db_error(st, err, "recording an event");
		}
	}
	sqlite3_finalize(stmt);
	return r;
}

static int update_projection(struct sq_store *st, const struct store_append_item *it, int64_t now,
                             struct strbuf *err)
{
	if (it->nevents == 0)
		return 0;
	sqlite3_stmt *stmt =
	    prepare(st,
	            "UPDATE executions SET status = ?, updated_ms = ?, last_seq = ?, "
	            "next_due_ms = ?, waiting = ? WHERE id = ? AND last_seq = ?",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, it->status);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_int64(stmt, 3, it->events[it->nevents - 1].seq);
	sqlite3_bind_int64(stmt, 4, it->next_due_ms);
	bind_text(stmt, 5, it->waiting);
	bind_text(stmt, 6, it->id);
	sqlite3_bind_int64(stmt, 7, it->events[0].seq - 1);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "updating an execution");
	if (r == 0 && sqlite3_changes(st->db) != 1) {
		if (err)
			strbuf_addf(err, "execution %s changed under us", it->id);
		r = SP_ECONFLICT;
	}
	sqlite3_finalize(stmt);
	return r;
}

/* The lease of an append: owner's, and not expired at now. */
static int check_lease(struct sq_store *st, const char *id, const char *owner, int64_t now,
                       struct strbuf *err)
{
	sqlite3_stmt *stmt =
	    prepare(st, "SELECT owner, expires_ms FROM leases WHERE execution_id = ?", err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, id);
	int r = 0;
	if (sqlite3_step(stmt) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(stmt, 0), owner) != 0) {
		if (err)
			strbuf_addf(err, "this process no longer holds execution %s", id);
		r = SP_ECONFLICT;
	} else if (sqlite3_column_int64(stmt, 1) < now) {
		if (err)
			strbuf_addf(err,
			            "the lease of execution %s expired; this process must take it "
			            "again",
			            id);
		r = SP_ECONFLICT;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int put_lease(struct sq_store *st, const char *id, const char *owner, int64_t expires,
                     struct strbuf *err)
{
	sqlite3_stmt *stmt =
	    prepare(st,
	            "INSERT INTO leases (execution_id, owner, host, pid, expires_ms) "
	            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET "
	            "owner = excluded.owner, host = excluded.host, pid = excluded.pid, "
	            "expires_ms = excluded.expires_ms",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, id);
	bind_text(stmt, 2, owner);
	bind_text(stmt, 3, st->base.host);
	sqlite3_bind_int64(stmt, 4, getpid());
	sqlite3_bind_int64(stmt, 5, expires);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "taking a lease");
	sqlite3_finalize(stmt);
	return r;
}

static int finish_tx(struct sq_store *st, int r, struct strbuf *err)
{
	if (r == 0)
		r = exec_sql(st, "COMMIT", err);
	if (r < 0)
		exec_sql(st, "ROLLBACK", NULL);
	return r;
}

static int sq_create(struct store *base, const struct exec_row *row, const char *owner, int64_t now,
                     int64_t lease_ms, const struct store_append_item *first, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	int r = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	sqlite3_stmt *stmt = prepare(st,
	                             "INSERT INTO executions (id, created_ms, updated_ms, status, "
	                             "plan_name, environment, plan_file, started_by, last_seq) "
	                             "VALUES (?, ?, ?, 'RUNNING', ?, ?, ?, ?, 0)",
	                             err);
	if (!stmt)
		return finish_tx(st, SP_ESTORE, err);
	bind_text(stmt, 1, row->id);
	sqlite3_bind_int64(stmt, 2, now);
	sqlite3_bind_int64(stmt, 3, now);
	bind_text(stmt, 4, row->plan_name);
	bind_text(stmt, 5, row->environment);
	bind_text(stmt, 6, row->plan_file);
	bind_text(stmt, 7, row->started_by);
	int rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	if (rc == SQLITE_CONSTRAINT) {
		if (err)
			strbuf_addf(err, "an execution %s exists already", row->id);
		return finish_tx(st, SP_ECONFLICT, err);
	}
	if (rc != SQLITE_DONE)
		return finish_tx(st, db_error(st, err, "creating an execution"), err);
	r = put_lease(st, row->id, owner, now + lease_ms, err);
	if (r == 0)
		r = insert_events(st, first, err);
	if (r == 0)
		r = update_projection(st, first, now, err);
	return finish_tx(st, r, err);
}

static int mark_done(struct sq_store *st, int64_t id, const char *result, int64_t now,
                     struct strbuf *err)
{
	sqlite3_stmt *stmt =
	    prepare(st, "UPDATE inbox SET done_ms = ?, result = ? WHERE id = ?", err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_int64(stmt, 1, now);
	bind_text(stmt, 2, result);
	sqlite3_bind_int64(stmt, 3, id);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "answering a command");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_append(struct store *base, const char *owner, int64_t now,
                     const struct store_append_item *items, size_t nitems, const int64_t *done_ids,
                     const char *const *done_results, size_t ndone, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	int r = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < nitems && r == 0; i++) {
		if (items[i].nevents == 0)
			continue;
		r = check_lease(st, items[i].id, owner, now, err);
		if (r == 0)
			r = insert_events(st, &items[i], err);
		if (r == 0)
			r = update_projection(st, &items[i], now, err);
	}
	for (size_t i = 0; i < ndone && r == 0; i++)
		r = mark_done(st, done_ids[i], done_results[i], now, err);
	return finish_tx(st, r, err);
}

static int sq_history(struct store *base, const char *id, int64_t after, struct event_list *out,
                      struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "SELECT seq, time_ms, type, stage, step, attempt, data FROM events "
	            "WHERE execution_id = ? AND seq > ? ORDER BY seq",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, id);
	sqlite3_bind_int64(stmt, 2, after);
	int rc, r = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		int type = event_type_from_name((const char *)sqlite3_column_text(stmt, 2));
		json_error_t jerr;
		json_t *data = json_loads((const char *)sqlite3_column_text(stmt, 6), 0, &jerr);
		if (type < 0 || !data) {
			if (err)
				strbuf_addf(err, "event %lld of %s is unreadable",
				            (long long)sqlite3_column_int64(stmt, 0), id);
			json_decref(data);
			r = SP_ESTORE;
			break;
		}
		if (type == EV_EXECUTION_STARTED && json_object_get(data, "secretsSealed"))
			unseal_secrets(st, id, data);
		struct event *e =
		    event_list_add(out, (enum event_type)type, sqlite3_column_int(stmt, 3),
		                   sqlite3_column_int(stmt, 4), sqlite3_column_int(stmt, 5), data);
		e->seq = sqlite3_column_int64(stmt, 0);
		e->time_ms = sqlite3_column_int64(stmt, 1);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_error(st, err, "reading a history");
	sqlite3_finalize(stmt);
	return r;
}

#define ROW_COLUMNS                                                                                \
	"id, status, plan_name, environment, plan_file, started_by, created_ms, updated_ms, "      \
	"last_seq, next_due_ms, waiting"

static void read_row(sqlite3_stmt *stmt, struct exec_row *row)
{
	row->id = col_text(stmt, 0);
	row->status = col_text(stmt, 1);
	row->plan_name = col_text(stmt, 2);
	row->environment = col_text(stmt, 3);
	row->plan_file = col_text(stmt, 4);
	row->started_by = col_text(stmt, 5);
	row->created_ms = sqlite3_column_int64(stmt, 6);
	row->updated_ms = sqlite3_column_int64(stmt, 7);
	row->last_seq = sqlite3_column_int64(stmt, 8);
	row->next_due_ms = sqlite3_column_int64(stmt, 9);
	row->waiting = col_text(stmt, 10);
}

/* Reads the row of exactly id: 0, SP_ENOENT, or SP_ESTORE. */
static int sq_get_exact(struct store *base, const char *id, struct exec_row *out,
                        struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st, "SELECT " ROW_COLUMNS " FROM executions WHERE id = ?1", err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, id);
	int rc = sqlite3_step(stmt), r;
	if (rc == SQLITE_ROW) {
		read_row(stmt, out);
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? SP_ENOENT : db_error(st, err, "reading an execution");
	}
	sqlite3_finalize(stmt);
	return r;
}

/*
 * Ids starting with prefix lie in the key range [prefix, next) where next
 * is prefix with its last byte incremented (trailing 0xff bytes dropped
 * first; none left: no upper bound). SQLite compares text bytewise, so the
 * primary key index answers the range without reading any other row.
 */
static int sq_get_prefix(struct store *base, const char *prefix, struct exec_row *out,
                         struct strbuf *err)
{
	struct sq_store *st = sq(base);
	size_t n = strlen(prefix);
	char *next = xstrdup(prefix);
	while (n > 0 && (unsigned char)next[n - 1] == 0xff)
		n--;
	next[n] = '\0';
	if (n > 0)
		next[n - 1] = (char)((unsigned char)next[n - 1] + 1);
	/* Two statements, not "?2 IS NULL OR id < ?2": SQLite uses a bound in
	 * the index only when it is a plain comparison. */
	sqlite3_stmt *stmt =
	    prepare(st,
	            n > 0 ? "SELECT " ROW_COLUMNS " FROM executions WHERE id >= ?1 AND id < ?2 "
	                    "ORDER BY id LIMIT 2"
	                  : "SELECT " ROW_COLUMNS " FROM executions WHERE id >= ?1 "
	                    "ORDER BY id LIMIT 2",
	            err);
	if (!stmt) {
		free(next);
		return SP_ESTORE;
	}
	bind_text(stmt, 1, prefix);
	if (n > 0)
		bind_text(stmt, 2, next);
	int rc = sqlite3_step(stmt), r;
	if (rc == SQLITE_ROW) {
		read_row(stmt, out);
		rc = sqlite3_step(stmt);
		r = rc == SQLITE_DONE ? 0 : rc == SQLITE_ROW ? SP_EINVAL : SP_ESTORE;
		if (r < 0)
			exec_row_release(out);
	} else {
		r = rc == SQLITE_DONE ? SP_ENOENT : SP_ESTORE;
	}
	if (r == SP_ESTORE)
		db_error(st, err, "reading an execution");
	sqlite3_finalize(stmt);
	free(next);
	return r;
}

static int sq_list(struct store *base, const char *status, int limit, int offset,
                   void (*fn)(const struct exec_row *row, void *arg), void *arg, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "SELECT " ROW_COLUMNS " FROM executions WHERE ?1 IS NULL OR "
	            "status = ?1 OR (?1 = 'WAITING' AND status = 'RUNNING' AND waiting IS NOT "
	            "NULL) ORDER BY created_ms DESC, id DESC LIMIT ?2 OFFSET ?3",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, status);
	sqlite3_bind_int(stmt, 2, limit < 1 ? 1 : limit > 1000 ? 1000 : limit);
	sqlite3_bind_int(stmt, 3, offset < 0 ? 0 : offset);
	int n = 0, rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct exec_row row = { 0 };
		read_row(stmt, &row);
		fn(&row, arg);
		exec_row_release(&row);
		n++;
	}
	int r = rc == SQLITE_DONE ? n : db_error(st, err, "listing executions");
	sqlite3_finalize(stmt);
	return r;
}

/* True if the lease row's owner (columns 1 and 2: host, pid) is known dead. */
static bool owner_dead(struct sq_store *st, sqlite3_stmt *row)
{
	const char *host = (const char *)sqlite3_column_text(row, 1);
	return host && store_owner_dead(&st->base, host, (pid_t)sqlite3_column_int64(row, 2));
}

static int sq_lease_take(struct store *base, const char *id, const char *owner, int64_t now,
                         int64_t ttl_ms, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	int r = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	sqlite3_stmt *stmt = prepare(
	    st, "SELECT owner, host, pid, expires_ms FROM leases WHERE execution_id = ?", err);
	if (!stmt)
		return finish_tx(st, SP_ESTORE, err);
	bind_text(stmt, 1, id);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *holder = (const char *)sqlite3_column_text(stmt, 0);
		int64_t expires = sqlite3_column_int64(stmt, 3);
		if (strcmp(holder, owner) != 0 && expires >= now && !owner_dead(st, stmt)) {
			if (err)
				strbuf_addf(
				    err,
				    "execution %s is run by another steppy process (%s, pid %lld)",
				    id, sqlite3_column_text(stmt, 1),
				    (long long)sqlite3_column_int64(stmt, 2));
			r = SP_EBUSY;
		}
	}
	sqlite3_finalize(stmt);
	if (r == 0)
		r = put_lease(st, id, owner, now + ttl_ms, err);
	return finish_tx(st, r, err);
}

/* One statement: SQLite's write lock covers the whole file, so another
 * writer holding it longer than the busy timeout fails the renewal of
 * every lease alike (there are no row locks to skip). The ids renewed are
 * collected before the callback runs (it may use the store). */
static int sq_lease_renew(struct store *base, const char *owner, int64_t now, int64_t ttl_ms,
                          void (*renewed)(const char *id, void *arg), void *arg, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(
	    st, "UPDATE leases SET expires_ms = ? WHERE owner = ? RETURNING execution_id", err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_int64(stmt, 1, now + ttl_ms);
	bind_text(stmt, 2, owner);
	char **ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	}
	int r = rc == SQLITE_DONE ? 0 : db_error(st, err, "renewing leases");
	sqlite3_finalize(stmt);
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && renewed)
			renewed(ids[i], arg);
		free(ids[i]);
	}
	free(ids);
	return r;
}

static int sq_lease_release(struct store *base, const char *id, const char *owner,
                            struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st, "DELETE FROM leases WHERE execution_id = ? AND owner = ?", err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, id);
	bind_text(stmt, 2, owner);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "releasing a lease");
	sqlite3_finalize(stmt);
	return r;
}

static bool sq_lease_held_elsewhere(struct store *base, const char *id, const char *owner,
                                    int64_t now)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(
	    st, "SELECT owner, host, pid, expires_ms FROM leases WHERE execution_id = ?", NULL);
	if (!stmt)
		return false;
	bind_text(stmt, 1, id);
	bool held = sqlite3_step(stmt) == SQLITE_ROW &&
	            strcmp((const char *)sqlite3_column_text(stmt, 0), owner ? owner : "") != 0 &&
	            sqlite3_column_int64(stmt, 3) >= now && !owner_dead(st, stmt);
	sqlite3_finalize(stmt);
	return held;
}

static int sq_unfinished(struct store *base, char ***ret_ids, size_t *ret_n, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(
	    st, "SELECT id FROM executions WHERE status = 'RUNNING' ORDER BY created_ms", err);
	if (!stmt)
		return SP_ESTORE;
	char **ids = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = col_text(stmt, 0);
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			free(ids[i]);
		free(ids);
		return db_error(st, err, "listing unfinished executions");
	}
	*ret_ids = ids;
	*ret_n = n;
	return 0;
}

static int sq_inbox_add(struct store *base, const char *execution_id, const char *kind,
                        json_t *data, int64_t now, int64_t *ret_id, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "INSERT INTO inbox (execution_id, kind, data, created_ms) VALUES "
	            "(?, ?, ?, ?)",
	            err);
	if (!stmt)
		return SP_ESTORE;
	char *text = json_dumps(data, JSON_COMPACT);
	bind_text(stmt, 1, execution_id);
	bind_text(stmt, 2, kind);
	bind_text(stmt, 3, text ? text : "{}");
	sqlite3_bind_int64(stmt, 4, now);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "sending a command");
	free(text);
	sqlite3_finalize(stmt);
	if (r == 0)
		*ret_id = sqlite3_last_insert_rowid(st->db);
	return r;
}

static int sq_inbox_pending(struct store *base, const char *owner, struct inbox_cmd **ret,
                            size_t *ret_n, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "SELECT i.id, i.execution_id, i.kind, i.data FROM inbox i JOIN "
	            "leases l ON l.execution_id = i.execution_id WHERE i.done_ms IS "
	            "NULL AND l.owner = ? ORDER BY i.id",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, owner);
	struct inbox_cmd *cmds = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		cmds = xreallocarray(cmds, n + 1, sizeof(*cmds));
		struct inbox_cmd *c = &cmds[n++];
		c->id = sqlite3_column_int64(stmt, 0);
		c->execution_id = col_text(stmt, 1);
		c->kind = col_text(stmt, 2);
		c->data = json_loads((const char *)sqlite3_column_text(stmt, 3), 0, NULL);
		if (!c->data)
			c->data = json_object();
	}
	sqlite3_finalize(stmt);
	if (rc != SQLITE_DONE) {
		for (size_t i = 0; i < n; i++)
			inbox_cmd_release(&cmds[i]);
		free(cmds);
		return db_error(st, err, "reading commands");
	}
	*ret = cmds;
	*ret_n = n;
	return 0;
}

static int sq_inbox_result(struct store *base, int64_t id, char **ret_result, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st, "SELECT done_ms, result FROM inbox WHERE id = ?", err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_int64(stmt, 1, id);
	int r = 0;
	if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
		*ret_result = col_text(stmt, 1);
		r = 1;
	}
	sqlite3_finalize(stmt);
	return r;
}

static int64_t sq_data_version(struct store *base)
{
	struct sq_store *st = sq(base);
	if (!st->data_version)
		st->data_version = prepare(st, "PRAGMA data_version", NULL);
	int64_t v = -1;
	if (st->data_version && sqlite3_step(st->data_version) == SQLITE_ROW)
		v = sqlite3_column_int64(st->data_version, 0);
	sqlite3_reset(st->data_version); /* ends its read transaction */
	return v;
}

/*
 * Inserts a link row with sql: the token's hash, the step attempt it is
 * for, then for a personal link (personal) its person, and the time. what
 * names the row in an error.
 */
static int link_insert(struct sq_store *st, const char *sql, const unsigned char hash[32],
                       const char *execution_id, int stage, int step, int attempt, bool personal,
                       const char *person, int64_t now, const char *what, struct strbuf *err)
{
	sqlite3_stmt *stmt = prepare(st, sql, err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_blob(stmt, 1, hash, 32, SQLITE_STATIC);
	bind_text(stmt, 2, execution_id);
	sqlite3_bind_int(stmt, 3, stage);
	sqlite3_bind_int(stmt, 4, step);
	sqlite3_bind_int(stmt, 5, attempt);
	int col = 6;
	if (personal)
		bind_text(stmt, col++, person);
	sqlite3_bind_int64(stmt, col, now);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, what);
	sqlite3_finalize(stmt);
	return r;
}

/*
 * Reads the link row of hash with sql, whose first columns are
 * execution_id, stage, step, attempt, created_ms, into *out. Returns 0 with
 * *ret_stmt on the row (for further columns; caller finalizes), or
 * SP_ENOENT / an error (nothing to finalize). what names the row in an error.
 */
static int link_find(struct sq_store *st, const char *sql, const unsigned char hash[32],
                     struct approval_link *out, sqlite3_stmt **ret_stmt, const char *what,
                     struct strbuf *err)
{
	sqlite3_stmt *stmt = prepare(st, sql, err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_blob(stmt, 1, hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		out->execution_id = xstrdup((const char *)sqlite3_column_text(stmt, 0));
		out->stage = sqlite3_column_int(stmt, 1);
		out->step = sqlite3_column_int(stmt, 2);
		out->attempt = sqlite3_column_int(stmt, 3);
		out->created_ms = sqlite3_column_int64(stmt, 4);
		*ret_stmt = stmt;
		return 0;
	}
	int r = rc == SQLITE_DONE ? SP_ENOENT : db_error(st, err, what);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_approval_link_add(struct store *base, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	return link_insert(st,
	                   "INSERT INTO approval_links (token_sha256, execution_id, stage, step, "
	                   "attempt, created_ms) VALUES (?, ?, ?, ?, ?, ?)",
	                   hash, execution_id, stage, step, attempt, false, NULL, now,
	                   "recording an approval link", err);
}

static int sq_approval_link_find(struct store *base, const unsigned char hash[32],
                                 struct approval_link *out, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = NULL;
	int r = link_find(st,
	                  "SELECT execution_id, stage, step, attempt, created_ms FROM "
	                  "approval_links WHERE token_sha256 = ?",
	                  hash, out, &stmt, "reading an approval link", err);
	sqlite3_finalize(stmt);
	return r;
}

static int sq_approval_link_replace(struct store *base, const unsigned char hash[32],
                                    const char *execution_id, int stage, int step, int attempt,
                                    int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	int r = exec_sql(st, "BEGIN IMMEDIATE", err);
	if (r < 0)
		return r;
	sqlite3_stmt *stmt = prepare(st,
	                             "DELETE FROM approval_links WHERE execution_id = ? AND "
	                             "stage = ? AND step = ? AND attempt = ?",
	                             err);
	if (!stmt) {
		exec_sql(st, "ROLLBACK", NULL);
		return SP_ESTORE;
	}
	bind_text(stmt, 1, execution_id);
	sqlite3_bind_int(stmt, 2, stage);
	sqlite3_bind_int(stmt, 3, step);
	sqlite3_bind_int(stmt, 4, attempt);
	r = sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "removing approval links");
	sqlite3_finalize(stmt);
	if (r == 0)
		r = sq_approval_link_add(base, hash, execution_id, stage, step, attempt, now, err);
	if (r == 0)
		r = exec_sql(st, "COMMIT", err);
	if (r < 0)
		exec_sql(st, "ROLLBACK", NULL);
	return r;
}

static int sq_personal_link_add(struct store *base, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                const char *person, int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	return link_insert(st,
	                   "INSERT INTO personal_links (token_sha256, execution_id, stage, step, "
	                   "attempt, person, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
	                   hash, execution_id, stage, step, attempt, true, person, now,
	                   "recording a personal link", err);
}

static int sq_personal_link_find(struct store *base, const unsigned char hash[32],
                                 struct personal_link *out, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = NULL;
	struct approval_link link;
	int r = link_find(st,
	                  "SELECT execution_id, stage, step, attempt, created_ms, person, used_ms "
	                  "FROM personal_links WHERE token_sha256 = ?",
	                  hash, &link, &stmt, "reading a personal link", err);
	if (r == 0) {
		memset(out, 0, sizeof(*out));
		out->link = link;
		out->person = xstrdup((const char *)sqlite3_column_text(stmt, 5));
		out->used_ms = sqlite3_column_int64(stmt, 6);
	}
	sqlite3_finalize(stmt);
	return r;
}

static int sq_personal_link_use(struct store *base, const unsigned char hash[32], bool used,
                                int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            used ? "UPDATE personal_links SET used_ms = ? WHERE token_sha256 = ? AND "
	                   "used_ms IS NULL"
	                 : "UPDATE personal_links SET used_ms = NULL WHERE used_ms = ? AND "
	                   "token_sha256 = ?",
	            err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_int64(stmt, 1, now);
	sqlite3_bind_blob(stmt, 2, hash, 32, SQLITE_STATIC);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? sqlite3_changes(st->db) > 0
	                                          : db_error(st, err, "using a personal link");
	sqlite3_finalize(stmt);
	return r;
}

static bool sq_approval_link_exists(struct store *base, const char *execution_id, int stage,
                                    int step, int attempt)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st,
	                             "SELECT 1 FROM approval_links WHERE execution_id = ? AND "
	                             "stage = ? AND step = ? AND attempt = ?",
	                             NULL);
	if (!stmt)
		return false;
	bind_text(stmt, 1, execution_id);
	sqlite3_bind_int(stmt, 2, stage);
	sqlite3_bind_int(stmt, 3, step);
	sqlite3_bind_int(stmt, 4, attempt);
	bool found = sqlite3_step(stmt) == SQLITE_ROW;
	sqlite3_finalize(stmt);
	return found;
}

static int sq_inbox_withdraw(struct store *base, int64_t cmd_id, int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "UPDATE inbox SET done_ms = ?, result = 'withdrawn' WHERE id = ? "
	            "AND done_ms IS NULL",
	            err);
	if (!stmt)
		return SP_ESTORE;
	sqlite3_bind_int64(stmt, 1, now);
	sqlite3_bind_int64(stmt, 2, cmd_id);
	int r = sqlite3_step(stmt) == SQLITE_DONE ? sqlite3_changes(st->db)
	                                          : db_error(st, err, "withdrawing a command");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_count_by_status(struct store *base,
                              void (*fn)(const char *status, int64_t n, void *arg), void *arg,
                              struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st,
	                             "SELECT status, count(*) FROM executions GROUP BY status "
	                             "UNION ALL SELECT 'WAITING', count(*) FROM executions "
	                             "WHERE status = 'RUNNING' AND waiting IS NOT NULL",
	                             err);
	if (!stmt)
		return SP_ESTORE;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		fn((const char *)sqlite3_column_text(stmt, 0), sqlite3_column_int64(stmt, 1), arg);
	int r = rc == SQLITE_DONE ? 0 : db_error(st, err, "counting executions");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_meta_get(struct store *base, const char *key, char **ret_value, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st, "SELECT value FROM meta WHERE key = ?", err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, key);
	int rc = sqlite3_step(stmt), r = SP_ENOENT;
	if (rc == SQLITE_ROW) {
		*ret_value = col_text(stmt, 0);
		r = 0;
	} else if (rc != SQLITE_DONE) {
		r = db_error(st, err, "reading the store's settings");
	}
	sqlite3_finalize(stmt);
	return r;
}

static int sq_inbox_file_get(struct store *base, const char *version, char **ret_status,
                             struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st, "SELECT status FROM inbox_files WHERE version = ?", err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, version);
	int rc = sqlite3_step(stmt);
	int r = 0;
	if (rc == SQLITE_ROW) {
		*ret_status = col_text(stmt, 0);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = db_error(st, err, "reading the inbox files");
	}
	sqlite3_finalize(stmt);
	return r;
}

static int sq_meta_set(struct store *base, const char *key, const char *value, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(st,
	                             value ? "INSERT INTO meta (key, value) VALUES (?1, ?2) "
	                                     "ON CONFLICT (key) DO UPDATE SET value = ?2"
	                                   : "DELETE FROM meta WHERE key = ?1",
	                             err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, key);
	if (value)
		bind_text(stmt, 2, value);
	int r = sqlite3_step(stmt) == SQLITE_DONE
	            ? 0
	            : db_error(st, err, "writing the store's settings");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_inbox_file_put(struct store *base, const char *version, const char *status,
                             int64_t now, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt =
	    prepare(st,
	            "INSERT OR REPLACE INTO inbox_files (version, status, created_ms) "
	            "VALUES (?, ?, ?)",
	            err);
	if (!stmt)
		return SP_ESTORE;
	bind_text(stmt, 1, version);
	bind_text(stmt, 2, status);
	sqlite3_bind_int64(stmt, 3, now);
	int r =
	    sqlite3_step(stmt) == SQLITE_DONE ? 0 : db_error(st, err, "recording an inbox file");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_check(struct store *base, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	const char *path = sqlite3_db_filename(st->db, "main");
	sqlite3_stmt *stmt = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(5)", -1, &stmt, NULL);
	struct strbuf found = STRBUF_INIT;
	while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(stmt, 0);
		if (line && strcmp(line, "ok") != 0)
			strbuf_addf(&found, "%s%s", found.len ? "; " : "", line);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_DONE && found.len == 0)
		strbuf_addstr(&found, sqlite3_errmsg(st->db));
	sqlite3_finalize(stmt);
	/* Pages sound: then every history runs 1..n and every summary row
	 * agrees with its history, each damaged release named. */
	bool pages_sound = found.len == 0;
	for (int q = 0; q < 2 && pages_sound; q++) {
		stmt = prepare(st, q == 0 ? STORE_CHECK_GAPS_SQL : STORE_CHECK_ROWS_SQL, &found);
		for (int64_t i = 0; stmt && (rc = sqlite3_step(stmt)) == SQLITE_ROW; i++) {
			const char *id = (const char *)sqlite3_column_text(stmt, 0);
			if (q == 0)
				store_check_gap(&found, i, sqlite3_column_int64(stmt, 4),
				                id ? id : "", sqlite3_column_int64(stmt, 1),
				                sqlite3_column_int64(stmt, 2),
				                sqlite3_column_int64(stmt, 3));
			else
				store_check_row(&found, i, sqlite3_column_int64(stmt, 3),
				                id ? id : "", sqlite3_column_int64(stmt, 1),
				                sqlite3_column_int64(stmt, 2));
		}
		if (stmt && rc != SQLITE_DONE)
			db_error(st, &found, "checking the histories");
		sqlite3_finalize(stmt);
	}
	int r = 0;
	if (found.len) {
		if (err)
			strbuf_addf(err, "the store %s is damaged: %s", path ? path : "(unknown)",
			            found.buf);
		r = SP_ESTORE;
	}
	strbuf_release(&found);
	return r;
}

static int sq_key_record(struct store *base, const char *fp, int64_t now, char **ret,
                         struct strbuf *err)
{
	struct sq_store *st = sq(base);
	*ret = NULL;
	sqlite3_stmt *stmt = NULL;
	int r = 0;
	if (fp) {
		stmt =
		    prepare(st,
		            "INSERT INTO secret_key (one, fingerprint, created_ms) VALUES (1, ?, "
		            "?) ON CONFLICT (one) DO NOTHING",
		            err);
		if (!stmt)
			return SP_ESTORE;
		bind_text(stmt, 1, fp);
		sqlite3_bind_int64(stmt, 2, now);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			r = db_error(st, err, "recording the secret key's fingerprint");
		sqlite3_finalize(stmt);
		if (r < 0)
			return r;
	}
	stmt = prepare(st, "SELECT fingerprint FROM secret_key WHERE one = 1", err);
	if (!stmt)
		return SP_ESTORE;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*ret = col_text(stmt, 0);
	else if (rc != SQLITE_DONE)
		r = db_error(st, err, "reading the secret key's fingerprint");
	sqlite3_finalize(stmt);
	return r;
}

static int sq_sealed_sample(struct store *base, char **ret_id, unsigned char **ret_box,
                            size_t *ret_len, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	sqlite3_stmt *stmt = prepare(
	    st, "SELECT execution_id, box FROM sealed_secrets ORDER BY execution_id LIMIT 1", err);
	if (!stmt)
		return SP_ESTORE;
	int r = 0;
	int rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		*ret_id = col_text(stmt, 0);
		*ret_len = (size_t)sqlite3_column_bytes(stmt, 1);
		*ret_box = (unsigned char *)xmemdup0(sqlite3_column_blob(stmt, 1), *ret_len);
		r = 1;
	} else if (rc != SQLITE_DONE) {
		r = db_error(st, err, "reading sealed secrets");
	}
	sqlite3_finalize(stmt);
	return r;
}

static void sq_busy_timeout(struct store *base, int ms)
{
	struct sq_store *st = sq(base);
	sqlite3_busy_timeout(st->db, ms);
}

static int sq_schema_version(struct store *base, int *ret_version, int *ret_known,
                             struct strbuf *err)
{
	struct sq_store *st = sq(base);
	const char *path = sqlite3_db_filename(st->db, "main");
	int version = 0;
	int r = read_schema_version(st, path ? path : "(unknown)", &version, err);
	if (r < 0)
		return r == SP_EBUSY ? SP_ESTORE : r;
	*ret_version = version;
	*ret_known = SCHEMA_VERSION;
	return 0;
}

/*
 * Makes the temporary file a backup goes to, beside path (so that the
 * final rename stays in one file system): 0600 whatever the umask.
 * Returns its name (caller frees) or NULL with the reason in err.
 */
static char *backup_temp(const char *path, struct strbuf *err)
{
	char *tmp = xstrfmt("%s.tmp-XXXXXX", path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		if (err)
			strbuf_addf(err, "cannot write beside %s: %s", path, strerror(errno));
		free(tmp);
		return NULL;
	}
	if (fchmod(fd, 0600) < 0) {
		if (err)
			strbuf_addf(err, "cannot make %s private: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		free(tmp);
		return NULL;
	}
	close(fd);
	return tmp;
}

/* fsyncs a file or directory by name; 0 or -1 with errno. */
static int sync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

/* The directory of path, for syncing it after a rename; caller frees. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == path)
		return xstrdup("/");
	return xstrndup(path, (size_t)(slash - path));
}

/* path with its directory resolved (symbolic links, "..") into out;
 * false if the directory does not resolve. */
static bool resolved_name(const char *path, struct strbuf *out)
{
	char *dir = dir_of(path);
	char *real = realpath(dir, NULL);
	free(dir);
	if (!real)
		return false;
	const char *slash = strrchr(path, '/');
	strbuf_addf(out, "%s/%s", strcmp(real, "/") == 0 ? "" : real, slash ? slash + 1 : path);
	free(real);
	return true;
}

/* Whether path names the store st itself or its -wal/-shm/-journal file:
 * the same file (device and inode, also through another name), or the
 * same name even while that file does not exist. Replacing one of these
 * would put a new file under every process that has the store open. */
static bool is_store_file(struct sq_store *st, const char *path)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
	const char *db = sqlite3_db_filename(st->db, "main");
	if (!db || !*db)
		return false;
	struct stat target;
	bool exists = lstat(path, &target) == 0;
	struct strbuf want = STRBUF_INIT, name = STRBUF_INIT;
	bool have_want = resolved_name(path, &want);
	bool same = false;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(*suffixes) && !same; i++) {
		strbuf_reset(&name);
		strbuf_addf(&name, "%s%s", db, suffixes[i]);
		struct stat sb;
		if (exists && stat(name.buf, &sb) == 0 && sb.st_dev == target.st_dev &&
		    sb.st_ino == target.st_ino)
			same = true;
		struct strbuf real = STRBUF_INIT;
		if (!same && have_want && resolved_name(name.buf, &real) &&
		    strcmp(real.buf, want.buf) == 0)
			same = true;
		strbuf_release(&real);
	}
	strbuf_release(&name);
	strbuf_release(&want);
	return same;
}

/* Where the finished temporary file goes: path, which must not exist
 * unless force, and is never a symbolic link or anything but a file. */
static int backup_place(const char *tmp, const char *path, bool force, struct strbuf *err)
{
	struct stat sb;
	if (lstat(path, &sb) == 0) {
		if (S_ISLNK(sb.st_mode)) {
			if (err)
				strbuf_addf(err,
				            "%s is a symbolic link; steppy does not write a backup "
				            "through one",
				            path);
			return SP_EINVAL;
		}
		if (!force) {
			if (err)
				strbuf_addf(err, "%s exists; --force replaces it", path);
			return SP_EINVAL;
		}
		if (!S_ISREG(sb.st_mode)) {
			if (err)
				strbuf_addf(err, "%s is not a regular file", path);
			return SP_EINVAL;
		}
	}
	/* Without force, link() fails if the name appeared meanwhile. */
	int rc = force ? rename(tmp, path) : link(tmp, path);
	if (rc < 0) {
		if (err)
			strbuf_addf(err, "cannot write %s: %s", path,
			            errno == EEXIST ? "it exists; --force replaces it"
			                            : strerror(errno));
		return errno == EEXIST ? SP_EINVAL : SP_EIO;
	}
	if (!force)
		unlink(tmp);
	char *dir = dir_of(path);
	sync_path(dir, true);
	free(dir);
	return 0;
}

static int sq_backup(struct store *base, const char *path, bool force, struct strbuf *err)
{
	struct sq_store *st = sq(base);
	if (is_store_file(st, path)) {
		if (err)
			strbuf_addf(
			    err,
			    "%s is the store itself (or its -wal/-shm/-journal file); a backup "
			    "never replaces the store it copies",
			    path);
		return SP_EINVAL;
	}
	struct stat sb;
	if (lstat(path, &sb) == 0 && (S_ISLNK(sb.st_mode) || !force)) {
		return backup_place(NULL, path, force, err); /* says why not */
	}
	char *tmp = backup_temp(path, err);
	if (!tmp)
		return SP_EIO;
	/* VACUUM INTO reads one snapshot (a read transaction): the copy is
	 * consistent while other processes go on writing, and compact. */
	sqlite3_stmt *stmt = prepare(st, "VACUUM INTO ?1", err);
	int r = stmt ? 0 : SP_ESTORE;
	if (stmt) {
		bind_text(stmt, 1, tmp);
		if (sqlite3_step(stmt) != SQLITE_DONE)
			r = db_error(st, err, "writing the backup");
		sqlite3_finalize(stmt);
	}
	if (r == 0 && sync_path(tmp, false) < 0) {
		if (err)
			strbuf_addf(err, "cannot write %s: %s", tmp, strerror(errno));
		r = SP_EIO;
	}
	if (r == 0)
		r = backup_place(tmp, path, force, err);
	if (r < 0)
		unlink(tmp);
	free(tmp);
	return r;
}

/* The SELECT of a copied table: constant names from store.c's list. */
static void select_of(const struct store_table *t, struct strbuf *sql)
{
	strbuf_addstr(sql, "SELECT ");
	for (size_t i = 0; i < t->ncols; i++)
		strbuf_addf(sql, "%s%s", i ? ", " : "", t->cols[i]);
	strbuf_addf(sql, " FROM %s", t->name);
	if (t->filter)
		strbuf_addf(sql, " WHERE %s", t->filter);
}

static int sq_each_row(struct store *base, const struct store_table *t,
                       int (*fn)(const struct store_value *vals, void *arg), void *arg,
                       struct strbuf *err)
{
	struct sq_store *st = sq(base);
	struct strbuf sql = STRBUF_INIT;
	select_of(t, &sql);
	sqlite3_stmt *stmt = prepare(st, sql.buf, err);
	strbuf_release(&sql);
	if (!stmt)
		return SP_ESTORE;
	struct store_value vals[16];
	int rc, r = 0;
	while (r == 0 && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		for (size_t i = 0; i < t->ncols && i < 16; i++) {
			int col = (int)i;
			if (sqlite3_column_type(stmt, col) == SQLITE_NULL) {
				vals[i] = (struct store_value){ 0 };
			} else if (t->blobs & (1u << i)) {
				vals[i].p = sqlite3_column_blob(stmt, col);
				vals[i].len = (size_t)sqlite3_column_bytes(stmt, col);
			} else {
				vals[i].p = sqlite3_column_text(stmt, col);
				vals[i].len = (size_t)sqlite3_column_bytes(stmt, col);
			}
		}
		r = fn(vals, arg);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_error(st, err, "reading the store to copy it");
	sqlite3_finalize(stmt);
	return r;
}

/* BEGIN makes the reads up to COMMIT one transaction: in WAL mode one
 * snapshot, taken at the first read, that writers do not wait for. */
static int sq_read_begin(struct store *base, struct strbuf *err)
{
	return exec_sql(sq(base), "BEGIN", err);
}

static void sq_read_end(struct store *base)
{
	exec_sql(sq(base), "COMMIT", NULL);
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.check = sq_check,
	.key_record = sq_key_record,
	.sealed_sample = sq_sealed_sample,
	.schema_version = sq_schema_version,
	.backup = sq_backup,
	.create = sq_create,
	.append = sq_append,
	.history = sq_history,
	.get_exact = sq_get_exact,
	.get_prefix = sq_get_prefix,
	.list = sq_list,
	.lease_take = sq_lease_take,
	.lease_renew = sq_lease_renew,
	.lease_release = sq_lease_release,
	.lease_held_elsewhere = sq_lease_held_elsewhere,
	.count_by_status = sq_count_by_status,
	.unfinished = sq_unfinished,
	.inbox_add = sq_inbox_add,
	.inbox_pending = sq_inbox_pending,
	.inbox_withdraw = sq_inbox_withdraw,
	.inbox_result = sq_inbox_result,
	.approval_link_add = sq_approval_link_add,
	.approval_link_find = sq_approval_link_find,
	.approval_link_replace = sq_approval_link_replace,
	.approval_link_exists = sq_approval_link_exists,
	.meta_get = sq_meta_get,
	.meta_set = sq_meta_set,
	.inbox_file_get = sq_inbox_file_get,
	.inbox_file_put = sq_inbox_file_put,
	.personal_link_add = sq_personal_link_add,
	.personal_link_find = sq_personal_link_find,
	.personal_link_use = sq_personal_link_use,
	.busy_timeout = sq_busy_timeout,
	.data_version = sq_data_version,
	.each_row = sq_each_row,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
};
