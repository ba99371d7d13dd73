/*
 * test-store.c - the SQLite store: creating executions, appending under a
 * lease, group commit, history reads, prefixes, leases, the inbox, the
 * store's settings, sealed secrets, the serve inbox's file versions.
 */
#include "unit.h"

#include "store/store.h"
#include "util/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[64];

static int setup(void **state)
{
	snprintf(path, sizeof(path), "/tmp/steppy-test-store-%d.db", (int)getpid());
	unlink(path);
	struct store *st;
	struct strbuf err = STRBUF_INIT;
	if (store_open(path, &st, &err) != 0) {
		fprintf(stderr, "%s\n", err.buf);
		return -1;
	}
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	store_close(*state);
	char wal[80], shm[80];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	unlink(path);
	unlink(wal);
	unlink(shm);
	return 0;
}

static struct event_list events_from(int64_t first_seq, int n)
{
	struct event_list l = EVENT_LIST_INIT;
	for (int i = 0; i < n; i++) {
		struct event *e =
		    event_list_add(&l, i == 0 && first_seq == 1 ? EV_EXECUTION_STARTED : EV_NOTICE,
		                   -1, -1, 0, json_pack("{si}", "i", i));
		e->seq = first_seq + i;
		e->time_ms = 1000 + i;
	}
	return l;
}

static void create(struct store *st, const char *id, const char *owner)
{
	struct event_list l = events_from(1, 2);
	struct store_append_item it = {
		.id = id, .events = l.items, .nevents = l.len, .status = "RUNNING"
	};
	struct exec_row row = { .id = (char *)id, .plan_name = "p" };
	struct strbuf err = STRBUF_INIT;
	if (store_create(st, &row, owner, 5000, 30000, &it, &err) != 0)
		fail_msg("create: %s", err.buf);
	event_list_release(&l);
	strbuf_release(&err);
}

static void test_create_append_read(void **state)
{
	struct store *st = *state;
	create(st, "abc123", "me");
	struct strbuf err = STRBUF_INIT;
	/* A second execution with the same id is refused. */
	struct event_list l = events_from(1, 1);
	struct store_append_item it = {
		.id = "abc123", .events = l.items, .nevents = 1, .status = "RUNNING"
	};
	struct exec_row row = { .id = "abc123" };
	assert_int_equal(store_create(st, &row, "me", 5000, 30000, &it, &err), SP_ECONFLICT);
	event_list_release(&l);

	/* Group commit: two executions in one transaction. */
	create(st, "abd999", "me");
	struct event_list a = events_from(3, 3), b = events_from(3, 2);
	struct store_append_item items[2] = {
		{ .id = "abc123",
		  .events = a.items,
		  .nevents = a.len,
		  .status = "SUCCEEDED",
		  .waiting = NULL },
		{ .id = "abd999",
		  .events = b.items,
		  .nevents = b.len,
		  .status = "RUNNING",
		  .next_due_ms = 777,
		  .waiting = "approval of \"go\"" },
	};
	if (store_append(st, "me", 6000, items, 2, NULL, NULL, 0, &err) != 0)
		fail_msg("append: %s", err.buf);
	struct event_list h = EVENT_LIST_INIT;
	assert_int_equal(store_history(st, "abc123", 0, &h, &err), 0);
	assert_int_equal(h.len, 5);
	for (size_t i = 0; i < h.len; i++)
		assert_int_equal(h.items[i].seq, (int64_t)i + 1);
	assert_int_equal(h.items[0].type, EV_EXECUTION_STARTED);
	assert_int_equal(json_integer_value(json_object_get(h.items[4].data, "i")), 2);
	event_list_clear(&h);
	assert_int_equal(store_history(st, "abc123", 3, &h, &err), 0);
	assert_int_equal(h.len, 2);
	event_list_release(&h);

	/* The projection follows; ids resolve by unique prefix. */
	struct exec_row r = { 0 };
	assert_int_equal(store_get(st, "abd", &r, &err), 0);
	assert_string_equal(r.id, "abd999");
	assert_string_equal(r.status, "RUNNING");
	assert_int_equal(r.last_seq, 4);
	assert_int_equal(r.next_due_ms, 777);
	assert_string_equal(r.waiting, "approval of \"go\"");
	exec_row_release(&r);
	strbuf_reset(&err);
	assert_int_equal(store_get(st, "ab", &r, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "more than one execution"));
	strbuf_reset(&err);
	assert_int_equal(store_get(st, "zz", &r, &err), SP_ENOENT);

	/* Replaying an event number is a conflict and writes nothing at all. */
	struct event_list again = events_from(6, 1), dup = events_from(4, 1);
	struct store_append_item two[2] = {
		{ .id = "abc123", .events = again.items, .nevents = 1, .status = "SUCCEEDED" },
		{ .id = "abd999", .events = dup.items, .nevents = 1, .status = "RUNNING" },
	};
	strbuf_reset(&err);
	assert_int_equal(store_append(st, "me", 7000, two, 2, NULL, NULL, 0, &err), SP_ECONFLICT);
	assert_int_equal(store_history(st, "abc123", 0, &h, &err), 0);
	assert_int_equal(h.len, 5); /* the first item was rolled back with the second */
	event_list_release(&h);
	event_list_release(&a);
	event_list_release(&b);
	event_list_release(&again);
	event_list_release(&dup);
	strbuf_release(&err);
}

