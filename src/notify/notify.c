/*
 * notify.c - deliveries: a notice on its way to one channel (see notify.h),
 * the same for every kind of channel (channel-type.h).
 *
 * notify_send() has the channel's kind prepare everything a delivery needs
 * at once (its format hook: the payload, the URL and secrets read from the
 * environment, the mail envelope), so the channel and notice may go away,
 * and then arms the delivery's timer. Each attempt starts from that timer
 * (the kind's send hook); its result (notify_attempt_done) either ends the
 * delivery or re-arms the timer for the next attempt after the back-off:
 * the one retry rule of every channel. The done callback runs from the
 * timer as well, never inside curl or the AWS client, so it may start
 * deliveries or free the notifier.
 *
 * The transports a send hook uses are here too: an HTTP POST on the loop,
 * an AWS query call, work on a thread of libuv's pool. Each keeps what is in
 * flight in the delivery, so cancelling is the same for every kind.
 *
 * Lifecycle of a delivery: linked in the notifier's list from notify_send()
 * until done is called or it is cancelled; then it is dead: its timer is
 * closed, and the memory is freed once the timer has closed and no worker
 * thread still reads it.
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/timefmt.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS    3
#define MAX_RETRY_AFTER 60 /* seconds of a 429's Retry-After we honour */

/*
 * A delivery's first attempt waits for the loop's check phase, then one more
 * turn (a timer): the runtime commits the events of a step (StepStarted)
 * at its own check, so what the terminal channel shows comes after the
 * view's line of the step, as it always did.
 */
struct notifier {
	uv_loop_t *loop;
	struct aws *aws; /* borrowed, may be NULL */
	struct http *http;
	uint64_t delays_ms[MAX_ATTEMPTS - 1];
	struct notify_delivery *deliveries; /* in flight, doubly linked */
	size_t n;
	uv_check_t check;              /* runs while deliveries are ready to start */
	uv_idle_t idle;                /* keeps the loop from blocking meanwhile */
	struct notify_delivery *ready; /* to start at the next check, linked by ready_next */
	int closing;                   /* handles still to close before the notifier is freed */
};

struct notify_delivery {
	struct notifier *n;
	struct notify_delivery *prev, *next;
	uv_timer_t timer; /* starts the next attempt, or calls done; timer.data is the delivery */
	notify_done_fn done; /* one of the two */
	notify_result_done_fn done_full;
	void *arg;
	const struct channel_type *type; /* NULL: a delivery that failed before it had one */
	char *what;                      /* "slack channel \"releases\"", for errors, or NULL */
	int attempts, max_attempts;
	long timeout_ms;
	bool ok;
	char *error;   /* the last attempt's, when it failed */
	char *receipt; /* what the service answered worth keeping, or NULL */
	struct channel_request req;

	/* The attempt in flight. */
	struct http_transfer *transfer;
	notify_answer_fn answer;
	struct aws_call *call;
	notify_aws_fn aws_done;
	uv_work_t work; /* work on a thread of libuv's pool */
	void (*work_fn)(struct notify_delivery *d);
	void (*after_fn)(struct notify_delivery *d, int status);
	bool working;     /* work queued and not yet reported */
	atomic_int abort; /* set to stop the worker */
	char errbuf[CURL_ERROR_SIZE];
	struct notify_delivery *ready_next;
	bool queued;       /* in the notifier's ready list */
	bool dead;         /* cancelled or done: no more attempts, nor callbacks */
	bool timer_closed; /* freed once the timer is closed and the worker reported */
};

/* ---- notifier -------------------------------------------------------------------------------- */

