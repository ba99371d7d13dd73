/*
 * registry.c - the list of step types: built-in ones and plugins.
 */
#include "plan/step-type.h"

#include "util/error.h"

#include <stdarg.h>
#include <string.h>

/*
 * The built-in step types, one row each: adding a type is one row here and
 * its own file in src/steps/ (the checklist in plan/step-type.h). The order
 * is the order of help and docs.
 */
#define BUILTIN_STEP_TYPES(X)                                                                      \
	X(step_codebuild)                                                                          \
	X(step_codebuild_nowait)                                                                   \
	X(step_codepipeline)                                                                       \
	X(step_codepipeline_nowait)                                                                \
	X(step_lambda)                                                                             \
	X(step_human)                                                                              \
	X(step_wait)                                                                               \
	X(step_notify)                                                                             \
	X(step_exec)                                                                               \
	X(step_http)                                                                               \
	/* new types go above this line */

#define DECLARE_TYPE(name) extern const struct step_type name;
#define LIST_TYPE(name)    &name,
BUILTIN_STEP_TYPES(DECLARE_TYPE)
static const struct step_type *const builtin_types[] = { BUILTIN_STEP_TYPES(LIST_TYPE) };

#define NBUILTIN    (sizeof(builtin_types) / sizeof(builtin_types[0]))
#define MAX_PLUGINS 64

static const struct step_type *plugin_types[MAX_PLUGINS];
static size_t nplugins;

const struct step_type *step_type_find(const char *name)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (!strcmp(builtin_types[i]->name, name))
			return builtin_types[i];
	for (size_t i = 0; i < nplugins; i++)
		if (!strcmp(plugin_types[i]->name, name))
			return plugin_types[i];
	return NULL;
}

int step_type_register(const struct step_type *type)
{
	if (step_type_find(type->name))
		return SP_EINVAL;
	if (nplugins == MAX_PLUGINS)
		return SP_ETOOBIG;
	plugin_types[nplugins++] = type;
	return 0;
}

void step_type_names(const char **names, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < NBUILTIN && n + 1 < max; i++)
		names[n++] = builtin_types[i]->name;
	for (size_t i = 0; i < nplugins && n + 1 < max; i++)
		names[n++] = plugin_types[i]->name;
	names[n] = NULL;
}

void step_type_foreach(void (*fn)(const struct step_type *type, void *arg), void *arg)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		fn(builtin_types[i], arg);
	for (size_t i = 0; i < nplugins; i++)
		fn(plugin_types[i], arg);
}

void describe_line(struct strbuf *out, const char *label, const char *fmt, ...)
{
	size_t start = out->len;
	strbuf_addf(out, "      %-12s ", label);
	size_t indent = out->len - start;
	struct strbuf text = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&text, fmt, ap);
	va_end(ap);
	/* Continuation lines of a multi-line text (a YAML block scalar) line up under
	 * its first line; trailing line breaks are dropped. */
	size_t len = text.len;
	while (len && text.buf[len - 1] == '\n')
		len--;
	for (size_t i = 0; i < len; i++) {
		strbuf_addch(out, text.buf[i]);
		if (text.buf[i] == '\n')
			strbuf_addf(out, "%*s", (int)indent, "");
	}
	strbuf_addch(out, '\n');
	strbuf_release(&text);
}

const char *step_string(const struct doc_node *step, const char *name)
{
	const struct doc_node *n = doc_get(step, name);
	return n && n->kind == DOC_STRING ? n->u.string.s : NULL;
}
