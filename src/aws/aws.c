/*
 * aws.c - the AWS client: one call from request to answer (see aws.h).
 *
 * A call waits for its credentials (creds.c), is signed by libcurl
 * (CURLOPT_AWS_SIGV4; the traps of curl 7.88's signer are avoided by
 * building the query and the signed headers ourselves, see PITFALLS), sent
 * through http.c, and read: 2xx is success; otherwise the error code and
 * message are taken from the protocol's error shape. Throttling, 5xx,
 * broken connections and expired credentials are retried as the SDKs'
 * standard mode does: up to AWS_MAX_ATTEMPTS (3) attempts, a delay of
 * random(0, 1) * 2^n seconds capped at 20 s, and a retry quota shared by
 * the client (500 tokens, 5 per retry, 10 per timeout, 1 back per success)
 * so that an outage does not multiply the load.
 */
#include "aws/aws-internal.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <ctype.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#define RETRY_QUOTA      500.0
#define RETRY_COST       5.0
#define TIMEOUT_COST     10.0
#define MAX_BACKOFF_MS   20000.0
#define DEFAULT_ATTEMPTS 3

struct aws_call {
	struct aws *aws;
	char *service, *region, *role_arn, *external_id, *session_name;
	char *method, *path, *query, *content_type, *amz_target, *body;
	size_t len;
	char *headers[4];
	long timeout_ms;
	int max_attempts, attempt;
	bool s3;
	bool fixed_creds; /* creds given by the caller (STS for a role) */
	struct aws_creds creds;
	bool refreshed; /* credentials refreshed once after ExpiredToken */
	struct creds_wait *wait;
	struct http_transfer *transfer;
	uv_timer_t timer;
	aws_done_fn done;
	void *arg;
	struct aws_call *next;
};

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static void load_files(struct aws *aws)
{
	if (aws->files_loaded)
		return;
	aws->files_loaded = true;
	const char *home = env("HOME");
	char *config = env("AWS_CONFIG_FILE") ? xstrdup(env("AWS_CONFIG_FILE"))
	                                      : xstrfmt("%s/.aws/config", home ? home : "");
	char *creds = env("AWS_SHARED_CREDENTIALS_FILE")
	                  ? xstrdup(env("AWS_SHARED_CREDENTIALS_FILE"))
	                  : xstrfmt("%s/.aws/credentials", home ? home : "");
	ini_load(&aws->config, config);
	ini_load(&aws->credentials, creds);
	free(config);
	free(creds);
}

const char *aws_profile_value(struct aws *aws, const char *profile, const char *key)
{
	load_files(aws);
	const char *v = ini_get(&aws->credentials, profile, key);
	if (v)
		return v;
	char section[256];
	snprintf(section, sizeof(section), "profile %s", profile);
	v = ini_get(&aws->config, section, key);
	if (!v && !strcmp(profile, "default"))
		v = ini_get(&aws->config, "default", key);
	return v;
}

bool aws_profile_exists(struct aws *aws, const char *profile)
{
	load_files(aws);
	char section[256];
	snprintf(section, sizeof(section), "profile %s", profile);
	return ini_has_section(&aws->credentials, profile) ||
	       ini_has_section(&aws->config, section) ||
	       (!strcmp(profile, "default") && ini_has_section(&aws->config, "default"));
}

struct aws *aws_new(uv_loop_t *loop)
{
	struct aws *aws = xcalloc(1, sizeof(*aws));
	aws->loop = loop;
	aws->http = http_new(loop);
	aws->profile = xstrdup(env("AWS_PROFILE") ? env("AWS_PROFILE") : "default");
	aws->profile_explicit = env("AWS_PROFILE") != NULL;
	aws->retry_tokens = RETRY_QUOTA;
	return aws;
}

static void call_close_cb(uv_handle_t *h)
{
	struct aws_call *c = h->data;
	free(c->service);
	free(c->region);
	free(c->role_arn);
	free(c->external_id);
	free(c->session_name);
	free(c->method);
	free(c->path);
	free(c->query);
	free(c->content_type);
	free(c->amz_target);
	free(c->body);
	for (int i = 0; i < 4; i++)
		free(c->headers[i]);
	aws_creds_release(&c->creds);
	free(c);
}

/* Unlinks and frees a call (its timer closes first). */
static void call_free(struct aws_call *c)
{
	for (struct aws_call **p = &c->aws->calls; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, call_close_cb);
}

void aws_cancel(struct aws_call *c)
{
	if (c->wait)
		creds_wait_cancel(c->wait);
	if (c->transfer)
		http_cancel(c->transfer);
	call_free(c);
}

