/*
 * test-notify.c - notification channels (src/notify/): configuration checks
 * with their exact diagnostics, the payloads and mail as the formatters make
 * them, and deliveries over real sockets to receivers on 127.0.0.1 that run
 * on the test's own libuv loop (an HTTP receiver that records each request
 * and answers with scripted statuses, a small SMTP receiver that records the
 * envelope and the message as it came over the wire), retries, final
 * failures, cancellation and the log file.
 */
#include "unit.h"

#include "notify/notify-internal.h"
#include "notify/slack.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* 2026-01-01T00:00:00Z, a Thursday */
#define T0 1767225600000LL

#define APPROVAL_URL "https://steppy.example.com/approvals/r-123/prod/Approve"

static const struct notice approval = {
	.kind = "approval",
	.subject = "Deploy web 3.2 to production?",
	.message = "Release 3.2 passed staging.\nApprove <b>now</b> & go",
	.execution_id = "r-123",
	.plan = "web",
	.environment = "production",
	.stage = "prod",
	.step = "Approve",
	.approval_url = APPROVAL_URL,
	.time_ms = T0,
};

/* ---- receivers on the loop ------------------------------------------------------------------- */

struct request {
	char *head; /* request line and headers */
	char *body;
};

struct conn {
	uv_tcp_t tcp;
	struct server *s;
	struct strbuf in;
	bool answered, in_data, auth_pending;
	struct conn *next;
};

struct server {
	uv_tcp_t tcp;
	int port;
	bool smtp;
	struct conn *conns;
	/* HTTP: statuses of the next answers (then 200), and their body */
	int statuses[8];
	size_t nstatuses, served;
	const char *reply;
	const char *ok_reply; /* the body of 200 answers; NULL: "ok" */
	struct request reqs[8];
	size_t nreqs;
	/* SMTP: commands as received, one a line, and the message data as sent (still
	 * dot-stuffed, CRLF lines, without the final "." line) */
	struct strbuf commands, data;
	size_t mails;
};

struct write_req {
	uv_write_t w;
	char *text;
	bool close_after;
};

static void conn_close_cb(uv_handle_t *h)
{
	struct conn *c = h->data;
	for (struct conn **p = &c->s->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	strbuf_release(&c->in);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void written(uv_write_t *w, int status)
{
	(void)status;
	struct write_req *r = (struct write_req *)w;
	if (r->close_after)
		conn_close(w->handle->data);
	free(r->text);
	free(r);
}

static void say(struct conn *c, const char *text, bool close_after)
{
	struct write_req *r = xcalloc(1, sizeof(*r));
	r->text = xstrdup(text);
	r->close_after = close_after;
	uv_buf_t b = uv_buf_init(r->text, (unsigned)strlen(r->text));
	if (uv_write(&r->w, (uv_stream_t *)&c->tcp, &b, 1, written) < 0) {
		free(r->text);
		free(r);
		conn_close(c);
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	buf->base = xmalloc(suggested);
	buf->len = suggested;
}

/* HTTP: one request per connection, answered with Connection: close. */
static void http_input(struct conn *c)
{
	struct server *s = c->s;
	char *end = strstr(c->in.buf, "\r\n\r\n");
	if (c->answered || !end)
		return;
	size_t head = (size_t)(end - c->in.buf) + 4;
	size_t clen = 0;
	for (char *p = c->in.buf; p && p < end; p = strstr(p, "\r\n"), p = p ? p + 2 : p)
		if (!strncasecmp(p, "Content-Length:", 15))
			clen = strtoul(p + 15, NULL, 10);
	if (c->in.len < head + clen)
		return;
	c->answered = true;
	assert_true(s->nreqs < 8);
	s->reqs[s->nreqs].head = xstrndup(c->in.buf, head - 4);
	s->reqs[s->nreqs].body = xstrndup(c->in.buf + head, clen);
	s->nreqs++;
	int status = s->served < s->nstatuses ? s->statuses[s->served] : 200;
	s->served++;
	const char *body = status == 200 ? (s->ok_reply ? s->ok_reply : "ok")
	                   : s->reply    ? s->reply
	                                 : "";
	char *resp = xstrfmt("HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: "
	                     "%zu\r\nConnection: close\r\n\r\n%s",
	                     status, strlen(body), body);
	say(c, resp, true);
	free(resp);
}

/* SMTP: enough of RFC 5321 for curl, AUTH PLAIN included. */
static void smtp_line(struct conn *c, const char *line)
{
	struct server *s = c->s;
	if (c->in_data) {
		if (!strcmp(line, ".")) {
			c->in_data = false;
			s->mails++;
			say(c, "250 2.0.0 queued\r\n", false);
		} else {
			strbuf_addf(&s->data, "%s\r\n", line);
		}
		return;
	}
	strbuf_addf(&s->commands, "%s\n", line);
	if (c->auth_pending) {
		c->auth_pending = false;
		say(c, "235 2.7.0 ok\r\n", false);
	} else if (!strncasecmp(line, "EHLO ", 5)) {
		say(c, "250-receiver\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n", false);
	} else if (!strcasecmp(line, "AUTH PLAIN")) {
		c->auth_pending = true;
		say(c, "334 \r\n", false);
	} else if (!strncasecmp(line, "AUTH PLAIN ", 11)) {
		say(c, "235 2.7.0 ok\r\n", false);
	} else if (!strncasecmp(line, "MAIL FROM:", 10)) {
		say(c, "250 2.1.0 ok\r\n", false);
	} else if (!strncasecmp(line, "RCPT TO:", 8)) {
		say(c,
		    strstr(line, "nobody@") ? "550 5.1.1 no such user\r\n"
		    : strstr(line, "busy@") ? "451 4.3.0 try again later\r\n"
		                            : "250 2.1.5 ok\r\n",
		    false);
	} else if (!strcasecmp(line, "DATA")) {
		c->in_data = true;
		say(c, "354 go ahead\r\n", false);
	} else if (!strcasecmp(line, "QUIT")) {
		say(c, "221 2.0.0 bye\r\n", true);
	} else {
		say(c, "500 5.5.2 what?\r\n", false);
	}
}

static void smtp_input(struct conn *c)
{
	char *nl;
	while ((nl = strstr(c->in.buf, "\r\n"))) {
		size_t n = (size_t)(nl - c->in.buf);
		char *line = xstrndup(c->in.buf, n);
		memmove(c->in.buf, c->in.buf + n + 2, c->in.len - n - 2 + 1);
		c->in.len -= n + 2;
		smtp_line(c, line);
		free(line);
	}
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = st->data;
	if (nread > 0)
		strbuf_add(&c->in, buf->base, (size_t)nread);
	free(buf->base);
	if (nread < 0) {
		conn_close(c);
		return;
	}
	if (c->s->smtp)
		smtp_input(c);
	else
		http_input(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
	assert_int_equal(status, 0);
	struct server *s = listener->data;
	struct conn *c = xcalloc(1, sizeof(*c));
	c->s = s;
	strbuf_init(&c->in, SIZE_MAX);
	uv_tcp_init(listener->loop, &c->tcp);
	c->tcp.data = c;
	c->next = s->conns;
	s->conns = c;
	assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->tcp), 0);
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, conn_read);
	if (s->smtp)
		say(c, "220 receiver ESMTP\r\n", false);
}

static void server_start(uv_loop_t *loop, struct server *s, bool smtp)
{
	s->smtp = smtp;
	strbuf_init(&s->commands, SIZE_MAX);
	strbuf_init(&s->data, SIZE_MAX);
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", 0, &addr);
	uv_tcp_init(loop, &s->tcp);
	s->tcp.data = s;
	assert_int_equal(uv_tcp_bind(&s->tcp, (const struct sockaddr *)&addr, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&s->tcp, 16, on_connection), 0);
	struct sockaddr_in bound;
	int len = sizeof(bound);
	uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&bound, &len);
	s->port = ntohs(bound.sin_port);
}

static void server_stop(struct server *s)
{
	for (struct conn *c = s->conns; c; c = c->next)
		conn_close(c);
	uv_close((uv_handle_t *)&s->tcp, NULL);
	for (size_t i = 0; i < s->nreqs; i++) {
		free(s->reqs[i].head);
		free(s->reqs[i].body);
	}
	strbuf_release(&s->commands);
	strbuf_release(&s->data);
}