struct notifier *notifier_new(uv_loop_t *loop, struct aws *aws)
{
	struct notifier *n = xcalloc(1, sizeof(*n));
	n->loop = loop;
	n->aws = aws;
	n->http = http_new(loop);
	n->delays_ms[0] = 1000;
	n->delays_ms[1] = 4000;
	uv_check_init(loop, &n->check);
	uv_idle_init(loop, &n->idle);
	n->check.data = n->idle.data = n;
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

static void notifier_close_cb(uv_handle_t *h)
{
	struct notifier *n = h->data;
	if (--n->closing == 0)
		free(n);
}

void notifier_free(struct notifier *n)
{
	if (!n)
		return;
	while (n->deliveries)
		notify_cancel(n->deliveries);
	http_free(n->http);
	n->closing = 2;
	uv_close((uv_handle_t *)&n->check, notifier_close_cb);
	uv_close((uv_handle_t *)&n->idle, notifier_close_cb);
}

/* ---- delivery lifecycle ---------------------------------------------------------------------- */

void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void delivery_free(struct notify_delivery *d)
{
	struct channel_request *r = &d->req;
	free(d->what);
	free(d->error);
	free(d->receipt);
	free(r->body);
	wipe(r->url);
	free(r->host);
	for (size_t i = 0; i < r->nheaders; i++)
		wipe(r->headers[i]);
	free(r->headers);
	if (r->data)
		(r->data_free ? r->data_free : free)(r->data);
	free(d);
}

static void delivery_close_cb(uv_handle_t *h)
{
	struct notify_delivery *d = h->data;
	d->timer_closed = true;
	if (!d->working) /* else work_done frees it: the worker still reads the request */
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
static void unqueue(struct notify_delivery *d)
{
	for (struct notify_delivery **p = &d->n->ready; *p; p = &(*p)->ready_next)
		if (*p == d) {
			*p = d->ready_next;
			break;
		}
	d->queued = false;
}

static void delivery_destroy(struct notify_delivery *d)
{
	if (d->queued)
		unqueue(d);
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
	if (!d->ok && d->what)
		strbuf_addf(&err, "%s: ", d->what);
	if (!d->ok)
		strbuf_addstr(&err, d->error ? d->error : "failed");
	if (!d->ok && d->attempts > 1)
		strbuf_addf(&err, " (%d attempts)", d->attempts);
	/* From here on d is no longer the notifier's: done may free the notifier. */
	if (d->done_full)
		d->done_full(d->arg, d->ok, d->ok ? NULL : err.buf, d->ok ? d->receipt : NULL);
	else
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

void notify_attempt_done(struct notify_delivery *d, bool ok, char *error, bool retryable,
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

void notify_set_receipt(struct notify_delivery *d, const char *receipt)
{
	free(d->receipt);
	d->receipt = receipt ? xstrdup(receipt) : NULL;
}

struct channel_request *notify_request(struct notify_delivery *d)
{
	return &d->req;
}

long notify_timeout_ms(const struct notify_delivery *d)
{
	return d->timeout_ms;
}

static void attempt(uv_timer_t *t)
{
	struct notify_delivery *d = t->data;
	d->attempts++;
	d->errbuf[0] = '\0';
	d->type->send(d);
}

/* ---- HTTP ------------------------------------------------------------------------------------ */

char *text_snippet(const char *body, size_t len)
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

static void http_done(void *arg, const struct http_response *res)
{
	struct notify_delivery *d = arg;
	d->transfer = NULL;
	if (res->error) {
		notify_attempt_done(d, false,
		                    xstrfmt("cannot reach %s: %s", d->req.host,
		                            *d->errbuf ? d->errbuf : res->error),
		                    true, 0);
		return;
	}
	if (res->status >= 200 && res->status < 300) {
		if (d->answer)
			d->answer(d, res);
		else
			notify_attempt_done(d, true, NULL, false, 0);
		return;
	}
	char *text = text_snippet(res->body, res->len);
	char *error = xstrfmt("HTTP %ld from %s%s%s", res->status, d->req.host, text ? ": " : "",
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
	notify_attempt_done(d, false, error, retryable, min_delay);
}

void notify_http_post(struct notify_delivery *d, notify_answer_fn answer)
{
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Content-Type: application/json; charset=utf-8");
	h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	for (size_t i = 0; i < d->req.nheaders; i++)
		h = curl_slist_append(h, d->req.headers[i]);
	if (!e || !h) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	curl_easy_setopt(e, CURLOPT_URL, d->req.url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, d->req.body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)d->req.len);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "steppy");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, d->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	                 d->timeout_ms < 10000 ? d->timeout_ms : 10000L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, d->errbuf);
	d->answer = answer;
	d->transfer = http_send(d->n->http, e, h, http_done, d);
}

void notify_http_send(struct notify_delivery *d)
{
	notify_http_post(d, NULL);
}

/* ---- AWS ------------------------------------------------------------------------------------- */

static void aws_done(void *arg, const struct aws_result *res)
{
	struct notify_delivery *d = arg;
	d->call = NULL;
	d->aws_done(d, res);
}

void notify_aws_query(struct notify_delivery *d, const struct aws_target *t, const char *action,
                      const char *version, json_t *params, notify_aws_fn done)
{
	if (!d->n->aws) {
		json_decref(params);
		notify_attempt_done(d, false, xstrdup("no AWS client to publish with"), false, 0);
		return;
	}
	d->aws_done = done;
	d->call = aws_query_call(d->n->aws, t, action, version, params, aws_done, d);
}

/* ---- work on a thread ------------------------------------------------------------------------ */

static void work_cb(uv_work_t *w)
{
	struct notify_delivery *d = w->data;
	d->work_fn(d);
}

static void work_done(uv_work_t *w, int status)
{
	struct notify_delivery *d = w->data;
	d->working = false;
	if (d->dead) { /* cancelled meanwhile: only the memory is left */
		if (d->timer_closed)
			delivery_free(d);
		return;
	}
	d->after_fn(d, status);
}

void notify_work(struct notify_delivery *d, void (*work)(struct notify_delivery *d),
                 void (*after)(struct notify_delivery *d, int status))
{
	d->work.data = d;
	d->work_fn = work;
	d->after_fn = after;
	d->working = true;
	if (uv_queue_work(d->n->loop, &d->work, work_cb, work_done) < 0) {
		d->working = false;
		notify_attempt_done(d, false, xstrdup("cannot start a worker thread"), true, 0);
	}
}

bool notify_aborted(struct notify_delivery *d)
{
	return atomic_load(&d->abort) != 0;
}

/* ---- shared helpers -------------------------------------------------------------------------- */

char *url_host(const char *url, const char *const *schemes)
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

char *read_secret(const char *env, const char *file, const char *what, char **error)
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

/* ---- sending --------------------------------------------------------------------------------- */

struct notify_delivery *delivery_new(struct notifier *n, const struct channel *c,
                                     notify_done_fn done, void *arg)
{
	struct notify_delivery *d = xcalloc(1, sizeof(*d));
	d->n = n;
	d->done = done;
	d->arg = arg;
	if (c) {
		d->type = c->type;
		d->what = c->what ? xstrdup(c->what) : NULL;
		d->timeout_ms = c->timeout_ms;
		d->max_attempts = c->type->flags & CHANNEL_ONE_ATTEMPT ? 1 : MAX_ATTEMPTS;
	}
	uv_timer_init(n->loop, &d->timer);
	d->timer.data = d;
	d->next = n->deliveries;
	if (n->deliveries)
		n->deliveries->prev = d;
	n->deliveries = d;
	n->n++;
	return d;
}

static void idle_cb(uv_idle_t *h)
{
	(void)h; /* only keeps the loop from blocking until the check */
}

/* The ready deliveries' first attempts, one turn of the loop from now. */
static void check_cb(uv_check_t *h)
{
	struct notifier *n = h->data;
	uv_check_stop(&n->check);
	uv_idle_stop(&n->idle);
	while (n->ready) {
		struct notify_delivery *d = n->ready;
		n->ready = d->ready_next;
		d->queued = false;
		uv_timer_start(&d->timer, attempt, 0, 0);
	}
}

struct notify_delivery *delivery_start(struct notify_delivery *d, bool ready, char *error)
{
	if (ready) {
		d->timeout_ms = d->timeout_ms ? d->timeout_ms : 10000;
		d->max_attempts = d->max_attempts ? d->max_attempts : MAX_ATTEMPTS;
		struct notify_delivery **p = &d->n->ready; /* in the order they were sent */
		while (*p)
			p = &(*p)->ready_next;
		*p = d;
		d->queued = true;
		uv_check_start(&d->n->check, check_cb);
		uv_idle_start(&d->n->idle, idle_cb);
	} else {
		d->ok = false;
		set_error(d, error);
		finish(d);
	}
	return d;
}

struct notify_delivery *notify_send_full(struct notifier *n, const struct channel *c,
                                         const struct notice *notice, notify_result_done_fn done,
                                         void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, NULL, arg);
	d->done_full = done;
	struct notice_text t;
	notice_text_init(&t, notice, wall_clock_ms());
	char *error = NULL;
	bool ready = c->type->format(c, &t, &d->req, &error) == 0;
	notice_text_release(&t);
	return delivery_start(d, ready, ready ? NULL : error);
}

struct notify_delivery *notify_send(struct notifier *n, const struct channel *c,
                                    const struct notice *notice, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = notify_send_full(n, c, notice, NULL, arg);
	d->done = done;
	return d;
}

struct notify_delivery *notify_send_error(struct notifier *n, const char *error,
                                          notify_result_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, NULL, NULL, arg);
	d->done_full = done;
	return delivery_start(d, false, xstrdup(error));
}
