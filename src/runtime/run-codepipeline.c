/*
 * run-codepipeline.c - CodePipeline and CodePipelineNoWait steps.
 *
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
#include "runtime/run-aws.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

#define POLL_MS     5000
#define PREFIX      "CodePipeline_20150709"
#define SUMMARY_MAX 512

struct pipeline_run {
	struct attempt *a;
	struct aws *aws;
	struct aws_target target;
	char session[65];
	const char *name;
	const struct doc_node *approve; /* approveApprovalStages, or NULL */
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
	if (!r->approve)
		return false;
	if (r->approve->kind == DOC_BOOL)
		return r->approve->u.boolean;
	for (size_t i = 0; i < r->approve->u.array.len; i++)
		if (!strcmp(r->approve->u.array.items[i]->u.string.s, stage))
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
	if (res->error_code && !r->approve && !aws_error_retryable(res->error_code, res->status)) {
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

static int start(struct attempt *a, const struct attempt_info *info, void **ret_state,
                 struct strbuf *err)
{
	bool nowait = info->step_plan->type->flags & STEP_NO_WAIT;
	const struct doc_node *node = info->step_plan->node;
	struct pipeline_run *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->aws = info->aws;
	r->nowait = nowait;
	r->name = step_string(node, "codePipelineName");
	r->approve = doc_get(node, "approveApprovalStages");
	r->release = xstrfmt("release %s, step \"%s\"", info->execution_id, info->step_plan->name);
	step_aws_target(info, "codepipeline", &r->target, r->session);
	uv_timer_init(info->loop, &r->timer);
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
		return -1;
	}
	char token[129];
	request_token(info->idempotency_key, token, sizeof(token));
	json_t *in = json_pack("{ssss}", "name", r->name, "clientRequestToken", token);
	static const char *const var_keys[] = { "name", "value", NULL };
	static const char *const rev_keys[] = { "actionName", "revisionType", "revisionValue",
		                                NULL };
	const struct doc_node *vars = doc_get(node, "variables");
	if (vars)
		json_object_set_new(in, "variables", name_value_list(vars, var_keys));
	const struct doc_node *revs = doc_get(node, "sourceRevisions");
	if (revs)
		json_object_set_new(in, "sourceRevisions", name_value_list(revs, rev_keys));
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

const struct step_runner codepipeline_runner = {
	.type = "CodePipeline",
	.start = start,
	.cancel = cancel,
	.reattach = true,
	.detach = detach,
};

const struct step_runner codepipeline_nowait_runner = {
	.type = "CodePipelineNoWait",
	.start = start,
	.cancel = cancel,
	.reattach = true,
	.detach = detach,
};
