/*
 * answers.h - answers of reads kept in memory while the store is unchanged.
 *
 * A read answer (the list of executions, per query) is made once and kept
 * with the store's data version (store_data_version()) read *before* the
 * query that made it; it is served again only to a request that read the
 * same version *after* it arrived, so it never misses a commit that was
 * acknowledged before the request: any commit by any connection of any
 * process changes the version (PostgreSQL: when the commit's NOTIFY
 * reaches the watcher, a little after the commit; this process's own API
 * changes call answers_changed() at once). An answer made from newer data
 * than its version says is harmless (it is only thrown away sooner).
 *
 * The version is read through connections of its own (watchers, a few so
 * that threads need not wait for each other), which never write: SQLite's
 * PRAGMA data_version does not change for a connection's own commits, and
 * the numbers of different connections are not comparable. So the version
 * is the cache's own epoch, moved on whenever a watcher sees its number
 * move (or was reopened after an error: a new connection's numbers start
 * again, or answers_changed() was called); a commit may move it once per
 * watcher. A thread of the cache's own keeps the watchers alive every few
 * seconds (store_keep_alive(): a PostgreSQL watcher would otherwise be
 * reconnected inside a request's call, stalling it), so a version read
 * never connects or waits for the server in steady state, and closes those
 * nobody used meanwhile (RENEW_MS in answers.c).
 *
 * Answers are immutable once kept and counted: a caller holds a reference
 * while it sends one (kept_answer_release() when done), so a newer answer can
 * replace it meanwhile. The ETag is a strong tag of the bytes (a hash), so
 * it is the same after a restart and on every node for the same answer.
 *
 * Limits: at most ANSWERS_MAX answers and ANSWERS_MAX_BYTES bytes of them
 * (the least recently used go first); an answer larger than
 * ANSWERS_MAX_ONE is not kept.
 *
 * Threads: every function may be called from any thread.
 */
#ifndef STEPPY_SERVER_ANSWERS_H
#define STEPPY_SERVER_ANSWERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANSWERS_MAX       64
#define ANSWERS_MAX_BYTES (16u << 20)
#define ANSWERS_MAX_ONE   (4u << 20)

struct answers;

/* One kept answer. Immutable after answers_put() but for refs. */
struct kept_answer {
	atomic_uint refs; /* the cache's own while kept, and one per holder */
	int64_t version;  /* the store's data version read before it was made */
	char etag[36];    /* "\"" 32 hex digits "\"": a hash of body */
	char *key;        /* what was asked (a canonical form of the query) */
	size_t len;       /* bytes of body, without its NUL */
	char body[];      /* NUL-terminated */
};

/* A cache for the store at store_path (copied; its watcher is opened when
 * the version is first asked for). Never NULL. */
struct answers *answers_new(const char *store_path);
/* Frees the cache and the answers nobody holds; accepts NULL. Answers
 * still held are freed by their last kept_answer_release(). */
void answers_free(struct answers *c);

/*
 * The store's data version now: a value read after this call began. -1 when
 * it cannot be read (no watcher, an error: keep nothing then). It may wait
 * for another thread's read when every watcher is reading (one
 * store_data_version(), a few microseconds on SQLite). With quick
 * (libmicrohttpd's threads), returns -2 instead of opening a watcher that
 * is not open (watchers are opened without holding any lock) and when it
 * is overdue for its keep-alive (the renewer thread lags).
 */
int64_t answers_version(struct answers *c, bool quick);

/* The renewer thread keeps watchers alive ms milliseconds after they were
 * opened or last kept alive (default RENEW_MS in answers.c); ms < 0: never
 * (tests). */
void answers_renew_after(struct answers *c, int64_t ms);

/* What the renewer thread does at every tick (after: its ms): keeps alive
 * (store_keep_alive(), same connection) the watchers opened or kept alive
 * at least after ms ago that were used since, and closes the others that
 * old and those whose keep-alive failed. For tests. */
void answers_renew_due(struct answers *c, int64_t after);

/*
 * Says that this process has just changed the store (a submission, a
 * decision through the API): the next answers_version() moves on even if
 * the store's own number has not yet (PostgreSQL's notifications arrive a
 * little after the commit; SQLite needs none of this).
 */
void answers_changed(struct answers *c);

/* The answer to key made at version, with a reference for the caller
 * (kept_answer_release()), or NULL. version < 0 finds nothing. */
struct kept_answer *answers_get(struct answers *c, const char *key, int64_t version);

/*
 * Keeps a copy of body (len bytes) as the answer to key at version,
 * replacing an older one, and returns it with a reference for the caller.
 * With version < 0, or body over ANSWERS_MAX_ONE, nothing is kept but the
 * answer is still returned (with its ETag) for the caller to send.
 */
struct kept_answer *answers_put(struct answers *c, const char *key, int64_t version,
                                const char *body, size_t len);

/* How many answers answers_get() found (served from memory) and how many
 * answers_put() made (read from the store), since answers_new(). */
void answers_counts(struct answers *c, uint64_t *ret_kept, uint64_t *ret_made);

/* Gives a reference back; accepts NULL. */
void kept_answer_release(struct kept_answer *a);

/* One answer is made at a time per key (of a few locks shared by hash), so
 * requests that find nothing at once wait for the first to make it. */
void answers_make_lock(struct answers *c, const char *key);
void answers_make_unlock(struct answers *c, const char *key);

/*
 * True if an If-None-Match header value names etag (a list of entity tags,
 * weak ones compared by their tag as RFC 9110 says for If-None-Match, or
 * "*"). NULL: false.
 */
bool etag_matches(const char *if_none_match, const char *etag);

#endif
