/*
 * store.h - where executions live: histories, leases, and an inbox.
 *
 * The one durable place of steppy. Everything an execution is lives here as
 * its event history (append-only); the `executions` row beside it is a
 * projection of that history (status, last event, next timer) kept in the
 * same transaction, so listing does not fold every history.
 *
 * Several steppy processes may share a store. An execution is driven by at
 * most one of them at a time: the one holding its lease. Appends check the
 * lease in the same transaction, so a process that lost its lease (it hung
 * past the expiry and another took over) can never add events. Other
 * processes ask the owner for changes (approve, reject, abort, retry)
 * through the inbox; the owner applies them and records the outcome.
 *
 * Two implementations sit behind these functions (store-backend.h), chosen
 * by the path given to store_open():
 *  - a SQLite file (store-sqlite.c), the default: WAL mode with
 *    synchronous=FULL, so an append that returned 0 survives a crash or
 *    power loss; the processes sharing it run on one host;
 *  - a PostgreSQL database (store-pg.c), for a path that starts with
 *    postgres:// or postgresql:// (a libpq URL: user, password, host, port,
 *    database, and parameters such as host=/socket/dir, sslmode,
 *    connect_timeout, options=-csearch_path=SCHEMA): synchronous_commit on,
 *    so an append that returned 0 survives a crash of the database server;
 *    the processes sharing it may run on several machines.
 * Appends for many executions go in one transaction (group commit) in both.
 *
 * Leases and fencing. A lease row names its owner (a name unique to one
 * process: the runtime uses host:pid:random), its expiry, and, on
 * PostgreSQL, a fence: a number from a sequence that takes a new, larger
 * value every time the lease is taken by anyone other than its live
 * holder (another owner, or a free, released or expired lease, even by the
 * owner that had it), and stays while its holder renews or takes it again
 * unexpired. The handle remembers the fence it got (store_create,
 * store_lease_take); store_append locks each lease row (FOR UPDATE) and
 * requires, in the transaction that writes, the owner, an expiry not
 * before now, and the handle's fence. So a process paused past its lease
 * (SIGSTOP, a long stall, a network partition) cannot append once another
 * took over, nor through another handle under the same owner name; if it
 * takes the lease back after the other let go, it gets a new fence, and its
 * stale copy still cannot write: events continue the stored history only
 * (the projection's last_seq must be the item's first seq - 1). SQLite
 * serializes every write and checks the owner and the history's next
 * number; it has no fence (one host, one file lock).
 *
 * Clocks. On PostgreSQL a lease's expiry is the database server's clock:
 * each handle measures the offset of the database's clock from its host's
 * (one round trip, again every minute) and adds it to the caller's now in
 * every lease decision (take, renew, the check of an append, held
 * elsewhere). So the nodes' clocks do not matter for who holds a lease: a
 * node whose clock is minutes off keeps its leases while it renews them,
 * and another takes them over only after they lapsed by the database's
 * time (to within a round trip). Events and rows are dated with the
 * caller's now. SQLite (one host, one clock) compares with the caller's
 * now. Safety rests on the row lock, the owner and the fence, not on time:
 * a skewed clock could never make two owners append, only make a takeover
 * early.
 *
 * Errors: functions return 0 or a negative SP_E* code and describe the
 * problem in err when it is not NULL; a message never shows a password of
 * the URL (store_display_name). A PostgreSQL connection that was lost (the
 * server restarted, the network failed) fails the call in which it is
 * found with SP_ESTORE and is opened again at the next call (SP_EUNKNOWN,
 * "outcome unknown", when it was lost during COMMIT: the transaction may
 * have been committed or not; read the store to know); a connection
 * the server closed while idle is noticed and reopened before a call sends
 * anything. Strings returned in structs are owned by the struct (free with
 * the matching _release function). A handle is used by one thread at a
 * time.
 */
#ifndef STEPPY_STORE_STORE_H
#define STEPPY_STORE_STORE_H

#include "core/event.h"
#include "util/strbuf.h"

#include <stdatomic.h>

#include <stdbool.h>
#include <stdint.h>

struct store;

