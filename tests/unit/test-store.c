/*
 * test-store.c - the store's conformance suite, run against both backends:
 * SQLite always, PostgreSQL when STEPPY_TEST_PG names a server
 * (tests/lib/pg.sh starts one; each test gets a schema of its own).
 * Creating executions, appending under a lease, group commit, history
 * reads, prefixes, leases, the inbox, the store's settings, sealed secrets,
 * the serve inbox's file versions, concurrent creation of a new store; then
 * what only one backend has: SQLite's files (damaged, missing, not a
 * database), PostgreSQL's fencing tokens, newer schemas, URLs with a
 * password, and a connection lost to a server restart.
 */
#include "unit.h"

#include "store/store.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static bool pg_mode;     /* the backend of the group that runs */
static char path[1024];  /* the current test's store: a file, or a URL */
static char schema[64];  /* PostgreSQL: the current test's schema */
static int location_seq; /* numbers fresh locations */

static void write_key(const char *p, unsigned char fill);
static void store_sql(const char *sql);

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Runs SQL on the test server (outside any store); fails the test on error. */
static void admin_sql(const char *sql, char *ret, size_t ret_size)
{
	PGconn *c = PQconnectdb(getenv("STEPPY_TEST_PG"));
	if (PQstatus(c) != CONNECTION_OK)
		fail_msg("cannot reach the test server: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	PGresult *res = PQexec(c, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(c));
	if (ret)
		snprintf(ret, ret_size, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	PQfinish(c);
}

/* A new place for a store, where none is yet: a file name, or (PostgreSQL)
 * a URL whose search_path is a new empty schema (its name in sch). */
static void fresh_location(char *out, size_t n, char *sch, size_t sch_size)
{
	location_seq++;
	if (!pg_mode) {
		snprintf(out, n, "/tmp/steppy-test-store-%d-%d.db", (int)getpid(), location_seq);
		unlink(out);
		return;
	}
	char sql[128];
	snprintf(sch, sch_size, "t%d_%d", (int)getpid(), location_seq);
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", sch);
	admin_sql(sql, NULL, 0);
	const char *base = getenv("STEPPY_TEST_PG");
	snprintf(out, n, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
	         sch);
}

/* Removes what fresh_location() made and the store put there. */
static void drop_location(const char *loc, const char *sch)
{
	if (pg_mode) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", sch);
		admin_sql(sql, NULL, 0);
		return;
	}
	char side[1100];
	unlink(loc);
	snprintf(side, sizeof(side), "%s-wal", loc);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", loc);
	unlink(side);
}

static int setup(void **state)
{
	fresh_location(path, sizeof(path), schema, sizeof(schema));
	struct store *st;
	struct strbuf err = STRBUF_INIT;
	if (store_open(path, &st, &err) != 0) {
		fprintf(stderr, "%s\n", err.buf);
		strbuf_release(&err);
		return -1;
	}
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	store_close(*state);
	drop_location(path, schema);
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

/* What store_lease_renew_each() named. */
struct renewed_ids {
	int n, lease1;
};

static void renewed_count(const char *id, void *arg)
{
	struct renewed_ids *ids = arg;
	ids->n++;
	ids->lease1 += !strcmp(id, "lease1");
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
	/* An expired lease is no lease, even for its owner. */
	struct event_list late = events_from(4, 1);
	struct store_append_item it2 = {
		.id = "lease1", .events = late.items, .nevents = 1, .status = "RUNNING"
	};
	strbuf_reset(&err);
	assert_int_equal(store_append(st, "owner-b", 70001, &it2, 1, NULL, NULL, 0, &err),
	                 SP_ECONFLICT);
	assert_non_null(strstr(err.buf, "expired"));
	event_list_release(&late);
	/* Renewal keeps it, and names the leases it renewed; release frees it. */
	assert_int_equal(store_lease_renew(st, "owner-b", 60000, 30000, &err), 0);
	struct renewed_ids ids = { 0 };
	assert_int_equal(
	    store_lease_renew_each(st, "owner-b", 60000, 30000, renewed_count, &ids, &err), 0);
	assert_int_equal(ids.n, 1);
	assert_int_equal(ids.lease1, 1);
	ids = (struct renewed_ids){ 0 };
	assert_int_equal(
	    store_lease_renew_each(st, "owner-z", 60000, 30000, renewed_count, &ids, &err), 0);
	assert_int_equal(ids.n, 0);
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
	assert_string_equal(v, "2");
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
	/* A libpq key=value string is neither a file nor shown (it may hold a
	 * password): refused, nothing made. */
	const char *conninfo = "host=db.internal user=steppy password=hunter2 dbname=steppy";
	strbuf_reset(&err);
	assert_int_equal(store_open(conninfo, &st, &err), SP_EINVAL);
	assert_null(strstr(err.buf, "hunter2"));
	assert_int_equal(access(conninfo, F_OK), -1);
	char *shown = store_display_name(conninfo);
	assert_null(strstr(shown, "hunter2"));
	free(shown);
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
	write_key(other, 9); /* another node's key: it cannot seal here (test_key_fingerprint) */
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

	/* What the store holds has no secret: the raw file (and its WAL), or
	 * the rows of the database. */
	if (pg_mode) {
		char n[32], sql[512];
		snprintf(
		    sql, sizeof(sql),
		    "SELECT (SELECT count(*) FROM %s.events WHERE data LIKE '%%s3cr3t%%') || "
		    "'/' || (SELECT count(*) FROM %s.events WHERE data LIKE '%%visible-value%%')",
		    schema, schema);
		admin_sql(sql, n, sizeof(n));
		assert_string_equal(n, "0/1");
	} else {
		FILE *f = fopen(path, "rb");
		char wal[1100];
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
			assert_non_null(in == f ? (void *)1
			                        : memmem(all, len, "visible-value", 13));
		}
		if (f)
			fclose(f);
		if (w)
			fclose(w);
	}
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
	/* PostgreSQL holds UTF-8 text only: the id with byte 0xff is SQLite's. */
	size_t nids = sizeof(ids) / sizeof(*ids) - (pg_mode ? 1 : 0);
	for (size_t i = 0; i < nids; i++)
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
		if (pg_mode && strchr(cases[i].ask, '\xff'))
			continue;
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
	char fresh[1024], sch[64];
	for (int round = 0; round < (pg_mode ? 8 : 20); round++) {
		fresh_location(fresh, sizeof(fresh), sch, sizeof(sch));
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
		/* Every opener that created an execution left it. */
		struct store *s = NULL;
		struct strbuf e = STRBUF_INIT;
		if (!failed && store_open_existing(fresh, &s, &e) == 0) {
			char **ids = NULL;
			size_t n = 0;
			if (store_unfinished(s, &ids, &n, &e) == 0 && n != 6)
				failed = 100 + (int)n;
			for (size_t i = 0; i < n; i++)
				free(ids[i]);
			free(ids);
			store_close(s);
		} else if (!failed) {
			failed = 99;
		}
		strbuf_release(&e);
		drop_location(fresh, sch);
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

/* ---- PostgreSQL only ---------------------------------------------------------- */

/* Appends events first_seq.. of id as owner at now: the store's code. */
static int append_as(struct store *st, const char *id, const char *owner, int64_t now,
                     int64_t first_seq, struct strbuf *err)
{
	struct event_list l = events_from(first_seq, 1);
	struct store_append_item it = {
		.id = id, .events = l.items, .nevents = 1, .status = "RUNNING"
	};
	int r = store_append(st, owner, now, &it, 1, NULL, NULL, 0, err);
	event_list_release(&l);
	return r;
}

static int64_t last_seq_of(struct store *st, const char *id)
{
	struct exec_row r = { 0 };
	assert_int_equal(store_get(st, id, &r, NULL), 0);
	int64_t n = r.last_seq;
	exec_row_release(&r);
	return n;
}

/*
 * Fencing: node A (paused past its lease) cannot append once node B took
 * the release over, nor after B let it go and A took it back with a stale
 * copy; and a second handle that took the lease under the very same owner
 * name after it expired fences the first one out.
 */
static void test_pg_fencing(void **state)
{
	struct store *a = *state, *b = NULL, *a2 = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open(path, &b, &err), 0);
	create(a, "fence1", "node-a"); /* lease until 35000 */
	/* A pauses; at 40000 B takes the expired lease and appends. */
	assert_int_equal(store_lease_take(b, "fence1", "node-b", 40000, 30000, &err), 0);
	assert_int_equal(append_as(b, "fence1", "node-b", 40001, 3, &err), 0);
	/* A wakes up: its append fails and writes nothing. */
	strbuf_reset(&err);
	assert_int_equal(append_as(a, "fence1", "node-a", 40002, 3, &err), SP_ECONFLICT);
	assert_non_null(strstr(err.buf, "no longer holds"));
	assert_int_equal(last_seq_of(b, "fence1"), 3);
	/* B lets go; A takes it back (a new fence) but its copy is stale: the
	 * history's next number is taken, nothing is written. */
	assert_int_equal(store_lease_release(b, "fence1", "node-b", &err), 0);
	assert_int_equal(store_lease_take(a, "fence1", "node-a", 50000, 30000, &err), 0);
	assert_int_equal(append_as(a, "fence1", "node-a", 50001, 3, &err), SP_ECONFLICT);
	assert_int_equal(last_seq_of(a, "fence1"), 3);
	/* The same owner name on two handles: the one that took the expired
	 * lease last holds the fence; the other is refused. */
	assert_int_equal(store_open(path, &a2, &err), 0);
	assert_int_equal(store_lease_take(a2, "fence1", "node-a", 90000, 30000, &err), 0);
	strbuf_reset(&err);
	assert_int_equal(append_as(a, "fence1", "node-a", 90001, 4, &err), SP_ECONFLICT);
	assert_non_null(strstr(err.buf, "changed hands"));
	assert_int_equal(last_seq_of(a, "fence1"), 3);
	assert_int_equal(append_as(a2, "fence1", "node-a", 90002, 4, &err), 0);
	/* Renewing a live lease keeps the fence. */
	assert_int_equal(store_lease_take(a2, "fence1", "node-a", 130001, 30000, &err), 0);
	assert_int_equal(store_lease_renew(a2, "node-a", 140000, 30000, &err), 0);
	assert_int_equal(store_lease_take(a, "fence1", "node-a", 140000, 30000, &err), 0);
	assert_int_equal(append_as(a, "fence1", "node-a", 140001, 5, &err), 0);
	assert_int_equal(append_as(a2, "fence1", "node-a", 140001, 6, &err), 0);
	assert_int_equal(store_lease_take(a2, "fence1", "node-a", 140001, 30000, &err), 0);
	assert_int_equal(append_as(a2, "fence1", "node-a", 140002, 7, &err), 0);
	assert_int_equal(last_seq_of(a2, "fence1"), 7);
	store_close(b);
	store_close(a2);
	strbuf_release(&err);
}

/*
 * Clock skew: node A's clock is 60 s behind (store_test_clock_skew_ms
 * stands for its clock; it passes its own time as now, as the runtime
 * does). Its live lease, renewed every so often, is not taken by node B
 * on the right clock, since expiry is the database's time; once A stops
 * renewing, B takes it after the TTL (B's now moved on by 8 s) and A can
 * no longer append.
 */
static void test_pg_clock_skew(void **state)
{
	struct store *a = *state, *b = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open(path, &b, &err), 0);
	atomic_store(&store_test_clock_skew_ms, -60000);
	struct event_list l = events_from(1, 2);
	struct store_append_item it = {
		.id = "skew1", .events = l.items, .nevents = l.len, .status = "RUNNING"
	};
	struct exec_row row = { .id = "skew1", .plan_name = "p" };
	assert_int_equal(store_create(a, &row, "node-a", wall_clock_ms() - 60000, 7000, &it, &err),
	                 0);
	event_list_release(&l);
	atomic_store(&store_test_clock_skew_ms, 0);
	assert_true(store_lease_held_elsewhere(b, "skew1", "node-b", wall_clock_ms()));
	strbuf_reset(&err);
	assert_int_equal(store_lease_take(b, "skew1", "node-b", wall_clock_ms(), 7000, &err),
	                 SP_EBUSY);
	/* A renews on its clock and appends; B still cannot take it. */
	atomic_store(&store_test_clock_skew_ms, -60000);
	assert_int_equal(store_lease_renew(a, "node-a", wall_clock_ms() - 60000, 7000, &err), 0);
	assert_int_equal(append_as(a, "skew1", "node-a", wall_clock_ms() - 60000, 3, &err), 0);
	atomic_store(&store_test_clock_skew_ms, 0);
	assert_int_equal(store_lease_take(b, "skew1", "node-b", wall_clock_ms(), 7000, &err),
	                 SP_EBUSY);
	/* Expiry still works: 8 s later by B's clock the lease is B's. */
	assert_false(store_lease_held_elsewhere(b, "skew1", "node-b", wall_clock_ms() + 8000));
	assert_int_equal(store_lease_take(b, "skew1", "node-b", wall_clock_ms() + 8000, 7000, &err),
	                 0);
	atomic_store(&store_test_clock_skew_ms, -60000);
	assert_int_equal(append_as(a, "skew1", "node-a", wall_clock_ms() - 60000, 4, &err),
	                 SP_ECONFLICT);
	atomic_store(&store_test_clock_skew_ms, 0);
	assert_int_equal(last_seq_of(b, "skew1"), 3);
	store_close(b);
	strbuf_release(&err);
}

/* A lease whose holder is a process of this host (and PID namespace) that
 * is gone is free at once; the same PID under another host name, or in
 * another PID namespace of this host name, is not concluded dead. */
static void test_pg_dead_holder(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	create(st, "dead1", "gone-owner");
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "UPDATE %s.leases SET pid = 2147483000, expires_ms = 999999999 WHERE "
	         "execution_id = 'dead1'",
	         schema);
	admin_sql(sql, NULL, 0);
	assert_false(store_lease_held_elsewhere(st, "dead1", "me", 6000));
	assert_int_equal(store_lease_take(st, "dead1", "me", 6000, 30000, &err), 0);
	snprintf(sql, sizeof(sql),
	         "UPDATE %s.leases SET owner = 'other', pid = 2147483000, expires_ms = 999999999, "
	         "host = split_part(host, ' ', 1) || ' pid:[1]' WHERE execution_id = 'dead1'",
	         schema);
	admin_sql(sql, NULL, 0);
	assert_true(store_lease_held_elsewhere(st, "dead1", "me", 7000));
	assert_int_equal(store_lease_take(st, "dead1", "me", 7000, 30000, &err), SP_EBUSY);
	strbuf_release(&err);
}

