/*
 * cmd-control.c - `steppy approve`, `steppy reject`, `steppy abort`: change
 * a release from another terminal (or script).
 */
#include "cli/cli.h"

#include "cli/remote.h"
#include "runtime/control.h"
#include "runtime/history.h"
#include "util/alloc.h"
#include "util/error.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char approve_help[] =
    "usage: steppy approve [--comment TEXT] [--by NAME] [--force] [--db PATH] ID STEP\n"
    "       steppy approve --server URL [--token-file FILE] [--comment TEXT] ID STEP\n"
    "\n"
    "Approves a Human step that waits for a decision. STEP is the step's name\n"
    "(or STAGE/STEP when names repeat across stages; case does not matter);\n"
    "ID may be a unique prefix. If a steppy process runs the release, it\n"
    "applies the decision at once; otherwise the decision is recorded and\n"
    "steppy resume ID continues.\n"
    "A step with minApprovals N needs N different people: each approval but\n"
    "the last prints \"approval K of N recorded\". Unless the step allows it\n"
    "(allowSelfApproval), whoever started the release cannot approve it.\n"
    "\n"
    "With --server, the decision goes through steppy serve's API and is\n"
    "recorded under the name of your API token, which the server checks\n"
    "(--by does not apply). The token comes from --token-file FILE (a file\n"
    "only you may read) or $STEPPY_TOKEN.\n"
    "\n"
    "Without --server, --by is a name anyone can claim. On a store that a\n"
    "steppy serve with API tokens uses, a step that names approvers is\n"
    "therefore refused unless --force is given; the decision then records\n"
    "\"forced\": \"locally by OS user USER\".\n"
    "\n"
    "options:\n"
    "  --comment TEXT     recorded with the decision\n"
    "  --by NAME          who decides (default: $USER@host); must be listed when\n"
    "                     the step names approvers\n"
    "  --force            decide locally on a store served with API tokens\n"
    "  --db PATH          the store (see steppy run --help)\n"
    "  --server URL       decide through steppy serve at URL\n"
    "  --token-file FILE  the API token for --server (else $STEPPY_TOKEN)\n"
    "\n"
    "exit status: 0 recorded, 1 refused (the step does not wait for a decision,\n"
    "             NAME is not an approver, has approved already, or started\n"
    "             the release; the server answered 401, 403 or 409; a served\n"
    "             store without --force), 2 usage, store or server error\n"
    "             (unreachable, 404), 7 the process running the release did\n"
    "             not answer in time (queued)\n";

const char reject_help[] =
    "usage: steppy reject [--comment TEXT] [--by NAME] [--force] [--db PATH] ID STEP\n"
    "       steppy reject --server URL [--token-file FILE] [--comment TEXT] ID STEP\n"
    "\n"
    "Rejects a Human step: the release stops when the stage's other steps have\n"
    "ended, and ends REJECTED. Options and exit status as steppy approve.\n";

const char abort_help[] =
    "usage: steppy abort [--reason TEXT] [--by NAME] [--db PATH] ID\n"
    "       steppy abort --server URL [--token-file FILE] [--reason TEXT] ID\n"
    "\n"
    "Aborts a running release: running commands get SIGTERM (SIGKILL after a\n"
    "grace period), waits and approvals end, and the release ends ABORTED.\n"
    "steppy retry ID continues it later. With --server, the abort goes\n"
    "through steppy serve's API under your API token's name (an operator\n"
    "token; see steppy approve --help).\n"
    "\n"
    "exit status: 0 aborted (or being aborted by the process running it),\n"
    "             1 refused (it has ended; 401, 403, 409 from the server),\n"
    "             2 usage, store or server error, 7 no answer in time\n";

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
		*ret_need = approval_needed(&le.plan->stages[stage].steps[step]);
		for (int i = 0; i < s->napproved && !*ret_nth; i++)
			if (approval_same_person(s->approved_by[i], by))
				*ret_nth = i + 1;
	}
	loaded_exec_release(&le);
	strbuf_release(&err);
}

/* The OS user running the command (from the user database, not $USER). */
static char *os_user(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw ? xstrdup(pw->pw_name) : xstrfmt("uid %d", (int)geteuid());
}

/* Whether the step's rules depend on who decides: it lists approvers, needs
 * several people, or excludes the starter. A local --by cannot prove any of it. */
static bool needs_named_decider(const struct plan_step *ps)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	return rule && (rule->napprovers > 0 || rule->min_approvals > 1 || !rule->self_approval);
}

