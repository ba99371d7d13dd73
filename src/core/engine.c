/*
 * engine.c - the pure state machine of an execution (see engine.h).
 *
 * Two halves. engine_apply() is the fold: it checks that an event fits the
 * state and applies it, and it is the only code that changes a state. The
 * engine_on_*() inputs and engine_advance() decide which events follow from
 * an input and the time; they never change the state themselves but emit
 * events through emit(), which applies them at once, so the state always
 * equals the fold of the history including what was just emitted.
 */
#include "core/engine.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HUMAN_MAX_WAIT_MS ((int64_t)365 * 24 * 3600 * 1000)

static const char *const exec_names[] = {
#define EXEC_STATUS_NAME(e, name) name,
	EXEC_STATUS_LIST(EXEC_STATUS_NAME)
#undef EXEC_STATUS_NAME
};

static const char *const step_names[] = {
#define STEP_STATUS_NAME(e, name) name,
	STEP_STATUS_LIST(STEP_STATUS_NAME)
#undef STEP_STATUS_NAME
};

const char *exec_status_name(enum exec_status s)
{
	return exec_names[s];
}

const char *step_status_name(enum step_status s)
{
	return step_names[s];
}

bool step_status_final(enum step_status s)
{
	return s == STEP_SUCCEEDED || s == STEP_FAILED || s == STEP_TIMED_OUT ||
	       s == STEP_CANCELLED || s == STEP_REJECTED;
}

static bool step_status_failed(enum step_status s)
{
	return s == STEP_FAILED || s == STEP_TIMED_OUT || s == STEP_REJECTED;
}

/* Whether a step runs inside the engine (Wait, Human): no runner. */
static bool is_internal(const struct plan_step *ps)
{
	return (ps->type->flags & STEP_INTERNAL) != 0;
}

/* Whether a step waits for people's decisions (Human). */
static bool takes_decisions(const struct plan_step *ps)
{
	return (ps->type->flags & STEP_DECISION) != 0;
}

void exec_state_init(struct exec_state *ex, const char *id, const struct plan *plan)
{
	*ex = (struct exec_state){ .id = id, .plan = plan, .status = EXEC_RUNNING };
	ex->steps = xcalloc(plan->nstages, sizeof(*ex->steps));
	for (size_t i = 0; i < plan->nstages; i++)
		ex->steps[i] = xcalloc(plan->stages[i].nsteps, sizeof(**ex->steps));
}

static void clear_approvals(struct step_state *st)
{
	for (int i = 0; i < st->napproved; i++)
		free(st->approved_by[i]);
	free(st->approved_by);
	st->approved_by = NULL;
	st->napproved = 0;
}

static void forget_abort(struct exec_state *ex)
{
	free(ex->aborted_by);
	free(ex->abort_reason);
	ex->aborted_by = ex->abort_reason = NULL;
	ex->abort_ms = 0;
}

void exec_state_release(struct exec_state *ex)
{
	free(ex->started_by);
	ex->started_by = NULL;
	free(ex->reason);
	ex->reason = NULL;
	forget_abort(ex);
	if (!ex->steps)
		return;
	for (size_t i = 0; i < ex->plan->nstages; i++) {
		for (size_t j = 0; j < ex->plan->stages[i].nsteps; j++)
			clear_approvals(&ex->steps[i][j]);
		free(ex->steps[i]);
	}
	free(ex->steps);
	ex->steps = NULL;
}

static size_t stage_len(const struct exec_state *ex, int stage)
{
	return ex->plan->stages[stage].nsteps;
}

static bool valid_step(const struct exec_state *ex, int stage, int step)
{
	return stage >= 0 && (size_t)stage < ex->plan->nstages && step >= 0 &&
	       (size_t)step < stage_len(ex, stage);
}

