/*
 * answers.c - answers of reads kept in memory while the store is unchanged
 * (see answers.h): the watchers (connections that read the store's version)
 * and the thread that keeps them alive, the kept answers (least recently
 * used go first), their ETags, and If-None-Match.
 */
#include "server/answers.h"

#include "store/store.h"
#include "util/alloc.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAKE_LOCKS 8
#define WATCHERS   4 /* as many as libmicrohttpd's threads: none waits for another */
/*
 * Every RENEW_MS a thread of the cache's own (the renewer) keeps each
 * watcher alive: store_keep_alive() under the watcher's lock, one cheap
 * statement (PostgreSQL: SELECT 1; SQLite: nothing). A request's version
 * read is then only store_data_version() on an open connection (PostgreSQL:
 * a non-blocking read of the notifications on its socket): no connect, no
 * statement, no wait for the server in steady state. Without it, a
 * PostgreSQL watcher sends no statement after its LISTEN, and the store
 * reconnects a listening handle that sent none for 10 s inside the next
 * call (before the server's 15 s idle timeout ends its session): on a poll
 * thread, that reconnection stalled every connection of the thread, every
 * 10 s per watcher, for milliseconds on an idle machine and up to seconds
 * on a loaded one (bench/serve.py --nodes, docs/benchmarks.md). Replacing
 * watchers by new connections off the request path (the previous design)
 * still opened one connection per watcher every few seconds, each 54-710 ms
 * on a loaded machine, which a lagging renewer let reach the requests.
 *
 * A connection found broken (PostgreSQL restarted) is reopened by
 * store_keep_alive() on the renewer, which moves the store's number
 * (notifications may have been missed); if it cannot be, the watcher is
 * closed (opened again by a worker, a new version). A watcher not used
 * since the previous keep-alive is closed instead (it would listen for
 * nobody; opened again when needed), and one not kept alive for
 * 2 * RENEW_MS (the renewer lags) is not used on a poll thread (the store
 * might reconnect it inside the call).
 */
#define RENEW_MS      4000
#define RENEW_TICK_MS 500

/* One watcher: a store connection that never writes, and what it said. */
struct watcher {
	pthread_mutex_t lock;          /* the fields below; held during one version read */
	struct store *st;              /* NULL until needed, or after an error */
	int64_t last_raw;              /* its own number at its last read */
	bool have_raw;                 /* false after (re)opening it */
	int64_t kept_ms;               /* monotonic: st opened or last kept alive */
	bool used;                     /* read since then */
	atomic_bool keeping;           /* the renewer holds lock for a keep-alive */
	unsigned long long last_local; /* answers->local at its last read */
};

