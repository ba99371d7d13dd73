/*
 * cmd-list.c - `steppy list`, `steppy show`, `steppy history`: reading
 * releases back from the store.
 */
#include "cli/cli.h"

#include "plan/doc-json.h"
#include "runtime/history.h"
#include "runtime/report.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/suggest.h"
#include "util/timefmt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char list_help[] =
    "usage: steppy list [--status STATUS] [--limit N] [--offset N] [--format text|json] [--db "
    "PATH]\n"
    "\n"
    "Lists releases, newest first: id, status, start time, duration, plan, and\n"
    "what a running one waits for. STATUS is RUNNING, WAITING (running and\n"
    "waiting for a person), SUCCEEDED, FAILED, REJECTED or ABORTED, in any\n"
    "case. At most 1000 per page (default 50).\n";

const char show_help[] = "usage: steppy show [--format text|json] [--db PATH] ID\n"
                         "\n"
                         "Shows a release: its status, and every stage and step with its state,\n"
                         "attempts and timing.\n";

const char history_help[] =
    "usage: steppy history [--format text|json] [--db PATH] ID\n"
    "\n"
    "Prints a release's event history, oldest first: everything that happened,\n"
    "as it was recorded.\n";

const struct option list_options[] = {
	{ "status", required_argument, NULL, 's' },
	{ "limit", required_argument, NULL, 'l' },
	{ "offset", required_argument, NULL, 'o' },
	{ NULL, 0, NULL, 0 },
};

struct list_opts {
	const char *status; /* one of the statuses below, or NULL */
	int limit, offset;
};

/* --status in any case ("running" is RUNNING). Returns EXIT_OK or EXIT_USAGE (printed). */
static int parse_status(const char *arg, const char **ret)
{
	static const char *const statuses[] = { "RUNNING",  "WAITING", "SUCCEEDED", "FAILED",
		                                "REJECTED", "ABORTED", NULL };
	*ret = NULL;
	for (int i = 0; statuses[i] && !*ret; i++)
		if (!strcasecmp(arg, statuses[i]))
			*ret = statuses[i];
	if (*ret)
		return EXIT_OK;
	const char *guess = suggest_closest(arg, statuses);
	return usage_error("--status must be RUNNING, WAITING, SUCCEEDED, FAILED, REJECTED or "
	                   "ABORTED, not \"%s\"%s%s%s",
	                   arg, guess ? "; did you mean " : "", guess ? guess : "",
	                   guess ? "?" : "");
}

/* The own options of list, in order. Returns EXIT_OK or EXIT_USAGE (printed). */
static int parse_list(const struct cli_ctx *ctx, struct list_opts *o)
{
	*o = (struct list_opts){ .limit = 50 };
	for (size_t i = 0; i < ctx->nopts; i++) {
		int c = ctx->opts[i].id;
		const char *arg = ctx->opts[i].arg;
		if (c == 's') {
			if (parse_status(arg, &o->status) != EXIT_OK)
				return EXIT_USAGE;
			continue;
		}
		char *end;
		long v = strtol(arg, &end, 10);
		if (*end || v < (c == 'l' ? 1 : 0) || v > (c == 'l' ? 1000 : 1000000000))
			return usage_error("--%s takes a number%s", c == 'l' ? "limit" : "offset",
			                   c == 'l' ? " from 1 to 1000" : "");
		*(c == 'l' ? &o->limit : &o->offset) = (int)v;
	}
	return EXIT_OK;
}

static void time_text(struct strbuf *sb, int64_t ms)
{
	if (!ms) {
		strbuf_addstr(sb, "-");
		return;
	}
	rfc3339_format(sb, ms - ms % 1000);
}

struct list_ctx {
	enum output_format format;
	json_t *array;
	bool colour;
};

