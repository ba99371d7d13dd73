/*
 * store-backend.h - what a store implementation provides (internal to src/store).
 *
 * store.h is one interface with two implementations: SQLite (one file,
 * store-sqlite.c) and PostgreSQL (store-pg.c). store.c picks one from the
 * path at open (a postgres:// or postgresql:// URL: PostgreSQL; anything
 * else: a SQLite file) and dispatches every call through the backend's
 * table of hooks, struct store_ops. Each hook has the contract of the
 * store.h function of the same name; what both backends share (the sealed
 * secrets' key and boxes, the same-host liveness check of a lease holder,
 * the error texts for ids and settings) lives in store.c and
 * store-secrets.c.
 *
 * A backend's handle embeds struct store as its first member, so a
 * struct store * converts to the backend's type and back.
 */
#ifndef STEPPY_STORE_STORE_BACKEND_H
#define STEPPY_STORE_STORE_BACKEND_H

#include "store/store.h"
#include "util/strmap.h"

#include <sys/types.h>

/* The secret key of sealed secrets (store_set_key_file). */
struct store_key {
	char *path;            /* the key file, or NULL: none configured */
	unsigned char key[32]; /* valid when have */
	bool have;             /* key read from path */
	bool checked;          /* store_key_check() passed for this path */
};

/* What every backend's handle starts with. */
struct store {
	const struct store_ops *ops; /* never NULL */
	struct store_key key;
	char host[256]; /* this host's name (gethostname), for lease rows */
};

/* A table that store_copy() copies: the same name and columns in every
 * backend's schema. */
struct store_table {
	const char *name;
	const char *const *cols;
	size_t ncols;
	unsigned blobs;     /* bit i: column i is bytes (BLOB, BYTEA) */
	const char *filter; /* a WHERE condition of the rows to copy, or NULL */
};

/* One column's value in a copied row: text (NUL-terminated) or bytes. */
struct store_value {
	const void *p; /* NULL: SQL NULL */
	size_t len;
};

/* The columns of an inbox row that store_copy() copies under a new id:
 * execution_id, kind, data, created_ms, done_ms, result (NULL: SQL NULL). */
#define STORE_COPY_INBOX_COLS 6

/* One store_copy() under way: what store.c and the target's hooks share.
 * store.c makes it and frees everything in it (store_copy_run_release). */
struct store_copy_run {
	const struct store_copy_opts *o;
	struct store_copy_counts n; /* what was done so far */
	struct strmap kept;         /* ids of releases dst keeps as they are (keys owned) */
	char **kept_ids;            /* the same keys, to free them */
	size_t nkept;
	char *(*later)[STORE_COPY_INBOX_COLS]; /* inbox rows to copy under a new id */
	size_t nlater;
	struct strmap tails; /* replaced releases: id -> their last event in dst */
	struct store_copy_tail **tail_list;
	size_t ntails;
};

/* The last event dst had of a release it replaces: the source's event of
 * that seq must be the same, or the histories went apart. */
struct store_copy_tail {
	char *id; /* the key in run->tails */
	int64_t seq;
	char *time_ms, *type, *data;
};

/* Records id (copied) among the releases dst keeps as they are. */
void store_copy_keep(struct store_copy_run *run, const char *id);
/* True if id is among them. */
bool store_copy_kept(const struct store_copy_run *run, const char *id);
/* Records the last event dst had of release id, which it replaces (the
 * strings are copied); store_copy_tail_of() finds it again, or NULL. */
void store_copy_tail_add(struct store_copy_run *run, const char *id, int64_t seq,
                         const char *time_ms, const char *type, const char *data);
const struct store_copy_tail *store_copy_tail_of(const struct store_copy_run *run, const char *id);
/* Keeps a copy of an inbox row (vals in inbox's copied order, its id
 * first) to copy under a new id at the end. */
void store_copy_later(struct store_copy_run *run, const struct store_value *vals);

/*
 * The hooks of one backend. Each has the contract of the store.h function
 * of the same name, except where said. Every hook is set.
 */