struct answers {
	char *store_path;
	/*
	 * Versions. Each watcher reads the store's number on a connection of
	 * its own; whenever one sees it move (or answers_changed() was called
	 * since its last read, or it was reopened), the shared epoch moves on,
	 * and a read gives the epoch after that. A commit that ended before a
	 * read began was seen by that watcher at this read or an earlier one,
	 * after the commit, so the epoch has moved past every version read
	 * before the commit: an answer made before it is never found again.
	 * Several watchers let threads read at once (a thread that waits for
	 * another's read waits for the scheduler too); a commit may then move
	 * the epoch once per watcher.
	 */
	struct watcher watchers[WATCHERS];
	atomic_llong renew_ms; /* RENEW_MS, or answers_renew_after()'s (< 0: none) */
	/* The renewer thread; stop (under renew_lock) ends it. */
	pthread_t renewer;
	bool renewer_running, stop;
	pthread_mutex_t renew_lock;
	pthread_cond_t renew_cond;
	atomic_llong epoch;
	atomic_ullong local; /* answers_changed() calls */
	/* Kept answers, under lock. */
	pthread_mutex_t lock;
	struct kept_answer *kept[ANSWERS_MAX];
	unsigned long long used[ANSWERS_MAX]; /* tick of the last use of kept[i] */
	size_t nkept, bytes;
	unsigned long long tick;
	uint64_t found, made; /* answers_counts() */
	pthread_mutex_t make[MAKE_LOCKS];
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void answers_renew_after(struct answers *c, int64_t ms)
{
	atomic_store(&c->renew_ms, ms);
}

/*
 * Keeps the watchers due (not kept alive for after ms) alive, each under its
 * lock (requests use the others meanwhile). The connection stays the same,
 * so its numbers go on: what the keep-alive read (notifications, a
 * reconnection) moves the store's number, and the next version read moves
 * the epoch; a keep-alive alone does not make kept answers stale.
 */
void answers_renew_due(struct answers *c, int64_t after)
{
	for (size_t i = 0; i < WATCHERS; i++) {
		struct watcher *w = &c->watchers[i];
		struct store *closed = NULL;
		pthread_mutex_lock(&w->lock);
		if (w->st && mono_ms() - w->kept_ms >= after) {
			atomic_store(&w->keeping, true);
			if (!w->used || store_keep_alive(w->st, NULL) < 0) {
				/* nobody asked since the last time, or it cannot be
				 * reached: closed (a new one's numbers start again) */
				closed = w->st;
				w->st = NULL;
			} else {
				w->kept_ms = mono_ms();
				w->used = false;
			}
			atomic_store(&w->keeping, false);
		}
		pthread_mutex_unlock(&w->lock);
		store_close(closed);
	}
}

static void *renewer_main(void *arg)
{
	struct answers *c = arg;
	pthread_mutex_lock(&c->renew_lock);
	while (!c->stop) {
		int64_t after = atomic_load(&c->renew_ms);
		int64_t tick = after < 0 || after / 4 >= RENEW_TICK_MS ? RENEW_TICK_MS
		               : after / 4                             ? after / 4
		                                                       : 1;
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)(tick % 1000) * 1000000;
		ts.tv_sec += tick / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&c->renew_cond, &c->renew_lock, &ts);
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->renew_lock);
		if (after >= 0)
			answers_renew_due(c, after);
		pthread_mutex_lock(&c->renew_lock);
	}
	pthread_mutex_unlock(&c->renew_lock);
	return NULL;
}

struct answers *answers_new(const char *store_path)
{
	struct answers *c = xcalloc(1, sizeof(*c));
	c->store_path = xstrdup(store_path);
	for (size_t i = 0; i < WATCHERS; i++) {
		pthread_mutex_init(&c->watchers[i].lock, NULL);
		atomic_init(&c->watchers[i].keeping, false);
	}
	pthread_mutex_init(&c->lock, NULL);
	for (size_t i = 0; i < MAKE_LOCKS; i++)
		pthread_mutex_init(&c->make[i], NULL);
	atomic_init(&c->renew_ms, RENEW_MS);
	atomic_init(&c->epoch, 0);
	atomic_init(&c->local, 0);
	pthread_mutex_init(&c->renew_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->renew_cond, &ca);
	pthread_condattr_destroy(&ca);
	/* without it (no thread to be had), watchers are used until the store
	 * reconnects them itself: slower, never wrong */
	c->renewer_running = pthread_create(&c->renewer, NULL, renewer_main, c) == 0;
	return c;
}

void answers_free(struct answers *c)
{
	if (!c)
		return;
	if (c->renewer_running) {
		pthread_mutex_lock(&c->renew_lock);
		c->stop = true;
		pthread_cond_signal(&c->renew_cond);
		pthread_mutex_unlock(&c->renew_lock);
		pthread_join(c->renewer, NULL);
	}
	pthread_mutex_destroy(&c->renew_lock);
	pthread_cond_destroy(&c->renew_cond);
	for (size_t i = 0; i < c->nkept; i++)
		kept_answer_release(c->kept[i]);
	for (size_t i = 0; i < WATCHERS; i++) {
		store_close(c->watchers[i].st);
		pthread_mutex_destroy(&c->watchers[i].lock);
	}
	pthread_mutex_destroy(&c->lock);
	for (size_t i = 0; i < MAKE_LOCKS; i++)
		pthread_mutex_destroy(&c->make[i]);
	free(c->store_path);
	free(c);
}