void aws_free(struct aws *aws)
{
	if (!aws)
		return;
	while (aws->calls)
		aws_cancel(aws->calls);
	http_free(aws->http);
	creds_release_all(aws);
	ini_release(&aws->config);
	ini_release(&aws->credentials);
	free(aws->profile);
	free(aws);
}

const char *aws_default_region(struct aws *aws)
{
	if (env("AWS_REGION"))
		return env("AWS_REGION");
	if (env("AWS_DEFAULT_REGION"))
		return env("AWS_DEFAULT_REGION");
	return aws_profile_value(aws, aws->profile, "region");
}

void aws_endpoint(struct aws *aws, const char *service, const char *region, struct strbuf *out)
{
	const char *ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
	const char *url = NULL;
	if (!ignore || strcasecmp(ignore, "true") != 0) {
		char name[64];
		int n = snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", service);
		for (int i = 17; i < n && name[i]; i++)
			name[i] = name[i] == '-' || name[i] == ' '
			              ? '_'
			              : (char)toupper((unsigned char)name[i]);
		url = env(name);
		if (!url)
			url = env("AWS_ENDPOINT_URL");
		if (!url)
			url = aws_profile_value(aws, aws->profile, "endpoint_url");
	}
	if (url) {
		size_t n = strlen(url);
		while (n && url[n - 1] == '/')
			n--;
		strbuf_add(out, url, n);
		return;
	}
	const char *suffix = !strncmp(region, "cn-", 3) ? "amazonaws.com.cn" : "amazonaws.com";
	strbuf_addf(out, "https://%s.%s.%s", service, region, suffix);
}

const char *aws_arn_region(const char *arn, char *buf, size_t size)
{
	if (strncmp(arn, "arn:", 4) != 0)
		return NULL;
	const char *r = arn;
	for (int i = 0; i < 3 && r; i++)
		r = strchr(r, ':') ? strchr(r, ':') + 1 : NULL;
	size_t n = r ? strcspn(r, ":") : 0;
	if (!n || n >= size)
		return NULL;
	memcpy(buf, r, n);
	buf[n] = '\0';
	return buf;
}

void aws_uri_encode(struct strbuf *out, const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
		    (keep_slash && *p == '/'))
			strbuf_addch(out, (char)*p);
		else {
			strbuf_addch(out, '%');
			strbuf_addch(out, hex[*p >> 4]);
			strbuf_addch(out, hex[*p & 15]);
		}
	}
}

void aws_counts(const struct aws *aws, uint64_t *calls, uint64_t *errors)
{
	*calls = aws->ncalls;
	*errors = aws->nerrors;
}

/* ---- results ---------------------------------------------------------------- */

json_t *aws_result_json(const struct aws_result *res)
{
	if (!res->len)
		return json_object();
	return json_loadb(res->body, res->len, 0, NULL);
}

char *aws_xml_text(const struct aws_result *res, const char *path)
{
	return xml_text(res->body, res->len, path);
}

void aws_result_error(const struct aws_result *res, struct strbuf *out)
{
	strbuf_addf(out, "%s", res->error_code ? res->error_code : "error");
	if (res->error_message && *res->error_message)
		strbuf_addf(out, ": %s", res->error_message);
}

/* Reads the error code and message of a failed answer in any protocol. */
static void parse_error(const struct http_response *r, char **code, char **message)
{
	*code = NULL;
	*message = NULL;
	const char *type = http_header(r, "x-amzn-ErrorType");
	if (type)
		*code = xstrndup(type, strcspn(type, ":"));
	const char *b = r->body;
	while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
		b++;
	if (*b == '{') {
		json_t *o = json_loadb(r->body, r->len, 0, NULL);
		const char *t = json_string_value(json_object_get(o, "__type"));
		if (!t)
			t = json_string_value(json_object_get(o, "code"));
		if (!t)
			t = json_string_value(json_object_get(o, "Code"));
		if (t && !*code) {
			const char *hash = strrchr(t, '#');
			t = hash ? hash + 1 : t;
			*code = xstrndup(t, strcspn(t, ":"));
		}
		const char *m = json_string_value(json_object_get(o, "message"));
		if (!m)
			m = json_string_value(json_object_get(o, "Message"));
		if (m)
			*message = xstrdup(m);
		json_decref(o);
	} else if (*b == '<') {
		char *c = xml_text(r->body, r->len, "Code");
		if (c && !*code)
			*code = c;
		else
			free(c);
		*message = xml_text(r->body, r->len, "Message");
	}
	if (!*code) {
		static const struct {
			long status;
			const char *code;
		} by_status[] = { { 400, "BadRequest" },
			          { 403, "Forbidden" },
			          { 404, "NotFound" },
			          { 429, "TooManyRequests" },
			          { 500, "InternalServerError" },
			          { 502, "BadGateway" },
			          { 503, "ServiceUnavailable" },
			          { 504, "GatewayTimeout" } };
		for (size_t i = 0; i < sizeof(by_status) / sizeof(by_status[0]); i++)
			if (by_status[i].status == r->status)
				*code = xstrdup(by_status[i].code);
		if (!*code)
			*code = xstrfmt("HTTP%ld", r->status);
	}
	if (!*message && r->len && *b != '<' && *b != '{')
		*message = xstrndup(r->body, r->len < 200 ? r->len : 200);
}

