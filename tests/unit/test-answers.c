/*
 * test-answers.c - read answers kept by store version (src/server/answers.c):
 * If-None-Match against an ETag; answers kept, found only at their version,
 * replaced by newer ones while an older one is still held; the limits (count,
 * bytes, one answer's size); the version read through the watcher changing
 * with every commit of another connection or another process and not with
 * reads, or with answers_changed(); -1 for a store that cannot be opened, and
 * the quick form that never opens the watcher; watchers kept alive off the
 * quick calls without moving the version unless something was committed;
 * threads reading while another commits (and while watchers are kept alive
 * all the time) never get an answer older than a commit done before they
 * asked. With PostgreSQL (STEPPY_TEST_PG, tests/lib/pg.sh): a watcher is
 * never reconnected, neither by keep-alives nor over 16 s of use (past
 * the store's 10 s reconnection of idle listeners and the server's 15 s
 * idle timeout), and still sees other connections' commits; a server
 * restart is survived and moves the version.
 */
#include "unit.h"

#include "server/answers.h"
#include "store/store.h"
#include "util/error.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char path[64];
static const char *self; /* this program, run again as "another process" */

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/steppy-test-answers-%d.db", (int)getpid());
	unlink(path);
	struct store *st;
	if (store_open(path, &st, NULL) != 0)
		return -1;
	store_close(st);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char more[80];
	unlink(path);
	snprintf(more, sizeof(more), "%s-wal", path);
	unlink(more);
	snprintf(more, sizeof(more), "%s-shm", path);
	unlink(more);
	return 0;
}

static void test_etag_matches(void **state)
{
	(void)state;
	const char *tag = "\"0123456789abcdef0123456789abcdef\"";
	assert_false(etag_matches(NULL, tag));
	assert_false(etag_matches("", tag));
	assert_true(etag_matches(tag, tag));
	assert_true(etag_matches("W/\"0123456789abcdef0123456789abcdef\"", tag));
	assert_true(etag_matches("\"x\", \"0123456789abcdef0123456789abcdef\"", tag));
	assert_true(etag_matches("\"x\",W/\"0123456789abcdef0123456789abcdef\" ,\"y\"", tag));
	assert_true(etag_matches(" * ", tag));
	assert_false(etag_matches("\"x\"", tag));
	/* no part of a tag, no tag without its quotes */
	assert_false(etag_matches("\"0123456789abcdef0123456789abcde\"", tag));
	assert_false(etag_matches("\"0123456789abcdef0123456789abcdef0\"", tag));
	assert_false(etag_matches("0123456789abcdef0123456789abcdef", tag));
	assert_false(etag_matches("W/", tag));
	assert_false(etag_matches(",,, ,", tag));
}

static void test_keep_and_find(void **state)
{
	(void)state;
	struct answers *c = answers_new(path);
	struct kept_answer *a = answers_put(c, "list * 50 0", 5, "{\"a\":1}", 7);
	assert_non_null(a);
	assert_int_equal(a->len, 7);
	assert_string_equal(a->body, "{\"a\":1}");
	assert_int_equal(strlen(a->etag), 34);
	assert_int_equal(a->etag[0], '"');
	assert_int_equal(a->etag[33], '"');
	char first_tag[40];
	snprintf(first_tag, sizeof(first_tag), "%s", a->etag);
	kept_answer_release(a);

	a = answers_get(c, "list * 50 0", 5);
	assert_non_null(a);
	assert_string_equal(a->body, "{\"a\":1}");
	assert_string_equal(a->etag, first_tag);
	/* held while a newer answer replaces it: still readable */
	struct kept_answer *newer = answers_put(c, "list * 50 0", 6, "{\"a\":2}", 7);
	assert_string_not_equal(newer->etag, first_tag);
	assert_string_equal(a->body, "{\"a\":1}");
	kept_answer_release(a);
	kept_answer_release(newer);

	assert_null(answers_get(c, "list * 50 0", 5)); /* another version */
	assert_null(answers_get(c, "list * 50 0", -1));
	assert_null(answers_get(c, "list * 1 0", 6)); /* another query */
	a = answers_get(c, "list * 50 0", 6);
	assert_non_null(a);
	assert_string_equal(a->body, "{\"a\":2}");
	kept_answer_release(a);

	/* an older answer made late does not replace a newer one */
	kept_answer_release(answers_put(c, "list * 50 0", 5, "{\"a\":1}", 7));
	assert_null(answers_get(c, "list * 50 0", 5));
	a = answers_get(c, "list * 50 0", 6);
	assert_non_null(a);
	kept_answer_release(a);

	/* the same bytes have the same tag, whatever the query or the cache */
	struct answers *other = answers_new(path);
	a = answers_put(other, "list RUNNING 50 0", 1, "{\"a\":1}", 7);
	assert_string_equal(a->etag, first_tag);
	kept_answer_release(a);
	answers_free(other);

	/* without a version nothing is kept, but the answer is made */
	a = answers_put(c, "list FAILED 50 0", -1, "{}", 2);
	assert_non_null(a);
	assert_string_equal(a->body, "{}");
	kept_answer_release(a);
	assert_null(answers_get(c, "list FAILED 50 0", -1));

	uint64_t found, made;
	answers_counts(c, &found, &made);
	assert_int_equal(found, 3); /* the gets that found an answer */
	assert_int_equal(made, 4);  /* every put, kept or not */
	answers_free(c);
}

