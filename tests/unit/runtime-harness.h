/*
 * runtime-harness.h - what the unit tests of the runtime and of control
 * share: a temporary store, a runtime running on a thread of its own (as in
 * `steppy run` and `steppy serve`: runtime_run() drives the libuv loop), a
 * way to run code on that loop thread, and histories read back from the
 * store through a connection of the test's own, rendered as text.
 *
 * The test thread is the outside world: it reads only what was committed,
 * and waits for conditions with a generous deadline (never for a time).
 * Functions are static: each test file that includes this is one program.
 */
#ifndef STEPPY_TESTS_RUNTIME_HARNESS_H
#define STEPPY_TESTS_RUNTIME_HARNESS_H

#include "plan-fixture.h"
#include "unit.h"

#include "plan/validate.h"
#include "runtime/runtime.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_UNUSED __attribute__((unused))
/* How long any wait for a condition may take before the test fails: far
 * beyond what any condition needs, so a slow machine never fails a test. */
#define DEADLINE_MS 30000

/* A function run on the loop thread (rt_call()). */
struct rt_job {
	void (*fn)(void *arg);
	void *arg;
	bool done;
	struct rt_job *next;
};

struct rt_fixture {
	char dir[64];         /* the temporary directory (mkdtemp) */
	char path[96];        /* the store file in it */
	struct store *st;     /* the runtime's connection */
	struct store *reader; /* the test's own connection */
	struct runtime *rt;   /* NULL between runtimes */
	uv_async_t async;     /* wakes the loop for queued jobs */
	pthread_t thread;     /* runs runtime_run() */
	bool running;         /* thread started and not joined yet */
	int run_result;       /* what runtime_run() returned */
	pthread_mutex_t lock; /* guards jobs and loop_done */
	pthread_cond_t cond;  /* a job was done, or the loop ended */
	struct rt_job *jobs;  /* queued for the loop thread, oldest first */
	bool loop_done;       /* runtime_run() has returned */
	struct strbuf errors; /* what the runtime reported (observer on_error), under lock */
	struct runtime_observer observer;
	/* Called on the loop thread when events were committed (observer
	 * on_events), if set. */
	void (*on_events)(struct rt_fixture *fx, const char *id, const struct event *events,
	                  size_t n);
};

static void rt_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t rt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rt_on_error(void *arg, const char *message)
{
	struct rt_fixture *fx = arg;
	pthread_mutex_lock(&fx->lock);
	strbuf_addf(&fx->errors, "%s\n", message);
	pthread_mutex_unlock(&fx->lock);
}

static void rt_on_events(void *arg, const char *id, const struct exec_state *state,
                         const struct event *events, size_t n)
{
	struct rt_fixture *fx = arg;
	(void)state;
	if (fx->on_events)
		fx->on_events(fx, id, events, n);
}

/* True if the runtime reported something containing text (observer on_error). */
static HARNESS_UNUSED bool rt_reported(struct rt_fixture *fx, const char *text)
{
	pthread_mutex_lock(&fx->lock);
	bool found = fx->errors.len && strstr(fx->errors.buf, text) != NULL;
	pthread_mutex_unlock(&fx->lock);
	return found;
}

/* Runs the queued jobs; on the loop thread, or on the test thread once the
 * loop has ended. */
static void rt_run_jobs(struct rt_fixture *fx)
{
	pthread_mutex_lock(&fx->lock);
	while (fx->jobs) {
		struct rt_job *j = fx->jobs;
		fx->jobs = j->next;
		pthread_mutex_unlock(&fx->lock);
		j->fn(j->arg);
		pthread_mutex_lock(&fx->lock);
		j->done = true;
		pthread_cond_broadcast(&fx->cond);
	}
	pthread_mutex_unlock(&fx->lock);
}

static void rt_async_cb(uv_async_t *h)
{
	rt_run_jobs(h->data);
}

static void rt_close_cb(uv_handle_t *h)
{
	(void)h;
}

/* Makes a runtime on fx->st with opts (its observer is the harness's). */
static HARNESS_UNUSED void rt_new(struct rt_fixture *fx, const struct runtime_options *opts)
{
	struct runtime_options o = *opts;
	fx->observer = (struct runtime_observer){ .on_events = rt_on_events,
		                                  .on_error = rt_on_error,
		                                  .arg = fx };
	if (!o.observer)
		o.observer = &fx->observer;
	struct strbuf err = STRBUF_INIT;
	if (runtime_new(fx->st, &o, &fx->rt, &err) < 0)
		fail_msg("runtime_new: %s", err.buf);
	strbuf_release(&err);
	uv_async_init(runtime_loop(fx->rt), &fx->async, rt_async_cb);
	fx->async.data = fx;
	uv_unref((uv_handle_t *)&fx->async);
	fx->loop_done = false;
}

