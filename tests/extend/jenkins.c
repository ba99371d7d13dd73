/*
 * jenkins.c - the JenkinsJob step type: start a Jenkins job with
 * parameters, wait for its build to end; SUCCESS is success.
 *
 * This file proves that a step type is one file and one registry row:
 * tests/extend/build.sh compiles it with a copy of src/steps/registry.c
 * that has one more row and links them before libsteppy.a
 * (tests/cli/t0060-extend-step.sh runs it). Nothing else in steppy knows
 * this type.
 *
 * The protocol is Jenkins's remote API:
 *   POST {url}/job/{job}/buildWithParameters?NAME=VALUE...   201, Location: the queue item
 *   GET  {queue item}api/json        {"executable": {"number": N, "url": ...}} once it runs
 *   GET  {url}/job/{job}/{N}/api/json  {"building": bool, "result": "SUCCESS" ...}
 *   POST {url}/job/{job}/{N}/stop      abort
 * Every start carries the attempt's idempotency key as the parameter
 * STEPPY_IDEMPOTENCY_KEY; Jenkins keeps one queue item for identical
 * parameters, so starting an attempt again after a crash (before its build
 * number was recorded) finds the same build instead of starting another.
 * The build number is the handle in StepStarted (STEP_REATTACH): a later
 * process only watches it. Polls every 500 ms.
 */
#include "http/http.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 500

/* ---- the plan language ---------------------------------------------------- */

static void check_url(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (!v_deferred(v, value) && strncmp(s, "http://", 7) != 0 &&
	    strncmp(s, "https://", 8) != 0)
		v_error(v, value->pos, NULL, "\"%.60s\" is not an http:// or https:// URL", s);
}

static void check_params(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		if (m->value->kind != DOC_STRING) {
			size_t saved = v_push(v, m->key);
			v_error(v, m->value->pos, NULL,
			        "job parameters must be strings (quote it)");
			v_pop(v, saved);
		}
	}
}

static const struct field_spec jenkins_fields[] = {
	{ .name = "url", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY, .check = check_url },
	{ .name = "job", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
	{ .name = "params", .types = T_OBJECT, .check = check_params },
	{ .name = NULL },
};

static void describe_jenkins(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "job", "%s on %s", step_string(step, "job"), step_string(step, "url"));
	const struct doc_node *params = doc_get(step, "params");
	for (size_t i = 0; params && i < params->u.object.len; i++)
		describe_line(out, i ? "" : "parameters", "%s=%s", params->u.object.members[i].key,
		              params->u.object.members[i].value->u.string.s);
	describe_line(out, "waits", "until the build ends; fails unless it is SUCCESS");
}

/* ---- configuration ---------------------------------------------------------- */

struct jenkins_config {
	char *job_url; /* owned: {url}/job/{job} */
	char *query;   /* owned: the parameters, URL-encoded, without the key */
};

static void *bind_jenkins(const struct doc_node *step)
{
	struct jenkins_config *c = xcalloc(1, sizeof(*c));
	const char *url = step_string(step, "url");
	size_t n = strlen(url);
	while (n && url[n - 1] == '/')
		n--;
	char *job = curl_easy_escape(NULL, step_string(step, "job"), 0);
	c->job_url = xstrfmt("%.*s/job/%s", (int)n, url, job);
	curl_free(job);
	struct strbuf q = STRBUF_INIT;
	const struct doc_node *params = doc_get(step, "params");
	for (size_t i = 0; params && i < params->u.object.len; i++) {
		char *k = curl_easy_escape(NULL, params->u.object.members[i].key, 0);
		char *val =
		    curl_easy_escape(NULL, params->u.object.members[i].value->u.string.s, 0);
		strbuf_addf(&q, "%s=%s&", k, val);
		curl_free(k);
		curl_free(val);
	}
	c->query = strbuf_detach(&q, NULL);
	return c;
}

static void free_jenkins(void *config)
{
	struct jenkins_config *c = config;
	if (!c)
		return;
	free(c->job_url);
	free(c->query);
	free(c);
}

/* ---- the runner ------------------------------------------------------------- */

struct job_run {
	struct attempt *a;
	const struct jenkins_config *c;
	struct http *http;
	struct http_transfer *call;
	uv_timer_t timer;
	char *queue_url; /* the queue item, until the build number is known */
	long number;     /* the build number, 0 until known */
	bool report_start, cancel, stop_sent;
};

static void job_close_cb(uv_handle_t *h)
{
	struct job_run *r = h->data;
	free(r->queue_url);
	free(r);
}

static void job_free(struct job_run *r)
{
	if (r->call)
		http_cancel(r->call);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, job_close_cb);
}

static void job_end(struct job_run *r, bool ok, json_t *details)
{
	struct attempt *a = r->a;
	job_free(r);
	attempt_ended(a, ok, details);
}

static void request(struct job_run *r, const char *method, const char *url, http_done_fn done)
{
	CURL *easy = curl_easy_init();
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "");
	r->call = http_send(r->http, easy, NULL, done, r);
}

static void poll_later(struct job_run *r);

