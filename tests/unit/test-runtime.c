/*
 * test-runtime.c - the runtime (src/runtime/runtime.c) driven end to end on
 * a temporary store, with a stub step type whose attempts the test starts
 * and ends: stages in order, steps of a stage together, a failure halting
 * the release, retries with backoff, timeouts, fail fast, abort, group
 * commit, recovery after a restart and after a SIGKILL (interrupted
 * attempts reaped by their handle, reattached remote work, Wait timers),
 * leases (lapsed, taken over, left behind), the exec policy, parking,
 * redrive, decisions, and a store that refuses writes.
 *
 * What is asserted is what the store holds: the committed histories, read
 * through a connection of the test's own (runtime-harness.h).
 */
#include "runtime-harness.h"

#include "notify/hub.h"
#include "plan/step-type.h"
#include "runtime/control.h"
#include "runtime/runner.h"
#include "util/fileio.h"
#include "util/timefmt.h"

#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* ---- the stub step types ------------------------------------------------------
 *
 * "Stub" runs local work that the test starts and ends; "StubRemote" is
 * remote work that outlives the process (it reattaches); "StubLocal" runs
 * local code (an exec policy applies). Registered with step_type_register(),
 * as a plugin's types are. Everything that knows the step-type interface
 * (plan/step-type.h: typed config, start, cancel, reap, detach) is in this
 * section; the runtime finds the hooks through each step's type.
 */

#define MAX_STUBS 256

struct stub {
	char key[64];       /* the attempt's idempotency key "ID/stage/step/attempt" */
	struct attempt *a;  /* while live */
	uv_timer_t timer;   /* ends the attempt after a cancel (never inside cancel()) */
	bool live;          /* started, not ended or detached */
	bool reattaching;   /* started again by a later runtime */
	json_t *handle;     /* the handle start() was given (reattaching), or NULL */
	int cancels;        /* cancel() calls */
	bool detached;      /* detach() was called */
	json_t *cancel_end; /* details of the end after a cancel, or NULL: {"error": "stopped"} */
	char secrets[128];  /* the values to mask start() was given, each followed by ";" */
};

static pthread_mutex_t stub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct stub stubs[MAX_STUBS]; /* [0, nstubs) used, under stub_lock */
static size_t nstubs;
static atomic_bool stub_stubborn; /* cancel() does not stop the work */
static int nreaped;               /* reap() calls */
static char reaped[256];          /* the handle of the last one, as JSON */

static const struct field_spec stub_fields[] = {
	/* start() fails at once with this message */
	{ .name = "failStart", .types = T_STRING },
	{ .name = NULL },
};

static void stub_describe(const struct doc_node *step, struct strbuf *out)
{
	(void)step;
	describe_line(out, "does", "what the unit test says");
}

/* The typed config: the step's fields, read once when the plan is built. */
struct stub_config {
	const char *fail_start; /* "failStart", or NULL; points into the step */
};

static atomic_int stub_configs; /* bound and not yet freed */

static void *stub_bind(const struct doc_node *step)
{
	struct stub_config *c = xcalloc(1, sizeof(*c));
	c->fail_start = step_string(step, "failStart");
	atomic_fetch_add(&stub_configs, 1);
	return c;
}

static void stub_free_config(void *config)
{
	if (!config)
		return;
	atomic_fetch_sub(&stub_configs, 1);
	free(config);
}

static void stub_close_cb(uv_handle_t *h)
{
	(void)h;
}

/* Ends a live stub attempt (loop thread). details taken. */
static void stub_finish(struct stub *s, bool ok, json_t *details)
{
	if (!s->live) {
		json_decref(details);
		return;
	}
	struct attempt *a = s->a;
	s->live = false;
	s->a = NULL;
	uv_close((uv_handle_t *)&s->timer, stub_close_cb);
	attempt_ended(a, ok, details);
}

static void stub_cancel_cb(uv_timer_t *t)
{
	struct stub *s = t->data;
	stub_finish(s, false,
	            s->cancel_end ? json_incref(s->cancel_end)
	                          : json_pack("{ss}", "error", "stopped"));
}

static int stub_start(struct attempt *a, const struct attempt_info *info, const void *config,
                      void **ret_state, struct strbuf *err)
{
	const struct stub_config *c = config;
	if (!c) {
		strbuf_addstr(err, "start() was given no config");
		return SP_EINVAL;
	}
	if (c->fail_start) {
		strbuf_addstr(err, c->fail_start);
		return SP_EINVAL;
	}
	pthread_mutex_lock(&stub_lock);
	if (nstubs == MAX_STUBS) {
		pthread_mutex_unlock(&stub_lock);
		strbuf_addstr(err, "too many stub attempts");
		return SP_ETOOBIG;
	}
	struct stub *s = &stubs[nstubs];
	memset(s, 0, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", info->idempotency_key ? info->idempotency_key : "");
	s->a = a;
	s->live = true;
	s->reattaching = info->reattaching;
	s->handle = info->handle ? json_deep_copy(info->handle) : NULL;
	for (size_t i = 0; info->secret_values && info->secret_values[i]; i++)
		snprintf(s->secrets + strlen(s->secrets), sizeof(s->secrets) - strlen(s->secrets),
		         "%s;", info->secret_values[i]);
	uv_timer_init(info->svc->loop, &s->timer);
	s->timer.data = s;
	nstubs++;
	pthread_mutex_unlock(&stub_lock);
	*ret_state = s;
	return 0;
}

static void stub_cancel(struct attempt *a, void *state)
{
	(void)a;
	struct stub *s = state;
	s->cancels++;
	if (s->live && !atomic_load(&stub_stubborn) && !uv_is_active((uv_handle_t *)&s->timer))
		uv_timer_start(&s->timer, stub_cancel_cb, 0, 0);
}

static void stub_reap(const json_t *handle)
{
	char *text = json_dumps(handle, JSON_COMPACT | JSON_SORT_KEYS);
	pthread_mutex_lock(&stub_lock);
	nreaped++;
	snprintf(reaped, sizeof(reaped), "%s", text ? text : "");
	pthread_mutex_unlock(&stub_lock);
	free(text);
}

static void stub_detach(void *state)
{
	struct stub *s = state;
	s->detached = true;
	s->live = false;
	s->a = NULL;
	uv_close((uv_handle_t *)&s->timer, stub_close_cb);
}

static const struct step_type stub_type = {
	.name = "Stub",
	.summary = "local work the unit test starts and ends",
	.flags = STEP_RETRYABLE,
	.fields = stub_fields,
	.describe = stub_describe,
	.bind = stub_bind,
	.free_config = stub_free_config,
	.start = stub_start,
	.cancel = stub_cancel,
	.reap = stub_reap,
};

static const struct step_type stub_remote_type = {
	.name = "StubRemote",
	.summary = "remote work the unit test starts and ends; outlives the process",
	.flags = STEP_RETRYABLE | STEP_REATTACH,
	.fields = stub_fields,
	.describe = stub_describe,
	.bind = stub_bind,
	.free_config = stub_free_config,
	.start = stub_start,
	.cancel = stub_cancel,
	.detach = stub_detach,
};

/* Runs programs on steppy's machine, as Exec does: a policy applies. */
static const struct step_type stub_local_type = {
	.name = "StubLocal",
	.summary = "local code the unit test starts and ends",
	.flags = STEP_LOCAL_CODE,
	.fields = stub_fields,
	.describe = stub_describe,
	.bind = stub_bind,
	.free_config = stub_free_config,
	.start = stub_start,
	.cancel = stub_cancel,
};

/* Forgets the stub attempts of the last test (no runtime may run). */
static void stub_reset(void)
{
	for (size_t i = 0; i < nstubs; i++) {
		json_decref(stubs[i].handle);
		json_decref(stubs[i].cancel_end);
	}
	nstubs = 0;
	atomic_store(&stub_stubborn, false);
	nreaped = 0;
	reaped[0] = '\0';
}

/* ---- driving stub attempts from the test thread ---------------------------------- */

static void stub_key(char *out, size_t size, const char *id, int stage, int step, int attempt)
{
	snprintf(out, size, "%s/%d/%d/%d", id, stage, step, attempt);
}

/* The stub attempt of key (waits for its start()); its index. With
 * reattaching, the one a later runtime started again. */
static size_t stub_wait_for(const char *id, int stage, int step, int attempt, bool reattaching)
{
	char key[64];
	stub_key(key, sizeof(key), id, stage, step, attempt);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	for (;;) {
		pthread_mutex_lock(&stub_lock);
		for (size_t i = nstubs; i-- > 0;)
			if (!strcmp(stubs[i].key, key) && stubs[i].reattaching == reattaching) {
				pthread_mutex_unlock(&stub_lock);
				return i;
			}
		pthread_mutex_unlock(&stub_lock);
		if (rt_now_ms() > deadline)
			fail_msg("stub attempt %s never started", key);
		rt_sleep_ms(2);
	}
}

static size_t stub_wait(const char *id, int stage, int step, int attempt)
{
	return stub_wait_for(id, stage, step, attempt, false);
}

/* How many stub attempts have started. */
static size_t stub_count(void)
{
	pthread_mutex_lock(&stub_lock);
	size_t n = nstubs;
	pthread_mutex_unlock(&stub_lock);
	return n;
}

struct stub_op {
	size_t i[2];      /* stub attempts */
	size_t n;         /* how many of i */
	json_t *handle;   /* report started with it (taken), unless NULL */
	json_t *progress; /* then report this progress (taken), unless NULL */
	bool end, ok;     /* then report ended */
	json_t *details;
};

static void stub_op_fn(void *arg)
{
	struct stub_op *op = arg;
	for (size_t k = 0; k < op->n; k++) {
		struct stub *s = &stubs[op->i[k]];
		if (op->handle && s->live)
			attempt_started(s->a, json_deep_copy(op->handle));
		if (op->progress && s->live)
			attempt_progress(s->a, json_deep_copy(op->progress));
		if (op->end)
			stub_finish(s, op->ok, op->details ? json_incref(op->details) : NULL);
	}
	json_decref(op->handle);
	json_decref(op->progress);
	json_decref(op->details);
}

/* Reports stub attempt i started, with handle (taken). */
static void stub_started(struct rt_fixture *fx, size_t i, json_t *handle)
{
	struct stub_op op = { .i = { i }, .n = 1, .handle = handle };
	rt_call(fx, stub_op_fn, &op);
}

/* Reports stub attempt i ended (details taken, may be NULL). */
static void stub_end(struct rt_fixture *fx, size_t i, bool ok, json_t *details)
{
	struct stub_op op = { .i = { i }, .n = 1, .end = true, .ok = ok, .details = details };
	rt_call(fx, stub_op_fn, &op);
}

/* Reports stub attempt i started and, in the same loop callback, ended. */
static void stub_run(struct rt_fixture *fx, size_t i, bool ok)
{
	struct stub_op op = {
		.i = { i }, .n = 1, .handle = json_pack("{si}", "pid", 4242), .end = true, .ok = ok
	};
	rt_call(fx, stub_op_fn, &op);
}

/* ---- fixtures ---------------------------------------------------------------------- */

static int setup(void **state)
{
	struct rt_fixture *fx = xcalloc(1, sizeof(*fx));
	rt_setup(fx, "runtime");
	stub_reset();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct rt_fixture *fx = *state;
	atomic_store(&stub_stubborn, false); /* a failed test must not hang runtime_free() */
	rt_teardown(fx);
	stub_reset();
	free(fx);
	/* Every plan is freed by now, and with it every config its steps bound. */
	int configs = atomic_load(&stub_configs);
	if (configs != 0) {
		fprintf(stderr, "%d stub configs were not freed\n", configs);
		atomic_store(&stub_configs, 0);
		return -1;
	}
	return 0;
}

static const struct runtime_options plain = { 0 };

/* A runtime without services running a release of plan_text, started by
 * alice; its id in id. */
static void rt_begin(struct rt_fixture *fx, const char *plan_text, char id[16])
{
	rt_new(fx, &plain);
	rt_submit(fx, plan_text, "alice", id);
	rt_start(fx);
}

/* Waits for the runtime's end and asserts the whole history of id (as
 * rt_events() renders it) and its status. */
static void rt_expect_ended(struct rt_fixture *fx, const char *id, const char *status,
                            const char *words)
{
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id, words);
	rt_expect_status(fx, id, status);
}