static bool throttling(const char *code)
{
	static const char *const codes[] = {
		"Throttling",
		"ThrottlingException",
		"ThrottledException",
		"RequestThrottledException",
		"TooManyRequestsException",
		"ProvisionedThroughputExceededException",
		"TransactionInProgressException",
		"RequestLimitExceeded",
		"BandwidthLimitExceeded",
		"LimitExceededException",
		"RequestThrottled",
		"SlowDown",
		"PriorRequestNotComplete",
		"EC2ThrottledException",
		NULL,
	};
	for (int i = 0; codes[i]; i++)
		if (!strcmp(code, codes[i]))
			return true;
	return false;
}

static bool transient(const char *code, long status)
{
	return status == 500 || status == 502 || status == 503 || status == 504 ||
	       !strcmp(code, "RequestTimeout") || !strcmp(code, "RequestTimeoutException") ||
	       !strcmp(code, "InternalError") || !strcmp(code, "InternalFailure") ||
	       !strcmp(code, "ServiceUnavailable");
}

static bool expired_credentials(const char *code)
{
	return !strcmp(code, "ExpiredToken") || !strcmp(code, "ExpiredTokenException") ||
	       !strcmp(code, "RequestExpired");
}

bool aws_error_retryable(const char *code, long status)
{
	return throttling(code) || transient(code, status) || !strcmp(code, "RequestError") ||
	       expired_credentials(code);
}

/* ---- one call ----------------------------------------------------------------- */

static void call_start(uv_timer_t *t);

static void finish(struct aws_call *c, const struct aws_result *res)
{
	c->aws->ncalls++;
	if (res->error_code)
		c->aws->nerrors++;
	aws_done_fn done = c->done;
	void *arg = c->arg;
	call_free(c);
	done(arg, res);
}

static void fail(struct aws_call *c, const char *code, const char *message)
{
	struct aws_result res = {
		.body = "", .error_code = code, .error_message = message, .attempts = c->attempt
	};
	finish(c, &res);
}

static double random01(void)
{
	uint32_t r;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)rand();
	return (double)r / 4294967296.0;
}

/* Schedules the next attempt if the policy allows; returns false if not. */
static bool retry_later(struct aws_call *c, double cost)
{
	struct aws *aws = c->aws;
	if (c->attempt >= c->max_attempts || aws->retry_tokens < cost)
		return false;
	aws->retry_tokens -= cost;
	int n = c->attempt - 1 < 0 ? 0 : c->attempt - 1 > 16 ? 16 : c->attempt - 1;
	double delay = random01() * (double)(1u << n) * 1000.0;
	if (delay > MAX_BACKOFF_MS)
		delay = MAX_BACKOFF_MS;
	uv_timer_start(&c->timer, call_start, (uint64_t)delay, 0);
	return true;
}

