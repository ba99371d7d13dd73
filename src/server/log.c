/*
 * log.c - the log lines of `steppy serve` (see log.h): formatting as text
 * or JSON, masking registered secrets, escaping, and which events of a
 * release make a line.
 */
#include "server/log.h"

#include "plan/plan.h"
#include "plan/step-type.h"
#include "util/strbuf.h"
#include "util/timefmt.h"
#include "util/utf8.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_format log_format = LOG_TEXT;
static const char *const *log_secrets;

int log_parse_format(const char *s, enum log_format *out)
{
	if (!strcmp(s, "text"))
		*out = LOG_TEXT;
	else if (!strcmp(s, "json"))
		*out = LOG_JSON;
	else
		return -1;
	return 0;
}

void log_set_format(enum log_format format)
{
	log_format = format;
}

void log_set_secrets(const char *const *values)
{
	log_secrets = values;
}

/* Replaces every registered secret of sb (at least 4 bytes long, so that
 * short values do not blank ordinary words) by "****". */
static void mask_secrets(struct strbuf *sb)
{
	for (size_t i = 0; log_secrets && log_secrets[i]; i++) {
		const char *secret = log_secrets[i];
		size_t n = strlen(secret);
		if (n < 4)
			continue;
		char *at;
		while ((at = strstr(sb->buf, secret)) != NULL) {
			size_t pos = (size_t)(at - sb->buf);
			struct strbuf out = STRBUF_INIT;
			strbuf_add(&out, sb->buf, pos);
			strbuf_addstr(&out, "****");
			strbuf_addstr(&out, at + n);
			strbuf_release(sb);
			*sb = out;
		}
	}
}

/* A value for a text line: bare if it is a plain word, else quoted, with
 * \" for quotes; control characters, backslashes and invalid UTF-8 are
 * escaped as everywhere (strbuf_add_escaped()), so one event stays one line. */
static void text_value(struct strbuf *sb, const char *v, bool bare_ok)
{
	bool bare = bare_ok && *v;
	for (const char *p = v; *p && bare; p++)
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' ||
		    (unsigned char)*p >= 0x7f)
			bare = false;
	if (bare) {
		strbuf_addstr(sb, v);
		return;
	}
	if (!bare_ok) {
		strbuf_add_escaped(sb, v, strlen(v));
		return;
	}
	strbuf_addch(sb, '"');
	for (const char *p = v;;) {
		const char *q = strchr(p, '"');
		strbuf_add_escaped(sb, p, q ? (size_t)(q - p) : strlen(p));
		if (!q)
			break;
		strbuf_addstr(sb, "\\\"");
		p = q + 1;
	}
	strbuf_addch(sb, '"');
}

/* The same string made valid UTF-8 (jansson refuses anything else). */
static json_t *json_text(const char *v)
{
	char *copy = strdup(v);
	if (!copy)
		return json_string("");
	utf8_sanitize(copy);
	json_t *j = json_string(copy);
	free(copy);
	return j ? j : json_string("");
}

static void write_line(struct strbuf *line)
{
	mask_secrets(line);
	strbuf_addch(line, '\n');
	flockfile(stderr);
	fwrite(line->buf, 1, line->len, stderr);
	fflush(stderr);
	funlockfile(stderr);
}

void log_event(const char *level, const char *event, const char *message, ...)
{
	struct strbuf line = STRBUF_INIT;
	va_list ap;
	va_start(ap, message);
	if (log_format == LOG_JSON) {
		struct strbuf now = STRBUF_INIT;
		rfc3339_format(&now, wall_clock_ms());
		json_t *o = json_object();
		json_object_set_new(o, "time", json_string(now.buf));
		json_object_set_new(o, "level", json_text(level));
		json_object_set_new(o, "event", json_text(event));
		if (message)
			json_object_set_new(o, "message", json_text(message));
		const char *k;
		while ((k = va_arg(ap, const char *)) != NULL) {
			const char *v = va_arg(ap, const char *);
			if (v)
				json_object_set_new(o, k, json_text(v));
		}
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		strbuf_addstr(&line, s ? s : "{}");
		free(s);
		json_decref(o);
		strbuf_release(&now);
	} else {
		strbuf_addstr(&line, "steppy serve: ");
		text_value(&line, event, false);
		if (message) {
			strbuf_addstr(&line, ": ");
			text_value(&line, message, false);
		}
		const char *k;
		while ((k = va_arg(ap, const char *)) != NULL) {
			const char *v = va_arg(ap, const char *);
			if (!v)
				continue;
			strbuf_addf(&line, " %s=", k);
			text_value(&line, v, true);
		}
	}
	va_end(ap);
	write_line(&line);
	strbuf_release(&line);
}

