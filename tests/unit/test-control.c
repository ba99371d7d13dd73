/*
 * test-control.c - changing a release from outside (src/runtime/control.c):
 * approve, reject, abort and retry reach a live owner through the store's
 * inbox and come back with its answer; with no live owner they apply
 * directly (recorded for the next process); and the lease decides which:
 * an owner that does not answer keeps the command queued, a dead owner's
 * lease is taken over, and a command the owner let go of unread is
 * withdrawn and applied here.
 *
 * The owner is a real runtime on its own thread (runtime-harness.h); the
 * test's side is control_apply() on a connection of its own, as `steppy
 * approve` in another terminal. Human and Wait steps need no runner.
 */
#include "runtime-harness.h"

#include "runtime/control.h"
#include "util/timefmt.h"

#include <signal.h>
#include <sys/wait.h>

static const char *const human_plan =
    "{\"stages\": [{\"name\": \"sign-off\", \"steps\": [{\"type\": \"Human\", \"name\": "
    "\"go\", \"message\": \"Go?\", \"allowSelfApproval\": false}]},"
    "{\"name\": \"after\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 0}]}]}";

static const struct runtime_options plain = { 0 };

static int setup(void **state)
{
	struct rt_fixture *fx = xcalloc(1, sizeof(*fx));
	rt_setup(fx, "control");
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct rt_fixture *fx = *state;
	rt_teardown(fx);
	free(fx);
	return 0;
}

/* control_apply() on the test's connection; sets *err_out to its message
 * (caller frees) when not NULL. */
static int control(struct rt_fixture *fx, const char *id, const char *kind, json_t *data,
                   int64_t wait_ms, char **err_out)
{
	struct strbuf err = STRBUF_INIT;
	int r = control_apply(fx->reader, id, kind, data, wait_ms, &err);
	if (err_out)
		*err_out = strbuf_detach(&err, NULL);
	strbuf_release(&err);
	return r;
}

static json_t *decision(const char *by)
{
	return json_pack("{sisissssss}", "stage", 0, "step", 0, "by", by, "comment", "looks good",
	                 "via", "cli");
}

/* A release of human_plan started by alice, left by a runtime that never
 * ran it (no live owner: its lease is given back). */
static void orphan(struct rt_fixture *fx, char id[16])
{
	rt_new(fx, &plain);
	rt_submit(fx, human_plan, "alice", id);
	rt_free(fx);
}

/* A new runtime (the next process) adopts everything and runs to the end. */
static int resume(struct rt_fixture *fx)
{
	store_close(fx->st);
	assert_int_equal(store_open(fx->path, &fx->st, NULL), 0);
	rt_new(fx, &plain);
	size_t n = 0;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(runtime_adopt_all(fx->rt, &n, &err), 0);
	strbuf_release(&err);
	assert_int_equal(n, 1);
	rt_start(fx);
	return rt_join(fx);
}

/* ---- a live owner: the inbox --------------------------------------------------- */

/* Starts a release of human_plan, has bob decide (kind) through the
 * running owner's inbox and waits until the release has ended; its id in id. */
static void decide_by_owner(struct rt_fixture *fx, const char *kind, char id[16])
{
	rt_new(fx, &plain);
	rt_submit(fx, human_plan, "alice", id);
	rt_start(fx);
	assert_int_equal(control(fx, id, kind, decision("bob"), DEADLINE_MS, NULL),
	                 CONTROL_DONE_BY_OWNER);
	assert_int_equal(rt_join(fx), 0);
}

static void test_approve_through_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	decide_by_owner(fx, "approve", id);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1 StageFinished 0 StageStarted 1 StepScheduled 1.0#1 "
	                 "StepStarted 1.0#1 TimerFired 1.0#1 StepSucceeded 1.0#1 StageFinished 1 "
	                 "ExecutionFinished");
	rt_expect_status(fx, id, "SUCCEEDED");
	struct event ev;
	rt_find_event(fx, id, EV_HUMAN_DECISION, 0, 0, 1, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "by")), "bob");
	assert_string_equal(json_string_value(json_object_get(ev.data, "comment")), "looks good");
	assert_string_equal(json_string_value(json_object_get(ev.data, "via")), "cli");
	json_decref(ev.data);
}

static void test_reject_through_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	decide_by_owner(fx, "reject", id);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1 StageFinished 0 ExecutionFinished");
	rt_expect_status(fx, id, "REJECTED");
}