static const char *const two_stages =
    "{\"stages\": ["
    "{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": \"a\"},"
    "                               {\"type\": \"Stub\", \"name\": \"b\"}]},"
    "{\"name\": \"two\", \"steps\": [{\"type\": \"Stub\", \"name\": \"c\"}]}]}";

/* ---- tests ---------------------------------------------------------------------------- */

static void test_stages_in_order(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_new(fx, &plain);
	rt_submit(fx, two_stages, "alice", id);
	assert_int_equal(atomic_load(&stub_configs), 3); /* bound once, when the plan was built */
	rt_start(fx);
	/* Both steps of the first stage start together ... */
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	stub_started(fx, b, json_pack("{si}", "pid", 2));
	stub_end(fx, a, true, NULL);
	rt_wait_events(fx, id, "StepSucceeded 0.0#1");
	/* ... and the next stage waits for the last of them. */
	char *h = rt_events(fx, id);
	assert_null(strstr(h, "StageStarted 1"));
	free(h);
	assert_int_equal(stub_count(), 2);
	stub_end(fx, b, true, json_pack("{ss}", "output", "done"));
	size_t c = stub_wait(id, 1, 0, 1);
	stub_run(fx, c, true);
	rt_expect_ended(fx, id, "SUCCEEDED",
	                "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                "StepStarted 0.0#1 StepStarted 0.1#1 StepSucceeded 0.0#1 "
	                "StepSucceeded 0.1#1 StageFinished 0 StageStarted 1 StepScheduled 1.0#1 "
	                "StepStarted 1.0#1 StepSucceeded 1.0#1 StageFinished 1 ExecutionFinished");
	/* What the runner reported is in the history: its handle, its details. */
	struct event ev;
	rt_find_event(fx, id, EV_STEP_STARTED, 0, 1, 1, &ev);
	assert_int_equal(json_integer_value(json_object_get(ev.data, "pid")), 2);
	json_decref(ev.data);
	rt_expect_field(fx, id, EV_STEP_SUCCEEDED, 0, 1, 1, "output", "done");
	rt_find_event(fx, id, EV_STEP_SCHEDULED, 1, 0, 1, &ev);
	char key[64];
	stub_key(key, sizeof(key), id, 1, 0, 1);
	assert_string_equal(json_string_value(json_object_get(ev.data, "idempotencyKey")), key);
	json_decref(ev.data);
	assert_string_equal(stubs[c].key, key);
}

static void test_failure_halts(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx, two_stages, id);
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	stub_end(fx, a, false, json_pack("{ss}", "error", "exit status 3"));
	rt_wait_events(fx, id, "StepFailed 0.0#1");
	/* Without failFast the other step of the stage goes on to its end. */
	assert_int_equal(stubs[b].cancels, 0);
	stub_run(fx, b, true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 StepFailed 0.0#1 StepStarted 0.1#1 "
	                 "StepSucceeded 0.1#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(stub_count(), 2); /* the second stage never started */
	rt_expect_status(fx, id, "FAILED");
	rt_expect_field(fx, id, EV_STEP_FAILED, 0, 0, 1, "error", "exit status 3");
}

static void test_fail_fast_cancels(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"failFast\": true, \"steps\": ["
	         "{\"type\": \"Stub\", \"name\": \"a\"}, {\"type\": \"Stub\", \"name\": \"b\"}]},"
	         "{\"name\": \"two\", \"steps\": [{\"type\": \"Stub\", \"name\": \"c\"}]}]}",
	         id);
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, b, json_pack("{si}", "pid", 2));
	stub_run(fx, a, false);
	/* b is cancelled through its runner, and ends cancelled once it has stopped. */
	assert_int_equal(rt_join(fx), 0);
	assert_int_equal(stubs[b].cancels, 1);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.1#1 StepStarted 0.0#1 StepFailed 0.0#1 "
	                 "StepCancelRequested 0.1#1 StepCancelled 0.1#1 StageFinished 0 "
	                 "ExecutionFinished");
	rt_expect_status(fx, id, "FAILED");
}

static void test_start_refused(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	         "\"a\", \"failStart\": \"no such job\"}]}]}",
	         id);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepFailed 0.0#1 "
	                 "StageFinished 0 ExecutionFinished");
	rt_expect_field(fx, id, EV_STEP_FAILED, 0, 0, 1, "error", "no such job");
}

static void test_retry_backoff(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	         "\"a\", \"retry\": {\"maxAttempts\": 3, \"intervalSeconds\": 1, "
	         "\"backoffRate\": 2}}]}]}",
	         id);
	stub_run(fx, stub_wait(id, 0, 0, 1), false);
	stub_run(fx, stub_wait(id, 0, 0, 2), false);
	stub_run(fx, stub_wait(id, 0, 0, 3), true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepFailed 0.0#1 RetryScheduled 0.0#1 TimerFired 0.0#1 "
	                 "StepScheduled 0.0#2 StepStarted 0.0#2 StepFailed 0.0#2 "
	                 "RetryScheduled 0.0#2 TimerFired 0.0#2 StepScheduled 0.0#3 "
	                 "StepStarted 0.0#3 StepSucceeded 0.0#3 StageFinished 0 ExecutionFinished");
	/* The waits: 1 s, then 2 s (backoffRate 2); no attempt starts before its time. */
	for (int attempt = 1; attempt <= 2; attempt++) {
		struct event failed, retry, fired;
		rt_find_event(fx, id, EV_STEP_FAILED, 0, 0, attempt, &failed);
		rt_find_event(fx, id, EV_RETRY_SCHEDULED, 0, 0, attempt, &retry);
		rt_find_event(fx, id, EV_TIMER_FIRED, 0, 0, attempt, &fired);
		int64_t due = json_integer_value(json_object_get(retry.data, "dueMs"));
		assert_int_equal(due - failed.time_ms, attempt == 1 ? 1000 : 2000);
		assert_int_equal(json_integer_value(json_object_get(retry.data, "nextAttempt")),
		                 attempt + 1);
		assert_true(fired.time_ms >= due);
		json_decref(failed.data);
		json_decref(retry.data);
		json_decref(fired.data);
	}
}