/* ---- the store's version ---------------------------------------------------- */

/*
 * A watcher for this thread, locked: the first free open one from where
 * this thread starts; else, when one is held by a keep-alive, that one
 * after it (quick: NULL instead, a poll thread does not wait for the
 * server), so that a keep-alive never makes a request open a connection;
 * else a free closed one (every open one is reading: opened for this
 * thread); else (all busy) the one it starts at.
 */
static struct watcher *watcher_take(struct answers *c, bool quick)
{
	static _Thread_local unsigned start;
	static atomic_uint next;
	if (!start)
		start = atomic_fetch_add(&next, 1) + 1;
	struct watcher *keeping = NULL, *closed = NULL;
	for (unsigned k = 0; k < WATCHERS; k++) {
		struct watcher *w = &c->watchers[(start + k) % WATCHERS];
		if (pthread_mutex_trylock(&w->lock) == 0) {
			if (w->st)
				return w;
			pthread_mutex_unlock(&w->lock);
			if (!closed)
				closed = w;
		} else if (!keeping && atomic_load(&w->keeping)) {
			keeping = w;
		}
	}
	if (keeping) {
		if (quick)
			return NULL;
		pthread_mutex_lock(&keeping->lock);
		return keeping;
	}
	if (closed && pthread_mutex_trylock(&closed->lock) == 0)
		return closed;
	struct watcher *w = &c->watchers[start % WATCHERS];
	pthread_mutex_lock(&w->lock);
	return w;
}

int64_t answers_version(struct answers *c, bool quick)
{
	struct watcher *w = watcher_take(c, quick);
	if (!w)
		return -2;
	if (!w->st) {
		/* Opened without the lock (a connection to a server that may be
		 * down), and never on a poll thread. */
		pthread_mutex_unlock(&w->lock);
		if (quick)
			return -2;
		struct store *st = NULL;
		if (store_open(c->store_path, &st, NULL) < 0)
			return -1; /* nothing is kept meanwhile */
		pthread_mutex_lock(&w->lock);
		if (w->st) { /* opened by another thread meanwhile */
			pthread_mutex_unlock(&w->lock);
			store_close(st);
			return answers_version(c, quick);
		}
		w->st = st;
		w->have_raw = false; /* its numbers start again */
		w->kept_ms = mono_ms();
	}
	w->used = true;
	int64_t after = atomic_load(&c->renew_ms);
	if (quick && after >= 0 && mono_ms() - w->kept_ms >= 2 * after) {
		/* overdue (the renewer lags): the store may reconnect it inside
		 * the call, which a poll thread must not wait for */
		pthread_mutex_unlock(&w->lock);
		return -2;
	}
	unsigned long long local = atomic_load(&c->local);
	int64_t raw = store_data_version(w->st);
	int64_t v = -1;
	struct store *bad = NULL;
	if (raw < 0) {
		bad = w->st; /* closed; opened again by a later call */
		w->st = NULL;
	} else {
		bool moved = !w->have_raw || raw != w->last_raw || local != w->last_local;
		w->last_raw = raw;
		w->last_local = local;
		w->have_raw = true;
		v = moved ? atomic_fetch_add(&c->epoch, 1) + 1 : atomic_load(&c->epoch);
	}
	pthread_mutex_unlock(&w->lock);
	store_close(bad);
	return v;
}

void answers_changed(struct answers *c)
{
	atomic_fetch_add(&c->local, 1);
}

/* ---- kept answers ------------------------------------------------------------- */

void kept_answer_release(struct kept_answer *a)
{
	if (a && atomic_fetch_sub(&a->refs, 1) == 1) {
		free(a->key);
		free(a);
	}
}

/* Under c->lock: forgets kept[i]. */
static void drop(struct answers *c, size_t i)
{
	c->bytes -= c->kept[i]->len;
	kept_answer_release(c->kept[i]);
	c->nkept--;
	c->kept[i] = c->kept[c->nkept];
	c->used[i] = c->used[c->nkept];
}

