/*
 * notify.c - deliveries: a notice on its way to one channel (see notify.h).
 *
 * notify_send() prepares everything a delivery needs at once (the payload,
 * the URL and secrets read from the environment, the mail envelope), so the
 * channel and notice may go away, and then arms the delivery's timer. Each
 * attempt starts from that timer; its result either ends the delivery or
 * re-arms the timer for the next attempt after the back-off. The done
 * callback runs from the timer as well, never inside curl or the AWS client,
 * so it may start deliveries or free the notifier.
 *
 * Lifecycle of a delivery: linked in the notifier's list from notify_send()
 * until done is called or it is cancelled; then it is dead: its timer is
 * closed, and the memory is freed once the timer has closed and no mail
 * worker (see SMTP below) still reads it.
 */
#include "notify/notify-internal.h"

#include "http/http.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/timefmt.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define MAX_ATTEMPTS    3
#define MAX_RETRY_AFTER 60 /* seconds of a 429's Retry-After we honour */

struct notifier {
	uv_loop_t *loop;
	struct aws *aws; /* borrowed, may be NULL */
	struct http *http;
	uint64_t delays_ms[MAX_ATTEMPTS - 1];
	struct notify_delivery *deliveries; /* in flight, doubly linked */
	size_t n;
};

struct notify_delivery {
	struct notifier *n;
	struct notify_delivery *prev, *next;
	uv_timer_t timer; /* starts the next attempt, or calls done; timer.data is the delivery */
	notify_done_fn done;
	void *arg;
	enum channel_kind kind;
	char *what;               /* "slack channel \"releases\"", for errors */
	const char *slack_method; /* Slack's Web API ("chat.postMessage"): 200 answers say
	                             {"ok": false, "error": ...} when refused; else NULL */
	int attempts, max_attempts;
	bool ok;
	char *error; /* the last attempt's, when it failed */

	/* The request, prepared by notify_send. */
	char *url;
	char *host; /* for errors: never the whole URL, which may be a secret */
	char *body; /* payload, mail, SNS message or log line */
	size_t len;
	long timeout_ms;
	char **headers; /* "Name: value" lines (HTTP); values may be secrets */
	size_t nheaders;
	char *mail_from;
	struct curl_slist *rcpt;
	bool starttls;
	char *username, *password;
	char *topic_arn, *region, *role_arn, *subject;
	char *path;

	/* The attempt in flight. */
	struct http_transfer *transfer;
	struct aws_call *call;
	uv_work_t work;   /* mail: the transfer on a worker thread */
	bool working;     /* work queued and not yet reported */
	atomic_int abort; /* set to stop the worker's transfer */
	CURLcode mail_result;
	size_t read_off; /* mail bytes handed to curl */
	char reply[256]; /* the SMTP server's last 4xx or 5xx reply, or "" */
	char errbuf[CURL_ERROR_SIZE];
	bool dead;         /* cancelled or done: no more attempts, nor callbacks */
	bool timer_closed; /* freed once the timer is closed and the worker reported */
};

static const char *const kind_names[] = { "slack", "teams", "webhook", "email", "sns", "log" };

/* ---- notifier -------------------------------------------------------------------------------- */

struct notifier *notifier_new(uv_loop_t *loop, struct aws *aws)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	n->loop = loop;
	n->aws = aws;
	n->http = http_new(loop);
	n->delays_ms[0] = 1000;
	n->delays_ms[1] = 4000;
	return n;
}

void notifier_set_retry_delays(struct notifier *n, uint64_t first_ms, uint64_t second_ms)
{
	n->delays_ms[0] = first_ms;
	n->delays_ms[1] = second_ms;
}

size_t notifier_in_flight(const struct notifier *n)
{
	return n->n;
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	while (n->deliveries)
		notify_cancel(n->deliveries);
	http_free(n->http);
	free(n);
}

/* ---- delivery lifecycle ---------------------------------------------------------------------- */

static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void delivery_free(struct notify_delivery *d)
{
	free(d->what);
	free(d->error);
	wipe(d->url);
	free(d->host);
	free(d->body);
	for (size_t i = 0; i < d->nheaders; i++)
		wipe(d->headers[i]);
	free(d->headers);
	free(d->mail_from);
	curl_slist_free_all(d->rcpt);
	free(d->username);
	wipe(d->password);
	free(d->topic_arn);
	free(d->region);
	free(d->role_arn);
	free(d->subject);
	free(d->path);
	free(d);
}

