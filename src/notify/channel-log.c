/*
 * channel-log.c - the "log" channel kind (docs/channels.md#log): one line
 * per notice appended to a file (mode 0600) with one write, so lines of
 * several processes do not mix; and the built-in "log" channel of Notify
 * steps, notifications.log next to the store, in its own line format
 * (docs/plan-format.md).
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct field_spec log_fields[] = {
	{ .name = "path",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 4096,
	  .check = channel_check_one_line },
	{ .name = NULL },
};

static const struct field_spec *const log_tables[] = { log_fields, NULL };

static void *parse_log(const struct doc_node *node)
{
	struct log_config *c = xcalloc(1, sizeof(*c));
	c->path = node_string(node, "path");
	return c;
}

static void release_log(void *config)
{
	struct log_config *c = config;
	if (c)
		free(c->path);
	free(c);
}

static void add_field(struct strbuf *out, const char *s)
{
	strbuf_addch(out, '\t');
	if (!s || !*s) {
		strbuf_addch(out, '-');
		return;
	}
	for (; *s; s++)
		strbuf_addch(out, *s == '\n' || *s == '\t' ? ' ' : *s);
}

void format_log_line(const struct notice_text *t, struct strbuf *out)
{
	rfc3339_format(out, t->time_ms);
	add_field(out, t->kind);
	add_field(out, t->execution_id);
	add_field(out, t->title);
	add_field(out, t->message);
	add_field(out, t->url);
	strbuf_addch(out, '\n');
}

/* The line of the local notifications.log: "TIME ID STEP: [SUBJECT] MESSAGE" on one line. */
static void format_local_line(const struct notice_text *t, struct strbuf *out)
{
	rfc3339_format(out, t->time_ms);
	strbuf_addf(out, " %s %s: ", t->execution_id ? t->execution_id : "-",
	            t->step ? t->step : "-");
	if (t->subject)
		strbuf_addf(out, "[%s] ", t->subject);
	for (const char *p = t->message; *p; p++)
		strbuf_addch(out, *p == '\n' ? ' ' : *p);
	strbuf_addch(out, '\n');
}

static int format_log(const struct channel *c, const struct notice_text *t,
                      struct channel_request *req, char **error)
{
	(void)error;
	const struct log_config *lc = c->config;
	struct strbuf sb = STRBUF_INIT;
	if (lc->local)
		format_local_line(t, &sb);
	else
		format_log_line(t, &sb);
	req->body = strbuf_detach(&sb, &req->len);
	req->data = xstrdup(lc->path);
	return 0;
}

/* A local append: done at once (it takes microseconds), reported from the loop like the rest. */
static void send_log(struct notify_delivery *d)
{
	const struct channel_request *req = notify_request(d);
	const char *path = req->data;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	ssize_t w = -1;
	if (fd >= 0) {
		do
			w = write(fd, req->body,
			          req->len); /* one write: lines of writers never mix */
		while (w < 0 && errno == EINTR);
	}
	int saved = errno;
	if (fd >= 0 && close(fd) < 0 && w >= 0) {
		saved = errno;
		w = -1;
	}
	if (w == (ssize_t)req->len) {
		notify_attempt_done(d, true, NULL, false, 0);
		return;
	}
	notify_attempt_done(
	    d, false,
	    xstrfmt("cannot append to %s: %s", path, w >= 0 ? "short write" : strerror(saved)),
	    true, 0);
}

const struct channel_type channel_log = {
	.name = "log",
	.what = "a log channel",
	.fields = log_tables,
	.parse = parse_log,
	.release = release_log,
	.format = format_log,
	.send = send_log,
};

struct channel *log_channel_new(const char *name, const char *path)
{
	struct log_config *c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	c->local = true;
	return channel_new(name, &channel_log, c);
}
