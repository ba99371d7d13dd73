/*
 * channel-terminal.c - the built-in "terminal" channel of Notify steps: the
 * message shown in the live view of `steppy run` (its subject, a colon and
 * the message), through the callback the command gives the hub. A hub
 * without one (steppy serve) shows nothing and counts it delivered.
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

struct terminal {
	notify_terminal_fn fn; /* NULL: nowhere */
	void *arg;
	char *execution_id; /* in a request only: the notice's, or NULL */
	int64_t time_ms;
};

static void terminal_free(void *p)
{
	struct terminal *t = p;
	if (t)
		free(t->execution_id);
	free(t);
}

static int format_terminal(const struct channel *c, const struct notice_text *t,
                           struct channel_request *req, char **error)
{
	(void)error;
	const struct terminal *config = c->config;
	struct terminal *r = xcalloc(1, sizeof(*r));
	*r = (struct terminal){ .fn = config->fn,
		                .arg = config->arg,
		                .execution_id = t->execution_id ? xstrdup(t->execution_id) : NULL,
		                .time_ms = t->time_ms };
	req->data = r;
	req->data_free = terminal_free;
	struct strbuf sb = STRBUF_INIT;
	if (t->subject)
		strbuf_addf(&sb, "%s: ", t->subject);
	strbuf_addstr(&sb, t->message);
	req->body = strbuf_detach(&sb, &req->len);
	return 0;
}

static void send_terminal(struct notify_delivery *d)
{
	const struct channel_request *req = notify_request(d);
	const struct terminal *r = req->data;
	if (r->fn)
		r->fn(r->arg, r->execution_id, r->time_ms, req->body);
	notify_attempt_done(d, true, NULL, false, 0);
}

const struct channel_type channel_terminal = {
	.name = "terminal",
	.what = "the terminal",
	.flags = CHANNEL_BUILTIN,
	.release = terminal_free,
	.format = format_terminal,
	.send = send_terminal,
};

struct channel *terminal_channel_new(const char *name, notify_terminal_fn fn, void *arg)
{
	struct terminal *t = xcalloc(1, sizeof(*t));
	t->fn = fn;
	t->arg = arg;
	return channel_new(name, &channel_terminal, t);
}