static void delivery_close_cb(uv_handle_t *h)
{
	struct notify_delivery *d = h->data;
	d->timer_closed = true;
	if (!d->working) /* else mail_done frees it: the worker still reads the request */
		delivery_free(d);
}

static void unlink_delivery(struct notify_delivery *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		d->n->deliveries = d->next;
	if (d->next)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
	d->n->n--;
}

/* Stops whatever is in flight and frees d once its timer has closed (and its worker, if any,
 * has reported). */
static void delivery_destroy(struct notify_delivery *d)
{
	if (d->transfer)
		http_cancel(d->transfer);
	if (d->call)
		aws_cancel(d->call);
	if (d->working) {
		atomic_store(&d->abort, 1);
		uv_cancel((uv_req_t *)&d->work); /* succeeds only if no thread took it yet */
	}
	d->dead = true;
	d->transfer = NULL;
	d->call = NULL;
	uv_timer_stop(&d->timer);
	uv_close((uv_handle_t *)&d->timer, delivery_close_cb);
}

void notify_cancel(struct notify_delivery *d)
{
	unlink_delivery(d);
	delivery_destroy(d);
}

static void attempt(uv_timer_t *t);

static void finish_cb(uv_timer_t *t)
{
	struct notify_delivery *d = t->data;
	unlink_delivery(d);
	struct strbuf err = STRBUF_INIT;
	if (!d->ok)
		strbuf_addf(&err, "%s: %s", d->what, d->error ? d->error : "failed");
	if (!d->ok && d->attempts > 1)
		strbuf_addf(&err, " (%d attempts)", d->attempts);
	/* From here on d is no longer the notifier's: done may free the notifier. */
	d->done(d->arg, d->ok, d->ok ? NULL : err.buf);
	strbuf_release(&err);
	delivery_destroy(d);
}

/* Ends the delivery from the loop, with d->ok and d->error as they are. */
static void finish(struct notify_delivery *d)
{
	uv_timer_start(&d->timer, finish_cb, 0, 0);
}

static void set_error(struct notify_delivery *d, char *error)
{
	free(d->error);
	d->error = error;
}

/* The result of one attempt: ok, or an error (taken) that may be worth trying again after at
 * least min_delay_ms. */
static void attempt_done(struct notify_delivery *d, bool ok, char *error, bool retryable,
                         uint64_t min_delay_ms)
{
	d->transfer = NULL;
	d->call = NULL;
	d->ok = ok;
	set_error(d, error);
	if (ok || !retryable || d->attempts >= d->max_attempts) {
		finish(d);
		return;
	}
	uint64_t delay = d->n->delays_ms[d->attempts - 1];
	uv_timer_start(&d->timer, attempt, delay > min_delay_ms ? delay : min_delay_ms, 0);
}

/* Printable text of at most 200 bytes from a response body, or NULL. */
static char *snippet(const char *body, size_t len)
{
	size_t n = len < 200 ? len : 200;
	while (n && (body[n - 1] == '\n' || body[n - 1] == '\r' || body[n - 1] == ' '))
		n--;
	if (!n)
		return NULL;
	char *s = xstrndup(body, n);
	for (char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7F)
			*p = ' ';
	return s;
}

/* ---- HTTP: slack, teams, webhook ------------------------------------------------------------- */

/*
 * Slack's Web API answers 200 with {"ok": true, ...}, or {"ok": false, "error":
 * "channel_not_found"}: final, but for Slack's own passing troubles.
 */
static void slack_answer(struct notify_delivery *d, const struct http_response *res)
{
	static const char *const passing[] = { "internal_error",      "fatal_error",
		                               "service_unavailable", "request_timeout",
		                               "ratelimited",         NULL };
	json_t *j = json_loadb(res->body, res->len, 0, NULL);
	if (json_is_true(json_object_get(j, "ok"))) {
		json_decref(j);
		attempt_done(d, true, NULL, false, 0);
		return;
	}
	const char *code = json_string_value(json_object_get(j, "error"));
	char *text = code ? snippet(code, strlen(code)) : snippet(res->body, res->len);
	bool retry = false;
	for (const char *const *p = passing; code && *p; p++)
		retry |= !strcmp(code, *p);
	attempt_done(
	    d, false,
	    xstrfmt("%s refused by %s: %s", d->slack_method, d->host, text ? text : "no answer"),
	    retry, 0);
	free(text);
	json_decref(j);
}