static void test_timeout(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	         "\"a\", \"timeoutSeconds\": 1, \"retry\": {\"maxAttempts\": 2, "
	         "\"intervalSeconds\": 0}}]}]}",
	         id);
	size_t first = stub_wait(id, 0, 0, 1);
	stub_started(fx, first, json_pack("{si}", "pid", 1));
	/* Never ended by the test: the timeout cancels it, and the retry runs. */
	size_t second = stub_wait(id, 0, 0, 2);
	assert_int_equal(stubs[first].cancels, 1);
	stub_run(fx, second, true);
	assert_int_equal(rt_join(fx), 0);
	/* The first attempt's end after its cancel changes nothing. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "TimerFired 0.0#1 StepTimedOut 0.0#1 RetryScheduled 0.0#1 "
	                 "TimerFired 0.0#1 StepScheduled 0.0#2 StepStarted 0.0#2 "
	                 "StepSucceeded 0.0#2 StageFinished 0 ExecutionFinished");
	struct event started, fired;
	rt_find_event(fx, id, EV_STEP_STARTED, 0, 0, 1, &started);
	rt_find_event(fx, id, EV_STEP_TIMED_OUT, 0, 0, 1, &fired);
	int64_t timeout = json_integer_value(json_object_get(started.data, "timeoutMs"));
	assert_int_equal(timeout - started.time_ms, 1000);
	assert_true(fired.time_ms >= timeout);
	json_decref(started.data);
	json_decref(fired.data);
}

static void test_abort_through_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx, two_stages, id);
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	/* Another process asks (the inbox); this runtime owns the release. */
	struct strbuf err = STRBUF_INIT;
	int r = control_apply(fx->reader, id, "abort",
	                      json_pack("{ssss}", "by", "bob", "reason", "wrong tag"), DEADLINE_MS,
	                      &err);
	if (r != CONTROL_DONE_BY_OWNER)
		fail_msg("control_apply: %d %s", r, err.buf);
	strbuf_release(&err);
	assert_int_equal(rt_join(fx), 0);
	assert_int_equal(stubs[a].cancels, 1);
	assert_int_equal(stubs[b].cancels, 1);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 AbortRequested StepCancelRequested 0.0#1 "
	                 "StepCancelRequested 0.1#1 StepCancelled 0.0#1 StepCancelled 0.1#1 "
	                 "StageFinished 0 ExecutionFinished");
	rt_expect_status(fx, id, "ABORTED");
	struct event ev;
	rt_find_event(fx, id, EV_ABORT_REQUESTED, -1, -1, 0, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "by")), "bob");
	assert_string_equal(json_string_value(json_object_get(ev.data, "reason")), "wrong tag");
	json_decref(ev.data);
}

/* Group commit: the observer hears of one execution's batch only after the
 * transaction; if the other's events of the same loop iteration are visible
 * to another connection by then, they were in the same transaction. */
static struct store *probe;
static char probe_other[16];
static int probe_seen = -1; /* -1: not called yet; else: did the other's end show */

static void probe_on_events(struct rt_fixture *fx, const char *id, const struct event *events,
                            size_t n)
{
	(void)fx;
	bool ends = false;
	for (size_t i = 0; i < n; i++)
		ends |= events[i].type == EV_STEP_SUCCEEDED;
	if (!ends || probe_seen >= 0 || !strcmp(id, probe_other))
		return;
	struct event_list h = EVENT_LIST_INIT;
	probe_seen = 0;
	if (store_history(probe, probe_other, 0, &h, NULL) == 0)
		for (size_t i = 0; i < h.len; i++)
			if (h.items[i].type == EV_STEP_SUCCEEDED)
				probe_seen = 1;
	event_list_release(&h);
}

static void test_group_commit(void **state)
{
	struct rt_fixture *fx = *state;
	const char *one = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                  "[{\"type\": \"Stub\", \"name\": \"a\"}]}]}";
	char x[16], y[16];
	assert_int_equal(store_open(fx->path, &probe, NULL), 0);
	rt_new(fx, &plain);
	rt_submit(fx, one, "alice", x);
	rt_submit(fx, one, "alice", y);
	memcpy(probe_other, y, sizeof(probe_other));
	probe_seen = -1;
	fx->on_events = probe_on_events;
	rt_start(fx);
	size_t ax = stub_wait(x, 0, 0, 1), ay = stub_wait(y, 0, 0, 1);
	/* Both end in one loop callback: one transaction holds both. */
	struct stub_op op = { .i = { ax, ay },
		              .n = 2,
		              .handle = json_pack("{si}", "pid", 7),
		              .end = true,
		              .ok = true };
	rt_call(fx, stub_op_fn, &op);
	assert_int_equal(rt_join(fx), 0);
	assert_int_equal(probe_seen, 1);
	rt_expect_events(fx, x,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	rt_expect_events(fx, y,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	store_close(probe);
	probe = NULL;
}

/* Frees the runtime and its store connection, and makes a new one on the same
 * file: the next steppy process. */
static void restart(struct rt_fixture *fx, const struct runtime_options *opts)
{
	rt_free(fx);
	store_close(fx->st);
	struct strbuf err = STRBUF_INIT;
	if (store_open(fx->path, &fx->st, &err) < 0)
		fail_msg("store_open: %s", err.buf);
	strbuf_release(&err);
	rt_new(fx, opts);
}

struct adopt_job {
	struct rt_fixture *fx;
	size_t n;
	int r;
};

static void adopt_fn(void *arg)
{
	struct adopt_job *j = arg;
	struct strbuf err = STRBUF_INIT;
	j->r = runtime_adopt_all(j->fx->rt, &j->n, &err);
	strbuf_release(&err);
}

static void test_restart_recovers(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": ["
	         "{\"type\": \"Stub\", \"name\": \"local\", \"retry\": {\"maxAttempts\": 2, "
	         "\"intervalSeconds\": 0}},"
	         "{\"type\": \"StubRemote\", \"name\": \"remote\"}]}]}",
	         id);
	size_t local = stub_wait(id, 0, 0, 1), remote = stub_wait(id, 0, 1, 1);
	stub_started(fx, local, json_pack("{si}", "pid", 4242));
	stub_started(fx, remote, json_pack("{ss}", "build", "b-1"));
	rt_wait_events(fx, id, "StepStarted 0.1#1");
	/* The process stops: local work is stopped, remote work forgotten, and
	 * neither end is recorded. */
	assert_int_equal(rt_stop(fx), 1);
	assert_int_equal(stubs[local].cancels, 1);
	assert_true(stubs[remote].detached);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 StepStarted 0.1#1");

	restart(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.r, 0);
	assert_int_equal(j.n, 1);
	/* The local attempt's leftovers were reaped, by its handle ... */
	assert_int_equal(nreaped, 1);
	assert_string_equal(reaped, "{\"pid\":4242}");
	/* ... and the remote work found again through its handle, not restarted. */
	size_t again = stub_wait_for(id, 0, 1, 1, true);
	assert_non_null(stubs[again].handle);
	assert_string_equal(json_string_value(json_object_get(stubs[again].handle, "build")),
	                    "b-1");
	rt_start(fx);
	/* The interrupted attempt counts as failed: the retry policy runs it again. */
	size_t local2 = stub_wait(id, 0, 0, 2);
	stub_run(fx, local2, true);
	stub_end(fx, again, true, NULL);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 StepStarted 0.1#1 StepFailed 0.0#1 "
	                 "RetryScheduled 0.0#1 TimerFired 0.0#1 StepScheduled 0.0#2 "
	                 "StepStarted 0.0#2 StepSucceeded 0.0#2 StepSucceeded 0.1#1 "
	                 "StageFinished 0 ExecutionFinished");
	struct event ev;
	rt_find_event(fx, id, EV_STEP_FAILED, 0, 0, 1, &ev);
	assert_non_null(
	    strstr(json_string_value(json_object_get(ev.data, "error")), "interrupted"));
	json_decref(ev.data);
}

