/*
 * view.c - the terminal view of running releases (run, resume, retry).
 *
 * Every committed event that matters to a person becomes one log line. On a
 * terminal a status line at the bottom is redrawn in place five times a
 * second: the running steps with their elapsed time, and what waits for a
 * person; when exactly one Human step waits, typing y or n (then Enter)
 * approves or rejects it. Elsewhere (a pipe, a CI log) only the log lines
 * are written.
 */
#include "cli/view.h"

#include "core/people.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 64

struct tracked {
	char *id; /* its state comes from the runtime each time: it may be parked */
};

struct view {
	FILE *out;
	bool tty, colour;
	bool status_shown;
	struct runtime *rt;
	struct tracked execs[MAX_TRACKED];
	size_t nexecs;
	uv_tty_t input;
	bool input_open;
	struct strbuf line;     /* typed so far */
	char *server;           /* steppy serve with tokens that uses the store, or NULL */
	char *db;               /* the store as --db named it (shown form), or NULL: the default */
	int64_t quiet_since_ms; /* not a terminal: when the last line was printed */
};

/* Not a terminal (a pipe, a CI log): after this long without a line, a
 * "still running" line says what runs, so a long poll is not silence. */
#define STILL_RUNNING_MS (60 * 1000)

static const char *c(const struct view *v, const char *code)
{
	return v->colour ? code : "";
}

#define BOLD   "\033[1m"
#define RED    "\033[1;31m"
#define GREEN  "\033[32m"
#define YELLOW "\033[33m"
#define DIM    "\033[2m"
#define RESET  "\033[0m"

static void clear_status(struct view *v)
{
	if (v->status_shown) {
		fputs("\r\033[K", v->out);
		v->status_shown = false;
	}
}

static void still_running(struct view *v);
static void stamp(struct view *v, const char *id, int64_t ms);

static void draw_status(struct view *v)
{
	if (!v->tty) {
		still_running(v);
		return;
	}
	/* Ctrl-C: nothing more to show; steppy says why it stops below */
	if (v->rt && runtime_stopping(v->rt)) {
		clear_status(v);
		fflush(v->out);
		return;
	}
	struct strbuf sb = STRBUF_INIT, waiting = STRBUF_INIT;
	int64_t now = wall_clock_ms();
	for (size_t i = 0; i < v->nexecs; i++) {
		const struct exec_state *s = v->rt ? runtime_state(v->rt, v->execs[i].id) : NULL;
		if (!s || s->status != EXEC_RUNNING || !s->stage_open)
			continue;
		const struct plan_stage *stage = &s->plan->stages[s->stage];
		for (size_t j = 0; j < stage->nsteps; j++) {
			const struct step_state *st = &s->steps[s->stage][j];
			const struct approval_rule *rule = approval_rule_of(&stage->steps[j]);
			int need = rule ? rule->min_approvals : 1;
			if (st->status == STEP_RUNNING && rule) {
				strbuf_addf(&waiting, "%s\"%s\"", waiting.len ? ", " : "",
				            stage->steps[j].name);
				if (need > 1) {
					strbuf_addstr(&waiting, " (");
					approval_progress(st->napproved, need, st->approved_by,
					                  false, &waiting);
					strbuf_addch(&waiting, ')');
				}
			} else if (st->status == STEP_RUNNING || st->status == STEP_CANCELLING) {
				strbuf_addf(&sb, "%s%s ", sb.len ? ", " : "", stage->steps[j].name);
				duration_format(&sb, (now - st->started_ms) / 1000);
			} else if (st->status == STEP_RETRY_WAIT) {
				strbuf_addf(&sb, "%s%s retry in ", sb.len ? ", " : "",
				            stage->steps[j].name);
				duration_format(&sb, (st->due_ms - now + 999) / 1000);
			}
		}
	}
	clear_status(v);
	if (sb.len || waiting.len) {
		fprintf(v->out, "%s%s%s", c(v, DIM), sb.len ? "running: " : "", sb.buf);
		if (waiting.len)
			fprintf(v->out, "%s%s%s waits for approval%s", sb.len ? " | " : "",
			        c(v, YELLOW), waiting.buf,
			        strchr(waiting.buf, ',') ? "" : " (y/n + Enter to decide here)");
		fprintf(v->out, "%s", c(v, RESET));
		v->status_shown = true;
	}
	fflush(v->out);
	strbuf_release(&sb);
	strbuf_release(&waiting);
}