static void http_done(void *arg, const struct http_response *res)
{
	struct notify_delivery *d = arg;
	d->transfer = NULL;
	if (res->error) {
		attempt_done(
		    d, false,
		    xstrfmt("cannot reach %s: %s", d->host, *d->errbuf ? d->errbuf : res->error),
		    true, 0);
		return;
	}
	if (res->status >= 200 && res->status < 300 && d->slack_method) {
		slack_answer(d, res);
		return;
	}
	if (res->status >= 200 && res->status < 300) {
		attempt_done(d, true, NULL, false, 0);
		return;
	}
	char *text = snippet(res->body, res->len);
	char *error = xstrfmt("HTTP %ld from %s%s%s", res->status, d->host, text ? ": " : "",
	                      text ? text : "");
	free(text);
	uint64_t min_delay = 0;
	const char *after = http_header(res, "Retry-After");
	if (res->status == 429 && after) {
		long s = strtol(after, NULL, 10);
		if (s > 0)
			min_delay = (uint64_t)(s < MAX_RETRY_AFTER ? s : MAX_RETRY_AFTER) * 1000;
	}
	bool retryable = res->status == 408 || res->status == 429 || res->status >= 500;
	attempt_done(d, false, error, retryable, min_delay);
}

static void attempt_http(struct notify_delivery *d)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/json; charset=utf-8");
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	for (size_t i = 0; i < d->nheaders; i++)
		h = curl_slist_append(h, d->headers[i]);
	if (!e || !h) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	curl_easy_setopt(e, CURLOPT_URL, d->url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->len);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "steppy");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 d->timeout_ms < 10000 ? d->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
	d->transfer = http_send(d->n->http, e, h, http_done, d);
}

/* ---- SMTP ------------------------------------------------------------------------------------ */

/*
 * Mail goes through curl_easy_perform() on a thread of libuv's pool, not
 * through the multi interface: libcurl waits for the server's answer to the
 * end of the message in a blocking loop (smtp_done runs
 * smtp_block_statemach, in 7.88 as in current releases), which would stall
 * the whole event loop for as long as the server takes to accept the mail.
 * The worker touches only the delivery's request fields, the reply buffer
 * and errbuf; the loop thread reads them after the work is done (libuv
 * orders the two). Cancelling sets abort, which the progress callback turns
 * into CURLE_ABORTED_BY_CALLBACK within a second.
 */

static size_t mail_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct notify_delivery *d = arg;
	size_t n = d->len - d->read_off;
	if (n > size * nitems)
		n = size * nitems;
	memcpy(buf, d->body + d->read_off, n);
	d->read_off += n;
	return n;
}

/* Keeps the server's last refusal (4xx, 5xx: "550 5.1.1 <x@example.com>: unknown user"); the
 * 221 answering the QUIT that follows must not hide it. */
static size_t mail_reply(char *data, size_t size, size_t nitems, void *arg)
{
	struct notify_delivery *d = arg;
	size_t n = size * nitems, len = n;
	if (!len || (data[0] != '4' && data[0] != '5'))
		return n;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= sizeof(d->reply))
		len = sizeof(d->reply) - 1;
	memcpy(d->reply, data, len);
	d->reply[len] = '\0';
	return n;
}

static int mail_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                         curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct notify_delivery *d = arg;
	return atomic_load(&d->abort);
}

static void mail_work(uv_work_t *w)
{
	struct notify_delivery *d = w->data;
	d->mail_result = CURLE_FAILED_INIT;
	CURL *e = curl_easy_init();
	if (!e)
		return;
	curl_easy_setopt(e, CURLOPT_URL, d->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, d->mail_from);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, d->rcpt);
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, mail_read);
	curl_easy_setopt(e, CURLOPT_READDATA, d);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)d->len);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, mail_reply);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, mail_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, d);
	if (d->starttls)
		curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	if (d->username) {
		curl_easy_setopt(e, CURLOPT_USERNAME, d->username);
		curl_easy_setopt(e, CURLOPT_PASSWORD, d->password);
	}
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 d->timeout_ms < 10000 ? d->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
	d->mail_result = curl_easy_perform(e);
	curl_easy_cleanup(e);
}