static void test_restart_resumes_wait(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	/* The first process records the Wait's due time and stops before its
	 * loop ever runs: only the next process can fire the timer. */
	rt_new(fx, &plain);
	rt_submit(fx,
	          "{\"stages\": [{\"name\": \"one\", \"steps\": "
	          "[{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}]}",
	          "alice", id);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	struct event started;
	rt_find_event(fx, id, EV_STEP_STARTED, 0, 0, 1, &started);
	int64_t due = json_integer_value(json_object_get(started.data, "dueMs"));
	json_decref(started.data);

	restart(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.n, 1);
	rt_start(fx);
	assert_int_equal(rt_join(fx), 0);
	/* The same attempt, with the due time the first process recorded. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "TimerFired 0.0#1 StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	struct event fired;
	rt_find_event(fx, id, EV_TIMER_FIRED, 0, 0, 1, &fired);
	assert_true(fired.time_ms >= due);
	json_decref(fired.data);
}

static void test_reattach_while_cancelling(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": "
	         "[{\"type\": \"StubRemote\", \"name\": \"r\"}]}]}",
	         id);
	size_t r = stub_wait(id, 0, 0, 1);
	stub_started(fx, r, json_pack("{ss}", "build", "b-9"));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	/* An abort asks the remote work to stop; it takes its time ... */
	atomic_store(&stub_stubborn, true);
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(control_apply(fx->reader, id, "abort", json_pack("{ss}", "by", "bob"),
	                               DEADLINE_MS, &err),
	                 CONTROL_DONE_BY_OWNER);
	strbuf_release(&err);
	rt_wait_events(fx, id, "StepCancelRequested 0.0#1");
	/* ... and the process stops meanwhile, forgetting it. */
	assert_int_equal(rt_stop(fx), 1);
	assert_true(stubs[r].detached);
	assert_int_equal(stubs[r].cancels, 1);

	/* The next process finds the work again and asks it to stop again. */
	restart(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.n, 1);
	size_t again = stub_wait_for(id, 0, 0, 1, true);
	assert_int_equal(stubs[again].cancels, 1);
	rt_start(fx);
	stub_end(fx, again, false, json_pack("{ss}", "error", "stopped"));
	rt_expect_ended(fx, id, "ABORTED",
	                "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                "AbortRequested StepCancelRequested 0.0#1 StepCancelled 0.0#1 "
	                "StageFinished 0 ExecutionFinished");
}

static void test_reattach_before_started(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": "
	         "[{\"type\": \"StubRemote\", \"name\": \"r\"}]}]}",
	         id);
	stub_wait(id, 0, 0, 1);
	/* Stopped before the work was known to exist (no StepStarted) ... */
	assert_int_equal(rt_stop(fx), 1);
	restart(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.n, 1);
	/* ... the next process starts it again with the same idempotency key and
	 * no handle, and the runner reports it started. */
	size_t again = stub_wait_for(id, 0, 0, 1, true);
	assert_null(stubs[again].handle);
	char key[64];
	stub_key(key, sizeof(key), id, 0, 0, 1);
	assert_string_equal(stubs[again].key, key);
	rt_start(fx);
	stub_run(fx, again, true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
}

static void test_local_code_policy(void **state)
{
	struct rt_fixture *fx = *state;
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"StubLocal\", \"name\": \"l\"}]}]}";
	char id[16], inbox_id[16], refused_id[16];
	/* A server whose policy takes local code, but not from an inbox. */
	static const struct exec_policy policy = { .enabled = true, .inbox = false };
	static const char *const secrets[] = { "s3cr3t", NULL };
	struct runtime_options opts = { .exec_policy = &policy, .secret_values = secrets };
	rt_new(fx, &opts);
	rt_submit(fx, plan, "alice", id);
	rt_submit(fx, plan, "inbox:plans/deploy.yaml", inbox_id);
	rt_start(fx);
	/* Allowed: it runs, and is told which values to mask. */
	size_t l = stub_wait(id, 0, 0, 1);
	assert_string_equal(stubs[l].secrets, "s3cr3t;");
	stub_run(fx, l, true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_status(fx, id, "SUCCEEDED");
	/* From an inbox: refused before the runner is asked. */
	rt_expect_events(fx, inbox_id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepFailed 0.0#1 "
	                 "StageFinished 0 ExecutionFinished");
	assert_int_equal(stub_count(), 1);
	struct event ev;
	rt_find_event(fx, inbox_id, EV_STEP_FAILED, 0, 0, 1, &ev);
	assert_non_null(strstr(json_string_value(json_object_get(ev.data, "error")), "exec.inbox"));
	json_decref(ev.data);

	/* A process whose policy refuses local code (another configuration after a
	 * restart): checked again before each attempt. */
	static const struct exec_policy off = { .enabled = false };
	struct runtime_options opts_off = { .exec_policy = &off };
	restart(fx, &opts_off);
	rt_submit(fx, plan, "alice", refused_id);
	rt_start(fx);
	assert_int_equal(rt_join(fx), 0);
	rt_find_event(fx, refused_id, EV_STEP_FAILED, 0, 0, 1, &ev);
	assert_non_null(
	    strstr(json_string_value(json_object_get(ev.data, "error")), "exec.enabled"));
	json_decref(ev.data);
	assert_int_equal(stub_count(), 1);
}

static void test_progress_is_a_notice(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": "
	         "[{\"type\": \"Stub\", \"name\": \"a\"}]}]}",
	         id);
	size_t a = stub_wait(id, 0, 0, 1);
	struct stub_op op = { .i = { a },
		              .n = 1,
		              .handle = json_pack("{si}", "pid", 1),
		              .progress = json_pack("{ss}", "phase", "BUILD") };
	rt_call(fx, stub_op_fn, &op);
	stub_end(fx, a, true, NULL);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "Notice 0.0#1 StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	rt_expect_field(fx, id, EV_NOTICE, 0, 0, 1, "phase", "BUILD");
}

struct submit_as_job {
	struct rt_fixture *fx;
	struct plan *plan;
	const char *id;
	int r;
};

static void submit_as_fn(void *arg)
{
	struct submit_as_job *j = arg;
	const char *id;
	struct strbuf err = STRBUF_INIT;
	j->r = runtime_submit_as(j->fx->rt, j->plan, "t.json", "inbox:x", j->id, &id, &err);
	strbuf_release(&err);
}

static void test_submit_as_and_adopt_refusals(void **state)
{
	struct rt_fixture *fx = *state;
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"Human\", \"name\": \"go\", \"message\": \"Go?\"}]}]}";
	rt_new(fx, &plain);
	/* An inbox file starts exactly one release: its id is given. */
	struct submit_as_job j = { .fx = fx, .plan = test_plan(plan), .id = "inboxfile1" };
	rt_call(fx, submit_as_fn, &j);
	assert_int_equal(j.r, 0);
	j.plan = test_plan(plan);
	rt_call(fx, submit_as_fn, &j);
	assert_int_equal(j.r, SP_ECONFLICT);
	plan_free(j.plan); /* the caller keeps the plan on failure */
	rt_expect_events(fx, "inboxfile1",
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	/* Another runtime (another process) cannot take a release this live one
	 * runs, nor one that does not exist. */
	struct store *st2;
	struct runtime *rt2;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_open(fx->path, &st2, NULL), 0);
	assert_int_equal(runtime_new(st2, &plain, &rt2, NULL), 0);
	assert_int_equal(runtime_adopt(rt2, "inboxfile1", &err), SP_EBUSY);
	assert_non_null(strstr(err.buf, "another steppy process"));
	strbuf_reset(&err);
	assert_int_equal(runtime_adopt(rt2, "nosuchid00", &err), SP_ENOENT);
	strbuf_release(&err);
	runtime_free(rt2);
	store_close(st2);
}

static void test_abort_during_retry_wait(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	         "\"a\", \"retry\": {\"maxAttempts\": 2, \"intervalSeconds\": 3600}}]}]}",
	         id);
	stub_run(fx, stub_wait(id, 0, 0, 1), false);
	rt_wait_events(fx, id, "RetryScheduled 0.0#1");
	/* Nothing runs while the retry waits: the abort ends the step at once. */
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(control_apply(fx->reader, id, "abort", json_pack("{ss}", "by", "bob"),
	                               DEADLINE_MS, &err),
	                 CONTROL_DONE_BY_OWNER);
	strbuf_release(&err);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepFailed 0.0#1 RetryScheduled 0.0#1 AbortRequested StepCancelled 0.0#1 "
	                 "StageFinished 0 ExecutionFinished");
	assert_int_equal(stub_count(), 1);
}

