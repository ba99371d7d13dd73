/*
 * http-run.c - the runner of the Http step type (http.c): the request, the
 * polls, cancel and detach, on the process's HTTP client (http/http.h,
 * libcurl on the runtime's loop: nothing blocks). What a crash or a stop
 * does to a request and to polling is said at the top of http.c.
 */
#include "steps/http-step.h"

#include "http/http.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/utf8.h"
#include "util/version.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REDIRECTS   5L
#define BODY_KEEP       2048 /* bytes of an answer kept in the output */
#define VALUE_KEEP      1024 /* bytes of a polled value kept in the output */
#define POLL_ERRORS_MAX 3    /* failed polls in a row tolerated */
#define NOTICES_MAX     100  /* changes of the polled value recorded per attempt */

enum phase { PHASE_REQUEST, PHASE_POLL };

/* One attempt's requests. Freed through its timer's close callback. */
struct call {
	struct attempt *a;
	const struct http_config *c;
	struct http *http;
	struct http_transfer *t; /* in flight, or NULL */
	uv_timer_t timer;        /* the next poll */
	char *key_header;        /* owned: "Idempotency-Key: ..." */
	char **secrets;          /* owned, NULL-terminated: values to mask */
	long timeout_ms;         /* of the main request */
	enum phase phase;
	long polls;      /* poll answers seen */
	int poll_errors; /* failed polls in a row */
	json_t *last;    /* owned: the polled value last reported, or NULL */
	int notices;     /* Notices this process recorded, at most NOTICES_MAX */
	long status;     /* of the request (0 when reattached in the poll phase) */
};

static void call_close_cb(uv_handle_t *h)
{
	struct call *r = h->data;
	for (size_t i = 0; r->secrets && r->secrets[i]; i++)
		free(r->secrets[i]);
	free(r->secrets);
	free(r->key_header);
	json_decref(r->last);
	free(r);
}

static void call_free(struct call *r)
{
	if (r->t)
		http_cancel(r->t);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, call_close_cb);
}

/* Text from outside for the history: at most keep bytes, NULs shown as ?,
 * valid UTF-8, secrets masked. Caller owns. */
static json_t *safe_text(const struct call *r, const char *data, size_t len, size_t keep)
{
	char *text = xmemdup0(data, len < keep ? len : keep);
	size_t n = len < keep ? len : keep;
	for (size_t i = 0; i < n; i++)
		if (text[i] == '\0')
			text[i] = '?';
	utf8_sanitize(text);
	text = runner_mask(text, r->secrets);
	json_t *j = json_string(text);
	free(text);
	return j ? j : json_string("");
}

/* Ends the attempt with details (taken); ok or with error, a message whose
 * secrets are masked here. */
static void finish(struct call *r, bool ok, json_t *details, const char *error)
{
	struct attempt *a = r->a;
	if (!details)
		details = json_object();
	if (error)
		json_object_set_new(details, "error", safe_text(r, error, strlen(error), 4096));
	call_free(r);
	attempt_ended(a, ok, details);
}

/* {"status", "body", "bodyBytes"} of an answer. */
static json_t *answer_details(const struct call *r, const struct http_response *res)
{
	json_t *d = json_object();
	json_object_set_new(d, "status", json_integer(res->status));
	json_object_set_new(d, "body", safe_text(r, res->body, res->len, BODY_KEEP));
	json_object_set_new(d, "bodyBytes", json_integer((json_int_t)res->len));
	return d;
}

static void send_request(struct call *r, bool poll);

static void poll_now(uv_timer_t *t)
{
	send_request(t->data, true);
}

static void poll_later(struct call *r)
{
	uv_timer_start(&r->timer, poll_now, (uint64_t)r->c->interval_ms, 0);
}

/* The polled value for the output: itself, or (as a string) its JSON cut to
 * VALUE_KEEP bytes when it is long or holds a secret; secrets masked. */
static json_t *value_for_output(const struct call *r, const json_t *v)
{
	if (json_is_string(v))
		return safe_text(r, json_string_value(v), json_string_length(v), VALUE_KEEP);
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = text ? strlen(text) : 0;
	char *masked = runner_mask(xstrdup(text ? text : ""), r->secrets);
	json_t *out = n > VALUE_KEEP || strcmp(masked, text ? text : "") != 0
	                  ? safe_text(r, text ? text : "", n, VALUE_KEEP)
	                  : json_deep_copy(v);
	free(masked);
	free(text);
	return out;
}

static const char *poll_url(const struct call *r)
{
	return r->c->poll_url ? r->c->poll_url : r->c->url;
}