/* Opens a temporary store twice (the runtime's connection and the test's). */
static HARNESS_UNUSED void rt_setup(struct rt_fixture *fx, const char *name)
{
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/steppy-%s-XXXXXX", name);
	if (!mkdtemp(fx->dir))
		fail_msg("mkdtemp failed");
	snprintf(fx->path, sizeof(fx->path), "%s/store.db", fx->dir);
	pthread_mutex_init(&fx->lock, NULL);
	pthread_cond_init(&fx->cond, NULL);
	fx->errors = (struct strbuf)STRBUF_INIT;
	struct strbuf err = STRBUF_INIT;
	if (store_open(fx->path, &fx->st, &err) < 0 || store_open(fx->path, &fx->reader, &err) < 0)
		fail_msg("store_open: %s", err.buf);
	strbuf_release(&err);
}

static void *rt_thread(void *arg)
{
	struct rt_fixture *fx = arg;
	int r = runtime_run(fx->rt);
	pthread_mutex_lock(&fx->lock);
	fx->run_result = r;
	fx->loop_done = true;
	pthread_cond_broadcast(&fx->cond);
	pthread_mutex_unlock(&fx->lock);
	rt_run_jobs(fx); /* what was queued too late for the loop */
	return NULL;
}

/* Starts runtime_run() on a thread. */
static HARNESS_UNUSED void rt_start(struct rt_fixture *fx)
{
	fx->running = true;
	fx->loop_done = false; /* a runtime may run again after runtime_run() returned */
	if (pthread_create(&fx->thread, NULL, rt_thread, fx) != 0)
		fail_msg("pthread_create failed");
}

/*
 * Runs fn(arg) on the loop thread and waits until it has run; directly when
 * no loop runs (not started, or runtime_run() has returned).
 */
static HARNESS_UNUSED void rt_call(struct rt_fixture *fx, void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&fx->lock);
	if (!fx->running || fx->loop_done) {
		pthread_mutex_unlock(&fx->lock);
		fn(arg);
		return;
	}
	struct rt_job job = { .fn = fn, .arg = arg };
	struct rt_job **p = &fx->jobs;
	while (*p)
		p = &(*p)->next;
	*p = &job;
	uv_async_send(&fx->async);
	while (!job.done)
		pthread_cond_wait(&fx->cond, &fx->lock);
	pthread_mutex_unlock(&fx->lock);
}

static void rt_stop_fn(void *arg)
{
	runtime_stop(arg);
}

/* Waits until runtime_run() returns by itself; returns its result. */
static HARNESS_UNUSED int rt_join(struct rt_fixture *fx)
{
	if (!fx->running)
		return fx->run_result;
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	pthread_mutex_lock(&fx->lock);
	while (!fx->loop_done && rt_now_ms() < deadline) {
		pthread_mutex_unlock(&fx->lock);
		rt_sleep_ms(5);
		pthread_mutex_lock(&fx->lock);
	}
	bool done = fx->loop_done;
	pthread_mutex_unlock(&fx->lock);
	if (!done) {
		/* Stop it so that the teardown can free it, then fail. */
		rt_call(fx, rt_stop_fn, fx->rt);
		pthread_join(fx->thread, NULL);
		fx->running = false;
		fail_msg("runtime_run() did not return");
	}
	pthread_join(fx->thread, NULL);
	fx->running = false;
	return fx->run_result;
}

/* Asks the runtime to stop (runtime_stop() on its thread) and waits for
 * runtime_run() to return; returns its result. */
static HARNESS_UNUSED int rt_stop(struct rt_fixture *fx)
{
	if (fx->running)
		rt_call(fx, rt_stop_fn, fx->rt);
	return rt_join(fx);
}

/* Stops (if running) and frees the runtime; the store stays. */
static HARNESS_UNUSED void rt_free(struct rt_fixture *fx)
{
	if (!fx->rt)
		return;
	if (fx->running) {
		rt_call(fx, rt_stop_fn, fx->rt);
		pthread_join(fx->thread, NULL);
		fx->running = false;
	}
	uv_close((uv_handle_t *)&fx->async, rt_close_cb);
	runtime_free(fx->rt);
	fx->rt = NULL;
}

/* Frees everything and removes the temporary directory. */
static HARNESS_UNUSED void rt_teardown(struct rt_fixture *fx)
{
	rt_free(fx);
	store_close(fx->st);
	store_close(fx->reader);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	strbuf_release(&fx->errors);
	pthread_cond_destroy(&fx->cond);
	pthread_mutex_destroy(&fx->lock);
}

struct rt_submit_job {
	struct rt_fixture *fx;
	struct plan *plan; /* taken by the runtime on success */
	const char *started_by;
	char id[16];
	int r;
	struct strbuf err;
};

static void rt_submit_fn(void *arg)
{
	struct rt_submit_job *j = arg;
	const char *id;
	j->r = runtime_submit(j->fx->rt, j->plan, "t.json", j->started_by, &id, &j->err);
	if (j->r == 0)
		snprintf(j->id, sizeof(j->id), "%s", id);
}

