/*
 * main.c - the steppy binary: finds the subcommand in the table and runs it.
 */
#include "cli/cli.h"

#include "util/suggest.h"

#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		command_run(command_find("help"), 1, argv);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return command_run(command_find("help"), 1, argv);
	if (!strcmp(argv[1], "--version"))
		return command_run(command_find("version"), 1, argv + 1);
	const struct command *cmd = command_find(argv[1]);
	if (!cmd) {
		const char *names[32];
		size_t n = 0;
		for (const struct command *c = commands; c->name && n < 31; c++)
			names[n++] = c->name;
		names[n] = NULL;
		const char *guess = suggest_closest(argv[1], names);
		if (guess)
			return usage_error(
			    "no command \"%s\"; did you mean \"%s\"? (see steppy help)", argv[1],
			    guess);
		return usage_error("no command \"%s\" (see steppy help)", argv[1]);
	}
	/* `steppy CMD --help` works for every command, whatever its options. */
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			command_help(cmd, stdout);
			return EXIT_OK;
		}
	}
	return command_run(cmd, argc - 1, argv + 1);
}
