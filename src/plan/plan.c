/*
 * plan.c - variable binding and the plan model (see plan.h).
 */
#include "plan/plan.h"

#include "plan/template.h"
#include "plan/validate.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/suggest.h"

#include <stdlib.h>
#include <string.h>

struct binder {
	struct doc *out;
	const struct doc_node *root;  /* the plan object */
	const struct doc_node *decls; /* "variables" object or NULL */
	const struct var_value *vals;
	size_t nvals;
	struct strmap resolved; /* variable name -> its bound value */
};

/* The bound value of a declared variable; NULL if it has none. */
static const char *variable_value(const struct binder *b, const char *name, size_t len,
                                  bool *from_default)
{
	for (size_t i = b->nvals; i-- > 0;) /* the last --var of a name wins */
		if (strlen(b->vals[i].name) == len && !memcmp(b->vals[i].name, name, len)) {
			*from_default = false;
			return b->vals[i].value;
		}
	*from_default = true;
	for (size_t i = 0; b->decls && i < b->decls->u.object.len; i++) {
		const struct doc_member *m = &b->decls->u.object.members[i];
		if (m->key_len == len && !memcmp(m->key, name, len))
			return step_string(m->value, "default");
	}
	return NULL;
}

static int substitute(const char *name, size_t len, struct strbuf *out, void *arg)
{
	struct binder *b = arg;
	const char *value = strmap_get(&b->resolved, name, len);
	if (!value)
		return SP_EUSAGE; /* checked before binding; cannot happen */
	strbuf_addstr(out, value);
	return 0;
}

/* Copies a subtree into b->out; expand substitutes references in strings. */
static struct doc_node *copy_node(struct binder *b, const struct doc_node *in, bool expand)
{
	struct doc_node *n = arena_alloc(&b->out->arena, sizeof(*n));
	*n = *in;
	b->out->nodes++;
	switch (in->kind) {
	case DOC_STRING:
		if (expand && strchr(in->u.string.s, '$')) {
			struct strbuf sb = STRBUF_INIT;
			const char *reason;
			template_expand(in->u.string.s, &sb, substitute, b, &reason);
			n->u.string.s = arena_memdup0(&b->out->arena, sb.buf, sb.len);
			n->u.string.len = sb.len;
			strbuf_release(&sb);
		} else {
			n->u.string.s =
			    arena_memdup0(&b->out->arena, in->u.string.s, in->u.string.len);
		}
		break;
	case DOC_ARRAY:
		n->u.array.items =
		    arena_alloc_array(&b->out->arena, in->u.array.len, sizeof(*n->u.array.items));
		for (size_t i = 0; i < in->u.array.len; i++)
			n->u.array.items[i] = copy_node(b, in->u.array.items[i], expand);
		break;
	case DOC_OBJECT:
		n->u.object.members = arena_alloc_array(&b->out->arena, in->u.object.len,
		                                        sizeof(*n->u.object.members));
		for (size_t i = 0; i < in->u.object.len; i++) {
			const struct doc_member *m = &in->u.object.members[i];
			struct doc_member *c = &n->u.object.members[i];
			*c = *m;
			c->key = arena_memdup0(&b->out->arena, m->key, m->key_len);
			/* Variable declarations keep their text: they are not templates. */
			c->value = copy_node(b, m->value,
			                     expand && in != b->decls &&
			                         !(in == b->root && !strcmp(m->key, "$schema")));
		}
		break;
	default:
		break;
	}
	return n;
}

const char *plan_unbound_variable(const struct doc *doc, const struct var_value *vals, size_t nvals)
{
	const struct doc_node *decls = doc_get(doc->root, "variables");
	struct binder b = { .decls = decls, .vals = vals, .nvals = nvals };
	for (size_t k = 0; decls && decls->kind == DOC_OBJECT && k < decls->u.object.len; k++) {
		const struct doc_member *m = &decls->u.object.members[k];
		bool from_default;
		if (!variable_value(&b, m->key, m->key_len, &from_default))
			return m->key;
	}
	return NULL;
}