static void test_limits(void **state)
{
	(void)state;
	struct answers *c = answers_new(path);
	char key[32];
	/* ANSWERS_MAX answers; the least recently used goes first */
	for (int i = 0; i < ANSWERS_MAX; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		kept_answer_release(answers_put(c, key, 1, "x", 1));
	}
	kept_answer_release(answers_get(c, "k0", 1)); /* used: k1 is now the oldest */
	kept_answer_release(answers_put(c, "one more", 1, "y", 1));
	struct kept_answer *a = answers_get(c, "k0", 1);
	assert_non_null(a);
	kept_answer_release(a);
	assert_null(answers_get(c, "k1", 1));
	a = answers_get(c, "one more", 1);
	assert_non_null(a);
	kept_answer_release(a);

	/* one answer over ANSWERS_MAX_ONE: made, not kept */
	size_t big_len = ANSWERS_MAX_ONE + 1;
	char *big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'b', big_len);
	a = answers_put(c, "big", 1, big, big_len);
	assert_int_equal(a->len, big_len);
	kept_answer_release(a);
	assert_null(answers_get(c, "big", 1));

	/* ANSWERS_MAX_BYTES in all: the oldest go to make room */
	size_t quarter = ANSWERS_MAX_BYTES / 4 - 1024; /* four fit, not five */
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "large%d", i);
		kept_answer_release(answers_put(c, key, 1, big, quarter));
	}
	assert_null(answers_get(c, "large0", 1));
	for (int i = 1; i < 5; i++) {
		snprintf(key, sizeof(key), "large%d", i);
		a = answers_get(c, key, 1);
		assert_non_null(a);
		kept_answer_release(a);
	}
	free(big);
	answers_free(c);
}

static void test_version_follows_commits(void **state)
{
	(void)state;
	struct answers *c = answers_new(path);
	/* quick: the watcher is not opened on a poll thread */
	assert_int_equal(answers_version(c, true), -2);
	int64_t v1 = answers_version(c, false);
	assert_true(v1 >= 0);
	assert_int_equal(answers_version(c, false), v1);
	assert_int_equal(answers_version(c, true), v1); /* open now */

	/* reads by another connection change nothing */
	struct store *other;
	assert_int_equal(store_open(path, &other, NULL), 0);
	char *value = NULL;
	assert_int_equal(store_meta_get(other, "nothing", &value, NULL), SP_ENOENT);
	assert_int_equal(answers_version(c, false), v1);

	/* a commit of another connection does */
	assert_int_equal(store_meta_set(other, "test.key", "1", NULL), 0);
	int64_t v2 = answers_version(c, false);
	assert_true(v2 >= 0);
	assert_true(v2 != v1);
	assert_int_equal(answers_version(c, true), v2);

	/* and one of another process (this program again, see main()) */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(self, self, "--commit", path, (char *)NULL);
		_exit(127);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	int64_t v3 = answers_version(c, false);
	assert_true(v3 >= 0);
	assert_true(v3 != v2 && v3 != v1);

	/* this process says it changed the store (before the store's number
	 * moves, as with PostgreSQL's notifications): a new version too */
	answers_changed(c);
	int64_t v4 = answers_version(c, false);
	assert_true(v4 >= 0);
	assert_true(v4 != v3 && v4 != v2 && v4 != v1);
	assert_int_equal(answers_version(c, false), v4);
	store_close(other);
	answers_free(c);

	/* a store that cannot be opened: -1, and nothing is kept */
	c = answers_new("/nonexistent-dir/x/steppy.db");
	assert_int_equal(answers_version(c, false), -1);
	assert_int_equal(answers_version(c, false), -1);
	answers_free(c);
}

