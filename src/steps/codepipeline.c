/*
 * codepipeline.c - the CodePipeline and CodePipelineNoWait step types: start
 * an AWS CodePipeline execution (with pipeline variables and source
 * revisions); CodePipeline waits for it to end and can approve its manual
 * approval actions, CodePipelineNoWait only waits for the start.
 *
 * Running them:
 * StartPipelineExecution carries the attempt's idempotency key as
 * clientRequestToken, so a process that crashed before recording the
 * execution id gets the same execution back when it starts the attempt
 * again. The execution id is recorded in StepStarted; from then on a later
 * process only watches it: GetPipelineExecution every 5 s, and with
 * approveApprovalStages, GetPipelineState to find manual approval actions
 * of this execution waiting for a decision, approved with PutApprovalResult
 * (only in the listed stages when a list is given). A manual approval that
 * steppy does not decide is reported as the attempt's progress (a Notice
 * with "manualApproval": {stage, action}, then null once it has ended), so
 * people are told where the release waits. Succeeded is success;
 * Failed, Stopped, Superseded and Cancelled are failures. Abort and timeout
 * call StopPipelineExecution and wait for the execution to stop.
 */
#include "steps/aws-step.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static const char *const revision_types[] = { "COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID",
	                                      "S3_OBJECT_KEY", NULL };

static void check_pattern(struct vctx *v, const struct doc_node *value, const char *set,
                          const char *what)
{
	if (value->kind == DOC_STRING && !v_deferred(v, value) && value->u.string.len &&
	    !str_all_in(value->u.string.s, set))
		v_error(v, value->pos, NULL, "\"%.60s\" is not a valid %s", value->u.string.s,
		        what);
}

static void check_pipeline_name(struct vctx *v, const struct doc_node *value)
{
	check_pattern(v, value, ALNUM ".@-_",
	              "pipeline name (letters, digits and . @ - _, at most 100 characters)");
}

static void check_variable_name(struct vctx *v, const struct doc_node *value)
{
	check_pattern(v, value, ALNUM "@-_", "pipeline variable name (letters, digits and @ - _)");
}

/* Checks a list of objects against fields; names listed twice under key are errors. */
static void check_object_list(struct vctx *v, const struct doc_node *list,
                              const struct field_spec *fields, const char *what, const char *key)
{
	const struct field_spec *const tables[] = { fields, NULL };
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < list->u.array.len; i++) {
		const struct doc_node *item = list->u.array.items[i];
		size_t saved = v_push_index(v, i);
		const char *name =
		    schema_check_object(v, item, tables, what) ? step_string(item, key) : NULL;
		if (name && v_first_seen(&seen, name, item)) {
			size_t s2 = v_push(v, key);
			v_error(v, doc_pos_in(item, doc_get(item, key)), NULL,
			        "\"%s\" is given twice", name);
			v_pop(v, s2);
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static void check_variables(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "name",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 128,
		  .check = check_variable_name },
		{ .name = "value",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 1000 },
		{ .name = NULL },
	};
	check_object_list(v, value, fields, "a pipeline variable", "name");
}

static void check_source_revisions(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "actionName",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 100 },
		{ .name = "revisionType",
		  .types = T_STRING,
		  .flags = F_REQUIRED,
		  .choices = revision_types },
		{ .name = "revisionValue",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 1500 },
		{ .name = NULL },
	};
	check_object_list(v, value, fields, "a source revision", "actionName");
}

static void check_approve(struct vctx *v, const struct doc_node *value)
{
	if (value->kind != DOC_ARRAY)
		return;
	if (value->u.array.len == 0)
		v_error(v, value->pos, NULL,
		        "\"approveApprovalStages\" lists no stages; use false to approve none");
	else
		check_string_list(v, value);
}

static const struct field_spec codepipeline_fields[] = {
	{ .name = "codePipelineName",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 100,
	  .check = check_pipeline_name },
	{ .name = "approveApprovalStages", .types = T_BOOL | T_ARRAY, .check = check_approve },
	{ .name = "variables", .types = T_ARRAY, .check = check_variables },
	{ .name = "sourceRevisions", .types = T_ARRAY, .check = check_source_revisions },
	{ .name = NULL },
};