/* One poll answer: fails, succeeds or polls again. */
static void poll_answer(struct call *r, const struct http_response *res)
{
	const struct http_config *c = r->c;
	struct strbuf msg = STRBUF_INIT;
	bool transient = res->error || res->status >= 500 || res->status == 429;
	if (res->error || res->status < 200 || res->status > 299) {
		if (res->error)
			strbuf_addf(&msg, "poll GET %s: %s", poll_url(r), res->error);
		else
			strbuf_addf(&msg, "poll GET %s: HTTP %ld, expected 2xx", poll_url(r),
			            res->status);
		if (transient && ++r->poll_errors < POLL_ERRORS_MAX) {
			strbuf_release(&msg);
			poll_later(r);
			return;
		}
		if (transient)
			strbuf_addf(&msg, " (%d polls in a row failed)", POLL_ERRORS_MAX);
		finish(r, false, res->error ? NULL : answer_details(r, res), msg.buf);
		strbuf_release(&msg);
		return;
	}
	r->poll_errors = 0;
	r->polls++;
	json_error_t jerr;
	json_t *doc = json_loadb(res->body, res->len, JSON_DECODE_ANY, &jerr);
	if (!doc) {
		const char *type = http_header(res, "Content-Type");
		strbuf_addf(&msg,
		            "poll GET %s: the answer is not JSON (%s%s%s), so %s cannot be read",
		            poll_url(r), type ? "Content-Type " : "", type ? type : "",
		            type ? "" : jerr.text, c->until.pointer);
		finish(r, false, answer_details(r, res), msg.buf);
		strbuf_release(&msg);
		return;
	}
	json_t *value = http_json_pointer(doc, c->until.pointer);
	json_t *failv = c->fail_when.equals ? http_json_pointer(doc, c->fail_when.pointer) : NULL;
	bool done = http_value_matches(value, c->until.equals);
	bool failed = !done && http_value_matches(failv, c->fail_when.equals);
	if (done || failed) {
		json_t *d = answer_details(r, res);
		json_t *shown = failed ? failv : value;
		json_object_set_new(d, "value", value_for_output(r, shown));
		json_object_set_new(d, "polls", json_integer(r->polls));
		if (failed) {
			char *text = json_dumps(failv, JSON_COMPACT | JSON_ENCODE_ANY);
			strbuf_addf(&msg, "poll GET %s: %s is %.200s (failWhen)", poll_url(r),
			            c->fail_when.pointer, text ? text : "?");
			free(text);
		}
		json_decref(doc);
		finish(r, done, d, failed ? msg.buf : NULL);
		strbuf_release(&msg);
		return;
	}
	/* Still waiting: a Notice when the value changes, for `show` and the
	 * live view (one per change, not one per poll). */
	if (r->notices < NOTICES_MAX && (!r->last || !value || !json_equal(r->last, value))) {
		r->notices++;
		json_decref(r->last);
		r->last = value ? json_deep_copy(value) : json_null();
		json_t *notice = json_object();
		json_object_set_new(notice, "value",
		                    value ? value_for_output(r, value) : json_null());
		json_object_set_new(notice, "polls", json_integer(r->polls));
		attempt_progress(r->a, notice);
	}
	json_decref(doc);
	strbuf_release(&msg);
	poll_later(r);
}

/* The answer to the step's own request. */
static void request_answer(struct call *r, const struct http_response *res)
{
	const struct http_config *c = r->c;
	struct strbuf msg = STRBUF_INIT;
	if (res->error) {
		strbuf_addf(&msg, "%s %s: %s", c->method, c->url, res->error);
		finish(r, false, NULL, msg.buf);
		strbuf_release(&msg);
		return;
	}
	if (!http_status_in(&c->expect, res->status)) {
		strbuf_addf(&msg, "%s %s: HTTP %ld, expected ", c->method, c->url, res->status);
		http_status_describe(&c->expect, &msg);
		finish(r, false, answer_details(r, res), msg.buf);
		strbuf_release(&msg);
		return;
	}
	strbuf_release(&msg);
	if (!c->poll) {
		finish(r, true, answer_details(r, res), NULL);
		return;
	}
	/* The request is done: from now on a later process polls, it never
	 * sends the request again. */
	r->phase = PHASE_POLL;
	r->status = res->status;
	json_t *handle =
	    json_pack("{sssssosIso}", "phase", "poll", "method", c->method, "url",
	              safe_text(r, c->url, strlen(c->url), 8192), "status", (json_int_t)res->status,
	              "pollUrl", safe_text(r, poll_url(r), strlen(poll_url(r)), 8192));
	attempt_started(r->a, handle);
	if (!c->poll_url) /* a GET step: its answer is the first poll */
		poll_answer(r, res);
	else
		send_request(r, true);
}