static void mail_done(uv_work_t *w, int status)
{
	struct notify_delivery *d = w->data;
	d->working = false;
	if (d->dead) { /* cancelled meanwhile: only the memory is left */
		if (d->timer_closed)
			delivery_free(d);
		return;
	}
	if (status == 0 && d->mail_result == CURLE_OK) {
		attempt_done(d, true, NULL, false, 0);
		return;
	}
	const char *why = status < 0                            ? uv_strerror(status)
	                  : d->mail_result == CURLE_FAILED_INIT ? "out of memory"
	                  : *d->errbuf                          ? d->errbuf
	                               : curl_easy_strerror(d->mail_result);
	char *text = d->reply[0] ? snippet(d->reply, strlen(d->reply)) : NULL;
	/* A 5xx refusal is permanent (RFC 5321): trying again would get the same. */
	attempt_done(d, false,
	             xstrfmt("mail through %s: %s%s%s%s", d->host, why,
	                     text ? ", the server said \"" : "", text ? text : "",
	                     text ? "\"" : ""),
	             d->reply[0] != '5', 0);
	free(text);
}

static void attempt_mail(struct notify_delivery *d)
{
	d->read_off = 0;
	d->reply[0] = '\0';
	d->work.data = d;
	d->working = true;
	if (uv_queue_work(d->n->loop, &d->work, mail_work, mail_done) < 0) {
		d->working = false;
		attempt_done(d, false, xstrdup("cannot start a worker thread"), true, 0);
	}
}

/* ---- SNS ------------------------------------------------------------------------------------- */

static void sns_done(void *arg, const struct aws_result *res)
{
	struct notify_delivery *d = arg;
	d->call = NULL;
	if (!res->error_code) {
		attempt_done(d, true, NULL, false, 0);
		return;
	}
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "SNS Publish to %s: ", d->topic_arn);
	aws_result_error(res, &sb);
	attempt_done(d, false, strbuf_detach(&sb, NULL), false, 0);
}

static void attempt_sns(struct notify_delivery *d)
{
	if (!d->n->aws) {
		attempt_done(d, false, xstrdup("no AWS client to publish with"), false, 0);
		return;
	}
	json_t *params = json_pack("{s:s, s:s, s:s}", "TopicArn", d->topic_arn, "Subject",
	                           d->subject, "Message", d->body);
	struct aws_target t = { .service = "sns", .region = d->region, .role_arn = d->role_arn };
	d->call = aws_query_call(d->n->aws, &t, "Publish", "2010-03-31", params, sns_done, d);
}

/* ---- log ------------------------------------------------------------------------------------- */

/* A local append: done at once (it takes microseconds), reported from the loop like the rest. */
static void attempt_log(struct notify_delivery *d)
{
	int fd = open(d->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	ssize_t w = -1;
	if (fd >= 0) {
		do
			w = write(fd, d->body, d->len); /* one write: lines of writers never mix */
		while (w < 0 && errno == EINTR);
	}
	int saved = errno;
	if (fd >= 0 && close(fd) < 0 && w >= 0) {
		saved = errno;
		w = -1;
	}
	if (w == (ssize_t)d->len) {
		attempt_done(d, true, NULL, false, 0);
		return;
	}
	attempt_done(
	    d, false,
	    xstrfmt("cannot append to %s: %s", d->path, w >= 0 ? "short write" : strerror(saved)),
	    true, 0);
}

static void attempt(uv_timer_t *t)
{
	struct notify_delivery *d = t->data;
	d->attempts++;
	d->errbuf[0] = '\0';
	switch (d->kind) {
	case CHANNEL_SLACK:
	case CHANNEL_TEAMS:
	case CHANNEL_WEBHOOK:
		attempt_http(d);
		break;
	case CHANNEL_EMAIL:
		attempt_mail(d);
		break;
	case CHANNEL_SNS:
		attempt_sns(d);
		break;
	case CHANNEL_LOG:
		attempt_log(d);
		break;
	}
}

/* ---- preparing ------------------------------------------------------------------------------- */

/* The host of a URL (for messages), or NULL if curl cannot parse it as one of the schemes. */
static char *url_host(const char *url, const char *const *schemes)
{
	CURLU *u = curl_url();
	char *host = NULL, *scheme = NULL, *ret = NULL;
	if (u && !curl_url_set(u, CURLUPART_URL, url, 0) &&
	    !curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) &&
	    !curl_url_get(u, CURLUPART_HOST, &host, 0)) {
		for (const char *const *s = schemes; *s; s++)
			if (!strcmp(scheme, *s))
				ret = xstrdup(host);
	}
	curl_free(host);
	curl_free(scheme);
	curl_url_cleanup(u);
	return ret;
}

