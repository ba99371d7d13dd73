/*
 * cmd-control.c - `steppy approve`, `steppy reject`, `steppy abort`: change
 * a release from another terminal (or script).
 */
#include "cli/cli.h"

#include "engine/control.h"
#include "engine/history.h"
#include "steps/human.h"
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
    "A step with minApprovals N needs N different people: each approval but\n"
    "the last prints \"approval K of N recorded\". Unless the step allows it\n"
    "(allowSelfApproval), whoever started the release cannot approve it.\n"
    "\n"
    "options:\n"
    "  --comment TEXT  recorded with the decision\n"
    "  --by NAME       who decides (default: $USER); must be listed when the\n"
    "                  step names approvers\n"
    "  --db PATH       the store (see steppy run --help)\n"
    "\n"
    "exit status: 0 recorded, 1 refused (the step does not wait for a decision,\n"
    "             NAME is not an approver, has approved already, or started\n"
    "             the release), 2 usage or store error,\n"
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

/*
 * After an approval was applied: reads the release back and sets *ret_nth to
 * the place of by's approval among those of the step's current attempt (1
 * for the first), 0 if it is not found, and *ret_need to the approvals the
 * step needs. data names the step ({"stage", "step"}).
 */
static void approval_count(struct store *st, const char *id, const json_t *data, const char *by,
                           int *ret_nth, int *ret_need)
{
	struct loaded_exec le;
	struct strbuf err = STRBUF_INIT;
	int stage = (int)json_integer_value(json_object_get(data, "stage"));
	int step = (int)json_integer_value(json_object_get(data, "step"));
	if (execution_load(st, id, &le, &err) == 0 && stage >= 0 &&
	    (size_t)stage < le.plan->nstages && step >= 0 &&
	    (size_t)step < le.plan->stages[stage].nsteps) {
		const struct step_state *s = &le.state.steps[stage][step];
		*ret_need = human_min_approvals(le.plan->stages[stage].steps[step].node);
		for (int i = 0; i < s->napproved && !*ret_nth; i++)
			if (human_same_person(s->approved_by[i], by))
				*ret_nth = i + 1;
	}
	loaded_exec_release(&le);
	strbuf_release(&err);
}

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
			if (!human_is_approver(ps->node, by)) {
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
		if (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE) {
			int nth = 0, need = 1;
			if (!strcmp(kind, "approve"))
				approval_count(st, row.id, data, by, &nth, &need);
			if (nth && nth < need)
				printf("approval %d of %d recorded for \"%s\" of release %s\n", nth,
				       need, step_name, row.id);
			else if (decision)
				printf("%s \"%s\" of release %s\n",
				       !strcmp(kind, "approve") ? "approved" : "rejected",
				       step_name, row.id);
			else
				printf("aborted release %s\n", row.id);
			if (r == CONTROL_DONE_HERE && decision && !(nth && nth < need))
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