static void test_human_expiry_and_waiting(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_new(fx, &plain);
	rt_submit(fx,
	          "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Human\", "
	          "\"name\": \"go\", \"message\": \"Go?\", \"timeoutSeconds\": 1}]}]}",
	          "alice", id);
	/* The projection says what it waits for, for list and the dashboard. */
	struct exec_row row;
	assert_int_equal(store_get(fx->reader, id, &row, NULL), 0);
	assert_non_null(row.waiting);
	assert_string_equal(row.waiting, "approval of \"go\"");
	assert_true(row.next_due_ms > 0);
	exec_row_release(&row);
	rt_start(fx);
	/* Nobody decides in time. */
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "TimerFired 0.0#1 StepTimedOut 0.0#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(store_get(fx->reader, id, &row, NULL), 0);
	assert_string_equal(row.status, "FAILED");
	assert_null(row.waiting);
	assert_int_equal(row.next_due_ms, 0);
	exec_row_release(&row);
	rt_expect_field(fx, id, EV_TIMER_FIRED, 0, 0, 1, "purpose", "expiry");
}

struct decide_job {
	struct rt_fixture *fx;
	const char *id;
	const char *by;
	bool approve;
	int r;
	char reason[256];
};

static void decide_fn(void *arg)
{
	struct decide_job *j = arg;
	const char *reason = NULL;
	j->r = runtime_decide(j->fx->rt, j->id, 0, 0, j->approve, json_pack("{ss}", "by", j->by),
	                      &reason);
	snprintf(j->reason, sizeof(j->reason), "%s", reason ? reason : "");
}

/* The terminal of steppy run decides on the runtime directly (no inbox). */
static void test_decide_from_terminal(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Human\", "
	         "\"name\": \"go\", \"message\": \"Go?\", \"approvers\": [\"carol\"]}]}]}",
	         id);
	struct decide_job j = { .fx = fx, .id = id, .by = "bob", .approve = true };
	rt_call(fx, decide_fn, &j);
	assert_int_equal(j.r, SP_EINVAL);
	assert_non_null(strstr(j.reason, "bob"));
	j.id = "nosuchid00";
	rt_call(fx, decide_fn, &j);
	assert_int_equal(j.r, SP_EINVAL);
	assert_non_null(strstr(j.reason, "not run by this process"));
	j.id = id;
	j.by = "carol";
	rt_call(fx, decide_fn, &j);
	assert_int_equal(j.r, 0);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1 StageFinished 0 ExecutionFinished");
}

/* A built-in type runs under the runtime the same way: Notify to the local
 * log, which needs nothing outside this machine. */
static void test_builtin_notify_to_log(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16], log[128];
	snprintf(log, sizeof(log), "%s/notify.log", fx->dir);
	struct runtime_options opts = { .notify_log = log };
	rt_new(fx, &opts);
	/* As `steppy run` does: the owner's hub, whose "log" channel is the file. */
	struct notify_hub_options ho = { .log_path = log };
	struct notify_hub *hub = notify_hub_new(runtime_loop(fx->rt), NULL, &ho);
	runtime_services(fx->rt)->notify = hub;
	rt_submit(fx,
	          "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Notify\", "
	          "\"name\": \"tell\", \"subject\": \"Released\", \"message\": \"v1 is out\", "
	          "\"channels\": [\"log\"]}]}]}",
	          "alice", id);
	rt_start(fx);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	runtime_services(fx->rt)->notify = NULL;
	notify_hub_free(hub);
	char *text = NULL;
	size_t len = 0;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(read_file_capped(log, 1 << 20, &text, &len, &err), 0);
	strbuf_release(&err);
	assert_non_null(strstr(text, id));
	assert_non_null(strstr(text, "[Released] v1 is out"));
	free(text);
	struct stat sb;
	assert_int_equal(stat(log, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
}

/*
 * The child of a crash test: a steppy process that submits plan, reports
 * its stub attempt started (with handle, if not NULL) and sees that
 * committed, writes the release's id to fd, and is killed (SIGKILL: its
 * lease stays, nothing is cleaned up). Never returns.
 */
static void crash_child(struct rt_fixture *fx, struct plan *plan, json_t *handle, int fd)
{
	struct store *st;
	struct runtime *rt;
	const char *id;
	if (store_open(fx->path, &st, NULL) < 0 || runtime_new(st, &plain, &rt, NULL) < 0 ||
	    runtime_submit(rt, plan, "t.json", "alice", &id, NULL) < 0)
		_exit(1);
	if (handle) {
		attempt_started(stubs[nstubs - 1].a, handle);
		for (int i = 0; i < 10000; i++) {
			uv_run(runtime_loop(rt), UV_RUN_NOWAIT); /* a flush commits it */
			struct event_list h = EVENT_LIST_INIT;
			bool started = false;
			if (store_history(st, id, 0, &h, NULL) == 0)
				for (size_t k = 0; k < h.len; k++)
					started |= h.items[k].type == EV_STEP_STARTED;
			event_list_release(&h);
			if (started)
				break;
			rt_sleep_ms(1);
		}
	}
	if (write(fd, id, 10) != 10)
		_exit(1);
	/* Killed by a shell in its place (same pid): under valgrind, a process
	 * that raises SIGKILL itself still gets its leak report, an exec none. */
	execl("/bin/sh", "sh", "-c", "kill -KILL $$", (char *)NULL);
	raise(SIGKILL);
	_exit(1);
}

/* Runs crash_child() in a child process; returns the id of its release. */
static void crash(struct rt_fixture *fx, const char *plan_text, json_t *handle, char id[16])
{
	struct plan *plan = test_plan(plan_text);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		crash_child(fx, plan, handle, fds[1]);
	}
	assert_true(pid > 0);
	close(fds[1]);
	plan_free(plan); /* the child's copy went with it */
	json_decref(handle);
	memset(id, 0, 16);
	assert_int_equal(read(fds[0], id, 10), 10);
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

static const char *const retried_once =
    "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": \"a\", "
    "\"retry\": {\"maxAttempts\": 2, \"intervalSeconds\": 0}}]}]}";

static void test_crash_before_started(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	/* Killed after the intent (StepScheduled) and start(), before StepStarted. */
	crash(fx, retried_once, NULL, id);
	rt_expect_events(fx, id, "ExecutionStarted StageStarted 0 StepScheduled 0.0#1");
	/* Its lease is still there, but its process is gone: taken at once. */
	rt_new(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.n, 1);
	assert_int_equal(nreaped, 0); /* no handle: nothing to reap */
	rt_start(fx);
	stub_run(fx, stub_wait(id, 0, 0, 2), true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepFailed 0.0#1 "
	                 "RetryScheduled 0.0#1 TimerFired 0.0#1 StepScheduled 0.0#2 "
	                 "StepStarted 0.0#2 StepSucceeded 0.0#2 StageFinished 0 ExecutionFinished");
}

static void test_crash_after_started(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	/* Killed while the attempt runs: its StepStarted handle is recorded. */
	crash(fx, retried_once, json_pack("{si}", "pid", 777), id);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	rt_new(fx, &plain);
	struct adopt_job j = { .fx = fx };
	rt_call(fx, adopt_fn, &j);
	assert_int_equal(j.n, 1);
	/* What the dead process left running is reaped by its handle ... */
	assert_int_equal(nreaped, 1);
	assert_string_equal(reaped, "{\"pid\":777}");
	/* ... and the attempt counts as interrupted. */
	rt_start(fx);
	stub_run(fx, stub_wait(id, 0, 0, 2), true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepFailed 0.0#1 RetryScheduled 0.0#1 TimerFired 0.0#1 "
	                 "StepScheduled 0.0#2 StepStarted 0.0#2 StepSucceeded 0.0#2 "
	                 "StageFinished 0 ExecutionFinished");
}

/* ---- parking ---------------------------------------------------------------------------- */

#define NPARK 40

struct park_job {
	struct rt_fixture *fx;
	char (*ids)[16];
	int parked;  /* how many have no state in memory */
	int first;   /* the index of one of them, or -1 */
	int running; /* runtime_status() says RUNNING */
};

static void park_count_fn(void *arg)
{
	struct park_job *j = arg;
	j->parked = j->running = 0;
	j->first = -1;
	for (int i = 0; i < NPARK; i++) {
		if (!runtime_state(j->fx->rt, j->ids[i])) {
			j->parked++;
			if (j->first < 0)
				j->first = i;
		}
		j->running += runtime_status(j->fx->rt, j->ids[i]) == (int)EXEC_RUNNING;
	}
}

static void test_parking(void **state)
{
	struct rt_fixture *fx = *state;
	static char ids[NPARK][16];
	rt_new(fx, &plain);
	for (int i = 0; i < NPARK; i++)
		rt_submit(fx,
		          "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Human\", "
		          "\"name\": \"go\", \"message\": \"Go?\"}]}]}",
		          "alice", ids[i]);
	rt_start(fx);
	/* Only waiting for people: all but 32 leave memory. */
	struct park_job j = { .fx = fx, .ids = ids };
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	do {
		rt_call(fx, park_count_fn, &j);
	} while (j.parked < NPARK - 32 && rt_now_ms() < deadline && (rt_sleep_ms(5), 1));
	assert_int_equal(j.parked, NPARK - 32);
	assert_int_equal(j.running, NPARK);
	/* A decision reads a parked release back and moves it on. */
	const char *id = ids[j.first];
	struct strbuf err = STRBUF_INIT;
	int r = control_apply(fx->reader, id, "approve",
	                      json_pack("{sisiss}", "stage", 0, "step", 0, "by", "bob"),
	                      DEADLINE_MS, &err);
	if (r != CONTROL_DONE_BY_OWNER)
		fail_msg("control_apply: %d %s", r, err.buf);
	strbuf_release(&err);
	rt_wait_status(fx, id, "SUCCEEDED");
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1 StageFinished 0 ExecutionFinished");
	int approved = j.first;
	/* So does an abort, of another parked one. */
	rt_call(fx, park_count_fn, &j);
	assert_true(j.first >= 0 && j.first != approved);
	int aborted = j.first;
	err = (struct strbuf)STRBUF_INIT;
	r = control_apply(fx->reader, ids[aborted], "abort", json_pack("{ss}", "by", "bob"),
	                  DEADLINE_MS, &err);
	if (r != CONTROL_DONE_BY_OWNER)
		fail_msg("control_apply: %d %s", r, err.buf);
	strbuf_release(&err);
	rt_wait_status(fx, ids[aborted], "ABORTED");
	for (int i = 0; i < NPARK; i++) {
		if (i == approved || i == aborted)
			continue;
		rt_expect_status(fx, ids[i], "RUNNING");
	}
	assert_int_equal(rt_stop(fx), 1);
}

/* ---- redrive -------------------------------------------------------------------------------- */

struct redrive_job {
	struct rt_fixture *fx;
	const char *id;
	int r;
	struct strbuf err;
};

static void redrive_fn(void *arg)
{
	struct redrive_job *j = arg;
	j->r = runtime_redrive(j->fx->rt, j->id, json_pack("{ss}", "by", "bob"), &j->err);
}

static void test_redrive(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	/* A server's runtime: it keeps running, and forgets ended releases. */
	struct runtime_options opts = { .keep_running = true };
	rt_new(fx, &opts);
	rt_submit(fx,
	          "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	          "\"a\"}]}, {\"name\": \"two\", \"steps\": [{\"type\": \"Stub\", \"name\": "
	          "\"b\"}]}]}",
	          "alice", id);
	rt_start(fx);
	stub_run(fx, stub_wait(id, 0, 0, 1), false);
	rt_wait_status(fx, id, "FAILED");
	/* steppy retry: the failed step runs again, then the rest. */
	struct redrive_job j = { .fx = fx, .id = id };
	strbuf_init(&j.err, SIZE_MAX);
	rt_call(fx, redrive_fn, &j);
	if (j.r != 0)
		fail_msg("runtime_redrive: %s", j.err.buf);
	strbuf_release(&j.err);
	stub_run(fx, stub_wait(id, 0, 0, 2), true);
	stub_run(fx, stub_wait(id, 1, 0, 1), true);
	rt_wait_status(fx, id, "SUCCEEDED");
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepFailed 0.0#1 StageFinished 0 ExecutionFinished ExecutionRedriven "
	                 "StageStarted 0 StepScheduled 0.0#2 StepStarted 0.0#2 StepSucceeded 0.0#2 "
	                 "StageFinished 0 StageStarted 1 StepScheduled 1.0#1 StepStarted 1.0#1 "
	                 "StepSucceeded 1.0#1 StageFinished 1 ExecutionFinished");
	rt_expect_field(fx, id, EV_EXECUTION_REDRIVEN, -1, -1, 0, "by", "bob");
	assert_int_equal(rt_stop(fx), 1);
}