static void validate_nowait(struct vctx *v, const struct doc_node *step)
{
	const struct doc_member *m = doc_member(step, "approveApprovalStages");
	if (m && !(m->value->kind == DOC_BOOL && !m->value->u.boolean)) {
		size_t saved = v_push(v, "approveApprovalStages");
		v_error(v, m->key_pos, NULL,
		        "a CodePipelineNoWait step does not wait, so it cannot approve stages; use "
		        "a CodePipeline step");
		v_pop(v, saved);
	}
}

static void describe_common(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "pipeline", "%s", step_string(step, "codePipelineName"));
	const struct doc_node *vars = doc_get(step, "variables");
	for (size_t i = 0; vars && i < vars->u.array.len; i++)
		describe_line(out, i ? "" : "variables", "%s=%s",
		              step_string(vars->u.array.items[i], "name"),
		              step_string(vars->u.array.items[i], "value"));
	const struct doc_node *revs = doc_get(step, "sourceRevisions");
	for (size_t i = 0; revs && i < revs->u.array.len; i++) {
		const struct doc_node *r = revs->u.array.items[i];
		describe_line(out, i ? "" : "revisions", "%s: %s %s", step_string(r, "actionName"),
		              step_string(r, "revisionType"), step_string(r, "revisionValue"));
	}
	if (!revs)
		describe_line(out, "revisions", "the pipeline's latest source revisions");
}

static void describe_codepipeline(const struct doc_node *step, struct strbuf *out)
{
	describe_common(step, out);
	const struct doc_node *approve = doc_get(step, "approveApprovalStages");
	if (!approve || (approve->kind == DOC_BOOL && !approve->u.boolean)) {
		describe_line(out, "approvals", "left to people (steppy approves none)");
	} else if (approve->kind == DOC_BOOL) {
		describe_line(out, "approvals", "steppy approves every manual approval action");
	} else {
		struct strbuf list = STRBUF_INIT;
		for (size_t i = 0; i < approve->u.array.len; i++)
			strbuf_addf(&list, "%s%s", i ? ", " : "",
			            approve->u.array.items[i]->u.string.s);
		describe_line(out, "approvals", "steppy approves those in stages %s", list.buf);
		strbuf_release(&list);
	}
	describe_line(out, "waits", "until the execution ends; fails unless it Succeeded");
}

static void describe_codepipeline_nowait(const struct doc_node *step, struct strbuf *out)
{
	describe_common(step, out);
	describe_line(out, "waits", "only for the execution to start");
}

/* ---- configuration ------------------------------------------------------ */

/* A CodePipeline or CodePipelineNoWait step, read once when the plan is built. */
struct codepipeline_config {
	const char *name;            /* codePipelineName (borrowed from the plan) */
	bool approve_given;          /* approveApprovalStages is set (even to false) */
	bool approve_all;            /* approveApprovalStages: true */
	size_t napprove;             /* approveApprovalStages: [stage, ...] */
	const char **approve_stages; /* owned array; strings borrowed */
	json_t *variables;           /* owned: as StartPipelineExecution takes them, or NULL */
	json_t *source_revisions;    /* owned, likewise */
};

static json_t *name_value_list(const struct doc_node *list, const char *const *keys)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < list->u.array.len; i++) {
		json_t *o = json_object();
		for (int k = 0; keys[k]; k++)
			json_object_set_new(
			    o, keys[k], json_string(step_string(list->u.array.items[i], keys[k])));
		json_array_append_new(arr, o);
	}
	return arr;
}

