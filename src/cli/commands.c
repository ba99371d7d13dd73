/*
 * commands.c - the table of subcommands, and what they share.
 */
#include "cli/cli.h"

#include "steps/plugin.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strbuf.h"
#include "util/suggest.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const char validate_help[], plan_help[], graph_help[], help_help[], version_help[],
    supervise_help[], run_help[], resume_help[], retry_help[], approve_help[], reject_help[],
    abort_help[], list_help[], show_help[], history_help[], serve_help[], token_help[], link_help[];
extern const struct option validate_options[], graph_options[], run_options[], control_options[],
    list_options[], serve_options[], store_options[];
extern const char store_help[];

/* Which shared options each command takes: its CLI_* flags (cli.h). */
const struct command commands[] = {
	{ "validate", cmd_validate, CLI_FORMAT | CLI_VAR | CLI_CONFIG, validate_options, "q",
	  "check release plans and report every problem", validate_help },
	{ "plan", cmd_plan, CLI_FORMAT | CLI_VAR, NULL, NULL,
	  "show what a release will do, variables resolved", plan_help },
	{ "graph", cmd_graph, CLI_VAR, graph_options, NULL,
	  "draw a plan as a Mermaid or Graphviz graph", graph_help },
	{ "run", cmd_run, CLI_DB | CLI_VAR, run_options, NULL, "run a release in the foreground",
	  run_help },
	{ "resume", cmd_resume, CLI_DB, NULL, NULL, "continue unfinished releases", resume_help },
	{ "retry", cmd_retry, CLI_DB | CLI_SERVER, NULL, NULL,
	  "continue a failed or aborted release", retry_help },
	{ "approve", cmd_approve, CLI_DB | CLI_SERVER, control_options, NULL,
	  "approve a Human step", approve_help },
	{ "reject", cmd_reject, CLI_DB | CLI_SERVER, control_options, NULL,
	  "reject a Human step (the release stops)", reject_help },
	{ "abort", cmd_abort, CLI_DB | CLI_SERVER, control_options, NULL, "abort a running release",
	  abort_help },
	{ "link", cmd_link, CLI_SERVER, NULL, NULL,
	  "ask a server for a new approval link of a waiting step", link_help },
	{ "list", cmd_list, CLI_DB | CLI_FORMAT, list_options, NULL, "list releases", list_help },
	{ "show", cmd_show, CLI_DB | CLI_FORMAT, NULL, NULL,
	  "show a release: stages and steps with state and timing", show_help },
	{ "history", cmd_history, CLI_DB | CLI_FORMAT, NULL, NULL, "show a release's event history",
	  history_help },
	{ "serve", cmd_serve, CLI_CONFIG | CLI_DB, serve_options, NULL,
	  "run releases behind the HTTP API, approval pages and dashboard", serve_help },
	{ "store", cmd_store, CLI_DB, store_options, NULL, "back up, check or migrate the store",
	  store_help },
	{ "token", cmd_token, CLI_RAW, NULL, NULL, "make an API token for steppy serve",
	  token_help },
	{ "help", cmd_help, CLI_RAW, NULL, NULL, "show help for steppy or one command", help_help },
	{ "version", cmd_version, CLI_RAW, NULL, NULL, "print the version", version_help },
	/* internal: hidden from help; its argv ends with a command line of its own */
	{ "__supervise", cmd_supervise, CLI_RAW, NULL, NULL, NULL, supervise_help },
	{ NULL, NULL, 0, NULL, NULL, NULL, NULL },
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

/* The largest file --var-file reads (a key, a token, a certificate). */
#define MAX_VAR_FILE (64 * 1024)

/* The shared options; their ids lie above the chars of commands' own options. */
enum { ID_DB = 0x100, ID_FORMAT, ID_VAR, ID_CONFIG, ID_SERVER, ID_TOKEN_FILE, ID_VAR_FILE };

static const struct common_option {
	unsigned flag; /* the CLI_* flag of a command that takes it */
	struct option opt;
} common_options[] = {
	{ CLI_DB, { "db", required_argument, NULL, ID_DB } },
	{ CLI_FORMAT, { "format", required_argument, NULL, ID_FORMAT } },
	{ CLI_VAR, { "var", required_argument, NULL, ID_VAR } },
	{ CLI_VAR, { "var-file", required_argument, NULL, ID_VAR_FILE } },
	{ CLI_CONFIG, { "config", required_argument, NULL, ID_CONFIG } },
	{ CLI_SERVER, { "server", required_argument, NULL, ID_SERVER } },
	{ CLI_SERVER, { "token-file", required_argument, NULL, ID_TOKEN_FILE } },
};
#define NCOMMON (sizeof(common_options) / sizeof(common_options[0]))

/* Whether some command takes an option called name (len bytes). */
static bool option_known(const char *name, size_t len)
{
	for (size_t i = 0; i < NCOMMON; i++)
		if (strlen(common_options[i].opt.name) == len &&
		    !strncmp(common_options[i].opt.name, name, len))
			return true;
	for (const struct command *c = commands; c->name; c++)
		for (const struct option *o = c->own; o && o->name; o++)
			if (strlen(o->name) == len && !strncmp(o->name, name, len))
				return true;
	return false;
}

/* Says which unknown long option arg is: another command's ("steppy: resume
 * takes no --var"), a near miss of one of opts ("did you mean"), or neither. */
static int unknown_long_option(char **argv, const struct option *opts, const char *name, size_t len)
{
	char *word = xstrndup(name, len);
	size_t n = 0;
	while (opts[n].name)
		n++;
	const char **names = xcalloc(n + 1, sizeof(*names));
	for (size_t i = 0; i < n; i++)
		names[i] = opts[i].name;
	const char *guess = suggest_closest(word, names);
	if (option_known(name, len))
		usage_error("%s takes no --%s", argv[0], word);
	else if (guess)
		option_error("%s: unknown option --%s; did you mean --%s?", argv[0], word, guess);
	else
		option_error("%s: unknown option --%s (see steppy %s --help)", argv[0], word,
		             argv[0]);
	free(names);
	free(word);
	return EXIT_USAGE;
}

/*
 * For the '?' of getopt_long() (opterr is 0): prints what is wrong with the
 * option just read - unknown (with "did you mean" among opts), ambiguous, a
 * value missing or not taken - and returns EXIT_USAGE.
 */
static int cli_option_error(char **argv, const struct option *opts)
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
	size_t prefixed = 0;
	for (const struct option *o = opts; o->name; o++) {
		if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
			if (o->has_arg == required_argument)
				return option_error("%s: option --%s needs a value", argv[0],
				                    o->name);
			return option_error("%s: option --%s takes no value", argv[0], o->name);
		}
		prefixed += !strncmp(o->name, name, len);
	}
	if (prefixed > 1)
		return option_error("%s: option --%.*s is ambiguous (see steppy %s --help)",
		                    argv[0], (int)len, name, argv[0]);
	return unknown_long_option(argv, opts, name, len);
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