static int64_t data_int(const json_t *data, const char *key)
{
	json_t *v = json_object_get(data, key);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Who gave a decision: its "by", or "" when it does not say. */
static const char *decided_by(const json_t *data)
{
	const char *by = json_string_value(json_object_get(data, "by"));
	return by ? by : "";
}

static bool is_approval(const json_t *data)
{
	const char *d = json_string_value(json_object_get(data, "decision"));
	return d && !strcmp(d, "approve");
}

/* True if by (or another name of the same person) approved st's current attempt. */
static bool approved_already(const struct step_state *st, const char *by)
{
	for (int i = 0; i < st->napproved; i++)
		if (approval_same_person(st->approved_by[i], by))
			return true;
	return false;
}

/* ---- the fold ---------------------------------------------------------- */

/* Checks ev against the state; returns 0 if it may be applied. */
static int check(const struct exec_state *ex, const struct event *ev)
{
	if (ev->seq != ex->seq + 1)
		return SP_EINVAL;
	if (ev->type == EV_EXECUTION_STARTED)
		return ex->started ? SP_EINVAL : 0;
	if (!ex->started)
		return SP_EINVAL;
	bool has_step = valid_step(ex, ev->stage, ev->step);
	const struct step_state *st = has_step ? &ex->steps[ev->stage][ev->step] : NULL;
	bool current = has_step && ev->stage == ex->stage && ex->stage_open;
	bool this_attempt = st && ev->attempt == st->attempt;
	switch (ev->type) {
	case EV_EXECUTION_STARTED:
		return SP_EINVAL;
	case EV_STAGE_STARTED:
		return ex->status == EXEC_RUNNING && !ex->stage_open && ev->stage == ex->stage &&
		               (size_t)ev->stage < ex->plan->nstages
		           ? 0
		           : SP_EINVAL;
	case EV_STEP_SCHEDULED:
		return current && (st->status == STEP_PENDING || st->status == STEP_RETRY_WAIT) &&
		               ev->attempt == st->attempt + 1
		           ? 0
		           : SP_EINVAL;
	case EV_STEP_STARTED:
		return current && this_attempt && st->status == STEP_SCHEDULED ? 0 : SP_EINVAL;
	case EV_STEP_SUCCEEDED:
		return current && this_attempt && st->status == STEP_RUNNING ? 0 : SP_EINVAL;
	case EV_STEP_FAILED:
		return current && this_attempt &&
		               (st->status == STEP_SCHEDULED || st->status == STEP_RUNNING)
		           ? 0
		           : SP_EINVAL;
	case EV_STEP_TIMED_OUT:
		return current && this_attempt &&
		               (st->status == STEP_RUNNING || st->status == STEP_CANCELLING)
		           ? 0
		           : SP_EINVAL;
	case EV_STEP_CANCEL_REQUESTED:
		return current && this_attempt &&
		               (st->status == STEP_SCHEDULED || st->status == STEP_RUNNING)
		           ? 0
		           : SP_EINVAL;
	case EV_STEP_CANCELLED:
		return current && this_attempt && !step_status_final(st->status) ? 0 : SP_EINVAL;
	case EV_RETRY_SCHEDULED:
		return current && this_attempt &&
		               (st->status == STEP_FAILED || st->status == STEP_TIMED_OUT) &&
		               json_is_integer(json_object_get(ev->data, "dueMs"))
		           ? 0
		           : SP_EINVAL;
	case EV_TIMER_FIRED:
	case EV_NOTICE:
		return 0;
	case EV_HUMAN_DECISION:
		/* A second approval by the same person never counts. Who may
		 * approve (allowSelfApproval) is decided on input, not here: it
		 * depends on names, and older histories did not apply it. */
		return current && this_attempt && st->status == STEP_RUNNING &&
		               takes_decisions(&ex->plan->stages[ev->stage].steps[ev->step]) &&
		               !(is_approval(ev->data) &&
		                 approved_already(st, decided_by(ev->data)))
		           ? 0
		           : SP_EINVAL;
	case EV_ABORT_REQUESTED:
		return ex->status == EXEC_RUNNING && !ex->abort_requested ? 0 : SP_EINVAL;
	case EV_STAGE_FINISHED:
		if (!ex->stage_open || ev->stage != ex->stage)
			return SP_EINVAL;
		for (size_t i = 0; i < stage_len(ex, ex->stage); i++)
			if (!step_status_final(ex->steps[ex->stage][i].status))
				return SP_EINVAL;
		return 0;
	case EV_EXECUTION_FINISHED: {
		const char *s = json_string_value(json_object_get(ev->data, "status"));
		if (ex->status != EXEC_RUNNING || ex->stage_open || !s)
			return SP_EINVAL;
		for (int i = EXEC_SUCCEEDED; i <= EXEC_ABORTED; i++)
			if (!strcmp(s, exec_names[i]))
				return 0;
		return SP_EINVAL;
	}
	case EV_EXECUTION_REDRIVEN:
		return ex->status == EXEC_FAILED || ex->status == EXEC_ABORTED ? 0 : SP_EINVAL;
	case EV__COUNT:
		break;
	}
	return SP_EINVAL;
}

/* ExecutionStarted: the release begins at its first stage. */
static void apply_started(struct exec_state *ex, const struct event *ev)
{
	const char *by = json_string_value(json_object_get(ev->data, "startedBy"));
	ex->started = true;
	ex->status = EXEC_RUNNING;
	ex->stage = 0;
	ex->started_ms = ev->time_ms;
	ex->fail_fast = json_is_true(json_object_get(ev->data, "failFast"));
	ex->started_by = xstrdup(by ? by : "");
}

/* HumanDecision: an approval counts (the step succeeds once enough
 * different people gave one), a rejection ends the step. */
static void apply_decision(struct exec_state *ex, struct step_state *st, const struct event *ev)
{
	if (is_approval(ev->data)) {
		st->approved_by = xreallocarray(st->approved_by, (size_t)st->napproved + 1,
		                                sizeof(*st->approved_by));
		st->approved_by[st->napproved++] = xstrdup(decided_by(ev->data));
		if (st->napproved < approval_needed(&ex->plan->stages[ev->stage].steps[ev->step]))
			return; /* waits for more approvals */
		st->status = STEP_SUCCEEDED;
	} else {
		st->status = STEP_REJECTED;
	}
	st->ended_ms = ev->time_ms;
	st->timeout_ms = 0;
}

/* ExecutionRedriven: the steps of the stage that stopped it start again. */
static void apply_redriven(struct exec_state *ex)
{
	ex->status = EXEC_RUNNING;
	ex->abort_requested = false;
	forget_abort(ex);
	ex->finished_ms = 0;
	for (size_t i = 0; (size_t)ex->stage < ex->plan->nstages && i < stage_len(ex, ex->stage);
	     i++) {
		struct step_state *s = &ex->steps[ex->stage][i];
		if (s->status != STEP_SUCCEEDED) {
			s->status = STEP_PENDING;
			s->run_attempts = 0;
			s->due_ms = 0;
			s->timeout_ms = 0;
		}
	}
}

int engine_apply(struct exec_state *ex, const struct event *ev)
{
	int r = check(ex, ev);
	if (r < 0)
		return r;
	ex->seq = ev->seq;
	struct step_state *st =
	    valid_step(ex, ev->stage, ev->step) ? &ex->steps[ev->stage][ev->step] : NULL;
	switch (ev->type) {
	case EV_EXECUTION_STARTED:
		apply_started(ex, ev);
		break;
	case EV_STAGE_STARTED:
		ex->stage_open = true;
		break;
	case EV_STEP_SCHEDULED:
		st->status = STEP_SCHEDULED;
		st->attempt = ev->attempt;
		st->run_attempts++;
		st->due_ms = 0;
		st->timeout_ms = 0;
		st->started_ms = 0;
		st->ended_ms = 0;
		clear_approvals(st);
		break;
	case EV_STEP_STARTED:
		st->status = STEP_RUNNING;
		st->started_ms = ev->time_ms;
		st->due_ms = data_int(ev->data, "dueMs");
		st->timeout_ms = data_int(ev->data, "timeoutMs");
		break;
	case EV_STEP_SUCCEEDED:
	case EV_STEP_FAILED:
	case EV_STEP_TIMED_OUT:
	case EV_STEP_CANCELLED:
		st->status = ev->type == EV_STEP_SUCCEEDED   ? STEP_SUCCEEDED
		             : ev->type == EV_STEP_FAILED    ? STEP_FAILED
		             : ev->type == EV_STEP_TIMED_OUT ? STEP_TIMED_OUT
		                                             : STEP_CANCELLED;
		st->ended_ms = ev->time_ms;
		st->due_ms = 0;
		st->timeout_ms = 0;
		break;
	case EV_STEP_CANCEL_REQUESTED:
		st->status = STEP_CANCELLING;
		break;
	case EV_RETRY_SCHEDULED:
		st->status = STEP_RETRY_WAIT;
		st->due_ms = data_int(ev->data, "dueMs");
		st->ended_ms = 0;
		break;
	case EV_HUMAN_DECISION:
		apply_decision(ex, st, ev);
		break;
	case EV_ABORT_REQUESTED: {
		const char *by = json_string_value(json_object_get(ev->data, "by"));
		const char *why = json_string_value(json_object_get(ev->data, "reason"));
		ex->abort_requested = true;
		forget_abort(ex);
		ex->aborted_by = by ? xstrdup(by) : NULL;
		ex->abort_reason = why ? xstrdup(why) : NULL;
		ex->abort_ms = ev->time_ms;
		break;
	}
	case EV_STAGE_FINISHED: {
		ex->stage_open = false;
		const char *outcome = json_string_value(json_object_get(ev->data, "status"));
		if (outcome && !strcmp(outcome, "SUCCEEDED"))
			ex->stage++;
		break;
	}
	case EV_EXECUTION_FINISHED: {
		const char *s = json_string_value(json_object_get(ev->data, "status"));
		for (int i = EXEC_SUCCEEDED; i <= EXEC_ABORTED; i++)
			if (!strcmp(s, exec_names[i]))
				ex->status = (enum exec_status)i;
		ex->finished_ms = ev->time_ms;
		break;
	}
	case EV_EXECUTION_REDRIVEN:
		apply_redriven(ex);
		break;
	case EV_TIMER_FIRED:
	case EV_NOTICE:
	case EV__COUNT:
		break;
	}
	return 0;
}

/* ---- deciding ---------------------------------------------------------- */

static void emit(struct exec_state *ex, struct event_list *out, int64_t now, enum event_type type,
                 int stage, int step, int attempt, json_t *data)
{
	struct event *ev = event_list_add(out, type, stage, step, attempt, data);
	ev->seq = ex->seq + 1;
	ev->time_ms = now;
	if (engine_apply(ex, ev) < 0)
		abort(); /* the engine emitted an event its own fold rejects: a bug */
}

static const struct plan_step *plan_step(const struct exec_state *ex, int stage, int step)
{
	return &ex->plan->stages[stage].steps[step];
}

/* After a failed or timed-out attempt: schedule the next one if the policy allows. */
static void maybe_retry(struct exec_state *ex, int stage, int step, int64_t now,
                        struct event_list *out)
{
	const struct plan_step *ps = plan_step(ex, stage, step);
	const struct step_state *st = &ex->steps[stage][step];
	if (ex->abort_requested || st->run_attempts >= ps->retry.max_attempts)
		return;
	double delay = (double)ps->retry.interval_seconds *
	               pow(ps->retry.backoff_rate, (double)(st->run_attempts - 1));
	if (delay > 86400.0 * 365)
		delay = 86400.0 * 365;
	int64_t due = now + (int64_t)(delay * 1000.0);
	emit(ex, out, now, EV_RETRY_SCHEDULED, stage, step, st->attempt,
	     json_pack("{sI si}", "dueMs", (json_int_t)due, "nextAttempt", st->attempt + 1));
}

static json_t *timer_data(const char *purpose)
{
	return json_pack("{ss}", "purpose", purpose);
}

/* Begins an attempt of an internal step right after its intent: a wait for
 * its type's due time (Wait), or for people's decisions (Human). */
static void start_internal(struct exec_state *ex, int stage, int step, int64_t now,
                           struct event_list *out)
{
	const struct plan_step *ps = plan_step(ex, stage, step);
	const struct step_state *st = &ex->steps[stage][step];
	json_t *data = json_object();
	int64_t timeout = ps->timeout_seconds ? now + ps->timeout_seconds * 1000 : 0;
	if (takes_decisions(ps)) {
		if (!timeout)
			timeout = now + HUMAN_MAX_WAIT_MS;
	} else {
		int64_t due =
		    ps->type->due_ms && ps->config ? ps->type->due_ms(ps->config, now) : now;
		json_object_set_new(data, "dueMs", json_integer(due > now ? due : now));
	}
	if (timeout)
		json_object_set_new(data, "timeoutMs", json_integer(timeout));
	emit(ex, out, now, EV_STEP_STARTED, stage, step, st->attempt, data);
}

static void schedule(struct exec_state *ex, int stage, int step, int64_t now,
                     struct event_list *out)
{
	const struct step_state *st = &ex->steps[stage][step];
	int attempt = st->attempt + 1;
	/* (execution, stage, step, attempt) names the attempt's side effects. */
	char *key = xstrfmt("%s/%d/%d/%d", ex->id ? ex->id : "", stage, step, attempt);
	json_t *data = json_pack("{ss}", "idempotencyKey", key);
	free(key);
	emit(ex, out, now, EV_STEP_SCHEDULED, stage, step, attempt, data);
	if (is_internal(plan_step(ex, stage, step)))
		start_internal(ex, stage, step, now, out);
}

/* Ends every unfinished step of the open stage: internal and waiting ones at
 * once, external work through a cancel request. */
static void cancel_stage(struct exec_state *ex, const char *reason, int64_t now,
                         struct event_list *out)
{
	int stage = ex->stage;
	for (int i = 0; (size_t)i < stage_len(ex, stage); i++) {
		const struct step_state *st = &ex->steps[stage][i];
		bool internal = is_internal(plan_step(ex, stage, i));
		switch (st->status) {
		case STEP_PENDING:
		case STEP_RETRY_WAIT:
			emit(ex, out, now, EV_STEP_CANCELLED, stage, i, st->attempt,
			     json_pack("{ss}", "reason", reason));
			break;
		case STEP_SCHEDULED:
		case STEP_RUNNING:
			if (internal)
				emit(ex, out, now, EV_STEP_CANCELLED, stage, i, st->attempt,
				     json_pack("{ss}", "reason", reason));
			else
				emit(ex, out, now, EV_STEP_CANCEL_REQUESTED, stage, i, st->attempt,
				     json_pack("{ss}", "reason", reason));
			break;
		default:
			break;
		}
	}
}

static void finish(struct exec_state *ex, enum exec_status status, int64_t now,
                   struct event_list *out)
{
	emit(ex, out, now, EV_EXECUTION_FINISHED, -1, -1, 0,
	     json_pack("{ss}", "status", exec_names[status]));
}

/* Fires due timers of the open stage. Returns true if it emitted anything. */
static bool fire_timers(struct exec_state *ex, int64_t now, struct event_list *out)
{
	bool fired = false;
	int stage = ex->stage;
	for (int i = 0; (size_t)i < stage_len(ex, stage); i++) {
		const struct step_state *st = &ex->steps[stage][i];
		const struct plan_step *ps = plan_step(ex, stage, i);
		if (st->status == STEP_RUNNING && st->due_ms && st->due_ms <= now &&
		    !takes_decisions(ps)) {
			emit(ex, out, now, EV_TIMER_FIRED, stage, i, st->attempt,
			     timer_data("wait"));
			emit(ex, out, now, EV_STEP_SUCCEEDED, stage, i, st->attempt, NULL);
			fired = true;
		} else if ((st->status == STEP_RUNNING || st->status == STEP_CANCELLING) &&
		           st->timeout_ms && st->timeout_ms <= now) {
			emit(ex, out, now, EV_TIMER_FIRED, stage, i, st->attempt,
			     timer_data(takes_decisions(ps) ? "expiry" : "timeout"));
			json_int_t secs = (json_int_t)((st->timeout_ms - st->started_ms) / 1000);
			emit(ex, out, now, EV_STEP_TIMED_OUT, stage, i, st->attempt,
			     json_pack("{sI ss}", "timeoutSeconds", secs, "error",
			               "the attempt ran past its timeout"));
			maybe_retry(ex, stage, i, now, out);
			fired = true;
		} else if (st->status == STEP_RETRY_WAIT && st->due_ms <= now &&
		           !ex->abort_requested) {
			emit(ex, out, now, EV_TIMER_FIRED, stage, i, st->attempt,
			     timer_data("retry"));
			schedule(ex, stage, i, now, out);
			fired = true;
		}
	}
	return fired;
}

void engine_advance(struct exec_state *ex, int64_t now, struct event_list *out)
{
	while (ex->started && ex->status == EXEC_RUNNING) {
		if (ex->abort_requested) {
			if (ex->stage_open) {
				cancel_stage(ex, "the release is being aborted", now, out);
				for (size_t i = 0; i < stage_len(ex, ex->stage); i++)
					if (!step_status_final(ex->steps[ex->stage][i].status))
						return; /* external work still stopping */
				emit(ex, out, now, EV_STAGE_FINISHED, ex->stage, -1, 0,
				     json_pack("{ss}", "status", "ABORTED"));
			}
			finish(ex, EXEC_ABORTED, now, out);
			return;
		}
		if (!ex->stage_open) {
			if ((size_t)ex->stage >= ex->plan->nstages) {
				finish(ex, EXEC_SUCCEEDED, now, out);
				return;
			}
			emit(ex, out, now, EV_STAGE_STARTED, ex->stage, -1, 0, NULL);
		}
		int stage = ex->stage;
		size_t n = stage_len(ex, stage);
		for (int i = 0; (size_t)i < n; i++)
			if (ex->steps[stage][i].status == STEP_PENDING)
				schedule(ex, stage, i, now, out);
		if (fire_timers(ex, now, out))
			continue;

		bool all_final = true, any_failed = false, any_rejected = false;
		for (size_t i = 0; i < n; i++) {
			enum step_status s = ex->steps[stage][i].status;
			all_final &= step_status_final(s);
			any_failed |= step_status_failed(s);
			any_rejected |= s == STEP_REJECTED;
		}
		if (any_failed && !all_final &&
		    (ex->fail_fast || ex->plan->stages[stage].fail_fast)) {
			size_t before = out->len;
			cancel_stage(ex, "another step of the stage failed (fail fast)", now, out);
			if (out->len != before)
				continue;
		}
		if (!all_final)
			return;
		const char *outcome = any_rejected ? "REJECTED"
		                      : any_failed ? "FAILED"
		                                   : "SUCCEEDED";
		bool cancelled = false;
		for (size_t i = 0; i < n; i++)
			cancelled |= ex->steps[stage][i].status == STEP_CANCELLED;
		if (!any_failed && cancelled)
			outcome = "FAILED";
		emit(ex, out, now, EV_STAGE_FINISHED, stage, -1, 0,
		     json_pack("{ss}", "status", outcome));
		if (strcmp(outcome, "SUCCEEDED") != 0) {
			finish(ex, any_rejected ? EXEC_REJECTED : EXEC_FAILED, now, out);
			return;
		}
	}
}

static int current_attempt(const struct exec_state *ex, int stage, int step, int attempt,
                           const char **ret_reason)
{
	if (!valid_step(ex, stage, step)) {
		*ret_reason = "no such step in the plan";
		return SP_EINVAL;
	}
	if (ex->status != EXEC_RUNNING || stage != ex->stage || !ex->stage_open) {
		*ret_reason = "the step's stage is not running";
		return SP_EINVAL;
	}
	if (attempt && attempt != ex->steps[stage][step].attempt) {
		*ret_reason = "that attempt is no longer the current one";
		return SP_EINVAL;
	}
	return 0;
}

int engine_on_started(struct exec_state *ex, int stage, int step, int attempt, json_t *handle,
                      int64_t now, struct event_list *out, const char **ret_reason)
{
	int r = current_attempt(ex, stage, step, attempt, ret_reason);
	if (r == 0 && ex->steps[stage][step].status != STEP_SCHEDULED) {
		*ret_reason = "the attempt is not waiting to start";
		r = SP_EINVAL;
	}
	if (r < 0) {
		json_decref(handle);
		return r;
	}
	const struct plan_step *ps = plan_step(ex, stage, step);
	if (ps->timeout_seconds)
		json_object_set_new(handle, "timeoutMs",
		                    json_integer(now + ps->timeout_seconds * 1000));
	emit(ex, out, now, EV_STEP_STARTED, stage, step, attempt, handle);
	return 0;
}

int engine_on_ended(struct exec_state *ex, int stage, int step, int attempt, bool ok,
                    json_t *details, int64_t now, struct event_list *out, const char **ret_reason)
{
	int r = current_attempt(ex, stage, step, attempt, ret_reason);
	const struct step_state *st = r == 0 ? &ex->steps[stage][step] : NULL;
	if (r == 0 && (step_status_final(st->status) || st->status == STEP_RETRY_WAIT ||
	               st->status == STEP_PENDING)) {
		*ret_reason = "the attempt has already ended";
		r = SP_EINVAL;
	}
	if (r < 0) {
		json_decref(details);
		return r;
	}
	if (!details)
		details = json_object();
	if (st->status == STEP_CANCELLING) {
		emit(ex, out, now, EV_STEP_CANCELLED, stage, step, attempt, details);
	} else if (ok) {
		if (st->status == STEP_SCHEDULED)
			emit(ex, out, now, EV_STEP_STARTED, stage, step, attempt, NULL);
		emit(ex, out, now, EV_STEP_SUCCEEDED, stage, step, attempt, details);
	} else {
		emit(ex, out, now, EV_STEP_FAILED, stage, step, attempt, details);
		maybe_retry(ex, stage, step, now, out);
	}
	return 0;
}

enum approval_verdict engine_may_decide(const struct exec_state *ex, int stage, int step,
                                        const struct approval_decider *d, bool approve,
                                        struct strbuf *why)
{
	const struct plan_step *ps = plan_step(ex, stage, step);
	const struct step_state *st = &ex->steps[stage][step];
	struct approval_ask ask = {
		.step_name = ps->name,
		.approve = approve,
		.starter = ex->started_by,
		.approved_by = st->approved_by,
		.napproved = st->napproved,
	};
	return approval_may_decide_at(ps, d, &ask, why);
}

/*
 * Whether the decider described by who may decide step now: the one rule
 * of core/approval.h, applied here to every decision whichever front end
 * carries it. who's "by" names the person (absent or "": nobody signed in);
 * "approverRole" says whether they hold the approver role (absent: the
 * front end has no roles). Returns 0 or SP_EINVAL.
 */
static int may_decide(struct exec_state *ex, int stage, int step, bool approve, const json_t *who,
                      const char **ret_reason)
{
	const json_t *role = json_object_get(who, "approverRole");
	struct approval_decider d = {
		.by = json_string_value(json_object_get(who, "by")),
		.approver_role = json_is_boolean(role) ? json_is_true(role) : -1,
		.people = ex->people,
	};
	struct strbuf why = STRBUF_INIT;
	if (engine_may_decide(ex, stage, step, &d, approve, &why) != APPROVAL_MAY) {
		free(ex->reason);
		ex->reason = strbuf_detach(&why, NULL);
		*ret_reason = ex->reason;
		return SP_EINVAL;
	}
	strbuf_release(&why);
	return 0;
}

int engine_on_decision(struct exec_state *ex, int stage, int step, bool approve, json_t *who,
                       int64_t now, struct event_list *out, const char **ret_reason)
{
	int r = current_attempt(ex, stage, step, 0, ret_reason);
	if (r == 0 && !takes_decisions(plan_step(ex, stage, step))) {
		*ret_reason = "the step is not a Human step";
		r = SP_EINVAL;
	} else if (r == 0 && ex->steps[stage][step].status != STEP_RUNNING) {
		*ret_reason = "the step is not waiting for a decision";
		r = SP_EINVAL;
	}
	if (r == 0)
		r = may_decide(ex, stage, step, approve, who, ret_reason);
	if (r < 0) {
		json_decref(who);
		return r;
	}
	if (!who)
		who = json_object();
	json_object_set_new(who, "decision", json_string(approve ? "approve" : "reject"));
	emit(ex, out, now, EV_HUMAN_DECISION, stage, step, ex->steps[stage][step].attempt, who);
	return 0;
}

int engine_on_abort(struct exec_state *ex, json_t *who, int64_t now, struct event_list *out,
                    const char **ret_reason)
{
	if (!ex->started || ex->status != EXEC_RUNNING) {
		*ret_reason = "the release has already ended";
		json_decref(who);
		return SP_EINVAL;
	}
	if (ex->abort_requested) {
		*ret_reason = "the release is already being aborted";
		json_decref(who);
		return SP_EINVAL;
	}
	emit(ex, out, now, EV_ABORT_REQUESTED, -1, -1, 0, who ? who : json_object());
	return 0;
}

int engine_on_notice(struct exec_state *ex, int stage, int step, int attempt, json_t *data,
                     int64_t now, struct event_list *out, const char **ret_reason)
{
	if (!ex->started || ex->status != EXEC_RUNNING) {
		*ret_reason = "the release has already ended";
		json_decref(data);
		return SP_EINVAL;
	}
	emit(ex, out, now, EV_NOTICE, stage, step, attempt, data);
	return 0;
}

int engine_on_redrive(struct exec_state *ex, json_t *who, int64_t now, struct event_list *out,
                      const char **ret_reason)
{
	if (ex->status != EXEC_FAILED && ex->status != EXEC_ABORTED) {
		*ret_reason = ex->status == EXEC_RUNNING ? "the release is still running"
		              : ex->status == EXEC_REJECTED
		                  ? "the release was rejected; start a new one"
		                  : "the release succeeded";
		json_decref(who);
		return SP_EINVAL;
	}
	emit(ex, out, now, EV_EXECUTION_REDRIVEN, -1, -1, 0, who ? who : json_object());
	return 0;
}

int64_t engine_next_due(const struct exec_state *ex)
{
	int64_t due = INT64_MAX;
	if (!ex->started || ex->status != EXEC_RUNNING || !ex->stage_open)
		return due;
	for (size_t i = 0; i < stage_len(ex, ex->stage); i++) {
		const struct step_state *st = &ex->steps[ex->stage][i];
		if ((st->status == STEP_RUNNING || st->status == STEP_RETRY_WAIT) && st->due_ms &&
		    st->due_ms < due)
			due = st->due_ms;
		if ((st->status == STEP_RUNNING || st->status == STEP_CANCELLING) &&
		    st->timeout_ms && st->timeout_ms < due)
			due = st->timeout_ms;
	}
	return due;
}

bool engine_in_flight(const struct exec_state *ex, int stage, int step)
{
	if (!valid_step(ex, stage, step) || stage != ex->stage || !ex->stage_open ||
	    is_internal(plan_step(ex, stage, step)))
		return false;
	enum step_status s = ex->steps[stage][step].status;
	return s == STEP_SCHEDULED || s == STEP_RUNNING || s == STEP_CANCELLING;
}

/* ---- commands ---------------------------------------------------------- */

static const char *const command_names[] = {
#define ENGINE_COMMAND_NAME(e, name) name,
	ENGINE_COMMAND_LIST(ENGINE_COMMAND_NAME)
#undef ENGINE_COMMAND_NAME
};

int engine_command_find(const char *name, enum engine_command *ret)
{
	for (size_t i = 0; name && i < sizeof(command_names) / sizeof(*command_names); i++)
		if (!strcmp(name, command_names[i])) {
			*ret = (enum engine_command)i;
			return 0;
		}
	return -1;
}

const char *engine_command_name(enum engine_command cmd)
{
	return command_names[cmd];
}

int engine_on_command(struct exec_state *ex, enum engine_command cmd, json_t *data, int64_t now,
                      struct event_list *out, const char **ret_reason)
{
	switch (cmd) {
	case ENGINE_APPROVE:
	case ENGINE_REJECT: {
		json_t *s = json_object_get(data, "stage"), *j = json_object_get(data, "step");
		if (!json_is_integer(s) || !json_is_integer(j)) {
			*ret_reason = "the command names no step";
			json_decref(data);
			return SP_EINVAL;
		}
		int stage = (int)json_integer_value(s), step = (int)json_integer_value(j);
		json_object_del(data, "stage");
		json_object_del(data, "step");
		return engine_on_decision(ex, stage, step, cmd == ENGINE_APPROVE, data, now, out,
		                          ret_reason);
	}
	case ENGINE_ABORT:
		return engine_on_abort(ex, data, now, out, ret_reason);
	case ENGINE_RETRY:
		return engine_on_redrive(ex, data, now, out, ret_reason);
	}
	json_decref(data);
	*ret_reason = "unknown command";
	return SP_EINVAL;
}