/* True if path names a PostgreSQL store: it starts with postgres: or
 * postgresql: (any case; a near miss such as postgresql:/x is a URL libpq
 * refuses, never a file). Everything else is a SQLite file. */
bool store_is_url(const char *path);
/* path as messages may show it: a file name as it is; a URL rebuilt from
 * what libpq parses of it, with only its user, host, port and database
 * ("postgresql://user@host:port/db", a socket directory as "?host=DIR"),
 * never its password, sslpassword or other options, nor its text; a URL
 * libpq cannot parse as "postgresql://…". Caller frees. */
char *store_display_name(const char *path);

/*
 * Opens (creating if needed) the store at path (a file, or a PostgreSQL
 * URL); sets *ret. Several processes may open and create the same new
 * store at once: the steps where SQLite answers "busy" without waiting
 * (switching a new file to WAL, creating the schema) are retried with
 * backoff for up to 10 s; PostgreSQL creates or migrates its schema under
 * a transaction-level advisory lock, so concurrent openers take turns. A
 * PostgreSQL connection gets connect_timeout 10 s (unless the URL says
 * otherwise), statement_timeout 10 s and lock_timeout 10 s.
 */
int store_open(const char *path, struct store **ret, struct strbuf *err);
/* store_open() of a store that exists already: SP_ENOENT ("no store at
 * PATH") if there is no file, which is then not created; SP_ESTORE ("not a
 * steppy store") for a file or database without steppy's schema (an empty
 * file, another program's database), to which nothing is written. For
 * commands that only read or ask. */
int store_open_existing(const char *path, struct store **ret, struct strbuf *err);
/* Checks the store: 0, or SP_ESTORE with what is wrong and the store's
 * name in err. SQLite: the file's integrity (PRAGMA quick_check; reads the
 * whole file). PostgreSQL: the schema version is this steppy's, every
 * table is there (the database checks its own pages). Both: every history
 * runs 1..n without a gap and every execution row agrees with its
 * history's last event (reads every event number); each damaged release
 * is named in err (the first 10 of each kind, then a count). */
int store_check(struct store *st, struct strbuf *err);
/* The schema version of the store (*ret_version) and the newest this
 * steppy knows (*ret_known); SQLite files and PostgreSQL databases are
 * numbered apart. Opening migrates an older store forward and
 * refuses (SP_ESTORE, "written by a newer steppy") a newer one, so an open
 * store has *ret_version == *ret_known. Returns 0 or SP_ESTORE. */
int store_schema_version(struct store *st, int *ret_version, int *ret_known, struct strbuf *err);
/*
 * Writes a consistent copy of the store to path (SQLite's VACUUM INTO: one
 * read snapshot, so other processes may go on writing meanwhile), 0600,
 * through a temporary file beside it that is synced and then renamed. path
 * must not exist unless force, and is never followed if it is a symbolic
 * link. The secret key file (store_set_key_file) is not part of the copy.
 * Returns 0, SP_EINVAL (path exists, is a link or not a file: err says),
 * SP_EIO or SP_ESTORE. A PostgreSQL store is not copied: SP_EINVAL, and
 * err says to use pg_dump.
 */
int store_backup(struct store *st, const char *path, bool force, struct strbuf *err);
/* Closes the store; accepts NULL. */
void store_close(struct store *st);

/*
 * Names the secret key file (path copied; NULL: none). `secret: true`
 * values of a plan are stored encrypted with it, apart from the history,
 * so a copy of the store file alone does not give them away; the file (32
 * random bytes, 0600) is made when the first secret is stored. Without a
 * key file, storing a plan with secrets fails, and reading one gives its
 * ExecutionStarted data with "****" in their place and the reason in
 * "secretsUnavailable". Returns 0.
 */
