/*
 * test-engine.c - the engine's state machine: every transition by scenario,
 * malformed histories, and a randomized simulation that checks the
 * invariants over thousands of runs.
 */
#include "unit.h"

#include "plan-fixture.h"

#include "core/engine.h"
#include "core/people.h"
#include "plan/validate.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1800000000000LL /* a fixed "now" */

struct fixture {
	struct plan *plan;
	struct exec_state ex;
	struct event_list history; /* everything emitted, in order */
	struct event_list out;     /* the last input's events */
	int64_t now;
};

/* Copies the input's new events into the history. */
static void keep(struct fixture *f)
{
	for (size_t i = 0; i < f->out.len; i++) {
		struct event *e = &f->out.items[i];
		if (e->seq <= (int64_t)f->history.len)
			continue; /* kept already */
		struct event *h = event_list_add(&f->history, e->type, e->stage, e->step,
		                                 e->attempt, json_incref(e->data));
		h->seq = e->seq;
		h->time_ms = e->time_ms;
	}
}

/* Starts a release of text as started_by ("startedBy" left out when NULL). */
static void start_as(struct fixture *f, const char *text, bool fail_fast, const char *started_by)
{
	memset(f, 0, sizeof(*f));
	f->plan = test_plan(text);
	f->now = T0;
	exec_state_init(&f->ex, "x1", f->plan);
	json_t *data = json_pack("{sb}", "failFast", fail_fast);
	if (started_by)
		json_object_set_new(data, "startedBy", json_string(started_by));
	struct event *e = event_list_add(&f->out, EV_EXECUTION_STARTED, -1, -1, 0, data);
	e->seq = 1;
	e->time_ms = f->now;
	assert_int_equal(engine_apply(&f->ex, e), 0);
	engine_advance(&f->ex, f->now, &f->out);
	keep(f);
}

static void start(struct fixture *f, const char *text, bool fail_fast)
{
	start_as(f, text, fail_fast, NULL);
}

static void assert_step_equal(const struct step_state *a, const struct step_state *b)
{
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->attempt, b->attempt);
	assert_int_equal(a->run_attempts, b->run_attempts);
	assert_int_equal(a->started_ms, b->started_ms);
	assert_int_equal(a->ended_ms, b->ended_ms);
	assert_int_equal(a->due_ms, b->due_ms);
	assert_int_equal(a->timeout_ms, b->timeout_ms);
	assert_int_equal(a->napproved, b->napproved);
	for (int i = 0; i < a->napproved; i++)
		assert_string_equal(a->approved_by[i], b->approved_by[i]);
}

static void stop(struct fixture *f)
{
	/* Folding the whole history into a fresh state must give the same state. */
	struct exec_state replay;
	exec_state_init(&replay, "x1", f->plan);
	for (size_t i = 0; i < f->history.len; i++)
		if (engine_apply(&replay, &f->history.items[i]) != 0)
			fail_msg("history event %zu (%s) does not replay", i,
			         event_type_name(f->history.items[i].type));
	assert_int_equal(replay.status, f->ex.status);
	assert_int_equal(replay.seq, f->ex.seq);
	assert_int_equal(replay.stage, f->ex.stage);
	assert_string_equal(replay.started_by, f->ex.started_by);
	assert_int_equal(replay.abort_ms, f->ex.abort_ms);
	for (size_t s = 0; s < f->plan->nstages; s++)
		for (size_t j = 0; j < f->plan->stages[s].nsteps; j++)
			assert_step_equal(&replay.steps[s][j], &f->ex.steps[s][j]);
	exec_state_release(&replay);
	exec_state_release(&f->ex);
	event_list_release(&f->history);
	event_list_release(&f->out);
	plan_free(f->plan);
}

/* Renders the last input's events as "Type s.j#a" words for comparison. */
static void expect_events(struct fixture *f, const char *expected)
{
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < f->out.len; i++) {
		const struct event *e = &f->out.items[i];
		if (i)
			strbuf_addch(&sb, ' ');
		strbuf_addstr(&sb, event_type_name(e->type));
		if (e->step >= 0)
			strbuf_addf(&sb, " %d.%d#%d", e->stage, e->step, e->attempt);
		else if (e->stage >= 0)
			strbuf_addf(&sb, " %d", e->stage);
	}
	if (strcmp(sb.buf, expected) != 0)
		fail_msg("events differ\n expected: %s\n   actual: %s", expected, sb.buf);
	strbuf_release(&sb);
	event_list_clear(&f->out);
}

static void at(struct fixture *f, int64_t ms_after_start)
{
	f->now = T0 + ms_after_start;
	engine_advance(&f->ex, f->now, &f->out);
	keep(f);
}

static void started(struct fixture *f, int stage, int step, int attempt)
{
	const char *reason = NULL;
	assert_int_equal(engine_on_started(&f->ex, stage, step, attempt,
	                                   json_pack("{si}", "pid", 42), f->now, &f->out, &reason),
	                 0);
	keep(f);
}

static void ended(struct fixture *f, int stage, int step, int attempt, bool ok)
{
	const char *reason = NULL;
	int r = engine_on_ended(&f->ex, stage, step, attempt, ok, NULL, f->now, &f->out, &reason);
	if (r != 0)
		fail_msg("on_ended: %s", reason);
	engine_advance(&f->ex, f->now, &f->out);
	keep(f);
}

static const char *const_exec2 =
    "{\"stages\": [{\"name\": \"a\", \"steps\": ["
    "{\"type\": \"Exec\", \"name\": \"x\", \"command\": [\"true\"]},"
    "{\"type\": \"Exec\", \"name\": \"y\", \"command\": [\"true\"]}]},"
    "{\"name\": \"b\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 5}]}]}";