static void test_owner_refuses(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	char *err;
	rt_new(fx, &plain);
	rt_submit(fx, human_plan, "alice", id);
	rt_start(fx);
	/* The starter may not approve (allowSelfApproval: false): the owner's engine
	 * refuses, and its reason comes back. */
	assert_int_equal(control(fx, id, "approve", decision("alice"), DEADLINE_MS, &err),
	                 SP_EINVAL);
	assert_non_null(strstr(err, "alice"));
	free(err);
	/* A step that does not wait for a decision. */
	assert_int_equal(control(fx, id, "approve",
	                         json_pack("{sisiss}", "stage", 1, "step", 0, "by", "bob"),
	                         DEADLINE_MS, &err),
	                 SP_EINVAL);
	assert_true(err[0] != '\0');
	free(err);
	/* A decision that names no step. */
	assert_int_equal(
	    control(fx, id, "approve", json_pack("{ss}", "by", "bob"), DEADLINE_MS, &err),
	    SP_EINVAL);
	assert_non_null(strstr(err, "names no step"));
	free(err);
	/* A retry of a release that runs. */
	assert_int_equal(
	    control(fx, id, "retry", json_pack("{ss}", "by", "bob"), DEADLINE_MS, &err), SP_EINVAL);
	assert_true(err[0] != '\0');
	free(err);
	/* Nothing of it reached the history; the release still waits. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	/* The starter may still reject. */
	assert_int_equal(control(fx, id, "reject", decision("alice"), DEADLINE_MS, NULL),
	                 CONTROL_DONE_BY_OWNER);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_status(fx, id, "REJECTED");
}

static void test_abort_through_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	rt_new(fx, &plain);
	rt_submit(fx, human_plan, "alice", id);
	rt_start(fx);
	assert_int_equal(
	    control(fx, id, "abort", json_pack("{ss}", "by", "bob"), DEADLINE_MS, NULL),
	    CONTROL_DONE_BY_OWNER);
	assert_int_equal(rt_join(fx), 0);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "AbortRequested StepCancelled 0.0#1 StageFinished 0 ExecutionFinished");
	rt_expect_status(fx, id, "ABORTED");
	/* An ended release refuses a second abort. */
	char *err;
	assert_int_equal(
	    control(fx, id, "abort", json_pack("{ss}", "by", "bob"), DEADLINE_MS, &err), SP_EINVAL);
	free(err);
}

/* ---- no live owner: applied here ---------------------------------------------------- */

static void test_approve_without_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	orphan(fx, id);
	assert_int_equal(control(fx, id, "approve", decision("bob"), 1000, NULL),
	                 CONTROL_DONE_HERE);
	/* Recorded only: the next process to run the release moves it on. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1");
	rt_expect_status(fx, id, "RUNNING");
	/* The decision is checked here as it would be by an owner. */
	char *err;
	assert_int_equal(control(fx, id, "reject", json_pack("{ss}", "by", "carol"), 1000, &err),
	                 SP_EINVAL);
	assert_non_null(strstr(err, "names no step"));
	free(err);
	assert_int_equal(control(fx, id, "reject", decision("carol"), 1000, &err), SP_EINVAL);
	free(err);
	assert_int_equal(resume(fx), 0);
	rt_expect_status(fx, id, "SUCCEEDED");
	rt_wait_events(fx, id, "HumanDecision 0.0#1 StageFinished 0 StageStarted 1");
}

static void test_abort_without_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	orphan(fx, id);
	assert_int_equal(control(fx, id, "abort", json_pack("{ss}", "by", "bob"), 1000, NULL),
	                 CONTROL_DONE_HERE);
	/* Nobody runs it: stopped then and there. */
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "AbortRequested StepCancelled 0.0#1 StageFinished 0 ExecutionFinished");
	rt_expect_status(fx, id, "ABORTED");
}

static void test_retry_without_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	char *err;
	orphan(fx, id);
	assert_int_equal(control(fx, id, "retry", json_pack("{ss}", "by", "bob"), 1000, &err),
	                 SP_EINVAL);
	assert_non_null(strstr(err, "steppy retry"));
	free(err);
	assert_int_equal(control(fx, id, "promote", json_pack("{ss}", "by", "bob"), 1000, &err),
	                 SP_EINVAL);
	assert_non_null(strstr(err, "unknown command"));
	free(err);
	assert_int_equal(control(fx, "nosuchid00", "abort", json_object(), 1000, NULL), SP_ENOENT);
	/* None of it left a lease behind: the next process takes the release. */
	assert_int_equal(control(fx, id, "approve", decision("bob"), 1000, NULL),
	                 CONTROL_DONE_HERE);
	assert_int_equal(resume(fx), 0);
	rt_expect_status(fx, id, "SUCCEEDED");
}

/* ---- leases ---------------------------------------------------------------------------- */

static void owner_name(char *out, size_t size, int pid)
{
	char host[64] = "localhost";
	gethostname(host, sizeof(host) - 1);
	snprintf(out, size, "%s:%d:fakeowner", host, pid);
}