/* The value of a request header, or NULL. */
static const char *req_header(const struct request *r, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
		if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
			const char *v = p + 3 + n;
			while (*v == ' ')
				v++;
			size_t len = strcspn(v, "\r");
			snprintf(buf, size, "%.*s", (int)len, v);
			return buf;
		}
	return NULL;
}

/* ---- fixture --------------------------------------------------------------------------------- */

struct fx {
	uv_loop_t loop;
	struct notifier *n;
	struct server http, smtp;
	uv_timer_t guard;
	bool expired;
	char dir[64];
	/* results */
	int calls;
	bool ok;
	char *error;
};

static void on_done(void *arg, bool ok, const char *error)
{
	struct fx *f = arg;
	f->calls++;
	f->ok = ok;
	free(f->error);
	f->error = error ? xstrdup(error) : NULL;
}

static void guard_cb(uv_timer_t *t)
{
	((struct fx *)t->data)->expired = true;
}

/* Runs the loop until calls reaches want (or 10 s pass: a failure). */
static void run_until(struct fx *f, int want)
{
	f->expired = false;
	uv_timer_start(&f->guard, guard_cb, 10000, 0);
	while (f->calls < want && !f->expired)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->guard);
	if (f->expired)
		fail_msg("no result within 10 s");
}

static int setup(void **state)
{
	static const char *const proxies[] = { "http_proxy", "https_proxy", "HTTPS_PROXY",
		                               "all_proxy",  "ALL_PROXY",   NULL };
	for (size_t i = 0; proxies[i]; i++)
		unsetenv(proxies[i]);
	struct fx *f = xcalloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/steppy-test-notify.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->guard);
	f->guard.data = f;
	server_start(&f->loop, &f->http, false);
	server_start(&f->loop, &f->smtp, true);
	f->n = notifier_new(&f->loop, NULL);
	notifier_set_retry_delays(f->n, 10, 40);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	notifier_free(f->n);
	server_stop(&f->http);
	server_stop(&f->smtp);
	uv_close((uv_handle_t *)&f->guard, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	int r = uv_loop_close(&f->loop); /* UV_EBUSY if a handle was left open */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	int rm = system(cmd);
	free(f->error);
	free(f);
	return r == 0 && rm == 0 ? 0 : -1;
}

/* ---- parsing --------------------------------------------------------------------------------- */

/* Parses every member of the YAML text's "channels"; fills diags as "line:col pointer: message"
 * lines and returns the channels parsed (NULL-terminated, caller frees). */
static struct channel **parse_all(const char *yaml, struct strbuf *diags)
{
	struct diag_list dl = DIAG_LIST_INIT;
	struct doc *doc = NULL;
	assert_int_equal(doc_parse("steppy.yaml", yaml, strlen(yaml), DOC_YAML, &doc, &dl), 0);
	/* bound, as the server's configuration reader has it: no message may speak of variables */
	struct vctx v = { .doc = doc, .diags = &dl, .bound = true };
	strbuf_init(&v.ptr, SIZE_MAX);
	const struct doc_node *chs = doc_get(doc->root, "channels");
	assert_non_null(chs);
	struct channel **ret = xcalloc(chs->u.object.len + 1, sizeof(*ret));
	size_t n = 0;
	for (size_t i = 0; i < chs->u.object.len; i++) {
		const struct doc_member *m = &chs->u.object.members[i];
		size_t saved = v_push(&v, "channels");
		v_push(&v, m->key);
		struct channel *c = NULL;
		int r = channel_parse(&v, m->key, m->value, &c);
		assert_true((r == 0) == (c != NULL));
		assert_true(v.bound);
		if (c)
			ret[n++] = c;
		v_pop(&v, saved);
	}
	for (size_t i = 0; i < dl.len; i++)
		strbuf_addf(diags, "%u:%u %s: %s\n", (unsigned)dl.items[i].pos.line,
		            (unsigned)dl.items[i].pos.col, dl.items[i].pointer,
		            dl.items[i].message);
	strbuf_release(&v.ptr);
	diag_list_release(&dl);
	doc_free(doc);
	return ret;
}

static void free_all(struct channel **cs)
{
	for (size_t i = 0; cs[i]; i++)
		channel_free(cs[i]);
	free(cs);
}

/* One channel that must parse. */
static struct channel *parse_one(const char *yaml)
{
	struct strbuf d = STRBUF_INIT;
	struct channel **cs = parse_all(yaml, &d);
	if (d.len || !cs[0])
		fail_msg("unexpected diagnostics:\n%s", d.buf);
	struct channel *c = cs[0];
	free(cs);
	strbuf_release(&d);
	return c;
}

static void test_parse_valid(void **state)
{
	(void)state;
	struct strbuf d = STRBUF_INIT;
	struct channel **cs =
	    parse_all("channels:\n"
	              "  releases:\n"
	              "    type: slack\n"
	              "    urlEnv: SLACK_RELEASES_URL\n"
	              "  ops-teams:\n"
	              "    type: teams\n"
	              "    url: https://example.webhook.office.com/webhookb2/x\n"
	              "    timeoutSeconds: 20\n"
	              "  audit:\n"
	              "    type: webhook\n"
	              "    url: https://audit.example.com/steppy\n"
	              "    headers: { X-Source: steppy }\n"
	              "    headersFromEnv: { Authorization: AUDIT_AUTH }\n"
	              "  approvers:\n"
	              "    type: email\n"
	              "    url: smtp://mail.example.com:587\n"
	              "    starttls: true\n"
	              "    username: steppy\n"
	              "    passwordEnv: SMTP_PASSWORD\n"
	              "    from: steppy@example.com\n"
	              "    to: [alice@example.com, bob@example.com]\n"
	              "  topic:\n"
	              "    type: sns\n"
	              "    topicArn: arn:aws:sns:eu-west-1:123456789012:releases\n"
	              "    roleArn: arn:aws:iam::123456789012:role/notify\n"
	              "  file:\n"
	              "    type: log\n"
	              "    path: /var/log/steppy/notices.log\n",
	              &d);
	assert_string_equal(d.buf, "");
	const char *types[] = { "slack", "teams", "webhook", "email", "sns", "log" };
	const char *names[] = { "releases", "ops-teams", "audit", "approvers", "topic", "file" };
	for (size_t i = 0; i < 6; i++) {
		assert_non_null(cs[i]);
		assert_string_equal(channel_type(cs[i]), types[i]);
		assert_string_equal(channel_name(cs[i]), names[i]);
	}
	const struct slack_config *slack = cs[0]->config;
	const struct hook_config *hook = cs[2]->config;
	const struct email_config *email = cs[3]->config;
	assert_string_equal(slack->hook.url_env, "SLACK_RELEASES_URL");
	assert_null(slack->hook.url);
	assert_int_equal(cs[0]->timeout_ms, 10000);
	assert_int_equal(cs[1]->timeout_ms, 20000);
	assert_int_equal(hook->nheaders, 2);
	assert_false(hook->headers[0].from_env);
	assert_true(hook->headers[1].from_env);
	assert_string_equal(hook->headers[1].value, "AUDIT_AUTH");
	assert_true(email->starttls);
	assert_int_equal(email->nto, 2);
	assert_int_equal(cs[3]->timeout_ms, 30000);
	assert_string_equal(((struct sns_config *)cs[4]->config)->region, "eu-west-1");
	assert_string_equal(((struct log_config *)cs[5]->config)->path,
	                    "/var/log/steppy/notices.log");
	free_all(cs);
	strbuf_release(&d);
}

