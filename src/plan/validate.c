/*
 * validate.c - the rules of the plan language: the plan, its variables and
 * defaults, stages, and the fields every step shares. Type-specific fields
 * are checked through the step type's own table (plan/step-type.h).
 */
#include "plan/validate.h"

#include "plan/limits.h"
#include "plan/schema.h"
#include "plan/step-type.h"
#include "plan/template.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/suggest.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TIMEOUT_SECONDS 31536000 /* 365 days */
/* Name comparisons spent on "did you mean" for undeclared variables in one
 * pass: every declared name is considered, for the first 64 bad references
 * in a plan with the most variables, for many more in a real one. */
#define SUGGEST_BUDGET (64 * PLAN_MAX_VARIABLES)

/* An AWS region name: us-east-1, us-gov-west-1, ap-southeast-4 ... */
static bool is_region_name(const char *s)
{
	const char *lower = "abcdefghijklmnopqrstuvwxyz";
	size_t n = strspn(s, lower);
	if (n != 2 || s[2] != '-')
		return false;
	s += 3;
	size_t words = 0;
	while ((n = strspn(s, lower)) > 0 && s[n] == '-') {
		s += n + 1;
		words++;
	}
	return words >= 1 && *s && str_all_in(s, "0123456789");
}

static void check_region(struct vctx *v, const struct doc_node *value)
{
	if (!v_deferred(v, value) && value->u.string.len && !is_region_name(value->u.string.s))
		v_error(v, value->pos, NULL,
		        "\"%.60s\" is not an AWS region name such as us-east-1 or eu-west-2",
		        value->u.string.s);
}

static void check_role_arn(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value))
		return;
	/* arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME */
	bool ok = !strncmp(s, "arn:aws", 7);
	const char *p = ok ? strchr(s + 4, ':') : NULL;
	ok = p && !strncmp(p, ":iam::", 6);
	if (ok) {
		p += 6;
		ok = strspn(p, "0123456789") == 12 && !strncmp(p + 12, ":role/", 6) && p[18] &&
		     str_all_in(p + 18, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                        "0123456789+=,.@_-/");
	}
	if (!ok)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an IAM role ARN "
		        "(arn:aws:iam::123456789012:role/NAME)",
		        s);
}

static void check_retry(struct vctx *v, const struct doc_node *value);

/* Fields every step may have; AWS fields are checked against the type below. */
static const struct field_spec step_common_fields[] = {
	{ .name = "type", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "name",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 200,
	  .check = check_no_control_chars },
	{ .name = "description", .types = T_STRING },
	{ .name = "timeoutSeconds",
	  .types = T_INTEGER,
	  .min = 1,
	  .max = MAX_TIMEOUT_SECONDS,
	  .unit = "seconds" },
	{ .name = "retry", .types = T_OBJECT, .check = check_retry },
	{ .name = NULL },
};

/* STS: 2 to 1224 characters of letters, digits and + = , . @ : / - _ */
static void check_external_id(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value))
		return;
	size_t n = strlen(s);
	bool ok = n >= 2 && n <= 1224;
	for (const char *p = s; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("+=,.@:/-_", *p);
	if (!ok)
		v_error(v, value->pos, NULL,
		        "an external id is 2 to 1224 letters, digits and + = , . @ : / - _");
}

static const struct field_spec step_aws_fields[] = {
	{ .name = "region", .types = T_STRING, .flags = F_NONEMPTY, .check = check_region },
	{ .name = "roleArn", .types = T_STRING, .flags = F_NONEMPTY, .check = check_role_arn },
	{ .name = "externalId", .types = T_STRING, .check = check_external_id },
	{ .name = NULL },
};

static const struct field_spec retry_fields[] = {
	{ .name = "maxAttempts", .types = T_INTEGER, .min = 1, .max = 100 },
	{ .name = "intervalSeconds",
	  .types = T_INTEGER,
	  .min = 0,
	  .max = 86400,
	  .unit = "seconds" },
	{ .name = "backoffRate", .types = T_NUMBER, .min = 1, .max = 10 },
	{ .name = NULL },
};

static void check_retry(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec *const tables[] = { retry_fields, NULL };
	schema_check_object(v, value, tables, "a retry policy");
}