/* Watchers are kept alive by the cache's thread, never in a request's call:
 * a keep-alive alone does not move the version, while a commit before it
 * does; an overdue watcher is not used on a poll thread (quick: -2); a
 * watcher nobody used is closed (quick: -2 again until a worker opens one). */
static void test_watchers_renewed(void **state)
{
	(void)state;
	struct answers *c = answers_new(path);
	answers_renew_after(c, -1); /* renewals by this test's calls only */
	int64_t v1 = answers_version(c, false);
	assert_true(v1 >= 0);
	assert_int_equal(answers_version(c, true), v1);

	answers_renew_after(c, 0); /* overdue: not used on a poll thread */
	assert_int_equal(answers_version(c, true), -2);
	answers_renew_after(c, -1);
	assert_int_equal(answers_version(c, true), v1);

	answers_renew_due(c, 0);
	assert_int_equal(answers_version(c, false), v1); /* kept: nothing changed */
	answers_renew_due(c, 0);
	assert_int_equal(answers_version(c, true), v1); /* and again */

	/* a commit by another connection, then a keep-alive: the version
	 * moves */
	struct store *other;
	assert_int_equal(store_open(path, &other, NULL), 0);
	assert_int_equal(store_meta_set(other, "test.key", "r1", NULL), 0);
	answers_renew_due(c, 0);
	int64_t v2 = answers_version(c, true);
	assert_true(v2 >= 0);
	assert_true(v2 != v1);

	/* the watcher follows later commits */
	assert_int_equal(store_meta_set(other, "test.key", "r2", NULL), 0);
	int64_t v3 = answers_version(c, true);
	assert_true(v3 >= 0);
	assert_true(v3 != v2 && v3 != v1);

	/* not used since its keep-alive: closed, and not opened on a poll thread */
	answers_renew_due(c, 0); /* kept alive (it was used) */
	answers_renew_due(c, 0); /* closed (not used since) */
	assert_int_equal(answers_version(c, true), -2);
	int64_t v4 = answers_version(c, false);
	assert_true(v4 >= 0);
	assert_true(v4 != v1 && v4 != v2); /* a new watcher: a new version */
	assert_int_equal(answers_version(c, true), v4);
	store_close(other);
	answers_free(c);
}

/* ---- many threads: never an answer older than a commit done before ---------- */

#define READERS        6
#define READS_EACH     400
#define WRITER_COMMITS 60

struct shared {
	struct answers *c;
	atomic_long committed; /* the last value the writer's commit returned for */
	atomic_bool writing;
	atomic_int stale; /* answers older than a commit done before they were asked */
};

static void *writer_main(void *arg)
{
	struct shared *sh = arg;
	struct store *st;
	if (store_open(path, &st, NULL) != 0)
		return NULL;
	char value[32];
	for (long i = 1; i <= WRITER_COMMITS; i++) {
		snprintf(value, sizeof(value), "%ld", i);
		if (store_meta_set(st, "gen", value, NULL) == 0)
			atomic_store(&sh->committed, i);
		usleep(500);
	}
	store_close(st);
	atomic_store(&sh->writing, false);
	return NULL;
}

/* As a handler does: the version, the kept answer or a new one made from
 * the store (the value of "gen" as the answer), and a check that it is not
 * older than what was committed before the request began. */
