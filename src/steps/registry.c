/*
 * registry.c - the list of step types: built-in ones and plugins.
 */
#include "steps/step-type.h"

#include "util/error.h"

#include <stdarg.h>
#include <string.h>

extern const struct step_type step_codebuild, step_codebuild_nowait;
extern const struct step_type step_codepipeline, step_codepipeline_nowait;
extern const struct step_type step_lambda, step_human, step_wait, step_notify, step_exec;

static const struct step_type *const builtin_types[] = {
	&step_codebuild,    &step_codebuild_nowait,
	&step_codepipeline, &step_codepipeline_nowait,
	&step_lambda,       &step_human,
	&step_wait,         &step_notify,
	&step_exec,
};

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
	strbuf_addf(out, "      %-12s ", label);
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(out, fmt, ap);
	va_end(ap);
	strbuf_addch(out, '\n');
}

const char *step_string(const struct doc_node *step, const char *name)
{
	const struct doc_node *n = doc_get(step, name);
	return n && n->kind == DOC_STRING ? n->u.string.s : NULL;
}