/* A default is inserted as written, never expanded, so it may hold no "${". */
static void check_default(struct vctx *v, const struct doc_node *def)
{
	bool refs, escapes;
	template_scan(def->u.string.s, &refs, &escapes);
	if (!refs && !escapes)
		return;
	size_t saved = v_push(v, "default");
	if (refs)
		v_error(v, def->pos, NULL, "a default value cannot refer to variables");
	else
		v_error(v, def->pos, NULL,
		        "a default value is used as written, not as a template: \"$${\" would "
		        "stay \"$${\" (a default cannot contain \"${\")");
	v_pop(v, saved);
}

static void check_variable_decls(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "default", .types = T_STRING },
		{ .name = "description", .types = T_STRING },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	if (value->u.object.len > PLAN_MAX_VARIABLES)
		v_error(v, value->pos, NULL, "a plan declares at most %d variables, this one %zu",
		        PLAN_MAX_VARIABLES, value->u.object.len);
	struct strmap seen = STRMAP_INIT;
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (!str_is_ident(m->key)) {
			v_error(v, m->key_pos, NULL,
			        "\"%s\" is not a valid variable name (letters, digits and _, not "
			        "starting with a digit)",
			        m->key);
		} else if (v_first_seen(&seen, m->key, m)) {
			v_error(v, m->key_pos, NULL, "variable \"%s\" is declared twice", m->key);
		} else if (m->value->kind != DOC_NULL) {
			if (schema_check_object(v, m->value, tables, "a variable declaration")) {
				const struct doc_node *def = doc_get(m->value, "default");
				if (def && def->kind == DOC_STRING)
					check_default(v, def);
			}
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static void check_defaults(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "timeoutSeconds",
		  .types = T_INTEGER,
		  .min = 1,
		  .max = MAX_TIMEOUT_SECONDS,
		  .unit = "seconds" },
		{ .name = "retry", .types = T_OBJECT, .check = check_retry },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, step_aws_fields, NULL };
	schema_check_object(v, value, tables, "\"defaults\"");
}

static void check_step(struct vctx *v, const struct doc_node *step)
{
	const struct doc_node *type_node = doc_get(step, "type");
	const struct step_type *type = NULL;
	if (step->kind == DOC_OBJECT && type_node && type_node->kind == DOC_STRING) {
		bool refs, escapes;
		template_scan(type_node->u.string.s, &refs, &escapes);
		type = step_type_find(type_node->u.string.s);
		if (!type && refs) {
			/* Its fields could not be checked before binding. */
			size_t saved = v_push(v, "type");
			v_error(v, type_node->pos, NULL,
			        "a step's type cannot come from a variable");
			v_pop(v, saved);
		} else if (!type && type_node->u.string.len) {
			const char *names[80];
			step_type_names(names, 80);
			size_t saved = v_push(v, "type");
			const char *guess = suggest_closest(type_node->u.string.s, names);
			struct strbuf list = STRBUF_INIT;
			for (const char **n = names; *n && !guess; n++)
				strbuf_addf(&list, "%s%s", n == names ? " (known types: " : ", ",
				            *n);
			if (!guess)
				strbuf_addch(&list, ')');
			v_error(v, type_node->pos, guess, "unknown step type \"%.60s\"%s",
			        type_node->u.string.s, list.buf);
			strbuf_release(&list);
			v_pop(v, saved);
		}
	}
	if (!type) {
		/* Without a type its fields are unknowable: check only the common ones. */
		if (step->kind != DOC_OBJECT) {
			static const struct field_spec *const none[] = { NULL };
			schema_check_object(v, step, none, "a step");
			return;
		}
		struct strmap seen = STRMAP_INIT;
		for (size_t i = 0; i < step->u.object.len; i++) {
			const struct doc_member *m = &step->u.object.members[i];
			const struct doc_member *first = v_first_seen(&seen, m->key, m);
			if (first) {
				size_t saved = v_push(v, m->key);
				v_error(v, m->key_pos, NULL,
				        "\"%s\" is given twice in a step (first at line %u)",
				        m->key, (unsigned)first->key_pos.line);
				v_pop(v, saved);
			}
		}
		strmap_release(&seen);
		for (const struct field_spec *f = step_common_fields; f->name; f++) {
			const struct doc_member *m = doc_member(step, f->name);
			bool reported = m && m->value == type_node &&
			                type_node->kind == DOC_STRING &&
			                type_node->u.string.len; /* unknown type, reported above */
			if (m && !reported) {
				size_t saved = v_push(v, f->name);
				schema_check_value(v, m->value, f);
				v_pop(v, saved);
			} else if (!m && (f->flags & F_REQUIRED)) {
				size_t saved = v_push(v, f->name);
				v_error(v, step->pos, NULL, "a step needs a \"%s\" field", f->name);
				v_pop(v, saved);
			}
		}
		return;
	}

	char what[96];
	snprintf(what, sizeof(what), "%s %s step", strchr("AEIOU", type->name[0]) ? "an" : "a",
	         type->name);
	const struct field_spec *const tables[] = { step_common_fields, step_aws_fields,
		                                    type->fields, NULL };
	schema_check_object(v, step, tables, what);
	if (!(type->flags & STEP_AWS)) {
		for (const struct field_spec *f = step_aws_fields; f->name; f++) {
			const struct doc_member *m = doc_member(step, f->name);
			if (m) {
				size_t saved = v_push(v, f->name);
				v_error(v, m->key_pos, NULL,
				        "\"%s\" applies only to AWS steps; %s runs no AWS call",
				        f->name, what);
				v_pop(v, saved);
			}
		}
	}
	const struct doc_member *retry = doc_member(step, "retry");
	if (retry && !(type->flags & STEP_RETRYABLE)) {
		size_t saved = v_push(v, "retry");
		v_error(v, retry->key_pos, NULL, "%s steps are not retried; remove \"retry\"",
		        type->name);
		v_pop(v, saved);
	}
	if (type->validate)
		type->validate(v, step);
}