/* The value of an environment variable, or NULL (with an error set) when unset or empty. */
static char *from_env(struct notify_delivery *d, const char *var, const char *what)
{
	const char *v = getenv(var);
	if (!v || !*v) {
		set_error(d, xstrfmt("the environment variable %s (%s) is not set", var, what));
		return NULL;
	}
	return xstrdup(v);
}

/* A secret from an environment variable or a file (one line; surrounding blanks dropped), or
 * NULL with why in *error (naming the variable or file, never the value). */
static char *read_secret(const char *env, const char *file, const char *what, char **error)
{
	if (env) {
		const char *v = getenv(env);
		if (!v || !*v) {
			*error = xstrfmt("the environment variable %s (%s) is not set", env, what);
			return NULL;
		}
		return xstrdup(v);
	}
	char *data = NULL;
	size_t len;
	struct strbuf err = STRBUF_INIT;
	if (read_file_capped(file, 4096, &data, &len, &err) < 0) {
		*error = xstrfmt("cannot read %s: %s", what, err.buf);
		strbuf_release(&err);
		return NULL;
	}
	strbuf_release(&err);
	while (len && strchr(" \t\r\n", data[len - 1]))
		data[--len] = '\0';
	size_t start = strspn(data, " \t\r\n");
	if (start == len || strpbrk(data + start, "\r\n") || memchr(data, '\0', len)) {
		explicit_bzero(data, len);
		free(data);
		*error = xstrfmt("%s holds no secret of one line", what);
		return NULL;
	}
	char *s = xstrdup(data + start);
	explicit_bzero(data, len);
	free(data);
	return s;
}

bool channel_slack_bot(const struct channel *c)
{
	return c->kind == CHANNEL_SLACK && c->slack_channel;
}

bool channel_slack_interactive(const struct channel *c)
{
	return channel_slack_bot(c) && (c->signing_env || c->signing_file);
}

char *channel_slack_signing_secret(const struct channel *c, struct strbuf *err)
{
	if (!channel_slack_interactive(c))
		return NULL;
	char *error = NULL;
	char *what = c->signing_env ? xstrdup("signingSecretEnv")
	                            : xstrfmt("signingSecretFile %s", c->signing_file);
	char *secret = read_secret(c->signing_env, c->signing_file, what, &error);
	free(what);
	if (!secret && err)
		strbuf_addf(err, "slack channel \"%s\": %s", c->name, error);
	free(error);
	return secret;
}

/* A call of Slack's Web API method with body (taken), as the bot of channel c. */
static bool prepare_slack_api(struct notify_delivery *d, const struct channel *c,
                              const char *method, char *body)
{
	static const char *const http_schemes[] = { "http", "https", NULL };
	d->body = body;
	d->len = strlen(body);
	d->slack_method = method;
	d->url = xstrfmt("%s/%s", c->api_url, method);
	d->host = url_host(d->url, http_schemes);
	if (!d->host) {
		set_error(d, xstrdup("\"apiUrl\" is not an http:// or https:// URL"));
		return false;
	}
	char *error = NULL;
	char *what = c->token_env ? xstrdup("tokenEnv") : xstrfmt("tokenFile %s", c->token_file);
	char *token = read_secret(c->token_env, c->token_file, what, &error);
	free(what);
	if (!token) {
		set_error(d, error);
		return false;
	}
	if (strpbrk(token, "\r\n")) {
		wipe(token);
		set_error(d, xstrdup("the bot token holds a line break"));
		return false;
	}
	d->headers = xcalloc(1, sizeof(char *));
	d->headers[d->nheaders++] = xstrfmt("Authorization: Bearer %s", token);
	wipe(token);
	return true;
}

