/*
 * codebuild.c - the CodeBuild and CodeBuildNoWait step types: start an AWS
 * CodeBuild project on a branch, tag or commit, with environment overrides;
 * CodeBuild waits for the build to end, CodeBuildNoWait only for its start.
 * This file is their plan language, their typed config (bind) and their
 * step_type tables; the runner is codebuild-run.c (the two together are
 * 1,000 lines), and codebuild.h is what the two share.
 */
#include "steps/codebuild.h"

#include "util/alloc.h"
#include "util/strmap.h"

#include <stdlib.h>
#include <string.h>

#define HEX "0123456789abcdefABCDEF"

static const char *const source_kinds[] = { "branch", "tag", "commit", NULL };
static const char *const env_types[] = { "PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER", NULL };

/* A branch or tag name as git allows it (git check-ref-format, roughly). */
static const char *bad_ref_reason(const char *s)
{
	if (!*s)
		return "is empty";
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7F || strchr("~^:?*[\\", *p))
			return "contains a space, control character or one of ~ ^ : ? * [ \\";
	if (strstr(s, "..") || strstr(s, "@{") || strstr(s, "//"))
		return "contains \"..\", \"@{\" or \"//\"";
	size_t n = strlen(s);
	if (s[0] == '/' || s[n - 1] == '/' || s[n - 1] == '.' || s[0] == '-')
		return "starts with / or -, or ends with / or .";
	if (n >= 5 && !strcmp(s + n - 5, ".lock"))
		return "ends with .lock";
	return NULL;
}