static void check_steps(struct vctx *v, const struct doc_node *steps)
{
	struct strmap names = STRMAP_INIT;
	for (size_t i = 0; i < steps->u.array.len; i++) {
		const struct doc_node *step = steps->u.array.items[i];
		size_t saved = v_push_index(v, i);
		check_step(v, step);
		const struct doc_node *name = doc_get(step, "name");
		const struct doc_node *prev = NULL; /* the step first named so */
		if (name && name->kind == DOC_STRING && name->u.string.len)
			prev = v_first_seen(&names, name->u.string.s, step);
		if (prev) {
			/* A step repeated through a YAML alias shares its name node with
			 * the first: point at the alias, not at the first's name. */
			struct doc_pos first = doc_pos_in(prev, doc_get(prev, "name"));
			size_t s2 = v_push(v, "name");
			v_error(
			    v, doc_pos_in(step, name), NULL,
			    "two steps of this stage are named \"%.60s\" (the first at line %u); "
			    "step names must be unique within a stage",
			    name->u.string.s, (unsigned)first.line);
			v_pop(v, s2);
		}
		v_pop(v, saved);
	}
	strmap_release(&names);
}

static void check_stages(struct vctx *v, const struct doc_node *stages)
{
	static const struct field_spec stage_fields[] = {
		{ .name = "name",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 200,
		  .check = check_no_control_chars },
		{ .name = "description", .types = T_STRING },
		{ .name = "failFast", .types = T_BOOL },
		{ .name = "steps",
		  .types = T_ARRAY,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .check = check_steps },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { stage_fields, NULL };
	for (size_t i = 0; i < stages->u.array.len; i++) {
		size_t saved = v_push_index(v, i);
		schema_check_object(v, stages->u.array.items[i], tables, "a stage");
		v_pop(v, saved);
	}
}

static const struct field_spec plan_fields[] = {
	{ .name = "$schema", .types = T_STRING },
	{ .name = "name",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 200,
	  .check = check_no_control_chars },
	{ .name = "description", .types = T_STRING },
	{ .name = "environmentName",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 200,
	  .check = check_no_control_chars },
	{ .name = "variables", .types = T_OBJECT, .check = check_variable_decls },
	{ .name = "defaults", .types = T_OBJECT, .check = check_defaults },
	{ .name = "stages",
	  .types = T_ARRAY,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_stages },
	{ .name = NULL },
};

/* Reference checking: each ${var.NAME} must name a declared variable. */
struct ref_check {
	struct vctx *v;
	const struct doc_node *node;
};

static int check_ref(const char *name, size_t len, struct strbuf *out, void *arg)
{
	struct ref_check *rc = arg;
	(void)out;
	const struct doc_node *vars = rc->v->variables;
	if (strmap_get(&rc->v->declared, name, len))
		return 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%.*s", (int)(len < 100 ? len : 100), name);
	/* Each suggestion compares the name with every declared one; a budget keeps a
	 * hostile plan (1,000 long names, 1,000 bad references) cheap to check. */
	const char *guess = NULL;
	if (rc->v->var_names && v_room(rc->v) && rc->v->suggest_budget >= rc->v->nvar_names) {
		rc->v->suggest_budget -= rc->v->nvar_names;
		guess = suggest_closest(buf, rc->v->var_names);
	}
	v_error(rc->v, rc->node->pos, guess,
	        "${var.%s} refers to a variable the plan does not declare%s", buf,
	        vars ? "" : " (the plan has no \"variables\")");
	return 0;
}

static void check_references(struct vctx *v, const struct doc_node *node)
{
	switch (node->kind) {
	case DOC_STRING: {
		if (!strchr(node->u.string.s, '$'))
			return;
		struct ref_check rc = { v, node };
		struct strbuf scratch = STRBUF_INIT;
		const char *reason;
		if (template_expand(node->u.string.s, &scratch, check_ref, &rc, &reason) < 0)
			v_error(v, node->pos, NULL, "%s", reason);
		strbuf_release(&scratch);
		return;
	}
	case DOC_ARRAY:
		for (size_t i = 0; i < node->u.array.len; i++) {
			size_t saved = v_push_index(v, i);
			check_references(v, node->u.array.items[i]);
			v_pop(v, saved);
		}
		return;
	case DOC_OBJECT:
		for (size_t i = 0; i < node->u.object.len; i++) {
			size_t saved = v_push(v, node->u.object.members[i].key);
			check_references(v, node->u.object.members[i].value);
			v_pop(v, saved);
		}
		return;
	default:
		return;
	}
}

int plan_validate(const struct doc *doc, bool bound, struct diag_list *diags)
{
	size_t errors_before = diags->errors;
	struct vctx v = { .doc = doc, .diags = diags, .bound = bound };
	strbuf_init(&v.ptr, SIZE_MAX);
	static const struct field_spec *const tables[] = { plan_fields, NULL };
	if (schema_check_object(&v, doc->root, tables, "a plan")) {
		const struct doc_node *vars = doc_get(doc->root, "variables");
		v.variables = vars && vars->kind == DOC_OBJECT ? vars : NULL;
		size_t nvars = v.variables ? v.variables->u.object.len : 0;
		for (size_t k = 0; k < nvars; k++)
			strmap_put(&v.declared, v.variables->u.object.members[k].key,
			           v.variables->u.object.members[k].key_len, (void *)1);
		/* Suggestions consider every declared name, up to the cap on declarations
		 * (past it the plan is already in error). */
		size_t nnames = nvars < PLAN_MAX_VARIABLES ? nvars : PLAN_MAX_VARIABLES;
		v.var_names = xcalloc(nnames + 1, sizeof(*v.var_names));
		v.nvar_names = nnames;
		v.suggest_budget = SUGGEST_BUDGET;
		for (size_t k = 0; k < nnames; k++)
			v.var_names[k] = v.variables->u.object.members[k].key;
		if (!bound) {
			for (size_t i = 0; i < doc->root->u.object.len; i++) {
				const struct doc_member *m = &doc->root->u.object.members[i];
				if (!strcmp(m->key, "variables") || !strcmp(m->key, "$schema"))
					continue;
				size_t saved = v_push(&v, m->key);
				check_references(&v, m->value);
				v_pop(&v, saved);
			}
		}
	}
	strbuf_release(&v.ptr);
	strmap_release(&v.declared);
	free(v.var_names);
	return diags->errors > errors_before ? SP_EINVAL : 0;
}