/* A store a newer steppy made is refused and left as it is. */
static void test_pg_newer_schema(void **state)
{
	store_close(*state);
	*state = NULL;
	char sql[128], v[16];
	snprintf(sql, sizeof(sql), "UPDATE %s.meta SET value = '99' WHERE key = 'schema'", schema);
	admin_sql(sql, NULL, 0);
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open(path, &st, &err), SP_ESTORE);
	assert_null(st);
	assert_non_null(strstr(err.buf, "newer steppy (store schema 99"));
	snprintf(sql, sizeof(sql), "SELECT value FROM %s.meta WHERE key = 'schema'", schema);
	admin_sql(sql, v, sizeof(v));
	assert_string_equal(v, "99");
	strbuf_release(&err);
}

/* A schema 1 store (before the secret key's fingerprint) is migrated to 2
 * at open, everything in it kept. */
static void test_pg_migrate_v1(void **state)
{
	create(*state, "old1", "o");
	store_close(*state);
	*state = NULL;
	store_sql("DROP TABLE secret_key; UPDATE meta SET value = '1' WHERE key = 'schema'");
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	if (store_open_existing(path, &st, &err) != 0)
		fail_msg("open: %s", err.buf);
	*state = st;
	int version = 0, known = 0;
	assert_int_equal(store_schema_version(st, &version, &known, &err), 0);
	assert_int_equal(version, 2);
	assert_int_equal(known, 2);
	assert_int_equal(last_seq_of(st, "old1"), 2);
	assert_int_equal(store_check(st, &err), 0);
	strbuf_release(&err);
}