static void *bind_codepipeline(const struct doc_node *step)
{
	static const char *const var_keys[] = { "name", "value", NULL };
	static const char *const rev_keys[] = { "actionName", "revisionType", "revisionValue",
		                                NULL };
	struct codepipeline_config *c = xcalloc(1, sizeof(*c));
	c->name = step_string(step, "codePipelineName");
	const struct doc_node *approve = doc_get(step, "approveApprovalStages");
	c->approve_given = approve != NULL;
	if (approve && approve->kind == DOC_BOOL) {
		c->approve_all = approve->u.boolean;
	} else if (approve) {
		c->napprove = approve->u.array.len;
		c->approve_stages = xcalloc(c->napprove + 1, sizeof(*c->approve_stages));
		for (size_t i = 0; i < c->napprove; i++)
			c->approve_stages[i] = approve->u.array.items[i]->u.string.s;
	}
	const struct doc_node *vars = doc_get(step, "variables");
	if (vars)
		c->variables = name_value_list(vars, var_keys);
	const struct doc_node *revs = doc_get(step, "sourceRevisions");
	if (revs)
		c->source_revisions = name_value_list(revs, rev_keys);
	return c;
}

static void free_codepipeline(void *config)
{
	struct codepipeline_config *c = config;
	if (!c)
		return;
	free(c->approve_stages);
	json_decref(c->variables);
	json_decref(c->source_revisions);
	free(c);
}

/* ---- the runner ------------------------------------------------------------ */

#define POLL_MS     5000
#define PREFIX      "CodePipeline_20150709"
#define SUMMARY_MAX 512

struct pipeline_run {
	struct attempt *a;
	struct aws *aws;
	struct aws_target target;
	char session[65];
	const char *name;
	const struct codepipeline_config *c; /* the plan's, borrowed */
	char *execution_id;
	char *release; /* "release ID, step NAME" for approval summaries */
	char *waiting; /* "STAGE/ACTION" of the manual approval the execution waits
	                  for that steppy does not decide (reported), or NULL */
	bool nowait, cancel, stop_sent;
	bool no_state; /* GetPipelineState was refused; only needed for approving */
	struct aws_call *call;
	uv_timer_t timer;
};

static void run_close_cb(uv_handle_t *h)
{
	struct pipeline_run *r = h->data;
	free(r->execution_id);
	free(r->release);
	free(r->waiting);
	free(r);
}

static void run_free(struct pipeline_run *r)
{
	if (r->call)
		aws_cancel(r->call);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, run_close_cb);
}

static void end(struct pipeline_run *r, bool ok, json_t *details)
{
	struct attempt *a = r->a;
	run_free(r);
	attempt_ended(a, ok, details);
}

static void poll_later(struct pipeline_run *r, uint64_t ms);

/* Whether steppy approves actions of this pipeline stage. */
static bool approves_stage(const struct pipeline_run *r, const char *stage)
{
	if (r->c->approve_all)
		return true;
	for (size_t i = 0; i < r->c->napprove; i++)
		if (!strcmp(r->c->approve_stages[i], stage))
			return true;
	return false;
}

static void approval_done(void *arg, const struct aws_result *res)
{
	struct pipeline_run *r = arg;
	r->call = NULL;
	if (res->error_code && strcmp(res->error_code, "InvalidApprovalTokenException") != 0 &&
	    strcmp(res->error_code, "ApprovalAlreadyCompletedException") != 0) {
		end(r, false, step_aws_error("CodePipeline PutApprovalResult", res));
		return;
	}
	poll_later(r, 0);
}

/* A failed watching call: a passing error is looked at again later; any
 * other fails the step. Returns true if res failed (and was handled). */
static bool watch_failed(struct pipeline_run *r, const struct aws_result *res, const char *what)
{
	if (!res->error_code)
		return false;
	if (aws_error_retryable(res->error_code, res->status))
		poll_later(r, POLL_MS);
	else
		end(r, false, step_aws_error(what, res));
	return true;
}

