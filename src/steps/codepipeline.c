/*
 * codepipeline.c - the CodePipeline and CodePipelineNoWait step types: start
 * an AWS CodePipeline execution (with pipeline variables and source
 * revisions); CodePipeline waits for it to end and can approve its manual
 * approval actions, CodePipelineNoWait only waits for the start.
 */
#include "plan/step-type.h"

#include "util/strmap.h"

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
	.waiting_for = codepipeline_waiting_for,
	.work_summary = codepipeline_work_summary,
	.outside_wait = codepipeline_outside_wait,
};