/* store_open_existing() of a database without steppy's schema refuses it
 * and creates nothing; store_check() finds a history with a gap. */
static void test_pg_existing_and_check(void **state)
{
	struct store *st = *state, *other = NULL;
	struct strbuf err = STRBUF_INIT;
	char empty[1024], sch[64], n[16], sql[256];
	fresh_location(empty, sizeof(empty), sch, sizeof(sch));
	assert_int_equal(store_open_existing(empty, &other, &err), SP_ESTORE);
	assert_non_null(strstr(err.buf, "not a steppy store"));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'", sch);
	admin_sql(sql, n, sizeof(n));
	assert_string_equal(n, "0");
	drop_location(empty, sch);
	/* Check: sound, then a lost event is found. */
	create(st, "chk1", "o");
	strbuf_reset(&err);
	assert_int_equal(store_check(st, &err), 0);
	int version = 0, known = 0;
	assert_int_equal(store_schema_version(st, &version, &known, &err), 0);
	assert_int_equal(version, known);
	snprintf(sql, sizeof(sql), "DELETE FROM %s.events WHERE seq = 1", schema);
	admin_sql(sql, NULL, 0);
	assert_int_equal(store_check(st, &err), SP_ESTORE);
	assert_non_null(strstr(err.buf, "damaged"));
	/* A backup is pg_dump's job. */
	strbuf_reset(&err);
	assert_int_equal(store_backup(st, "/tmp/never-written.db", false, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "pg_dump"));
	assert_int_equal(access("/tmp/never-written.db", F_OK), -1);
	strbuf_release(&err);
}

/* A password in the URL never reaches a message. */
static void test_pg_password_masked(void **state)
{
	(void)state;
	struct store *st = NULL;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(
	    store_open("postgresql://alice:hunter2@/steppy?host=/nonexistent-dir&connect_timeout=2",
	               &st, &err),
	    SP_ESTORE);
	assert_null(st);
	assert_non_null(strstr(
	    err.buf,
	    "cannot connect to PostgreSQL at postgresql://alice@/steppy?host=/nonexistent-dir"));
	assert_null(strstr(err.buf, "hunter2"));
	strbuf_reset(&err);
	assert_int_equal(
	    store_open("postgres:///steppy?host=/nonexistent-dir&password=hunter2", &st, &err),
	    SP_ESTORE);
	assert_null(strstr(err.buf, "hunter2"));
	assert_null(strstr(err.buf, "password"));
	char *shown;
	shown = store_display_name("/var/lib/steppy/steppy.db");
	assert_string_equal(shown, "/var/lib/steppy/steppy.db");
	free(shown);
	assert_true(store_is_url("POSTGRES://x"));
	/* near misses are URLs too: libpq judges them, they never make a file */
	assert_true(store_is_url("postgresql:"));
	assert_true(store_is_url("postgresql:/steppy"));
	assert_true(store_is_url("PostgreS:steppy"));
	assert_false(store_is_url("postgre:steppy"));
	assert_false(store_is_url("./postgres:x"));
	assert_int_equal(store_open("postgresql:/steppy", &st, &err), SP_ESTORE);
	assert_non_null(strstr(err.buf, "not a valid PostgreSQL URL"));
	assert_int_equal(access("postgresql:", F_OK), -1);
	strbuf_release(&err);
}

/* The server goes away under an open store (its connection is cut, or the
 * server restarts): the next call fails with SP_ESTORE and says so, the one
 * after reconnects and works; and another connection's commit moves the
 * data version (NOTIFY). */