static void test_leases(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	create(st, "lease1", "owner-a");
	/* Held by a live owner (this very process): others are refused. */
	assert_true(store_lease_held_elsewhere(st, "lease1", "owner-b", 6000));
	assert_int_equal(store_lease_take(st, "lease1", "owner-b", 6000, 30000, &err), SP_EBUSY);
	assert_non_null(strstr(err.buf, "run by another steppy process"));
	/* Appending without the lease is a conflict. */
	struct event_list l = events_from(3, 1);
	struct store_append_item it = {
		.id = "lease1", .events = l.items, .nevents = 1, .status = "RUNNING"
	};
	assert_int_equal(store_append(st, "owner-b", 6000, &it, 1, NULL, NULL, 0, &err),
	                 SP_ECONFLICT);
	/* Expired: another owner may take it, and then the old one cannot write. */
	assert_int_equal(store_lease_take(st, "lease1", "owner-b", 40000, 30000, &err), 0);
	assert_int_equal(store_append(st, "owner-a", 40001, &it, 1, NULL, NULL, 0, &err),
	                 SP_ECONFLICT);
	assert_int_equal(store_append(st, "owner-b", 40001, &it, 1, NULL, NULL, 0, &err), 0);
	/* Renewal keeps it; release frees it. */
	assert_int_equal(store_lease_renew(st, "owner-b", 60000, 30000, &err), 0);
	assert_int_equal(store_lease_take(st, "lease1", "owner-c", 80000, 30000, &err), SP_EBUSY);
	assert_int_equal(store_lease_release(st, "lease1", "owner-b", &err), 0);
	assert_false(store_lease_held_elsewhere(st, "lease1", "owner-c", 80000));
	assert_int_equal(store_lease_take(st, "lease1", "owner-c", 80000, 30000, &err), 0);
	event_list_release(&l);
	strbuf_release(&err);
}