void log_eventf(const char *level, const char *event, const char *fmt, ...)
{
	struct strbuf msg = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&msg, fmt, ap);
	va_end(ap);
	log_event(level, event, msg.buf, NULL);
	strbuf_release(&msg);
}

void log_safe_path(const char *url, char *out, size_t size)
{
	if (!strncmp(url, "/api/", 5) || !strcmp(url, "/") || !strcmp(url, "/healthz") ||
	    !strcmp(url, "/metrics")) {
		snprintf(out, size, "%s", url);
		return;
	}
	const char *second = url[0] == '/' ? strchr(url + 1, '/') : NULL;
	if (second)
		snprintf(out, size, "%.*s/...", (int)(second - url), url);
	else
		snprintf(out, size, "%s", url);
}

/* ---- a release's events ------------------------------------------------------------ */

static const char *json_str(const json_t *data, const char *key)
{
	return json_string_value(json_object_get(data, key));
}

/* The line of one step event, with the step's stage, name and type. */
static void step_line(const char *id, const struct exec_state *state, const struct event *e,
                      const char *level, const char *event, const char *status)
{
	if (e->stage < 0 || e->step < 0 || (size_t)e->stage >= state->plan->nstages ||
	    (size_t)e->step >= state->plan->stages[e->stage].nsteps)
		return;
	const struct plan_stage *stage = &state->plan->stages[e->stage];
	const struct plan_step *ps = &stage->steps[e->step];
	char attempt[16];
	snprintf(attempt, sizeof(attempt), "%d", e->attempt);
	const char *error = e->type == EV_STEP_FAILED || e->type == EV_STEP_TIMED_OUT
	                        ? json_str(e->data, "error")
	                        : NULL;
	if (e->type == EV_HUMAN_DECISION) {
		log_event(level, event, NULL, "release", id, "stage", stage->name, "step", ps->name,
		          "decision", json_str(e->data, "decision"), "by", json_str(e->data, "by"),
		          NULL);
		return;
	}
	log_event(level, event, NULL, "release", id, "stage", stage->name, "step", ps->name, "type",
	          ps->type->name, "attempt", attempt, "status", status, "error", error, NULL);
}

void log_release_events(const char *id, const struct exec_state *state, const struct event *events,
                        size_t n)
{
	const struct plan *plan = state->plan;
	for (size_t i = 0; i < n; i++) {
		const struct event *e = &events[i];
		switch (e->type) {
		case EV_EXECUTION_STARTED:
			log_event("info", "release.started", NULL, "release", id, "plan",
			          plan->name, "environment", plan->environment, "by",
			          state->started_by, NULL);
			break;
		case EV_EXECUTION_FINISHED:
			log_event(state->status == EXEC_SUCCEEDED ? "info" : "warning",
			          "release.ended", NULL, "release", id, "plan", plan->name,
			          "status", exec_status_name(state->status), NULL);
			break;
		case EV_EXECUTION_REDRIVEN:
			log_event("info", "release.retried", NULL, "release", id, "by",
			          json_str(e->data, "by"), NULL);
			break;
		case EV_ABORT_REQUESTED:
			log_event("warning", "release.abort", NULL, "release", id, "by",
			          json_str(e->data, "by"), NULL);
			break;
		case EV_STEP_STARTED:
			step_line(id, state, e, "info", "step.started", NULL);
			break;
		case EV_STEP_SUCCEEDED:
			step_line(id, state, e, "info", "step.ended", "SUCCEEDED");
			break;
		case EV_STEP_FAILED:
			step_line(id, state, e, "warning", "step.ended", "FAILED");
			break;
		case EV_STEP_TIMED_OUT:
			step_line(id, state, e, "warning", "step.ended", "TIMED_OUT");
			break;
		case EV_STEP_CANCELLED:
			step_line(id, state, e, "info", "step.ended", "CANCELLED");
			break;
		case EV_HUMAN_DECISION:
			step_line(id, state, e, "info", "decision", NULL);
			break;
		default:
			break;
		}
	}
}