static void test_pg_connection_reset(void **state)
{
	struct store *st = *state, *other = NULL;
	struct strbuf err = STRBUF_INIT;
	create(st, "rst1", "o");
	int64_t v0 = store_data_version(st);
	assert_int_equal(store_open(path, &other, &err), 0);
	int64_t id = 0;
	json_t *data = json_object();
	assert_int_equal(store_inbox_add(other, "rst1", "approve", data, 1, &id, &err), 0);
	json_decref(data);
	int64_t v1 = v0;
	for (int i = 0; i < 200 && v1 == v0; i++) {
		usleep(10000);
		v1 = store_data_version(st);
	}
	assert_true(v1 != v0);
	/* Its own commits do not move it. */
	assert_int_equal(append_as(st, "rst1", "o", 6000, 3, &err), 0);
	usleep(50000);
	assert_true(store_data_version(st) == v1);
	store_close(other);

	/* The connection is cut under the store (the server ends it): the next
	 * call notices before it sends anything, reconnects and works. */
	char sql[256];
	snprintf(sql, sizeof(sql),
	         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
	         "application_name = 'steppy' AND pid <> pg_backend_pid()");
	admin_sql(sql, NULL, 0);
	usleep(100000);
	struct exec_row r = { 0 };
	strbuf_reset(&err);
	if (store_get(st, "rst1", &r, &err) != 0)
		fail_msg("after the cut: %s", err.buf);
	exec_row_release(&r);
	/* Cut while an append is on its way (no pause: the goodbye may not be
	 * there yet): it fails cleanly or succeeds, and the next one works. */
	int64_t seq = 4;
	for (int round = 0; round < 5; round++) {
		admin_sql(sql, NULL, 0);
		strbuf_reset(&err);
		int rc = append_as(st, "rst1", "o", 6100 + round, seq, &err);
		if (rc == 0) {
			seq++;
			continue;
		}
		assert_int_equal(rc, SP_ESTORE);
		print_message("append cut: %s\n", err.buf);
		strbuf_reset(&err);
		if (append_as(st, "rst1", "o", 6100 + round, seq, &err) != 0)
			fail_msg("after a cut append: %s", err.buf);
		seq++;
	}
	assert_int_equal(last_seq_of(st, "rst1"), seq - 1);
	const char *ctl = getenv("STEPPY_TEST_PG_CTL");
	if (ctl && *ctl) {
		/* The server is down: calls fail with SP_ESTORE and say why, and
		 * do not wait; once it is back, the next call reconnects. */
		char cmd[2048];
		snprintf(cmd, sizeof(cmd), "%s -m fast stop >/dev/null 2>&1", ctl);
		assert_int_equal(system(cmd), 0);
		strbuf_reset(&err);
		assert_int_equal(store_get(st, "rst1", &r, &err), SP_ESTORE);
		print_message("server down: %s\n", err.buf);
		assert_non_null(strstr(err.buf, "PostgreSQL"));
		strbuf_reset(&err);
		assert_int_equal(append_as(st, "rst1", "o", 6500, seq, &err), SP_ESTORE);
		assert_non_null(strstr(err.buf, "cannot reach PostgreSQL"));
		snprintf(cmd, sizeof(cmd), "%s start >/dev/null 2>&1", ctl);
		assert_int_equal(system(cmd), 0);
	}
	strbuf_reset(&err);
	if (store_get(st, "rst1", &r, &err) != 0)
		fail_msg("after a reconnect: %s", err.buf);
	assert_int_equal(r.last_seq, seq - 1);
	exec_row_release(&r);
	assert_true(store_data_version(st) != v1); /* notifications may have been missed */
	assert_int_equal(append_as(st, "rst1", "o", 7000, seq, &err), 0);
	strbuf_release(&err);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A SQLite store for a copy test (pg_mode stays true around it). */
static struct store *copy_source(char *file, size_t n, const char *tag)
{
	struct store *src = NULL;
	struct strbuf err = STRBUF_INIT;
	snprintf(file, n, "/tmp/steppy-test-%s-%d.db", tag, (int)getpid());
	pg_mode = false;
	drop_location(file, NULL);
	if (store_open(file, &src, &err) != 0)
		fail_msg("%s: %s", file, err.buf);
	pg_mode = true;
	strbuf_release(&err);
	return src;
}

static void copy_source_drop(struct store *src, const char *file)
{
	store_close(src);
	pg_mode = false;
	drop_location(file, NULL);
	pg_mode = true;
}

static int64_t count_in(const char *table, const char *where)
{
	char sql[256], v[32];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s%s%s", schema, table,
	         where ? " WHERE " : "", where ? where : "");
	admin_sql(sql, v, sizeof(v));
	return strtoll(v, NULL, 10);
}

/* store_copy(): a SQLite store, everything in it, into an empty PostgreSQL
 * store; a second copy is refused unless forced; PostgreSQL into SQLite is
 * not done. */
static void test_pg_copy_from_sqlite(void **state)
{
	struct store *dst = *state, *src = NULL;
	struct strbuf err = STRBUF_INIT;
	char file[96], key[96];
	snprintf(file, sizeof(file), "/tmp/steppy-test-copy-%d.db", (int)getpid());
	snprintf(key, sizeof(key), "/tmp/steppy-test-copy-%d.key", (int)getpid());
	unlink(file);
	unlink(key);
	pg_mode = false;
	assert_int_equal(store_open(file, &src, &err), 0);
	pg_mode = true;
	store_set_key_file(src, key);
	create(src, "cp1", "o");
	assert_int_equal(create_with_secret(src, "cp2", &err), 0);
	int64_t cmd = 0;
	json_t *data = json_pack("{si}", "step", 1);
	assert_int_equal(store_inbox_add(src, "cp1", "approve", data, 10, &cmd, &err), 0);
	json_decref(data);
	unsigned char h[32], hp[32];
	memset(h, 7, sizeof(h));
	memset(hp, 8, sizeof(hp));
	assert_int_equal(store_approval_link_add(src, h, "cp1", 0, 1, 1, 20, &err), 0);
	assert_int_equal(store_personal_link_add(src, hp, "cp1", 0, 1, 1, "ann", 20, &err), 0);
	assert_int_equal(store_meta_set(src, "serve.tokens", "http://x", &err), 0);
	assert_int_equal(store_inbox_file_put(src, "v9", "INVALID", 30, &err), 0);

	struct store_copy_opts o = { .now = wall_ms() };
	struct store_copy_counts n;
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy: %s", err.buf);
	assert_int_equal(n.copied, 2);
	assert_int_equal(n.commands, 1);
	struct event_list a = EVENT_LIST_INIT, b = EVENT_LIST_INIT;
	store_set_key_file(dst, key);
	assert_int_equal(store_history(src, "cp2", 0, &a, &err), 0);
	assert_int_equal(store_history(dst, "cp2", 0, &b, &err), 0);
	assert_int_equal(a.len, b.len);
	assert_string_equal(first_value(&b, 0), "s3cr3t-value-1"); /* unsealed by the same key */
	event_list_release(&a);
	event_list_release(&b);
	assert_int_equal(last_seq_of(dst, "cp1"), 2);
	struct approval_link l;
	assert_int_equal(store_approval_link_find(dst, h, &l, &err), 0);
	free(l.execution_id);
	struct personal_link pl;
	assert_int_equal(store_personal_link_find(dst, hp, &pl, &err), 0);
	assert_string_equal(pl.person, "ann");
	personal_link_release(&pl);
	char *v = NULL;
	assert_int_equal(store_meta_get(dst, "serve.tokens", &v, &err), 0);
	assert_string_equal(v, "http://x");
	free(v);
	assert_int_equal(store_inbox_file_get(dst, "v9", &v, &err), 1);
	free(v);
	/* The command kept its id, and new ones come after it. */
	char *result = NULL;
	assert_int_equal(store_inbox_result(dst, cmd, &result, &err), 0);
	int64_t next = 0;
	data = json_object();
	assert_int_equal(store_inbox_add(dst, "cp1", "abort", data, 40, &next, &err), 0);
	json_decref(data);
	assert_true(next > cmd);
	/* Not twice, unless forced; not the other way. */
	strbuf_reset(&err);
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "--force"));
	o.force = true;
	assert_int_equal(store_copy(src, dst, &o, &n, &err), 0);
	assert_int_equal(n.copied + n.replaced, 0);
	assert_int_equal(n.unchanged, 2);
	assert_int_equal(n.commands_there, 1);
	assert_int_equal(store_copy(dst, src, &o, &n, &err), SP_EINVAL);
	assert_int_equal(store_check(dst, &err), 0);
	store_close(src);
	pg_mode = false;
	drop_location(file, NULL);
	pg_mode = true;
	unlink(key);
	strbuf_release(&err);
}

