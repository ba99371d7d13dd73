/*
 * cmd-run.c - `steppy run`, `steppy resume` and `steppy retry`: drive
 * releases in the foreground until they end.
 */
#include "cli/cli.h"

#include "cli/view.h"
#include "notify/hub.h"
#include "runtime/control.h"
#include "runtime/runtime.h"
#include "steps/services.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

const char run_help[] =
    "usage: steppy run [--var NAME=VALUE]... [--db PATH] [--fail-fast] PLAN\n"
    "\n"
    "Validates PLAN, records a new execution in the store and runs it in the\n"
    "foreground until it ends: stages one after another, the steps of a stage\n"
    "together. Progress is shown live (a status line on a terminal, plain log\n"
    "lines otherwise). A Human step is decided with steppy approve/reject from\n"
    "anywhere, or by typing y or n here when it is the only one waiting.\n"
    "It drives this release only: unfinished releases left by stopped steppy\n"
    "processes are counted in one line, and steppy resume continues them.\n"
    "\n"
    "Ctrl-C stops steppy, not the release: running commands are stopped, and\n"
    "steppy resume continues the release later (interrupted attempts count as\n"
    "failed attempts). To stop the release itself: steppy abort ID.\n"
    "\n"
    "options:\n"
    "  --var NAME=VALUE  a value for a plan variable (repeatable)\n"
    "  --var-file NAME=FILE\n"
    "                    the value read from FILE (kept out of ps)\n"
    "  --db PATH         the store (default $STEPPY_DB, else\n"
    "                    $XDG_STATE_HOME/steppy/steppy.db or "
    "~/.local/state/steppy/steppy.db)\n"
    "  --fail-fast       the first failed step of any stage cancels the others\n"
    "  -h, --help        show this help\n"
    "\n"
    "exit status: 0 succeeded, 1 invalid plan, 2 usage, store or I/O error,\n"
    "             3 failed, 4 rejected, 5 aborted,\n"
    "             6 steppy stopped before the release ended (steppy resume continues it)\n";

const char resume_help[] =
    "usage: steppy resume [--db PATH] [ID...]\n"
    "\n"
    "Continues unfinished releases - all of them, or those named - that no live\n"
    "steppy process runs, from where their histories stop, and runs them in the\n"
    "foreground until they end. Attempts that were running when the last steppy\n"
    "stopped count as failed attempts (their retry policy applies); waits and\n"
    "timeouts keep their original due times.\n"
    "\n"
    "exit status: 0 every resumed release succeeded (or none was left),\n"
    "             2 usage or store error, 3 failed, 4 rejected, 5 aborted (the worst\n"
    "             outcome), 6 stopped before the end\n";

const char retry_help[] =
    "usage: steppy retry [--db PATH | --server URL [--token-file FILE]] ID\n"
    "\n"
    "Continues a FAILED or ABORTED release from where it stopped: steps that\n"
    "succeeded are not run again; the failed, timed-out and cancelled steps of\n"
    "the stage that stopped run again (with fresh retry budgets), then the\n"
    "release goes on. Runs in the foreground like steppy run, unless a steppy\n"
    "process serving the store already holds it.\n"
    "With --server URL, asks that steppy serve to continue it (API token from\n"
    "$STEPPY_TOKEN or --token-file FILE, as steppy approve --server).\n"
    "\n"
    "exit status: as steppy run; with --server: 0 the server continues it,\n"
    "             1 refused, 2 usage or server error\n";

static int exit_for(int status)
{
	switch (status) {
	case EXEC_SUCCEEDED:
		return EXIT_OK;
	case EXEC_FAILED:
		return EXIT_FAILED;
	case EXEC_REJECTED:
		return EXIT_REJECTED;
	case EXEC_ABORTED:
		return EXIT_ABORTED;
	default:
		return EXIT_STOPPED;
	}
}