static void *reader_main(void *arg)
{
	struct shared *sh = arg;
	struct store *st;
	if (store_open(path, &st, NULL) != 0)
		return NULL;
	for (int i = 0; i < READS_EACH || atomic_load(&sh->writing); i++) {
		long before = atomic_load(&sh->committed);
		int64_t v = answers_version(sh->c, i % 3 == 0);
		struct kept_answer *a = answers_get(sh->c, "gen", v);
		if (!a && v != -2) {
			answers_make_lock(sh->c, "gen");
			v = answers_version(sh->c, false);
			a = answers_get(sh->c, "gen", v);
			if (!a) {
				char *value = NULL;
				if (store_meta_get(st, "gen", &value, NULL) != 0)
					value = strdup("0");
				a = answers_put(sh->c, "gen", v, value, strlen(value));
				free(value);
			}
			answers_make_unlock(sh->c, "gen");
		}
		if (a && atol(a->body) < before)
			atomic_fetch_add(&sh->stale, 1);
		kept_answer_release(a);
	}
	store_close(st);
	return NULL;
}

static void threads_never_stale(int64_t renew_ms)
{
	struct shared sh = { .c = answers_new(path) };
	if (renew_ms >= 0)
		answers_renew_after(sh.c, renew_ms);
	atomic_init(&sh.committed, 0);
	atomic_init(&sh.writing, true);
	atomic_init(&sh.stale, 0);
	pthread_t w, r[READERS];
	assert_int_equal(pthread_create(&w, NULL, writer_main, &sh), 0);
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&r[i], NULL, reader_main, &sh), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(r[i], NULL);
	assert_int_equal(atomic_load(&sh.committed), WRITER_COMMITS);
	assert_int_equal(atomic_load(&sh.stale), 0);
	uint64_t found, made;
	answers_counts(sh.c, &found, &made);
	assert_true(found > 0); /* answers were kept between commits */
	assert_true(made > 0);
	answers_free(sh.c);
}

static void test_threads_never_stale(void **state)
{
	(void)state;
	threads_never_stale(-1);
}

/* The same while watchers are kept alive all the time. */
static void test_threads_never_stale_renewing(void **state)
{
	(void)state;
	threads_never_stale(1);
}

/* ---- PostgreSQL: watchers are never reconnected ------------------------------ */

/* Runs SQL on the test server (outside any store); its first value in ret. */
static void admin_sql(const char *sql, char *ret, size_t ret_size)
{
	PGconn *pc = PQconnectdb(getenv("STEPPY_TEST_PG"));
	if (PQstatus(pc) != CONNECTION_OK)
		fail_msg("cannot reach the test server: %s", PQerrorMessage(pc));
	PGresult *res = PQexec(pc, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(pc));
	if (ret)
		snprintf(ret, ret_size, "%s",
		         PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? PQgetvalue(res, 0, 0)
		                                                       : "");
	PQclear(res);
	PQfinish(pc);
}

static char pg_path[1200], pg_schema[32], pg_since[64];

/* The store's backends (application_name steppy) started since pg_since:
 * "pid@backend_start,..." in pid order. */
static void pg_backends(char *ret, size_t ret_size)
{
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT string_agg(pid || '@' || backend_start, ',' ORDER BY pid) FROM "
	         "pg_stat_activity WHERE application_name = 'steppy' AND backend_start >= '%s'",
	         pg_since);
	admin_sql(sql, ret, ret_size);
}

static int pg_setup(void **state)
{
	(void)state;
	const char *base = getenv("STEPPY_TEST_PG");
	if (!base || !*base)
		return 0;
	char sql[96];
	admin_sql("SELECT now()", pg_since, sizeof(pg_since));
	snprintf(pg_schema, sizeof(pg_schema), "ta%d", (int)getpid());
	snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", pg_schema);
	admin_sql(sql, NULL, 0);
	snprintf(pg_path, sizeof(pg_path), "%s%soptions=-csearch_path%%3D%s", base,
	         strchr(base, '?') ? "&" : "?", pg_schema);
	return 0;
}

static int pg_teardown(void **state)
{
	(void)state;
	if (!*pg_path)
		return 0;
	char sql[96];
	snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", pg_schema);
	admin_sql(sql, NULL, 0);
	return 0;
}

/* The version once a commit's notification arrived (a little after the
 * commit): read until it differs from before, at most 2 s. */