/*
 * A store that a steppy serve with API tokens uses does not take local
 * decisions on steps whose rules depend on who decides (approvers,
 * minApprovals > 1, allowSelfApproval: false): anyone who can open the file could
 * claim any name. Returns EXIT_OK, with *ret_forced true when only force
 * let the decision through; or prints why not and returns EXIT_REFUSED (or
 * EXIT_USAGE when the store cannot say: it fails closed).
 */
static int guard_local_decision(struct store *st, const char *id, const struct plan_step *ps,
                                const char *kind, bool force, bool *ret_forced)
{
	char *server = NULL;
	struct strbuf err = STRBUF_INIT;
	*ret_forced = false;
	int r =
	    needs_named_decider(ps) ? store_meta_get(st, "serve.tokens", &server, &err) : SP_ENOENT;
	if (r < 0 && r != SP_ENOENT) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		strbuf_release(&err);
		return EXIT_USAGE;
	}
	strbuf_release(&err);
	if (r == SP_ENOENT)
		return EXIT_OK;
	int code = EXIT_OK;
	*ret_forced = force;
	if (!force) {
		fprintf(stderr,
		        "steppy: this store is used by steppy serve with API tokens (%s), and "
		        "\"%s\" depends on who decides (approvers, minApprovals or "
		        "allowSelfApproval): a local --by is only a claim.\n"
		        "  decide through the server: steppy %s --server %s %s '%s' "
		        "(token in $STEPPY_TOKEN or --token-file FILE)\n"
		        "  or override with --force (recorded with your OS user)\n",
		        server, ps->name, kind, server, id, ps->name);
		code = EXIT_REFUSED;
	}
	free(server);
	return code;
}

const struct option control_options[] = {
	{ "comment", required_argument, NULL, 'c' },
	{ "reason", required_argument, NULL, 'r' },
	{ "by", required_argument, NULL, 'b' },
	{ "force", no_argument, NULL, 'f' },
	{ NULL, 0, NULL, 0 },
};

/* What approve, reject or abort was asked to do. */
struct control_req {
	const char *kind;    /* "approve", "reject" or "abort" */
	bool decision;       /* approve or reject: names a step */
	const char *comment; /* --comment (decisions) or --reason (abort), or NULL */
	const char *by_flag; /* --by, or NULL */
	bool force;          /* --force */
	const char *id_arg;  /* ID as given (maybe a prefix) */
	const char *step;    /* STEP as given (decisions), else NULL */
};

/* Reads the command line into req; prints what is wrong and returns
 * EXIT_USAGE, else EXIT_OK. */
static int control_args(int argc, char **argv, const struct cli_ctx *ctx, const char *kind,
                        struct control_req *req)
{
	*req = (struct control_req){ .kind = kind, .decision = strcmp(kind, "abort") != 0 };
	for (size_t i = 0; i < ctx->nopts; i++) {
		int c = ctx->opts[i].id;
		if ((c == 'c' || c == 'r') && (c == 'c') != req->decision)
			return usage_error("%s takes --%s", argv[0],
			                   req->decision ? "comment" : "reason");
		if (c == 'c' || c == 'r')
			req->comment = ctx->opts[i].arg;
		else if (c == 'b')
			req->by_flag = ctx->opts[i].arg;
		else if (c == 'f')
			req->force = true;
	}
	if (argc != (req->decision ? 3 : 2))
		return usage_error("usage: steppy %s (see steppy %s --help)", argv[0], argv[0]);
	req->id_arg = argv[1];
	req->step = req->decision ? argv[2] : NULL;
	if (ctx->server && req->by_flag)
		return usage_error("--by does not go with --server: the server records the "
		                   "name of your API token");
	int code = cli_check_server(ctx);
	if (code == EXIT_OK && ctx->server && req->force)
		code = usage_error("--force does not go with --server");
	if (code == EXIT_OK && req->force && !req->decision)
		code = usage_error("abort takes no --force");
	return code;
}

/* Opens the store and loads the release id_arg names, which must still run.
 * Returns an exit code (printed); *row and *le are the caller's to release. */
static int load_running(const char *db, const char *id_arg, struct store **st, struct exec_row *row,
                        struct loaded_exec *le)
{
	int code = cli_load_execution(db, id_arg, st, row, le);
	if (code == EXIT_OK && le->state.status != EXEC_RUNNING) {
		fprintf(stderr, "steppy: release %s has ended (%s)\n", row->id,
		        exec_status_name(le->state.status));
		code = EXIT_REFUSED;
	}
	return code;
}

