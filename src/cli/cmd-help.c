/*
 * cmd-help.c - `steppy help` and `steppy version`.
 */
#include "cli/cli.h"

#include <string.h>

const char help_help[] = "usage: steppy help [COMMAND]\n"
                         "\n"
                         "Lists the commands, or shows the help of one (same as COMMAND --help).\n";

const char version_help[] = "usage: steppy version\n"
                            "\n"
                            "Prints steppy's version (same as steppy --version).\n";

int cmd_help(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)ctx; /* CLI_RAW */
	if (argc > 2)
		return usage_error("help takes at most one command name");
	if (argc == 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
		const struct command *cmd = command_find(argv[1]);
		if (!cmd)
			return usage_error("no command \"%s\" (see steppy help)", argv[1]);
		command_help(cmd, stdout);
		return EXIT_OK;
	}
	printf("usage: steppy [--version] [--help] COMMAND [ARGS]\n"
	       "\n"
	       "Steppy runs release plans: stages one after another, the steps of a stage\n"
	       "together, a failed step stops the release.\n"
	       "\n"
	       "commands:\n");
	for (const struct command *c = commands; c->name; c++)
		if (c->summary)
			printf("  %-10s %s\n", c->name, c->summary);
	printf("\n'steppy help COMMAND' or 'steppy COMMAND --help' shows a command's options.\n");
	return EXIT_OK;
}

int cmd_version(int argc, char **argv, const struct cli_ctx *ctx)
{
	(void)ctx; /* CLI_RAW */
	(void)argv;
	if (argc > 1)
		return usage_error("version takes no arguments");
	printf("steppy %s\n", STEPPY_VERSION);
	return EXIT_OK;
}