static int64_t version_after(struct answers *c, int64_t before)
{
	int64_t v = before;
	for (int i = 0; i < 200 && v == before; i++) {
		v = answers_version(c, false);
		if (v == before)
			usleep(10000);
	}
	return v;
}

static void test_pg_watcher_kept(void **state)
{
	(void)state;
	if (!*pg_path) {
		print_message("postgresql: skipped, STEPPY_TEST_PG is not set (tests/lib/pg.sh)\n");
		skip();
	}
	/* another connection is opened first (it makes the tables) and kept:
	 * the store's backends listed are this test's and none ends meanwhile */
	struct store *other;
	struct strbuf err = STRBUF_INIT;
	if (store_open(pg_path, &other, &err) != 0)
		fail_msg("%s", err.buf);
	strbuf_release(&err);
	struct answers *c = answers_new(pg_path);
	answers_renew_after(c, -1); /* keep-alives by this test's calls only */
	int64_t v1 = answers_version(c, false);
	assert_true(v1 >= 0);
	char first[512], now[512];
	pg_backends(first, sizeof(first));
	print_message("backends: %s\n", first);
	assert_non_null(strchr(first, ',')); /* other's and the watcher's */
	assert_null(strchr(strchr(first, ',') + 1, ','));

	/* keep-alives keep the same connection and do not move the version */
	for (int i = 0; i < 3; i++) {
		answers_renew_due(c, 0);
		assert_int_equal(answers_version(c, true), v1);
		pg_backends(now, sizeof(now));
		assert_string_equal(now, first);
	}
	/* another connection's commit is seen through it (what every write of
	 * histories or the inbox sends at commit) */
	admin_sql("NOTIFY steppy, 'p1'", NULL, 0);
	int64_t v2 = version_after(c, v1);
	assert_true(v2 != v1);

	/* 16 s of use with the renewer (1 s): past the store's reconnection of
	 * a listener idle 10 s and the server's idle timeout of 15 s, the
	 * watcher is the same connection and nothing moved the version */
	answers_renew_after(c, 1000);
	for (int i = 0; i < 80; i++) {
		assert_int_equal(answers_version(c, false), v2);
		usleep(200000);
	}
	pg_backends(now, sizeof(now));
	assert_string_equal(now, first);
	admin_sql("NOTIFY steppy, 'p2'", NULL, 0);
	int64_t v3 = version_after(c, v2);
	assert_true(v3 != v2 && v3 != v1);

	answers_free(c);

	/* the server restarts: the keep-alive reconnects the watcher (not a
	 * request's read), and the version moves (notifications may have been
	 * missed) */
	const char *ctl = getenv("STEPPY_TEST_PG_CTL");
	if (ctl && *ctl) {
		c = answers_new(pg_path);
		answers_renew_after(c, -1);
		int64_t v4 = answers_version(c, false);
		assert_true(v4 >= 0);
		char cmd[2048];
		snprintf(cmd, sizeof(cmd), "%s -m fast restart >/dev/null 2>&1", ctl);
		assert_int_equal(system(cmd), 0);
		answers_renew_due(c, 0);
		admin_sql("SELECT now()", pg_since, sizeof(pg_since));
		int64_t v5 = answers_version(c, true);
		assert_true(v5 >= 0);
		assert_true(v5 != v4);
		assert_int_equal(answers_version(c, true), v5);
		/* no read reconnected it: no backend of the store began since */
		pg_backends(now, sizeof(now));
		assert_string_equal(now, "");
		/* and it listens again */
		admin_sql("NOTIFY steppy, 'p3'", NULL, 0);
		assert_true(version_after(c, v5) != v5);
		answers_free(c);
	}
	store_close(other);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--commit")) { /* another process's commit */
		struct store *st;
		int ok = store_open(argv[2], &st, NULL) == 0 &&
		         store_meta_set(st, "test.key", "2", NULL) == 0;
		store_close(st);
		return ok ? 0 : 1;
	}
	self = argv[0];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_etag_matches),
		cmocka_unit_test_setup_teardown(test_keep_and_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_follows_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchers_renewed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_never_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_never_stale_renewing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_watcher_kept, pg_setup, pg_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