/* ---- leases -------------------------------------------------------------------------------- */

/* Runs sql on the store file through a connection of its own (another
 * process writing the leases table). */
static void store_sql(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK || sqlite3_busy_timeout(db, 10000) != SQLITE_OK ||
	    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
}

/* Gives the lease of id to owner (of process pid on this host), whoever held it. */
static void lease_to(struct rt_fixture *fx, const char *id, const char *owner, long pid)
{
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	char *sql = xstrfmt("UPDATE leases SET owner = '%s', host = '%s', pid = %ld, "
	                    "expires_ms = %lld WHERE execution_id = '%s'",
	                    owner, host, pid, (long long)(wall_clock_ms() + 600000), id);
	store_sql(fx->path, sql);
	free(sql);
}

static const char *const one_stage_two =
    "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Stub\", \"name\": \"a\"},"
    "{\"type\": \"Stub\", \"name\": \"b\"}]}]}";

static void status_fn(void *arg)
{
	struct redrive_job *j = arg; /* id in, r out */
	j->r = runtime_status(j->fx->rt, j->id);
}

static void test_lease_expired_taken_back(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx, one_stage_two, id);
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	/* The lease lapsed (the process hung), and nobody took the release. */
	char *sql = xstrfmt("UPDATE leases SET expires_ms = 0 WHERE execution_id = '%s'", id);
	store_sql(fx->path, sql);
	free(sql);
	stub_end(fx, a, true, NULL);
	stub_run(fx, b, true);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 StepSucceeded 0.0#1 StepStarted 0.1#1 "
	                 "StepSucceeded 0.1#1 StageFinished 0 ExecutionFinished");
}

static void test_lease_taken_over(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16], thief[128];
	rt_begin(fx, one_stage_two, id);
	size_t a = stub_wait(id, 0, 0, 1), b = stub_wait(id, 0, 1, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	stub_started(fx, b, json_pack("{si}", "pid", 2));
	rt_wait_events(fx, id, "StepStarted 0.1#1");
	/* Another live process (this one's pid) took the release over. */
	snprintf(thief, sizeof(thief), "thief:%d", (int)getpid());
	lease_to(fx, id, thief, (long)getpid());
	stub_end(fx, a, true, NULL);
	/* The runtime lets it go: its event is not written, its other work stops,
	 * and the release is no longer its own. */
	assert_int_equal(rt_join(fx), 0);
	assert_true(rt_reported(fx, "run by another steppy process now"));
	assert_int_equal(stubs[b].cancels, 1);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1 "
	                 "StepStarted 0.0#1 StepStarted 0.1#1");
	struct redrive_job j = { .fx = fx, .id = id };
	rt_call(fx, status_fn, &j);
	assert_int_equal(j.r, -1);
	assert_true(store_lease_held_elsewhere(fx->reader, id, "", wall_clock_ms()));
}

static void test_lease_behind(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": [{\"type\": \"Human\", "
	         "\"name\": \"go\", \"message\": \"Go?\"}, {\"type\": \"Stub\", \"name\": "
	         "\"s\"}]}]}",
	         id);
	size_t s = stub_wait(id, 0, 1, 1);
	stub_started(fx, s, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.1#1");
	/* The lease passes to a process that is gone (pids never go this high) ... */
	lease_to(fx, id, "gone", 0x7ffffff0L);
	/* ... so a decision is applied directly, behind the runtime's back. */
	struct strbuf err = STRBUF_INIT;
	int r = control_apply(fx->reader, id, "approve",
	                      json_pack("{sisiss}", "stage", 0, "step", 0, "by", "bob"),
	                      DEADLINE_MS, &err);
	if (r != CONTROL_DONE_HERE)
		fail_msg("control_apply: %d %s", r, err.buf);
	strbuf_release(&err);
	/* The runtime's copy is stale: it takes the lease back but not the
	 * release; what it had not recorded is not written over the decision. */
	stub_end(fx, s, true, NULL);
	assert_int_equal(rt_join(fx), 0);
	assert_true(rt_reported(fx, "run by another steppy process now"));
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepScheduled 0.1#1 StepStarted 0.1#1 HumanDecision 0.0#1");
	/* It gave the lease back: the next process continues from the store. */
	assert_false(store_lease_held_elsewhere(fx->reader, id, "", wall_clock_ms()));
	restart(fx, &plain);
	struct adopt_job aj = { .fx = fx };
	rt_call(fx, adopt_fn, &aj);
	assert_int_equal(aj.n, 1);
	rt_start(fx);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepScheduled 0.1#1 StepStarted 0.1#1 HumanDecision 0.0#1 "
	                 "StepFailed 0.1#1 StageFinished 0 ExecutionFinished");
}

struct take_over_job {
	struct rt_fixture *fx;
	size_t n;
	int r;
};

static void take_over_fn(void *arg)
{
	struct take_over_job *j = arg;
	struct strbuf err = STRBUF_INIT;
	j->r = runtime_take_over(j->fx->rt, &j->n, NULL, &err);
	strbuf_release(&err);
}

static size_t take_over(struct rt_fixture *fx)
{
	struct take_over_job j = { .fx = fx };
	rt_call(fx, take_over_fn, &j);
	assert_int_equal(j.r, 0);
	return j.n;
}