static void check_source_version(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING) {
		if (!v_deferred(v, value) && value->u.string.len == 0)
			v_error(v, value->pos, NULL, "\"sourceVersion\" must not be empty");
		return;
	}
	static const struct field_spec fields[] = {
		{ .name = "type", .types = T_STRING, .flags = F_REQUIRED, .choices = source_kinds },
		{ .name = "value", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	if (!schema_check_object(v, value, tables, "a sourceVersion"))
		return;
	const char *kind = step_string(value, "type");
	const struct doc_node *val = doc_get(value, "value");
	if (!kind || !val || val->kind != DOC_STRING || val->u.string.len == 0 ||
	    v_deferred(v, val))
		return;
	size_t saved = v_push(v, "value");
	const char *s = val->u.string.s;
	if (!strcmp(kind, "commit")) {
		size_t n = strlen(s);
		if (n < 7 || n > 40 || !str_all_in(s, HEX))
			v_error(
			    v, val->pos, NULL,
			    "a commit must be a git commit id (7 to 40 hexadecimal digits), found "
			    "\"%.60s\"",
			    s);
	} else if (strcmp(kind, "branch") == 0 || strcmp(kind, "tag") == 0) {
		const char *why = bad_ref_reason(s);
		if (why)
			v_error(v, val->pos, NULL, "\"%.60s\" is not a valid %s name: it %s", s,
			        kind, why);
	}
	v_pop(v, saved);
}

static void check_env_overrides(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "name", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
		{ .name = "value", .types = T_STRING, .flags = F_REQUIRED },
		{ .name = "type", .types = T_STRING, .choices = env_types },
		{ .name = "secret", .types = T_BOOL },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *item = value->u.array.items[i];
		size_t saved = v_push_index(v, i);
		if (schema_check_object(v, item, tables, "an environment variable override")) {
			const struct doc_node *name = doc_get(item, "name");
			if (name && name->kind == DOC_STRING && !v_deferred(v, name)) {
				size_t s2 = v_push(v, "name");
				if (!strncmp(name->u.string.s, "CODEBUILD_", 10))
					v_error(v, name->pos, NULL,
					        "names starting with CODEBUILD_ are reserved by "
					        "CodeBuild");
				if (v_first_seen(&seen, name->u.string.s, name))
					v_error(v, doc_pos_in(item, name), NULL,
					        "environment variable \"%s\" is overridden twice",
					        name->u.string.s);
				v_pop(v, s2);
			}
			const char *type = step_string(item, "type");
			const struct doc_node *val = doc_get(item, "value");
			const struct doc_node *secret = doc_get(item, "secret");
			if (secret && secret->kind == DOC_BOOL && secret->u.boolean && type &&
			    strcmp(type, "PLAINTEXT") != 0) {
				size_t s2 = v_push(v, "secret");
				v_error(
				    v, secret->pos, NULL,
				    "\"secret\" marks PLAINTEXT values; a %s value is the name of "
				    "the parameter or secret, not the secret itself",
				    type);
				v_pop(v, s2);
			}
			if (type &&
			    (!strcmp(type, "PARAMETER_STORE") ||
			     !strcmp(type, "SECRETS_MANAGER")) &&
			    val && val->kind == DOC_STRING && val->u.string.len == 0) {
				size_t s2 = v_push(v, "value");
				v_error(v, val->pos, NULL,
				        "a %s override needs the name of the parameter or secret",
				        type);
				v_pop(v, s2);
			}
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static void check_project_name(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value) || !*s)
		return;
	size_t n = strlen(s);
	if (n < 2 || n > 255 || !strchr(HEX "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ", s[0]) ||
	    !str_all_in(s, HEX "ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ-_"))
		v_error(
		    v, value->pos, NULL,
		    "\"%.60s\" is not a CodeBuild project name (2 to 255 letters, digits, - and "
		    "_, starting with a letter or digit)",
		    s);
}

static const struct field_spec codebuild_fields[] = {
	{ .name = "codeBuildName",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_project_name },
	{ .name = "sourceVersion", .types = T_STRING | T_OBJECT, .check = check_source_version },
	{ .name = "environmentVariableOverrides", .types = T_ARRAY, .check = check_env_overrides },
	{ .name = NULL },
};

/* Appends how a sourceVersion will be read by CodeBuild. */
static void describe_source(const struct doc_node *sv, struct strbuf *out)
{
	if (!sv) {
		describe_line(out, "source", "the project's default source version");
		return;
	}
	if (sv->kind == DOC_OBJECT) {
		describe_line(out, "source", "%s %s", step_string(sv, "type"),
		              step_string(sv, "value"));
		return;
	}
	const char *s = sv->u.string.s;
	size_t n = strlen(s);
	if (!strncmp(s, "refs/heads/", 11))
		describe_line(out, "source", "branch %s", s + 11);
	else if (!strncmp(s, "refs/tags/", 10))
		describe_line(out, "source", "tag %s", s + 10);
	else if (!strncmp(s, "pr/", 3))
		describe_line(out, "source", "pull request %s", s + 3);
	else if (n == 40 && str_all_in(s, HEX))
		describe_line(out, "source", "commit %s", s);
	else
		describe_line(out, "source", "%s (branch, tag or commit, as the repository has it)",
		              s);
}

static void describe_codebuild_common(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "project", "%s", step_string(step, "codeBuildName"));
	describe_source(doc_get(step, "sourceVersion"), out);
	const struct doc_node *env = doc_get(step, "environmentVariableOverrides");
	for (size_t i = 0; env && i < env->u.array.len; i++) {
		const struct doc_node *e = env->u.array.items[i];
		const char *type = step_string(e, "type");
		const char *label = i == 0 ? "environment" : "";
		const struct doc_node *secret = doc_get(e, "secret");
		if (secret && secret->kind == DOC_BOOL && secret->u.boolean)
			describe_line(out, label, "%s=**** (secret)", step_string(e, "name"));
		else if (!type || !strcmp(type, "PLAINTEXT"))
			describe_line(out, label, "%s=%s", step_string(e, "name"),
			              step_string(e, "value"));
		else
			describe_line(out, label, "%s from %s %s", step_string(e, "name"),
			              !strcmp(type, "PARAMETER_STORE") ? "Parameter Store"
			                                               : "Secrets Manager",
			              step_string(e, "value"));
	}
}

static void describe_codebuild(const struct doc_node *step, struct strbuf *out)
{
	describe_codebuild_common(step, out);
	describe_line(out, "waits", "until the build ends; fails unless it SUCCEEDED");
}