static void test_inbox(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	create(st, "inb1", "owner-a");
	int64_t v0 = store_data_version(st);
	int64_t id;
	json_t *data = json_pack("{si}", "step", 0);
	assert_int_equal(store_inbox_add(st, "inb1", "approve", data, 1, &id, &err), 0);
	json_decref(data); /* the store copies it */
	(void)v0;
	char *result = NULL;
	assert_int_equal(store_inbox_result(st, id, &result, &err), 0); /* pending */
	struct inbox_cmd *cmds;
	size_t n;
	assert_int_equal(store_inbox_pending(st, "owner-x", &cmds, &n, &err), 0);
	assert_int_equal(n, 0); /* only the lease holder sees it */
	free(cmds);
	assert_int_equal(store_inbox_pending(st, "owner-a", &cmds, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_string_equal(cmds[0].kind, "approve");
	assert_int_equal(json_integer_value(json_object_get(cmds[0].data, "step")), 0);
	const char *res = "ok";
	assert_int_equal(store_append(st, "owner-a", 2, NULL, 0, &cmds[0].id, &res, 1, &err), 0);
	inbox_cmd_release(&cmds[0]);
	free(cmds);
	assert_int_equal(store_inbox_result(st, id, &result, &err), 1);
	assert_string_equal(result, "ok");
	free(result);
	assert_int_equal(store_inbox_pending(st, "owner-a", &cmds, &n, &err), 0);
	assert_int_equal(n, 0);
	free(cmds);
	strbuf_release(&err);
}

static void count_row(const struct exec_row *row, void *arg)
{
	(void)row;
	(*(int *)arg)++;
}

/* Approval links: a re-issued link replaces the attempt's links; others stay. */
static void test_approval_links(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	unsigned char a[32], b[32], c[32];
	memset(a, 1, 32);
	memset(b, 2, 32);
	memset(c, 3, 32);
	assert_int_equal(store_approval_link_add(st, a, "lnk1", 0, 1, 1, 10, &err), 0);
	assert_int_equal(store_approval_link_add(st, c, "lnk1", 0, 2, 1, 10, &err), 0);
	assert_true(store_approval_link_exists(st, "lnk1", 0, 1, 1));
	assert_int_equal(store_approval_link_replace(st, b, "lnk1", 0, 1, 1, 20, &err), 0);
	struct approval_link l;
	assert_int_equal(store_approval_link_find(st, a, &l, &err), SP_ENOENT);
	assert_int_equal(store_approval_link_find(st, b, &l, &err), 0);
	assert_string_equal(l.execution_id, "lnk1");
	assert_int_equal(l.step, 1);
	assert_int_equal(l.created_ms, 20);
	free(l.execution_id);
	/* another step's link is untouched */
	assert_int_equal(store_approval_link_find(st, c, &l, &err), 0);
	free(l.execution_id);
	/* replacing with a hash in use fails as a whole: the old link stays */
	assert_int_equal(store_approval_link_replace(st, c, "lnk1", 0, 1, 1, 30, &err), SP_ESTORE);
	assert_int_equal(store_approval_link_find(st, b, &l, &err), 0);
	free(l.execution_id);
	strbuf_release(&err);
}

static void test_list_and_unfinished(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	create(st, "l1", "o");
	create(st, "l2", "o");
	int n = 0;
	assert_int_equal(store_list(st, NULL, 1000, 0, count_row, &n, &err), 2);
	assert_int_equal(n, 2);
	n = 0;
	assert_int_equal(store_list(st, "SUCCEEDED", 10, 0, count_row, &n, &err), 0);
	assert_int_equal(store_list(st, NULL, 1, 1, count_row, &n, &err), 1);
	char **ids;
	size_t k;
	assert_int_equal(store_unfinished(st, &ids, &k, &err), 0);
	assert_int_equal(k, 2);
	for (size_t i = 0; i < k; i++)
		free(ids[i]);
	free(ids);
	strbuf_release(&err);
}

static void test_reopen_keeps_everything(void **state)
{
	struct store *st = *state;
	create(st, "keep", "o");
	store_close(st);
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open(path, &st, &err), 0);
	*state = st;
	struct exec_row r = { 0 };
	assert_int_equal(store_get(st, "keep", &r, &err), 0);
	assert_int_equal(r.last_seq, 2);
	exec_row_release(&r);
	strbuf_release(&err);
}

/* The store's own settings: set, read back by another connection, replace,
 * remove; the schema version is not one of them. */
static void test_meta(void **state)
{
	struct store *st = *state, *other;
	struct strbuf err = STRBUF_INIT;
	char *v = NULL;
	assert_int_equal(store_meta_get(st, "serve.tokens", &v, &err), SP_ENOENT);
	assert_int_equal(store_meta_set(st, "serve.tokens", "http://127.0.0.1:8080", &err), 0);
	assert_int_equal(store_open(path, &other, &err), 0);
	assert_int_equal(store_meta_get(other, "serve.tokens", &v, &err), 0);
	assert_string_equal(v, "http://127.0.0.1:8080");
	free(v);
	assert_int_equal(store_meta_set(st, "serve.tokens", "https://steppy.example", &err), 0);
	assert_int_equal(store_meta_get(other, "serve.tokens", &v, &err), 0);
	assert_string_equal(v, "https://steppy.example");
	free(v);
	assert_int_equal(store_meta_set(st, "serve.tokens", NULL, &err), 0);
	assert_int_equal(store_meta_get(other, "serve.tokens", &v, &err), SP_ENOENT);
	assert_int_equal(store_meta_set(st, "serve.tokens", NULL, &err), 0); /* idempotent */
	assert_int_equal(store_meta_set(st, "schema", "99", &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "schema"));
	assert_int_equal(store_meta_get(st, "schema", &v, NULL), 0);
	assert_string_equal(v, "1");
	free(v);
	store_close(other);
	strbuf_release(&err);
}

/* The serve inbox's file versions: recorded, replaced, kept across a reopen. */
static void test_inbox_files(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	char *status = NULL;
	assert_int_equal(store_inbox_file_get(st, "v1", &status, &err), 0);
	assert_null(status);
	assert_int_equal(store_inbox_file_put(st, "v1", "INVALID", 1000, &err), 0);
	assert_int_equal(store_inbox_file_put(st, "v1", "TAKEN", 2000, &err), 0);
	store_close(st);
	assert_int_equal(store_open(path, &st, &err), 0);
	*state = st;
	assert_int_equal(store_inbox_file_get(st, "v1", &status, &err), 1);
	assert_string_equal(status, "TAKEN");
	free(status);
	assert_int_equal(store_inbox_file_get(st, "v2", &status, &err), 0);
	strbuf_release(&err);
}

static void test_open_errors(void **state)
{
	(void)state;
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open("/nonexistent-dir/x/steppy.db", &st, &err), SP_ESTORE);
	assert_non_null(strstr(err.buf, "cannot open"));
	strbuf_reset(&err);
	/* A file that is not a database is refused, not overwritten. */
	char junk[64];
	snprintf(junk, sizeof(junk), "/tmp/steppy-junk-%d.db", (int)getpid());
	FILE *f = fopen(junk, "w");
	fputs("this is not a database, it is a text file with enough bytes in it to matter......"
	      "...........................................",
	      f);
	fclose(f);
	assert_int_equal(store_open(junk, &st, &err), SP_ESTORE);
	assert_true(err.len > 0);
	unlink(junk);
	strbuf_release(&err);
}

