/*
 * notify.c - the Notify step type: publish a message to notification
 * channels. Its runner sends through the process's notification hub
 * (notify/hub.h), which both `steppy run` and `steppy serve` build: the
 * built-in "terminal" (the live view of `steppy run`) and "log"
 * (notifications.log next to the store), Amazon SNS topics named by their
 * ARN, and the named channels of a server's configuration (Slack, Teams,
 * webhooks, email ...). Without "channels", the terminal, the log and a
 * server's default channels. A channel that cannot be reached after its
 * retries (the hub's one rule) is a warning in the step's output, or fails
 * the step when it says mustDeliver. Naming a channel that does not exist
 * fails the step at once.
 */
#include "notify/hub.h"
#include "plan/step-type.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields --------------------------------------------------------------------------------
 */

static void check_subject(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.string.len; i++) {
		unsigned char c = (unsigned char)value->u.string.s[i];
		if (c < 0x20 || c == 0x7F) {
			v_error(v, value->pos, NULL,
			        "\"subject\" must be one line without control "
			        "characters");
			return;
		}
	}
}

static const struct field_spec notify_fields[] = {
	{ .name = "message", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "subject",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 100,
	  .check = check_subject },
	{ .name = "channels", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_string_list },
	{ .name = "mustDeliver", .types = T_BOOL },
	{ .name = NULL },
};

static void describe_notify(const struct doc_node *step, struct strbuf *out)
{
	const char *subject = step_string(step, "subject");
	if (subject)
		describe_line(out, "subject", "%s", subject);
	describe_line(out, "message", "%s", step_string(step, "message"));
	const struct doc_node *channels = doc_get(step, "channels");
	if (!channels) {
		describe_line(out, "channels", "the default channels");
		return;
	}
	struct strbuf list = STRBUF_INIT;
	for (size_t i = 0; i < channels->u.array.len; i++)
		strbuf_addf(&list, "%s%s", i ? ", " : "", channels->u.array.items[i]->u.string.s);
	describe_line(out, "channels", "%s", list.buf);
	strbuf_release(&list);
	const struct doc_node *must = doc_get(step, "mustDeliver");
	if (must && must->kind == DOC_BOOL && must->u.boolean)
		describe_line(out, "delivery", "the step fails if a channel cannot be reached");
}

/* ---- the runner
 * ---------------------------------------------------------------------------------- */

/* A Notify step's deliveries: ends when every channel has answered. */
struct publish {
	struct attempt *a;
	json_t *details, *errors;
	struct slot *slots;
	size_t nslots, pending;
	bool must_deliver;
};

/* One channel's delivery. */
struct slot {
	struct publish *p;
	struct notify_send *s; /* in flight, or NULL */
};

static bool is_sns_arn(const char *c)
{
	return !strncmp(c, "arn:", 4) && strstr(c, ":sns:") != NULL;
}

static void publish_free(struct publish *p)
{
	for (size_t i = 0; i < p->nslots; i++)
		if (p->slots[i].s)
			notify_hub_cancel(p->slots[i].s);
	free(p->slots);
	json_decref(p->errors);
	json_decref(p->details);
	free(p);
}

static void publish_finish(struct publish *p)
{
	struct attempt *a = p->a;
	bool delivered = json_array_size(p->errors) == 0;
	if (!delivered) {
		struct strbuf sb = STRBUF_INIT;
		size_t i;
		json_t *e;
		json_array_foreach(p->errors, i, e)
		{
			strbuf_addf(&sb, "%s%s", i ? "; " : "", json_string_value(e));
		}
		json_object_set_new(p->details, p->must_deliver ? "error" : "warning",
		                    json_string(sb.buf));
		strbuf_release(&sb);
	}
	json_t *details = json_incref(p->details);
	bool ok = delivered || !p->must_deliver;
	publish_free(p);
	attempt_ended(a, ok, details);
}

static void sent(void *arg, const struct notify_result *r)
{
	struct slot *sl = arg;
	struct publish *p = sl->p;
	sl->s = NULL;
	p->pending--;
	if (r->cancelled) /* the hub went first: the process stops, detach frees p */
		return;
	if (!r->ok)
		json_array_append_new(p->errors, json_string(r->error));
	else if (r->receipt && is_sns_arn(r->channel))
		json_object_set_new(json_object_get(p->details, "snsMessageIds"), r->channel,
		                    json_string(r->receipt));
	if (!p->pending)
		publish_finish(p);
}

/* 0, or SP_EINVAL with err when the step names a channel the hub does not have. */
static int check_channels(const struct notify_hub *hub, const struct doc_node *channels,
                          struct strbuf *err)
{
	for (size_t i = 0; channels && i < channels->u.array.len; i++) {
		const char *c = channels->u.array.items[i]->u.string.s;
		if (!notify_hub_has(hub, c)) {
			strbuf_addf(err,
			            "channel \"%s\" is not configured (this steppy knows the local "
			            "channels \"terminal\" and \"log\", and SNS topic ARNs)",
			            c);
			return SP_EINVAL;
		}
	}
	return 0;
}