struct store_ops {
	const char *name; /* "sqlite", "postgresql" */
	/* Opens path (create: make the store when missing); *ret is the
	 * backend's handle with ops set. store.c has checked nothing else. */
	int (*open)(const char *path, bool create, struct store **ret, struct strbuf *err);
	/* Frees the backend's part and st itself (store.c wipes the key first). */
	void (*close)(struct store *st);
	int (*check)(struct store *st, struct strbuf *err);
	int (*schema_version)(struct store *st, int *ret_version, int *ret_known,
	                      struct strbuf *err);
	int (*backup)(struct store *st, const char *path, bool force, struct strbuf *err);
	int (*create)(struct store *st, const struct exec_row *row, const char *owner, int64_t now,
	              int64_t lease_ms, const struct store_append_item *first, struct strbuf *err);
	int (*append)(struct store *st, const char *owner, int64_t now,
	              const struct store_append_item *items, size_t nitems, const int64_t *done_ids,
	              const char *const *done_results, size_t ndone, struct strbuf *err);
	int (*history)(struct store *st, const char *id, int64_t after, struct event_list *out,
	               struct strbuf *err);
	/* The row of exactly id: 0, SP_ENOENT (err untouched) or SP_ESTORE. */
	int (*get_exact)(struct store *st, const char *id, struct exec_row *out,
	                 struct strbuf *err);
	/* The one row whose id starts with prefix (not empty): 0, SP_ENOENT,
	 * SP_EINVAL if several (err untouched for both), or SP_ESTORE. */
	int (*get_prefix)(struct store *st, const char *prefix, struct exec_row *out,
	                  struct strbuf *err);
	int (*list)(struct store *st, const char *status, int limit, int offset,
	            void (*fn)(const struct exec_row *row, void *arg), void *arg,
	            struct strbuf *err);
	int (*lease_take)(struct store *st, const char *id, const char *owner, int64_t now,
	                  int64_t ttl_ms, struct strbuf *err);
	/* renewed: NULL, or called with each execution whose lease it renewed */
	int (*lease_renew)(struct store *st, const char *owner, int64_t now, int64_t ttl_ms,
	                   void (*renewed)(const char *id, void *arg), void *arg,
	                   struct strbuf *err);
	int (*lease_release)(struct store *st, const char *id, const char *owner,
	                     struct strbuf *err);
	bool (*lease_held_elsewhere)(struct store *st, const char *id, const char *owner,
	                             int64_t now);
	int (*count_by_status)(struct store *st,
	                       void (*fn)(const char *status, int64_t n, void *arg), void *arg,
	                       struct strbuf *err);
	int (*unfinished)(struct store *st, char ***ret_ids, size_t *ret_n, struct strbuf *err);
	int (*inbox_add)(struct store *st, const char *execution_id, const char *kind, json_t *data,
	                 int64_t now, int64_t *ret_id, struct strbuf *err);
	int (*inbox_pending)(struct store *st, const char *owner, struct inbox_cmd **ret,
	                     size_t *ret_n, struct strbuf *err);
	int (*inbox_withdraw)(struct store *st, int64_t cmd_id, int64_t now, struct strbuf *err);
	int (*inbox_result)(struct store *st, int64_t id, char **ret_result, struct strbuf *err);
	int (*approval_link_add)(struct store *st, const unsigned char hash[32],
	                         const char *execution_id, int stage, int step, int attempt,
	                         int64_t now, struct strbuf *err);
	int (*approval_link_find)(struct store *st, const unsigned char hash[32],
	                          struct approval_link *out, struct strbuf *err);
	int (*approval_link_replace)(struct store *st, const unsigned char hash[32],
	                             const char *execution_id, int stage, int step, int attempt,
	                             int64_t now, struct strbuf *err);
	bool (*approval_link_exists)(struct store *st, const char *execution_id, int stage,
	                             int step, int attempt);
	int (*meta_get)(struct store *st, const char *key, char **ret_value, struct strbuf *err);
	/* key is never "schema" (store.c refuses it). */
	int (*meta_set)(struct store *st, const char *key, const char *value, struct strbuf *err);
	int (*inbox_file_get)(struct store *st, const char *version, char **ret_status,
	                      struct strbuf *err);
	int (*inbox_file_put)(struct store *st, const char *version, const char *status,
	                      int64_t now, struct strbuf *err);
	int (*personal_link_add)(struct store *st, const unsigned char hash[32],
	                         const char *execution_id, int stage, int step, int attempt,
	                         const char *person, int64_t now, struct strbuf *err);
	int (*personal_link_find)(struct store *st, const unsigned char hash[32],
	                          struct personal_link *out, struct strbuf *err);
	int (*personal_link_use)(struct store *st, const unsigned char hash[32], bool used,
	                         int64_t now, struct strbuf *err);
	/* The fingerprint of the secret key the store records (*ret, caller
	 * frees; NULL: none); with fp, records fp first unless one is
	 * recorded already (then *ret is that one). */
	int (*key_record)(struct store *st, const char *fp, int64_t now, char **ret,
	                  struct strbuf *err);
	/* One sealed box of the store: 1 with *ret_id and *ret_box (caller
	 * frees both), 0 if it holds none. */
	int (*sealed_sample)(struct store *st, char **ret_id, unsigned char **ret_box,
	                     size_t *ret_len, struct strbuf *err);
	void (*busy_timeout)(struct store *st, int ms);
	int64_t (*data_version)(struct store *st);
	/* store_keep_alive(); NULL: nothing to do (0) */
	int (*keep_alive)(struct store *st, struct strbuf *err);

