/*
 * notify-run.c - the runner of Notify steps (notify.c): the local channels, the terminal (the
 * runtime's observer shows the message from the StepSucceeded event) and a
 * log file; Amazon SNS topics named by their ARN (Publish in the topic's
 * region, with the default credentials); and the named channels of a
 * server's configuration (Slack, Teams, webhooks, email ..., notify/hub.h).
 * A channel that cannot be reached after its retries is a warning in the
 * step's output, or fails the step when it says mustDeliver. Naming a
 * channel that does not exist fails the step at once.
 */
#include "steps/aws-step.h"
#include "steps/notify.h"

#include "notify/hub.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A Notify step publishing to SNS topics: ends when every topic answered. */
struct publish {
	struct attempt *a;
	json_t *details, *errors;
	struct topic_call **calls;
	size_t ncalls, pending;
	bool must_deliver;
	bool cancelled; /* named deliveries still call back: ignore them */
	size_t named_pending;
};

struct topic_call {
	struct publish *p;
	struct aws_call *call;
	char *topic;
	char region[32];
};

static bool is_sns_arn(const char *c)
{
	return !strncmp(c, "arn:", 4) && strstr(c, ":sns:") != NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void publish_free(struct publish *p)
{
	for (size_t i = 0; i < p->ncalls; i++)
		if (p->calls[i]) {
			if (p->calls[i]->call)
				aws_cancel(p->calls[i]->call);
			free(p->calls[i]->topic);
			free(p->calls[i]);
		}
	free(p->calls);
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

static void named_done(void *arg, bool ok, const char *error)
{
	struct publish *p = arg;
	if (p->cancelled) {
		if (--p->named_pending == 0 && !p->pending)
			publish_free(p);
		return;
	}
	p->named_pending--;
	if (!ok)
		json_array_append_new(p->errors, json_string(error));
	if (--p->pending == 0)
		publish_finish(p);
}

static void published(void *arg, const struct aws_result *res)
{
	struct topic_call *tc = arg;
	struct publish *p = tc->p;
	tc->call = NULL;
	if (res->error_code) {
		struct strbuf sb = STRBUF_INIT;
		strbuf_addf(&sb, "SNS Publish to %s: ", tc->topic);
		aws_result_error(res, &sb);
		json_array_append_new(p->errors, json_string(sb.buf));
		strbuf_release(&sb);
	} else {
		char *id = aws_xml_text(res, "PublishResult/MessageId");
		json_object_set_new(json_object_get(p->details, "snsMessageIds"), tc->topic,
		                    json_string(id ? id : ""));
		free(id);
	}
	if (--p->pending == 0)
		publish_finish(p);
}

static void publish_start(struct publish *p, struct aws *aws, const char *topic,
                          const char *subject, const char *message)
{
	struct topic_call *tc = xcalloc(1, sizeof(*tc));
	tc->p = p;
	tc->topic = xstrdup(topic);
	aws_arn_region(topic, tc->region, sizeof(tc->region)); /* "" if none */
	p->calls[p->ncalls++] = tc;
	json_t *params = json_pack("{ssss}", "TopicArn", topic, "Message", message);
	if (subject)
		json_object_set_new(params, "Subject", json_string(subject));
	struct aws_target t = { .service = "sns", .region = *tc->region ? tc->region : NULL };
	tc->call = aws_query_call(aws, &t, "Publish", "2010-03-31", params, published, tc);
}

int notify_step_start(struct attempt *a, const struct attempt_info *info, const void *config,
                      void **ret_state, struct strbuf *err)
{
	(void)config;
	*ret_state = NULL;
	const struct doc_node *node = info->step_plan->node;
	const struct doc_node *channels = doc_get(node, "channels");
	bool to_terminal = !channels, to_log = !channels;
	size_t ntopics = 0, nnamed = 0;
	for (size_t i = 0; channels && i < channels->u.array.len; i++) {
		const char *c = channels->u.array.items[i]->u.string.s;
		to_terminal |= !strcmp(c, "terminal");
		to_log |= !strcmp(c, "log");
		if (is_sns_arn(c)) {
			ntopics++;
			continue;
		}
		if (notify_hub_has(info->svc->notify, c)) {
			nnamed++;
			continue;
		}
		if (strcmp(c, "terminal") != 0 && strcmp(c, "log") != 0) {
			strbuf_addf(err,
			            "channel \"%s\" is not configured (this steppy knows the local "
			            "channels \"terminal\" and \"log\", and SNS topic ARNs)",
			            c);
			return SP_EINVAL;
		}
	}
	const char *subject = step_string(node, "subject");
	const char *message = step_string(node, "message");
	attempt_started(a, json_object());

	struct strbuf line = STRBUF_INIT;
	rfc3339_format(&line, wall_clock_ms());
	strbuf_addf(&line, " %s %s: ", info->execution_id, info->step_plan->name);
	if (subject)
		strbuf_addf(&line, "[%s] ", subject);
	for (const char *p = message; *p; p++)
		strbuf_addch(&line, *p == '\n' ? ' ' : *p);
	strbuf_addch(&line, '\n');
	const char *log = to_log ? info->svc->notify_log : NULL;
	int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;
	if (log && (fd < 0 || write_all(fd, line.buf, line.len) < 0)) {
		strbuf_addf(err, "cannot write the notification log %s: %s", info->svc->notify_log,
		            strerror(errno));
		if (fd >= 0)
			close(fd);
		strbuf_release(&line);
		attempt_ended(a, false, json_pack("{ss}", "error", err->buf));
		return 0;
	}
	if (fd >= 0)
		close(fd);
	strbuf_release(&line);
	json_t *used = json_array();
	if (to_terminal)
		json_array_append_new(used, json_string("terminal"));
	if (log)
		json_array_append_new(used, json_string("log"));
	for (size_t i = 0; channels && i < channels->u.array.len; i++) {
		const char *c = channels->u.array.items[i]->u.string.s;
		if (strcmp(c, "terminal") != 0 && strcmp(c, "log") != 0)
			json_array_append_new(used, json_string(c));
	}
	size_t nd = 0;
	const char *const *dnames = channels ? NULL : notify_hub_defaults(info->svc->notify, &nd);
	for (size_t i = 0; i < nd; i++)
		json_array_append_new(used, json_string(dnames[i]));
	json_t *details =
	    json_pack("{so ss? ss}", "channels", used, "subject", subject, "message", message);
	/* Without "channels", a server's default channels get it too. */
	size_t ndefaults = 0;
	const char *const *defaults =
	    channels ? NULL : notify_hub_defaults(info->svc->notify, &ndefaults);
	nnamed += ndefaults;
	if (!ntopics && !nnamed) {
		attempt_ended(a, true, details);
		return 0;
	}
	struct publish *p = xcalloc(1, sizeof(*p));
	p->a = a;
	p->details = details;
	p->errors = json_array();
	p->calls = xcalloc(ntopics ? ntopics : 1, sizeof(*p->calls));
	const struct doc_node *must = doc_get(node, "mustDeliver");
	p->must_deliver = must && must->kind == DOC_BOOL && must->u.boolean;
	if (ntopics)
		json_object_set_new(details, "snsMessageIds", json_object());
	*ret_state = p;
	struct notice notice = { .kind = "notify",
		                 .subject = subject,
		                 .message = message,
		                 .execution_id = info->execution_id,
		                 .stage = info->stage_name,
		                 .step = info->step_plan->name };
	/* every delivery is counted before any can end the step */
	p->pending = ntopics + nnamed;
	p->named_pending = nnamed;
	for (size_t i = 0; i < ndefaults; i++)
		notify_hub_send(info->svc->notify, defaults[i], &notice, named_done, p);
	for (size_t i = 0; channels && i < channels->u.array.len; i++) {
		const char *c = channels->u.array.items[i]->u.string.s;
		if (is_sns_arn(c))
			publish_start(p, info->svc->aws, c, subject, message);
		else if (notify_hub_has(info->svc->notify, c))
			notify_hub_send(info->svc->notify, c, &notice, named_done, p);
	}
	return 0;
}

/* Stops waiting: SNS calls are dropped; named deliveries (which cannot be
 * recalled) call back into a publish that only counts them down. */
static void abandon(struct publish *p)
{
	p->cancelled = true;
	for (size_t i = 0; i < p->ncalls; i++)
		if (p->calls[i] && p->calls[i]->call) {
			aws_cancel(p->calls[i]->call);
			p->calls[i]->call = NULL;
		}
	p->pending = 0;
	if (!p->named_pending)
		publish_free(p);
}

void notify_step_cancel(struct attempt *a, void *state)
{
	struct publish *p = state;
	if (!p)
		return; /* local channels are over as soon as they start */
	abandon(p);
	attempt_ended(a, false, json_pack("{ss}", "error", "cancelled while publishing"));
}

/* The process stops: the next one counts the attempt as interrupted. */
void notify_step_detach(void *state)
{
	if (state)
		abandon(state);
}