int store_set_key_file(struct store *st, const char *path);
/* What store_key_check() does when the key file is missing. */
enum store_key_mode {
	STORE_KEY_MAKE,     /* make it (0600) if the store records no key yet: steppy serve */
	STORE_KEY_NEEDED,   /* refuse if the store records a key: run, resume */
	STORE_KEY_OPTIONAL, /* accept: a process that seals nothing (store migrate);
	                     * only reads: a store that records no key is left so */
};
/*
 * Checks the secret key file (store_set_key_file) against the key the store's
 * secrets are sealed with: the store records its fingerprint (an HMAC-SHA256
 * of a fixed label under the key, never the key) at first use. A store that
 * records none adopts this key, if it opens the store's sealed secrets (or
 * there are none). Returns 0 (*ret_made: a new key file was made), or
 * SP_EINVAL when the key is another one, or missing while the store records
 * one (err names the key file and says to copy the key from another node),
 * SP_EIO, SP_ESTORE. Storing a secret checks the key first in the same way
 * (STORE_KEY_MAKE), so a process never seals under another key.
 */
int store_key_check(struct store *st, enum store_key_mode mode, bool *ret_made, struct strbuf *err);
/*
 * Derives a 32-byte key for purpose (a short label) from the secret key
 * file, making the file when it is missing: every process that shares the
 * key file derives the same key, and no other. For values one process signs
 * and another checks, such as the server's approval-form tokens. Returns 0,
 * or SP_EINVAL / SP_EIO with err (no key file named, unreadable, too open).
 */
int store_derive_key(struct store *st, const char *purpose, unsigned char out[32],
                     struct strbuf *err);

/* Summary of an execution: the projection row. */
struct exec_row {
	char *id;
	char *status;      /* RUNNING, SUCCEEDED, FAILED, REJECTED, ABORTED */
	char *plan_name;   /* or NULL */
	char *environment; /* or NULL */
	char *plan_file;   /* or NULL */
	char *started_by;  /* or NULL */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t last_seq;
	int64_t next_due_ms; /* earliest timer, 0 if none */
	char *waiting;       /* a human-readable "what it waits for", or NULL */
};

void exec_row_release(struct exec_row *row);

/* One execution's new events, for store_append(). */
struct store_append_item {
	const char *id;
	const struct event *events; /* seq already set, contiguous after last_seq */
	size_t nevents;
	const char *status;  /* projection after the events */
	int64_t next_due_ms; /* projection after the events; 0 if none */
	const char *waiting; /* projection; NULL if nothing */
};

/*
 * Creates an execution row (status RUNNING) with its first events, in one
 * transaction, and takes its lease for owner (a new fence, remembered by
 * this handle). Fails with SP_ECONFLICT if the id exists. PostgreSQL holds
 * UTF-8 text only: an id or any text that is not UTF-8 fails (SP_ESTORE).
 */
int store_create(struct store *st, const struct exec_row *row, const char *owner, int64_t now,
                 int64_t lease_ms, const struct store_append_item *first, struct strbuf *err);

/*
 * Appends events of several executions in one transaction. Each execution's
 * lease must be held by owner (PostgreSQL: also unexpired at now, with the
 * fence this handle got; see "Leases and fencing" above), and each item's
 * first seq must follow the stored history; otherwise nothing at all is
 * written and SP_ECONFLICT is returned; SP_EUNKNOWN if the commit's answer
 * was lost (all or nothing was written: compare the execution's last_seq,
 * store_get). Inbox commands listed in done_ids
 * are marked done in the same transaction with their results. Items
 * without events are skipped.
 */
int store_append(struct store *st, const char *owner, int64_t now,
                 const struct store_append_item *items, size_t nitems, const int64_t *done_ids,
                 const char *const *done_results, size_t ndone, struct strbuf *err);

/* Tests only: while positive, each store_append or store_create that committed returns
 * SP_EUNKNOWN instead of 0 and counts it down (a commit whose answer was
 * lost). 0 in every program. */
extern atomic_int store_test_lost_commits;
/* Tests only: while positive, each store_append returns SP_EUNKNOWN without
 * writing anything and counts it down (the connection was cut before the
 * COMMIT arrived; its answer was lost). 0 in every program. */
extern atomic_int store_test_unsent_commits;
/* Tests only: added to the wall clock a PostgreSQL store reads (a node
 * whose clock is off by this much). 0 in every program. */
extern _Atomic int64_t store_test_clock_skew_ms;

/* Reads events after seq `after` (0: all) into out, in order. */
int store_history(struct store *st, const char *id, int64_t after, struct event_list *out,
                  struct strbuf *err);