int plan_bind(const struct doc *doc, const struct var_value *vals, size_t nvals,
              struct doc **ret_doc, struct strbuf *err)
{
	const struct doc_node *decls = doc_get(doc->root, "variables");
	struct binder b = { .root = doc->root, .decls = decls, .vals = vals, .nvals = nvals };

	for (size_t i = 0; i < nvals; i++) {
		if (doc_member(decls, vals[i].name))
			continue;
		size_t ndecls = decls ? decls->u.object.len : 0;
		const char **names = xcalloc(ndecls + 1, sizeof(*names));
		for (size_t k = 0; k < ndecls; k++)
			names[k] = decls->u.object.members[k].key;
		const char *guess = suggest_closest(vals[i].name, names);
		strbuf_addf(err, "the plan declares no variable \"%s\"", vals[i].name);
		if (guess)
			strbuf_addf(err, "; did you mean \"%s\"?", guess);
		free(names);
		return SP_EUSAGE;
	}
	for (size_t k = 0; decls && k < decls->u.object.len; k++) {
		const struct doc_member *m = &decls->u.object.members[k];
		bool from_default;
		const char *value = variable_value(&b, m->key, m->key_len, &from_default);
		if (value)
			strmap_put(&b.resolved, m->key, m->key_len, (void *)(uintptr_t)value);
		if (!value) {
			strmap_release(&b.resolved);
			strbuf_addf(err, "variable \"%s\" has no default and was given no value",
			            m->key);
			return SP_EUSAGE;
		}
	}

	struct doc *out = xcalloc(1, sizeof(*out));
	out->name = xstrdup(doc->name);
	out->text = xmemdup0(doc->text, doc->text_len);
	out->text_len = doc->text_len;
	out->syntax = doc->syntax;
	b.out = out;
	out->root = copy_node(&b, doc->root, true);
	strmap_release(&b.resolved);
	*ret_doc = out;
	return 0;
}

static int64_t int_field(const struct doc_node *obj, const char *key, int64_t fallback)
{
	const struct doc_node *n = doc_get(obj, key);
	return n && n->kind == DOC_NUMBER ? n->u.number.integer : fallback;
}

static struct retry_policy retry_from(const struct doc_node *retry)
{
	struct retry_policy r = { 1, 0, 1.0 };
	if (!retry)
		return r;
	r.max_attempts = int_field(retry, "maxAttempts", 3);
	r.interval_seconds = int_field(retry, "intervalSeconds", 10);
	const struct doc_node *rate = doc_get(retry, "backoffRate");
	r.backoff_rate = rate ? rate->u.number.value : 2.0;
	return r;
}

struct plan *plan_build(struct doc *doc)
{
	struct plan *plan = xcalloc(1, sizeof(*plan));
	struct arena *a = &doc->arena;
	const struct doc_node *root = doc->root;
	plan->doc = doc;
	plan->name = step_string(root, "name");
	plan->description = step_string(root, "description");
	plan->environment = step_string(root, "environmentName");