/* Submits a plan (JSON text) on the loop thread; copies its id to id. */
static HARNESS_UNUSED void rt_submit(struct rt_fixture *fx, const char *plan_text,
                                     const char *started_by, char id[16])
{
	/* parsed here: a bad plan fails the test on the test's own thread */
	struct rt_submit_job j = { .fx = fx,
		                   .plan = test_plan(plan_text),
		                   .started_by = started_by };
	strbuf_init(&j.err, SIZE_MAX);
	rt_call(fx, rt_submit_fn, &j);
	if (j.r < 0) {
		plan_free(j.plan);
		fail_msg("runtime_submit: %s", j.err.buf);
	}
	strbuf_release(&j.err);
	memcpy(id, j.id, 16);
}

/* The committed history of id; the test fails if it cannot be read. */
static HARNESS_UNUSED void rt_history(struct rt_fixture *fx, const char *id, struct event_list *out)
{
	struct strbuf err = STRBUF_INIT;
	*out = (struct event_list)EVENT_LIST_INIT;
	if (store_history(fx->reader, id, 0, out, &err) < 0)
		fail_msg("store_history: %s", err.buf);
	strbuf_release(&err);
}

/* The committed history of id as "Type s.j#a" words (caller frees). */
static HARNESS_UNUSED char *rt_events(struct rt_fixture *fx, const char *id)
{
	struct event_list h;
	rt_history(fx, id, &h);
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < h.len; i++) {
		const struct event *e = &h.items[i];
		if (i)
			strbuf_addch(&sb, ' ');
		strbuf_addstr(&sb, event_type_name(e->type));
		if (e->step >= 0)
			strbuf_addf(&sb, " %d.%d#%d", e->stage, e->step, e->attempt);
		else if (e->stage >= 0)
			strbuf_addf(&sb, " %d", e->stage);
	}
	event_list_release(&h);
	return strbuf_detach(&sb, NULL);
}

/* The status of id in the store's projection (caller frees), or NULL. */
static HARNESS_UNUSED char *rt_status(struct rt_fixture *fx, const char *id)
{
	struct exec_row row;
	if (store_get(fx->reader, id, &row, NULL) < 0)
		return NULL;
	char *s = xstrdup(row.status);
	exec_row_release(&row);
	return s;
}

/* Asserts that the status of id in the store's projection is status. */
static HARNESS_UNUSED void rt_expect_status(struct rt_fixture *fx, const char *id,
                                            const char *status)
{
	char *s = rt_status(fx, id);
	assert_non_null(s);
	assert_string_equal(s, status);
	free(s);
}

/* Waits until the committed history of id contains words (as rt_events()
 * renders it); fails with the history after the deadline. */
static HARNESS_UNUSED void rt_wait_events(struct rt_fixture *fx, const char *id, const char *words)
{
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		char *h = rt_events(fx, id);
		bool found = strstr(h, words) != NULL;
		if (found) {
			free(h);
			return;
		}
		if (rt_now_ms() > deadline) {
			struct strbuf msg = STRBUF_INIT;
			strbuf_addf(&msg, "waited in vain for \"%s\" in %s: %s", words, id, h);
			free(h);
			fail_msg("%s", msg.buf);
		}
		free(h);
		rt_sleep_ms(5);
	}
}

/* Waits until id's status in the store is status. */
static HARNESS_UNUSED void rt_wait_status(struct rt_fixture *fx, const char *id, const char *status)
{
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		char *s = rt_status(fx, id);
		bool same = s && !strcmp(s, status);
		if (same || rt_now_ms() > deadline) {
			if (!same) {
				char *h = rt_events(fx, id);
				fail_msg("%s: status %s, not %s; history: %s", id, s ? s : "(none)",
				         status, h);
			}
			free(s);
			return;
		}
		free(s);
		rt_sleep_ms(5);
	}
}

/* Asserts that the whole committed history of id is words. */
static HARNESS_UNUSED void rt_expect_events(struct rt_fixture *fx, const char *id,
                                            const char *words)
{
	char *h = rt_events(fx, id);
	if (strcmp(h, words) != 0)
		fail_msg("history of %s differs\n expected: %s\n   actual: %s", id, words, h);
	free(h);
}

/* The latest committed event of type for an attempt (copied into out; release
 * its data), or fails. */
static HARNESS_UNUSED void rt_find_event(struct rt_fixture *fx, const char *id,
                                         enum event_type type, int stage, int step, int attempt,
                                         struct event *out)
{
	struct event_list h;
	rt_history(fx, id, &h);
	const struct event *found = NULL;
	for (size_t i = 0; i < h.len; i++) {
		const struct event *e = &h.items[i];
		if (e->type == type && e->stage == stage && e->step == step &&
		    e->attempt == attempt)
			found = e;
	}
	if (!found)
		fail_msg("%s has no %s %d.%d#%d", id, event_type_name(type), stage, step, attempt);
	*out = *found;
	json_incref(out->data);
	event_list_release(&h);
}

/* Asserts that the string field key of the latest committed event of type
 * for an attempt is want. */
static HARNESS_UNUSED void rt_expect_field(struct rt_fixture *fx, const char *id,
                                           enum event_type type, int stage, int step, int attempt,
                                           const char *key, const char *want)
{
	struct event ev;
	rt_find_event(fx, id, type, stage, step, attempt, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, key)), want);
	json_decref(ev.data);
}

#endif