/* Finds an execution by id (a primary-key read) or unique id prefix (a key
 * range). SP_ENOENT if none, SP_EINVAL if ambiguous, SP_ESTORE. */
int store_get(struct store *st, const char *id_or_prefix, struct exec_row *out, struct strbuf *err);

/*
 * Lists executions, newest first, at most limit (1..1000) from offset;
 * status filters when not NULL. Calls fn for each row (borrowed during the
 * call). Returns the number of rows or a negative code.
 */
int store_list(struct store *st, const char *status, int limit, int offset,
               void (*fn)(const struct exec_row *row, void *arg), void *arg, struct strbuf *err);

/*
 * Takes the lease of an execution for owner until now + ttl_ms, if it is free,
 * expired, already owner's, or held by a process of this host that no longer
 * exists (on PostgreSQL: of this host name and PID namespace, as nodes in
 * containers may share a host name). On PostgreSQL the handle remembers the lease's fence (a new
 * one unless owner renews its own live lease). Returns 0, or SP_EBUSY (held by a live owner; err
 * names it).
 */
int store_lease_take(struct store *st, const char *id, const char *owner, int64_t now,
                     int64_t ttl_ms, struct strbuf *err);
/* Extends every lease owner holds to now + ttl_ms (fences unchanged). */
int store_lease_renew(struct store *st, const char *owner, int64_t now, int64_t ttl_ms,
                      struct strbuf *err);
/*
 * The same, calling renewed(id, arg) for each execution whose lease it
 * extended (before returning 0; id borrowed for the call). A lease owner
 * holds that is not named was not renewed: on PostgreSQL a lease row
 * another session has locked (a take in progress) is skipped rather than
 * waited for, so that one lock cannot stall the renewal of every lease.
 * Returns 0, or the store's code (then nothing was renewed).
 */
int store_lease_renew_each(struct store *st, const char *owner, int64_t now, int64_t ttl_ms,
                           void (*renewed)(const char *id, void *arg), void *arg,
                           struct strbuf *err);
/* Gives a lease up. */
int store_lease_release(struct store *st, const char *id, const char *owner, struct strbuf *err);
/* True if some process other than owner holds a live lease on id. */
bool store_lease_held_elsewhere(struct store *st, const char *id, const char *owner, int64_t now);

/* Counts executions by status (one call of fn per status present), then
 * fn("WAITING", n) for the running ones that wait for a person. */
int store_count_by_status(struct store *st, void (*fn)(const char *status, int64_t n, void *arg),
                          void *arg, struct strbuf *err);

/* Ids of executions whose status is RUNNING; caller frees each and the array. */
int store_unfinished(struct store *st, char ***ret_ids, size_t *ret_n, struct strbuf *err);

/* An inbox command: a change asked of an execution's owner. */
struct inbox_cmd {
	int64_t id;
	char *execution_id;
	char *kind;   /* "approve", "reject", "abort", "retry" */
	json_t *data; /* details: stage, step, by, comment ... */
};

void inbox_cmd_release(struct inbox_cmd *cmd);

/* Adds a command; sets *ret_id. */
int store_inbox_add(struct store *st, const char *execution_id, const char *kind, json_t *data,
                    int64_t now, int64_t *ret_id, struct strbuf *err);
/* Reads pending commands for executions whose lease owner holds. Caller releases each. */
int store_inbox_pending(struct store *st, const char *owner, struct inbox_cmd **ret, size_t *ret_n,
                        struct strbuf *err);
/* Withdraws a command nobody answered: 1, or 0 if it was answered meanwhile. */
int store_inbox_withdraw(struct store *st, int64_t cmd_id, int64_t now, struct strbuf *err);

/* Reads a command's result: 1 and *ret_result (caller frees) when done, 0 while pending. */
int store_inbox_result(struct store *st, int64_t id, char **ret_result, struct strbuf *err);

/*
 * Approval links: the SHA-256 of each link's secret token (never the token)
 * and the Human step attempt it decides.
 */