/* Under c->lock: the index of key's answer, or -1. */
static long find(const struct answers *c, const char *key)
{
	for (size_t i = 0; i < c->nkept; i++)
		if (!strcmp(c->kept[i]->key, key))
			return (long)i;
	return -1;
}

struct kept_answer *answers_get(struct answers *c, const char *key, int64_t version)
{
	if (version < 0)
		return NULL;
	struct kept_answer *a = NULL;
	pthread_mutex_lock(&c->lock);
	long i = find(c, key);
	if (i >= 0 && c->kept[i]->version == version) {
		a = c->kept[i];
		atomic_fetch_add(&a->refs, 1);
		c->used[i] = ++c->tick;
		c->found++;
	}
	pthread_mutex_unlock(&c->lock);
	return a;
}

struct kept_answer *answers_put(struct answers *c, const char *key, int64_t version,
                                const char *body, size_t len)
{
	struct kept_answer *a = xmalloc(sizeof(*a) + len + 1);
	atomic_init(&a->refs, 1);
	a->version = version;
	a->key = xstrdup(key);
	a->len = len;
	memcpy(a->body, body, len);
	a->body[len] = '\0';
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)body, len, h);
	static const char hex[] = "0123456789abcdef";
	a->etag[0] = '"';
	for (size_t i = 0; i < 16; i++) {
		a->etag[1 + 2 * i] = hex[h[i] >> 4];
		a->etag[2 + 2 * i] = hex[h[i] & 15];
	}
	a->etag[33] = '"';
	a->etag[34] = '\0';
	pthread_mutex_lock(&c->lock);
	c->made++;
	if (version < 0 || len > ANSWERS_MAX_ONE) {
		pthread_mutex_unlock(&c->lock);
		return a;
	}
	long i = find(c, key);
	if (i >= 0 && c->kept[i]->version >= version) {
		/* one as new is kept already (made meanwhile): keep it */
		pthread_mutex_unlock(&c->lock);
		return a;
	}
	if (i >= 0)
		drop(c, (size_t)i);
	while (c->nkept && (c->nkept == ANSWERS_MAX || c->bytes + len > ANSWERS_MAX_BYTES)) {
		size_t lru = 0;
		for (size_t k = 1; k < c->nkept; k++)
			if (c->used[k] < c->used[lru])
				lru = k;
		drop(c, lru);
	}
	atomic_fetch_add(&a->refs, 1); /* the cache's own */
	c->kept[c->nkept] = a;
	c->used[c->nkept] = ++c->tick;
	c->nkept++;
	c->bytes += len;
	pthread_mutex_unlock(&c->lock);
	return a;
}

void answers_counts(struct answers *c, uint64_t *ret_kept, uint64_t *ret_made)
{
	pthread_mutex_lock(&c->lock);
	*ret_kept = c->found;
	*ret_made = c->made;
	pthread_mutex_unlock(&c->lock);
}

static pthread_mutex_t *make_lock(struct answers *c, const char *key)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return &c->make[h % MAKE_LOCKS];
}

void answers_make_lock(struct answers *c, const char *key)
{
	pthread_mutex_lock(make_lock(c, key));
}

void answers_make_unlock(struct answers *c, const char *key)
{
	pthread_mutex_unlock(make_lock(c, key));
}

/* ---- If-None-Match -------------------------------------------------------------- */

bool etag_matches(const char *if_none_match, const char *etag)
{
	size_t elen = strlen(etag);
	const char *p = if_none_match;
	while (p && *p) {
		p += strspn(p, " \t,");
		if (!*p)
			break;
		size_t n = strcspn(p, ",");
		const char *t = p;
		p += n;
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			n--;
		if (n == 1 && *t == '*')
			return true;
		if (n > 2 && t[0] == 'W' && t[1] == '/') {
			t += 2;
			n -= 2;
		}
		if (n == elen && !memcmp(t, etag, n))
			return true;
	}
	return false;
}