	/* ---- store_copy() (NULL where a backend cannot be that side) ---- */
	/* Calls fn for every row of table t (columns in t's order); stops
	 * at fn's first error and returns it. */
	int (*each_row)(struct store *st, const struct store_table *t,
	                int (*fn)(const struct store_value *vals, void *arg), void *arg,
	                struct strbuf *err);
	/* Starts one read transaction on st (a single snapshot for every
	 * each_row until read_end); read_end ends it. */
	int (*read_begin)(struct store *st, struct strbuf *err);
	void (*read_end)(struct store *st);
	/* Starts the copy into st: SP_EINVAL if st holds executions and not
	 * run->o->force; then one transaction until copy_end. */
	int (*copy_begin)(struct store *st, struct store_copy_run *run, struct strbuf *err);
	/* Copies a row of table t under store_copy()'s rules (store.h),
	 * counting in run->n. */
	int (*copy_row)(struct store *st, struct store_copy_run *run, const struct store_table *t,
	                const struct store_value *vals, struct strbuf *err);
	/* Copies run's later rows, then commits when r is 0 (else rolls back);
	 * returns r or the first error. */
	int (*copy_end)(struct store *st, struct store_copy_run *run, int r, struct strbuf *err);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

/* store_display_name() of a PostgreSQL URL (store-pg.c): built from what
 * libpq parses of it, never from its text. Caller frees. */
char *store_pg_display_name(const char *url);

/* store_check(): the damaged releases named in its message, per kind; the
 * rest are counted. */
#define STORE_CHECK_NAMED 10
/* The SQL both backends run for it (a history that does not run 1..n;
 * a summary row whose last_seq is not its history's last event), at most
 * STORE_CHECK_NAMED + 1 rows each, ordered by release, with the total. */
#define STORE_CHECK_GAPS_SQL                                                                       \
	"SELECT execution_id, count(*), min(seq), max(seq), count(*) OVER () FROM events GROUP "   \
	"BY execution_id HAVING count(*) <> max(seq) OR min(seq) <> 1 ORDER BY execution_id "      \
	"LIMIT 11"
#define STORE_CHECK_ROWS_SQL                                                                       \
	"SELECT id, last_seq, last, count(*) OVER () FROM (SELECT x.id, x.last_seq, COALESCE("     \
	"(SELECT max(seq) FROM events e WHERE e.execution_id = x.id), 0) AS last FROM "            \
	"executions x) d WHERE last_seq <> last ORDER BY id LIMIT 11"
/* Adds to found (with "; " between) a release whose history has a gap:
 * n events numbered min..max; i is its row number in the answer, total the
 * count of such releases ("and N more" after STORE_CHECK_NAMED). */
void store_check_gap(struct strbuf *found, int64_t i, int64_t total, const char *id, int64_t n,
                     int64_t min, int64_t max);
/* The same for a summary row that says last_seq while its history ends at last. */
void store_check_row(struct strbuf *found, int64_t i, int64_t total, const char *id,
                     int64_t last_seq, int64_t last);

/* Fills the shared part of a new handle: ops and host. */
void store_base_init(struct store *st, const struct store_ops *ops);

/* True if the lease holder (host, pid) is a process of this host that no
 * longer exists (or is a zombie): its lease may be taken at once. */
bool store_owner_dead(const struct store *st, const char *host, pid_t pid);

/* ---- sealed secrets (store-secrets.c) -----------------------------------------
 *
 * `secret: true` values of a plan are kept apart from the history, sealed
 * with AES-256-GCM under the key file's key (the execution id as associated
 * data). The backend stores the box (one per execution, table
 * sealed_secrets); these functions make and open it.
 */

/*
 * For an ExecutionStarted event's data about to be stored: when it holds
 * secrets, sets *ret_copy to the data without them (a new reference, with
 * "secretsSealed": true) and *ret_box, *ret_len to the sealed values
 * (malloc'ed: the backend stores them in the caller's transaction, then
 * frees them). Otherwise *ret_copy and *ret_box are NULL. Fails (SP_EINVAL,
 * SP_EIO) when the key cannot be had: secrets are never written in clear.
 */
int store_secrets_seal(struct store_key *k, const char *id, const json_t *data, json_t **ret_copy,
                       unsigned char **ret_box, size_t *ret_len, struct strbuf *err);
/*
 * Puts the sealed secrets back into an ExecutionStarted event's data (with
 * "secretsSealed") from box (NULL: the backend found none, or could not
 * read it: missing says why). When it cannot, leaves "****" and says why in
 * "secretsUnavailable".
 */
void store_secrets_unseal(struct store_key *k, const char *id, json_t *data,
                          const unsigned char *box, size_t len, const char *missing);
/* True if an ExecutionStarted event's data holds secret values. */
bool store_secrets_present(const json_t *data);
/* Forgets the key (wiped) and the path; accepts a zeroed key. */
void store_key_release(struct store_key *k);

#endif