static void test_parse_errors(void **state)
{
	(void)state;
	struct strbuf d = STRBUF_INIT;
	struct channel **cs =
	    parse_all("channels:\n"
	              "  a:\n"
	              "    type: slak\n"
	              "  b:\n"
	              "    url: https://x.example.com\n"
	              "  c:\n"
	              "    type: slack\n"
	              "    url: https://user:pw@hooks.slack.com/x\n"
	              "    urlEnv: SLACK\n"
	              "    timeout: 3\n"
	              "  d:\n"
	              "    type: teams\n"
	              "  e:\n"
	              "    type: webhook\n"
	              "    url: ftp://x\n"
	              "    headers: { Authorization: Bearer x, Host: y, X-A: 1 }\n"
	              "    headersFromEnv: { x-a: 1A, X-B: B }\n"
	              "  f:\n"
	              "    type: email\n"
	              "    url: smtps://mail.example.com\n"
	              "    starttls: true\n"
	              "    username: u\n"
	              "    from: Steppy <steppy@example.com>\n"
	              "    to: [a@example.com, a@example.com, 'x@y,z@w']\n"
	              "  g:\n"
	              "    type: sns\n"
	              "    topicArn: arn:aws:sns:eu-west-1:123456789012:t.fifo\n"
	              "    roleArn: arn:aws:iam::1234:role/x\n"
	              "  h:\n"
	              "    type: log\n"
	              "    timeoutSeconds: 0\n"
	              "  terminal:\n"
	              "    type: log\n"
	              "    path: x\n"
	              "  bad name:\n"
	              "    type: log\n"
	              "    path: x\n"
	              "  i: [1]\n",
	              &d);
	assert_null(cs[0]);
	assert_string_equal(
	    d.buf,
	    "3:11 /channels/a/type: \"type\" must be one of slack, teams, webhook, email, sns, "
	    "log, found \"slak\"; did you mean \"slack\"?\n"
	    "5:5 /channels/b: a channel needs a \"type\" field (slack, teams, webhook, email, sns "
	    "or log)\n"
	    "8:10 /channels/c/url: the URL must not hold a user name or password: send "
	    "credentials in a header from \"headersFromEnv\" (secrets never go in the "
	    "configuration)\n"
	    "10:5 /channels/c/timeout: unknown field \"timeout\" in a slack channel\n"
	    "9:5 /channels/c/urlEnv: give \"url\" or \"urlEnv\", not both\n"
	    "12:5 /channels/d: a teams channel needs \"url\" or \"urlEnv\"\n"
	    "15:10 /channels/e/url: \"ftp://x\" is not an http:// or https:// URL\n"
	    "16:16 /channels/e/headers/Authorization: \"Authorization\" carries a secret: give it "
	    "in \"headersFromEnv\" as the name of an environment variable holding the value\n"
	    "16:41 /channels/e/headers/Host: the header \"Host\" is set by steppy\n"
	    "16:55 /channels/e/headers/X-A: header values must be strings, found the number 1\n"
	    "17:28 /channels/e/headersFromEnv/x-a: \"1A\" is not a valid environment variable "
	    "name (letters, digits and _, not starting with a digit)\n"
	    "17:23 /channels/e/headersFromEnv/x-a: the header \"x-a\" is given twice (first at "
	    "line 16)\n"
	    "23:11 /channels/f/from: \"Steppy <steppy@example.com>\" is not a mail address such "
	    "as releases@example.com (a bare address, without a display name)\n"
	    "24:25 /channels/f/to/1: \"a@example.com\" is listed twice\n"
	    "24:40 /channels/f/to/2: \"x@y,z@w\" is not a mail address such as "
	    "releases@example.com (a bare address, without a display name)\n"
	    "21:5 /channels/f/starttls: \"starttls\" is for smtp:// URLs (smtps:// uses TLS from "
	    "the start)\n"
	    "22:5 /channels/f/username: \"username\" and \"passwordEnv\" go together\n"
	    "27:15 /channels/g/topicArn: FIFO topics are not supported (they need a message "
	    "group): use a standard topic\n"
	    "28:14 /channels/g/roleArn: \"arn:aws:iam::1234:role/x\" is not an IAM role ARN "
	    "(arn:aws:iam::123456789012:role/NAME)\n"
	    "31:21 /channels/h/timeoutSeconds: \"timeoutSeconds\" must be between 1 and 300 "
	    "seconds (5m), found 0\n"
	    "30:5 /channels/h/path: a log channel needs a \"path\" field\n"
	    "33:5 /channels/terminal: \"terminal\" is the name of a built-in channel: choose "
	    "another name\n"
	    "36:5 /channels/bad name: \"bad name\" is not a valid channel name (up to 64 letters, "
	    "digits, _, . and -, starting with a letter or digit)\n"
	    "38:6 /channels/i: a channel must be an object, found a list\n");
	free_all(cs);
	strbuf_release(&d);
}

/* ---- formats --------------------------------------------------------------------------------- */

/* Slack's two modes: a webhook, or a bot (token, channel, signing secret); not both. */
static void test_parse_slack_bot(void **state)
{
	(void)state;
	struct strbuf d = STRBUF_INIT;
	struct channel **cs = parse_all("channels:\n"
	                                "  a:\n"
	                                "    type: slack\n"
	                                "    urlEnv: HOOK\n"
	                                "    channel: C0123\n"
	                                "  b:\n"
	                                "    type: slack\n"
	                                "    tokenEnv: T\n"
	                                "    tokenFile: /t\n"
	                                "  c:\n"
	                                "    type: slack\n"
	                                "    tokenEnv: T\n"
	                                "    channel: general\n"
	                                "    signingSecretEnv: S\n"
	                                "    signingSecretFile: /s\n"
	                                "    apiUrl: ftp://slack.com/api\n"
	                                "  d:\n"
	                                "    type: teams\n"
	                                "    url: https://x.example.com\n"
	                                "    channel: C0123\n",
	                                &d);
	assert_null(cs[0]);
	assert_string_equal(
	    d.buf,
	    "4:5 /channels/a/urlEnv: a slack channel posts through an incoming webhook (\"url\", "
	    "\"urlEnv\") or as a bot (\"tokenEnv\" or \"tokenFile\", and \"channel\"), not both\n"
	    "9:5 /channels/b/tokenFile: give \"tokenEnv\" or \"tokenFile\", not both\n"
	    "7:5 /channels/b: a slack bot channel needs \"channel\", the id of the conversation "
	    "to post to (C0123456789)\n"
	    "13:14 /channels/c/channel: \"general\" is not a Slack channel id such as C0123456789 "
	    "(in Slack: the channel's details, at the bottom; the bot must be a member)\n"
	    "16:13 /channels/c/apiUrl: \"ftp://slack.com/api\" is not an http:// or https:// URL "
	    "(https://slack.com/api)\n"
	    "15:5 /channels/c/signingSecretFile: give \"signingSecretEnv\" or "
	    "\"signingSecretFile\", not both\n"
	    "20:5 /channels/d/channel: unknown field \"channel\" in a teams channel\n");
	free_all(cs);
	strbuf_release(&d);
	struct channel *c = parse_one("channels:\n  r:\n    type: slack\n    tokenFile: /t\n"
	                              "    channel: C0123ABCD\n");
	assert_true(channel_slack_bot(c));
	assert_false(channel_slack_interactive(c));
	assert_string_equal(((struct slack_config *)c->config)->api_url, "https://slack.com/api");
	channel_free(c);
	c = parse_one("channels:\n  r:\n    type: slack\n    url: https://hooks.slack.com/x\n");
	assert_false(channel_slack_bot(c));
	channel_free(c);
}

static void test_encodings(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	const char *in = "a=b \r\n\tx\r\ncaf\xC3\xA9\r\n"
	                 "0123456789012345678901234567890123456789012345678901234567890123456789"
	                 "0123456789\r\n";
	qp_encode(in, strlen(in), &sb);
	assert_string_equal(
	    sb.buf,
	    "a=3Db=20\r\n\tx\r\ncaf=C3=A9\r\n"
	    "012345678901234567890123456789012345678901234567890123456789012345678901234=\r\n"
	    "56789\r\n");
	strbuf_reset(&sb);
	mime_header_encode("Plain subject", &sb);
	assert_string_equal(sb.buf, "Plain subject");
	strbuf_reset(&sb);
	mime_header_encode("D\xC3\xA9ploiement pr\xC3\xAAt \xE2\x80\x94 web 3.2 vers la production "
	                   "europ\xC3\xA9"
	                   "enne",
	                   &sb);
	/* 45 bytes of whole characters per encoded word: 72 characters a line */
	assert_string_equal(
	    sb.buf, "=?UTF-8?B?RMOpcGxvaWVtZW50IHByw6p0IOKAlCB3ZWIgMy4yIHZlcnMgbGEgcHJvZHVj?="
	            "\r\n =?UTF-8?B?dGlvbiBldXJvcMOpZW5uZQ==?=");
	strbuf_release(&sb);
}