/*
 * For a decision: finds the step req names among the waiting ones, checks
 * that by may decide it here (the served-store guard, the approvers), and
 * adds the step (and "forced") to data. *ret_name becomes the step's name as
 * the plan spells it. Returns an exit code (printed).
 */
static int decision_target(struct store *st, const char *id, const struct loaded_exec *le,
                           const struct control_req *req, const char *by, json_t *data,
                           const char **ret_name)
{
	struct cli_step *steps;
	size_t nsteps;
	const struct cli_step *found = NULL;
	cli_steps_of_plan(le->plan, &le->state, &steps, &nsteps);
	int code = cli_resolve_step(steps, nsteps, req->step, &found);
	if (code == EXIT_OK) {
		int stage = found->stage_index, step = found->step_index;
		const struct plan_step *ps = &le->plan->stages[stage].steps[step];
		*ret_name = ps->name;
		bool forced = false;
		code = guard_local_decision(st, id, ps, req->kind, req->force, &forced);
		if (code == EXIT_OK && cli_not_an_approver(&le->state, stage, step, by,
		                                           !strcmp(req->kind, "approve"))) {
			fprintf(stderr, "steppy: %s is not an approver of \"%s\"\n", by, ps->name);
			code = EXIT_REFUSED;
		}
		if (forced) {
			char *who = os_user();
			char *what = xstrfmt("locally by OS user %s", who);
			json_object_set_new(data, "forced", json_string(what));
			free(what);
			free(who);
		}
		json_object_set_new(data, "stage", json_integer(stage));
		json_object_set_new(data, "step", json_integer(step));
	}
	free(steps);
	return code;
}

/* Prints what a change that was applied (r: CONTROL_DONE_*) did. */
static void print_applied(struct store *st, const char *id, const struct control_req *req,
                          const json_t *data, const char *by, const char *step_name, int r)
{
	int nth = 0, need = 1;
	if (!strcmp(req->kind, "approve"))
		approval_count(st, id, data, by, &nth, &need);
	bool partial = nth && nth < need;
	if (partial)
		printf("approval %d of %d recorded for \"%s\" of release %s\n", nth, need,
		       step_name, id);
	else if (req->decision)
		printf("%s \"%s\" of release %s\n",
		       !strcmp(req->kind, "approve") ? "approved" : "rejected", step_name, id);
	else
		printf("aborted release %s\n", id);
	if (r == CONTROL_DONE_HERE && req->decision && !partial)
		printf("no steppy process runs it now: steppy resume %s continues it\n", id);
}

/* Applies the change (through the owner's inbox, or here); prints the
 * outcome and returns the exit code. */
static int apply(struct store *st, const char *id, const struct control_req *req, json_t *data,
                 const char *by, const char *step_name)
{
	struct strbuf err = STRBUF_INIT;
	int code = EXIT_OK;
	int r = control_apply(st, id, req->kind, json_incref(data), 10000, &err);
	if (r == CONTROL_DONE_BY_OWNER || r == CONTROL_DONE_HERE) {
		print_applied(st, id, req, data, by, step_name, r);
	} else if (r == SP_EBUSY) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_QUEUED;
	} else {
		fprintf(stderr, "steppy: refused: %s\n", err.buf);
		code = r == SP_EINVAL ? EXIT_REFUSED : EXIT_USAGE;
	}
	strbuf_release(&err);
	return code;
}

/* approve, reject or abort on the store itself (no --server). */
static int control_local(const struct control_req *req, const char *db)
{
	struct store *st = NULL;
	struct exec_row row = { 0 };
	struct loaded_exec le = { 0 };
	int code = load_running(db, req->id_arg, &st, &row, &le);
	char *me = cli_whoami();
	const char *by = req->by_flag ? req->by_flag : me;
	json_t *data = json_pack("{ss ss}", "by", by, "via", "cli");
	if (req->comment)
		json_object_set_new(data, req->decision ? "comment" : "reason",
		                    json_string(req->comment));
	const char *step_name = req->step;
	if (code == EXIT_OK && req->decision)
		code = decision_target(st, row.id, &le, req, by, data, &step_name);
	if (code == EXIT_OK)
		code = apply(st, row.id, req, data, by, step_name);
	json_decref(data);
	free(me);
	loaded_exec_release(&le);
	exec_row_release(&row);
	store_close(st);
	return code;
}