/* A failed call: the transport or a 5xx is tried again; anything else fails. */
static bool call_failed(struct job_run *r, const struct http_response *res, const char *what)
{
	if (res->status >= 200 && res->status < 400)
		return false;
	if (res->status == 0 || res->status >= 500) {
		poll_later(r);
		return true;
	}
	char *msg = xstrfmt("Jenkins %s: HTTP %ld", what, res->status);
	job_end(r, false, json_pack("{ss}", "error", msg));
	free(msg);
	return true;
}

static void send_stop(struct job_run *r);

static void build_done(void *arg, const struct http_response *res)
{
	struct job_run *r = arg;
	r->call = NULL;
	if (call_failed(r, res, "build status"))
		return;
	json_t *o = json_loadb(res->body, res->len, 0, NULL);
	const char *result = json_string_value(json_object_get(o, "result"));
	if (json_is_true(json_object_get(o, "building")) || !result) {
		json_decref(o);
		poll_later(r);
		return;
	}
	bool ok = !strcmp(result, "SUCCESS");
	json_t *details = json_pack("{sIss}", "build", (json_int_t)r->number, "result", result);
	if (!ok) {
		char *msg = xstrfmt("build %ld ended %s", r->number, result);
		json_object_set_new(details, "error", json_string(msg));
		free(msg);
	}
	json_decref(o);
	job_end(r, ok, details);
}

static void queue_done(void *arg, const struct http_response *res)
{
	struct job_run *r = arg;
	r->call = NULL;
	if (call_failed(r, res, "queue item"))
		return;
	json_t *o = json_loadb(res->body, res->len, 0, NULL);
	json_int_t n =
	    json_integer_value(json_object_get(json_object_get(o, "executable"), "number"));
	json_decref(o);
	if (n > 0) {
		r->number = (long)n;
		if (r->report_start)
			attempt_started(r->a, json_pack("{sI}", "build", n));
		if (r->cancel) {
			send_stop(r);
			return;
		}
	}
	poll_later(r);
}

static void poll_now(uv_timer_t *t)
{
	struct job_run *r = t->data;
	char *url = r->number ? xstrfmt("%s/%ld/api/json", r->c->job_url, r->number)
	                      : xstrfmt("%sapi/json", r->queue_url);
	request(r, "GET", url, r->number ? build_done : queue_done);
	free(url);
}

static void poll_later(struct job_run *r)
{
	uv_timer_start(&r->timer, poll_now, POLL_MS, 0);
}

static void stop_done(void *arg, const struct http_response *res)
{
	struct job_run *r = arg;
	r->call = NULL;
	(void)res; /* the build's status says whether it stopped */
	poll_later(r);
}

static void send_stop(struct job_run *r)
{
	r->stop_sent = true;
	char *url = xstrfmt("%s/%ld/stop", r->c->job_url, r->number);
	request(r, "POST", url, stop_done);
	free(url);
}

static void started(void *arg, const struct http_response *res)
{
	struct job_run *r = arg;
	r->call = NULL;
	const char *where = http_header(res, "Location");
	if (res->status != 201 || !where) {
		char *msg = xstrfmt("Jenkins buildWithParameters: HTTP %ld", res->status);
		job_end(r, false, json_pack("{ss}", "error", msg));
		free(msg);
		return;
	}
	size_t n = strlen(where);
	r->queue_url = xstrfmt("%s%s", where, n && where[n - 1] == '/' ? "" : "/");
	poll_later(r);
}

static int start(struct attempt *a, const struct attempt_info *info, const void *config,
                 void **ret_state, struct strbuf *err)
{
	if (!info->svc->http) {
		strbuf_addstr(err, "this steppy has no HTTP client for JenkinsJob steps");
		return SP_EINVAL;
	}
	struct job_run *r = xcalloc(1, sizeof(*r));
	r->a = a;
	r->c = config;
	r->http = info->svc->http;
	r->report_start = !info->handle; /* a recorded build is in StepStarted already */
	uv_timer_init(info->svc->loop, &r->timer);
	r->timer.data = r;
	*ret_state = r;
	json_int_t n = json_integer_value(json_object_get(info->handle, "build"));
	if (n > 0) {
		r->number = (long)n;
		poll_now(&r->timer);
		return 0;
	}
	char *key = curl_easy_escape(NULL, info->idempotency_key ? info->idempotency_key : "", 0);
	char *url = xstrfmt("%s/buildWithParameters?%sSTEPPY_IDEMPOTENCY_KEY=%s", r->c->job_url,
	                    r->c->query, key);
	curl_free(key);
	request(r, "POST", url, started);
	free(url);
	return 0;
}

static void cancel(struct attempt *a, void *state)
{
	(void)a;
	struct job_run *r = state;
	if (r->cancel)
		return;
	r->cancel = true;
	if (r->number && !r->stop_sent) {
		if (r->call) {
			http_cancel(r->call);
			r->call = NULL;
		}
		uv_timer_stop(&r->timer);
		send_stop(r);
	}
	/* Otherwise the stop is sent once the build number is known. */
}

static void detach(void *state)
{
	job_free(state);
}

const struct step_type step_jenkins = {
	.name = "JenkinsJob",
	.summary = "start a Jenkins job and wait for its build to end",
	.flags = STEP_RETRYABLE | STEP_REATTACH,
	.fields = jenkins_fields,
	.describe = describe_jenkins,
	.bind = bind_jenkins,
	.free_config = free_jenkins,
	.start = start,
	.cancel = cancel,
	.detach = detach,
};
