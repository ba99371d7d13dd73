/*
 * report.c - an execution as JSON (see report.h).
 */
#include "runtime/report.h"

#include "util/alloc.h"
#include "util/strbuf.h"

#include <stdlib.h>
#include <string.h>

json_t *exec_row_json(const struct exec_row *r)
{
	return json_pack("{ss ss ss? ss? ss? ss? sI sI sI ss?}", "id", r->id, "status", r->status,
	                 "plan", r->plan_name, "environment", r->environment, "planFile",
	                 r->plan_file, "startedBy", r->started_by, "createdMs",
	                 (json_int_t)r->created_ms, "updatedMs", (json_int_t)r->updated_ms,
	                 "events", (json_int_t)r->last_seq, "waitingFor", r->waiting);
}

/* What one step of the history says about itself, gathered in one pass. */
struct step_facts {
	const char *error;      /* the last failed attempt's error, NULL once it succeeds */
	const json_t *work;     /* latest StepStarted handle naming remote work */
	const json_t *progress; /* latest Notice of the attempt (build phase ...) */
	int64_t started_ms;     /* the current attempt's StepStarted */
};

/* Whether the data of a step's StepStarted names remote work (its type says). */
static bool names_work(const struct plan_step *ps, const json_t *data)
{
	if (!ps->type->work_summary)
		return false;
	struct strbuf sb = STRBUF_INIT;
	ps->type->work_summary(data, true, &sb);
	bool named = sb.len > 0;
	strbuf_release(&sb);
	return named;
}

static struct step_facts *gather(const struct loaded_exec *le, size_t **ret_offsets)
{
	size_t *offsets = xcalloc(le->plan->nstages ? le->plan->nstages : 1, sizeof(*offsets));
	size_t total = 0;
	for (size_t i = 0; i < le->plan->nstages; i++) {
		offsets[i] = total;
		total += le->plan->stages[i].nsteps;
	}
	struct step_facts *f = xcalloc(total ? total : 1, sizeof(*f));
	for (size_t i = 0; i < le->history.len; i++) {
		const struct event *e = &le->history.items[i];
		if (e->stage < 0 || e->step < 0)
			continue;
		struct step_facts *sf = &f[offsets[e->stage] + (size_t)e->step];
		switch (e->type) {
		case EV_STEP_STARTED:
			sf->started_ms = e->time_ms;
			sf->progress = NULL;
			if (names_work(&le->plan->stages[e->stage].steps[e->step], e->data))
				sf->work = e->data;
			break;
		case EV_NOTICE:
			sf->progress = e->data;
			break;
		case EV_STEP_FAILED:
		case EV_STEP_TIMED_OUT:
			sf->error = json_string_value(json_object_get(e->data, "error"));
			break;
		case EV_STEP_SUCCEEDED:
			sf->error = NULL;
			break;
		default:
			break;
		}
	}
	*ret_offsets = offsets;
	return f;
}

/* "approval by alice, bob", "its timer", "build ... in phase BUILD": the
 * step type's words (its waiting_for hook), else the generic ones. */
static void waiting_for(const struct plan_step *ps, const struct step_state *st,
                        const struct step_facts *sf, struct strbuf *out)
{
	if (st->status == STEP_RETRY_WAIT) {
		strbuf_addstr(out, "its next attempt");
		return;
	}
	if (st->status != STEP_RUNNING && st->status != STEP_SCHEDULED &&
	    st->status != STEP_CANCELLING)
		return;
	struct step_view view = {
		.cancelling = st->status == STEP_CANCELLING,
		.work = sf->work,
		.progress = sf->progress,
	};
	if (ps->type->waiting_for)
		ps->type->waiting_for(ps->node, &view, out);
	if (!out->len)
		strbuf_addstr(out, view.cancelling ? "its work to stop" : "its work to end");
}

/*
 * What the report says of a step beyond its state: how far its approvals
 * have got (steps that take decisions), what names its remote work, and
 * whether its due time is a deadline - so that readers (the dashboard)
 * need not know step types.
 */
static void add_step_extras(json_t *step, const struct plan_step *ps, const struct step_state *t,
                            const struct step_facts *sf)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	if (rule) {
		json_t *by = json_array();
		for (int k = 0; k < t->napproved; k++)
			json_array_append_new(by, json_string(t->approved_by[k]));
		json_object_set_new(step, "approvals",
		                    json_pack("{sisO}", "needed", rule->min_approvals, "by", by));
		json_decref(by);
	}
	if (sf->work) {
		struct strbuf name = STRBUF_INIT;
		ps->type->work_summary(sf->work, true, &name);
		json_object_set_new(step, "workName", json_string(name.buf));
		strbuf_release(&name);
	}
	json_object_set_new(step, "dueIsDeadline", json_boolean(!t->due_ms && t->timeout_ms));
}

json_t *execution_report(const struct exec_row *row, const struct loaded_exec *le)
{
	const struct exec_state *s = &le->state;
	size_t *offsets;
	struct step_facts *facts = gather(le, &offsets);
	json_t *stages = json_array();
	for (size_t i = 0; i < le->plan->nstages; i++) {
		const struct plan_stage *ps = &le->plan->stages[i];
		json_t *steps = json_array();
		for (size_t j = 0; j < ps->nsteps; j++) {
			const struct step_state *t = &s->steps[i][j];
			const struct step_facts *sf = &facts[offsets[i] + j];
			struct strbuf w = STRBUF_INIT;
			waiting_for(&ps->steps[j], t, sf, &w);
			json_array_append_new(
			    steps, json_pack("{ss ss ss si sI sI sI ss? sO? sO? ss?}", "name",
			                     ps->steps[j].name, "type", ps->steps[j].type->name,
			                     "state", step_status_name(t->status), "attempts",
			                     t->attempt, "startedMs", (json_int_t)t->started_ms,
			                     "endedMs", (json_int_t)t->ended_ms, "dueMs",
			                     (json_int_t)(t->due_ms ? t->due_ms : t->timeout_ms),
			                     "error", sf->error, "work", sf->work, "progress",
			                     sf->progress, "waitingFor", w.len ? w.buf : NULL));
			strbuf_release(&w);
			add_step_extras(json_array_get(steps, json_array_size(steps) - 1),
			                &ps->steps[j], t, sf);
		}
		const char *state = (int)i < s->stage           ? "SUCCEEDED"
		                    : (int)i > s->stage         ? "PENDING"
		                    : s->stage_open             ? "RUNNING"
		                    : s->status == EXEC_RUNNING ? "PENDING"
		                                                : exec_status_name(s->status);
		json_array_append_new(stages,
		                      json_pack("{ss ss sb so}", "name", ps->name, "state", state,
		                                "failFast", ps->fail_fast, "steps", steps));
	}
	free(facts);
	free(offsets);
	json_t *doc = exec_row_json(row);
	json_object_set_new(doc, "status", json_string(exec_status_name(s->status)));
	json_object_set_new(doc, "startedMs", json_integer(s->started_ms));
	json_object_set_new(doc, "finishedMs", json_integer(s->finished_ms));
	if (s->abort_ms)
		json_object_set_new(doc, "abort",
		                    json_pack("{ss? ss? sI}", "by", s->aborted_by, "reason",
		                              s->abort_reason, "timeMs", (json_int_t)s->abort_ms));
	json_object_set_new(doc, "stages", stages);
	return doc;
}