/* Creates an execution whose plan holds a secret; returns store_create's code. */
static int create_with_secret(struct store *st, const char *id, struct strbuf *err)
{
	struct event_list l = EVENT_LIST_INIT;
	json_t *data =
	    json_pack("{s{s[{s[{ss ss s[{ss ss sb}{ss ss}]}]}]} s{ss}}", "plan", "stages", "steps",
	              "type", "CodeBuild", "name", "b", "environmentVariableOverrides", "name", "T",
	              "value", "s3cr3t-value-1", "secret", 1, "name", "V", "value", "visible-value",
	              "variables", "K", "s3cr3t");
	/* elsewhere in the plan, a string made from a secret */
	json_array_append_new(
	    json_object_get(
	        json_array_get(json_object_get(json_object_get(data, "plan"), "stages"), 0),
	        "steps"),
	    json_pack("{ss s{ss}}", "type", "Exec", "env", "E", "pre-s3cr3t-value-1"));
	struct event *e = event_list_add(&l, EV_EXECUTION_STARTED, -1, -1, 0, data);
	e->seq = 1;
	struct store_append_item it = {
		.id = id, .events = l.items, .nevents = 1, .status = "RUNNING"
	};
	struct exec_row row = { .id = (char *)id };
	int r = store_create(st, &row, "me", 5000, 30000, &it, err);
	event_list_release(&l);
	return r;
}