static void state_done(void *arg, const struct aws_result *res)
{
	struct pipeline_run *r = arg;
	r->call = NULL;
	/* Looking only for approvals to point out: a role without
	 * codepipeline:GetPipelineState does not fail the step for it. */
	if (res->error_code && !r->c->approve_given &&
	    !aws_error_retryable(res->error_code, res->status)) {
		r->no_state = true;
		poll_later(r, POLL_MS);
		return;
	}
	if (watch_failed(r, res, "CodePipeline GetPipelineState"))
		return;
	json_t *o = aws_result_json(res);
	json_t *stage;
	size_t i;
	const char *wait_stage = NULL, *wait_action = NULL;
	json_array_foreach(json_object_get(o, "stageStates"), i, stage)
	{
		const char *sname = json_string_value(json_object_get(stage, "stageName"));
		const char *exec = json_string_value(json_object_get(
		    json_object_get(stage, "latestExecution"), "pipelineExecutionId"));
		if (!sname || !exec || strcmp(exec, r->execution_id) != 0)
			continue;
		json_t *action;
		size_t k;
		json_array_foreach(json_object_get(stage, "actionStates"), k, action)
		{
			json_t *latest = json_object_get(action, "latestExecution");
			const char *status = json_string_value(json_object_get(latest, "status"));
			const char *token = json_string_value(json_object_get(latest, "token"));
			const char *aname =
			    json_string_value(json_object_get(action, "actionName"));
			if (!status || strcmp(status, "InProgress") != 0 || !token || !aname)
				continue;
			if (!approves_stage(r, sname)) {
				if (!wait_stage) {
					wait_stage = sname;
					wait_action = aname;
				}
				continue;
			}
			char summary[SUMMARY_MAX];
			snprintf(summary, sizeof(summary), "Approved by steppy: %s", r->release);
			json_t *in =
			    json_pack("{sssssss{ssss}ss}", "pipelineName", r->name, "stageName",
			              sname, "actionName", aname, "result", "summary", summary,
			              "status", "Approved", "token", token);
			json_decref(o);
			r->call = aws_json_call(r->aws, &r->target, PREFIX, "PutApprovalResult", in,
			                        approval_done, r);
			return; /* one at a time; the next poll finds any other */
		}
	}
	/* Tell people about an approval they have to give (once per approval). */
	char *now_waiting = wait_stage ? xstrfmt("%s/%s", wait_stage, wait_action) : NULL;
	if (now_waiting ? !r->waiting || strcmp(now_waiting, r->waiting) != 0 : r->waiting != NULL)
		attempt_progress(
		    r->a,
		    json_pack("{ssso}", "pipelineExecutionId", r->execution_id, "manualApproval",
		              wait_stage
		                  ? json_pack("{ssss}", "stage", wait_stage, "action", wait_action)
		                  : json_null()));
	free(r->waiting);
	r->waiting = now_waiting;
	json_decref(o);
	poll_later(r, POLL_MS);
}

static void execution_done(void *arg, const struct aws_result *res)
{
	struct pipeline_run *r = arg;
	r->call = NULL;
	if (watch_failed(r, res, "CodePipeline GetPipelineExecution"))
		return;
	json_t *o = aws_result_json(res);
	json_t *pe = json_object_get(o, "pipelineExecution");
	const char *status = json_string_value(json_object_get(pe, "status"));
	if (!status || !strcmp(status, "InProgress") || !strcmp(status, "Stopping")) {
		bool in_progress = status && !strcmp(status, "InProgress");
		json_decref(o);
		if (in_progress && !r->cancel &&
		    !r->no_state) { /* approvals to give, or to point out */
			r->call = aws_json_call(r->aws, &r->target, PREFIX, "GetPipelineState",
			                        json_pack("{ss}", "name", r->name), state_done, r);
			return;
		}
		poll_later(r, POLL_MS);
		return;
	}
	json_t *details = json_pack("{ssssss}", "pipelineName", r->name, "pipelineExecutionId",
	                            r->execution_id, "status", status);
	const char *why = json_string_value(json_object_get(pe, "statusSummary"));
	bool ok = !strcmp(status, "Succeeded");
	if (!ok) {
		char *msg = xstrfmt("pipeline execution %s %s%s%s", r->execution_id, status,
		                    why ? ": " : "", why ? why : "");
		json_object_set_new(details, "error", json_string(msg));
		free(msg);
	}
	json_decref(o);
	end(r, ok, details);
}

static void poll_cb(uv_timer_t *t)
{
	struct pipeline_run *r = t->data;
	if (r->call)
		return;
	r->call = aws_json_call(
	    r->aws, &r->target, PREFIX, "GetPipelineExecution",
	    json_pack("{ssss}", "pipelineName", r->name, "pipelineExecutionId", r->execution_id),
	    execution_done, r);
}