	const struct doc_node *defaults = doc_get(root, "defaults");
	const struct doc_node *stages = doc_get(root, "stages");
	plan->nstages = stages->u.array.len;
	plan->stages = arena_alloc_array(a, plan->nstages, sizeof(*plan->stages));
	for (size_t i = 0; i < plan->nstages; i++) {
		const struct doc_node *sn = stages->u.array.items[i];
		struct plan_stage *st = &plan->stages[i];
		*st = (struct plan_stage){ 0 };
		const struct doc_node *ff = doc_get(sn, "failFast");
		const struct doc_node *steps = doc_get(sn, "steps");
		st->name = step_string(sn, "name");
		st->fail_fast = ff && ff->u.boolean;
		st->nsteps = steps->u.array.len;
		st->steps = arena_alloc_array(a, st->nsteps, sizeof(*st->steps));
		for (size_t j = 0; j < st->nsteps; j++) {
			const struct doc_node *node = steps->u.array.items[j];
			struct plan_step *s = &st->steps[j];
			*s = (struct plan_step){ .node = node };
			s->name = step_string(node, "name");
			s->type = step_type_find(step_string(node, "type"));
			s->timeout_seconds =
			    int_field(node, "timeoutSeconds",
			              s->type->flags & STEP_OWN_DURATION
			                  ? 0
			                  : int_field(defaults, "timeoutSeconds", 0));
			s->retry = (struct retry_policy){ 1, 0, 1.0 };
			if (s->type->flags & STEP_RETRYABLE) {
				const struct doc_node *retry = doc_get(node, "retry");
				s->retry = retry_from(retry ? retry : doc_get(defaults, "retry"));
			}
			if (s->type->flags & STEP_AWS) {
				s->region = step_string(node, "region");
				if (!s->region)
					s->region = step_string(defaults, "region");
				s->role_arn = step_string(node, "roleArn");
				if (!s->role_arn)
					s->role_arn = step_string(defaults, "roleArn");
				s->external_id = step_string(node, "externalId");
				if (!s->external_id)
					s->external_id = step_string(defaults, "externalId");
			}
			if (s->type->bind)
				s->config = s->type->bind(node);
		}
	}

	const struct doc_node *decls = doc_get(root, "variables");
	plan->nvariables = decls ? decls->u.object.len : 0;
	plan->variables = arena_alloc_array(a, plan->nvariables, sizeof(*plan->variables));
	for (size_t i = 0; i < plan->nvariables; i++) {
		const struct doc_member *m = &decls->u.object.members[i];
		plan->variables[i] = (struct plan_variable){ .name = m->key };
		plan->variables[i].description = step_string(m->value, "description");
	}
	return plan;
}

int plan_load(const char *path, const struct var_value *vals, size_t nvals, struct plan **ret_plan,
              struct doc **ret_doc, struct diag_list *diags, struct strbuf *err)
{
	struct doc *doc = NULL;
	int r = doc_load(path, &doc, diags);
	if (r == SP_EIO || r == SP_ETOOBIG)
		return r;
	*ret_doc = doc;
	if (r < 0)
		return r;
	return plan_from_doc(doc, vals, nvals, ret_plan, diags, err);
}

int plan_from_doc(const struct doc *doc, const struct var_value *vals, size_t nvals,
                  struct plan **ret_plan, struct diag_list *diags, struct strbuf *err)
{
	int r = plan_validate(doc, false, diags);
	if (r < 0)
		return r;
	struct doc *bound;
	r = plan_bind(doc, vals, nvals, &bound, err);
	if (r < 0)
		return r;
	r = plan_validate(bound, true, diags);
	if (r < 0) {
		doc_free(bound);
		return r;
	}
	struct plan *plan = plan_build(bound);
	/* Record where each variable's value came from. */
	for (size_t i = 0; i < plan->nvariables; i++) {
		struct plan_variable *pv = &plan->variables[i];
		struct binder b = { .decls = doc_get(doc->root, "variables"),
			            .vals = vals,
			            .nvals = nvals };
		pv->value = variable_value(&b, pv->name, strlen(pv->name), &pv->from_default);
		pv->value = arena_strdup(&bound->arena, pv->value);
	}
	*ret_plan = plan;
	return 0;
}

void plan_free(struct plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->nstages; i++)
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			const struct plan_step *s = &plan->stages[i].steps[j];
			if (s->config && s->type->free_config)
				s->type->free_config(s->config);
		}
	doc_free(plan->doc);
	free(plan);
}

const char *role_arn_account(const char *role_arn, char *buf)
{
	const char *p = role_arn ? strstr(role_arn, ":iam::") : NULL;
	if (!p || strspn(p + 6, "0123456789") != 12)
		return NULL;
	memcpy(buf, p + 6, 12);
	buf[12] = '\0';
	return buf;
}