/* Gives the lease of id to another live process (this one's pid). */
static void lease_elsewhere(struct rt_fixture *fx, const char *id)
{
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	char *sql =
	    xstrfmt("INSERT INTO leases (execution_id, owner, host, pid, expires_ms) "
	            "VALUES ('%s', 'other:%d', '%s', %d, %lld)",
	            id, (int)getpid(), host, (int)getpid(), (long long)(wall_clock_ms() + 600000));
	store_sql(fx->path, sql);
	free(sql);
}

/*
 * Releases nobody holds are shared: a node takes its part of the live load
 * (here none of 5 held elsewhere: 1 of 5), the rest at their second sight;
 * a node alone takes them all at once.
 */
static void test_take_over_share(void **state)
{
	struct rt_fixture *fx = *state;
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"Human\", \"name\": \"go\", \"message\": \"Go?\"}]}]}";
	char ids[10][16];
	rt_new(fx, &plain);
	for (int i = 0; i < 10; i++)
		rt_submit(fx, plan, "alice", ids[i]);
	/* Its process stops: the leases are given up, the releases unfinished. */
	restart(fx, &plain);
	for (int i = 0; i < 5; i++)
		lease_elsewhere(fx, ids[i]);
	assert_int_equal(take_over(fx), 1);
	assert_int_equal(take_over(fx), 4);
	assert_int_equal(take_over(fx), 0);
	for (int i = 0; i < 5; i++)
		assert_true(store_lease_held_elsewhere(fx->reader, ids[i], "", wall_clock_ms()));
	/* The other process goes (its leases lapse): alone, this one takes all. */
	store_sql(fx->path, "UPDATE leases SET expires_ms = 0 WHERE owner LIKE 'other:%'");
	assert_int_equal(take_over(fx), 5);
	for (int i = 0; i < 10; i++) {
		struct redrive_job j = { .fx = fx, .id = ids[i] };
		rt_call(fx, status_fn, &j);
		assert_int_equal(j.r, (int)EXEC_RUNNING);
	}
}

/* ---- a store that refuses writes --------------------------------------------------------------
 */

/* Takes the store's write lock from a connection of its own (another process
 * writing for long), or gives it back. */
static sqlite3 *lock_store(const char *path)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("cannot lock the store: %s", sqlite3_errmsg(db));
	return db;
}

static void unlock_store(sqlite3 *db)
{
	sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
}

/*
 * A decision queued for a release while another process held it (that
 * process never read it: it hung) is applied by the process that takes the
 * release over, although nothing changes in the store after the takeover.
 */
static void test_take_over_reads_queued_commands(void **state)
{
	struct rt_fixture *fx = *state;
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"Human\", \"name\": \"go\", \"message\": \"Go?\"}]}]}";
	char id[16];
	struct runtime_options opts = { .keep_running = true };
	rt_new(fx, &opts);
	rt_submit(fx, plan, "alice", id);
	restart(fx, &opts);
	lease_elsewhere(fx, id);
	rt_start(fx);
	int64_t cmd;
	json_t *data = json_pack("{sisiss}", "stage", 0, "step", 0, "by", "bob");
	assert_int_equal(
	    store_inbox_add(fx->reader, id, "approve", data, wall_clock_ms(), &cmd, NULL), 0);
	json_decref(data);
	/* The holder hangs past its lease; this process looks at the store
	 * meanwhile (the command is not for it yet), then takes the release. */
	store_sql(fx->path, "UPDATE leases SET expires_ms = 0");
	rt_sleep_ms(1000);
	assert_int_equal(take_over(fx), 1);
	rt_wait_status(fx, id, "SUCCEEDED");
	char *result = NULL;
	assert_int_equal(store_inbox_result(fx->reader, cmd, &result, NULL), 1);
	assert_string_equal(result, "ok");
	free(result);
	assert_int_equal(rt_stop(fx), 1);
}

static int stub_cancels(size_t i)
{
	pthread_mutex_lock(&stub_lock);
	int n = stubs[i].cancels;
	pthread_mutex_unlock(&stub_lock);
	return n;
}

/*
 * The store is cut off while a step runs local code: once the leases have
 * not been renewed for RUNTIME_LEASE_FRESH_MS (before they can lapse and
 * another process take the release over), the runtime stops that work and
 * says so; remote work goes on. When the store answers again, the stopped
 * attempt is recorded as failed, saying why.
 */
static void test_fence_local_work(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"StubLocal\", \"name\": \"l\"}, "
	                   "{\"type\": \"StubRemote\", \"name\": \"r\"}]}]}";
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	store_busy_timeout(fx->st, 100);
	rt_new(fx, &opts);
	rt_submit(fx, plan, "alice", id);
	rt_start(fx);
	size_t l = stub_wait(id, 0, 0, 1), r = stub_wait(id, 0, 1, 1);
	stub_started(fx, l, json_pack("{si}", "pid", 1));
	stub_started(fx, r, json_pack("{si}", "pid", 2));
	rt_wait_events(fx, id, "StepStarted 0.0#1 StepStarted 0.1#1");
	sqlite3 *lock = lock_store(fx->path);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	while (stub_cancels(l) == 0 && rt_now_ms() < deadline)
		rt_sleep_ms(10);
	assert_int_equal(stub_cancels(l), 1);
	assert_int_equal(stub_cancels(r), 0);
	assert_true(rt_reported(fx, "cannot renew the leases for 5 s: stopping the commands of 1 "
	                            "attempt"));
	unlock_store(lock);
	rt_wait_events(fx, id, "StepFailed 0.0#1");
	struct event ev;
	rt_find_event(fx, id, EV_STEP_FAILED, 0, 0, 1, &ev);
	assert_non_null(strstr(json_string_value(json_object_get(ev.data, "error")),
	                       "could not renew its leases for 5 s"));
	json_decref(ev.data);
	assert_int_equal(stub_cancels(r), 0);
	assert_int_equal(rt_stop(fx), 1);
}

/*
 * A server whose store refuses writes while nothing is to be recorded: the
 * lease renewal notices (the store is down), and once it works again after
 * more than the TTL, every lease is checked, parked releases too: the one
 * another process took meanwhile is let go, the other kept.
 */