/* A handle that stopped asking for the data version stops listening; when
 * it asks again, the version moves (what was written meanwhile was not
 * counted), so that its caller reads again. */
static void test_pg_version_after_unlisten(void **state)
{
	struct store *st = *state, *other = NULL;
	struct strbuf err = STRBUF_INIT;
	char *v = NULL;
	assert_int_equal(store_open(path, &other, &err), 0);
	create(other, "unl1", "o");
	int64_t v0 = store_data_version(st);
	sleep(11);                               /* longer than the handle listens unasked */
	store_meta_get(st, "nothing", &v, &err); /* any call */
	free(v);
	int64_t id = 0;
	json_t *data = json_object();
	assert_int_equal(store_inbox_add(other, "unl1", "cancel", data, 5000, &id, &err), 0);
	json_decref(data);
	assert_true(store_data_version(st) != v0);
	store_close(other);
	strbuf_release(&err);
}

/* Hostile URLs: no form of a password (a '#' in it, a percent-encoded key,
 * sslpassword, a bad percent-encoding libpq would quote) reaches a message
 * or the display name, which shows only user, host, port and database. */
static void test_pg_password_never_shown(void **state)
{
	(void)state;
	static const char *const urls[] = {
		"postgresql://alice:Tr0ub4dor#3@/steppy?host=/nonexistent-dir&connect_timeout=2",
		"postgresql://alice:Tr0ub4dor#3@localhost:1/steppy?connect_timeout=2",
		"postgres:///steppy?host=/nonexistent-dir&pass%77ord=Tr0ub4dor",
		"postgres:///steppy?host=/nonexistent-dir&%70assword=Tr0ub4dor",
		"postgres:///steppy?host=/nonexistent-dir&sslpassword=Tr0ub4dor",
		"postgres:///steppy?host=/nonexistent-dir&password=p%zzTr0ub4dor",
		"postgres:///steppy?host=/nonexistent-dir&password=Tr0ub4dor%",
		"postgresql://alice:Tr0ub4dor@[::1/steppy",
		"postgresql://alice:Tr0ub4dor@/steppy?host=/nonexistent-dir&bogus=1",
		"postgresql://alice:Tr0ub4dor@/steppy?host=/nonexistent-dir&sslmode=Tr0ub4dor",
	};
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		struct store *st = NULL;
		struct strbuf err = STRBUF_INIT;
		assert_int_equal(store_open(urls[i], &st, &err), SP_ESTORE);
		assert_null(st);
		if (strstr(err.buf, "Tr0ub4dor"))
			fail_msg("%s: %s", urls[i], err.buf);
		strbuf_reset(&err);
		assert_int_equal(store_open_existing(urls[i], &st, &err), SP_ESTORE);
		if (strstr(err.buf, "Tr0ub4dor"))
			fail_msg("%s: %s", urls[i], err.buf);
		char *shown = store_display_name(urls[i]);
		if (strstr(shown, "Tr0ub4dor"))
			fail_msg("%s: shown as %s", urls[i], shown);
		free(shown);
		strbuf_release(&err);
	}
	char *shown = store_display_name(
	    "postgresql://u:p%40ss@db.example:5432/steppy?sslmode=require&options=-cx%3Dy");
	assert_string_equal(shown, "postgresql://u@db.example:5432/steppy");
	free(shown);
	shown = store_display_name("postgresql://u:p@/steppy?host=/run/pg");
	assert_string_equal(shown, "postgresql://u@/steppy?host=/run/pg");
	free(shown);
	shown = store_display_name("postgres:///steppy?password=p%zz");
	assert_string_equal(shown, "postgresql://…");
	free(shown);
}

/* A schema holding another application's executions or meta table is not
 * taken for a store: opening refuses it and writes nothing there; a schema
 * stamp that is not exactly a number is not a version. */
static void test_pg_foreign_tables(void **state)
{
	(void)state;
	static const char *const tables[] = { "executions", "meta" };
	for (size_t i = 0; i < 2; i++) {
		char loc[1024], sch[64], sql[256], n[16];
		fresh_location(loc, sizeof(loc), sch, sizeof(sch));
		snprintf(sql, sizeof(sql), "CREATE TABLE %s.%s (key text, value text)", sch,
		         tables[i]);
		admin_sql(sql, NULL, 0);
		struct store *st = NULL;
		struct strbuf err = STRBUF_INIT;
		assert_int_equal(store_open(loc, &st, &err), SP_ESTORE);
		assert_null(st);
		char want[256];
		snprintf(want, sizeof(want),
		         "not a steppy store: %s already has a table named %s (another "
		         "application's?)",
		         sch, tables[i]);
		if (!strstr(err.buf, want))
			fail_msg("%s: %s", tables[i], err.buf);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_tables WHERE schemaname = '%s'",
		         sch);
		admin_sql(sql, n, sizeof(n));
		assert_string_equal(n, "1");
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s.%s", sch, tables[i]);
		admin_sql(sql, n, sizeof(n));
		assert_string_equal(n, "0");
		strbuf_release(&err);
		drop_location(loc, sch);
	}
	static const char *const stamps[] = { " 1", "1x", "+1", "01 " };
	for (size_t i = 0; i < 4; i++) {
		char loc[1024], sch[64], sql[256];
		fresh_location(loc, sizeof(loc), sch, sizeof(sch));
		struct store *st = NULL;
		struct strbuf err = STRBUF_INIT;
		assert_int_equal(store_open(loc, &st, &err), 0);
		store_close(st);
		st = NULL;
		snprintf(sql, sizeof(sql), "UPDATE %s.meta SET value = '%s' WHERE key = 'schema'",
		         sch, stamps[i]);
		admin_sql(sql, NULL, 0);
		assert_int_equal(store_open(loc, &st, &err), SP_ESTORE);
		if (!strstr(err.buf, "which is not a version"))
			fail_msg("stamp '%s': %s", stamps[i], err.buf);
		strbuf_release(&err);
		drop_location(loc, sch);
	}
}

/* A handle that asked for the data version and then is not called at all
 * (a stream's, parked in a pool) does not listen for ever: the server ends
 * its idle session, so unread notifications never pin PostgreSQL's queue;
 * the next call reconnects, works, and the version moves. */
