/*
 * history.c - loading executions back from the store (see history.h).
 */
#include "runtime/history.h"

#include "core/policy.h"
#include "plan/step-type.h"
#include "plan/validate.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

int plan_from_stored(const json_t *plan_json, struct plan **ret, struct strbuf *err)
{
	char *text = json_dumps(plan_json, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text) {
		strbuf_addstr(err, "the stored plan is missing");
		return SP_ESTORE;
	}
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	int r = doc_parse("stored plan", text, strlen(text), DOC_JSONC, &doc, &dl);
	free(text);
	if (r == 0)
		r = plan_validate(doc, true, &dl);
	if (r < 0) {
		strbuf_addf(err, "the stored plan is invalid: %s",
		            dl.len ? dl.items[0].message : "unreadable");
		diag_list_release(&dl);
		doc_free(doc);
		return SP_ESTORE;
	}
	diag_list_release(&dl);
	*ret = plan_build(doc);
	return 0;
}

int execution_load(struct store *st, const char *id, struct loaded_exec *out, struct strbuf *err)
{
	memset(out, 0, sizeof(*out));
	int r = store_history(st, id, 0, &out->history, err);
	if (r == 0 &&
	    (out->history.len == 0 || out->history.items[0].type != EV_EXECUTION_STARTED)) {
		strbuf_addf(err, "execution %s has no history", id);
		r = SP_ENOENT;
	}
	if (r == 0)
		r = plan_from_stored(json_object_get(out->history.items[0].data, "plan"),
		                     &out->plan, err);
	if (r < 0) {
		event_list_release(&out->history);
		return r;
	}
	out->id = xstrdup(id);
	const char *wd = json_string_value(json_object_get(out->history.items[0].data, "workdir"));
	out->workdir = xstrdup(wd && *wd ? wd : "/");
	out->from_inbox = started_by_inbox(
	    json_string_value(json_object_get(out->history.items[0].data, "startedBy")));
	exec_state_init(&out->state, out->id, out->plan);
	for (size_t i = 0; i < out->history.len; i++) {
		if (engine_apply(&out->state, &out->history.items[i]) < 0) {
			strbuf_addf(err, "the history of %s is malformed at event %lld (%s)", id,
			            (long long)out->history.items[i].seq,
			            event_type_name(out->history.items[i].type));
			loaded_exec_release(out);
			return SP_ESTORE;
		}
	}
	return 0;
}

const char *loaded_exec_secrets_problem(const struct loaded_exec *le)
{
	if (!le->history.len)
		return NULL;
	return json_string_value(json_object_get(le->history.items[0].data, "secretsUnavailable"));
}

void loaded_exec_release(struct loaded_exec *le)
{
	exec_state_release(&le->state);
	event_list_release(&le->history);
	plan_free(le->plan);
	free(le->workdir);
	free(le->id);
	memset(le, 0, sizeof(*le));
}

void execution_recover(struct exec_state *state, const struct event_list *history, int64_t now,
                       struct event_list *out)
{
	if (!state->stage_open || state->status != EXEC_RUNNING)
		return;
	int stage = state->stage;
	const struct plan_stage *ps = &state->plan->stages[stage];
	for (int s = 0; (size_t)s < ps->nsteps; s++) {
		if (!engine_in_flight(state, stage, s))
			continue;
		int attempt = state->steps[stage][s].attempt;
		const struct step_type *type = ps->steps[s].type;
		if (type->start && (type->flags & STEP_REATTACH))
			continue;
		const struct event *started =
		    execution_find_event(history, EV_STEP_STARTED, stage, s, attempt);
		const json_t *handle = started ? started->data : NULL;
		if (handle && type->reap)
			type->reap(handle);
		const char *reason;
		engine_on_ended(state, stage, s, attempt, false,
		                json_pack("{ss}", "error",
		                          "interrupted: the steppy process running this attempt "
		                          "stopped before it ended"),
		                now, out, &reason);
	}
}

const struct event *execution_find_event(const struct event_list *history, enum event_type type,
                                         int stage, int step, int attempt)
{
	for (size_t i = history->len; i-- > 0;) {
		const struct event *ev = &history->items[i];
		if (ev->type == type && ev->stage == stage && ev->step == step &&
		    ev->attempt == attempt)
			return ev;
	}
	return NULL;
}

char *execution_waiting(const struct plan *plan, const struct exec_state *s)
{
	if (s->status != EXEC_RUNNING || !s->stage_open)
		return NULL;
	struct strbuf sb = STRBUF_INIT;
	const struct plan_stage *stage = &plan->stages[s->stage];
	for (size_t i = 0; i < stage->nsteps; i++) {
		const struct step_state *st = &s->steps[s->stage][i];
		if (st->status != STEP_RUNNING || !(stage->steps[i].type->flags & STEP_DECISION))
			continue;
		strbuf_addf(&sb, "%sapproval of \"%s\"", sb.len ? ", " : "", stage->steps[i].name);
		int need = approval_needed(&stage->steps[i]);
		if (need > 1 || st->napproved) {
			strbuf_addstr(&sb, " (");
			approval_progress(st->napproved, need, st->approved_by, true, &sb);
			strbuf_addch(&sb, ')');
		}
	}
	if (!sb.len) {
		strbuf_release(&sb);
		return NULL;
	}
	return strbuf_detach(&sb, NULL);
}

void execution_append_item(const char *id, const struct plan *plan, const struct exec_state *state,
                           const struct event_list *events, struct store_append_item *item,
                           char **ret_waiting)
{
	int64_t due = engine_next_due(state);
	*ret_waiting = execution_waiting(plan, state);
	*item = (struct store_append_item){
		.id = id,
		.events = events->items,
		.nevents = events->len,
		.status = exec_status_name(state->status),
		.next_due_ms = due == INT64_MAX ? 0 : due,
		.waiting = *ret_waiting,
	};
}