static void test_stages_in_order_steps_together(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, const_exec2, false);
	expect_events(&f,
	              "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepScheduled 0.1#1");
	started(&f, 0, 0, 1);
	started(&f, 0, 1, 1);
	expect_events(&f, "StepStarted 0.0#1 StepStarted 0.1#1");
	ended(&f, 0, 1, 1, true);
	expect_events(&f, "StepSucceeded 0.1#1"); /* the stage waits for x */
	ended(&f, 0, 0, 1, true);
	expect_events(&f, "StepSucceeded 0.0#1 StageFinished 0 StageStarted 1 StepScheduled 1.0#1 "
	                  "StepStarted 1.0#1");
	assert_int_equal(engine_next_due(&f.ex), T0 + 5000);
	at(&f, 4999);
	expect_events(&f, "");
	at(&f, 5000);
	expect_events(&f, "TimerFired 1.0#1 StepSucceeded 1.0#1 StageFinished 1 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_SUCCEEDED);
	assert_int_equal(engine_next_due(&f.ex), INT64_MAX);
	stop(&f);
}

static void test_failure_stops_before_next_stage(void **state)
{
	(void)state;
	struct fixture f;
	start(&f, const_exec2, false);
	event_list_clear(&f.out);
	started(&f, 0, 0, 1);
	started(&f, 0, 1, 1);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 1, false);
	expect_events(&f, "StepFailed 0.0#1"); /* y still runs: no fail fast */
	ended(&f, 0, 1, 1, true);
	expect_events(&f, "StepSucceeded 0.1#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_FAILED);
	assert_int_equal(f.ex.steps[1][0].status, STEP_PENDING);
	stop(&f);
}

static void test_fail_fast_cancels_the_rest(void **state)
{
	(void)state;
	struct fixture f;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"failFast\": true, \"steps\": ["
	      "{\"type\": \"Exec\", \"name\": \"x\", \"command\": [\"true\"]},"
	      "{\"type\": \"Exec\", \"name\": \"y\", \"command\": [\"true\"]},"
	      "{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 60}]}]}",
	      false);
	event_list_clear(&f.out);
	started(&f, 0, 0, 1);
	started(&f, 0, 1, 1);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 1, false);
	expect_events(&f, "StepFailed 0.0#1 StepCancelRequested 0.1#1 StepCancelled 0.2#1");
	ended(&f, 0, 1, 1, true); /* ends while being cancelled: counts as cancelled */
	expect_events(&f, "StepCancelled 0.1#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_FAILED);
	stop(&f);

	/* --fail-fast turns it on for every stage. */
	start(&f, const_exec2, true);
	event_list_clear(&f.out);
	started(&f, 0, 0, 1);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 1, false);
	expect_events(&f, "StepFailed 0.0#1 StepCancelRequested 0.1#1");
	stop(&f);
}

static void test_retry_with_backoff(void **state)
{
	(void)state;
	struct fixture f;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Exec\", \"name\": \"x\", "
	      "\"command\": [\"true\"], \"retry\": {\"maxAttempts\": 3, \"intervalSeconds\": 2, "
	      "\"backoffRate\": 3}}]}]}",
	      false);
	event_list_clear(&f.out);
	started(&f, 0, 0, 1);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 1, false);
	expect_events(&f, "StepFailed 0.0#1 RetryScheduled 0.0#1");
	assert_int_equal(f.ex.steps[0][0].status, STEP_RETRY_WAIT);
	assert_int_equal(engine_next_due(&f.ex), T0 + 2000);
	at(&f, 1999);
	expect_events(&f, "");
	at(&f, 2000);
	expect_events(&f, "TimerFired 0.0#1 StepScheduled 0.0#2");
	started(&f, 0, 0, 2);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 2, false);
	expect_events(&f, "StepFailed 0.0#2 RetryScheduled 0.0#2");
	assert_int_equal(engine_next_due(&f.ex), T0 + 2000 + 6000); /* 2 s x 3 */
	at(&f, 8000);
	expect_events(&f, "TimerFired 0.0#2 StepScheduled 0.0#3");
	started(&f, 0, 0, 3);
	event_list_clear(&f.out);
	ended(&f, 0, 0, 3, false);
	expect_events(&f, "StepFailed 0.0#3 StageFinished 0 ExecutionFinished"); /* exhausted */
	assert_int_equal(f.ex.status, EXEC_FAILED);
	stop(&f);
}

static void test_timeout_cancels_attempt_and_ignores_late_end(void **state)
{
	(void)state;
	struct fixture f;
	start(
	    &f,
	    "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Exec\", \"name\": \"x\", "
	    "\"command\": [\"sleep\", \"9\"], \"timeoutSeconds\": 5, \"retry\": {\"maxAttempts\": "
	    "2, \"intervalSeconds\": 0}}]}]}",
	    false);
	event_list_clear(&f.out);
	started(&f, 0, 0, 1);
	event_list_clear(&f.out);
	assert_int_equal(engine_next_due(&f.ex), T0 + 5000);
	at(&f, 5000);
	expect_events(&f, "TimerFired 0.0#1 StepTimedOut 0.0#1 RetryScheduled 0.0#1 TimerFired "
	                  "0.0#1 StepScheduled 0.0#2");
	const char *reason = NULL;
	assert_int_equal(engine_on_ended(&f.ex, 0, 0, 1, true, NULL, f.now, &f.out, &reason),
	                 SP_EINVAL);
	assert_string_equal(reason, "that attempt is no longer the current one");
	assert_int_equal(f.out.len, 0);
	stop(&f);
}

static const char *const_human =
    "{\"stages\": [{\"name\": \"a\", \"steps\": ["
    "{\"type\": \"Human\", \"name\": \"ok?\", \"message\": \"go?\", \"timeoutSeconds\": 60},"
    "{\"type\": \"Exec\", \"name\": \"x\", \"command\": [\"true\"]}]},"
    "{\"name\": \"b\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": "
    "\"done\"}]}]}";