static void test_slack_limits_and_escaping(void **state)
{
	(void)state;
	char subject[300];
	memset(subject, 'x', 200);
	subject[200] = '\0';
	struct notice n = { .kind = "failed",
		            .subject = subject,
		            .message = "<!channel> \x01oops" };
	struct notice_text t;
	notice_text_init(&t, &n, T0);
	char *s = format_slack(&t);
	/* the header is cut to 150 characters, the last an ellipsis; nothing pings anyone */
	char want[400];
	snprintf(want, sizeof(want), "\"text\":\"%.149s\xE2\x80\xA6\"", subject);
	assert_non_null(strstr(s, want));
	assert_non_null(strstr(s, "&lt;!channel&gt; \\toops") ||
	                strstr(s, "&lt;!channel&gt;  oops"));
	assert_null(strstr(s, "<!channel>"));
	assert_null(strstr(s, "\"actions\""));
	free(s);
	notice_text_release(&t);

	/* no subject: a title from the kind and plan; a bad link is left out */
	struct notice m = { .kind = "succeeded", .plan = "web", .approval_url = "javascript:x" };
	notice_text_init(&t, &m, T0);
	assert_string_equal(t.title, "Release succeeded: web");
	assert_null(t.url);
	s = format_webhook(&t);
	assert_string_equal(s, "{\"kind\":\"succeeded\",\"subject\":null,\"message\":\"\","
	                       "\"executionId\":null,\"plan\":\"web\",\"environment\":null,"
	                       "\"stage\":null,\"step\":null,\"releaseUrl\":null,"
	                       "\"time\":\"2026-01-01T00:00:00Z\"}");
	free(s);
	struct strbuf sb = STRBUF_INIT;
	format_sns_subject(&t, &sb);
	assert_string_equal(sb.buf, "Release succeeded: web");
	notice_text_release(&t);
	strbuf_release(&sb);
}

/*
 * Hostile text in every field a plan or a variable controls: nothing in it
 * may become markup in any format (a live link, a mention, a header).
 */
#define EVIL_LINK "[Click to approve](https://elsewhere.example)"
static const struct notice hostile = {
	.kind = "approval",
	.subject = "Deploy " EVIL_LINK "\r\nBcc: victim@example.com",
	.message = EVIL_LINK " <!channel> <https://elsewhere.example|here> **bold**\r\n"
	                     "Bcc: victim@example.com\n<b onclick=x>&amp;</b>",
	.execution_id = "r-1",
	.plan = EVIL_LINK,
	.environment = "prod\r\nX-Evil: 1",
	.stage = "<!here>",
	.step = "[step](https://elsewhere.example)",
	.approval_url = APPROVAL_URL,
	.time_ms = T0,
};

/* Every "text" of the card's body, each from a TextRun (never read as Markdown). */
static void teams_texts(json_t *card, struct strbuf *all)
{
	json_t *body = json_object_get(card, "body"), *block;
	size_t i;
	json_array_foreach(body, i, block)
	{
		assert_string_equal(json_string_value(json_object_get(block, "type")),
		                    "RichTextBlock");
		assert_null(json_object_get(block, "text"));
		json_t *run;
		size_t k;
		json_array_foreach(json_object_get(block, "inlines"), k, run)
		{
			assert_string_equal(json_string_value(json_object_get(run, "type")),
			                    "TextRun");
			strbuf_addf(all, "%s|", json_string_value(json_object_get(run, "text")));
		}
	}
}

static void test_hostile_text(void **state)
{
	(void)state;
	struct notice_text t;
	notice_text_init(&t, &hostile, T0);
	/* one-line fields lose their line breaks before any format sees them */
	assert_string_equal(t.subject, "Deploy " EVIL_LINK "  Bcc: victim@example.com");
	assert_string_equal(t.environment, "prod  X-Evil: 1");

	/* Teams: no TextBlock, no FactSet (Teams reads Markdown in both); the text arrives
	 * as it was written, in TextRuns only */
	char *s = format_teams(&t);
	assert_null(strstr(s, "\"TextBlock\""));
	assert_null(strstr(s, "FactSet"));
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	json_t *card =
	    json_object_get(json_array_get(json_object_get(j, "attachments"), 0), "content");
	struct strbuf all = STRBUF_INIT;
	teams_texts(card, &all);
	assert_string_equal(all.buf,
	                    "Deploy " EVIL_LINK "  Bcc: victim@example.com|" EVIL_LINK
	                    " <!channel> <https://elsewhere.example|here> **bold**\n"
	                    "Bcc: victim@example.com\n<b onclick=x>&amp;</b>|"
	                    "Release: |r-1|Plan: |" EVIL_LINK "|Environment: |prod  X-Evil: 1|"
	                    "Stage: |<!here>|Step: |[step](https://elsewhere.example)|");
	/* the only link is steppy's own button */
	json_t *actions = json_object_get(card, "actions");
	assert_int_equal(json_array_size(actions), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(actions, 0), "url")),
	                    APPROVAL_URL);
	strbuf_release(&all);
	json_decref(j);
	free(s);

	/* Slack: mrkdwn with &, < and > escaped; header and context are plain_text */
	s = format_slack(&t);
	assert_null(strstr(s, "<!channel>"));
	/* the stage's "<!here>" is in the context, plain_text, where nothing is a mention */
	assert_non_null(strstr(s, "\"plain_text\",\"text\":\"Release r-1 \xC2\xB7 Plan"));
	assert_null(strstr(s, "<https://elsewhere"));
	assert_null(strstr(s, "<b "));
	assert_non_null(strstr(s, "&lt;https://elsewhere.example|here&gt;"));
	assert_non_null(strstr(s, "&amp;amp;"));
	j = json_loads(s, 0, NULL);
	json_t *blocks = json_object_get(j, "blocks"), *b;
	size_t i;
	json_array_foreach(blocks, i, b)
	{
		const char *type = json_string_value(json_object_get(b, "type"));
		if (!strcmp(type, "header"))
			assert_string_equal(
			    json_string_value(json_object_get(json_object_get(b, "text"), "type")),
			    "plain_text");
		if (!strcmp(type, "context"))
			assert_string_equal(
			    json_string_value(json_object_get(
			        json_array_get(json_object_get(b, "elements"), 0), "type")),
			    "plain_text");
	}
	json_decref(j);
	free(s);

	/* the webhook carries plain text for its receiver to escape: exactly as written,
	 * JSON-escaped, one-line fields on one line */
	s = format_webhook(&t);
	j = json_loads(s, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "message")),
	                    EVIL_LINK " <!channel> <https://elsewhere.example|here> **bold**\n"
	                              "Bcc: victim@example.com\n<b onclick=x>&amp;</b>");
	assert_string_equal(json_string_value(json_object_get(j, "environment")),
	                    "prod  X-Evil: 1");
	json_decref(j);
	free(s);

	/* mail: no header can be added through the subject or a fact; the body is
	 * quoted-printable text/plain, where nothing is markup */
	char *to[] = { "a@example.com" };
	struct email_config ec = { .from = "steppy@example.com", .to = to, .nto = 1 };
	struct channel c = { .type = &channel_email, .config = &ec };
	struct strbuf mail = STRBUF_INIT;
	format_email(&t, &c, "id@example.com", &mail);
	const char *end = strstr(mail.buf, "\r\n\r\n");
	assert_non_null(end);
	struct strbuf head = STRBUF_INIT;
	strbuf_add(&head, mail.buf, (size_t)(end - mail.buf) + 2);
	assert_null(strstr(head.buf, "\r\nBcc:"));
	assert_null(strstr(head.buf, "\r\nX-Evil:"));
	assert_non_null(strstr(head.buf, "\r\nContent-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(
	    strstr(head.buf, "\r\nSubject: Deploy " EVIL_LINK "  Bcc: victim@example.com\r\n"));
	/* steppy's link is the last line, after the facts */
	assert_non_null(strstr(end, "\r\nStep: [step](https://elsewhere.example)\r\n\r\n"
	                            "Review and decide: " APPROVAL_URL "\r\n"));
	strbuf_release(&head);
	strbuf_release(&mail);

	/* SNS: a subject of one line without control characters */
	struct strbuf sb = STRBUF_INIT;
	format_sns_subject(&t, &sb);
	assert_null(strpbrk(sb.buf, "\r\n"));
	strbuf_reset(&sb);
	/* log: one line, tabs only between fields */
	format_log_line(&t, &sb);
	assert_ptr_equal(strchr(sb.buf, '\n'), sb.buf + sb.len - 1);
	size_t tabs = 0;
	for (const char *p = sb.buf; *p; p++)
		tabs += *p == '\t';
	assert_int_equal(tabs, 5);
	strbuf_release(&sb);
	notice_text_release(&t);
}