/* The names the step's message goes to: its "channels", or the terminal, the log and the
 * default channels. The array holds borrowed strings. */
static json_t *channel_names(const struct notify_hub *hub, const struct doc_node *channels)
{
	json_t *names = json_array();
	if (channels) {
		for (size_t i = 0; i < channels->u.array.len; i++)
			json_array_append_new(names,
			                      json_string(channels->u.array.items[i]->u.string.s));
		return names;
	}
	json_array_append_new(names, json_string("terminal"));
	if (notify_hub_has(hub, "log"))
		json_array_append_new(names, json_string("log"));
	size_t nd = 0;
	const char *const *defaults = notify_hub_defaults(hub, &nd);
	for (size_t i = 0; i < nd; i++)
		json_array_append_new(names, json_string(defaults[i]));
	return names;
}

static bool has_name(const json_t *names, const char *name)
{
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
	{
		if (!strcmp(json_string_value(n), name))
			return true;
	}
	return false;
}

/* A Notify step, read once when the plan is built (strings and nodes borrowed from it). */
struct notify_config {
	const char *subject; /* or NULL */
	const char *message;
	const struct doc_node *channels; /* names, or NULL: the default channels */
	bool must_deliver;
};

static void *bind_notify(const struct doc_node *step)
{
	struct notify_config *c = xcalloc(1, sizeof(*c));
	c->subject = step_string(step, "subject");
	c->message = step_string(step, "message");
	c->channels = doc_get(step, "channels");
	const struct doc_node *must = doc_get(step, "mustDeliver");
	c->must_deliver = must && must->kind == DOC_BOOL && must->u.boolean;
	return c;
}

/* The step's output so far: where it went ("terminal" and "log" first), what it said. */
static json_t *details_of(const struct notify_config *c, const json_t *names)
{
	json_t *used = json_array();
	bool topics = false;
	if (has_name(names, "terminal"))
		json_array_append_new(used, json_string("terminal"));
	if (has_name(names, "log"))
		json_array_append_new(used, json_string("log"));
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(n);
		if (strcmp(name, "terminal") != 0 && strcmp(name, "log") != 0)
			json_array_append_new(used, json_string(name));
		topics |= is_sns_arn(name);
	}
	json_t *details = json_pack("{so ss? ss}", "channels", used, "subject", c->subject,
	                            "message", c->message);
	if (topics)
		json_object_set_new(details, "snsMessageIds", json_object());
	return details;
}

static int notify_start(struct attempt *a, const struct attempt_info *info, const void *config,
                        void **ret_state, struct strbuf *err)
{
	const struct notify_config *c = config;
	*ret_state = NULL;
	int r = check_channels(info->svc->notify, c->channels, err);
	if (r < 0)
		return r;
	attempt_started(a, json_object());
	json_t *names = channel_names(info->svc->notify, c->channels);
	struct publish *p = xcalloc(1, sizeof(*p));
	p->a = a;
	p->details = details_of(c, names);
	p->errors = json_array();
	p->slots = xcalloc(json_array_size(names) + 1, sizeof(*p->slots));
	p->must_deliver = c->must_deliver;
	struct notice notice = { .kind = "notify",
		                 .subject = c->subject,
		                 .message = c->message,
		                 .execution_id = info->execution_id,
		                 .stage = info->stage_name,
		                 .step = info->step_plan->name };
	/* No callback runs inside a send: every delivery is counted before any can end the
	 * step. A name that went away meanwhile (no "log" here) is an error at once. */
	size_t i;
	json_t *n;
	json_array_foreach(names, i, n)
	{
		struct slot *sl = &p->slots[p->nslots++];
		sl->p = p;
		sl->s = notify_hub_send(info->svc->notify, json_string_value(n), &notice, sent, sl);
		if (sl->s)
			p->pending++;
		else
			json_array_append_new(
			    p->errors,
			    json_sprintf("channel \"%s\" is not configured", json_string_value(n)));
	}
	json_decref(names);
	if (!p->pending) {
		publish_finish(p);
		return 0;
	}
	*ret_state = p;
	return 0;
}

static void step_cancel(struct attempt *a, void *state)
{
	if (!state)
		return; /* over already */
	publish_free(state);
	attempt_ended(a, false, json_pack("{ss}", "error", "cancelled while publishing"));
}

/* The process stops: the next one counts the attempt as interrupted. */
static void notify_detach(void *state)
{
	if (state)
		publish_free(state);
}

const struct step_type step_notify = {
	.name = "Notify",
	.summary = "publish a message to notification channels",
	.flags = STEP_RETRYABLE | STEP_SENDS,
	.fields = notify_fields,
	.describe = describe_notify,
	.bind = bind_notify,
	.free_config = free,
	.start = notify_start,
	.cancel = step_cancel,
	.detach = notify_detach,
};