static void test_silent_owner_keeps_command_queued(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16], owner[128];
	char *err;
	orphan(fx, id);
	/* A live process (this one) holds the lease and never reads its inbox. */
	owner_name(owner, sizeof(owner), (int)getpid());
	assert_int_equal(store_lease_take(fx->reader, id, owner, wall_clock_ms(), 60000, NULL), 0);
	assert_int_equal(control(fx, id, "approve", decision("bob"), 300, &err), SP_EBUSY);
	assert_non_null(strstr(err, "stays queued"));
	free(err);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1");
	/* Whoever runs the release next answers the queued command. */
	assert_int_equal(store_lease_release(fx->reader, id, owner, NULL), 0);
	assert_int_equal(resume(fx), 0);
	rt_expect_status(fx, id, "SUCCEEDED");
	struct event ev;
	rt_find_event(fx, id, EV_HUMAN_DECISION, 0, 0, 1, &ev);
	assert_string_equal(json_string_value(json_object_get(ev.data, "by")), "bob");
	json_decref(ev.data);
}

static void test_dead_owner(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16];
	orphan(fx, id);
	/* A process of this host takes the lease (unexpired) and exits. */
	pid_t pid = fork();
	if (pid == 0) {
		char owner[128];
		struct store *st;
		owner_name(owner, sizeof(owner), (int)getpid());
		int r = store_open(fx->path, &st, NULL);
		if (r == 0)
			r = store_lease_take(st, id, owner, wall_clock_ms(), 60000, NULL);
		store_close(st);
		/* exec, not exit: under valgrind an exit would check the child's
		 * copy of the test's memory for leaks */
		execl(r == 0 ? "/bin/true" : "/bin/false", "exit", (char *)NULL);
		_exit(1);
	}
	assert_true(pid > 0);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Unexpired, but its process is gone: nobody holds it. */
	assert_false(store_lease_held_elsewhere(fx->reader, id, "", wall_clock_ms()));
	assert_int_equal(
	    control(fx, id, "abort", json_pack("{ss}", "by", "bob"), DEADLINE_MS, NULL),
	    CONTROL_DONE_HERE);
	rt_expect_status(fx, id, "ABORTED");
}

/* control_apply() on a thread of its own, while the test plays the owner. */
struct control_thread {
	struct rt_fixture *fx;
	const char *id;
	int r;
	pthread_t thread;
};

static void *control_main(void *arg)
{
	struct control_thread *c = arg;
	struct store *st;
	if (store_open(c->fx->path, &st, NULL) < 0) {
		c->r = -1000;
		return NULL;
	}
	struct strbuf err = STRBUF_INIT;
	c->r = control_apply(st, c->id, "approve", decision("bob"), DEADLINE_MS, &err);
	strbuf_release(&err);
	store_close(st);
	return NULL;
}

static void test_owner_lets_go_unread(void **state)
{
	struct rt_fixture *fx = *state;
	char id[16], owner[128];
	orphan(fx, id);
	owner_name(owner, sizeof(owner), (int)getpid());
	assert_int_equal(store_lease_take(fx->reader, id, owner, wall_clock_ms(), 60000, NULL), 0);
	struct control_thread c = { .fx = fx, .id = id };
	assert_int_equal(pthread_create(&c.thread, NULL, control_main, &c), 0);
	/* The command is queued for the owner ... */
	struct inbox_cmd *cmds = NULL;
	size_t n = 0;
	int64_t deadline = rt_now_ms() + DEADLINE_MS;
	while (n == 0 && rt_now_ms() < deadline) {
		rt_sleep_ms(5);
		assert_int_equal(store_inbox_pending(fx->reader, owner, &cmds, &n, NULL), 0);
		if (n == 0)
			free(cmds);
	}
	assert_int_equal(n, 1);
	assert_string_equal(cmds[0].kind, "approve");
	assert_string_equal(cmds[0].execution_id, id);
	inbox_cmd_release(&cmds[0]);
	free(cmds);
	/* ... which lets the release go without reading it: withdrawn, applied there. */
	assert_int_equal(store_lease_release(fx->reader, id, owner, NULL), 0);
	pthread_join(c.thread, NULL);
	assert_int_equal(c.r, CONTROL_DONE_HERE);
	rt_expect_events(fx, id,
	                 "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                 "HumanDecision 0.0#1");
	/* Applied once: the next owner finds no command left to answer. */
	assert_int_equal(resume(fx), 0);
	rt_expect_status(fx, id, "SUCCEEDED");
	char *h = rt_events(fx, id);
	assert_null(strstr(strstr(h, "HumanDecision") + 1, "HumanDecision"));
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_approve_through_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reject_through_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_through_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_approve_without_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_without_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_without_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_owner_keeps_command_queued, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_dead_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_lets_go_unread, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