static void test_pg_parked_listener(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	char n[16];
	create(st, "park1", "o");
	int64_t v0 = store_data_version(st); /* listens from now on */
	admin_sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'steppy'", n,
	          sizeof(n));
	assert_string_equal(n, "1");
	/* not called at all: within a minute its session is gone */
	for (int i = 0; i < 60 && strcmp(n, "0") != 0; i++) {
		sleep(1);
		admin_sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
		          "'steppy'",
		          n, sizeof(n));
	}
	assert_string_equal(n, "0");
	struct exec_row row;
	assert_int_equal(store_get(st, "park1", &row, &err), 0);
	exec_row_release(&row);
	assert_true(store_data_version(st) != v0);
	strbuf_release(&err);
}

/*
 * store_copy --force into a store that holds the releases already: one
 * that went on in the source is replaced whole (never a row that disagrees
 * with its history); one that is the same is left and counted so; an inbox
 * command whose id the target used for another command gets a new id
 * rather than being lost; one that went on in the target refuses the copy.
 */
static void test_pg_copy_force(void **state)
{
	struct store *dst = *state;
	struct strbuf err = STRBUF_INIT;
	char file[96];
	struct store *src = copy_source(file, sizeof(file), "force");
	create(src, "fx1", "o");
	create(src, "fx2", "o");
	int64_t in_src = 0, in_dst = 0;
	json_t *data = json_pack("{ss}", "from", "before");
	assert_int_equal(store_inbox_add(src, "fx2", "approve", data, 40, &in_src, &err), 0);
	json_decref(data);
	struct store_copy_opts o = { .now = wall_ms() };
	struct store_copy_counts n;
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy: %s", err.buf);
	assert_int_equal(n.copied, 2);

	/* fx1 goes on in the source; each side gets a different inbox command. */
	assert_int_equal(append_as(src, "fx1", "o", 6000, 3, &err), 0);
	data = json_pack("{ss}", "from", "sqlite");
	assert_int_equal(store_inbox_add(src, "fx1", "approve", data, 50, &in_src, &err), 0);
	json_decref(data);
	data = json_pack("{ss}", "from", "pg");
	assert_int_equal(store_inbox_add(dst, "fx2", "abort", data, 60, &in_dst, &err), 0);
	json_decref(data);
	assert_int_equal(in_src, in_dst); /* the same id, two commands */

	o.force = true;
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy --force: %s", err.buf);
	assert_int_equal(n.copied, 0);
	assert_int_equal(n.replaced, 1);
	assert_int_equal(n.unchanged, 1);
	assert_int_equal(n.renumbered, 1);
	assert_int_equal(last_seq_of(dst, "fx1"), 3);
	if (store_check(dst, &err) != 0)
		fail_msg("check after --force: %s", err.buf);
	assert_int_equal(count_in("inbox", "kind = 'approve' AND data LIKE '%sqlite%'"), 1);
	assert_int_equal(count_in("inbox", "kind = 'abort' AND data LIKE '%pg%'"), 1);
	assert_int_equal(count_in("events", "execution_id = 'fx1'"), 3);

	/* Again: everything is there, the renumbered command too (found by its
	 * release, kind, data and time): nothing is copied twice. */
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy --force again: %s", err.buf);
	assert_int_equal(n.copied + n.replaced, 0);
	assert_int_equal(n.unchanged, 2);
	assert_int_equal(n.renumbered + n.commands, 0);
	assert_int_equal(n.commands_there, 2);
	assert_int_equal(count_in("inbox", NULL), 3);

	/* fx1 goes on in the source again while a node runs it in the target:
	 * not replaced under it; once let go, replaced. */
	assert_int_equal(append_as(src, "fx1", "o", 6000, 4, &err), 0);
	assert_int_equal(store_lease_take(dst, "fx1", "p", o.now, 60000, &err), 0);
	strbuf_reset(&err);
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_EBUSY);
	assert_non_null(strstr(err.buf, "fx1"));
	assert_int_equal(last_seq_of(dst, "fx1"), 3);
	assert_int_equal(store_lease_release(dst, "fx1", "p", &err), 0);
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy --force after the lease: %s", err.buf);
	assert_int_equal(n.replaced, 1);
	assert_int_equal(last_seq_of(dst, "fx1"), 4);
	assert_int_equal(store_check(dst, &err), 0);

	/* fx2 goes on in the target: the source's shorter copy is refused. */
	strbuf_reset(&err);
	assert_int_equal(store_lease_take(dst, "fx2", "p", 7000, 1000, &err), 0);
	assert_int_equal(append_as(dst, "fx2", "p", 7000, 3, &err), 0);
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_ECONFLICT);
	assert_non_null(strstr(err.buf, "fx2"));
	assert_int_equal(last_seq_of(dst, "fx2"), 3);
	assert_int_equal(store_check(dst, &err), 0);

	/* fx1 goes on apart in both (event 5 differs), the source further: not
	 * replaced, which would lose the target's event 5. (fx2 goes on in the
	 * source past the target, the same event 3 in both: that one would be
	 * replaced.) */
	assert_int_equal(append_as(src, "fx2", "o", 6000, 3, &err), 0);
	assert_int_equal(append_as(src, "fx2", "o", 6000, 4, &err), 0);
	struct event_list l = EVENT_LIST_INIT;
	struct event *e = event_list_add(&l, EV_NOTICE, -1, -1, 0, json_pack("{ss}", "x", "pg"));
	e->seq = 5;
	e->time_ms = 1;
	struct store_append_item it = {
		.id = "fx1", .events = l.items, .nevents = 1, .status = "RUNNING"
	};
	assert_int_equal(store_lease_take(dst, "fx1", "q", 8000, 1000, &err), 0);
	assert_int_equal(store_append(dst, "q", 8000, &it, 1, NULL, NULL, 0, &err), 0);
	event_list_release(&l);
	assert_int_equal(append_as(src, "fx1", "o", 6000, 5, &err), 0);
	assert_int_equal(append_as(src, "fx1", "o", 6000, 6, &err), 0);
	strbuf_reset(&err);
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_ECONFLICT);
	if (!strstr(err.buf, "release fx1 differs"))
		fail_msg("not the divergence of fx1: %s", err.buf);
	assert_int_equal(last_seq_of(dst, "fx1"), 5);
	assert_int_equal(last_seq_of(dst, "fx2"), 3);
	assert_int_equal(count_in("events", "execution_id = 'fx1' AND data LIKE '%pg%'"), 1);
	assert_int_equal(store_check(dst, &err), 0);
	copy_source_drop(src, file);
	strbuf_release(&err);
}

/*
 * store_copy while a process writes the source: one snapshot, so the copy
 * never holds a row that disagrees with its history; and a live lease in
 * the source refuses the copy, naming the release, unless ignore_leases.
 */