/* Fills the request of d; false (with d->error) when it cannot be sent at all. */
static bool prepare(struct notify_delivery *d, const struct channel *c, const struct notice_text *t)
{
	static const char *const http_schemes[] = { "http", "https", NULL };
	static const char *const smtp_schemes[] = { "smtp", "smtps", NULL };
	d->timeout_ms = c->timeout_ms;
	d->max_attempts = c->kind == CHANNEL_SNS ? 1 : MAX_ATTEMPTS;
	if (channel_slack_bot(c))
		return prepare_slack_api(
		    d, c, "chat.postMessage",
		    format_slack_api(t, c->slack_channel, NULL, channel_slack_interactive(c)));
	switch (c->kind) {
	case CHANNEL_SLACK: /* an incoming webhook */
	case CHANNEL_TEAMS:
	case CHANNEL_WEBHOOK:
		d->url = c->url ? xstrdup(c->url) : from_env(d, c->url_env, "urlEnv");
		if (!d->url)
			return false;
		d->host = url_host(d->url, http_schemes);
		if (!d->host) {
			set_error(d, xstrfmt("the URL in %s is not an http:// or https:// URL",
			                     c->url_env ? c->url_env : "url"));
			return false;
		}
		d->body = c->kind == CHANNEL_SLACK   ? format_slack(t)
		          : c->kind == CHANNEL_TEAMS ? format_teams(t)
		                                     : format_webhook(t);
		d->len = strlen(d->body);
		d->headers = c->nheaders ? xcalloc(c->nheaders, sizeof(char *)) : NULL;
		for (size_t i = 0; i < c->nheaders; i++) {
			const struct channel_header *h = &c->headers[i];
			char *value = h->value;
			if (h->from_env) {
				struct strbuf what = STRBUF_INIT;
				strbuf_addf(&what, "headersFromEnv.%s", h->name);
				value = from_env(d, h->value, what.buf);
				strbuf_release(&what);
				if (!value)
					return false;
				if (strpbrk(value, "\r\n")) {
					wipe(value);
					set_error(
					    d, xstrfmt("the environment variable %s holds a line "
					               "break",
					               h->value));
					return false;
				}
			}
			d->headers[d->nheaders++] = xstrfmt("%s: %s", h->name, value);
			if (h->from_env)
				wipe(value);
		}
		return true;
	case CHANNEL_EMAIL: {
		d->url = xstrdup(c->url);
		d->host = url_host(d->url, smtp_schemes);
		if (!d->host) {
			set_error(d, xstrdup("\"url\" is not an smtp:// or smtps:// URL"));
			return false;
		}
		d->starttls = c->starttls;
		if (c->username) {
			d->username = xstrdup(c->username);
			d->password = from_env(d, c->password_env, "passwordEnv");
			if (!d->password)
				return false;
		}
		d->mail_from = xstrfmt("<%s>", c->from);
		if (t->bad_to) {
			set_error(d, xstrdup("the recipient is not a plain email address"));
			return false;
		}
		if (t->to) {
			char *rcpt = xstrfmt("<%s>", t->to);
			d->rcpt = curl_slist_append(d->rcpt, rcpt);
			free(rcpt);
		}
		for (size_t i = 0; !t->to && i < c->nto; i++) {
			char *rcpt = xstrfmt("<%s>", c->to[i]);
			d->rcpt = curl_slist_append(d->rcpt, rcpt);
			free(rcpt);
		}
		/* Message-ID: random, and the sender's domain. */
		unsigned char r[12];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			memset(r, 0, sizeof(r));
		struct strbuf id = STRBUF_INIT, mail = STRBUF_INIT;
		for (size_t i = 0; i < sizeof(r); i++)
			strbuf_addf(&id, "%02x", r[i]);
		strbuf_addf(&id, ".%lld%s", (long long)t->time_ms, strchr(c->from, '@'));
		format_email(t, c, id.buf, &mail);
		strbuf_release(&id);
		d->body = strbuf_detach(&mail, &d->len);
		return true;
	}
	case CHANNEL_SNS: {
		d->topic_arn = xstrdup(c->topic_arn);
		d->region = xstrdup(c->region);
		d->role_arn = c->role_arn ? xstrdup(c->role_arn) : NULL;
		struct strbuf sb = STRBUF_INIT;
		format_sns_subject(t, &sb);
		d->subject = strbuf_detach(&sb, NULL);
		format_text(t, "\n", &sb);
		if (!sb.len)
			strbuf_addstr(&sb, t->title); /* SNS refuses an empty message */
		d->body = strbuf_detach(&sb, &d->len);
		return true;
	}
	case CHANNEL_LOG: {
		d->path = xstrdup(c->path);
		struct strbuf sb = STRBUF_INIT;
		format_log_line(t, &sb);
		d->body = strbuf_detach(&sb, &d->len);
		return true;
	}
	}
	return false;
}