struct approval_link {
	char *execution_id;
	int stage, step, attempt;
	int64_t created_ms;
};
int store_approval_link_add(struct store *st, const unsigned char hash[32],
                            const char *execution_id, int stage, int step, int attempt, int64_t now,
                            struct strbuf *err);
/* Finds the link of a token hash: 0 (caller frees out->execution_id), SP_ENOENT. */
int store_approval_link_find(struct store *st, const unsigned char hash[32],
                             struct approval_link *out, struct strbuf *err);
/*
 * Replaces the links of an attempt by the one of hash (in one transaction):
 * the old links no longer open anything. Returns 0 or SP_ESTORE.
 */
int store_approval_link_replace(struct store *st, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                int64_t now, struct strbuf *err);
/* True if an attempt has its link already. */
bool store_approval_link_exists(struct store *st, const char *execution_id, int stage, int step,
                                int attempt);

/*
 * Settings of the store itself (the meta table), for what concerns every
 * process that opens it. Known keys:
 *   "serve.tokens"  set by `steppy serve` at start when it has API tokens
 *                   (the value is its URL), removed when it starts without:
 *                   local decisions on steps with approvers are refused
 *                   unless forced (docs/cli.md).
 * The key "schema" is the store's own and cannot be set.
 * store_meta_get: 0 and *ret_value (caller frees), or SP_ENOENT if unset.
 * store_meta_set: sets key to value, or removes it when value is NULL.
 */
int store_meta_get(struct store *st, const char *key, char **ret_value, struct strbuf *err);
int store_meta_set(struct store *st, const char *key, const char *value, struct strbuf *err);

/*
 * Inbox files (steppy serve's plan directory or S3 prefix): what became of
 * a version of a file that started no release, so that a restart neither
 * reports it again nor reads it again. version is the inbox's name for one
 * version of one file (a hash of its address and size, time or ETag);
 * status is "INVALID" (reported), "TAKEN" for the version of a plan alone
 * once it was taken with a variables file, or "IGNORED" (a name that is
 * not a plan, mentioned in the log).
 */
/* 1 and *ret_status (caller frees) if version is recorded, 0 if not. */
int store_inbox_file_get(struct store *st, const char *version, char **ret_status,
                         struct strbuf *err);
/* Records (or replaces) what became of version. */
int store_inbox_file_put(struct store *st, const char *version, const char *status, int64_t now,
                         struct strbuf *err);

/*
 * Personal approval links: like approval links, but bound to one person and
 * used once. Only the SHA-256 of the token is stored.
 */
struct personal_link {
	struct approval_link link; /* what it decides */
	char *person;              /* who it speaks for (the people directory's name) */
	int64_t used_ms;           /* when it decided, or 0 */
};
int store_personal_link_add(struct store *st, const unsigned char hash[32],
                            const char *execution_id, int stage, int step, int attempt,
                            const char *person, int64_t now, struct strbuf *err);
/* Finds the link of a token hash: 0 (caller frees with personal_link_release()), SP_ENOENT. */
int store_personal_link_find(struct store *st, const unsigned char hash[32],
                             struct personal_link *out, struct strbuf *err);
/* Marks a link used at now (used = true) or unused again (used = false, when
 * the decision it carried was refused). Returns 1 if it changed, 0 if it was
 * already so (someone else used it first), or SP_ESTORE. */
int store_personal_link_use(struct store *st, const unsigned char hash[32], bool used, int64_t now,
                            struct strbuf *err);
void personal_link_release(struct personal_link *pl);

/* How store_copy() goes about it. */
struct store_copy_opts {
	bool force;         /* dst may hold releases already (see store_copy) */
	bool ignore_leases; /* copy even while a process of src runs a release */
	int64_t now;        /* wall clock, ms: which leases are still live */
};

/* What store_copy() did; set only on success. */
struct store_copy_counts {
	int64_t copied;         /* releases new to dst, copied */
	int64_t replaced;       /* releases dst had with a shorter history, replaced whole */
	int64_t unchanged;      /* releases dst had already with the same history, left */
	int64_t commands;       /* inbox commands copied under their own id */
	int64_t renumbered;     /* inbox commands whose id dst used for another: a new id */
	int64_t commands_there; /* inbox commands dst had already (same id and content) */
};