/* Not a terminal: the steps that run, as one line, once a minute of quiet. */
static void still_running(struct view *v)
{
	int64_t now = wall_clock_ms();
	if (!v->rt || runtime_stopping(v->rt) || now - v->quiet_since_ms < STILL_RUNNING_MS)
		return;
	v->quiet_since_ms = now;
	for (size_t i = 0; i < v->nexecs; i++) {
		const struct exec_state *s = runtime_state(v->rt, v->execs[i].id);
		if (!s || s->status != EXEC_RUNNING || !s->stage_open)
			continue;
		const struct plan_stage *stage = &s->plan->stages[s->stage];
		struct strbuf sb = STRBUF_INIT;
		for (size_t j = 0; j < stage->nsteps; j++) {
			const struct step_state *st = &s->steps[s->stage][j];
			if (st->status != STEP_RUNNING)
				continue;
			strbuf_addf(&sb, "%s%s (%s", sb.len ? ", " : "", stage->steps[j].name,
			            stage->steps[j].type->name);
			strbuf_addstr(&sb, ", for ");
			duration_format(&sb, (now - st->started_ms) / 1000);
			strbuf_addch(&sb, ')');
		}
		if (sb.len) {
			stamp(v, v->execs[i].id, now);
			fprintf(v->out, "  still running: %s\n", sb.buf);
		}
		strbuf_release(&sb);
	}
	fflush(v->out);
}

static void track(struct view *v, const char *id)
{
	for (size_t i = 0; i < v->nexecs; i++)
		if (!strcmp(v->execs[i].id, id))
			return;
	if (v->nexecs < MAX_TRACKED)
		v->execs[v->nexecs++].id = xstrdup(id);
}

static void stamp(struct view *v, const char *id, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	fprintf(v->out, "%s%02d:%02d:%02d%s ", c(v, DIM), tm.tm_hour, tm.tm_min, tm.tm_sec,
	        c(v, RESET));
	if (v->nexecs > 1)
		fprintf(v->out, "%s ", id);
}

static const char *str(const json_t *data, const char *key)
{
	return json_string_value(json_object_get(data, key));
}

/* Prints the last lines of a captured stream, indented. */
static void tail_lines(struct view *v, const char *label, const char *text, int max)
{
	if (!text || !*text)
		return;
	const char *end = text + strlen(text);
	while (end > text && end[-1] == '\n')
		end--;
	const char *p = end;
	int lines = 0;
	while (p > text && lines < max) {
		p--;
		if (*p == '\n')
			lines++;
	}
	if (*p == '\n')
		p++;
	fprintf(v->out, "      %s%s:%s\n", c(v, DIM), label, c(v, RESET));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		fprintf(v->out, "      | %.*s\n", (int)n, p);
		p += n + (nl ? 1 : 0);
	}
}

/* Writes s for a POSIX shell: in single quotes, each ' as '\''. */
static void shell_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	fputc('\'', f);
}

/*
 * How to decide a waiting Human step from another terminal: with --by when
 * it names approvers (the name must be one of them), or through the server
 * (--server) when a steppy serve with tokens uses the store, since that
 * store refuses local decisions for approvers.
 */
