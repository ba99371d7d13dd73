/*
 * test-cli-options.c - the options several commands share, parsed once from
 * the flags of a command's row (cli_parse() in src/cli/commands.c): what
 * lands in struct cli_ctx, what a command gets of its own, the operands,
 * and the exact messages for every mistake; plus the invariants of the real
 * command table and of the exit codes.
 */
#include "unit.h"

#include "cli/cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- running cli_parse() with stderr captured ----------------------------- */

static char captured[4096];

/* cli_parse() over the words of args (NULL ended; args[0] the command's
 * name); what it printed to stderr lands in captured. */
static int parse(const struct command *cmd, const char *const *args, struct cli_ctx *ctx)
{
	static char words[32][128];
	char *argv[33];
	int argc = 0;
	for (; args[argc]; argc++) {
		snprintf(words[argc], sizeof(words[argc]), "%s", args[argc]);
		argv[argc] = words[argc];
	}
	argv[argc] = NULL;
	char path[] = "/tmp/steppy-test-cli-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	int code = cli_parse(cmd, argc, argv, ctx);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ssize_t n = pread(fd, captured, sizeof(captured) - 1, 0);
	captured[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return code;
}

static int no_run(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return EXIT_OK;
}

static const struct option own[] = {
	{ "status", required_argument, NULL, 's' },
	{ "quiet", no_argument, NULL, 'q' },
	{ NULL, 0, NULL, 0 },
};

/* A command with every shared option and two of its own. */
static const struct command all = { "test",
	                            no_run,
	                            CLI_DB | CLI_FORMAT | CLI_VAR | CLI_CONFIG | CLI_SERVER,
	                            own,
	                            "q",
	                            "a test",
	                            "usage: steppy test\n" };
/* A command with --db only. */
static const struct command db_only = {
	"dbonly", no_run, CLI_DB, NULL, NULL, "a test", "usage: steppy dbonly\n"
};

/* ---- what a command receives ---------------------------------------------- */

static void shared_options_fill_the_context(void **state)
{
	(void)state;
	struct cli_ctx ctx;
	const char *args[] = { "test",         "--db",   "/tmp/s.db", "--format=json",
		               "--var",        "A=1",    "x.yaml",    "--var=B=two=2",
		               "--config",     "c.yaml", "--server",  "http://127.0.0.1:1",
		               "--token-file", "t",      NULL };
	assert_int_equal(parse(&all, args, &ctx), EXIT_OK);
	assert_string_equal(ctx.db, "/tmp/s.db");
	assert_int_equal(ctx.format, FORMAT_JSON);
	assert_int_equal(ctx.nvars, 2);
	assert_string_equal(ctx.vars[0].name, "A");
	assert_string_equal(ctx.vars[0].value, "1");
	assert_string_equal(ctx.vars[1].name, "B");
	assert_string_equal(ctx.vars[1].value, "two=2");
	assert_string_equal(ctx.config, "c.yaml");
	assert_string_equal(ctx.server, "http://127.0.0.1:1");
	assert_string_equal(ctx.token_file, "t");
	assert_int_equal(ctx.nopts, 0);
	/* the operands, options taken out, wherever they stood */
	assert_int_equal(ctx.noperands, 2);
	assert_string_equal(ctx.operands[0], "test");
	assert_string_equal(ctx.operands[1], "x.yaml");
	assert_null(ctx.operands[2]);
	assert_string_equal(captured, "");
	cli_ctx_release(&ctx);
}

static void defaults_when_absent(void **state)
{
	(void)state;
	struct cli_ctx ctx;
	const char *args[] = { "test", "a", "b", NULL };
	assert_int_equal(parse(&all, args, &ctx), EXIT_OK);
	assert_null(ctx.db);
	assert_int_equal(ctx.format, FORMAT_TEXT);
	assert_int_equal(ctx.nvars, 0);
	assert_null(ctx.config);
	assert_null(ctx.server);
	assert_int_equal(ctx.noperands, 3);
	cli_ctx_release(&ctx);
	cli_ctx_release(&ctx); /* released twice: harmless */
}

static void own_options_in_order(void **state)
{
	(void)state;
	struct cli_ctx ctx;
	const char *args[] = { "test", "--status", "RUNNING", "-q", "--db", "d", "--stat=x", NULL };
	assert_int_equal(parse(&all, args, &ctx), EXIT_OK);
	assert_int_equal(ctx.nopts, 3);
	assert_int_equal(ctx.opts[0].id, 's');
	assert_string_equal(ctx.opts[0].arg, "RUNNING");
	assert_int_equal(ctx.opts[1].id, 'q');
	assert_null(ctx.opts[1].arg);
	assert_int_equal(ctx.opts[2].id, 's'); /* an unambiguous prefix, as getopt takes it */
	assert_string_equal(ctx.opts[2].arg, "x");
	assert_string_equal(ctx.db, "d");
	cli_ctx_release(&ctx);
}

static void double_dash_ends_options(void **state)
{
	(void)state;
	struct cli_ctx ctx;
	const char *args[] = { "test", "--db", "d", "--", "--format", "-", NULL };
	assert_int_equal(parse(&all, args, &ctx), EXIT_OK);
	assert_int_equal(ctx.format, FORMAT_TEXT);
	assert_int_equal(ctx.noperands, 3);
	assert_string_equal(ctx.operands[1], "--format");
	assert_string_equal(ctx.operands[2], "-");
	cli_ctx_release(&ctx);
}

static void raw_commands_get_argv_as_given(void **state)
{
	(void)state;
	const struct command *token = command_find("token");
	assert_non_null(token);
	struct cli_ctx ctx;
	const char *args[] = { "token", "--db", "x", "-q", NULL };
	assert_int_equal(parse(token, args, &ctx), EXIT_OK);
	assert_int_equal(ctx.noperands, 4);
	assert_string_equal(ctx.operands[1], "--db");
	assert_string_equal(ctx.operands[3], "-q");
	assert_null(ctx.db);
	cli_ctx_release(&ctx);
}

static void help_is_printed_not_an_error(void **state)
{
	(void)state;
	struct cli_ctx ctx;
	const char *args[] = { "test", "--hel", NULL }; /* a prefix of --help */
	assert_int_equal(parse(&all, args, &ctx), -1);
	cli_ctx_release(&ctx);
}

/* ---- the messages of every mistake ---------------------------------------- */

static void expect_usage(const struct command *cmd, const char *const *args, const char *message)
{
	struct cli_ctx ctx;
	assert_int_equal(parse(cmd, args, &ctx), EXIT_USAGE);
	if (!strstr(captured, message))
		fail_msg("expected \"%s\" in \"%s\"", message, captured);
	cli_ctx_release(&ctx);
}

static void mistakes_are_named(void **state)
{
	(void)state;
	expect_usage(&all, (const char *[]){ "test", "--format", "xml", NULL },
	             "steppy: --format must be text or json, not \"xml\"\n");
	expect_usage(&all, (const char *[]){ "test", "--var", "NOEQUALS", NULL },
	             "steppy: --var takes NAME=VALUE, not \"NOEQUALS\"\n");
	expect_usage(&all, (const char *[]){ "test", "--var", "=x", NULL },
	             "--var takes NAME=VALUE, not \"=x\"");
	expect_usage(&all, (const char *[]){ "test", "--db", NULL },
	             "steppy test: option --db needs a value\n");
	expect_usage(&all, (const char *[]){ "test", "--quiet=yes", NULL },
	             "steppy test: option --quiet takes no value\n");
	expect_usage(&all, (const char *[]){ "test", "--stauts", "x", NULL },
	             "steppy test: unknown option --stauts; did you mean --status?\n");
	expect_usage(&all, (const char *[]){ "test", "--zzzzzz", NULL },
	             "steppy test: unknown option --zzzzzz (see steppy test --help)\n");
	expect_usage(&all, (const char *[]){ "test", "-x", NULL },
	             "steppy test: unknown option -x (see steppy test --help)\n");
	/* --s: --status and --server */
	expect_usage(&all, (const char *[]){ "test", "--s", "x", NULL },
	             "steppy test: option --s is ambiguous (see steppy test --help)\n");
}

/* An empty value would later read as "not given" (the default store, the
 * default configuration): a usage error instead, in both spellings. */
static void empty_values_are_refused(void **state)
{
	(void)state;
	expect_usage(&all, (const char *[]){ "test", "--db=", NULL },
	             "steppy: --db needs a value\n");
	expect_usage(&all, (const char *[]){ "test", "--db", "", NULL },
	             "steppy: --db needs a value\n");
	expect_usage(&all, (const char *[]){ "test", "--config=", NULL },
	             "steppy: --config needs a value\n");
	expect_usage(&all, (const char *[]){ "test", "--server=", NULL },
	             "steppy: --server needs a value\n");
	expect_usage(&all, (const char *[]){ "test", "--token-file=", NULL },
	             "steppy: --token-file needs a value\n");
}

static void options_of_other_commands_are_named_as_such(void **state)
{
	(void)state;
	/* a shared option this command does not take */
	expect_usage(&db_only, (const char *[]){ "dbonly", "--var", "A=1", NULL },
	             "steppy: dbonly takes no --var\n");
	expect_usage(&db_only, (const char *[]){ "dbonly", "--server", "u", NULL },
	             "steppy: dbonly takes no --server\n");
	/* another command's own option (run's) */
	expect_usage(&db_only, (const char *[]){ "dbonly", "--fail-fast", NULL },
	             "steppy: dbonly takes no --fail-fast\n");
	/* the real resume, as tests/cli expect it */
	expect_usage(command_find("resume"), (const char *[]){ "resume", "--var", "A=1", NULL },
	             "steppy: resume takes no --var\n");
}

static void server_option_conflicts(void **state)
{
	(void)state;
	struct cli_ctx ctx = { .token_file = "t" };
	assert_int_equal(cli_check_server(&ctx), EXIT_USAGE);
	ctx = (struct cli_ctx){ .server = "http://127.0.0.1:1", .db = "d" };
	assert_int_equal(cli_check_server(&ctx), EXIT_USAGE);
	ctx = (struct cli_ctx){ .server = "http://127.0.0.1:1", .token_file = "t" };
	assert_int_equal(cli_check_server(&ctx), EXIT_OK);
	ctx = (struct cli_ctx){ .db = "d" };
	assert_int_equal(cli_check_server(&ctx), EXIT_OK);
}

/* ---- the real table -------------------------------------------------------- */

static const char *const shared_names[] = { "db",     "format",     "var",  "config",
	                                    "server", "token-file", "help", NULL };

/* No command's own option shadows a shared one or --help, or repeats a name;
 * ids stay below the shared ones' (0x100 and up) and are not '?' or 'h'. */
static void table_options_do_not_collide(void **state)
{
	(void)state;
	for (const struct command *c = commands; c->name; c++) {
		for (const struct option *o = c->own; o && o->name; o++) {
			for (const char *const *s = shared_names; *s; s++)
				if (!strcmp(o->name, *s))
					fail_msg("%s: own option --%s is a shared one", c->name,
					         o->name);
			for (const struct option *p = o + 1; p->name; p++)
				if (!strcmp(o->name, p->name))
					fail_msg("%s: --%s twice", c->name, o->name);
			assert_true(o->val > 0 && o->val < 0x100);
			assert_true(o->val != '?' && o->val != 'h');
			assert_null(o->flag);
		}
		assert_non_null(c->run);
		assert_non_null(c->help);
		assert_ptr_equal(command_find(c->name), c);
	}
}

/* Every command parses a bare --help as its help. */
static void every_command_takes_help(void **state)
{
	(void)state;
	for (const struct command *c = commands; c->name; c++) {
		if (c->common & CLI_RAW)
			continue;
		struct cli_ctx ctx;
		const char *args[] = { c->name, "--help", NULL };
		int saved = dup(1), null = open("/dev/null", O_WRONLY);
		fflush(stdout);
		dup2(null, 1);
		int code = parse(c, args, &ctx);
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		close(null);
		assert_int_equal(code, -1);
		cli_ctx_release(&ctx);
	}
}

/* The exit codes scripts test: 0 to 7, only 1 with two names (documented in
 * cli.h and docs/cli.md: no command can end both ways). */
static void exit_codes_are_stable(void **state)
{
	(void)state;
	assert_int_equal(EXIT_OK, 0);
	assert_int_equal(EXIT_INVALID, 1);
	assert_int_equal(EXIT_REFUSED, 1);
	assert_int_equal(EXIT_USAGE, 2);
	assert_int_equal(EXIT_FAILED, 3);
	assert_int_equal(EXIT_REJECTED, 4);
	assert_int_equal(EXIT_ABORTED, 5);
	assert_int_equal(EXIT_STOPPED, 6);
	assert_int_equal(EXIT_QUEUED, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(shared_options_fill_the_context),
		cmocka_unit_test(defaults_when_absent),
		cmocka_unit_test(own_options_in_order),
		cmocka_unit_test(double_dash_ends_options),
		cmocka_unit_test(raw_commands_get_argv_as_given),
		cmocka_unit_test(help_is_printed_not_an_error),
		cmocka_unit_test(mistakes_are_named),
		cmocka_unit_test(empty_values_are_refused),
		cmocka_unit_test(options_of_other_commands_are_named_as_such),
		cmocka_unit_test(server_option_conflicts),
		cmocka_unit_test(table_options_do_not_collide),
		cmocka_unit_test(every_command_takes_help),
		cmocka_unit_test(exit_codes_are_stable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