/* Parses NAME=VALUE into v (pointing into arg). Returns 0 or -1. */
static int parse_var(char *arg, struct var_value *v)
{
	char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return -1;
	*eq = '\0';
	v->name = arg;
	v->value = eq + 1;
	return 0;
}

/* Parses a --format argument. Returns 0 or -1. */
static int parse_format(const char *arg, enum output_format *out)
{
	if (!strcmp(arg, "text"))
		*out = FORMAT_TEXT;
	else if (!strcmp(arg, "json"))
		*out = FORMAT_JSON;
	else
		return -1;
	return 0;
}

/* The long options of cmd for getopt_long(): the shared ones its flags
 * name, its own, and --help; {NULL} ended. Caller frees. */
static struct option *options_of(const struct command *cmd)
{
	size_t n = 0;
	while (cmd->own && cmd->own[n].name)
		n++;
	struct option *opts = xcalloc(NCOMMON + n + 2, sizeof(*opts));
	size_t k = 0;
	for (size_t i = 0; i < NCOMMON; i++)
		if (cmd->common & common_options[i].flag)
			opts[k++] = common_options[i].opt;
	for (size_t i = 0; i < n; i++)
		opts[k++] = cmd->own[i];
	opts[k] = (struct option){ "help", no_argument, NULL, 'h' };
	return opts;
}

/* Takes one option getopt_long() returned (c, with optarg) into ctx.
 * Returns EXIT_OK, -1 for --help (printed), or EXIT_USAGE (printed). */