static void print_decide_hint(struct view *v, const char *id, const struct plan_step *ps,
                              const struct approval_rule *rule)
{
	size_t n = rule->napprovers;
	if (n) {
		fprintf(v->out, "      approvers: ");
		for (size_t i = 0; i < n; i++)
			fprintf(v->out, "%s%s", i ? ", " : "", rule->approvers[i]);
		fputc('\n', v->out);
	}
	for (int k = 0; k < 2; k++) {
		const char *verb = k ? "reject" : "approve";
		fprintf(v->out, "      %s:%s steppy %s ", verb, k ? " " : "", verb);
		if (v->server && n)
			fprintf(v->out, "--server %s ", v->server);
		else if (n == 1 && strncmp(rule->approvers[0], PEOPLE_GROUP_PREFIX,
		                           strlen(PEOPLE_GROUP_PREFIX)))
			fprintf(v->out, "--by %s ", rule->approvers[0]);
		else if (n)
			fprintf(v->out, "--by NAME ");
		if (v->db && !(v->server && n)) {
			fprintf(v->out, "--db ");
			shell_quote(v->out, v->db);
			fputc(' ', v->out);
		}
		fprintf(v->out, "%s ", id);
		shell_quote(v->out, ps->name);
		fputc('\n', v->out);
	}
	if (v->server && n)
		fprintf(v->out, "      (with an API token of an approver in $STEPPY_TOKEN or "
		                "--token-file FILE)\n");
}

static void on_execution_started(struct view *v, const char *id, const struct plan *plan,
                                 const struct event *e)
{
	size_t steps = 0;
	for (size_t i = 0; i < plan->nstages; i++)
		steps += plan->stages[i].nsteps;
	stamp(v, id, e->time_ms);
	fprintf(v->out, "%srelease %s%s%s%s started: %zu stage%s, %zu step%s", c(v, BOLD), id,
	        plan->name ? " \"" : "", plan->name ? plan->name : "", plan->name ? "\"" : "",
	        plan->nstages, plan->nstages == 1 ? "" : "s", steps, steps == 1 ? "" : "s");
	if (plan->environment)
		fprintf(v->out, " (environment %s)", plan->environment);
	fprintf(v->out, "%s\n", c(v, RESET));
}

/* A step's attempt began: a question for people, a wait, or work. */
static void on_step_started(struct view *v, const char *id, const struct plan_step *ps,
                            const struct event *e)
{
	const struct approval_rule *rule = approval_rule_of(ps);
	stamp(v, id, e->time_ms);
	if (rule) {
		fprintf(v->out, "  %s? %s%s waits for approval", c(v, YELLOW), ps->name,
		        c(v, RESET));
		if (rule->min_approvals > 1)
			fprintf(v->out, " by %d different people", rule->min_approvals);
		fprintf(v->out, ": %s\n", rule->message);
		print_decide_hint(v, id, ps, rule);
	} else if (ps->type->flags & STEP_INTERNAL) {
		struct strbuf d = STRBUF_INIT;
		json_t *due = json_object_get(e->data, "dueMs");
		duration_format(&d, (json_integer_value(due) - e->time_ms + 999) / 1000);
		fprintf(v->out, "  > %s waits %s\n", ps->name, d.buf);
		strbuf_release(&d);
	} else {
		fprintf(v->out, "  > %s (%s) started", ps->name, ps->type->name);
		if (e->attempt > 1)
			fprintf(v->out, ", attempt %d", e->attempt);
		fputc('\n', v->out);
	}
}

static void on_retry_scheduled(struct view *v, const char *id, const struct exec_state *s,
                               const struct plan_step *ps, const struct event *e)
{
	struct strbuf d = STRBUF_INIT;
	duration_format(
	    &d, (json_integer_value(json_object_get(e->data, "dueMs")) - e->time_ms + 999) / 1000);
	/* maxAttempts counts from the start or the last steppy retry: the
	 * attempts before that are outside the budget */
	const struct step_state *st = &s->steps[e->stage][e->step];
	int base = st->attempt - st->run_attempts, next = e->attempt + 1;
	stamp(v, id, e->time_ms);
	if (base > 0)
		fprintf(v->out,
		        "  %s will be tried again in %s (attempt %d: %d of %lld since the "
		        "retry)\n",
		        ps->name, d.buf, next, next - base, (long long)ps->retry.max_attempts);
	else
		fprintf(v->out, "  %s will be tried again in %s (attempt %d of %lld)\n", ps->name,
		        d.buf, next, (long long)ps->retry.max_attempts);
	strbuf_release(&d);
}