static void poll_later(struct pipeline_run *r, uint64_t ms)
{
	uv_timer_start(&r->timer, poll_cb, ms, 0);
}

static void stop_done(void *arg, const struct aws_result *res)
{
	struct pipeline_run *r = arg;
	r->call = NULL;
	(void)res; /* the execution may have ended already; polling tells */
	poll_later(r, 0);
}

static void send_stop(struct pipeline_run *r)
{
	r->stop_sent = true;
	uv_timer_stop(&r->timer);
	char reason[200];
	snprintf(reason, sizeof(reason), "stopped by steppy: %s was aborted", r->release);
	r->call =
	    aws_json_call(r->aws, &r->target, PREFIX, "StopPipelineExecution",
	                  json_pack("{sssssbss}", "pipelineName", r->name, "pipelineExecutionId",
	                            r->execution_id, "abandon", 0, "reason", reason),
	                  stop_done, r);
}

static void start_done(void *arg, const struct aws_result *res)
{
	struct pipeline_run *r = arg;
	r->call = NULL;
	if (res->error_code) {
		end(r, false, step_aws_error("CodePipeline StartPipelineExecution", res));
		return;
	}
	json_t *o = aws_result_json(res);
	const char *id = json_string_value(json_object_get(o, "pipelineExecutionId"));
	if (!id) {
		json_decref(o);
		end(r, false,
		    json_pack("{ss}", "error", "StartPipelineExecution answered without an id"));
		return;
	}
	r->execution_id = xstrdup(id);
	json_decref(o);
	json_t *handle =
	    json_pack("{ssss}", "pipelineName", r->name, "pipelineExecutionId", r->execution_id);
	attempt_started(r->a, json_deep_copy(handle));
	if (r->nowait) {
		end(r, true, handle);
		return;
	}
	json_decref(handle);
	if (r->cancel)
		send_stop(r);
	else
		poll_later(r, POLL_MS);
}

/* The key as clientRequestToken allows it: [A-Za-z0-9-], 1 to 128. */
static void request_token(const char *key, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = key; *p && n + 1 < size; p++)
		out[n++] =
		    (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
		        ? *p
		        : '-';
	out[n] = '\0';
}

static int start(struct attempt *a, const struct attempt_info *info, const void *config,
                 void **ret_state, struct strbuf *err)
{
	const struct codepipeline_config *c = config;
	bool nowait = info->step_plan->type->flags & STEP_NO_WAIT;
	struct aws *aws = step_aws_client(info, err);
	if (!aws)
		return SP_EINVAL;
	struct pipeline_run *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->aws = aws;
	r->nowait = nowait;
	r->c = c;
	r->name = c->name;
	r->release = xstrfmt("release %s, step \"%s\"", info->execution_id, info->step_plan->name);
	step_aws_target(info, "codepipeline", &r->target, r->session);
	uv_timer_init(info->svc->loop, &r->timer);
	r->timer.data = r;
	*ret_state = r;
	const char *id = json_string_value(json_object_get(info->handle, "pipelineExecutionId"));
	if (id) {
		r->execution_id = xstrdup(id);
		if (nowait)
			end(r, true, json_deep_copy(info->handle));
		else
			poll_later(r, 0);
		return 0;
	}
	if (!info->idempotency_key) {
		run_free(r);
		strbuf_addstr(err, "the attempt has no idempotency key (a malformed history)");
		return SP_EINVAL;
	}
	char token[129];
	request_token(info->idempotency_key, token, sizeof(token));
	json_t *in = json_pack("{ssss}", "name", r->name, "clientRequestToken", token);
	if (c->variables)
		json_object_set_new(in, "variables", json_deep_copy(c->variables));
	if (c->source_revisions)
		json_object_set_new(in, "sourceRevisions", json_deep_copy(c->source_revisions));
	r->call =
	    aws_json_call(r->aws, &r->target, PREFIX, "StartPipelineExecution", in, start_done, r);
	return 0;
}

