/*
 * channel.c - a channel's configuration, read and checked (see notify.h and
 * docs/channels.md), whatever its kind: the kind comes from the table of
 * channels.c by the "type" key.
 *
 * Every kind's fields are tables for schema_check_object(), as step types
 * describe theirs, so types, required and unknown fields (with suggestions),
 * ranges and choices are reported the way plan mistakes are. What tables
 * cannot say is the kind's check hook. A channel is built (the kind's parse
 * hook) only from a configuration without errors. The checks of single
 * values that several kinds use are here too.
 */
#include "notify/notify-internal.h"
#include "plan/step-type.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/suggest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NAME  64
#define MAX_KINDS 32

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

/* The names of the built-in channels of the hub (hub.c), which configured ones cannot take. */
static const char *const builtin_names[] = { "terminal", "log", NULL };

/* ---- checks of single values ----------------------------------------------------------------- */

bool channel_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			return true;
	return false;
}

void channel_check_one_line(struct vctx *v, const struct doc_node *value)
{
	if (channel_has_control(value->u.string.s))
		v_error(v, value->pos, NULL, "control characters are not allowed here");
	else if (value->u.string.len > 4096)
		v_error(v, value->pos, NULL, "longer than 4096 characters");
}

void channel_check_env_var(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING && !str_is_ident(value->u.string.s))
		v_error(
		    v, value->pos, NULL,
		    "\"%.80s\" is not a valid environment variable name (letters, digits and _, "
		    "not starting with a digit)",
		    value->u.string.s);
}

/* Credentials in the URL are refused: they would sit in the configuration in clear. */
bool channel_check_url(struct vctx *v, const struct doc_node *value, const char *const *schemes,
                       const char *what, const char *instead)
{
	const char *s = value->u.string.s;
	const char *rest = NULL;
	for (const char *const *sc = schemes; *sc && !rest; sc++)
		if (!strncasecmp(s, *sc, strlen(*sc)))
			rest = s + strlen(*sc);
	size_t host = rest ? strcspn(rest, "/?#") : 0;
	bool bad = !rest || !host || strlen(s) > 2048 || strpbrk(s, " \"<>\\^`{|}") ||
	           channel_has_control(s);
	for (const unsigned char *p = (const unsigned char *)s; *p && !bad; p++)
		bad = *p >= 0x7F;
	if (bad) {
		v_error(v, value->pos, NULL, "\"%.80s\" is not %s", s, what);
		return false;
	}
	if (memchr(rest, '@', host)) {
		v_error(v, value->pos, NULL,
		        "the URL must not hold a user name or password: %s (secrets never go in "
		        "the configuration)",
		        instead);
		return false;
	}
	return true;
}

/* ---- the kinds ------------------------------------------------------------------------------- */

const struct channel_type *channel_type_find(const char *name)
{
	for (const struct channel_type *const *t = channel_types; *t; t++)
		if (!((*t)->flags & CHANNEL_BUILTIN) && !strcmp((*t)->name, name))
			return *t;
	return NULL;
}

/* The kinds a configuration may name, NULL-terminated (at most MAX_KINDS). */
static void kind_names(const char *names[MAX_KINDS + 1])
{
	size_t n = 0;
	for (const struct channel_type *const *t = channel_types; *t && n < MAX_KINDS; t++)
		if (!((*t)->flags & CHANNEL_BUILTIN))
			names[n++] = (*t)->name;
	names[n] = NULL;
}

/* ---- parsing --------------------------------------------------------------------------------- */

static void check_name(struct vctx *v, const char *name, const struct doc_node *node)
{
	size_t n = strlen(name);
	bool builtin = false;
	for (const char *const *b = builtin_names; *b; b++)
		builtin |= !strcmp(name, *b);
	if (!n || n > MAX_NAME || !strchr(ALNUM, name[0]) || !str_all_in(name, ALNUM "_.-"))
		v_error(v, node->pos, NULL,
		        "\"%.80s\" is not a valid channel name (up to %d letters, digits, _, . and "
		        "-, starting with a letter or digit)",
		        name, MAX_NAME);
	else if (builtin)
		v_error(v, node->pos, NULL,
		        "\"%s\" is the name of a built-in channel: choose another name", name);
}