/* Prints ": \"text\"" with text escaped (it comes from outside), or nothing. */
static void quoted(struct view *v, const char *text)
{
	if (!text)
		return;
	struct strbuf safe = STRBUF_INIT;
	strbuf_add_escaped(&safe, text, strlen(text));
	fprintf(v->out, ": \"%s\"", safe.buf);
	strbuf_release(&safe);
}

static void on_decision(struct view *v, const char *id, const struct exec_state *s,
                        const struct plan_step *ps, const struct event *e)
{
	bool ok = !strcmp(str(e->data, "decision"), "approve");
	const char *name = ps->name;
	const char *by = str(e->data, "by") ? str(e->data, "by") : "";
	/* A decision through a link by nobody signed in names no one. */
	char who[300];
	snprintf(who, sizeof(who), "%s%s", *by ? "by " : "through its link", by);
	const struct step_state *st = &s->steps[e->stage][e->step];
	int need = approval_needed(ps), nth = 0;
	for (int i = 0; ok && st->attempt == e->attempt && i < st->napproved && !nth; i++)
		if (approval_same_person(st->approved_by[i], by))
			nth = i + 1;
	stamp(v, id, e->time_ms);
	if (ok && nth && nth < need)
		fprintf(v->out, "  %sapproval %d of %d%s for %s %s", c(v, GREEN), nth, need,
		        c(v, RESET), name, who);
	else if (ok && nth && need > 1)
		fprintf(v->out, "  %sapproved%s %s %s (approval %d of %d)", c(v, GREEN),
		        c(v, RESET), name, who, nth, need);
	else
		fprintf(v->out, "  %s%s%s %s %s", c(v, ok ? GREEN : RED),
		        ok ? "approved" : "REJECTED", c(v, RESET), name, who);
	if (str(e->data, "forced"))
		fprintf(v->out, " (forced %s)", str(e->data, "forced"));
	quoted(v, str(e->data, "comment"));
	fputc('\n', v->out);
}

static void on_abort_requested(struct view *v, const char *id, const struct event *e)
{
	stamp(v, id, e->time_ms);
	fprintf(v->out, "%srelease %s is being aborted%s%s", c(v, RED), id,
	        str(e->data, "by") ? " by " : "", str(e->data, "by") ? str(e->data, "by") : "");
	quoted(v, str(e->data, "reason"));
	fputc('\n', v->out);
	fputs(c(v, RESET), v->out);
}

/* A notice that asks something of people outside steppy (a pipeline waits
 * for a manual approval that steppy does not give), in its type's words: the
 * question highlighted, how to answer it below. */
static void on_notice(struct view *v, const char *id, const struct plan_step *ps,
                      const struct event *e)
{
	struct strbuf sb = STRBUF_INIT;
	if (ps && ps->type->outside_wait)
		ps->type->outside_wait(ps->node, e->data, false, &sb);
	if (sb.len) {
		char *how = strchr(sb.buf, '\n');
		if (how)
			*how++ = '\0';
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  %s? %s: %s%s\n", c(v, YELLOW), ps->name, sb.buf, c(v, RESET));
		while (how && *how) {
			char *next = strchr(how, '\n');
			if (next)
				*next++ = '\0';
			fprintf(v->out, "      %s\n", how);
			how = next;
		}
	}
	strbuf_release(&sb);
}

static void on_execution_finished(struct view *v, const char *id, const struct exec_state *s,
                                  const struct event *e)
{
	const char *status = str(e->data, "status");
	bool ok = !strcmp(status, "SUCCEEDED");
	stamp(v, id, e->time_ms);
	fprintf(v->out, "%srelease %s %s%s in ", c(v, ok ? GREEN : RED), id, status, c(v, RESET));
	struct strbuf d = STRBUF_INIT;
	duration_format(&d, (e->time_ms - s->started_ms) / 1000);
	fprintf(v->out, "%s\n", d.buf);
	strbuf_release(&d);
}

