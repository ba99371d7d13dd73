/*
 * store.c - the store's front: picks the backend from the path and
 * dispatches every store.h call to it (store-backend.h).
 *
 * A path that starts with postgres: or postgresql: opens PostgreSQL
 * (store-pg.c); anything else is a SQLite file (store-sqlite.c), exactly as
 * before there were two. What does not depend on the backend lives here:
 * the release functions of the result structs, the messages of store_get,
 * the reserved "schema" setting, the same-host liveness check of a lease
 * holder.
 */
#include "store/store-backend.h"

#include "util/alloc.h"
#include "util/error.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

bool store_is_url(const char *path)
{
	/* Not only "://": a near miss (postgresql:/x, postgres:x) is a bad
	 * URL libpq refuses, never a SQLite file or directory. */
	return path &&
	       (!strncasecmp(path, "postgres:", 9) || !strncasecmp(path, "postgresql:", 11));
}

/* A libpq "key=value ..." connection string given where a store goes:
 * neither a file nor a URL, and it may hold a password. */
static bool conninfo_string(const char *path)
{
	return !store_is_url(path) && strchr(path, '=') &&
	       (strchr(path, ' ') || strstr(path, "password=") || !strncmp(path, "host=", 5) ||
	        !strncmp(path, "dbname=", 7));
}

char *store_display_name(const char *path)
{
	if (conninfo_string(path))
		return xstrdup("(a libpq key=value connection string)");
	return store_is_url(path) ? store_pg_display_name(path) : xstrdup(path);
}

/* Refuses a connection string: it would be taken for a file name, and
 * shown. */
static int refuse_conninfo(const char *path, struct strbuf *err)
{
	if (!conninfo_string(path))
		return 0;
	if (err)
		strbuf_addstr(err, "the store looks like a libpq key=value connection string, "
		                   "which steppy does not take: give a postgresql:// URL "
		                   "(docs/operations.md), the password in ~/.pgpass or "
		                   "PGPASSWORD");
	return SP_EINVAL;
}

void store_base_init(struct store *st, const struct store_ops *ops)
{
	st->ops = ops;
	if (gethostname(st->host, sizeof(st->host) - 1) < 0)
		strcpy(st->host, "localhost");
}