/* "a, b or c" (last: " or ") or "a, b, c" (last: ", "). */
static void join(struct strbuf *out, const char *const *names, const char *last)
{
	for (size_t i = 0; names[i]; i++)
		strbuf_addf(out, "%s%s", !i ? "" : names[i + 1] ? ", " : last, names[i]);
}

struct channel *channel_new(const char *name, const struct channel_type *type, void *config)
{
	struct channel *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->type = type;
	c->timeout_ms = type->timeout_ms ? type->timeout_ms : 10000;
	c->what = xstrfmt("%s channel \"%s\"", type->name, name);
	c->config = config;
	return c;
}

/* The kind named by node's "type", or NULL after reporting why. */
static const struct channel_type *find_kind(struct vctx *v, const struct doc_node *node,
                                            const struct field_spec *common)
{
	const char *names[MAX_KINDS + 1];
	kind_names(names);
	struct strbuf list = STRBUF_INIT;
	const struct doc_node *type = doc_get(node, "type");
	const struct channel_type *kind =
	    type && type->kind == DOC_STRING ? channel_type_find(type->u.string.s) : NULL;
	if (!type) {
		join(&list, names, " or ");
		v_error(v, node->pos, NULL, "a channel needs a \"type\" field (%s)", list.buf);
	} else if (!kind) {
		size_t errors = v->diags->errors;
		size_t saved = v_push(v, "type");
		schema_check_value(v, type, &common[0]);
		join(&list, names, ", ");
		if (v->diags->errors == errors) /* "${x}": not a choice either */
			v_error(v, type->pos, NULL, "\"type\" must be one of %s", list.buf);
		v_pop(v, saved);
	}
	strbuf_release(&list);
	return kind;
}

/* channel_parse without the care for v->bound. */
static int parse(struct vctx *v, const char *name, const struct doc_node *node,
                 struct channel **ret)
{
	const char *names[MAX_KINDS + 1];
	kind_names(names);
	const struct field_spec common[] = {
		{ .name = "type", .types = T_STRING, .flags = F_REQUIRED, .choices = names },
		{ .name = "timeoutSeconds",
		  .types = T_INTEGER,
		  .min = 1,
		  .max = 300,
		  .unit = "seconds" },
		{ .name = NULL },
	};
	const struct field_spec *tables[8] = { common, NULL };
	size_t errors = v->diags->errors;
	check_name(v, name, node);
	if (node->kind != DOC_OBJECT) {
		schema_check_object(v, node, tables, "a channel");
		return SP_EINVAL;
	}
	const struct channel_type *kind = find_kind(v, node, common);
	if (!kind)
		return SP_EINVAL;
	for (size_t i = 0; kind->fields && kind->fields[i] && i + 2 < 8; i++)
		tables[i + 1] = kind->fields[i];
	schema_check_object(v, node, tables, kind->what);
	if (kind->check)
		kind->check(v, node, kind->what);
	if (v->diags->errors != errors)
		return SP_EINVAL;
	struct channel *c = channel_new(name, kind, kind->parse ? kind->parse(node) : NULL);
	const struct doc_node *timeout = doc_get(node, "timeoutSeconds");
	if (timeout)
		c->timeout_ms = (long)timeout->u.number.integer * 1000;
	*ret = c;
	return 0;
}

int channel_parse(struct vctx *v, const char *name, const struct doc_node *node,
                  struct channel **ret)
{
	/* No variables here: unbound, so no message says "after substituting variables"; the
	 * checks never defer a value that holds "${". */
	bool bound = v->bound;
	v->bound = false;
	int r = parse(v, name, node, ret);
	v->bound = bound;
	return r;
}

void channel_free(struct channel *c)
{
	if (!c)
		return;
	if (c->config)
		(c->type->release ? c->type->release : free)(c->config);
	free(c->name);
	free(c->what);
	free(c);
}