static int take_option(const struct command *cmd, struct cli_ctx *ctx, int c, char **argv,
                       const struct option *opts)
{
	/* "" would read as "not given" later (the default store, the default
	 * configuration): a mistake, never a silent default */
	const char *valued = c == ID_DB           ? "--db"
	                     : c == ID_CONFIG     ? "--config"
	                     : c == ID_SERVER     ? "--server"
	                     : c == ID_TOKEN_FILE ? "--token-file"
	                                          : NULL;
	if (valued && optarg && !*optarg)
		return usage_error("%s needs a value", valued);
	switch (c) {
	case ID_DB:
		ctx->db = optarg;
		break;
	case ID_FORMAT:
		if (parse_format(optarg, &ctx->format) < 0)
			return usage_error("--format must be text or json, not \"%s\"", optarg);
		break;
	case ID_VAR:
		if (parse_var(optarg, &ctx->vars[ctx->nvars++]) < 0)
			return usage_error("--var takes NAME=VALUE, not \"%s\"", optarg);
		break;
	case ID_VAR_FILE: {
		/* NAME=FILE: the value is the file's text (one final line end
		 * left out), so a secret is in neither ps nor shell history. */
		struct var_value *v = &ctx->vars[ctx->nvars];
		if (parse_var(optarg, v) < 0)
			return usage_error("--var-file takes NAME=FILE, not \"%s\"", optarg);
		char *data = NULL;
		size_t len = 0;
		struct strbuf err = STRBUF_INIT;
		if (read_file_capped(v->value, MAX_VAR_FILE, &data, &len, &err) < 0) {
			int code = usage_error("--var-file %s: %s: %s", v->name, v->value, err.buf);
			strbuf_release(&err);
			return code;
		}
		strbuf_release(&err);
		if (memchr(data, '\0', len)) {
			free(data);
			return usage_error("--var-file %s: %s holds a NUL byte", v->name, v->value);
		}
		if (len && data[len - 1] == '\n')
			data[--len] = '\0';
		if (len && data[len - 1] == '\r')
			data[--len] = '\0';
		ctx->var_files[ctx->nvar_files++] = data;
		v->value = data;
		ctx->nvars++;
		break;
	}
	case ID_CONFIG:
		ctx->config = optarg;
		break;
	case ID_SERVER:
		ctx->server = optarg;
		break;
	case ID_TOKEN_FILE:
		ctx->token_file = optarg;
		break;
	case 'h':
		command_help(cmd, stdout);
		return -1;
	case '?':
		return cli_option_error(argv, opts);
	default:
		ctx->opts[ctx->nopts++] = (struct cli_opt){ c, optarg };
	}
	return EXIT_OK;
}

int cli_parse(const struct command *cmd, int argc, char **argv, struct cli_ctx *ctx)
{
	*ctx = (struct cli_ctx){ .format = FORMAT_TEXT };
	opterr = 0;    /* take_option() says what is wrong with an option */
	int first = 1; /* CLI_RAW: everything is an operand */
	int code = EXIT_OK;
	if (!(cmd->common & CLI_RAW)) {
		struct option *opts = options_of(cmd);
		char *shorts = xstrfmt("h%s", cmd->short_opts ? cmd->short_opts : "");
		ctx->vars = xcalloc((size_t)argc, sizeof(*ctx->vars));
		ctx->var_files = xcalloc((size_t)argc, sizeof(*ctx->var_files));
		ctx->opts = xcalloc((size_t)argc, sizeof(*ctx->opts));
		int c;
		optind = 0; /* 0: GNU getopt starts afresh (it may have run before) */
		while (code == EXIT_OK && (c = getopt_long(argc, argv, shorts, opts, NULL)) != -1)
			code = take_option(cmd, ctx, c, argv, opts);
		first = optind;
		free(shorts);
		free(opts);
	}
	if (code != EXIT_OK)
		return code;
	ctx->operands = xcalloc((size_t)(argc - first) + 2, sizeof(*ctx->operands));
	ctx->operands[0] = argv[0];
	ctx->noperands = 1;
	for (int i = first; i < argc; i++)
		ctx->operands[ctx->noperands++] = argv[i];
	return EXIT_OK;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	free(ctx->vars);
	for (size_t i = 0; i < ctx->nvar_files; i++)
		free(ctx->var_files[i]);
	free(ctx->var_files);
	free(ctx->opts);
	free(ctx->operands);
	*ctx = (struct cli_ctx){ .format = FORMAT_TEXT };
}

int command_run(const struct command *cmd, int argc, char **argv)
{
	struct cli_ctx ctx;
	int code = cli_parse(cmd, argc, argv, &ctx);
	if (code == EXIT_OK && !(cmd->common & CLI_RAW)) {
		/* Plugin step types register before any plan is read
		 * (docs/plugins.md); refused plugins are warned about. */
		struct strbuf warnings = STRBUF_INIT;
		plugins_load(NULL, &warnings);
		for (const char *line = warnings.buf; *line;) {
			size_t n = strcspn(line, "\n");
			fprintf(stderr, "steppy: warning: %.*s\n", (int)n, line);
			line += n + (line[n] == '\n');
		}
		strbuf_release(&warnings);
	}
	if (code == EXIT_OK)
		code = cmd->run(ctx.noperands, ctx.operands, &ctx);
	cli_ctx_release(&ctx);
	return code < 0 ? EXIT_OK : code;
}

int cli_check_server(const struct cli_ctx *ctx)
{
	if (ctx->token_file && !ctx->server)
		return usage_error("--token-file goes with --server URL");
	if (ctx->server && ctx->db)
		return usage_error("--db does not go with --server");
	return EXIT_OK;
}