static int control(int argc, char **argv, const struct cli_ctx *ctx, const char *kind)
{
	struct control_req req;
	int code = control_args(argc, argv, ctx, kind, &req);
	if (code != EXIT_OK)
		return code;
	if (ctx->server)
		return cli_remote_control(kind, ctx->server, ctx->token_file, req.id_arg, req.step,
		                          req.comment);
	return control_local(&req, ctx->db);
}

int cmd_approve(int argc, char **argv, const struct cli_ctx *ctx)
{
	return control(argc, argv, ctx, "approve");
}

int cmd_reject(int argc, char **argv, const struct cli_ctx *ctx)
{
	return control(argc, argv, ctx, "reject");
}

int cmd_abort(int argc, char **argv, const struct cli_ctx *ctx)
{
	return control(argc, argv, ctx, "abort");
}

/* ---- through steppy serve (--server) ----------------------------------------------- */

static const char *or_else(const char *s, const char *otherwise)
{
	return s ? s : otherwise;
}

/* Prints a failed answer of the server; returns the exit code for it. */
static int remote_failed(const struct remote *rm, long status, const json_t *j, const char *id)
{
	const char *message = remote_error_message(j);
	const char *code = remote_error_code(j);
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	switch (status) {
	case 401:
		fprintf(stderr,
		        "steppy: %s refused the token (401): %s\n"
		        "  give an API token of this server in $STEPPY_TOKEN or --token-file "
		        "FILE\n",
		        rm->url, body ? body : "(no JSON error body)");
		break;
	case 403:
		fprintf(stderr, "steppy: %s refused (403): %s\n", rm->url,
		        body ? body : "(no JSON error body)");
		break;
	case 404:
		fprintf(stderr, "steppy: %s: %s (404)\n", rm->url, message ? message : "not found");
		break;
	case 409:
		fprintf(stderr, "steppy: refused by %s: %s\n", rm->url,
		        message ? message : "the change does not apply");
		break;
	default:
		fprintf(stderr, "steppy: %s answered %ld%s%s%s%s about release %s\n", rm->url,
		        status, code ? " " : "", code ? code : "", message ? ": " : "",
		        message ? message : "", id);
	}
	free(body);
	return status == 401 || status == 403 || status == 409 ? EXIT_REFUSED : EXIT_USAGE;
}

/* Whether s is made of execution-id characters only (it goes into a URL path). */
static bool id_chars(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z')))
			return false;
	return true;
}

int remote_find(const struct remote *rm, const char *prefix, char **ret_id)
{
	struct strbuf err = STRBUF_INIT;
	long status;
	json_t *j = NULL;
	char *path = xstrfmt("/api/v1/executions/%s", prefix);
	int r = remote_call(rm, "GET", path, NULL, &status, &j, &err);
	free(path);
	int code = EXIT_OK;
	if (r < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_USAGE;
	} else if (status == 200) {
		*ret_id = xstrdup(prefix);
	} else if (status != 404) {
		code = remote_failed(rm, status, j, prefix);
	} else {
		/* Not a whole id: look through the listing, a page at a time. */
		char *match = NULL;
		int matches = 0;
		for (long offset = 0; code == EXIT_OK && offset >= 0 && offset < 1000000;) {
			json_decref(j);
			j = NULL;
			path = xstrfmt("/api/v1/executions?limit=1000&offset=%ld", offset);
			r = remote_call(rm, "GET", path, NULL, &status, &j, &err);
			free(path);
			if (r < 0) {
				fprintf(stderr, "steppy: %s\n", err.buf);
				code = EXIT_USAGE;
				break;
			}
			if (status != 200) {
				code = remote_failed(rm, status, j, prefix);
				break;
			}
			json_t *list = json_object_get(j, "executions");
			for (size_t i = 0; i < json_array_size(list); i++) {
				const char *id = json_string_value(
				    json_object_get(json_array_get(list, i), "id"));
				if (id && !strncmp(id, prefix, strlen(prefix)) && matches++ == 0)
					match = xstrdup(id);
			}
			json_t *next = json_object_get(j, "nextOffset");
			offset = json_is_integer(next) && json_integer_value(next) > offset
			             ? (long)json_integer_value(next)
			             : -1;
		}
		if (code == EXIT_OK && matches == 1) {
			*ret_id = match;
			match = NULL;
		} else if (code == EXIT_OK) {
			fprintf(stderr,
			        matches ? "steppy: %s: several releases start with \"%s\"\n"
			                : "steppy: %s has no release \"%s\"\n",
			        rm->url, prefix);
			code = EXIT_USAGE;
		}
		free(match);
	}
	json_decref(j);
	strbuf_release(&err);
	return code;
}