static void print_row(const struct exec_row *r, void *arg)
{
	struct list_ctx *ctx = arg;
	if (ctx->format == FORMAT_JSON) {
		json_array_append_new(ctx->array, exec_row_json(r));
		return;
	}
	struct strbuf t = STRBUF_INIT, d = STRBUF_INIT;
	time_text(&t, r->created_ms);
	int64_t end = strcmp(r->status, "RUNNING") ? r->updated_ms : (int64_t)time(NULL) * 1000;
	duration_format(&d, (end - r->created_ms) / 1000);
	const char *colour = !ctx->colour                      ? ""
	                     : !strcmp(r->status, "SUCCEEDED") ? "\033[32m"
	                     : !strcmp(r->status, "RUNNING")   ? "\033[33m"
	                                                       : "\033[31m";
	printf("%-10s  %s%-9s%s  %-20s  %8s  %-24s  %s\n", r->id, colour, r->status,
	       ctx->colour ? "\033[0m" : "", t.buf, d.buf,
	       r->plan_name ? r->plan_name : (r->plan_file ? r->plan_file : "-"),
	       r->waiting ? r->waiting : "");
	strbuf_release(&t);
	strbuf_release(&d);
}

int cmd_list(int argc, char **argv, const struct cli_ctx *cli)
{
	(void)argv;
	struct list_opts o;
	int code = parse_list(cli, &o);
	if (code != EXIT_OK)
		return code;
	if (argc != 1)
		return usage_error("list takes no arguments (see steppy list --help)");
	struct store *st;
	code = cli_open_store_existing(cli->db, &st, NULL);
	if (code != EXIT_OK)
		return code;
	struct list_ctx ctx = { .format = cli->format, .colour = use_colour(stdout) };
	if (cli->format == FORMAT_JSON)
		ctx.array = json_array();
	else
		printf("%-10s  %-9s  %-20s  %8s  %-24s  %s\n", "ID", "STATUS", "STARTED",
		       "DURATION", "PLAN", "WAITING FOR");
	struct strbuf err = STRBUF_INIT;
	int n = store_list(st, o.status, o.limit, o.offset, print_row, &ctx, &err);
	if (n < 0) {
		fprintf(stderr, "steppy: %s\n", err.buf);
		code = EXIT_USAGE;
	} else if (cli->format == FORMAT_JSON) {
		json_t *doc = json_pack("{so si si}", "executions", ctx.array, "limit", o.limit,
		                        "offset", o.offset);
		json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		fputc('\n', stdout);
		json_decref(doc);
		ctx.array = NULL;
	}
	json_decref(ctx.array);
	strbuf_release(&err);
	store_close(st);
	return code;
}

/* The remote work of a step ("build ID #N", "pipeline NAME execution ID":
 * its type's words), and its logs. */
static void print_work(const struct plan_step *ps, const json_t *w)
{
	const char *logs = json_string_value(json_object_get(w, "logs"));
	struct strbuf summary = STRBUF_INIT;
	if (w && ps->type->work_summary)
		ps->type->work_summary(w, false, &summary);
	if (summary.len)
		printf("              %s\n", summary.buf);
	strbuf_release(&summary);
	if (logs)
		printf("              logs %s\n", logs);
}

/* "approvals 1 of 2: alice" for a Human step that needs several or has some. */
static void print_approvals(const struct plan_step *ps, const struct step_state *st, bool after)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	if (!rule)
		return;
	int need = rule->min_approvals;
	if (need == 1 && !st->napproved)
		return;
	if (need == 1 && st->status == STEP_SUCCEEDED) {
		const char *by = st->approved_by[0];
		/* Through a link, by nobody signed in: no one to name. */
		printf("%sapproved %s%s", after ? "; " : "", by && *by ? "by " : "through its link",
		       by && *by ? by : "");
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	approval_progress(st->napproved, need, st->approved_by, true, &sb);
	printf("%sapprovals %s", after ? "; " : "", sb.buf);
	strbuf_release(&sb);
}