static void test_human_approve_reject_expire(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	start(&f, const_human, false);
	expect_events(&f, "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                  "StepScheduled 0.1#1");
	/* Deciding a step that is not Human, or not waiting, is refused. */
	assert_int_equal(engine_on_decision(&f.ex, 0, 1, true, NULL, f.now, &f.out, &reason),
	                 SP_EINVAL);
	assert_string_equal(reason, "the step is not a Human step");
	assert_int_equal(engine_on_decision(&f.ex, 1, 0, true, NULL, f.now, &f.out, &reason),
	                 SP_EINVAL);
	assert_int_equal(engine_on_decision(&f.ex, 0, 0, true, json_pack("{ss}", "by", "alice"),
	                                    f.now, &f.out, &reason),
	                 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	expect_events(&f, "HumanDecision 0.0#1");
	assert_int_equal(engine_on_decision(&f.ex, 0, 0, false, NULL, f.now, &f.out, &reason),
	                 SP_EINVAL);
	assert_string_equal(reason, "the step is not waiting for a decision");
	started(&f, 0, 1, 1);
	ended(&f, 0, 1, 1, true);
	expect_events(&f, "StepStarted 0.1#1 StepSucceeded 0.1#1 StageFinished 0 StageStarted 1 "
	                  "StepScheduled 1.0#1");
	stop(&f);

	start(&f, const_human, false);
	event_list_clear(&f.out);
	assert_int_equal(engine_on_decision(&f.ex, 0, 0, false, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	started(&f, 0, 1, 1);
	ended(&f, 0, 1, 1, true);
	expect_events(&f, "HumanDecision 0.0#1 StepStarted 0.1#1 StepSucceeded 0.1#1 StageFinished "
	                  "0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_REJECTED);
	assert_int_equal(f.ex.steps[0][0].status, STEP_REJECTED);
	assert_int_equal(engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), SP_EINVAL);
	assert_string_equal(reason, "the release was rejected; start a new one");
	stop(&f);

	start(&f, const_human, false);
	event_list_clear(&f.out);
	assert_int_equal(engine_next_due(&f.ex), T0 + 60000);
	at(&f, 60000);
	expect_events(&f, "TimerFired 0.0#1 StepTimedOut 0.0#1");
	assert_int_equal(f.ex.steps[0][0].status, STEP_TIMED_OUT);
	stop(&f);
}

static void test_human_without_timeout_waits_at_most_a_year(void **state)
{
	(void)state;
	struct fixture f;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", "
	      "\"message\": \"m\"}]}]}",
	      false);
	assert_int_equal(engine_next_due(&f.ex), T0 + 365LL * 86400 * 1000);
	stop(&f);
}

/* A decision on step 0.0 by by (no "by" when NULL); moves the release on when taken. */
static int decide(struct fixture *f, bool approve, const char *by, const char **reason)
{
	json_t *who = by ? json_pack("{ss ss}", "by", by, "via", "test") : NULL;
	int r = engine_on_decision(&f->ex, 0, 0, approve, who, f->now, &f->out, reason);
	if (r == 0)
		engine_advance(&f->ex, f->now, &f->out);
	keep(f);
	return r;
}

/* As decide(), with "approverRole": role (1 true, 0 false, -1 absent). */
static int decide_as(struct fixture *f, bool approve, const char *by, int role, const char **reason)
{
	json_t *who = json_pack("{ss}", "via", "test");
	if (by)
		json_object_set_new(who, "by", json_string(by));
	if (role >= 0)
		json_object_set_new(who, "approverRole", json_boolean(role));
	int r = engine_on_decision(&f->ex, 0, 0, approve, who, f->now, &f->out, reason);
	if (r == 0)
		engine_advance(&f->ex, f->now, &f->out);
	keep(f);
	return r;
}

/* A Human step named "go" with fields (JSON members, may be empty), then an Exec stage. */
static char *human_plan(const char *fields)
{
	return xstrfmt("{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Human\", "
	               "\"name\": \"go\", \"message\": \"go?\", \"timeoutSeconds\": 60%s%s}]},"
	               "{\"name\": \"b\", \"steps\": [{\"type\": \"Exec\", \"name\": \"x\", "
	               "\"command\": [\"true\"]}]}]}",
	               *fields ? ", " : "", fields);
}

static void test_human_two_of_three(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	char *text =
	    human_plan("\"approvers\": [\"alice\", \"bob\", \"carol\"], \"minApprovals\": 2");
	start_as(&f, text, false, "dave@ci");
	event_list_clear(&f.out);
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	expect_events(&f, "HumanDecision 0.0#1"); /* recorded; the step still waits */
	assert_int_equal(f.ex.steps[0][0].status, STEP_RUNNING);
	assert_int_equal(f.ex.steps[0][0].napproved, 1);
	assert_string_equal(f.ex.steps[0][0].approved_by[0], "alice");
	assert_int_equal(engine_next_due(&f.ex), T0 + 60000); /* the expiry still holds */

	/* The same person again, under another name of theirs: refused, nothing appended. */
	assert_int_equal(decide(&f, true, "alice@laptop", &reason), SP_EINVAL);
	assert_string_equal(reason, "alice@laptop has already approved \"go\" (1 of 2 approvals "
	                            "so far; each must come from a different person)");
	assert_int_equal(decide(&f, true, NULL, &reason), SP_EINVAL);
	assert_string_equal(reason, "only the approvers of \"go\" (alice, bob, carol) may decide "
	                            "it: say who you are (sign in)");
	assert_int_equal(f.out.len, 0);
	assert_int_equal(f.ex.steps[0][0].napproved, 1);

	assert_int_equal(decide(&f, true, "bob@desk", &reason), 0);
	expect_events(&f, "HumanDecision 0.0#1 StageFinished 0 StageStarted 1 StepScheduled 1.0#1");
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	assert_int_equal(f.ex.steps[0][0].ended_ms, T0);
	assert_int_equal(f.ex.steps[0][0].napproved, 2);
	assert_string_equal(f.ex.steps[0][0].approved_by[1], "bob@desk");
	assert_int_equal(decide(&f, true, "carol", &reason), SP_EINVAL);
	assert_string_equal(reason, "the step's stage is not running");
	stop(&f);
	free(text);
}

static void test_human_reject_after_an_approval(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	char *text = human_plan("\"minApprovals\": 3");
	start_as(&f, text, false, "dave@ci");
	event_list_clear(&f.out);
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	assert_int_equal(decide(&f, true, "dave", &reason), 0); /* no approvers: self allowed */
	expect_events(&f, "HumanDecision 0.0#1 HumanDecision 0.0#1");
	/* One rejection is enough, even from someone who approved. */
	assert_int_equal(decide(&f, false, "alice", &reason), 0);
	expect_events(&f, "HumanDecision 0.0#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.steps[0][0].status, STEP_REJECTED);
	assert_int_equal(f.ex.status, EXEC_REJECTED);
	stop(&f);
	free(text);
}

static void test_human_self_approval(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	/* With approvers, whoever started the release may not approve by default ... */
	char *text = human_plan("\"approvers\": [\"alice\", \"bob\"]");
	start_as(&f, text, false, "alice@ci");
	event_list_clear(&f.out);
	assert_int_equal(decide(&f, true, "alice", &reason), SP_EINVAL);
	assert_string_equal(reason, "whoever started the release (alice@ci) cannot approve it: "
	                            "allowSelfApproval is false");
	assert_int_equal(decide(&f, true, NULL, &reason), SP_EINVAL); /* nameless: cannot tell */
	assert_int_equal(f.out.len, 0);
	/* ... but may reject. */
	assert_int_equal(decide(&f, false, "alice@ci", &reason), 0);
	assert_int_equal(f.ex.status, EXEC_REJECTED);
	stop(&f);
	free(text);

	/* Others may approve. */
	text = human_plan("\"approvers\": [\"alice\", \"bob\"]");
	start_as(&f, text, false, "alice@ci");
	assert_int_equal(decide(&f, true, "bob", &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	stop(&f);
	free(text);

	/* allowSelfApproval: true lifts the rule. */
	text = human_plan("\"approvers\": [\"alice\", \"bob\"], \"allowSelfApproval\": true");
	start_as(&f, text, false, "alice@ci");
	assert_int_equal(decide(&f, true, "alice@ci", &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	stop(&f);
	free(text);

	/* Without approvers self approval is allowed, unless the step says otherwise. */
	text = human_plan("");
	start_as(&f, text, false, "alice@ci");
	assert_int_equal(decide(&f, true, "alice@ci", &reason), 0);
	stop(&f);
	free(text);
	text = human_plan("\"allowSelfApproval\": false");
	start_as(&f, text, false, "alice@ci");
	assert_int_equal(decide(&f, true, "alice@elsewhere", &reason), SP_EINVAL);
	assert_int_equal(decide(&f, true, "bob", &reason), 0);
	stop(&f);
	free(text);

	/* A history without startedBy (older releases): nobody to compare with. */
	text = human_plan("\"approvers\": [\"alice\", \"bob\"]");
	start(&f, text, false);
	assert_string_equal(f.ex.started_by, "");
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	stop(&f);
	free(text);
}

/*
 * Who may decide is one rule in the engine (engine_may_decide()), whichever
 * front end carries the decision: an anonymous approval (a link without
 * signing in) never counts toward minApprovals > 1 nor passes
 * allowSelfApproval: false; a decider without the approver role never
 * decides; a step with approvers is decided by them only.
 */
static void test_human_who_may_decide(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;

	/* minApprovals 2 without approvers: a named approval, then an anonymous one. */
	char *text = human_plan("\"minApprovals\": 2");
	start_as(&f, text, false, "dave");
	event_list_clear(&f.out);
	assert_int_equal(decide_as(&f, true, "alice", 1, &reason), 0);
	assert_int_equal(decide_as(&f, true, NULL, -1, &reason), SP_EINVAL);
	assert_string_equal(reason, "\"go\" needs 2 approvals from different people: an approval "
	                            "must say who gives it (sign in)");
	assert_int_equal(decide_as(&f, true, "", 1, &reason), SP_EINVAL); /* "" is nobody too */
	expect_events(&f, "HumanDecision 0.0#1");
	assert_int_equal(f.ex.steps[0][0].status, STEP_RUNNING);
	/* Rejecting needs no name: anyone with the link may stop the release. */
	assert_int_equal(decide_as(&f, false, NULL, -1, &reason), 0);
	assert_int_equal(f.ex.status, EXEC_REJECTED);
	stop(&f);
	free(text);

	/* allowSelfApproval false: anonymous cannot be told apart from the starter, */
	text = human_plan("\"allowSelfApproval\": false");
	start_as(&f, text, false, "dave");
	assert_int_equal(decide_as(&f, true, NULL, -1, &reason), SP_EINVAL);
	assert_string_equal(reason, "whoever started the release (dave) may not approve \"go\": an "
	                            "approval must say who gives it (sign in)");
	stop(&f);
	free(text);
	/* ... even when the history does not say who started it. */
	start(&f, text = human_plan("\"allowSelfApproval\": false"), false);
	assert_int_equal(decide_as(&f, true, NULL, -1, &reason), SP_EINVAL);
	assert_int_equal(decide_as(&f, true, "erin", 1, &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	stop(&f);
	free(text);

	/* Neither rule: the link alone decides, and the decision names nobody. */
	text = human_plan("");
	start_as(&f, text, false, "dave");
	event_list_clear(&f.out);
	assert_int_equal(decide_as(&f, true, NULL, -1, &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	assert_null(json_object_get(f.out.items[0].data, "by"));
	stop(&f);
	free(text);

	/* Without the approver role nobody decides, listed or not, approve or reject. */
	text = human_plan("\"approvers\": [\"victor\", \"bob\"]");
	start_as(&f, text, false, "dave");
	event_list_clear(&f.out);
	assert_int_equal(decide_as(&f, true, "victor", 0, &reason), SP_EINVAL);
	assert_string_equal(reason, "victor may not decide \"go\": this needs the approver role");
	assert_int_equal(decide_as(&f, false, "victor", 0, &reason), SP_EINVAL);
	/* Not listed, or nameless: refused, with or without the role. */
	assert_int_equal(decide_as(&f, false, "carol", 1, &reason), SP_EINVAL);
	assert_string_equal(reason, "carol is not among the approvers of \"go\"");
	assert_int_equal(decide_as(&f, false, NULL, 1, &reason), SP_EINVAL);
	assert_int_equal(f.out.len, 0);
	/* A listed approver with the role, or told by a front end without roles. */
	assert_int_equal(decide_as(&f, true, "bob@desk", 1, &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	stop(&f);
	free(text);
	text = human_plan("\"approvers\": [\"victor\", \"bob\"]");
	start_as(&f, text, false, "dave");
	assert_int_equal(decide_as(&f, true, "victor", -1, &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	stop(&f);
	free(text);
	text = human_plan("");
	start_as(&f, text, false, "dave");
	assert_int_equal(decide_as(&f, false, "victor", 0, &reason), SP_EINVAL);
	assert_int_equal(f.ex.steps[0][0].status, STEP_RUNNING);
	stop(&f);
	free(text);
}

/* A release its own starter could never get through is refused at submit. */
static void test_human_check_starter(void **state)
{
	(void)state;
	static const struct {
		const char *fields, *starter;
		int errors;
	} cases[] = {
		{ "\"approvers\": [\"alice\", \"bob\"], \"minApprovals\": 2", "alice@ci", 1 },
		{ "\"approvers\": [\"alice\", \"bob\"], \"minApprovals\": 2", "carol", 0 },
		{ "\"approvers\": [\"alice\", \"bob\"], \"minApprovals\": 2", "", 0 },
		{ "\"approvers\": [\"alice\", \"bob\", \"carol\"], \"minApprovals\": 2", "alice",
		  0 },
		{ "\"approvers\": [\"alice\", \"bob\"], \"minApprovals\": 2, "
		  "\"allowSelfApproval\": true",
		  "alice", 0 },
		{ "\"approvers\": [\"alice\"]", "alice@laptop", 1 },
		{ "\"approvers\": [\"alice@ci\", \"bob\"], \"minApprovals\": 2", "alice", 1 },
		{ "\"minApprovals\": 2, \"allowSelfApproval\": false", "alice", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = human_plan(cases[i].fields);
		struct plan *plan = test_plan(text);
		struct diag_list dl = DIAG_LIST_INIT;
		int n = approval_check_plan_starter(plan, cases[i].starter, &dl);
		if (n != cases[i].errors)
			fail_msg("case %zu: %d errors, expected %d", i, n, cases[i].errors);
		if (n) {
			assert_int_equal(dl.items[0].severity, DIAG_ERROR);
			assert_string_equal(dl.items[0].pointer,
			                    strstr(cases[i].fields, "minApprovals")
			                        ? "/stages/0/steps/0/minApprovals"
			                        : "/stages/0/steps/0/approvers");
		}
		if (i == 0)
			assert_string_equal(
			    dl.items[0].message,
			    "alice@ci started the release and is among the approvers, "
			    "and allowSelfApproval is false: the others are 1 person, "
			    "fewer than minApprovals (2); nobody could approve it");
		diag_list_release(&dl);
		plan_free(plan);
		free(text);
	}
}

static void test_human_approvals_do_not_carry_over(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	char *text = human_plan("\"minApprovals\": 2");
	start_as(&f, text, false, "dave");

	/* Aborted after one approval, then continued: the new attempt starts at 0. */
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	assert_int_equal(engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	assert_int_equal(f.ex.status, EXEC_ABORTED);
	assert_int_equal(engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	assert_int_equal(f.ex.steps[0][0].attempt, 2);
	assert_int_equal(f.ex.steps[0][0].napproved, 0);
	event_list_clear(&f.out);
	assert_int_equal(decide(&f, true, "alice", &reason), 0); /* counts again, once */
	expect_events(&f, "HumanDecision 0.0#2");
	assert_int_equal(f.ex.steps[0][0].status, STEP_RUNNING);

	/* Expired after one approval: FAILED; a retry starts from 0 as well. */
	at(&f, 60000);
	expect_events(&f, "TimerFired 0.0#2 StepTimedOut 0.0#2 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_FAILED);
	assert_int_equal(engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	assert_int_equal(f.ex.steps[0][0].napproved, 0);
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	assert_int_equal(decide(&f, true, "bob", &reason), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	assert_int_equal(f.ex.steps[0][0].attempt, 3);
	stop(&f);
	free(text);
}

static void test_apply_rejects_a_second_approval_by_one_person(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	char *text = human_plan("\"minApprovals\": 2");
	start_as(&f, text, false, "dave");
	assert_int_equal(decide(&f, true, "alice", &reason), 0);
	/* A history that records the same person twice is malformed. */
	struct event_list l = EVENT_LIST_INIT;
	struct event *e =
	    event_list_add(&l, EV_HUMAN_DECISION, 0, 0, 1,
	                   json_pack("{ss ss}", "by", "alice@x", "decision", "approve"));
	e->seq = f.ex.seq + 1;
	assert_int_equal(engine_apply(&f.ex, e), SP_EINVAL);
	assert_int_equal(f.ex.steps[0][0].napproved, 1);
	/* Who may approve is not the fold's business: a recorded self approval replays. */
	json_object_set_new(e->data, "by", json_string("dave"));
	assert_int_equal(engine_apply(&f.ex, e), 0);
	assert_int_equal(f.ex.steps[0][0].status, STEP_SUCCEEDED);
	event_list_release(&l);
	exec_state_release(&f.ex);
	event_list_release(&f.history);
	event_list_release(&f.out);
	plan_free(f.plan);
	free(text);
}

static void test_abort(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	start(&f, const_human, false);
	started(&f, 0, 1, 1);
	event_list_clear(&f.out);
	assert_int_equal(engine_on_abort(&f.ex,
	                                 json_pack("{ssss}", "by", "bob", "reason", "bad tag"),
	                                 f.now, &f.out, &reason),
	                 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	expect_events(&f, "AbortRequested StepCancelled 0.0#1 StepCancelRequested 0.1#1");
	/* who asked and why stay in the state (show, notices) */
	assert_string_equal(f.ex.aborted_by, "bob");
	assert_string_equal(f.ex.abort_reason, "bad tag");
	assert_int_equal(f.ex.abort_ms, f.now);
	assert_int_equal(f.ex.status, EXEC_RUNNING); /* the Exec still stops */
	assert_int_equal(engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason), SP_EINVAL);
	assert_string_equal(reason, "the release is already being aborted");
	ended(&f, 0, 1, 1, false);
	expect_events(&f, "StepCancelled 0.1#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_ABORTED);
	assert_int_equal(engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason), SP_EINVAL);
	assert_string_equal(reason, "the release has already ended");
	stop(&f);
}

static void test_abort_cancels_pending_retry(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Exec\", \"name\": \"x\", "
	      "\"command\": [\"true\"], \"retry\": {\"intervalSeconds\": 60}}]}]}",
	      false);
	started(&f, 0, 0, 1);
	ended(&f, 0, 0, 1, false);
	event_list_clear(&f.out);
	assert_int_equal(engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	expect_events(&f, "AbortRequested StepCancelled 0.0#1 StageFinished 0 ExecutionFinished");
	assert_int_equal(f.ex.status, EXEC_ABORTED);
	stop(&f);
}

static void test_redrive_runs_only_what_did_not_succeed(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	start(&f, const_exec2, false);
	started(&f, 0, 0, 1);
	started(&f, 0, 1, 1);
	ended(&f, 0, 0, 1, true);
	ended(&f, 0, 1, 1, false);
	assert_int_equal(f.ex.status, EXEC_FAILED);
	event_list_clear(&f.out);
	assert_int_equal(
	    engine_on_redrive(&f.ex, json_pack("{ss}", "by", "carol"), f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	/* x succeeded and is not run again; y's attempt numbers go on from 1. */
	assert_string_equal(
	    json_string_value(json_object_get(f.out.items[2].data, "idempotencyKey")), "x1/0/1/2");
	expect_events(&f, "ExecutionRedriven StageStarted 0 StepScheduled 0.1#2");
	started(&f, 0, 1, 2);
	ended(&f, 0, 1, 2, true);
	expect_events(&f, "StepStarted 0.1#2 StepSucceeded 0.1#2 StageFinished 0 StageStarted 1 "
	                  "StepScheduled 1.0#1 StepStarted 1.0#1");
	assert_int_equal(engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), SP_EINVAL);
	assert_string_equal(reason, "the release is still running");
	stop(&f);
}

static void test_redrive_after_abort(void **state)
{
	(void)state;
	struct fixture f;
	const char *reason = NULL;
	start(&f, const_human, false);
	assert_int_equal(engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	ended(&f, 0, 1, 1, false); /* the Exec stops */
	assert_int_equal(f.ex.status, EXEC_ABORTED);
	event_list_clear(&f.out);
	assert_int_equal(f.ex.abort_ms, f.now);
	assert_null(f.ex.aborted_by); /* nobody said who */
	assert_int_equal(engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	expect_events(&f, "ExecutionRedriven StageStarted 0 StepScheduled 0.0#2 StepStarted 0.0#2 "
	                  "StepScheduled 0.1#2");
	assert_int_equal(f.ex.abort_ms, 0); /* a retry forgets the abort */
	stop(&f);
}

static void test_wait_until_past_fires_at_once(void **state)
{
	(void)state;
	struct fixture f;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", "
	      "\"until\": \"2020-01-01T00:00:00Z\"}]}]}",
	      false);
	expect_events(&f, "ExecutionStarted StageStarted 0 StepScheduled 0.0#1 StepStarted 0.0#1 "
	                  "TimerFired 0.0#1 StepSucceeded 0.0#1 StageFinished 0 ExecutionFinished");
	stop(&f);
}

static void test_interrupted_attempt_after_crash(void **state)
{
	(void)state;
	/* History ends with an intent whose effect is unknown: in flight. */
	struct fixture f;
	start(&f,
	      "{\"stages\": [{\"name\": \"a\", \"steps\": [{\"type\": \"Exec\", \"name\": \"x\", "
	      "\"command\": [\"true\"], \"retry\": {\"maxAttempts\": 2, \"intervalSeconds\": 0}}, "
	      "{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 100}]}]}",
	      false);
	assert_true(engine_in_flight(&f.ex, 0, 0));
	assert_false(engine_in_flight(&f.ex, 0, 1)); /* Wait runs in the engine */
	event_list_clear(&f.out);
	const char *reason = NULL;
	assert_int_equal(engine_on_ended(&f.ex, 0, 0, 1, false,
	                                 json_pack("{ss}", "error", "interrupted"), f.now, &f.out,
	                                 &reason),
	                 0);
	engine_advance(&f.ex, f.now, &f.out);
	keep(&f);
	expect_events(&f, "StepFailed 0.0#1 RetryScheduled 0.0#1 TimerFired 0.0#1 StepScheduled "
	                  "0.0#2");
	stop(&f);
}

static void test_apply_rejects_malformed_histories(void **state)
{
	(void)state;
	struct plan *plan = test_plan(const_exec2);
	struct exec_state ex;
	exec_state_init(&ex, "x", plan);
	struct event_list l = EVENT_LIST_INIT;
	struct event *e = event_list_add(&l, EV_STAGE_STARTED, 0, -1, 0, NULL);
	e->seq = 1;
	assert_int_equal(engine_apply(&ex, e), SP_EINVAL); /* before ExecutionStarted */
	e = event_list_add(&l, EV_EXECUTION_STARTED, -1, -1, 0, NULL);
	e->seq = 2;
	assert_int_equal(engine_apply(&ex, e), SP_EINVAL); /* seq gap */
	e->seq = 1;
	assert_int_equal(engine_apply(&ex, e), 0);
	assert_int_equal(engine_apply(&ex, e), SP_EINVAL); /* twice */
	static const struct {
		enum event_type type;
		int stage, step, attempt;
	} bad[] = {
		{ EV_STAGE_STARTED, 1, -1, 0 },  { EV_STEP_SCHEDULED, 0, 0, 1 },
		{ EV_STEP_STARTED, 0, 0, 1 },    { EV_EXECUTION_REDRIVEN, -1, -1, 0 },
		{ EV_STAGE_FINISHED, 0, -1, 0 }, { EV_EXECUTION_FINISHED, -1, -1, 0 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e = event_list_add(&l, bad[i].type, bad[i].stage, bad[i].step, bad[i].attempt,
		                   NULL);
		e->seq = 2;
		if (engine_apply(&ex, e) != SP_EINVAL)
			fail_msg("bad[%zu] %s was applied", i, event_type_name(bad[i].type));
	}
	e = event_list_add(&l, EV_STAGE_STARTED, 0, -1, 0, NULL);
	e->seq = 2;
	assert_int_equal(engine_apply(&ex, e), 0);
	static const struct {
		enum event_type type;
		int stage, step, attempt;
	} bad2[] = {
		{ EV_STEP_SCHEDULED, 0, 2, 1 }, /* no such step */
		{ EV_STEP_SCHEDULED, 0, 0, 2 }, /* attempt 2 before 1 */
		{ EV_STEP_STARTED, 0, 0, 1 },   /* never scheduled */
		{ EV_STEP_SUCCEEDED, 0, 0, 1 },  { EV_HUMAN_DECISION, 0, 0, 1 },
		{ EV_STAGE_FINISHED, 0, -1, 0 }, /* steps not final */
		{ EV_RETRY_SCHEDULED, 0, 0, 1 }, { EV_STAGE_STARTED, 0, -1, 0 }, /* already open */
	};
	for (size_t i = 0; i < sizeof(bad2) / sizeof(bad2[0]); i++) {
		e = event_list_add(&l, bad2[i].type, bad2[i].stage, bad2[i].step, bad2[i].attempt,
		                   NULL);
		e->seq = 3;
		if (engine_apply(&ex, e) != SP_EINVAL)
			fail_msg("bad2[%zu] %s was applied", i, event_type_name(bad2[i].type));
	}
	assert_int_equal(ex.seq, 2);
	exec_state_release(&ex);
	event_list_release(&l);
	plan_free(plan);
}

/* ---- randomized simulation ---------------------------------------------- */

static uint64_t rng;
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static const char *const sim_plan =
    "{\"stages\": ["
    "{\"name\": \"a\", \"steps\": ["
    "{\"type\": \"Exec\", \"name\": \"e1\", \"command\": [\"x\"], \"retry\": {\"maxAttempts\": "
    "3, \"intervalSeconds\": 1}, \"timeoutSeconds\": 30},"
    "{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 3},"
    "{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\"}]},"
    "{\"name\": \"b\", \"failFast\": true, \"steps\": ["
    "{\"type\": \"Human\", \"name\": \"h\", \"message\": \"m\", \"timeoutSeconds\": 100, "
    "\"approvers\": [\"alice\", \"bob\", \"carol\"], \"minApprovals\": 2},"
    "{\"type\": \"Exec\", \"name\": \"e2\", \"command\": [\"x\"], \"retry\": {\"maxAttempts\": "
    "2, \"intervalSeconds\": 2}}]},"
    "{\"name\": \"c\", \"steps\": [{\"type\": \"Exec\", \"name\": \"e3\", \"command\": "
    "[\"x\"]}]}]}";

static void test_random_simulation_invariants(void **state)
{
	(void)state;
	rng = 0x9E3779B97F4A7C15u;
	int outcomes[5] = { 0 };
	for (int run = 0; run < 3000; run++) {
		struct fixture f;
		start_as(&f, sim_plan, run % 7 == 0, "carol@ci");
		int redrives = 0;
		for (int tick = 0; tick < 400 && f.ex.status == EXEC_RUNNING; tick++) {
			const char *reason;
			int stage = f.ex.stage;
			int n = (int)f.plan->stages[stage].nsteps;
			int step = (int)rnd((unsigned)n);
			const struct step_state *st = &f.ex.steps[stage][step];
			switch (rnd(8)) {
			case 0:
			case 1:
				if (st->status == STEP_SCHEDULED &&
				    !(f.plan->stages[stage].steps[step].type->flags &
				      STEP_INTERNAL))
					started(&f, stage, step, st->attempt);
				break;
			case 2:
			case 3:
				if (engine_in_flight(&f.ex, stage, step))
					ended(&f, stage, step, st->attempt, rnd(3) != 0);
				break;
			case 4: {
				/* Anyone, under any of their names, nameless, or the starter. */
				static const char *const people[] = { "alice",    "bob",
					                              "bob@desk", "carol",
					                              "carol@ci", NULL };
				const char *by = people[rnd(6)];
				engine_on_decision(&f.ex, stage, step, rnd(4) != 0,
				                   by ? json_pack("{ss}", "by", by) : NULL, f.now,
				                   &f.out, &reason);
				keep(&f);
				break;
			}
			case 5:
				if (rnd(40) == 0) {
					engine_on_abort(&f.ex, NULL, f.now, &f.out, &reason);
					engine_advance(&f.ex, f.now, &f.out);
					keep(&f);
				}
				break;
			default: {
				int64_t due = engine_next_due(&f.ex);
				at(&f, (due == INT64_MAX ? f.now + 1000 : due) - T0);
			}
			}
			/* Invariants after every input. */
			assert_int_equal(f.ex.seq, (int64_t)f.history.len);
			const struct step_state *h = &f.ex.steps[1][0];
			assert_true(h->napproved <= 2);
			assert_true(h->status == STEP_SUCCEEDED || h->napproved < 2);
			for (int i = 0; i < h->napproved; i++) {
				assert_false(approval_same_person(h->approved_by[i], "carol"));
				for (int j = 0; j < i; j++)
					assert_false(approval_same_person(h->approved_by[i],
					                                  h->approved_by[j]));
			}
			for (size_t i = 0; i < f.history.len; i++)
				assert_int_equal(f.history.items[i].seq, (int64_t)i + 1);
			if (f.ex.status == EXEC_FAILED && redrives < 2 && rnd(2)) {
				redrives++;
				assert_int_equal(
				    engine_on_redrive(&f.ex, NULL, f.now, &f.out, &reason), 0);
				keep(&f);
			}
		}
		/* Every attempt was scheduled exactly once. */
		for (size_t i = 0; i < f.history.len; i++) {
			const struct event *a = &f.history.items[i];
			if (a->type != EV_STEP_SCHEDULED)
				continue;
			for (size_t j = i + 1; j < f.history.len; j++) {
				const struct event *b = &f.history.items[j];
				assert_false(b->type == EV_STEP_SCHEDULED && b->stage == a->stage &&
				             b->step == a->step && b->attempt == a->attempt);
			}
		}
		/* A finished history ends with ExecutionFinished. */
		if (f.ex.status != EXEC_RUNNING)
			assert_int_equal(f.history.items[f.history.len - 1].type,
			                 EV_EXECUTION_FINISHED);
		outcomes[f.ex.status]++;
		stop(&f);
	}
	/* The simulation reaches every outcome. */
	for (int i = EXEC_SUCCEEDED; i <= EXEC_ABORTED; i++)
		if (outcomes[i] == 0)
			fail_msg("no run ended %s", exec_status_name((enum exec_status)i));
}

/*
 * Approvers may name groups of the people directory ("group:NAME"): a
 * member decides under the directory's name or its user part; without a
 * directory (or outside the group) nobody does; names still match.
 */
static void test_human_group_approvers(void **state)
{
	(void)state;
	const char *rm[] = { "release-managers", NULL }, *none[] = { NULL };
	const struct person list[] = {
		{ .name = "alice", .email = "alice@example.com", .groups = rm, .roles = 0 },
		{ .name = "bob", .email = NULL, .groups = none, .roles = 0 },
	};
	const struct people dir = { .list = list, .n = 2 };
	char *text = human_plan("\"approvers\": [\"carol\", \"group:release-managers\"]");
	struct plan *plan = test_plan(text);
	const struct approval_rule *step = approval_rule_of(&plan->stages[0].steps[0]);
	assert_non_null(step);
	assert_true(approval_is_approver(step, &dir, "alice"));
	assert_true(approval_is_approver(step, &dir, "alice@laptop")); /* her user part */
	assert_false(approval_is_approver(step, &dir, "bob"));         /* not in the group */
	assert_false(approval_is_approver(step, NULL, "alice"));       /* no directory */
	assert_true(approval_is_approver(step, &dir, "carol"));        /* listed by name */
	assert_false(approval_is_approver(step, &dir, "oidc:alice@example.com"));
	assert_false(approval_is_approver(step, &dir, "release-managers"));
	assert_false(approval_is_approver(step, &dir, ""));
	assert_false(approval_is_approver(step, &dir, NULL));
	plan_free(plan);
	free(text);

	/* A group may hold any number of people: minApprovals is not counted. */
	text = human_plan("\"approvers\": [\"group:rm\"], \"minApprovals\": 3");
	plan = test_plan(text);
	assert_int_equal(approval_needed(&plan->stages[0].steps[0]), 3);
	plan_free(plan);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stages_in_order_steps_together),
		cmocka_unit_test(test_failure_stops_before_next_stage),
		cmocka_unit_test(test_fail_fast_cancels_the_rest),
		cmocka_unit_test(test_retry_with_backoff),
		cmocka_unit_test(test_timeout_cancels_attempt_and_ignores_late_end),
		cmocka_unit_test(test_human_approve_reject_expire),
		cmocka_unit_test(test_human_without_timeout_waits_at_most_a_year),
		cmocka_unit_test(test_human_two_of_three),
		cmocka_unit_test(test_human_reject_after_an_approval),
		cmocka_unit_test(test_human_self_approval),
		cmocka_unit_test(test_human_who_may_decide),
		cmocka_unit_test(test_human_check_starter),
		cmocka_unit_test(test_human_approvals_do_not_carry_over),
		cmocka_unit_test(test_apply_rejects_a_second_approval_by_one_person),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_abort_cancels_pending_retry),
		cmocka_unit_test(test_redrive_runs_only_what_did_not_succeed),
		cmocka_unit_test(test_redrive_after_abort),
		cmocka_unit_test(test_wait_until_past_fires_at_once),
		cmocka_unit_test(test_interrupted_attempt_after_crash),
		cmocka_unit_test(test_apply_rejects_malformed_histories),
		cmocka_unit_test(test_random_simulation_invariants),
		cmocka_unit_test(test_human_group_approvers),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