static const char *first_value(const struct event_list *h, size_t i)
{
	json_t *plan = json_object_get(h->items[0].data, "plan");
	json_t *step = json_array_get(
	    json_object_get(json_array_get(json_object_get(plan, "stages"), 0), "steps"), 0);
	return json_string_value(json_object_get(
	    json_array_get(json_object_get(step, "environmentVariableOverrides"), i), "value"));
}

static const char *exec_env(const struct event_list *h)
{
	json_t *plan = json_object_get(h->items[0].data, "plan");
	json_t *step = json_array_get(
	    json_object_get(json_array_get(json_object_get(plan, "stages"), 0), "steps"), 1);
	return json_string_value(json_object_get(json_object_get(step, "env"), "E"));
}

static void test_sealed_secrets(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	/* Without a key file a secret is never stored in clear: refused. */
	assert_int_equal(create_with_secret(st, "nokey", &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "no secret key file"));
	strbuf_reset(&err);

	char key[80];
	snprintf(key, sizeof(key), "/tmp/steppy-test-key-%d/k/secret.key", (int)getpid());
	store_set_key_file(st, key);
	assert_int_equal(create_with_secret(st, "sealed", &err), 0);
	struct stat sb;
	assert_int_equal(stat(key, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 32);

	/* Read back with the key: the values are there, the flag is gone. */
	struct event_list h = EVENT_LIST_INIT;
	assert_int_equal(store_history(st, "sealed", 0, &h, &err), 0);
	assert_string_equal(first_value(&h, 0), "s3cr3t-value-1");
	assert_string_equal(first_value(&h, 1), "visible-value");
	assert_string_equal(exec_env(&h), "pre-s3cr3t-value-1");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(h.items[0].data, "variables"), "K")),
	    "s3cr3t");
	assert_null(json_object_get(h.items[0].data, "secretsSealed"));
	event_list_release(&h);

	/* Another key (or none): "****" and the reason, never an error. */
	char other[96];
	snprintf(other, sizeof(other), "/tmp/steppy-test-key-%d/other.key", (int)getpid());
	store_set_key_file(st, other);
	h = (struct event_list)EVENT_LIST_INIT;
	assert_int_equal(create_with_secret(st, "second", &err), 0); /* makes other.key */
	assert_int_equal(store_history(st, "sealed", 0, &h, &err), 0);
	assert_string_equal(first_value(&h, 0), "****");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(h.items[0].data, "variables"), "K")),
	    "****");
	assert_string_equal(exec_env(&h), "****");
	assert_non_null(
	    strstr(json_string_value(json_object_get(h.items[0].data, "secretsUnavailable")),
	           "does not open"));
	event_list_release(&h);
	store_set_key_file(st, NULL);
	h = (struct event_list)EVENT_LIST_INIT;
	assert_int_equal(store_history(st, "sealed", 0, &h, &err), 0);
	assert_string_equal(first_value(&h, 0), "****");
	event_list_release(&h);

	/* The raw file holds no secret. */
	FILE *f = fopen(path, "rb");
	char wal[80];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	FILE *w = fopen(wal, "rb");
	for (FILE *in = f; in; in = in == f ? w : NULL) {
		char buf[4096];
		size_t n;
		static char all[1 << 22];
		size_t len = 0;
		while ((n = fread(buf, 1, sizeof(buf), in)) > 0 && len + n < sizeof(all)) {
			memcpy(all + len, buf, n);
			len += n;
		}
		assert_null(memmem(all, len, "s3cr3t", 6));
		assert_non_null(in == f ? (void *)1 : memmem(all, len, "visible-value", 13));
	}
	if (f)
		fclose(f);
	if (w)
		fclose(w);
	unlink(key);
	unlink(other);
	*strrchr(key, '/') = '\0';
	rmdir(key);
	*strrchr(key, '/') = '\0';
	rmdir(key);
	strbuf_release(&err);
}

/* Personal links: found by the hash of their token, used once, released
 * again only by whoever used them (at that same time). */