static void test_pg_copy_while_written(void **state)
{
	struct store *dst = *state;
	struct strbuf err = STRBUF_INIT;
	char file[96];
	struct store *src = copy_source(file, sizeof(file), "live");
	enum { NREL = 200 };
	char id[32];
	for (int i = 0; i < NREL; i++) {
		snprintf(id, sizeof(id), "lv%03d", i);
		create(src, id, "o"); /* leases of a fake clock: expired for the copy */
	}
	/* A live lease: this process's, for a minute from now. */
	create(src, "lv-live", "o");
	int64_t now = wall_ms();
	assert_int_equal(store_lease_take(src, "lv-live", "me", now, 60000, &err), 0);
	struct store_copy_opts o = { .now = now };
	struct store_copy_counts n;
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_EBUSY);
	assert_non_null(strstr(err.buf, "lv-live"));
	assert_int_equal(count_in("executions", NULL), 0);
	o.ignore_leases = true; /* lv-live is copied as it is stored */

	/* A writer appends to every release in turn while the copy reads. */
	int ready[2];
	assert_int_equal(pipe(ready), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *w = NULL;
		pg_mode = false;
		if (store_open(file, &w, NULL) != 0)
			_exit(1);
		int64_t seq = 3;
		for (int round = 0;; round++, seq++) {
			for (int i = 0; i < NREL; i++) {
				snprintf(id, sizeof(id), "lv%03d", i);
				if (append_as(w, id, "o", 6000, seq, NULL) != 0)
					_exit(2);
				if (round == 0 && i == 10 && write(ready[1], "x", 1) != 1)
					_exit(3);
			}
		}
	}
	close(ready[1]);
	char c;
	assert_int_equal(read(ready[0], &c, 1), 1); /* 0: the writer failed */
	strbuf_reset(&err);
	int r = store_copy(src, dst, &o, &n, &err);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(ready[0]);
	if (r != 0)
		fail_msg("copy while written: %s", err.buf);
	assert_int_equal(n.copied, NREL + 1);
	if (store_check(dst, &err) != 0)
		fail_msg("check after a copy while written: %s", err.buf);
	copy_source_drop(src, file);
	strbuf_release(&err);
}

/* Writes 32 random bytes, 0600, to path: a key file another node made. */
static void write_key(const char *p, unsigned char fill)
{
	unsigned char k[32];
	for (size_t i = 0; i < sizeof(k); i++)
		k[i] = (unsigned char)(fill + i * 31);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, k, sizeof(k)), (ssize_t)sizeof(k));
	close(fd);
}

/* Runs SQL on the current test's store, outside steppy (damage, old rows). */
static void store_sql(const char *sql)
{
	if (pg_mode) {
		char full[512];
		snprintf(full, sizeof(full), "SET search_path = %s; %s", schema, sql);
		admin_sql(full, NULL, 0);
		return;
	}
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(db);
}

/*
 * The store records the fingerprint of the key that seals its secrets: a
 * node whose key file is missing does not make one of its own, a node with
 * another key is refused (naming its key file), a copy of the first key is
 * accepted; sealing under another key is refused; a store without a
 * fingerprint adopts the key that opens its sealed secrets, and only such
 * a key.
 */