/* ---- HTTP channels --------------------------------------------------------------------------- */

static struct channel *hook_channel(struct fx *f, const char *type, const char *extra)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n  ch:\n    type: %s\n    url: http://127.0.0.1:%d/services/T1/B2/"
	         "secretpath\n%s",
	         type, f->http.port, extra);
	return parse_one(yaml);
}

static void test_slack(void **state)
{
	struct fx *f = *state;
	struct channel *c = hook_channel(f, "slack", "");
	notify_send(f->n, c, &approval, on_done, f);
	channel_free(c); /* the delivery keeps what it needs */
	assert_int_equal(f->calls, 0);
	run_until(f, 1);
	assert_true(f->ok);
	assert_null(f->error);
	assert_int_equal(f->http.nreqs, 1);
	const struct request *r = &f->http.reqs[0];
	char buf[256];
	assert_true(!strncmp(r->head, "POST /services/T1/B2/secretpath HTTP/1.1\r\n", 42));
	assert_string_equal(req_header(r, "Content-Type", buf, sizeof(buf)),
	                    "application/json; charset=utf-8");
	assert_string_equal(req_header(r, "User-Agent", buf, sizeof(buf)), "steppy");
	assert_null(req_header(r, "Expect", buf, sizeof(buf)));
	assert_string_equal(
	    r->body,
	    "{\"text\":\"Deploy web 3.2 to production?\\nRelease 3.2 passed staging.\\nApprove "
	    "&lt;b&gt;now&lt;/b&gt; &amp; go\",\"blocks\":["
	    "{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":\"Deploy web 3.2 to "
	    "production?\",\"emoji\":true}},"
	    "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\"Release 3.2 passed "
	    "staging.\\nApprove &lt;b&gt;now&lt;/b&gt; &amp; go\"}},"
	    "{\"type\":\"context\",\"elements\":[{\"type\":\"plain_text\",\"text\":\"Release r-123 "
	    "\xC2\xB7 Plan web \xC2\xB7 Environment production \xC2\xB7 Stage prod \xC2\xB7 Step "
	    "Approve\"}]},"
	    "{\"type\":\"actions\",\"elements\":[{\"type\":\"button\",\"text\":{\"type\":"
	    "\"plain_text\",\"text\":\"Review and decide\"},\"url\":\"" APPROVAL_URL "\","
	    "\"style\":\"primary\",\"action_id\":\"steppy-open\"}]}]}");
	assert_int_equal(notifier_in_flight(f->n), 0);
}

static void test_teams(void **state)
{
	struct fx *f = *state;
	struct channel *c = hook_channel(f, "teams", "");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_true(f->ok);
	assert_int_equal(f->http.nreqs, 1);
	assert_string_equal(
	    f->http.reqs[0].body,
	    "{\"type\":\"message\",\"attachments\":[{\"contentType\":"
	    "\"application/vnd.microsoft.card.adaptive\",\"contentUrl\":null,\"content\":{"
	    "\"$schema\":\"http://adaptivecards.io/schemas/adaptive-card.json\",\"type\":"
	    "\"AdaptiveCard\",\"version\":\"1.4\",\"body\":["
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Deploy web 3.2 to production?\",\"size\":\"Large\",\"weight\":\"Bolder\"}]},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Release 3.2 passed staging.\\nApprove <b>now</b> & go\"}]},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Release: \",\"weight\":\"Bolder\"},{\"type\":\"TextRun\",\"text\":\"r-123\"}]},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Plan: \",\"weight\":\"Bolder\"},{\"type\":\"TextRun\",\"text\":\"web\"}],"
	    "\"spacing\":\"None\"},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Environment: \",\"weight\":\"Bolder\"},{\"type\":\"TextRun\",\"text\":"
	    "\"production\"}],\"spacing\":\"None\"},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Stage: \",\"weight\":\"Bolder\"},{\"type\":\"TextRun\",\"text\":\"prod\"}],"
	    "\"spacing\":\"None\"},"
	    "{\"type\":\"RichTextBlock\",\"inlines\":[{\"type\":\"TextRun\",\"text\":"
	    "\"Step: \",\"weight\":\"Bolder\"},{\"type\":\"TextRun\",\"text\":"
	    "\"Approve\"}],\"spacing\":\"None\"}],"
	    "\"actions\":[{\"type\":\"Action.OpenUrl\",\"title\":\"Review and decide\",\"url\":"
	    "\"" APPROVAL_URL "\"}]}}]}");
	channel_free(c);
}

/* A Slack bot channel: Web API calls with the bot token, Block Kit buttons. */
static struct channel *bot_channel(struct fx *f, const char *extra)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n  rel:\n    type: slack\n    tokenEnv: STEPPY_TEST_SLACK_TOKEN\n"
	         "    channel: C0123ABCD\n    apiUrl: http://127.0.0.1:%d/api/\n%s",
	         f->http.port, extra);
	return parse_one(yaml);
}

static void test_slack_bot(void **state)
{
	struct fx *f = *state;
	setenv("STEPPY_TEST_SLACK_TOKEN", "xoxb-test-token", 1);
	setenv("STEPPY_TEST_SLACK_SIGNING", "sekrit", 1);
	struct channel *c = bot_channel(f, "    signingSecretEnv: STEPPY_TEST_SLACK_SIGNING\n");
	assert_true(channel_slack_bot(c));
	assert_true(channel_slack_interactive(c));
	f->http.ok_reply = "{\"ok\":true,\"channel\":\"C0123ABCD\",\"ts\":\"1.2\"}";
	struct notice n = approval;
	n.decide_ref = "{\"execution\":\"r-123\",\"stage\":0,\"step\":0,\"attempt\":1}";
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 1);
	if (!f->ok)
		fail_msg("%s", f->error);
	const struct request *r = &f->http.reqs[0];
	char buf[256];
	assert_true(!strncmp(r->head, "POST /api/chat.postMessage HTTP/1.1\r\n", 37));
	assert_string_equal(req_header(r, "Authorization", buf, sizeof(buf)),
	                    "Bearer xoxb-test-token");
	assert_string_equal(req_header(r, "Content-Type", buf, sizeof(buf)),
	                    "application/json; charset=utf-8");
	json_t *j = json_loads(r->body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "channel")), "C0123ABCD");
	assert_true(json_is_false(json_object_get(j, "unfurl_links")));
	json_t *blocks = json_object_get(j, "blocks");
	json_t *actions = json_array_get(blocks, json_array_size(blocks) - 1);
	assert_string_equal(json_string_value(json_object_get(actions, "type")), "actions");
	json_t *els = json_object_get(actions, "elements");
	assert_int_equal(json_array_size(els), 3);
	const char *ids[] = { "steppy-approve", "steppy-reject", "steppy-open" };
	for (size_t i = 0; i < 3; i++) {
		json_t *b = json_array_get(els, i);
		assert_string_equal(json_string_value(json_object_get(b, "action_id")), ids[i]);
		if (i < 2)
			assert_string_equal(json_string_value(json_object_get(b, "value")),
			                    n.decide_ref);
	}
	assert_string_equal(json_string_value(json_object_get(json_array_get(els, 2), "url")),
	                    APPROVAL_URL);
	assert_non_null(json_object_get(json_array_get(els, 1), "confirm"));
	/* one primary button: Approve; the link has no style (Slack refuses a null one) */
	assert_null(json_object_get(json_array_get(els, 2), "style"));
	json_decref(j);

	/* after a decision: chat.update with the outcome, no buttons, the link kept */
	n.decide_ref = NULL;
	n.outcome = "Approved by alice";
	notify_slack_update(f->n, c, &n, "C0123ABCD", "1.2", on_done, f);
	run_until(f, 2);
	assert_true(f->ok);
	r = &f->http.reqs[1];
	assert_true(!strncmp(r->head, "POST /api/chat.update HTTP/1.1\r\n", 32));
	j = json_loads(r->body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(j, "ts")), "1.2");
	assert_null(strstr(r->body, "steppy-approve"));
	assert_non_null(strstr(r->body, "{\"type\":\"section\",\"text\":{\"type\":\"plain_text\","
	                                "\"text\":\"Approved by alice\"}}"));
	assert_non_null(strstr(r->body, "\"text\":\"Open in steppy\""));
	json_decref(j);

	/* an ephemeral answer, its text escaped for mrkdwn */
	notify_slack_ephemeral(f->n, c, "C0123ABCD", "U1", "no <!channel> & co", on_done, f);
	run_until(f, 3);
	assert_true(f->ok);
	assert_string_equal(f->http.reqs[2].body,
	                    "{\"channel\":\"C0123ABCD\",\"user\":\"U1\",\"text\":\"no "
	                    "&lt;!channel&gt; &amp; co\"}");

	/* Slack's refusals come as 200 {"ok": false}: final, named */
	f->http.ok_reply = "{\"ok\":false,\"error\":\"channel_not_found\"}";
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 4);
	assert_false(f->ok);
	assert_string_equal(f->error, "slack channel \"rel\": chat.postMessage refused by "
	                              "127.0.0.1: channel_not_found");
	assert_int_equal(f->http.nreqs, 4);
	channel_free(c);

	/* the token from a file; a missing file fails at once, naming it, never a secret */
	char path[300];
	snprintf(path, sizeof(path), "%s/token", f->dir);
	char extra[400];
	snprintf(extra, sizeof(extra), "    tokenFile: %s\n", path);
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n  rel:\n    type: slack\n    channel: C0123ABCD\n"
	         "    apiUrl: http://127.0.0.1:%d/api\n%s",
	         f->http.port, extra);
	c = parse_one(yaml);
	assert_false(channel_slack_interactive(c));
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 5);
	assert_false(f->ok);
	assert_non_null(strstr(f->error, "cannot read tokenFile"));
	FILE *fp = fopen(path, "w");
	fputs("  xoxb-from-file\n", fp);
	fclose(fp);
	f->http.ok_reply = "{\"ok\":true}";
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 6);
	assert_true(f->ok);
	assert_string_equal(req_header(&f->http.reqs[4], "Authorization", buf, sizeof(buf)),
	                    "Bearer xoxb-from-file");
	/* no signing secret: no decision buttons */
	assert_null(strstr(f->http.reqs[4].body, "steppy-approve"));
	channel_free(c);
	unsetenv("STEPPY_TEST_SLACK_TOKEN");
	unsetenv("STEPPY_TEST_SLACK_SIGNING");
}