static void test_personal_links(void **state)
{
	struct store *st = *state;
	unsigned char h1[32], h2[32];
	memset(h1, 1, sizeof(h1));
	memset(h2, 2, sizeof(h2));
	assert_int_equal(store_personal_link_add(st, h1, "x1", 0, 1, 2, "alice", 1000, NULL), 0);
	assert_int_equal(store_personal_link_add(st, h1, "x1", 0, 1, 2, "bob", 1000, NULL),
	                 SP_ESTORE); /* one token, one row */
	struct personal_link pl;
	assert_int_equal(store_personal_link_find(st, h2, &pl, NULL), SP_ENOENT);
	assert_int_equal(store_personal_link_find(st, h1, &pl, NULL), 0);
	assert_string_equal(pl.link.execution_id, "x1");
	assert_int_equal(pl.link.stage, 0);
	assert_int_equal(pl.link.step, 1);
	assert_int_equal(pl.link.attempt, 2);
	assert_string_equal(pl.person, "alice");
	assert_int_equal(pl.used_ms, 0);
	personal_link_release(&pl);
	assert_int_equal(store_personal_link_use(st, h1, true, 5000, NULL), 1);
	assert_int_equal(store_personal_link_use(st, h1, true, 6000, NULL), 0);  /* used */
	assert_int_equal(store_personal_link_use(st, h1, false, 6000, NULL), 0); /* not ours */
	assert_int_equal(store_personal_link_find(st, h1, &pl, NULL), 0);
	assert_int_equal(pl.used_ms, 5000);
	personal_link_release(&pl);
	assert_int_equal(store_personal_link_use(st, h1, false, 5000, NULL), 1); /* refused: free */
	assert_int_equal(store_personal_link_use(st, h1, true, 7000, NULL), 1);
	personal_link_release(NULL);
}

/* Lookups by id and by prefix: exact ids win, prefixes must be unique, and
 * characters that mean something to LIKE or GLOB are plain characters. */
static void test_prefix_lookup(void **state)
{
	struct store *st = *state;
	const char *ids[] = { "abc", "abcd", "abd1", "x%y", "x_y", "q\3771" /* q, 0xff, 1 */ };
	for (size_t i = 0; i < sizeof(ids) / sizeof(*ids); i++)
		create(st, ids[i], "o");
	struct strbuf err = STRBUF_INIT;
	struct exec_row r = { 0 };
	static const struct {
		const char *ask, *found; /* found NULL: expect code */
		int code;
	} cases[] = {
		{ "abc", "abc", 0 },       /* exact, although also a prefix of abcd */
		{ "abcd", "abcd", 0 },     /* exact */
		{ "abd", "abd1", 0 },      /* unique prefix */
		{ "abd1", "abd1", 0 },     /* whole id */
		{ "x%", "x%y", 0 },        /* % is no wildcard */
		{ "x_", "x_y", 0 },        /* _ is no wildcard */
		{ "q\xff", "q\3771", 0 },  /* a last byte that cannot be incremented */
		{ "ab", NULL, SP_EINVAL }, /* ambiguous */
		{ "a", NULL, SP_EINVAL },     { "x", NULL, SP_EINVAL },
		{ "abce", NULL, SP_ENOENT },  /* none */
		{ "abcde", NULL, SP_ENOENT }, /* longer than any id */
		{ "b", NULL, SP_ENOENT },     { "", NULL, SP_ENOENT },
		{ "%", NULL, SP_ENOENT },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		strbuf_reset(&err);
		int rc = store_get(st, cases[i].ask, &r, &err);
		if (cases[i].found) {
			if (rc != 0)
				fail_msg("\"%s\": %d %s", cases[i].ask, rc, err.buf);
			assert_string_equal(r.id, cases[i].found);
			exec_row_release(&r);
		} else {
			if (rc != cases[i].code)
				fail_msg("\"%s\": %d, expected %d", cases[i].ask, rc,
				         cases[i].code);
			assert_true(err.len > 0);
		}
	}
	strbuf_release(&err);
}

/* Many processes open a store that does not exist yet, all at once; each
 * records an execution. None may fail ("database is locked"). */