/* GET the report of release id; prints errors. */
static int remote_report(const struct remote *rm, const char *id, json_t **ret)
{
	struct strbuf err = STRBUF_INIT;
	long status;
	char *path = xstrfmt("/api/v1/executions/%s", id);
	int r = remote_call(rm, "GET", path, NULL, &status, ret, &err);
	free(path);
	int code = EXIT_OK;
	if (r < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_USAGE;
	} else if (status != 200 || !json_is_object(*ret)) {
		code = status == 200
		           ? (fprintf(stderr, "steppy: %s answered no JSON report\n", rm->url),
		              EXIT_USAGE)
		           : remote_failed(rm, status, *ret, id);
		json_decref(*ret);
		*ret = NULL;
	}
	strbuf_release(&err);
	return code;
}

/* The steps of a server's report (names borrowed from report). */
static void steps_of_report(const json_t *report, struct cli_step **ret, size_t *ret_n)
{
	const json_t *stages = json_object_get(report, "stages");
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(stages); i++)
		n += json_array_size(json_object_get(json_array_get(stages, i), "steps"));
	struct cli_step *steps = xcalloc(n ? n : 1, sizeof(*steps));
	size_t k = 0;
	bool running =
	    !strcmp(or_else(json_string_value(json_object_get(report, "status")), ""), "RUNNING");
	for (size_t i = 0; i < json_array_size(stages); i++) {
		const json_t *stg = json_array_get(stages, i);
		const json_t *list = json_object_get(stg, "steps");
		const char *sname = json_string_value(json_object_get(stg, "name"));
		for (size_t j = 0; j < json_array_size(list) && k < n; j++) {
			const json_t *x = json_array_get(list, j);
			const char *name = json_string_value(json_object_get(x, "name"));
			const char *state = json_string_value(json_object_get(x, "state"));
			/* the report names the type; its flags say what it does */
			const char *tname = json_string_value(json_object_get(x, "type"));
			const struct step_type *type = tname ? step_type_find(tname) : NULL;
			if (!name || !sname)
				continue;
			steps[k++] = (struct cli_step){
				.stage = sname,
				.name = name,
				.waiting = running && type && (type->flags & STEP_DECISION) &&
				           state && !strcmp(state, "RUNNING"),
				.stage_index = (int)i,
				.step_index = (int)j,
			};
		}
	}
	*ret = steps;
	*ret_n = k;
}

/* The client for server with its token; prints what is wrong and returns
 * EXIT_USAGE, else EXIT_OK (release rm in every case). */
static int remote_open(struct remote *rm, const char *server, const char *token_file,
                       const char *id_arg)
{
	struct strbuf err = STRBUF_INIT;
	char *token = NULL;
	int code = EXIT_OK;
	if (remote_token_load(token_file, &token, &err) < 0 ||
	    remote_init(rm, server, token, &err) < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_USAGE;
	}
	strbuf_release(&err);
	if (code != EXIT_OK)
		return code;
	if (remote_cleartext(rm))
		fprintf(stderr,
		        "steppy: warning: %s is plain http: the API token crosses the network "
		        "unencrypted (use https://)\n",
		        rm->url);
	if (!id_chars(id_arg))
		return usage_error("\"%s\" is not a release id", id_arg);
	return EXIT_OK;
}

/* Where a change goes on the server: the API path, and for a decision the
 * step (in the report, which it keeps). */
struct remote_target {
	char *path;                   /* POST here (owned) */
	json_t *report;               /* decisions: the release's report (owned) */
	struct cli_step *steps;       /* decisions: its steps (owned, names in report) */
	const struct cli_step *found; /* decisions: the step decided, in steps */
};

static void remote_target_release(struct remote_target *t)
{
	free(t->path);
	json_decref(t->report);
	free(t->steps);
}

/* For a decision: finds step_name among the waiting steps of the running
 * release id. Returns an exit code (printed). */
static int remote_find_step(const struct remote *rm, const char *id, const char *step_name,
                            struct remote_target *t)
{
	int code = remote_report(rm, id, &t->report);
	const char *status = json_string_value(json_object_get(t->report, "status"));
	if (code == EXIT_OK && strcmp(or_else(status, ""), "RUNNING")) {
		fprintf(stderr, "steppy: release %s has ended (%s)\n", id, or_else(status, "?"));
		code = EXIT_REFUSED;
	}
	if (code == EXIT_OK) {
		size_t nsteps = 0;
		steps_of_report(t->report, &t->steps, &nsteps);
		code = cli_resolve_step(t->steps, nsteps, step_name, &t->found);
	}
	return code;
}