/* The head of show's text: the release, its plan, who started it, since when. */
static void show_header(const struct exec_row *row, const struct exec_state *s, int64_t now)
{
	struct strbuf t = STRBUF_INIT, d = STRBUF_INIT;
	time_text(&t, s->started_ms);
	duration_format(&d, ((s->finished_ms ? s->finished_ms : now) - s->started_ms) / 1000);
	printf("release %s  %s\n", row->id, exec_status_name(s->status));
	if (row->plan_name)
		printf("plan      %s%s%s\n", row->plan_name, row->plan_file ? "  " : "",
		       row->plan_file ? row->plan_file : "");
	else if (row->plan_file)
		printf("plan      %s\n", row->plan_file);
	if (row->environment)
		printf("env       %s\n", row->environment);
	printf("started   %s by %s, %s %s\n", t.buf, row->started_by ? row->started_by : "?",
	       s->finished_ms ? "took" : "running for", d.buf);
	if (row->waiting)
		printf("waits for %s\n", row->waiting);
	if (s->abort_ms) {
		printf("%s by %s", s->status == EXEC_RUNNING ? "aborting" : "aborted  ",
		       s->aborted_by ? s->aborted_by : "someone");
		if (s->abort_reason) {
			struct strbuf safe = STRBUF_INIT; /* from outside */
			strbuf_add_escaped(&safe, s->abort_reason, strlen(s->abort_reason));
			printf(": %s", safe.buf);
			strbuf_release(&safe);
		}
		putchar('\n');
	}
	strbuf_release(&t);
	strbuf_release(&d);
}

/* The widest step name (16 to 60), for one aligned table. */
static int step_name_width(const struct plan *plan)
{
	int width = 16;
	for (size_t i = 0; i < plan->nstages; i++)
		for (size_t j = 0; j < plan->stages[i].nsteps; j++) {
			size_t n = strlen(plan->stages[i].steps[j].name);
			if (n > (size_t)width && n <= 60)
				width = (int)n;
		}
	return width;
}

/* One step's line of show (x is its entry in the report), then its work and
 * what it waits for outside steppy. */
static void show_step(const json_t *x, const struct plan_step *ps, const struct step_state *st,
                      int width, int64_t now)
{
	struct strbuf d = STRBUF_INIT;
	if (st->started_ms)
		duration_format(&d, ((st->ended_ms ? st->ended_ms : now) - st->started_ms) / 1000);
	printf("  %-10s  %-*s  %-8s  %-6s  ", json_string_value(json_object_get(x, "state")), width,
	       json_string_value(json_object_get(x, "name")),
	       json_string_value(json_object_get(x, "type")), d.len ? d.buf : "-");
	strbuf_release(&d);
	if (st->attempt > 1)
		printf("%d attempts", st->attempt);
	const char *error = json_string_value(json_object_get(x, "error"));
	if (error)
		printf("%s%s", st->attempt > 1 ? "; " : "", error);
	print_approvals(ps, st, st->attempt > 1 || error);
	putchar('\n');
	print_work(ps, json_object_get(x, "work"));
	struct strbuf outside = STRBUF_INIT;
	if (st->status == STEP_RUNNING && ps->type->outside_wait)
		ps->type->outside_wait(ps->node, json_object_get(x, "progress"), true, &outside);
	if (outside.len)
		printf("              %s\n", outside.buf);
	strbuf_release(&outside);
}

/* show as text: the header, then each stage and its steps. */
static void show_text(const struct exec_row *row, const struct loaded_exec *le,
                      const json_t *report)
{
	int64_t now = (int64_t)time(NULL) * 1000;
	show_header(row, &le->state, now);
	int width = step_name_width(le->plan);
	const json_t *stages = json_object_get(report, "stages");
	for (size_t i = 0; i < json_array_size(stages); i++) {
		const json_t *stg = json_array_get(stages, i);
		printf("\nstage %zu/%zu  %-9s  %s\n", i + 1, json_array_size(stages),
		       json_string_value(json_object_get(stg, "state")),
		       json_string_value(json_object_get(stg, "name")));
		const json_t *steps = json_object_get(stg, "steps");
		for (size_t j = 0; j < json_array_size(steps); j++)
			show_step(json_array_get(steps, j), &le->plan->stages[i].steps[j],
			          &le->state.steps[i][j], width, now);
	}
}