static void on_event(struct view *v, const char *id, const struct exec_state *s,
                     const struct event *e)
{
	const struct plan *plan = s->plan;
	const struct plan_step *ps =
	    e->stage >= 0 && e->step >= 0 ? &plan->stages[e->stage].steps[e->step] : NULL;
	const char *name = ps ? ps->name : "";
	switch (e->type) {
	case EV_EXECUTION_STARTED:
		on_execution_started(v, id, plan, e);
		break;
	case EV_STAGE_STARTED:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "%sstage %d/%zu: %s%s\n", c(v, BOLD), e->stage + 1, plan->nstages,
		        plan->stages[e->stage].name, c(v, RESET));
		break;
	case EV_STEP_STARTED:
		on_step_started(v, id, ps, e);
		break;
	case EV_STEP_SUCCEEDED: {
		const struct step_state *st = &s->steps[e->stage][e->step];
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  %sok%s %s", c(v, GREEN), c(v, RESET), name);
		if (st->started_ms)
			fprintf(v->out, " (%.1fs)", (double)(e->time_ms - st->started_ms) / 1000.0);
		fputc('\n', v->out);
		break;
	}
	case EV_STEP_FAILED:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  %sFAILED%s %s (attempt %d): %s\n", c(v, RED), c(v, RESET), name,
		        e->attempt, str(e->data, "error") ? str(e->data, "error") : "failed");
		tail_lines(v, "stderr", str(e->data, "stderr"), 10);
		break;
	case EV_RETRY_SCHEDULED:
		on_retry_scheduled(v, id, s, ps, e);
		break;
	case EV_STEP_TIMED_OUT:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  %sTIMED OUT%s %s after %llds\n", c(v, RED), c(v, RESET), name,
		        (long long)json_integer_value(json_object_get(e->data, "timeoutSeconds")));
		break;
	case EV_STEP_CANCEL_REQUESTED:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  cancelling %s: %s\n", name, str(e->data, "reason"));
		break;
	case EV_STEP_CANCELLED:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "  cancelled %s\n", name);
		break;
	case EV_HUMAN_DECISION:
		on_decision(v, id, s, ps, e);
		break;
	case EV_ABORT_REQUESTED:
		on_abort_requested(v, id, e);
		break;
	case EV_NOTICE:
		on_notice(v, id, ps, e);
		break;
	case EV_EXECUTION_REDRIVEN:
		stamp(v, id, e->time_ms);
		fprintf(v->out, "%srelease %s continues from stage %d/%zu%s\n", c(v, BOLD), id,
		        s->stage + 1, plan->nstages, c(v, RESET));
		break;
	case EV_EXECUTION_FINISHED:
		on_execution_finished(v, id, s, e);
		break;
	default:
		break;
	}
}

static void view_events(void *arg, const char *id, const struct exec_state *state,
                        const struct event *events, size_t n)
{
	struct view *v = arg;
	track(v, id);
	clear_status(v);
	for (size_t i = 0; i < n; i++)
		on_event(v, id, state, &events[i]);
	v->quiet_since_ms = wall_clock_ms();
	draw_status(v);
	fflush(v->out); /* a pipe (CI log, a script waiting for a line) sees it now */
}

void view_notify(void *arg, const char *execution_id, int64_t time_ms, const char *text)
{
	struct view *v = arg;
	clear_status(v);
	stamp(v, execution_id ? execution_id : "", time_ms);
	fprintf(v->out, "  %s[notify]%s %s\n", c(v, BOLD), c(v, RESET), text);
	draw_status(v);
	fflush(v->out);
}

static void view_error(void *arg, const char *message)
{
	struct view *v = arg;
	clear_status(v);
	fprintf(stderr, "steppy: %s\n", message);
	draw_status(v);
}

static void view_tick(void *arg)
{
	draw_status(arg);
}