static void http_done(void *arg, const struct http_response *r)
{
	struct aws_call *c = arg;
	struct aws *aws = c->aws;
	c->transfer = NULL;
	if (r->error) {
		bool timeout = strstr(r->error, "imeout") != NULL;
		if (retry_later(c, timeout ? TIMEOUT_COST : RETRY_COST))
			return;
		/* name the endpoint: a wrong endpoint_url is the usual cause */
		struct strbuf msg = STRBUF_INIT, url = STRBUF_INIT;
		aws_endpoint(aws, c->service, c->region, &url);
		strbuf_addf(&msg, "cannot reach %s: %s", url.buf, r->error);
		fail(c, "RequestError", msg.buf);
		strbuf_release(&msg);
		strbuf_release(&url);
		return;
	}
	if (r->status >= 200 && r->status < 300) {
		aws->retry_tokens += 1.0;
		if (aws->retry_tokens > RETRY_QUOTA)
			aws->retry_tokens = RETRY_QUOTA;
		struct aws_result res = { .status = r->status,
			                  .body = r->body,
			                  .len = r->len,
			                  .http = r,
			                  .attempts = c->attempt };
		finish(c, &res);
		return;
	}
	char *code, *message;
	parse_error(r, &code, &message);
	bool again = false;
	if (expired_credentials(code) && !c->fixed_creds && !c->refreshed) {
		struct aws_target t = { .service = c->service,
			                .region = c->region,
			                .role_arn = c->role_arn,
			                .external_id = c->external_id,
			                .session_name = c->session_name };
		creds_forget(aws, &t);
		c->refreshed = true;
		c->attempt--; /* a refresh is not a retry: at once, fresh credentials */
		uv_timer_start(&c->timer, call_start, 0, 0);
		again = true;
	} else if (throttling(code) || transient(code, r->status)) {
		again = retry_later(c, RETRY_COST);
	}
	if (!again) {
		struct aws_result res = { .status = r->status,
			                  .body = r->body,
			                  .len = r->len,
			                  .http = r,
			                  .error_code = code,
			                  .error_message = message,
			                  .attempts = c->attempt };
		finish(c, &res);
	}
	free(code);
	free(message);
}

static void add_header(struct curl_slist **list, const char *fmt, const char *value)
{
	char *h = xstrfmt(fmt, value);
	*list = curl_slist_append(*list, h);
	free(h);
}

static void send_signed(struct aws_call *c, const struct aws_creds *creds)
{
	struct strbuf url = STRBUF_INIT;
	aws_endpoint(c->aws, c->service, c->region, &url);
	strbuf_addstr(&url, c->path);
	if (c->query && *c->query)
		strbuf_addf(&url, "?%s", c->query);
	CURL *easy = curl_easy_init();
	curl_easy_setopt(easy, CURLOPT_URL, url.buf);
	strbuf_release(&url);
	if (!strcmp(c->method, "HEAD"))
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	else if (!strcmp(c->method, "GET"))
		curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	else {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->len);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, c->body ? c->body : "");
		if (strcmp(c->method, "POST") != 0)
			curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, c->method);
	}
	char sigv4[160];
	snprintf(sigv4, sizeof(sigv4), "aws:amz:%s:%s", c->region, c->service);
	curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, sigv4);
	curl_easy_setopt(easy, CURLOPT_USERNAME, creds->access_key_id);
	curl_easy_setopt(easy, CURLOPT_PASSWORD, creds->secret_access_key);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	struct curl_slist *h = NULL;
	if (c->content_type)
		add_header(&h, "Content-Type: %s", c->content_type);
	if (c->amz_target)
		add_header(&h, "X-Amz-Target: %s", c->amz_target);
	if (creds->session_token)
		add_header(&h, "X-Amz-Security-Token: %s", creds->session_token);
	if (c->s3) {
		unsigned char digest[SHA256_DIGEST_LENGTH];
		char hex[2 * SHA256_DIGEST_LENGTH + 1];
		SHA256((const unsigned char *)(c->body ? c->body : ""), c->len, digest);
		for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
			snprintf(hex + 2 * i, 3, "%02x", digest[i]);
		add_header(&h, "x-amz-content-sha256: %s", hex);
	}
	for (int i = 0; i < 4 && c->headers[i]; i++)
		h = curl_slist_append(h, c->headers[i]);
	c->attempt++;
	c->transfer = http_send(c->aws->http, easy, h, http_done, c);
}

static void creds_ready(void *arg, const struct aws_creds *creds, const char *error)
{
	struct aws_call *c = arg;
	c->wait = NULL;
	if (!creds) {
		fail(c, "CredentialsError", error);
		return;
	}
	send_signed(c, creds);
}