int cmd_show(int argc, char **argv, const struct cli_ctx *ctx)
{
	if (argc != 2)
		return usage_error("show takes one execution id (see steppy show --help)");
	struct store *st = NULL;
	struct exec_row row = { 0 };
	struct loaded_exec le = { 0 };
	int code = cli_load_execution(ctx->db, argv[1], &st, &row, &le);
	if (code == EXIT_OK) {
		/* the same document as the API's (runtime/report.h) */
		json_t *doc = execution_report(&row, &le);
		if (ctx->format == FORMAT_JSON) {
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
		} else {
			show_text(&row, &le, doc);
		}
		json_decref(doc);
	}
	loaded_exec_release(&le);
	exec_row_release(&row);
	store_close(st);
	return code;
}

int cmd_history(int argc, char **argv, const struct cli_ctx *ctx)
{
	if (argc != 2)
		return usage_error("history takes one execution id (see steppy history --help)");
	struct store *st = NULL;
	struct exec_row row = { 0 };
	struct loaded_exec le = { 0 };
	int code = cli_load_execution(ctx->db, argv[1], &st, &row, &le);
	if (code == EXIT_OK) {
		json_t *events = json_array();
		for (size_t i = 0; i < le.history.len; i++) {
			const struct event *e = &le.history.items[i];
			json_t *j =
			    json_pack("{sI sI ss}", "seq", (json_int_t)e->seq, "timeMs",
			              (json_int_t)e->time_ms, "type", event_type_name(e->type));
			if (e->stage >= 0) {
				json_object_set_new(j, "stage", json_integer(e->stage));
				json_object_set_new(j, "stageName",
				                    json_string(le.plan->stages[e->stage].name));
			}
			if (e->step >= 0) {
				json_object_set_new(j, "step", json_integer(e->step));
				json_object_set_new(
				    j, "stepName",
				    json_string(le.plan->stages[e->stage].steps[e->step].name));
			}
			if (e->attempt)
				json_object_set_new(j, "attempt", json_integer(e->attempt));
			if (e->type == EV_EXECUTION_STARTED) {
				json_t *data = json_deep_copy(e->data);
				execution_started_redact(data);
				json_object_set_new(j, "data", data);
			} else
				json_object_set_new(j, "data", json_incref(e->data));
			if (ctx->format == FORMAT_JSON) {
				json_array_append_new(events, j);
				continue;
			}
			struct strbuf t = STRBUF_INIT;
			rfc3339_format(&t, e->time_ms);
			printf("%4lld  %s  %-19s", (long long)e->seq, t.buf,
			       event_type_name(e->type));
			if (e->step >= 0)
				printf("  %s / %s #%d", le.plan->stages[e->stage].name,
				       le.plan->stages[e->stage].steps[e->step].name, e->attempt);
			else if (e->stage >= 0)
				printf("  %s", le.plan->stages[e->stage].name);
			if (e->type != EV_EXECUTION_STARTED && json_object_size(e->data)) {
				char *d = json_dumps(e->data, JSON_COMPACT);
				size_t n = strlen(d);
				printf("  %.*s%s", 200, d, n > 200 ? "..." : "");
				free(d);
			}
			putchar('\n');
			strbuf_release(&t);
			json_decref(j);
		}
		if (ctx->format == FORMAT_JSON) {
			json_t *doc = json_pack("{ss so}", "id", row.id, "events", events);
			json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			fputc('\n', stdout);
			json_decref(doc);
		} else {
			json_decref(events);
		}
	}
	loaded_exec_release(&le);
	exec_row_release(&row);
	store_close(st);
	return code;
}