const char *channel_name(const struct channel *c)
{
	return c->name;
}

const char *channel_type(const struct channel *c)
{
	return c->type->name;
}

/* ---- names in plans -------------------------------------------------------------------------- */

/* Checks one step's "channels" (v->ptr is the step's pointer). */
static void check_step_channels(struct vctx *v, const struct doc_node *step,
                                const char *const *known, const char *const *candidates,
                                bool notify, const char *where)
{
	const struct doc_node *list = doc_get(step, "channels");
	if (!list || list->kind != DOC_ARRAY)
		return;
	size_t s1 = v_push(v, "channels");
	for (size_t i = 0; i < list->u.array.len; i++) {
		const struct doc_node *item = list->u.array.items[i];
		if (item->kind != DOC_STRING || strstr(item->u.string.s, "${"))
			continue;
		const char *name = item->u.string.s;
		bool found = notify && (!strcmp(name, "terminal") || !strcmp(name, "log") ||
		                        (!strncmp(name, "arn:", 4) && strstr(name, ":sns:")));
		for (const char *const *k = known; *k && !found; k++)
			found = !strcmp(*k, name);
		if (found)
			continue;
		size_t s2 = v_push_index(v, i);
		struct strbuf list_text = STRBUF_INIT;
		for (const char *const *k = known; *k; k++)
			strbuf_addf(&list_text, "%s%s", k == known ? "" : ", ", *k);
		if (!*known)
			v_error(v, item->pos, notify ? suggest_closest(name, candidates) : NULL,
			        "no channel \"%.64s\" is configured: %s has no channels%s", name,
			        where,
			        notify ? " (a Notify step may use \"terminal\" and \"log\")" : "");
		else
			v_error(v, item->pos, suggest_closest(name, notify ? candidates : known),
			        "no channel \"%.64s\" is configured (%s has %s)", name, where,
			        list_text.buf);
		strbuf_release(&list_text);
		v_pop(v, s2);
	}
	v_pop(v, s1);
}
size_t channels_check_plan(struct channel *const *channels, size_t n, const struct doc *doc,
                           const char *where, struct diag_list *diags)
{
	size_t errors = diags->errors;
	const char **known = xcalloc(n + 3, sizeof(*known));
	for (size_t i = 0; i < n; i++)
		known[i] = channels[i]->name;
	const char **with_builtins = xcalloc(n + 3, sizeof(*with_builtins));
	memcpy(with_builtins, known, n * sizeof(*known));
	with_builtins[n] = "terminal";
	with_builtins[n + 1] = "log";
	struct vctx v = { .doc = doc, .diags = diags, .bound = false };
	strbuf_init(&v.ptr, SIZE_MAX);
	const struct doc_node *stages = doc_get(doc->root, "stages");
	for (size_t i = 0; stages && stages->kind == DOC_ARRAY && i < stages->u.array.len; i++) {
		const struct doc_node *steps = doc_get(stages->u.array.items[i], "steps");
		size_t s1 = v_push(&v, "stages");
		size_t s2 = v_push_index(&v, i);
		size_t s3 = v_push(&v, "steps");
		for (size_t k = 0; steps && steps->kind == DOC_ARRAY && k < steps->u.array.len;
		     k++) {
			const struct doc_node *step = steps->u.array.items[k];
			const struct doc_node *type = doc_get(step, "type");
			if (!type || type->kind != DOC_STRING)
				continue;
			const struct step_type *t = step_type_find(type->u.string.s);
			bool notify = t && (t->flags & STEP_SENDS);
			if (!notify && !(t && (t->flags & STEP_DECISION)))
				continue;
			size_t s4 = v_push_index(&v, k);
			check_step_channels(&v, step, known, with_builtins, notify, where);
			v_pop(&v, s4);
		}
		v_pop(&v, s3);
		v_pop(&v, s2);
		v_pop(&v, s1);
	}
	free(with_builtins);
	free(known);
	strbuf_release(&v.ptr);
	return diags->errors - errors;
}