static void answered(void *arg, const struct http_response *res)
{
	struct call *r = arg;
	r->t = NULL;
	if (r->phase == PHASE_POLL)
		poll_answer(r, res);
	else
		request_answer(r, res);
}

/* Sends the step's request, or with poll a GET of the poll URL. */
static void send_request(struct call *r, bool poll)
{
	const struct http_config *c = r->c;
	CURL *easy = curl_easy_init();
	if (!easy) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	struct curl_slist *h = NULL;
	curl_easy_setopt(easy, CURLOPT_URL, poll ? poll_url(r) : c->url);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "steppy/" STEPPY_VERSION);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 r->timeout_ms < 10000 ? r->timeout_ms : 10000L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, poll ? c->request_timeout_ms : r->timeout_ms);
	if (c->follow_redirects) {
		curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(easy, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
		curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	for (size_t i = 0; i < c->nheaders; i++)
		h = curl_slist_append(h, c->headers[i]);
	if (!poll) {
		if (!strcmp(c->method, "HEAD"))
			curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
		else if (strcmp(c->method, "GET") != 0)
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method);
		if (c->body || !strcmp(c->method, "POST")) {
			curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
			                 (curl_off_t)c->body_len);
			curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, c->body ? c->body : "");
			if (c->body && !c->has_content_type)
				h = curl_slist_append(
				    h, c->body_json ? "Content-Type: application/json"
				                    : "Content-Type: text/plain; charset=utf-8");
		}
		if (r->key_header)
			h = curl_slist_append(h, r->key_header);
		h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
	}
	r->t = http_send(r->http, easy, h, answered, r);
}

int http_run_start(struct attempt *a, const struct attempt_info *info, const void *config,
                   void **ret_state, struct strbuf *err)
{
	const struct http_config *c = config;
	if (!info->svc->http) {
		strbuf_addstr(err, "this steppy has no HTTP client to run Http steps with");
		return SP_EINVAL;
	}
	struct call *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->c = c;
	r->http = info->svc->http;
	size_t n = 0, nc = 0;
	while (info->secret_values && info->secret_values[n])
		n++;
	while (c->secrets && c->secrets[nc])
		nc++;
	r->secrets = xcalloc(n + nc + 1, sizeof(*r->secrets));
	for (size_t i = 0; i < n; i++)
		r->secrets[i] = xstrdup(info->secret_values[i]);
	for (size_t i = 0; i < nc; i++)
		r->secrets[n + i] = xstrdup(c->secrets[i]);
	if (info->idempotency_key)
		r->key_header = xstrfmt("Idempotency-Key: %s", info->idempotency_key);
	/* The request's own limit, within the step's: no StepStarted is
	 * recorded during the request, so the engine's timer does not run yet. */
	int64_t step_ms = info->step_plan->timeout_seconds * 1000;
	r->timeout_ms =
	    step_ms && step_ms < c->request_timeout_ms ? (long)step_ms : c->request_timeout_ms;
	uv_timer_init(info->svc->loop, &r->timer);
	r->timer.data = r;
	*ret_state = r;
	const char *phase = json_string_value(json_object_get(info->handle, "phase"));
	if (info->reattaching && phase && !strcmp(phase, "poll")) {
		r->phase = PHASE_POLL;
		send_request(r, true);
		return 0;
	}
	if (info->reattaching && !c->idempotent) {
		char *msg = xstrfmt(
		    "interrupted: steppy stopped while the %s request to %s was in "
		    "flight; it may have reached the server, so it is not sent again "
		    "(it carried Idempotency-Key: %s)",
		    c->method, c->url, info->idempotency_key ? info->idempotency_key : "none");
		finish(r, false, NULL, msg);
		free(msg);
		return 0;
	}
	send_request(r, false);
	return 0;
}

void http_run_cancel(struct attempt *a, void *state)
{
	(void)a;
	struct call *r = state;
	const char *what = r->phase == PHASE_POLL ? "cancelled while polling"
	                   : r->c->idempotent     ? "cancelled during the request"
	                                          : "cancelled during the request (it may have "
	                                            "reached the server)";
	finish(r, false, json_pack("{ss}", "error", what), NULL);
}

/* The process stops: the next one polls again, or decides about the request
 * (see the top of this file). */
void http_run_detach(void *state)
{
	call_free(state);
}