static void cancel(struct attempt *a, void *state)
{
	(void)a;
	struct pipeline_run *r = state;
	if (r->cancel)
		return;
	r->cancel = true;
	if (r->execution_id && !r->stop_sent) {
		if (r->call) {
			aws_cancel(r->call);
			r->call = NULL;
		}
		send_stop(r);
	}
}

static void detach(void *state)
{
	run_free(state);
}

/* "pipeline execution ID", and a manual approval it waits at. */
static void codepipeline_waiting_for(const struct doc_node *step, const struct step_view *view,
                                     struct strbuf *out)
{
	(void)step;
	const char *id = json_string_value(json_object_get(view->work, "pipelineExecutionId"));
	if (!id)
		return;
	strbuf_addf(out, "pipeline execution %s", id);
	/* a manual approval inside the pipeline that steppy does not give */
	const json_t *ma = json_object_get(view->progress, "manualApproval");
	if (json_is_object(ma))
		strbuf_addf(out, ", at the manual approval \"%s\" in stage \"%s\"",
		            json_string_value(json_object_get(ma, "action")),
		            json_string_value(json_object_get(ma, "stage")));
}

/* A manual approval the pipeline waits at (from the runner's Notice). */
static void codepipeline_outside_wait(const struct doc_node *step, const json_t *notice, bool brief,
                                      struct strbuf *out)
{
	const json_t *ma = json_object_get(notice, "manualApproval");
	if (!json_is_object(ma))
		return;
	const char *stage = json_string_value(json_object_get(ma, "stage"));
	const char *action = json_string_value(json_object_get(ma, "action"));
	const char *pipeline = step_string(step, "codePipelineName");
	if (brief) {
		strbuf_addf(out,
		            "waits for the manual approval \"%s\" in stage \"%s\" (CodePipeline "
		            "console, or aws codepipeline put-approval-result)",
		            action, stage);
		return;
	}
	strbuf_addf(out, "pipeline %s waits for the manual approval \"%s\" in stage \"%s\"\n",
	            pipeline, action, stage);
	strbuf_addf(out,
	            "decide in the CodePipeline console, or: aws codepipeline put-approval-result "
	            "--pipeline-name %s --stage-name %s --action-name %s --result "
	            "summary=...,status=Approved --token TOKEN (from aws codepipeline "
	            "get-pipeline-state --name %s)\n",
	            pipeline, stage, action, pipeline);
	strbuf_addstr(out, "(steppy approves it itself when the step lists the stage in "
	                   "approveApprovalStages)");
}

/* "pipeline NAME execution ID"; brief: "NAME ID". */
static void codepipeline_work_summary(const json_t *work, bool brief, struct strbuf *out)
{
	const char *id = json_string_value(json_object_get(work, "pipelineExecutionId"));
	const char *name = json_string_value(json_object_get(work, "pipelineName"));
	if (id)
		strbuf_addf(out, brief ? "%s %s" : "pipeline %s execution %s",
		            name ? name : "(null)", id);
}

const struct step_type step_codepipeline = {
	.name = "CodePipeline",
	.summary = "start an AWS CodePipeline execution and wait for it to end",
	.flags = STEP_AWS | STEP_RETRYABLE | STEP_REATTACH,
	.fields = codepipeline_fields,
	.describe = describe_codepipeline,
	.bind = bind_codepipeline,
	.free_config = free_codepipeline,
	.start = start,
	.cancel = cancel,
	.detach = detach,
	.waiting_for = codepipeline_waiting_for,
	.work_summary = codepipeline_work_summary,
	.outside_wait = codepipeline_outside_wait,
};

const struct step_type step_codepipeline_nowait = {
	.name = "CodePipelineNoWait",
	.summary = "start an AWS CodePipeline execution and move on",
	.flags = STEP_AWS | STEP_RETRYABLE | STEP_NO_WAIT | STEP_REATTACH,
	.fields = codepipeline_fields,
	.validate = validate_nowait,
	.describe = describe_codepipeline_nowait,
	.bind = bind_codepipeline,
	.free_config = free_codepipeline,
	.start = start,
	.cancel = cancel,
	.detach = detach,
	.waiting_for = codepipeline_waiting_for,
	.work_summary = codepipeline_work_summary,
	.outside_wait = codepipeline_outside_wait,
};
