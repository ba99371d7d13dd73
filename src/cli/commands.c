/*
 * commands.c - the table of subcommands, and what they share.
 */
#include "cli/cli.h"

#include "util/alloc.h"
#include "util/suggest.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const char validate_help[], plan_help[], graph_help[], help_help[], version_help[],
    supervise_help[], run_help[], resume_help[], retry_help[], approve_help[], reject_help[],
    abort_help[], list_help[], show_help[], history_help[], serve_help[], token_help[];
extern const char link_help[];

const struct command commands[] = {
	{ "validate", cmd_validate, "check release plans and report every problem", validate_help },
	{ "plan", cmd_plan, "show what a release will do, variables resolved", plan_help },
	{ "graph", cmd_graph, "draw a plan as a Mermaid or Graphviz graph", graph_help },
	{ "run", cmd_run, "run a release in the foreground", run_help },
	{ "resume", cmd_resume, "continue unfinished releases", resume_help },
	{ "retry", cmd_retry, "continue a failed or aborted release", retry_help },
	{ "approve", cmd_approve, "approve a Human step", approve_help },
	{ "reject", cmd_reject, "reject a Human step (the release stops)", reject_help },
	{ "abort", cmd_abort, "abort a running release", abort_help },
	{ "link", cmd_link, "ask a server for a new approval link of a waiting step", link_help },
	{ "list", cmd_list, "list releases", list_help },
	{ "show", cmd_show, "show a release: stages and steps with state and timing", show_help },
	{ "history", cmd_history, "show a release's event history", history_help },
	{ "serve", cmd_serve, "run releases behind the HTTP API, approval pages and dashboard",
	  serve_help },
	{ "token", cmd_token, "make an API token for steppy serve", token_help },
	{ "help", cmd_help, "show help for steppy or one command", help_help },
	{ "version", cmd_version, "print the version", version_help },
	{ "__supervise", cmd_supervise, NULL, supervise_help }, /* internal: hidden from help */
	{ NULL, NULL, NULL, NULL },
};

const struct command *command_find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

void command_help(const struct command *cmd, FILE *f)
{
	fputs(cmd->help, f);
}

/* Prints "steppy COMMAND: <message>" (fmt starts with "%s:" for the command);
 * returns EXIT_USAGE. */
static int option_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int option_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("steppy ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_USAGE;
}

int cli_option_error(char **argv, const struct option *opts)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	if (strncmp(arg, "--", 2) != 0) {
		if (optopt)
			return option_error("%s: unknown option -%c (see steppy %s --help)",
			                    argv[0], optopt, argv[0]);
		return option_error("%s: bad option %s (see steppy %s --help)", argv[0], arg,
		                    argv[0]);
	}
	const char *name = arg + 2;
	size_t len = strcspn(name, "=");
	size_t n = 0, prefixed = 0;
	for (const struct option *o = opts; o->name; o++, n++) {
		if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
			if (o->has_arg == required_argument)
				return option_error("%s: option --%s needs a value", argv[0],
				                    o->name);
			return option_error("%s: option --%s takes no value", argv[0], o->name);
		}
		prefixed += !strncmp(o->name, name, len);
	}
	char *word = xstrndup(name, len);
	if (prefixed > 1) {
		option_error("%s: option --%s is ambiguous (see steppy %s --help)", argv[0], word,
		             argv[0]);
		free(word);
		return EXIT_USAGE;
	}
	const char **names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = opts[i].name;
	const char *guess = suggest_closest(word, names);
	if (guess)
		option_error("%s: unknown option --%s; did you mean --%s?", argv[0], word, guess);
	else
		option_error("%s: unknown option --%s (see steppy %s --help)", argv[0], word,
		             argv[0]);
	free(names);
	free(word);
	return EXIT_USAGE;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("steppy: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return EXIT_USAGE;
}

bool use_colour(FILE *f)
{
	const char *no_colour = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	if (no_colour && *no_colour)
		return false;
	if (term && !strcmp(term, "dumb"))
		return false;
	return isatty(fileno(f));
}

int parse_var(char *arg, struct var_value *v)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return -1;
	*eq = '\0';
	v->name = arg;
	v->value = eq + 1;
	return 0;
}

int parse_format(const char *arg, enum output_format *out)
{
	if (!strcmp(arg, "text"))
		*out = FORMAT_TEXT;
	else if (!strcmp(arg, "json"))
		*out = FORMAT_JSON;
	else
		return -1;
	return 0;
}