static void test_key_fingerprint(void **state)
{
	struct store *st = *state, *b = NULL;
	struct strbuf err = STRBUF_INIT;
	char dir[64], ka[96], kb[96];
	snprintf(dir, sizeof(dir), "/tmp/steppy-test-fp-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(ka, sizeof(ka), "%s/a.key", dir);
	snprintf(kb, sizeof(kb), "%s/b.key", dir);
	unlink(ka);
	unlink(kb);
	store_set_key_file(st, ka);
	bool made = false;
	if (store_key_check(st, STORE_KEY_MAKE, &made, &err) != 0)
		fail_msg("first key: %s", err.buf);
	assert_true(made);
	assert_int_equal(access(ka, F_OK), 0);

	/* Another node without the key file: refused, and none is made. */
	assert_int_equal(store_open(path, &b, &err), 0);
	store_set_key_file(b, kb);
	strbuf_reset(&err);
	assert_int_equal(store_key_check(b, STORE_KEY_MAKE, &made, &err), SP_EINVAL);
	assert_false(made);
	assert_int_equal(access(kb, F_OK), -1);
	assert_non_null(strstr(err.buf, kb));
	assert_non_null(strstr(err.buf, "copy"));
	/* ... with a key file of its own: refused, naming it. */
	write_key(kb, 1);
	store_set_key_file(b, kb);
	strbuf_reset(&err);
	assert_int_equal(store_key_check(b, STORE_KEY_NEEDED, NULL, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, kb));
	assert_null(strstr(err.buf, "unknown"));
	/* ... sealing a secret under it is refused too. */
	strbuf_reset(&err);
	assert_int_equal(create_with_secret(b, "other-key", &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, kb));
	struct exec_row row = { 0 };
	assert_int_equal(store_get(st, "other-key", &row, NULL), SP_ENOENT);
	/* ... a copy of the first key: fine. */
	unlink(kb);
	assert_int_equal(link(ka, kb), 0);
	store_set_key_file(b, kb);
	if (store_key_check(b, STORE_KEY_NEEDED, NULL, &err) != 0)
		fail_msg("the same key: %s", err.buf);
	assert_int_equal(create_with_secret(b, "same-key", &err), 0);
	store_close(b);
	b = NULL;

	/* A store from before fingerprints: the first key that opens its
	 * sealed secrets is adopted; another is not. */
	store_sql("DELETE FROM secret_key");
	unlink(kb);
	write_key(kb, 2);
	assert_int_equal(store_open(path, &b, &err), 0);
	/* ... a missing key file is not made: the store's secrets need theirs */
	char kc[100];
	snprintf(kc, sizeof(kc), "%s/c.key", dir);
	unlink(kc);
	store_set_key_file(b, kc);
	strbuf_reset(&err);
	assert_int_equal(store_key_check(b, STORE_KEY_MAKE, &made, &err), SP_EINVAL);
	assert_false(made);
	assert_int_equal(access(kc, F_OK), -1);
	assert_non_null(strstr(err.buf, "copy the secret key file"));
	store_set_key_file(b, kb);
	strbuf_reset(&err);
	assert_int_equal(store_key_check(b, STORE_KEY_NEEDED, NULL, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "does not open"));
	store_set_key_file(b, ka);
	if (store_key_check(b, STORE_KEY_NEEDED, NULL, &err) != 0)
		fail_msg("adopting: %s", err.buf);
	store_set_key_file(b, kb);
	strbuf_reset(&err);
	assert_int_equal(store_key_check(b, STORE_KEY_NEEDED, NULL, &err), SP_EINVAL);
	store_close(b);
	unlink(ka);
	unlink(kb);
	rmdir(dir);
	strbuf_release(&err);
}

/* store_check() names the release of each damage it finds: a history with
 * a gap, a summary row that disagrees with its history. */
static void test_check_names_releases(void **state)
{
	struct store *st = *state;
	struct strbuf err = STRBUF_INIT;
	create(st, "dmg-gap", "o");
	create(st, "dmg-row", "o");
	create(st, "sound", "o");
	assert_int_equal(store_check(st, &err), 0);
	store_sql("DELETE FROM events WHERE execution_id = 'dmg-gap' AND seq = 1");
	store_sql("UPDATE executions SET last_seq = 7 WHERE id = 'dmg-row'");
	assert_int_equal(store_check(st, &err), SP_ESTORE);
	if (!strstr(err.buf, "dmg-gap") || !strstr(err.buf, "dmg-row") || strstr(err.buf, "sound"))
		fail_msg("check: %s", err.buf);
	strbuf_release(&err);
}

/*
 * store_copy --force judges the target's leases by the database's clock:
 * this process's clock an hour ahead does not replace a release a node
 * runs in the target; an hour behind, it does not refuse forever a lease
 * that lapsed by the database's clock.
 */
static void test_pg_copy_db_clock(void **state)
{
	struct store *dst = *state, *skewed = NULL;
	struct strbuf err = STRBUF_INIT;
	char file[96];
	struct store *src = copy_source(file, sizeof(file), "clock");
	create(src, "ck1", "o");
	struct store_copy_opts o = { .now = wall_ms() };
	struct store_copy_counts n;
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy: %s", err.buf);
	assert_int_equal(append_as(src, "ck1", "o", 6000, 3, &err), 0);
	/* A node runs ck1 in the target for a minute. */
	assert_int_equal(store_lease_take(dst, "ck1", "node", wall_ms(), 60000, &err), 0);
	atomic_store(&store_test_clock_skew_ms, 3600000);
	assert_int_equal(store_open(path, &skewed, &err), 0);
	o.force = true;
	o.now = wall_ms() + 3600000;
	strbuf_reset(&err);
	int r = store_copy(src, skewed, &o, &n, &err);
	store_close(skewed);
	atomic_store(&store_test_clock_skew_ms, 0);
	assert_int_equal(r, SP_EBUSY);
	assert_non_null(strstr(err.buf, "ck1"));
	assert_int_equal(last_seq_of(dst, "ck1"), 2);
	/* Its lease lapsed 30 s ago by the database's clock. */
	store_sql("UPDATE leases SET expires_ms = (extract(epoch from clock_timestamp()) * "
	          "1000)::bigint - 30000 WHERE execution_id = 'ck1'");
	atomic_store(&store_test_clock_skew_ms, -3600000);
	assert_int_equal(store_open(path, &skewed, &err), 0);
	o.now = wall_ms() - 3600000;
	r = store_copy(src, skewed, &o, &n, &err);
	store_close(skewed);
	atomic_store(&store_test_clock_skew_ms, 0);
	if (r != 0)
		fail_msg("copy over a lapsed lease: %s", err.buf);
	assert_int_equal(n.replaced, 1);
	assert_int_equal(last_seq_of(dst, "ck1"), 3);
	copy_source_drop(src, file);
	strbuf_release(&err);
}

/* store_copy: sealed secrets go only into a store whose key is the
 * source's: a target that records another key refuses the copy. */
static void test_pg_copy_keys(void **state)
{
	struct store *dst = *state;
	struct strbuf err = STRBUF_INIT;
	char file[96], ka[96], kb[96];
	snprintf(ka, sizeof(ka), "/tmp/steppy-test-ck-%d-a.key", (int)getpid());
	snprintf(kb, sizeof(kb), "/tmp/steppy-test-ck-%d-b.key", (int)getpid());
	write_key(ka, 3);
	write_key(kb, 4);
	struct store *src = copy_source(file, sizeof(file), "keys");
	store_set_key_file(src, ka);
	assert_int_equal(create_with_secret(src, "sk1", &err), 0);
	store_set_key_file(dst, kb);
	assert_int_equal(store_key_check(dst, STORE_KEY_NEEDED, NULL, &err), 0);
	struct store_copy_opts o = { .now = wall_ms() };
	struct store_copy_counts n;
	strbuf_reset(&err);
	assert_int_equal(store_copy(src, dst, &o, &n, &err), SP_EINVAL);
	assert_non_null(strstr(err.buf, "key"));
	assert_int_equal(count_in("executions", NULL), 0);
	char open_tx[16]; /* the refused copy's transaction was ended */
	admin_sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'steppy' AND "
	          "state LIKE 'idle in transaction%'",
	          open_tx, sizeof(open_tx));
	assert_string_equal(open_tx, "0");
	/* A target without a key yet takes the source's. */
	store_sql("DELETE FROM secret_key");
	if (store_copy(src, dst, &o, &n, &err) != 0)
		fail_msg("copy: %s", err.buf);
	struct store *c = NULL;
	assert_int_equal(store_open(path, &c, &err), 0);
	store_set_key_file(c, ka);
	assert_int_equal(store_key_check(c, STORE_KEY_NEEDED, NULL, &err), 0);
	store_set_key_file(c, kb);
	assert_int_equal(store_key_check(c, STORE_KEY_NEEDED, NULL, &err), SP_EINVAL);
	store_close(c);
	copy_source_drop(src, file);
	unlink(ka);
	unlink(kb);
	strbuf_release(&err);
}

int main(void)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test_setup_teardown(test_create_append_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approval_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_unfinished, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inbox_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_personal_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sealed_secrets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_lookup, setup, teardown),
		cmocka_unit_test(test_concurrent_open),
		cmocka_unit_test_setup_teardown(test_key_fingerprint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_names_releases, setup, teardown),
	};
	const struct CMUnitTest sqlite_only[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_open_existing),
		cmocka_unit_test_setup_teardown(test_integrity_check, setup, teardown),
	};
	const struct CMUnitTest pg_only[] = {
		cmocka_unit_test_setup_teardown(test_pg_fencing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_dead_holder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_clock_skew, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_newer_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_existing_and_check, setup, teardown),
		cmocka_unit_test(test_pg_password_masked),
		cmocka_unit_test(test_pg_password_never_shown),
		cmocka_unit_test(test_pg_foreign_tables),
		cmocka_unit_test_setup_teardown(test_pg_connection_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_copy_from_sqlite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_version_after_unlisten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_parked_listener, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_copy_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_copy_while_written, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_copy_db_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_copy_keys, setup, teardown),
	};
	int failed = cmocka_run_group_tests_name("store (sqlite)", both, NULL, NULL);
	failed += cmocka_run_group_tests_name("store (sqlite only)", sqlite_only, NULL, NULL);
	if (!getenv("STEPPY_TEST_PG") || !*getenv("STEPPY_TEST_PG")) {
		printf(
		    "store (postgresql): skipped, STEPPY_TEST_PG is not set (tests/lib/pg.sh)\n");
		return failed;
	}
	pg_mode = true;
	failed += cmocka_run_group_tests_name("store (postgresql)", both, NULL, NULL);
	failed += cmocka_run_group_tests_name("store (postgresql only)", pg_only, NULL, NULL);
	return failed;
}
