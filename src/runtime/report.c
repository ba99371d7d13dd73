/*
 * report.c - an execution as JSON (see report.h).
 */
#include "runtime/report.h"

#include "steps/human.h"
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
			if (json_object_get(e->data, "buildId") ||
			    json_object_get(e->data, "pipelineExecutionId"))
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

/* "approval by alice, bob", "the timer (due ...)", "build ... in phase BUILD". */
static void waiting_for(const struct plan_step *ps, const struct step_state *st,
                        const struct step_facts *sf, struct strbuf *out)
{
	const char *type = ps->type->name;
	if (st->status == STEP_RETRY_WAIT) {
		strbuf_addstr(out, "its next attempt");
		return;
	}
	if (st->status != STEP_RUNNING && st->status != STEP_SCHEDULED &&
	    st->status != STEP_CANCELLING)
		return;
	if (!strcmp(type, "Human")) {
		const struct doc_node *approvers = doc_get(ps->node, "approvers");
		strbuf_addstr(out, "approval");
		for (size_t i = 0; approvers && i < approvers->u.array.len; i++)
			strbuf_addf(out, "%s%s", i ? ", " : " by ",
			            approvers->u.array.items[i]->u.string.s);
		const json_t *to = json_object_get(sf->progress, "channels");
		for (size_t i = 0; i < json_array_size(to); i++)
			strbuf_addf(out, "%s%s", i ? ", " : " (asked through ",
			            json_string_value(json_array_get(to, i)));
		if (json_array_size(to))
			strbuf_addch(out, ')');
	} else if (!strcmp(type, "Wait")) {
		strbuf_addstr(out, "its timer");
	} else if (sf->work && json_object_get(sf->work, "buildId")) {
		strbuf_addf(out, "build %s",
		            json_string_value(json_object_get(sf->work, "buildId")));
		const char *phase = json_string_value(json_object_get(sf->progress, "phase"));
		if (phase)
			strbuf_addf(out, " in phase %s", phase);
	} else if (sf->work && json_object_get(sf->work, "pipelineExecutionId")) {
		strbuf_addf(out, "pipeline execution %s",
		            json_string_value(json_object_get(sf->work, "pipelineExecutionId")));
		/* a manual approval inside the pipeline that steppy does not give */
		const json_t *ma = json_object_get(sf->progress, "manualApproval");
		if (json_is_object(ma))
			strbuf_addf(out, ", at the manual approval \"%s\" in stage \"%s\"",
			            json_string_value(json_object_get(ma, "action")),
			            json_string_value(json_object_get(ma, "stage")));
	} else if (st->status == STEP_CANCELLING) {
		strbuf_addstr(out, "its work to stop");
	} else {
		strbuf_addf(out, "its %s to end", !strcmp(type, "Exec") ? "command" : "work");
	}
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
			if (!strcmp(ps->steps[j].type->name, "Human")) {
				json_t *by = json_array();
				for (int k = 0; k < t->napproved; k++)
					json_array_append_new(by, json_string(t->approved_by[k]));
				json_object_set_new(
				    json_array_get(steps, json_array_size(steps) - 1), "approvals",
				    json_pack("{sisO}", "needed",
				              human_min_approvals(ps->steps[j].node), "by", by));
				json_decref(by);
			}
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