struct session {
	struct store *store;
	char *notify_log;       /* next to the store; the runtime borrows it */
	struct notify_hub *hub; /* the channels of Notify steps, in the runtime's services */
	struct runtime *rt;
	struct view *view;
	char *resume; /* "steppy resume", with the --db it was given */
};

/* create: run makes a missing store; resume and retry continue what is there. */
static int session_open(struct session *s, const char *db, bool fail_fast, bool create)
{
	memset(s, 0, sizeof(*s));
	char *path = NULL;
	int code = create ? cli_open_store(db, &s->store, &path)
	                  : cli_open_store_existing(db, &s->store, &path);
	if (code != EXIT_OK)
		return code;
	/* The store's secret key or none: never a key of its own. */
	struct strbuf kerr = STRBUF_INIT;
	if (store_key_check(s->store, STORE_KEY_NEEDED, NULL, &kerr) < 0) {
		fprintf(stderr, "steppy: %s\n", kerr.buf);
		strbuf_release(&kerr);
		free(path);
		return EXIT_USAGE;
	}
	strbuf_release(&kerr);
	s->notify_log = cli_notify_log(path);
	free(path);
	struct runtime_observer obs;
	s->view = view_new(&obs, true);
	char *server = NULL;
	if (store_meta_get(s->store, "serve.tokens", &server, NULL) == 0)
		view_set_server(s->view, server);
	view_set_store(s->view, db);
	s->resume = xstrdup("steppy resume");
	if (db) {
		char *shown = store_display_name(db);
		free(s->resume);
		s->resume = xstrfmt("steppy resume --db '%s'", shown);
		free(shown);
	}
	free(server);
	struct runtime_options opts = { .fail_fast = fail_fast,
		                        .notify_log = s->notify_log,
		                        .observer = &obs };
	struct strbuf err = STRBUF_INIT;
	if (runtime_new(s->store, &opts, &s->rt, &err) < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		strbuf_release(&err);
		return EXIT_USAGE;
	}
	strbuf_release(&err);
	struct step_services *svc = runtime_services(s->rt);
	step_services_open(svc);
	/* The terminal channel is the view; the log channel notifications.log. */
	struct notify_hub_options hub = { .log_path = s->notify_log,
		                          .terminal = view_notify,
		                          .terminal_arg = s->view };
	s->hub = notify_hub_new(svc->loop, svc->aws, &hub);
	svc->notify = s->hub;
	view_attach(s->view, s->rt, true);
	return EXIT_OK;
}

static void session_close(struct session *s)
{
	if (s->rt) {
		runtime_detach_observer(s->rt);
		runtime_services(s->rt)->notify = NULL;
	}
	notify_hub_free(s->hub);
	view_free(s->view);
	runtime_free(s->rt);
	store_close(s->store);
	free(s->notify_log);
	free(s->resume);
}

/*
 * Says in one line how many other releases are unfinished with no live
 * steppy process running them. run drives its own release only: resuming
 * those is steppy resume's job (a CI job must not wait for them).
 */
static void mention_orphans(struct session *s)
{
	char **ids = NULL;
	size_t n = 0, orphans = 0;
	if (store_unfinished(s->store, &ids, &n, NULL) < 0)
		return;
	int64_t now = wall_clock_ms();
	for (size_t i = 0; i < n; i++) {
		orphans += !store_lease_held_elsewhere(s->store, ids[i], "", now);
		free(ids[i]);
	}
	free(ids);
	if (orphans == 1)
		printf("1 other release is unfinished; steppy resume continues it\n");
	else if (orphans > 1)
		printf("%zu other releases are unfinished; steppy resume continues them\n",
		       orphans);
	fflush(stdout);
}