/* Slack's request signing, as its documentation computes it. */
static void test_slack_signature(void **state)
{
	(void)state;
	const char *body = "payload=%7B%22type%22%3A%22block_actions%22%7D";
	const char *why = NULL;
	/* v0=HMAC-SHA256("sekrit", "v0:1767225600:" + body), computed with Python's hmac */
	const char *sig = "v0=a8e47cbb18daeb721a284cbbeae630b0449b2f6f17b149d2fb177b7ca8dc3a34";
	assert_int_equal(slack_signature_check("sekrit", "1767225600", body, strlen(body), sig,
	                                       1767225600 + 299, &why),
	                 0);
	assert_int_equal(slack_signature_check("sekrit2", "1767225600", body, strlen(body), sig,
	                                       1767225600, &why),
	                 SP_EINVAL);
	assert_int_equal(slack_signature_check("sekrit", "1767225601", body, strlen(body), sig,
	                                       1767225600, &why),
	                 SP_EINVAL);
	assert_int_equal(
	    slack_signature_check("sekrit", NULL, body, strlen(body), "v0=x", 1767225600, &why),
	    SP_EINVAL);
	assert_non_null(strstr(why, "not signed"));
	assert_int_equal(slack_signature_check("sekrit", "1767225600", body, strlen(body),
	                                       "v0=0000000000000000000000000000000000000000"
	                                       "000000000000000000000000",
	                                       1767225600, &why),
	                 SP_EINVAL);
	assert_non_null(strstr(why, "wrong"));
	/* six minutes old: refused before the signature is even looked at */
	assert_int_equal(slack_signature_check("sekrit", "1767225240", body, strlen(body),
	                                       "v0=0000000000000000000000000000000000000000"
	                                       "000000000000000000000000",
	                                       1767225600, &why),
	                 SP_EINVAL);
	assert_non_null(strstr(why, "more than 5 minutes old"));
	assert_int_equal(slack_signature_check("sekrit", "17x", body, strlen(body), "v0=", 0, &why),
	                 SP_EINVAL);

	/* replays */
	struct slack_replay *r = slack_replay_new();
	assert_false(slack_replay_seen(r, "v0=aa", 100, 100));
	assert_false(slack_replay_seen(r, "v0=bb", 100, 100));
	assert_true(slack_replay_seen(r, "v0=aa", 100, 200));
	assert_false(slack_replay_seen(r, "v0=aa", 100, 100 + 2 * SLACK_MAX_SKEW_S + 1));
	for (int i = 0; i < 1000; i++) {
		char s[32];
		snprintf(s, sizeof(s), "v0=%d", i);
		assert_false(slack_replay_seen(r, s, 1000, 1000));
	}
	assert_true(slack_replay_seen(r, "v0=7", 1000, 1000));
	slack_replay_free(r);

	/* forms */
	char *v = form_field("a=1&payload=x%41+y&b=2", 22, "payload");
	assert_string_equal(v, "xA y");
	free(v);
	assert_null(form_field("payload=%4", 10, "payload"));
	assert_null(form_field("payload=%00", 11, "payload"));
	assert_null(form_field("payloads=1", 10, "payload"));
}

static void test_slack_payload(void **state)
{
	(void)state;
	const char *json =
	    "{\"type\":\"block_actions\",\"user\":{\"id\":\"U0123ABCD\",\"team_id\":\"T1\"},"
	    "\"team\":{\"id\":\"T1\"},\"container\":{\"type\":\"message\",\"message_ts\":\"1.2\","
	    "\"channel_id\":\"C0123ABCD\"},\"channel\":{\"id\":\"C0123ABCD\"},"
	    "\"message\":{\"ts\":\"1.2\",\"blocks\":[{\"type\":\"actions\",\"elements\":["
	    "{\"type\":\"button\",\"action_id\":\"steppy-open\",\"url\":\"https://s/approvals/"
	    "x\"}]}]},"
	    "\"actions\":[{\"type\":\"button\",\"action_id\":\"steppy-approve\",\"value\":\"ref\"}]"
	    "}";
	struct strbuf body = STRBUF_INIT;
	strbuf_addstr(&body, "payload=");
	for (const char *p = json; *p; p++)
		strbuf_addf(&body, "%%%02X", (unsigned char)*p);
	struct slack_action a;
	struct strbuf err = STRBUF_INIT;
	if (slack_action_parse(body.buf, body.len, &a, &err) != 0)
		fail_msg("%s", err.buf);
	assert_string_equal(a.action_id, "steppy-approve");
	assert_string_equal(a.value, "ref");
	assert_string_equal(a.user_id, "U0123ABCD");
	assert_string_equal(a.team_id, "T1");
	assert_string_equal(a.channel_id, "C0123ABCD");
	assert_string_equal(a.message_ts, "1.2");
	assert_string_equal(a.link_url, "https://s/approvals/x");
	slack_action_release(&a);
	assert_int_equal(slack_action_parse("payload=%7B%7D", 14, &a, &err), SP_EINVAL);
	slack_action_release(&a);
	assert_int_equal(slack_action_parse("nothing", 7, &a, &err), SP_EINVAL);
	slack_action_release(&a);
	strbuf_release(&err);
	strbuf_release(&body);
}