bool store_owner_dead(const struct store *st, const char *host, pid_t pid)
{
	if (!host || strcmp(host, st->host) != 0 || pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	/* A zombie is dead too: where PID 1 does not reap, a killed process
	 * stays one. Its state is the field after the ")" of /proc/PID/stat. */
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

/* "; " between the damages found; "and N more" once, after the named. */
static bool check_named(struct strbuf *found, int64_t i, int64_t total, const char *what)
{
	if (i >= STORE_CHECK_NAMED) {
		if (i == STORE_CHECK_NAMED)
			strbuf_addf(found, "%s%lld more %s", found->len ? "; and " : "and ",
			            (long long)(total - STORE_CHECK_NAMED), what);
		return false;
	}
	if (found->len)
		strbuf_addstr(found, "; ");
	return true;
}

void store_check_gap(struct strbuf *found, int64_t i, int64_t total, const char *id, int64_t n,
                     int64_t min, int64_t max)
{
	if (check_named(found, i, total, "histories with gaps"))
		strbuf_addf(found,
		            "release %s: its history has a gap (%lld events, numbered %lld to "
		            "%lld)",
		            id, (long long)n, (long long)min, (long long)max);
}

void store_check_row(struct strbuf *found, int64_t i, int64_t total, const char *id,
                     int64_t last_seq, int64_t last)
{
	if (check_named(found, i, total, "releases that disagree with their histories"))
		strbuf_addf(found,
		            "release %s: its summary says %lld events, its history ends at event "
		            "%lld",
		            id, (long long)last_seq, (long long)last);
}

static const struct store_ops *backend_of(const char *path)
{
	return store_is_url(path) ? &store_pg_ops : &store_sqlite_ops;
}

int store_open(const char *path, struct store **ret, struct strbuf *err)
{
	int r = refuse_conninfo(path, err);
	return r < 0 ? r : backend_of(path)->open(path, true, ret, err);
}

int store_open_existing(const char *path, struct store **ret, struct strbuf *err)
{
	int r = refuse_conninfo(path, err);
	return r < 0 ? r : backend_of(path)->open(path, false, ret, err);
}

void store_close(struct store *st)
{
	if (!st)
		return;
	store_key_release(&st->key);
	st->ops->close(st);
}

int store_check(struct store *st, struct strbuf *err)
{
	return st->ops->check(st, err);
}

int store_schema_version(struct store *st, int *ret_version, int *ret_known, struct strbuf *err)
{
	return st->ops->schema_version(st, ret_version, ret_known, err);
}

int store_backup(struct store *st, const char *path, bool force, struct strbuf *err)
{
	return st->ops->backup(st, path, force, err);
}

void exec_row_release(struct exec_row *row)
{
	free(row->id);
	free(row->status);
	free(row->plan_name);
	free(row->environment);
	free(row->plan_file);
	free(row->started_by);
	free(row->waiting);
	memset(row, 0, sizeof(*row));
}

atomic_int store_test_lost_commits;
atomic_int store_test_unsent_commits;
_Atomic int64_t store_test_clock_skew_ms;

/* r, or SP_EUNKNOWN for a commit (r == 0) while store_test_lost_commits
 * asks for its answer to be lost. */
static int lost_in_test(int r, struct strbuf *err)
{
	if (r == 0 && atomic_load(&store_test_lost_commits) > 0) {
		atomic_fetch_sub(&store_test_lost_commits, 1);
		if (err)
			strbuf_addstr(err, "committing: the answer was lost (test); the commit's "
			                   "outcome is unknown");
		return SP_EUNKNOWN;
	}
	return r;
}

/* Before secrets are sealed (outside the write's transaction): the key is
 * the store's (store_key_check), or nothing is written. */
static int key_before_seal(struct store *st, const struct store_append_item *items, size_t n,
                           struct strbuf *err)
{
	if (!st->key.path || st->key.checked)
		return 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < items[i].nevents; j++)
			if (items[i].events[j].type == EV_EXECUTION_STARTED &&
			    store_secrets_present(items[i].events[j].data))
				return store_key_check(st, STORE_KEY_MAKE, NULL, err);
	return 0;
}

int store_create(struct store *st, const struct exec_row *row, const char *owner, int64_t now,
                 int64_t lease_ms, const struct store_append_item *first, struct strbuf *err)
{
	int r = key_before_seal(st, first, 1, err);
	if (r == 0)
		r = st->ops->create(st, row, owner, now, lease_ms, first, err);
	return lost_in_test(r, err);
}

int store_append(struct store *st, const char *owner, int64_t now,
                 const struct store_append_item *items, size_t nitems, const int64_t *done_ids,
                 const char *const *done_results, size_t ndone, struct strbuf *err)
{
	if (atomic_load(&store_test_unsent_commits) > 0) {
		atomic_fetch_sub(&store_test_unsent_commits, 1);
		if (err)
			strbuf_addstr(err,
			              "committing: the connection was cut (test); the commit's "
			              "outcome is unknown");
		return SP_EUNKNOWN;
	}
	int r = key_before_seal(st, items, nitems, err);
	if (r == 0)
		r = st->ops->append(st, owner, now, items, nitems, done_ids, done_results, ndone,
		                    err);
	return lost_in_test(r, err);
}

int store_history(struct store *st, const char *id, int64_t after, struct event_list *out,
                  struct strbuf *err)
{
	return st->ops->history(st, id, after, out, err);
}

int store_get(struct store *st, const char *id_or_prefix, struct exec_row *out, struct strbuf *err)
{
	int r = *id_or_prefix ? st->ops->get_exact(st, id_or_prefix, out, err) : SP_ENOENT;
	if (r == SP_ENOENT && *id_or_prefix)
		r = st->ops->get_prefix(st, id_or_prefix, out, err);
	if (r == SP_ENOENT && err)
		strbuf_addf(err, "no execution \"%s\"", id_or_prefix);
	else if (r == SP_EINVAL && err)
		strbuf_addf(err, "\"%s\" names more than one execution; give more of the id",
		            id_or_prefix);
	return r;
}

int store_list(struct store *st, const char *status, int limit, int offset,
               void (*fn)(const struct exec_row *row, void *arg), void *arg, struct strbuf *err)
{
	return st->ops->list(st, status, limit, offset, fn, arg, err);
}

int store_lease_take(struct store *st, const char *id, const char *owner, int64_t now,
                     int64_t ttl_ms, struct strbuf *err)
{
	return st->ops->lease_take(st, id, owner, now, ttl_ms, err);
}

int store_lease_renew(struct store *st, const char *owner, int64_t now, int64_t ttl_ms,
                      struct strbuf *err)
{
	return st->ops->lease_renew(st, owner, now, ttl_ms, NULL, NULL, err);
}

int store_lease_renew_each(struct store *st, const char *owner, int64_t now, int64_t ttl_ms,
                           void (*renewed)(const char *id, void *arg), void *arg,
                           struct strbuf *err)
{
	return st->ops->lease_renew(st, owner, now, ttl_ms, renewed, arg, err);
}

int store_lease_release(struct store *st, const char *id, const char *owner, struct strbuf *err)
{
	return st->ops->lease_release(st, id, owner, err);
}

bool store_lease_held_elsewhere(struct store *st, const char *id, const char *owner, int64_t now)
{
	return st->ops->lease_held_elsewhere(st, id, owner, now);
}

int store_count_by_status(struct store *st, void (*fn)(const char *status, int64_t n, void *arg),
                          void *arg, struct strbuf *err)
{
	return st->ops->count_by_status(st, fn, arg, err);
}

int store_unfinished(struct store *st, char ***ret_ids, size_t *ret_n, struct strbuf *err)
{
	return st->ops->unfinished(st, ret_ids, ret_n, err);
}

void inbox_cmd_release(struct inbox_cmd *cmd)
{
	free(cmd->execution_id);
	free(cmd->kind);
	json_decref(cmd->data);
	memset(cmd, 0, sizeof(*cmd));
}

int store_inbox_add(struct store *st, const char *execution_id, const char *kind, json_t *data,
                    int64_t now, int64_t *ret_id, struct strbuf *err)
{
	return st->ops->inbox_add(st, execution_id, kind, data, now, ret_id, err);
}

int store_inbox_pending(struct store *st, const char *owner, struct inbox_cmd **ret, size_t *ret_n,
                        struct strbuf *err)
{
	return st->ops->inbox_pending(st, owner, ret, ret_n, err);
}

int store_inbox_withdraw(struct store *st, int64_t cmd_id, int64_t now, struct strbuf *err)
{
	return st->ops->inbox_withdraw(st, cmd_id, now, err);
}

int store_inbox_result(struct store *st, int64_t id, char **ret_result, struct strbuf *err)
{
	return st->ops->inbox_result(st, id, ret_result, err);
}

int store_approval_link_add(struct store *st, const unsigned char hash[32],
                            const char *execution_id, int stage, int step, int attempt, int64_t now,
                            struct strbuf *err)
{
	return st->ops->approval_link_add(st, hash, execution_id, stage, step, attempt, now, err);
}

int store_approval_link_find(struct store *st, const unsigned char hash[32],
                             struct approval_link *out, struct strbuf *err)
{
	return st->ops->approval_link_find(st, hash, out, err);
}

int store_approval_link_replace(struct store *st, const unsigned char hash[32],
                                const char *execution_id, int stage, int step, int attempt,
                                int64_t now, struct strbuf *err)
{
	return st->ops->approval_link_replace(st, hash, execution_id, stage, step, attempt, now,
	                                      err);
}

bool store_approval_link_exists(struct store *st, const char *execution_id, int stage, int step,
                                int attempt)
{
	return st->ops->approval_link_exists(st, execution_id, stage, step, attempt);
}

int store_meta_get(struct store *st, const char *key, char **ret_value, struct strbuf *err)
{
	return st->ops->meta_get(st, key, ret_value, err);
}

int store_meta_set(struct store *st, const char *key, const char *value, struct strbuf *err)
{
	if (!strcmp(key, "schema")) {
		if (err)
			strbuf_addstr(err, "the store's schema version is not a setting");
		return SP_EINVAL;
	}
	return st->ops->meta_set(st, key, value, err);
}

int store_inbox_file_get(struct store *st, const char *version, char **ret_status,
                         struct strbuf *err)
{
	return st->ops->inbox_file_get(st, version, ret_status, err);
}

int store_inbox_file_put(struct store *st, const char *version, const char *status, int64_t now,
                         struct strbuf *err)
{
	return st->ops->inbox_file_put(st, version, status, now, err);
}

int store_personal_link_add(struct store *st, const unsigned char hash[32],
                            const char *execution_id, int stage, int step, int attempt,
                            const char *person, int64_t now, struct strbuf *err)
{
	return st->ops->personal_link_add(st, hash, execution_id, stage, step, attempt, person, now,
	                                  err);
}

int store_personal_link_find(struct store *st, const unsigned char hash[32],
                             struct personal_link *out, struct strbuf *err)
{
	return st->ops->personal_link_find(st, hash, out, err);
}

int store_personal_link_use(struct store *st, const unsigned char hash[32], bool used, int64_t now,
                            struct strbuf *err)
{
	return st->ops->personal_link_use(st, hash, used, now, err);
}

void personal_link_release(struct personal_link *pl)
{
	if (!pl)
		return;
	free(pl->link.execution_id);
	free(pl->person);
	memset(pl, 0, sizeof(*pl));
}

void store_busy_timeout(struct store *st, int ms)
{
	st->ops->busy_timeout(st, ms);
}

int64_t store_data_version(struct store *st)
{
	return st->ops->data_version(st);
}

int store_keep_alive(struct store *st, struct strbuf *err)
{
	return st->ops->keep_alive ? st->ops->keep_alive(st, err) : 0;
}

/* ---- copying a store (store_copy) ------------------------------------------- */

static const char *const executions_cols[] = { "id",          "created_ms", "updated_ms",
	                                       "status",      "plan_name",  "environment",
	                                       "plan_file",   "started_by", "last_seq",
	                                       "next_due_ms", "waiting" };
static const char *const events_cols[] = { "execution_id", "seq",  "time_ms", "type",
	                                   "stage",        "step", "attempt", "data" };
static const char *const inbox_cols[] = { "id",         "execution_id", "kind",  "data",
	                                  "created_ms", "done_ms",      "result" };
static const char *const approval_links_cols[] = { "token_sha256", "execution_id", "stage",
	                                           "step",         "attempt",      "created_ms" };
static const char *const inbox_files_cols[] = { "version", "status", "created_ms" };
static const char *const personal_links_cols[] = { "token_sha256", "execution_id", "stage",
	                                           "step",         "attempt",      "person",
	                                           "created_ms",   "used_ms" };
static const char *const sealed_secrets_cols[] = { "execution_id", "box" };
static const char *const meta_cols[] = { "key", "value" };

#define TABLE(n, blob_bits, where)                                                                 \
	{                                                                                          \
#n, n##_cols, sizeof(n##_cols) / sizeof(*n##_cols), blob_bits, where               \
	}

/* In an order that keeps every reference pointing backwards. */
static const struct store_table copied[] = {
	TABLE(executions, 0, NULL),     TABLE(events, 0, NULL),
	TABLE(inbox, 0, NULL),          TABLE(approval_links, 1, NULL),
	TABLE(personal_links, 1, NULL), TABLE(sealed_secrets, 2, NULL),
	TABLE(inbox_files, 0, NULL),    TABLE(meta, 0, "key <> 'schema'"),
};

/* The leases of the source: which of its releases a process still runs. */
static const char *const leases_cols[] = { "execution_id", "host", "pid", "expires_ms" };
static const struct store_table leases_table = TABLE(leases, 0, NULL);

void store_copy_keep(struct store_copy_run *run, const char *id)
{
	char *key = xstrdup(id);
	if (strmap_put(&run->kept, key, strlen(key), key)) {
		free(key); /* ids are unique: cannot happen */
		return;
	}
	run->kept_ids = xreallocarray(run->kept_ids, run->nkept + 1, sizeof(*run->kept_ids));
	run->kept_ids[run->nkept++] = key;
}

bool store_copy_kept(const struct store_copy_run *run, const char *id)
{
	return id && strmap_get(&run->kept, id, strlen(id)) != NULL;
}

void store_copy_later(struct store_copy_run *run, const struct store_value *vals)
{
	run->later = xreallocarray(run->later, run->nlater + 1, sizeof(*run->later));
	for (size_t i = 0; i < STORE_COPY_INBOX_COLS; i++)
		run->later[run->nlater][i] =
		    vals[i + 1].p ? xmemdup0(vals[i + 1].p, vals[i + 1].len) : NULL;
	run->nlater++;
}

void store_copy_tail_add(struct store_copy_run *run, const char *id, int64_t seq,
                         const char *time_ms, const char *type, const char *data)
{
	struct store_copy_tail *t = xcalloc(1, sizeof(*t));
	t->id = xstrdup(id);
	t->seq = seq;
	t->time_ms = time_ms ? xstrdup(time_ms) : NULL;
	t->type = type ? xstrdup(type) : NULL;
	t->data = data ? xstrdup(data) : NULL;
	strmap_put(&run->tails, t->id, strlen(t->id), t);
	run->tail_list = xreallocarray(run->tail_list, run->ntails + 1, sizeof(*run->tail_list));
	run->tail_list[run->ntails++] = t;
}

const struct store_copy_tail *store_copy_tail_of(const struct store_copy_run *run, const char *id)
{
	return id ? strmap_get(&run->tails, id, strlen(id)) : NULL;
}

static void store_copy_run_release(struct store_copy_run *run)
{
	for (size_t i = 0; i < run->ntails; i++) {
		free(run->tail_list[i]->id);
		free(run->tail_list[i]->time_ms);
		free(run->tail_list[i]->type);
		free(run->tail_list[i]->data);
		free(run->tail_list[i]);
	}
	free(run->tail_list);
	strmap_release(&run->tails);
	for (size_t i = 0; i < run->nkept; i++)
		free(run->kept_ids[i]);
	free(run->kept_ids);
	strmap_release(&run->kept);
	for (size_t i = 0; i < run->nlater; i++)
		for (size_t j = 0; j < STORE_COPY_INBOX_COLS; j++)
			free(run->later[i][j]);
	free(run->later);
}

/* The source's live leases (not expired, holder not known dead), named. */
struct live_leases {
	struct store *src;
	int64_t now;
	int64_t n;
	struct strbuf names; /* the first few ids */
};

static int live_lease(const struct store_value *vals, void *arg)
{
	struct live_leases *l = arg;
	const char *id = vals[0].p, *host = vals[1].p;
	int64_t pid = vals[2].p ? strtoll(vals[2].p, NULL, 10) : 0;
	int64_t expires = vals[3].p ? strtoll(vals[3].p, NULL, 10) : 0;
	if (!id || expires <= l->now || store_owner_dead(l->src, host, (pid_t)pid))
		return 0;
	if (l->n < 5)
		strbuf_addf(&l->names, "%s%s (%s, pid %lld)", l->n ? ", " : "", id,
		            host ? host : "?", (long long)pid);
	l->n++;
	return 0;
}

struct copy_ctx {
	struct store *dst;
	struct store_copy_run *run;
	const struct store_table *t;
	struct strbuf *err;
};

static int copy_one(const struct store_value *vals, void *arg)
{
	struct copy_ctx *c = arg;
	return c->dst->ops->copy_row(c->dst, c->run, c->t, vals, c->err);
}

/* Sealed secrets are copied sealed: the target must record the source's
 * key (it adopts it when it records none), or its nodes could not open
 * them. In dst's copy transaction. */
static int copy_key(struct store *src, struct store *dst, const struct store_copy_opts *o,
                    struct strbuf *err)
{
	char *id = NULL, *src_fp = NULL, *dst_fp = NULL;
	unsigned char *box = NULL;
	size_t len = 0;
	int r = src->ops->sealed_sample(src, &id, &box, &len, err);
	free(box);
	if (r == 1)
		r = src->ops->key_record(src, NULL, 0, &src_fp, err);
	if (r == 0 && src_fp)
		r = dst->ops->key_record(dst, src_fp, o->now, &dst_fp, err);
	if (r == 0 && src_fp && dst_fp && strcmp(src_fp, dst_fp) != 0) {
		if (err)
			strbuf_addf(
			    err,
			    "the source's secret values (release %s, ...) are sealed with "
			    "another secret key (fingerprint %.12s) than the target records "
			    "(%.12s): its nodes could not open them; nothing was copied "
			    "(copy the source's key file to the nodes, or migrate into a "
			    "new store)",
			    id, src_fp, dst_fp);
		r = SP_EINVAL;
	}
	free(id);
	free(src_fp);
	free(dst_fp);
	return r < 0 ? r : 0;
}

int store_copy(struct store *src, struct store *dst, const struct store_copy_opts *o,
               struct store_copy_counts *ret, struct strbuf *err)
{
	if (!src->ops->each_row || !dst->ops->copy_begin) {
		if (err)
			strbuf_addf(err, "steppy copies a %s store into a %s store only",
			            store_sqlite_ops.name, store_pg_ops.name);
		return SP_EINVAL;
	}
	/* One snapshot of the source for everything read below: a process
	 * that writes it meanwhile changes nothing of what is copied. */
	int r = src->ops->read_begin(src, err);
	if (r < 0)
		return r;
	if (!o->ignore_leases) {
		struct live_leases l = { .src = src, .now = o->now, .names = STRBUF_INIT };
		r = src->ops->each_row(src, &leases_table, live_lease, &l, err);
		if (r == 0 && l.n > 0) {
			if (err)
				strbuf_addf(
				    err,
				    "%lld release%s of the source %s run by steppy now: %s%s; "
				    "stop %s first (--ignore-leases copies what is stored now; "
				    "a later --force copy brings what they add)",
				    (long long)l.n, l.n == 1 ? "" : "s", l.n == 1 ? "is" : "are",
				    l.names.buf, l.n > 5 ? ", ..." : "",
				    l.n == 1 ? "its process" : "their processes");
			r = SP_EBUSY;
		}
		strbuf_release(&l.names);
	}
	struct store_copy_run run = { .o = o };
	if (r == 0)
		r = dst->ops->copy_begin(dst, &run, err);
	if (r == 0) {
		/* In dst's transaction: copy_end rolls it back on any failure. */
		r = copy_key(src, dst, o, err);
		struct copy_ctx c = { .dst = dst, .run = &run, .err = err };
		for (size_t i = 0; i < sizeof(copied) / sizeof(*copied) && r == 0; i++) {
			c.t = &copied[i];
			r = src->ops->each_row(src, c.t, copy_one, &c, err);
		}
		r = dst->ops->copy_end(dst, &run, r, err);
	}
	src->ops->read_end(src);
	if (r == 0)
		*ret = run.n;
	store_copy_run_release(&run);
	return r;
}