const struct option run_options[] = {
	{ "fail-fast", no_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

int cmd_run(int argc, char **argv, const struct cli_ctx *ctx)
{
	bool fail_fast = false;
	for (size_t i = 0; i < ctx->nopts; i++)
		fail_fast |= ctx->opts[i].id == 'f';
	if (argc != 2)
		return usage_error("run takes exactly one plan file (see steppy run --help)");
	struct plan *plan = NULL;
	int code = cli_load_plan(argv[1], ctx->vars, ctx->nvars, &plan);
	if (code == EXIT_OK) {
		/* A Human step that nobody could approve in a release of this user. */
		char *me = cli_whoami();
		struct diag_list dl = DIAG_LIST_INIT;
		if (approval_check_plan_starter(plan, me, &dl) > 0) {
			diag_print_text(stderr, &dl, plan->doc, use_colour(stderr));
			code = EXIT_INVALID;
		}
		diag_list_release(&dl);
		free(me);
	}
	struct session s = { 0 };
	if (code == EXIT_OK)
		code = session_open(&s, ctx->db, fail_fast, true);
	if (code == EXIT_OK) {
		mention_orphans(&s);
		const char *id = NULL;
		char *by = cli_whoami();
		struct strbuf err = STRBUF_INIT;
		const char *path = plan->doc->name;
		if (runtime_submit(s.rt, plan, path, by, &id, &err) < 0) {
			fprintf(stderr, "steppy: cannot start the release: %s\n", err.buf);
			code = EXIT_USAGE;
		} else {
			plan = NULL; /* the runtime owns it */
			/* the runtime's id goes when another process takes the
			 * release over: keep a copy for the messages below */
			char own_id[64];
			snprintf(own_id, sizeof(own_id), "%s", id);
			id = own_id;
			int stopped = runtime_run(s.rt);
			view_clear(s.view);
			code = exit_for(runtime_status(s.rt, id));
			if (stopped == 2) {
				/* The state in memory is ahead of the store: the store
				 * has the truth, and it did not record the end. */
				fprintf(stderr,
				        "steppy: stopped: the store refused the release's events "
				        "(see above); release %s is unfinished: %s "
				        "%s continues it from what was recorded\n",
				        id, s.resume, id);
				code = EXIT_USAGE;
			} else if (stopped && code == EXIT_STOPPED)
				fprintf(stderr,
				        "steppy: stopped; release %s is unfinished: %s %s "
				        "continues it\n",
				        id, s.resume, id);
		}
		strbuf_release(&err);
		free(by);
	}
	if (s.rt || s.store)
		session_close(&s);
	plan_free(plan);
	return code;
}

int cmd_resume(int argc, char **argv, const struct cli_ctx *ctx)
{
	struct session s = { 0 };
	int code = session_open(&s, ctx->db, false, false);
	char **ids = NULL;
	size_t nids = 0;
	if (code == EXIT_OK && argc > 1) {
		for (int i = 1; i < argc && code == EXIT_OK; i++) {
			struct exec_row row = { 0 };
			code = cli_find_execution(s.store, argv[i], &row);
			if (code != EXIT_OK)
				break;
			struct strbuf err = STRBUF_INIT;
			int r = strcmp(row.status, "RUNNING") != 0
			            ? SP_EINVAL
			            : runtime_adopt(s.rt, row.id, &err);
			if (r < 0) {
				fprintf(stderr, "steppy: cannot resume %s: %s\n", row.id,
				        r == SP_EINVAL
				            ? "it has ended (steppy retry continues a failed "
				              "or aborted release)"
				            : err.buf);
				code = EXIT_USAGE;
			} else {
				ids = xreallocarray(ids, nids + 1, sizeof(*ids));
				ids[nids++] = xstrdup(row.id);
			}
			strbuf_release(&err);
			exec_row_release(&row);
		}
	} else if (code == EXIT_OK) {
		char **all = NULL;
		size_t n = 0;
		struct strbuf err = STRBUF_INIT;
		if (store_unfinished(s.store, &all, &n, &err) < 0) {
			fprintf(stderr, "steppy: %s\n", err.buf);
			code = EXIT_USAGE;
		}
		for (size_t i = 0; i < n; i++) {
			strbuf_reset(&err);
			int r = runtime_adopt(s.rt, all[i], &err);
			runtime_park_idle(s.rt);
			if (r == 0) {
				ids = xreallocarray(ids, nids + 1, sizeof(*ids));
				ids[nids++] = all[i];
			} else {
				if (r != SP_EBUSY)
					fprintf(stderr, "steppy: cannot resume %s: %s\n", all[i],
					        err.buf);
				free(all[i]);
			}
		}
		free(all);
		strbuf_release(&err);
		if (code == EXIT_OK && nids == 0)
			printf("nothing to resume\n");
	}
	if (code == EXIT_OK && nids) {
		printf("resuming %zu release%s\n", nids, nids == 1 ? "" : "s");
		fflush(stdout);
		int stopped = runtime_run(s.rt);
		view_clear(s.view);
		for (size_t i = 0; i < nids && stopped != 2; i++) {
			int c = exit_for(runtime_status(s.rt, ids[i]));
			if (c > code)
				code = c;
		}
		if (stopped == 2) {
			fprintf(stderr, "steppy: stopped: the store refused events (see above); "
			                "steppy resume continues from what was recorded\n");
			code = EXIT_USAGE;
		} else if (stopped && code == EXIT_STOPPED)
			fprintf(stderr, "steppy: stopped before every release ended\n");
	}
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	if (s.rt || s.store)
		session_close(&s);
	return code;
}

int cmd_retry(int argc, char **argv, const struct cli_ctx *ctx)
{
	if (argc != 2)
		return usage_error("retry takes one execution id (see steppy retry --help)");
	int code = cli_check_server(ctx);
	if (code != EXIT_OK)
		return code;
	if (ctx->server)
		return cli_remote_control("retry", ctx->server, ctx->token_file, argv[1], NULL,
		                          NULL);
	struct session s = { 0 };
	code = session_open(&s, ctx->db, false, false);
	struct exec_row row = { 0 };
	if (code == EXIT_OK)
		code = cli_find_execution(s.store, argv[1], &row);
	if (code == EXIT_OK) {
		char *by = cli_whoami();
		struct strbuf err = STRBUF_INIT;
		int r = runtime_redrive(s.rt, row.id, json_pack("{ss ss}", "by", by, "via", "cli"),
		                        &err);
		if (r == SP_EBUSY) {
			/* Another process runs it (steppy serve): ask that one. */
			strbuf_reset(&err);
			r = control_apply(s.store, row.id, "retry",
			                  json_pack("{ss ss}", "by", by, "via", "cli"), 10000,
			                  &err);
			if (r == CONTROL_DONE_BY_OWNER) {
				printf("the steppy process running release %s continues it\n",
				       row.id);
				code = EXIT_OK;
			} else {
				fprintf(stderr, "steppy: cannot retry %s: %s\n", row.id, err.buf);
				code = r == SP_EBUSY ? EXIT_QUEUED : EXIT_USAGE;
			}
		} else if (r < 0) {
			fprintf(stderr, "steppy: cannot retry %s: %s\n", row.id, err.buf);
			code = EXIT_USAGE;
		} else {
			int stopped = runtime_run(s.rt);
			view_clear(s.view);
			code = exit_for(runtime_status(s.rt, row.id));
			if (stopped == 2) {
				fprintf(stderr,
				        "steppy: stopped: the store refused the release's events "
				        "(see above); %s %s continues it from what "
				        "was recorded\n",
				        s.resume, row.id);
				code = EXIT_USAGE;
			} else if (stopped && code == EXIT_STOPPED)
				fprintf(stderr, "steppy: stopped; %s %s continues it\n", s.resume,
				        row.id);
		}
		strbuf_release(&err);
		free(by);
	}
	exec_row_release(&row);
	if (s.rt || s.store)
		session_close(&s);
	return code;
}