static void test_webhook(void **state)
{
	struct fx *f = *state;
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", f->http.port);
	setenv("STEPPY_TEST_HOOK_URL", url, 1);
	setenv("STEPPY_TEST_HOOK_AUTH", "Bearer s3cret", 1);
	struct channel *c =
	    parse_one("channels:\n"
	              "  audit:\n"
	              "    type: webhook\n"
	              "    urlEnv: STEPPY_TEST_HOOK_URL\n"
	              "    headers: { X-Source: steppy }\n"
	              "    headersFromEnv: { Authorization: STEPPY_TEST_HOOK_AUTH }\n");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_true(f->ok);
	const struct request *r = &f->http.reqs[0];
	char buf[256];
	assert_true(!strncmp(r->head, "POST /hook HTTP/1.1\r\n", 21));
	assert_string_equal(req_header(r, "X-Source", buf, sizeof(buf)), "steppy");
	assert_string_equal(req_header(r, "Authorization", buf, sizeof(buf)), "Bearer s3cret");
	assert_string_equal(
	    r->body, "{\"kind\":\"approval\",\"subject\":\"Deploy web 3.2 to production?\","
	             "\"message\":\"Release 3.2 passed staging.\\nApprove <b>now</b> & go\","
	             "\"executionId\":\"r-123\",\"plan\":\"web\",\"environment\":"
	             "\"production\",\"stage\":\"prod\",\"step\":\"Approve\","
	             "\"approvalUrl\":\"" APPROVAL_URL "\",\"time\":\"2026-01-01T00:00:00Z\"}");

	/* an unset variable fails at once, naming the variable, never its absent value */
	unsetenv("STEPPY_TEST_HOOK_AUTH");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 2);
	assert_false(f->ok);
	assert_string_equal(f->error, "webhook channel \"audit\": the environment variable "
	                              "STEPPY_TEST_HOOK_AUTH (headersFromEnv.Authorization) is not "
	                              "set");
	assert_int_equal(f->http.nreqs, 1);
	unsetenv("STEPPY_TEST_HOOK_URL");
	channel_free(c);
}

static void test_retry_then_success(void **state)
{
	struct fx *f = *state;
	f->http.statuses[0] = 500;
	f->http.statuses[1] = 503;
	f->http.nstatuses = 2;
	struct channel *c = hook_channel(f, "webhook", "");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_true(f->ok);
	assert_int_equal(f->calls, 1);
	assert_int_equal(f->http.nreqs, 3);
	/* every attempt sends the same request */
	assert_string_equal(f->http.reqs[0].body, f->http.reqs[2].body);
	channel_free(c);
}

static void test_final_failure(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < 3; i++)
		f->http.statuses[i] = 500;
	f->http.nstatuses = 3;
	f->http.reply = "internal_error\n";
	struct channel *c = hook_channel(f, "slack", "");
	uint64_t start = uv_now(&f->loop);
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	uv_update_time(&f->loop);
	assert_true(uv_now(&f->loop) - start >= 50); /* waited 10 ms, then 40 ms */
	assert_false(f->ok);
	assert_int_equal(f->http.nreqs, 3);
	/* the error names the host, not the URL, whose path is Slack's secret */
	assert_string_equal(f->error, "slack channel \"ch\": HTTP 500 from 127.0.0.1: "
	                              "internal_error (3 attempts)");
	assert_null(strstr(f->error, "secretpath"));

	/* a 400 is final at once */
	f->http.statuses[3] = 400;
	f->http.nstatuses = 4;
	f->http.reply = "invalid_blocks";
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 2);
	assert_false(f->ok);
	assert_int_equal(f->http.nreqs, 4);
	assert_string_equal(f->error,
	                    "slack channel \"ch\": HTTP 400 from 127.0.0.1: invalid_blocks");
	channel_free(c);
}

static void test_unreachable(void **state)
{
	struct fx *f = *state;
	/* a port nobody listens on: bind one, note it, close it */
	uv_tcp_t tmp;
	struct sockaddr_in addr, bound;
	int len = sizeof(bound);
	uv_ip4_addr("127.0.0.1", 0, &addr);
	uv_tcp_init(&f->loop, &tmp);
	uv_tcp_bind(&tmp, (const struct sockaddr *)&addr, 0);
	uv_tcp_getsockname(&tmp, (struct sockaddr *)&bound, &len);
	uv_close((uv_handle_t *)&tmp, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	char yaml[256];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n  ch:\n    type: webhook\n    url: http://127.0.0.1:%d/x\n",
	         ntohs(bound.sin_port));
	struct channel *c = parse_one(yaml);
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_false(f->ok);
	assert_true(!strncmp(f->error, "webhook channel \"ch\": cannot reach 127.0.0.1: ", 46));
	assert_non_null(strstr(f->error, "(3 attempts)"));
	channel_free(c);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	struct channel *c = hook_channel(f, "webhook", "");
	struct notify_delivery *d = notify_send(f->n, c, &approval, on_done, f);
	notify_cancel(d);
	/* one in the back-off, one in flight: notifier_free drops both without calling back */
	f->http.statuses[0] = 500;
	f->http.nstatuses = 1;
	notify_send(f->n, c, &approval, on_done, f);
	notify_send(f->n, c, &approval, on_done, f);
	while (f->http.nreqs < 2)
		uv_run(&f->loop, UV_RUN_ONCE);
	assert_int_equal(notifier_in_flight(f->n), 2);
	notifier_free(f->n);
	f->n = NULL;
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->calls, 0);
	channel_free(c);
}

/* done may free the notifier (the server stopping when the last notice is out) */
static void free_notifier_on_done(void *arg, bool ok, const char *error)
{
	struct fx *f = arg;
	on_done(f, ok, error);
	notifier_free(f->n);
	f->n = NULL;
}

static void test_free_from_done(void **state)
{
	struct fx *f = *state;
	struct channel *c = hook_channel(f, "webhook", "");
	notify_send(f->n, c, &approval, on_done, f);
	notify_send(f->n, c, &approval, free_notifier_on_done, f);
	run_until(f, 1);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_true(f->calls <= 2);
	channel_free(c);
}

/* ---- email ----------------------------------------------------------------------------------- */

static struct channel *mail_channel(struct fx *f, const char *to)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n"
	         "  approvers:\n"
	         "    type: email\n"
	         "    url: smtp://127.0.0.1:%d/steppy.example.com\n"
	         "    username: steppy\n"
	         "    passwordEnv: STEPPY_TEST_SMTP_PASSWORD\n"
	         "    from: steppy@example.com\n"
	         "    to: [%s]\n",
	         f->smtp.port, to);
	return parse_one(yaml);
}

static void test_email(void **state)
{
	struct fx *f = *state;
	setenv("STEPPY_TEST_SMTP_PASSWORD", "pa55", 1);
	struct channel *c = mail_channel(f, "alice@example.com, bob@example.com");
	struct notice n = approval;
	n.subject = "D\xC3\xA9ploiement de web 3.2";
	n.message = "Ready to ship.\n.hidden line\nsee https://example.com/x?a=b";
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 1);
	if (!f->ok)
		fail_msg("%s", f->error);
	assert_int_equal(f->smtp.mails, 1);
	/* AUTH PLAIN: base64 of "\0steppy\0pa55" */
	const char *cmds = f->smtp.commands.buf;
	assert_true(!strncmp(cmds, "EHLO steppy.example.com\n", 24));
	assert_non_null(strstr(cmds, "\nAUTH PLAIN\nAHN0ZXBweQBwYTU1\n"));
	assert_non_null(strstr(cmds, "\nMAIL FROM:<steppy@example.com>"));
	assert_non_null(strstr(cmds, "\nRCPT TO:<alice@example.com>\nRCPT TO:<bob@example.com>\n"
	                             "DATA\n"));
	const char *data = f->smtp.data.buf;
	/* the Message-ID is random: check its shape, then compare the rest */
	const char *mid = strstr(data, "\r\nMessage-ID: <");
	assert_non_null(mid);
	size_t hex = strspn(mid + 15, "0123456789abcdef");
	assert_int_equal(hex, 24);
	assert_true(!strncmp(mid + 15 + 24, ".1767225600000@example.com>\r\n", 29));
	struct strbuf rest = STRBUF_INIT;
	strbuf_add(&rest, data, (size_t)(mid - data) + 2);
	strbuf_addstr(&rest, strstr(mid + 2, "\r\n") + 2);
	assert_string_equal(rest.buf, "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
	                              "From: steppy@example.com\r\n"
	                              "To: alice@example.com, bob@example.com\r\n"
	                              "Subject: =?UTF-8?B?RMOpcGxvaWVtZW50IGRlIHdlYiAzLjI=?=\r\n"
	                              "MIME-Version: 1.0\r\n"
	                              "Content-Type: text/plain; charset=utf-8\r\n"
	                              "Content-Transfer-Encoding: quoted-printable\r\n"
	                              "Auto-Submitted: auto-generated\r\n"
	                              "\r\n"
	                              "Ready to ship.\r\n"
	                              "..hidden line\r\n" /* dot-stuffed by libcurl on the wire */
	                              "see https://example.com/x?a=3Db\r\n"
	                              "\r\n"
	                              "Release: r-123\r\n"
	                              "Plan: web\r\n"
	                              "Environment: production\r\n"
	                              "Stage: prod\r\n"
	                              "Step: Approve\r\n"
	                              "\r\n"
	                              "Review and decide: " APPROVAL_URL "\r\n");
	strbuf_release(&rest);
	/* CRLF everywhere: no bare LF reached the server */
	for (const char *p = data; (p = strchr(p, '\n')); p++)
		assert_true(p > data && p[-1] == '\r');
	channel_free(c);
	unsetenv("STEPPY_TEST_SMTP_PASSWORD");
}

