/*
 * wait.c - the Wait step type: wait a number of seconds, or until a time.
 */
#include "plan/step-type.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <stdbool.h>
#include <stdlib.h>

#define MAX_WAIT_SECONDS 31536000 /* 365 days */

static void check_until(struct vctx *v, const struct doc_node *value)
{
	int64_t ms;
	const char *reason;
	if (v_deferred(v, value))
		return;
	if (rfc3339_parse(value->u.string.s, &ms, &reason) < 0)
		v_error(v, value->pos, NULL, "\"until\" is not a valid time: %s", reason);
}

static const struct field_spec wait_fields[] = {
	{ .name = "seconds",
	  .types = T_INTEGER,
	  .min = 0,
	  .max = MAX_WAIT_SECONDS,
	  .unit = "seconds" },
	{ .name = "until", .types = T_STRING, .flags = F_NONEMPTY, .check = check_until },
	{ .name = NULL },
};

static void validate_wait(struct vctx *v, const struct doc_node *step)
{
	const struct doc_member *seconds = doc_member(step, "seconds");
	const struct doc_member *until = doc_member(step, "until");
	if (seconds && until) {
		size_t saved = v_push(v, "until");
		v_error(v, until->key_pos, NULL,
		        "a Wait step takes \"seconds\" or \"until\", not both");
		v_pop(v, saved);
	} else if (!seconds && !until) {
		v_error(v, step->pos, NULL, "a Wait step needs \"seconds\" or \"until\"");
	}
}

static void describe_wait(const struct doc_node *step, struct strbuf *out)
{
	const struct doc_node *seconds = doc_get(step, "seconds");
	if (seconds) {
		struct strbuf d = STRBUF_INIT;
		duration_format(&d, seconds->u.number.integer);
		describe_line(out, "waits", "%s", d.buf);
		strbuf_release(&d);
	} else {
		int64_t ms;
		const char *reason;
		struct strbuf t = STRBUF_INIT;
		if (rfc3339_parse(step_string(step, "until"), &ms, &reason) == 0)
			rfc3339_format(&t, ms);
		describe_line(out, "waits", "until %s", t.buf);
		strbuf_release(&t);
	}
}

/* A Wait step, read once when the plan is built. */
struct wait_config {
	bool relative; /* "seconds": the wait starts with the attempt */
	int64_t ms;    /* its length (relative), or the time it ends (ms since the epoch) */
};

static void *bind_wait(const struct doc_node *step)
{
	struct wait_config *c = xcalloc(1, sizeof(*c));
	const struct doc_node *secs = doc_get(step, "seconds");
	const char *reason;
	if (secs) {
		c->relative = true;
		c->ms = secs->u.number.integer * 1000;
	} else if (rfc3339_parse(step_string(step, "until"), &c->ms, &reason) < 0) {
		c->ms = 0; /* cannot happen in a valid plan: ends at once */
	}
	return c;
}

/* When the wait of an attempt that starts at now ends (due_ms hook). */
static int64_t wait_due_ms(const void *config, int64_t now)
{
	const struct wait_config *c = config;
	return c->relative ? now + c->ms : c->ms;
}

/* What a running Wait waits for. */
static void wait_waiting_for(const struct doc_node *step, const struct step_view *view,
                             struct strbuf *out)
{
	(void)step;
	(void)view;
	strbuf_addstr(out, "its timer");
}

const struct step_type step_wait = {
	.name = "Wait",
	.summary = "wait a number of seconds, or until a time",
	.flags = STEP_OWN_DURATION | STEP_INTERNAL,
	.fields = wait_fields,
	.validate = validate_wait,
	.describe = describe_wait,
	.bind = bind_wait,
	.free_config = free,
	.due_ms = wait_due_ms,
	.waiting_for = wait_waiting_for,
};