/* A new delivery to c, linked in n, its timer ready. */
static struct notify_delivery *delivery_new(struct notifier *n, const struct channel *c,
                                            notify_done_fn done, void *arg)
{
	struct notify_delivery *d = xcalloc(1, sizeof(*d));
	d->n = n;
	d->done = done;
	d->arg = arg;
	d->kind = c->kind;
	d->what = xstrfmt("%s channel \"%s\"", kind_names[c->kind], c->name);
	uv_timer_init(n->loop, &d->timer);
	d->timer.data = d;
	d->next = n->deliveries;
	if (n->deliveries)
		n->deliveries->prev = d;
	n->deliveries = d;
	n->n++;
	return d;
}

/* Starts d's first attempt when ready, else reports its error (from the loop). */
static struct notify_delivery *delivery_start(struct notify_delivery *d, bool ready)
{
	if (ready) {
		d->timeout_ms = d->timeout_ms ? d->timeout_ms : 10000;
		d->max_attempts = d->max_attempts ? d->max_attempts : MAX_ATTEMPTS;
		uv_timer_start(&d->timer, attempt, 0, 0);
	} else {
		d->ok = false;
		finish(d);
	}
	return d;
}

struct notify_delivery *notify_send(struct notifier *n, const struct channel *c,
                                    const struct notice *notice, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, done, arg);
	struct notice_text t;
	notice_text_init(&t, notice, wall_clock_ms());
	bool ready = prepare(d, c, &t);
	notice_text_release(&t);
	return delivery_start(d, ready);
}

struct notify_delivery *notify_slack_update(struct notifier *n, const struct channel *c,
                                            const struct notice *notice, const char *slack_channel,
                                            const char *ts, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, done, arg);
	d->timeout_ms = c->timeout_ms;
	struct notice_text t;
	notice_text_init(&t, notice, wall_clock_ms());
	bool ready = false;
	if (!channel_slack_bot(c))
		set_error(d, xstrdup("not a Slack bot channel"));
	else
		ready = prepare_slack_api(
		    d, c, "chat.update",
		    format_slack_api(&t, slack_channel, ts, channel_slack_interactive(c)));
	notice_text_release(&t);
	return delivery_start(d, ready);
}

struct notify_delivery *notify_slack_ephemeral(struct notifier *n, const struct channel *c,
                                               const char *slack_channel, const char *user,
                                               const char *text, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, done, arg);
	d->timeout_ms = c->timeout_ms;
	bool ready = false;
	if (!channel_slack_bot(c)) {
		set_error(d, xstrdup("not a Slack bot channel"));
	} else {
		struct strbuf esc = STRBUF_INIT;
		for (const char *p = text; *p; p++) /* mrkdwn: nothing in it is a link */
			if (*p == '&' || *p == '<' || *p == '>')
				strbuf_addstr(&esc, *p == '&'   ? "&amp;"
				                    : *p == '<' ? "&lt;"
				                                : "&gt;");
			else
				strbuf_addch(&esc, *p);
		json_t *j = json_pack("{s:s, s:s, s:s}", "channel", slack_channel, "user", user,
		                      "text", esc.buf);
		strbuf_release(&esc);
		char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(j);
		ready = prepare_slack_api(d, c, "chat.postEphemeral", body);
	}
	return delivery_start(d, ready);
}