static void describe_codebuild_nowait(const struct doc_node *step, struct strbuf *out)
{
	describe_codebuild_common(step, out);
	describe_line(out, "waits", "only for the build to start");
}

/* The sourceVersion as StartBuild takes it: a branch as refs/heads/NAME, a
 * tag as refs/tags/NAME, a commit or a plain string as written. */
static char *source_version(const struct doc_node *sv)
{
	if (!sv)
		return NULL;
	if (sv->kind == DOC_STRING)
		return xstrdup(sv->u.string.s);
	const char *kind = step_string(sv, "type"), *value = step_string(sv, "value");
	return !strcmp(kind, "branch") ? xstrfmt("refs/heads/%s", value)
	       : !strcmp(kind, "tag")  ? xstrfmt("refs/tags/%s", value)
	                               : xstrdup(value);
}

static void *bind_codebuild(const struct doc_node *step)
{
	struct codebuild_config *c = xcalloc(1, sizeof(*c));
	c->project = step_string(step, "codeBuildName");
	c->source_version = source_version(doc_get(step, "sourceVersion"));
	const struct doc_node *env = doc_get(step, "environmentVariableOverrides");
	if (env) {
		c->nenv = env->u.array.len;
		c->env = xcalloc(c->nenv + 1, sizeof(*c->env));
		for (size_t i = 0; i < c->nenv; i++) {
			const struct doc_node *e = env->u.array.items[i];
			const char *type = step_string(e, "type");
			c->env[i] = (struct codebuild_env){ .name = step_string(e, "name"),
				                            .value = step_string(e, "value"),
				                            .type = type ? type : "PLAINTEXT" };
		}
	}
	return c;
}

static void free_codebuild(void *config)
{
	struct codebuild_config *c = config;
	if (!c)
		return;
	free(c->source_version);
	free(c->env);
	free(c);
}

/* "build ID in phase BUILD", once the build is known. */
static void codebuild_waiting_for(const struct doc_node *step, const struct step_view *view,
                                  struct strbuf *out)
{
	(void)step;
	const char *id = json_string_value(json_object_get(view->work, "buildId"));
	if (!id)
		return;
	strbuf_addf(out, "build %s", id);
	const char *phase = json_string_value(json_object_get(view->progress, "phase"));
	if (phase)
		strbuf_addf(out, " in phase %s", phase);
}

/* "build ID #N"; brief: "ID". */
static void codebuild_work_summary(const json_t *work, bool brief, struct strbuf *out)
{
	const char *id = json_string_value(json_object_get(work, "buildId"));
	if (id && brief)
		strbuf_addstr(out, id);
	else if (id)
		strbuf_addf(out, "build %s #%lld", id,
		            (long long)json_integer_value(json_object_get(work, "buildNumber")));
}

const struct step_type step_codebuild = {
	.name = "CodeBuild",
	.summary = "start an AWS CodeBuild build and wait for it to end",
	.flags = STEP_AWS | STEP_RETRYABLE | STEP_REATTACH,
	.fields = codebuild_fields,
	.describe = describe_codebuild,
	.bind = bind_codebuild,
	.free_config = free_codebuild,
	.start = codebuild_start,
	.cancel = codebuild_cancel,
	.detach = codebuild_detach,
	.waiting_for = codebuild_waiting_for,
	.work_summary = codebuild_work_summary,
};

const struct step_type step_codebuild_nowait = {
	.name = "CodeBuildNoWait",
	.summary = "start an AWS CodeBuild build and move on",
	.flags = STEP_AWS | STEP_RETRYABLE | STEP_NO_WAIT | STEP_REATTACH,
	.fields = codebuild_fields,
	.describe = describe_codebuild_nowait,
	.bind = bind_codebuild,
	.free_config = free_codebuild,
	.start = codebuild_start,
	.cancel = codebuild_cancel,
	.detach = codebuild_detach,
	.waiting_for = codebuild_waiting_for,
	.work_summary = codebuild_work_summary,
};
