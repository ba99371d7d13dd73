/*
 * cmd-control.c - `steppy approve`, `steppy reject`, `steppy abort`: change
 * a release from another terminal (or script).
 */
#include "cli/cli.h"

#include "engine/control.h"
#include "engine/history.h"
#include "util/alloc.h"
#include "util/error.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

const char approve_help[] =
    "usage: steppy approve [--comment TEXT] [--by NAME] [--db PATH] ID STEP\n"
    "\n"
    "Approves a Human step that waits for a decision. STEP is the step's name\n"
    "(or STAGE/STEP when names repeat across stages); ID may be a unique prefix.\n"
    "If a steppy process runs the release, it applies the decision at once;\n"
    "otherwise the decision is recorded and steppy resume ID continues.\n"
    "\n"
    "options:\n"
    "  --comment TEXT  recorded with the decision\n"
    "  --by NAME       who decides (default: $USER); must be listed when the\n"
    "                  step names approvers\n"
    "  --db PATH       the store (see steppy run --help)\n"
    "\n"
    "exit status: 0 recorded, 1 refused (the step does not wait for a decision,\n"
    "             or NAME is not an approver), 2 usage or store error,\n"
    "             7 the process running the release did not answer in time (queued)\n";

const char reject_help[] =
    "usage: steppy reject [--comment TEXT] [--by NAME] [--db PATH] ID STEP\n"
    "\n"
    "Rejects a Human step: the release stops when the stage's other steps have\n"
    "ended, and ends REJECTED. Options and exit status as steppy approve.\n";

const char abort_help[] =
    "usage: steppy abort [--reason TEXT] [--by NAME] [--db PATH] ID\n"
    "\n"
    "Aborts a running release: running commands get SIGTERM (SIGKILL after a\n"
    "grace period), waits and approvals end, and the release ends ABORTED.\n"
    "steppy retry ID continues it later.\n"
    "\n"
    "exit status: 0 aborted (or being aborted by the process running it),\n"
    "             1 refused (it has ended), 2 usage or store error, 7 no answer in time\n";

enum { EXIT_REFUSED = 1, EXIT_QUEUED = 7 };

static int control(int argc, char **argv, const char *kind, const char *help)
{
	static const struct option opts[] = {
		{ "comment", required_argument, NULL, 'c' },
		{ "reason", required_argument, NULL, 'r' },
		{ "by", required_argument, NULL, 'b' },
		{ "db", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *comment = NULL, *by_flag = NULL, *db = NULL;
	bool decision = strcmp(kind, "abort") != 0;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
		case 'r':
			if ((c == 'c') != decision)
				return usage_error("%s takes --%s", argv[0],
				                   decision ? "comment" : "reason");
			comment = optarg;
			break;
		case 'b':
			by_flag = optarg;
			break;
		case 'd':
			db = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return EXIT_OK;
		default:
			return EXIT_USAGE;
		}
	}
	if (argc - optind != (decision ? 2 : 1))
		return usage_error("usage: steppy %s (see steppy %s --help)", argv[0], argv[0]);

	struct store *st = NULL;
	int code = cli_open_store(db, &st, NULL);
	struct exec_row row = { 0 };
	if (code == EXIT_OK)
		code = cli_find_execution(st, argv[optind], &row);
	struct loaded_exec le = { 0 };
	if (code == EXIT_OK) {
		struct strbuf err = STRBUF_INIT;
		if (execution_load(st, row.id, &le, &err) < 0) {
			fprintf(stderr, "steppy: %s\n", err.buf);
			code = EXIT_USAGE;
		}
		strbuf_release(&err);
	}
	if (code == EXIT_OK && le.state.status != EXEC_RUNNING) {
		fprintf(stderr, "steppy: release %s has ended (%s)\n", row.id,
		        exec_status_name(le.state.status));
		code = EXIT_REFUSED;
	}
	char *me = cli_whoami();
	const char *by = by_flag ? by_flag : me;
	json_t *data = json_pack("{ss ss}", "by", by, "via", "cli");
	if (comment)
		json_object_set_new(data, decision ? "comment" : "reason", json_string(comment));
	const char *step_name = decision ? argv[optind + 1] : NULL;
	if (code == EXIT_OK && decision) {
		int stage, step;
		int n = cli_find_step(le.plan, &le.state, step_name, true, &stage, &step);
		if (n == 0) {
			int any =
			    cli_find_step(le.plan, &le.state, step_name, false, &stage, &step);
			fprintf(stderr, "steppy: %s\n",
			        any ? "that step does not wait for a decision now"
			            : "the release has no step of that name");
			code = any ? EXIT_REFUSED : EXIT_USAGE;
		} else if (n > 1) {
			fprintf(stderr,
			        "steppy: several waiting steps are named \"%s\"; write "
			        "STAGE/STEP\n",
			        step_name);
			code = EXIT_USAGE;
		} else {
			const struct plan_step *ps = &le.plan->stages[stage].steps[step];
			if (!cli_is_approver(ps, by)) {
				fprintf(stderr, "steppy: %s is not an approver of \"%s\"\n", by,
				        ps->name);
				code = EXIT_REFUSED;
			}
			json_object_set_new(data, "stage", json_integer(stage));
			json_object_set_new(data, "step", json_integer(step));
		}
	}
	if (code == EXIT_OK) {
		struct strbuf err = STRBUF_INIT;
		int r = control_apply(st, row.id, kind, json_incref(data), 10000, &err);
		const char *done = !strcmp(kind, "approve")  ? "approved"
		                   : !strcmp(kind, "reject") ? "rejected"
		                                             : "aborted";
		if (r == CONTROL_DONE_BY_OWNER) {
			printf("%s%s%s%s release %s\n", done, decision ? " \"" : "",
			       decision ? step_name : "", decision ? "\" of" : "", row.id);
		} else if (r == CONTROL_DONE_HERE) {
			printf("%s%s%s%s release %s\n", done, decision ? " \"" : "",
			       decision ? step_name : "", decision ? "\" of" : "", row.id);
			if (decision)
				printf("no steppy process runs it now: steppy resume %s continues "
				       "it\n",
				       row.id);
		} else if (r == SP_EBUSY) {
			fprintf(stderr, "steppy: %s\n", err.buf);
			code = EXIT_QUEUED;
		} else {
			fprintf(stderr, "steppy: refused: %s\n", err.buf);
			code = r == SP_EINVAL ? EXIT_REFUSED : EXIT_USAGE;
		}
		strbuf_release(&err);
	}
	json_decref(data);
	free(me);
	loaded_exec_release(&le);
	exec_row_release(&row);
	store_close(st);
	return code;
}

int cmd_approve(int argc, char **argv)
{
	return control(argc, argv, "approve", approve_help);
}

int cmd_reject(int argc, char **argv)
{
	return control(argc, argv, "reject", reject_help);
}

int cmd_abort(int argc, char **argv)
{
	return control(argc, argv, "abort", abort_help);
}