/* The target of kind on release id and the body to post (text as the
 * decision's comment or the abort's reason). Returns an exit code. */
static int remote_target(const struct remote *rm, const char *kind, const char *id,
                         const char *step_name, const char *text, struct remote_target *t,
                         json_t *body)
{
	if (!step_name) {
		t->path = xstrfmt("/api/v1/executions/%s/%s", id, kind);
		if (text)
			json_object_set_new(body, "reason", json_string(text));
		return EXIT_OK;
	}
	int code = remote_find_step(rm, id, step_name, t);
	if (code == EXIT_OK) {
		t->path = xstrfmt("/api/v1/executions/%s/steps/%d/%d/%s", id, t->found->stage_index,
		                  t->found->step_index, kind);
		if (text)
			json_object_set_new(body, "comment", json_string(text));
	}
	return code;
}

/* After an approval that did not complete the step (minApprovals): says
 * how far the step got, from the release's report. */
static void print_approval_progress(const struct remote *rm, const char *id,
                                    const struct cli_step *found, const char *result)
{
	json_t *after = NULL;
	long got = -1, need = 0;
	if (remote_report(rm, id, &after) == EXIT_OK) {
		const json_t *stage =
		    json_array_get(json_object_get(after, "stages"), (size_t)found->stage_index);
		const json_t *x =
		    json_array_get(json_object_get(stage, "steps"), (size_t)found->step_index);
		const json_t *ap = json_object_get(x, "approvals");
		got = (long)json_array_size(json_object_get(ap, "by"));
		need = (long)json_integer_value(json_object_get(ap, "needed"));
	}
	json_decref(after);
	if (got >= 0 && need)
		printf("approval %ld of %ld recorded for \"%s\" of release %s\n", got, need,
		       found->name, id);
	else
		printf("%s: \"%s\" of release %s\n", result, found->name, id);
}

/* Prints what the server did with a change it took (200). */
static void print_remote_done(const struct remote *rm, const char *kind, const char *id,
                              const struct cli_step *found, const json_t *answer)
{
	const char *result = or_else(json_string_value(json_object_get(answer, "result")), "");
	if (!strcmp(kind, "approve") && strcmp(result, "approved") != 0)
		print_approval_progress(rm, id, found, result);
	else if (found)
		printf("%s \"%s\" of release %s\n",
		       !strcmp(kind, "approve") ? "approved" : "rejected", found->name, id);
	else if (!strcmp(kind, "abort"))
		printf("aborted release %s\n", id);
	else
		printf("%s continues release %s\n", rm->url, id);
}

/* Posts body to the target; prints the outcome and returns the exit code. */
static int remote_post(const struct remote *rm, const char *kind, const char *id,
                       const struct remote_target *t, json_t *body)
{
	struct strbuf err = STRBUF_INIT;
	json_t *answer = NULL;
	long status = 0;
	int code = EXIT_OK;
	if (remote_call(rm, "POST", t->path, body, &status, &answer, &err) < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_USAGE;
	} else if (status == 202) {
		fprintf(stderr, "steppy: %s\n",
		        or_else(json_string_value(json_object_get(answer, "message")),
		                "queued: the process running the release has not answered yet"));
		code = EXIT_QUEUED;
	} else if (status != 200) {
		code = remote_failed(rm, status, answer, id);
	} else {
		print_remote_done(rm, kind, id, t->found, answer);
	}
	json_decref(answer);
	strbuf_release(&err);
	return code;
}

int cli_remote_control(const char *kind, const char *server, const char *token_file,
                       const char *id_arg, const char *step_name, const char *text)
{
	struct remote rm = { 0 };
	struct remote_target t = { 0 };
	json_t *body = json_object();
	char *id = NULL;
	int code = remote_open(&rm, server, token_file, id_arg);
	if (code == EXIT_OK)
		code = remote_find(&rm, id_arg, &id);
	if (code == EXIT_OK)
		code = remote_target(&rm, kind, id, step_name, text, &t, body);
	if (code == EXIT_OK)
		code = remote_post(&rm, kind, id, &t, body);
	remote_target_release(&t);
	json_decref(body);
	free(id);
	remote_release(&rm);
	return code;
}