static void test_concurrent_open(void **state)
{
	(void)state;
	char fresh[80];
	for (int round = 0; round < 20; round++) {
		snprintf(fresh, sizeof(fresh), "/tmp/steppy-test-open-%d-%d.db", (int)getpid(),
		         round);
		int go[2];
		assert_int_equal(pipe(go), 0);
		pid_t kids[12];
		for (int k = 0; k < 12; k++) {
			kids[k] = fork();
			assert_true(kids[k] >= 0);
			if (kids[k] == 0) {
				char c;
				close(go[1]);
				if (read(go[0], &c, 1) < 0)
					_exit(3);
				struct store *s = NULL;
				struct strbuf e = STRBUF_INIT;
				int r = store_open(fresh, &s, &e);
				if (r == 0 && k % 2 == 0) {
					char id[16];
					snprintf(id, sizeof(id), "k%d", k);
					struct event_list l = events_from(1, 1);
					struct store_append_item it = { .id = id,
						                        .events = l.items,
						                        .nevents = 1,
						                        .status = "RUNNING" };
					struct exec_row row = { .id = id };
					r = store_create(s, &row, "o", 1, 30000, &it, &e);
					event_list_release(&l);
				}
				if (r < 0)
					fprintf(stderr, "opener %d: %s\n", k, e.buf);
				store_close(s);
				_exit(r < 0 ? 1 : 0);
			}
		}
		close(go[0]);
		close(go[1]); /* every child reads EOF at once */
		int failed = 0;
		for (int k = 0; k < 12; k++) {
			int ws;
			waitpid(kids[k], &ws, 0);
			failed += !WIFEXITED(ws) || WEXITSTATUS(ws) != 0;
		}
		char side[96];
		unlink(fresh);
		snprintf(side, sizeof(side), "%s-wal", fresh);
		unlink(side);
		snprintf(side, sizeof(side), "%s-shm", fresh);
		unlink(side);
		if (failed)
			fail_msg("round %d: %d of 12 openers failed", round, failed);
	}
}

/* Commands that only read never create a store. */
static void test_open_existing(void **state)
{
	(void)state;
	char missing[80];
	snprintf(missing, sizeof(missing), "/tmp/steppy-test-missing-%d.db", (int)getpid());
	unlink(missing);
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open_existing(missing, &st, &err), SP_ENOENT);
	assert_null(st);
	assert_non_null(strstr(err.buf, "no store at"));
	assert_non_null(strstr(err.buf, missing));
	assert_int_equal(access(missing, F_OK), -1);
	/* Once created, it opens. */
	assert_int_equal(store_open(missing, &st, &err), 0);
	store_close(st);
	st = NULL;
	assert_int_equal(store_open_existing(missing, &st, &err), 0);
	store_close(st);
	char side[96];
	unlink(missing);
	snprintf(side, sizeof(side), "%s-wal", missing);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", missing);
	unlink(side);
	strbuf_release(&err);
}

/* A store whose pages were overwritten with garbage is reported by the
 * integrity check, naming the file. */
static void test_integrity_check(void **state)
{
	struct store *st = *state;
	for (int i = 0; i < 200; i++) {
		char id[16];
		snprintf(id, sizeof(id), "c%03d", i);
		create(st, id, "o");
	}
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_check(st, &err), 0);
	store_close(st);
	*state = NULL;
	/* Everything is in the main file after a clean close; garble pages 3 to 6. */
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	char junk[4096 * 4];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 13);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096 * 2), (ssize_t)sizeof(junk));
	close(fd);
	int r = store_open(path, &st, &err);
	if (r == 0) {
		r = store_check(st, &err);
		store_close(st);
	}
	assert_int_equal(r, SP_ESTORE);
	assert_non_null(strstr(err.buf, path));
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_append_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approval_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_unfinished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_personal_links, setup, teardown),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_sealed_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_lookup, setup, teardown),
		cmocka_unit_test(test_concurrent_open),
		cmocka_unit_test(test_open_existing),
		cmocka_unit_test_setup_teardown(test_integrity_check, setup, teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