static void call_start(uv_timer_t *t)
{
	struct aws_call *c = t->data;
	if (!c->region) {
		fail(c, "NoRegion",
		     "no AWS region: give \"region\" in the step or the plan's defaults, or set "
		     "AWS_REGION, or a region in the AWS profile");
		return;
	}
	if (c->fixed_creds) {
		send_signed(c, &c->creds);
		return;
	}
	struct aws_target target = { .service = c->service,
		                     .region = c->region,
		                     .role_arn = c->role_arn,
		                     .external_id = c->external_id,
		                     .session_name = c->session_name };
	c->wait = creds_get(c->aws, &target, creds_ready, c);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct aws_call *aws_send_with(struct aws *aws, const struct aws_target *t,
                               const struct aws_request *req, const struct aws_creds *creds,
                               aws_done_fn done, void *arg)
{
	struct aws_call *c = xcalloc(1, sizeof(*c));
	c->aws = aws;
	c->done = done;
	c->arg = arg;
	c->service = xstrdup(t->service);
	const char *region = t->region ? t->region : aws_default_region(aws);
	if (!region && !strcmp(t->service, "s3"))
		region = "us-east-1"; /* as the AWS CLI: S3 without a region is us-east-1 */
	c->region = dup_or_null(region);
	c->role_arn = dup_or_null(t->role_arn);
	c->external_id = dup_or_null(t->external_id);
	c->session_name = dup_or_null(t->session_name);
	c->method = xstrdup(req->method);
	c->path = xstrdup(req->path);
	c->query = dup_or_null(req->query);
	c->content_type = dup_or_null(req->content_type);
	c->amz_target = dup_or_null(req->amz_target);
	c->body = req->len ? xmemdup0(req->body, req->len) : NULL;
	c->len = req->len;
	for (int i = 0; i < 4 && req->headers[i]; i++)
		c->headers[i] = xstrdup(req->headers[i]);
	c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : 60000;
	const char *ma = env("AWS_MAX_ATTEMPTS");
	int max = req->max_attempts > 0 ? req->max_attempts : ma ? atoi(ma) : DEFAULT_ATTEMPTS;
	c->max_attempts = max > 0 ? max : DEFAULT_ATTEMPTS;
	c->s3 = !strcmp(t->service, "s3");
	if (creds) {
		c->fixed_creds = true;
		aws_creds_copy(&c->creds, creds);
	}
	uv_timer_init(aws->loop, &c->timer);
	c->timer.data = c;
	c->next = aws->calls;
	aws->calls = c;
	/* even a call that fails at once answers from the loop, never from
	 * inside aws_send() */
	uv_timer_start(&c->timer, call_start, 0, 0);
	return c;
}

struct aws_call *aws_send(struct aws *aws, const struct aws_target *t,
                          const struct aws_request *req, aws_done_fn done, void *arg)
{
	return aws_send_with(aws, t, req, NULL, done, arg);
}

struct aws_call *aws_json_call(struct aws *aws, const struct aws_target *t, const char *prefix,
                               const char *op, json_t *input, aws_done_fn done, void *arg)
{
	char *body = json_dumps(input, JSON_COMPACT);
	json_decref(input);
	char *target = xstrfmt("%s.%s", prefix, op);
	struct aws_request req = { .method = "POST",
		                   .path = "/",
		                   .content_type = "application/x-amz-json-1.1",
		                   .amz_target = target,
		                   .body = body,
		                   .len = strlen(body) };
	struct aws_call *c = aws_send(aws, t, &req, done, arg);
	free(target);
	free(body);
	return c;
}

struct aws_call *aws_query_call(struct aws *aws, const struct aws_target *t, const char *action,
                                const char *version, json_t *params, aws_done_fn done, void *arg)
{
	struct strbuf body = STRBUF_INIT;
	strbuf_addf(&body, "Action=%s&Version=%s", action, version);
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
	{
		strbuf_addstr(&body, "&");
		aws_uri_encode(&body, k, false);
		strbuf_addstr(&body, "=");
		aws_uri_encode(&body, json_string_value(v) ? json_string_value(v) : "", false);
	}
	json_decref(params);
	struct aws_request req = { .method = "POST",
		                   .path = "/",
		                   .content_type =
		                       "application/x-www-form-urlencoded; charset=utf-8",
		                   .body = body.buf,
		                   .len = body.len };
	struct aws_call *c = aws_send(aws, t, &req, done, arg);
	strbuf_release(&body);
	return c;
}

/* ---- one call outside the engine ------------------------------------------- */

struct sync_call {
	bool done;
	long status;
	char *body;
	size_t len;
	struct strbuf *err;
	int r;
};

static void sync_done(void *arg, const struct aws_result *res)
{
	struct sync_call *s = arg;
	s->done = true;
	s->status = res->status;
	if (res->error_code) {
		aws_result_error(res, s->err);
		s->r = -1;
	} else {
		s->body = xmemdup0(res->body, res->len);
		s->len = res->len;
	}
}

int aws_call_sync(const struct aws_target *t, const struct aws_request *req, long *ret_status,
                  char **ret_body, size_t *ret_len, struct strbuf *err)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct aws *aws = aws_new(&loop);
	struct sync_call s = { .err = err };
	aws_send(aws, t, req, sync_done, &s);
	while (!s.done && uv_run(&loop, UV_RUN_ONCE))
		;
	aws_free(aws);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	*ret_status = s.status;
	*ret_body = s.body;
	*ret_len = s.len;
	return s.r;
}