/* A personal approval link: one recipient instead of the channel's list;
 * anything but a plain address fails the delivery (no header injection). */
static void test_email_one_recipient(void **state)
{
	struct fx *f = *state;
	setenv("STEPPY_TEST_SMTP_PASSWORD", "pa55", 1);
	struct channel *c = mail_channel(f, "room@example.com");
	struct notice n = approval;
	n.to = "bob@example.com";
	notify_send(f->n, c, &n, on_done, f);
	run_until(f, 1);
	if (!f->ok)
		fail_msg("%s", f->error);
	assert_int_equal(f->smtp.mails, 1);
	assert_non_null(strstr(f->smtp.commands.buf, "\nRCPT TO:<bob@example.com>\nDATA\n"));
	assert_null(strstr(f->smtp.commands.buf, "room@example.com"));
	assert_non_null(strstr(f->smtp.data.buf, "\r\nTo: bob@example.com\r\n"));
	assert_null(strstr(f->smtp.data.buf, "room@example.com"));
	const char *bad[] = { "bob@example.com\r\nBcc: eve@example.com",
		              "<bob@example.com>",
		              "bob",
		              "a@b@c",
		              "bob@example.com, eve@example.com",
		              NULL };
	for (int i = 0; bad[i]; i++) {
		n.to = bad[i];
		notify_send(f->n, c, &n, on_done, f);
		run_until(f, 2 + i);
		assert_false(f->ok);
		assert_non_null(strstr(f->error, "not a plain email address"));
	}
	assert_int_equal(f->smtp.mails, 1);
	channel_free(c);
	unsetenv("STEPPY_TEST_SMTP_PASSWORD");
}

static void test_email_rejected(void **state)
{
	struct fx *f = *state;
	setenv("STEPPY_TEST_SMTP_PASSWORD", "pa55", 1);
	struct channel *c = mail_channel(f, "nobody@example.com");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_false(f->ok);
	assert_int_equal(f->smtp.mails, 0);
	assert_true(
	    !strncmp(f->error, "email channel \"approvers\": mail through 127.0.0.1: ", 51));
	assert_string_equal(f->error, "email channel \"approvers\": mail through 127.0.0.1: RCPT "
	                              "failed: 550, the server said \"550 5.1.1 no such user\"");
	assert_int_equal(f->smtp.mails, 0);
	assert_null(strstr(f->error, "pa55"));
	channel_free(c);
	unsetenv("STEPPY_TEST_SMTP_PASSWORD");
}

/* Mail runs on a worker thread: cancelling while it works (or before a thread took it) must
 * neither call back nor leak, and the loop must still close. */
static void test_cancel_mail(void **state)
{
	struct fx *f = *state;
	setenv("STEPPY_TEST_SMTP_PASSWORD", "pa55", 1);
	struct channel *c = mail_channel(f, "alice@example.com");
	notify_send(f->n, c, &approval, on_done, f);
	while (!strstr(f->smtp.commands.buf, "MAIL FROM"))
		uv_run(&f->loop, UV_RUN_ONCE);
	struct notify_delivery *d = notify_send(f->n, c, &approval, on_done, f);
	uv_run(&f->loop, UV_RUN_NOWAIT); /* its attempt is queued */
	notify_cancel(d);
	notifier_free(f->n);
	f->n = NULL;
	/* teardown runs the loop until the workers have reported and been freed */
	for (int i = 0; i < 20; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->calls, 0);
	channel_free(c);
	unsetenv("STEPPY_TEST_SMTP_PASSWORD");
}

/* ---- log and SNS ----------------------------------------------------------------------------- */

static void test_log(void **state)
{
	struct fx *f = *state;
	char yaml[256];
	snprintf(yaml, sizeof(yaml),
	         "channels:\n  file:\n    type: log\n    path: %s/notices.log\n", f->dir);
	struct channel *c = parse_one(yaml);
	notify_send(f->n, c, &approval, on_done, f);
	struct notice bare = { .kind = "started", .execution_id = "r-124", .time_ms = T0 + 250 };
	notify_send(f->n, c, &bare, on_done, f);
	run_until(f, 2);
	assert_true(f->ok);
	char path[128];
	snprintf(path, sizeof(path), "%s/notices.log", f->dir);
	char *text = NULL;
	size_t len = 0;
	struct strbuf err = STRBUF_INIT;
	assert_int_equal(read_file_capped(path, 4096, &text, &len, &err), 0);
	/* deliveries run in the order they were sent */
	assert_string_equal(text,
	                    "2026-01-01T00:00:00Z\tapproval\tr-123\tDeploy web 3.2 to "
	                    "production?\tRelease 3.2 passed staging. Approve <b>now</b> & "
	                    "go\t" APPROVAL_URL "\n"
	                    "2026-01-01T00:00:00.250Z\tstarted\tr-124\tRelease started\t-\t-\n");
	free(text);
	strbuf_release(&err);

	/* a directory that does not exist: three attempts, then the reason */
	channel_free(c);
	c = parse_one("channels:\n  file:\n    type: log\n    path: /nonexistent/dir/x.log\n");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 3);
	assert_string_equal(f->error,
	                    "log channel \"file\": cannot append to /nonexistent/dir/x.log: "
	                    "No such file or directory (3 attempts)");
	channel_free(c);
}

static void test_sns_without_aws(void **state)
{
	struct fx *f = *state;
	struct channel *c =
	    parse_one("channels:\n  t:\n    type: sns\n"
	              "    topicArn: arn:aws:sns:eu-west-1:123456789012:releases\n");
	notify_send(f->n, c, &approval, on_done, f);
	run_until(f, 1);
	assert_false(f->ok);
	assert_string_equal(f->error, "sns channel \"t\": no AWS client to publish with");
	/* what would be published */
	struct notice_text t;
	notice_text_init(&t, &approval, T0);
	struct strbuf sb = STRBUF_INIT;
	format_text(&t, "\n", &sb);
	assert_string_equal(sb.buf,
	                    "Release 3.2 passed staging.\nApprove <b>now</b> & go\n\n"
	                    "Release: r-123\nPlan: web\nEnvironment: production\n"
	                    "Stage: prod\nStep: Approve\n\nReview and decide: " APPROVAL_URL "\n");
	strbuf_release(&sb);
	notice_text_release(&t);
	channel_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_slack_bot),
		cmocka_unit_test(test_encodings),
		cmocka_unit_test(test_slack_limits_and_escaping),
		cmocka_unit_test(test_hostile_text),
		cmocka_unit_test_setup_teardown(test_slack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slack_bot, setup, teardown),
		cmocka_unit_test(test_slack_signature),
		cmocka_unit_test(test_slack_payload),
		cmocka_unit_test_setup_teardown(test_webhook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retry_then_success, setup, teardown),
		cmocka_unit_test_setup_teardown(test_final_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_from_done, setup, teardown),
		cmocka_unit_test_setup_teardown(test_email, setup, teardown),
		cmocka_unit_test_setup_teardown(test_email_one_recipient, setup, teardown),
		cmocka_unit_test_setup_teardown(test_email_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sns_without_aws, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