/* A line typed on the terminal: y or n decides the one waiting Human step. */
static void decide_typed(struct view *v, const char *line)
{
	bool approve = !strcmp(line, "y") || !strcmp(line, "yes");
	bool reject = !strcmp(line, "n") || !strcmp(line, "no");
	if (!approve && !reject)
		return;
	const char *id = NULL;
	int stage = -1, step = -1, waiting = 0;
	for (size_t i = 0; i < v->nexecs; i++) {
		const struct exec_state *s = runtime_state(v->rt, v->execs[i].id);
		if (!s || s->status != EXEC_RUNNING || !s->stage_open)
			continue;
		for (size_t j = 0; j < s->plan->stages[s->stage].nsteps; j++)
			if (s->steps[s->stage][j].status == STEP_RUNNING &&
			    (s->plan->stages[s->stage].steps[j].type->flags & STEP_DECISION)) {
				id = v->execs[i].id;
				stage = s->stage;
				step = (int)j;
				waiting++;
			}
	}
	clear_status(v);
	if (waiting != 1) {
		fprintf(v->out, "%s\n",
		        waiting ? "several steps wait: use steppy approve ID STEP"
		                : "no step waits for a decision");
	} else {
		char *by = cli_whoami();
		const struct exec_state *s = runtime_state(v->rt, id);
		const struct plan_step *ps = &s->plan->stages[stage].steps[step];
		const char *reason;
		const struct approval_rule *rule = approval_rule_of(ps);
		if (v->server && rule && rule->napprovers)
			fprintf(v->out,
			        "a steppy serve with API tokens uses this store: decide with "
			        "steppy %s --server %s %s '%s'\n",
			        approve ? "approve" : "reject", v->server, id, ps->name);
		else if (cli_not_an_approver(s, stage, step, by, approve))
			fprintf(v->out, "%s is not an approver of \"%s\"\n", by, ps->name);
		else if (runtime_decide(v->rt, id, stage, step, approve,
		                        json_pack("{ss ss}", "by", by, "via", "terminal"),
		                        &reason) < 0)
			fprintf(v->out, "cannot decide: %s\n", reason);
		free(by);
	}
	draw_status(v);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	static char chunk[1024];
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct view *v = s->data;
	if (n < 0) {
		uv_read_stop(s);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char ch = buf->base[i];
		if (ch == '\n' || ch == '\r') {
			decide_typed(v, v->line.buf);
			strbuf_reset(&v->line);
		} else {
			strbuf_addch(&v->line, ch);
		}
	}
}

struct view *view_new(struct runtime_observer *obs, bool interactive)
{
	struct view *v = xcalloc(1, sizeof(*v));
	v->out = stdout;
	v->tty = isatty(fileno(stdout));
	v->quiet_since_ms = wall_clock_ms();
	v->colour = use_colour(stdout);
	strbuf_init(&v->line, 256);
	*obs = (struct runtime_observer){
		.on_events = view_events, .on_error = view_error, .on_tick = view_tick, .arg = v
	};
	(void)interactive;
	return v;
}

void view_attach(struct view *v, struct runtime *rt, bool interactive)
{
	v->rt = rt;
	if (interactive && v->tty && isatty(STDIN_FILENO) &&
	    uv_tty_init(runtime_loop(rt), &v->input, STDIN_FILENO, 1) == 0) {
		v->input.data = v;
		v->input_open = true;
		uv_read_start((uv_stream_t *)&v->input, alloc_cb, read_cb);
		uv_unref((uv_handle_t *)&v->input);
	}
}

void view_free(struct view *v)
{
	if (!v)
		return;
	clear_status(v);
	fflush(v->out);
	if (v->input_open) {
		uv_read_stop((uv_stream_t *)&v->input);
		uv_close((uv_handle_t *)&v->input, NULL);
		uv_run(runtime_loop(v->rt), UV_RUN_NOWAIT);
		uv_tty_reset_mode();
	}
	for (size_t i = 0; i < v->nexecs; i++)
		free(v->execs[i].id);
	strbuf_release(&v->line);
	free(v->server);
	free(v->db);
	free(v);
}

void view_set_server(struct view *v, const char *url)
{
	free(v->server);
	v->server = url ? xstrdup(url) : NULL;
}

void view_set_store(struct view *v, const char *db)
{
	free(v->db);
	v->db = db ? store_display_name(db) : NULL;
}

void view_clear(struct view *v)
{
	clear_status(v);
	fflush(v->out);
}