static void test_lease_gap_checks_all(void **state)
{
	struct rt_fixture *fx = *state;
	const char *plan = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                   "[{\"type\": \"Human\", \"name\": \"go\", \"message\": \"Go?\"}]}]}";
	char kept[16], taken[16];
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	store_busy_timeout(fx->st, 100);
	rt_new(fx, &opts);
	rt_submit(fx, plan, "alice", kept);
	rt_submit(fx, plan, "alice", taken);
	rt_start(fx);
	rt_wait_events(fx, kept, "StepStarted 0.0#1");
	rt_wait_events(fx, taken, "StepStarted 0.0#1");

	sqlite3 *lock = lock_store(fx->path);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	while (runtime_store_ok(fx->rt, NULL, 0) && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_false(runtime_store_ok(fx->rt, NULL, 0));
	/* Past the TTL, another process takes one release over. */
	rt_sleep_ms(RUNTIME_LEASE_TTL_MS + 500);
	char *sql = xstrfmt("UPDATE leases SET expires_ms = 0; UPDATE leases SET owner = "
	                    "'thief:%d', expires_ms = %lld WHERE execution_id = '%s'; COMMIT",
	                    (int)getpid(), (long long)(wall_clock_ms() + 600000), taken);
	if (sqlite3_exec(lock, sql, NULL, NULL, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(lock));
	free(sql);
	sqlite3_close(lock);
	deadline = rt_now_ms() + DEADLINE_MS;
	while (!rt_reported(fx, "run by another steppy process now") && rt_now_ms() < deadline)
		rt_sleep_ms(20);
	assert_true(rt_reported(fx, "run by another steppy process now"));
	while (!runtime_store_ok(fx->rt, NULL, 0) && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_true(runtime_store_ok(fx->rt, NULL, 0));
	struct redrive_job j = { .fx = fx, .id = taken };
	rt_call(fx, status_fn, &j);
	assert_int_equal(j.r, -1);
	j.id = kept;
	rt_call(fx, status_fn, &j);
	assert_int_equal(j.r, (int)EXEC_RUNNING);
	/* Its lease is this runtime's again, live. */
	assert_true(store_lease_held_elsewhere(fx->reader, kept, "", wall_clock_ms()));
	assert_int_equal(rt_stop(fx), 1);
}

static void test_store_down_retry(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	const char *one = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                  "[{\"type\": \"Stub\", \"name\": \"a\"}]}]}";
	/* A server's runtime; a short busy timeout so the first refusal comes soon
	 * (the runtime shortens it itself once the store is down). */
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	store_busy_timeout(fx->st, 100);
	rt_new(fx, &opts);
	rt_submit(fx, one, "alice", id);
	rt_start(fx);
	size_t a = stub_wait(id, 0, 0, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	assert_true(runtime_store_ok(fx->rt, NULL, 0));

	sqlite3 *lock = lock_store(fx->path);
	stub_end(fx, a, true, NULL);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	char why[256] = "";
	while (runtime_store_ok(fx->rt, why, sizeof(why)) && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_false(runtime_store_ok(fx->rt, why, sizeof(why)));
	assert_true(why[0] != '\0');
	assert_true(rt_reported(fx, "cannot record events"));
	/* Nothing is written meanwhile, and new releases are refused. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	struct rt_submit_job j = { .fx = fx, .plan = test_plan(one), .started_by = "alice" };
	strbuf_init(&j.err, SIZE_MAX);
	rt_call(fx, rt_submit_fn, &j);
	assert_int_equal(j.r, SP_ESTORE);
	assert_non_null(strstr(j.err.buf, "does not accept writes"));
	plan_free(j.plan); /* the caller keeps the plan on failure */
	strbuf_release(&j.err);

	/* The store accepts writes again: what was kept goes in, once. */
	unlock_store(lock);
	rt_wait_status(fx, id, "SUCCEEDED");
	deadline = rt_now_ms() + DEADLINE_MS;
	while (!runtime_store_ok(fx->rt, NULL, 0) && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_true(runtime_store_ok(fx->rt, NULL, 0));
	assert_true(rt_reported(fx, "accepts writes again"));
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(rt_stop(fx), 1);
}

/* A commit whose answer was lost (the connection cut during COMMIT; here
 * the store's test hook: committed, reported as SP_EUNKNOWN): the runtime
 * reads the history back, counts the events there as written, carries on
 * and keeps the release; the store is not left "down". */
static void test_commit_outcome_unknown(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	const char *two = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                  "[{\"type\": \"Stub\", \"name\": \"a\"}]}, {\"name\": \"two\", "
	                  "\"steps\": [{\"type\": \"Stub\", \"name\": \"b\"}]}]}";
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	rt_new(fx, &opts);
	rt_submit(fx, two, "alice", id);
	rt_start(fx);
	size_t a = stub_wait(id, 0, 0, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	atomic_store(&store_test_lost_commits, 1);
	stub_end(fx, a, true, NULL);
	/* The events of the lost commit are there once, and the release goes on. */
	size_t b = stub_wait(id, 1, 0, 1);
	stub_started(fx, b, json_pack("{si}", "pid", 2));
	stub_end(fx, b, true, NULL);
	rt_wait_status(fx, id, "SUCCEEDED");
	assert_int_equal(atomic_load(&store_test_lost_commits), 0);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	while (!runtime_store_ok(fx->rt, NULL, 0) && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_true(runtime_store_ok(fx->rt, NULL, 0));
	assert_false(rt_reported(fx, "lets it go"));
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 StageStarted 1 StepScheduled 1.0#1 "
	                 "StepStarted 1.0#1 StepSucceeded 1.0#1 StageFinished 1 ExecutionFinished");
	assert_int_equal(rt_stop(fx), 1);
}

/* On the loop thread, between two commits of the runtime: another process
 * takes the release over (the lease lapsed: its clock is 8 s on) and
 * appends events of its own at seqs 5..8; then the runtime's next commit
 * (stub attempt i ends: StepSucceeded, StageFinished, StageStarted,
 * StepScheduled at 5..8) is cut before it arrives, its outcome unknown. */
struct taken_meanwhile {
	struct rt_fixture *fx;
	const char *id;
	size_t i;
};

static void taken_meanwhile_fn(void *arg)
{
	struct taken_meanwhile *t = arg;
	const char *other = "elsewhere:1:other";
	int64_t later = wall_clock_ms() + RUNTIME_LEASE_TTL_MS + 1000;
	assert_int_equal(
	    store_lease_take(t->fx->reader, t->id, other, later, RUNTIME_LEASE_TTL_MS, NULL), 0);
	struct event_list evs = EVENT_LIST_INIT;
	struct event *ev = event_list_add(&evs, EV_STEP_FAILED, 0, 0, 1,
	                                  json_pack("{ss}", "error", "interrupted"));
	ev = event_list_add(&evs, EV_RETRY_SCHEDULED, 0, 0, 1,
	                    json_pack("{sI}", "dueMs", (json_int_t)later));
	ev = event_list_add(&evs, EV_NOTICE, -1, -1, 0, json_pack("{ss}", "message", "one"));
	ev = event_list_add(&evs, EV_NOTICE, -1, -1, 0, json_pack("{ss}", "message", "two"));
	(void)ev;
	for (size_t k = 0; k < evs.len; k++) {
		evs.items[k].seq = 5 + (int64_t)k;
		evs.items[k].time_ms = later;
	}
	struct store_append_item item = {
		.id = t->id, .events = evs.items, .nevents = evs.len, .status = "RUNNING"
	};
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(store_append(t->fx->reader, other, later, &item, 1, NULL, NULL, 0, &err),
	                 0);
	strbuf_release(&err);
	event_list_release(&evs);
	atomic_store(&store_test_unsent_commits, 1);
	stub_finish(&stubs[t->i], true, NULL);
}

/* A commit whose outcome is unknown, and another process took the release
 * over meanwhile and appended at the same seqs: the runtime reads them
 * back, sees they are not its own, and lets the release go without
 * carrying out what its unwritten events asked (before: it counted them as
 * written and started the next stage's attempt). */
static void test_unknown_commit_taken_over(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	const char *two = "{\"stages\": [{\"name\": \"one\", \"steps\": "
	                  "[{\"type\": \"Stub\", \"name\": \"a\"}]}, {\"name\": \"two\", "
	                  "\"steps\": [{\"type\": \"Stub\", \"name\": \"b\"}]}]}";
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	rt_new(fx, &opts);
	rt_submit(fx, two, "alice", id);
	rt_start(fx);
	size_t a = stub_wait(id, 0, 0, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	struct taken_meanwhile t = { .fx = fx, .id = id, .i = a };
	rt_call(fx, taken_meanwhile_fn, &t);
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	while (!rt_reported(fx, "lets it go") && rt_now_ms() < deadline)
		rt_sleep_ms(5);
	assert_true(rt_reported(fx, "lets it go"));
	assert_int_equal(atomic_load(&store_test_unsent_commits), 0);
	/* Nothing of stage "two" was started here. */
	assert_int_equal(stub_count(), 1);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepFailed 0.0#1 RetryScheduled 0.0#1 Notice Notice");
	assert_int_equal(rt_stop(fx), 1);
	assert_int_equal(stub_count(), 1);
}

/* The answer to the commit that creates a release is lost, but the commit
 * went through: the runtime reads the row back, keeps the release and
 * starts its first step (before: the submit failed, the release stayed in
 * the store with nobody to start or announce it). */
static void test_create_outcome_unknown(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	struct runtime_options opts = { .retry_store = true, .keep_running = true };
	rt_new(fx, &opts);
	rt_start(fx);
	atomic_store(&store_test_lost_commits, 1);
	rt_submit(fx,
	          "{\"stages\": [{\"name\": \"one\", \"steps\": "
	          "[{\"type\": \"Stub\", \"name\": \"a\"}]}]}",
	          "alice", id);
	assert_int_equal(atomic_load(&store_test_lost_commits), 0);
	size_t a = stub_wait(id, 0, 0, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	stub_end(fx, a, true, NULL);
	rt_wait_status(fx, id, "SUCCEEDED");
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(rt_stop(fx), 1);
}

static void test_store_down_stops(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	/* steppy run: a refused commit stops the runtime (exit status 2). */
	store_busy_timeout(fx->st, 100);
	rt_begin(fx,
	         "{\"stages\": [{\"name\": \"one\", \"steps\": "
	         "[{\"type\": \"Stub\", \"name\": \"a\"}]}]}",
	         id);
	size_t a = stub_wait(id, 0, 0, 1);
	stub_started(fx, a, json_pack("{si}", "pid", 1));
	rt_wait_events(fx, id, "StepStarted 0.0#1");
	sqlite3 *lock = lock_store(fx->path);
	stub_end(fx, a, true, NULL);
	assert_int_equal(rt_join(fx), 2);
	unlock_store(lock);
	assert_true(rt_reported(fx, "cannot record events, stopping"));
	/* The history ends before what could not be recorded. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
}

int main(void)
{
	if (step_type_register(&stub_type) < 0 || step_type_register(&stub_remote_type) < 0 ||
	    step_type_register(&stub_local_type) < 0) {
		fprintf(stderr, "cannot register the stub step types\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stages_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_halts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fail_fast_cancels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_through_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_resumes_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_while_cancelling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reattach_before_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_code_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_progress_is_a_notice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_as_and_adopt_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_during_retry_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_human_expiry_and_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_from_terminal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_builtin_notify_to_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_started, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redrive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_expired_taken_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_behind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_over_share, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_over_reads_queued_commands, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_lease_gap_checks_all, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_down_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_outcome_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_outcome_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_commit_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_local_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_down_stops, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