/*
 * Copies everything of the SQLite store src into the PostgreSQL store dst
 * (steppy store migrate): every execution with its history and summary
 * row, the inbox, approval and personal links, sealed secrets (as sealed:
 * the same key file opens them), the serve inbox's file versions and the
 * settings (meta, but its schema version). Leases are not copied.
 *
 * src is read in one read transaction (one snapshot: a process writing src
 * meanwhile cannot make the copy disagree with itself). Unless
 * o->ignore_leases, a live lease in src (not expired at o->now, its holder
 * not known dead) refuses the copy (SP_EBUSY), naming the releases: their
 * process goes on writing src after the copy.
 *
 * One transaction in dst: all or nothing. dst must hold no execution unless
 * o->force; then a release in both is left as it is when its history in
 * dst is as long as in src (and was last written at the same time), is
 * replaced whole (row, events, links, sealed secrets) when dst's history is
 * shorter and its last event is the source's event of that number, and
 * refuses the whole copy when dst's is as long or longer, or differs (it
 * went on in dst: replacing it would lose events), or a live lease holds it
 * in dst. An inbox command keeps its id unless dst holds another command
 * under it: then it gets a new id (none is dropped); one that dst holds
 * already (same id, release, kind, data and time) is not copied twice.
 * Settings and the inbox file versions dst has stay as they are. Sealed
 * secrets stay sealed: when src holds some and records its key's
 * fingerprint, dst must record the same (it adopts it when it records
 * none), or nothing is copied (SP_EINVAL).
 *
 * Sets *ret to what was done. Returns 0, SP_EINVAL (dst not empty, or a
 * pair of backends this cannot copy between), SP_EBUSY (a live lease in
 * src, or in dst on a release to replace), SP_ECONFLICT (a release went on
 * in dst) or SP_ESTORE; err names the releases.
 */
int store_copy(struct store *src, struct store *dst, const struct store_copy_opts *o,
               struct store_copy_counts *ret, struct strbuf *err);

/* How long a write waits for another process's write lock before failing
 * (SQLite's busy timeout; PostgreSQL's lock_timeout, with statement_timeout
 * 10 s or ms if longer); 10 s after store_open(). */
void store_busy_timeout(struct store *st, int ms);

/*
 * A number that changes whenever another connection commits. SQLite: PRAGMA
 * data_version (any commit). PostgreSQL: a count of the NOTIFY steppy
 * messages of other connections, which every transaction that writes
 * histories or the inbox sends (payload: the execution id, or "" for
 * several); the first call starts LISTEN on this handle, later calls read
 * what arrived without waiting. A handle never asked for it never
 * listens; one whose last store_data_version() is over 10 s old stops
 * listening (UNLISTEN) at the start of its next call of any kind (unread
 * messages hold PostgreSQL's shared notification queue). A handle that is
 * not called at all (parked in a pool) does not keep listening either:
 * while it listens, its session has PostgreSQL's idle_session_timeout
 * (15 s), so the server ends an idle one; a listening handle that ran no
 * statement for 10 s reconnects at its next call instead (a polled stream
 * that only asks for the version reconnects every 10 s while nothing is
 * read; store_keep_alive() every few seconds from a thread that may wait
 * keeps it open instead). It also moves when the connection was reopened, and when
 * the handle starts listening again, since messages may have been missed.
 * So a change may be spurious: nothing changed, yet the caller reads again;
 * only "unchanged" is reliable (nothing another connection committed was
 * missed).
 */
int64_t store_data_version(struct store *st);

/*
 * Keeps st's connection open while it is not otherwise used: PostgreSQL
 * runs one cheap statement (SELECT 1), first reopening a connection found
 * broken (which moves store_data_version()); called at least every 10 s on
 * a handle that only asks for store_data_version(), it is never reconnected
 * inside that call and never reaches the server's idle timeout. It may wait
 * for the server (up to the connect timeout when it reconnects): call it
 * from a thread that may wait. SQLite: nothing. Returns 0 or SP_ESTORE.
 */
int store_keep_alive(struct store *st, struct strbuf *err);

#endif
