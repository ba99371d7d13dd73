/*
 * http.c - the Http step type: send one HTTP request (method, URL,
 * headers, body), check its status, and optionally poll a URL with GET
 * until a field of its JSON answer has a wanted value.
 *
 * The request goes through the process's HTTP client (http/http.h, libcurl
 * on the runtime's loop: nothing blocks). Every request is bounded:
 * requestTimeoutSeconds (and the step's own timeout), at most 16 MiB of
 * answer (http.c's cap), redirects off unless followRedirects (then at most
 * 5, http and https only), TLS verified. The step's output holds the
 * status, the first BODY_KEEP bytes of the answer and the polled value,
 * with secret values masked (the plan's `secret: true` header values and
 * the variables that went into them, and the process's secrets).
 *
 * Durability (STEP_REATTACH; docs/plan-format.md, "Http"):
 *   - The request carries the attempt's idempotency key as the
 *     Idempotency-Key header.
 *   - No StepStarted is recorded while the request is in flight. If the
 *     process dies then, the next one cannot know whether the request
 *     reached the server: GET, HEAD, PUT and DELETE (idempotent methods)
 *     are sent again with the same key; POST and PATCH are not, and the
 *     attempt fails saying so (the step's retry policy then decides, with a
 *     new attempt and key).
 *   - Once the answer is accepted and the step polls, StepStarted records
 *     {"phase": "poll"}: a later process polls again (GET is safe), it
 *     never sends the request again.
 */
#include "steps/http-step.h"

#include "http/http.h"
#include "plan/doc-json.h"
#include "runtime/runner.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/utf8.h"
#include "util/version.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_REQUEST_TIMEOUT_S 30
#define DEFAULT_POLL_INTERVAL_S   10
#define MAX_REDIRECTS             5L
#define BODY_KEEP                 2048 /* bytes of an answer kept in the output */
#define VALUE_KEEP                1024 /* bytes of a polled value kept in the output */
#define POLL_ERRORS_MAX           3    /* failed polls in a row tolerated */
#define MASK_MIN                  6    /* shorter secrets would mask ordinary words */
#define NOTICES_MAX               100  /* changes of the polled value recorded per attempt */

/* ---- pure rules (http-step.h) --------------------------------------------- */

int http_status_parse(const char *s, int *lo, int *hi)
{
	if (strlen(s) != 3 || s[0] < '1' || s[0] > '5')
		return -1;
	if ((s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
		*lo = (s[0] - '0') * 100;
		*hi = *lo + 99;
		return 0;
	}
	if (s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9')
		return -1;
	*lo = *hi = atoi(s);
	return 0;
}

bool http_status_in(const struct http_status_set *set, long status)
{
	for (size_t i = 0; i < set->n; i++)
		if (status >= set->r[i].lo && status <= set->r[i].hi)
			return true;
	return false;
}

void http_status_describe(const struct http_status_set *set, struct strbuf *out)
{
	for (size_t i = 0; i < set->n; i++) {
		if (i)
			strbuf_addstr(out, i + 1 == set->n ? " or " : ", ");
		if (set->r[i].lo == set->r[i].hi)
			strbuf_addf(out, "%d", set->r[i].lo);
		else
			strbuf_addf(out, "%dxx", set->r[i].lo / 100);
	}
}

json_t *http_json_pointer(json_t *doc, const char *pointer)
{
	if (!*pointer)
		return doc;
	if (*pointer != '/')
		return NULL;
	json_t *cur = doc;
	const char *p = pointer;
	struct strbuf seg = STRBUF_INIT;
	while (cur && *p == '/') {
		p++;
		strbuf_reset(&seg);
		for (; *p && *p != '/'; p++) {
			if (*p == '~') {
				if (p[1] != '0' && p[1] != '1') {
					cur = NULL;
					break;
				}
				strbuf_addch(&seg, p[1] == '0' ? '~' : '/');
				p++;
			} else {
				strbuf_addch(&seg, *p);
			}
		}
		if (!cur)
			break;
		if (json_is_object(cur)) {
			cur = json_object_get(cur, seg.buf);
		} else if (json_is_array(cur)) {
			/* an index: digits without a leading zero ("0" itself excepted) */
			size_t n = seg.len;
			if (!n || strspn(seg.buf, "0123456789") != n ||
			    (n > 1 && seg.buf[0] == '0') || n > 9) {
				cur = NULL;
				break;
			}
			cur = json_array_get(cur, (size_t)atol(seg.buf));
		} else {
			cur = NULL;
		}
	}
	strbuf_release(&seg);
	return cur;
}

static bool value_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b);
	return json_equal((json_t *)a, (json_t *)b);
}

bool http_value_matches(const json_t *value, const json_t *expected)
{
	if (!value || !expected)
		return false;
	if (!json_is_array(expected))
		return value_equal(value, expected);
	size_t i;
	json_t *item;
	json_array_foreach(expected, i, item)
	{
		if (value_equal(value, item))
			return true;
	}
	return false;
}

/* ---- the fields ------------------------------------------------------------ */

static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL };

/* An http:// or https:// URL with a host, no spaces or control characters. */
static void check_url(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value) || !*s)
		return;
	const char *rest = !strncmp(s, "http://", 7)    ? s + 7
	                   : !strncmp(s, "https://", 8) ? s + 8
	                                                : NULL;
	if (!rest) {
		v_error(v, value->pos, NULL, "\"%.80s\" is not an http:// or https:// URL", s);
		return;
	}
	for (size_t i = 0; i < value->u.string.len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= 0x20 || c == 0x7F) {
			v_error(v, value->pos, NULL,
			        "a URL may not contain spaces or control characters (write a "
			        "space as %%20)");
			return;
		}
	}
	if (!*rest || *rest == '/' || *rest == '?' || *rest == '#' || *rest == ':')
		v_error(v, value->pos, NULL, "\"%.80s\" names no host", s);
}

/* A header name: an RFC 9110 token. */
#define TOKEN_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~"

/* Headers steppy sets itself, or that would let a plan break the request. */
static const char *const reserved_headers[] = {
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Idempotency-Key", "Expect",
	NULL
};

static void check_header_value(struct vctx *v, const struct doc_node *value)
{
	if (value->kind != DOC_STRING || v_deferred(v, value))
		return;
	for (size_t i = 0; i < value->u.string.len; i++) {
		unsigned char c = (unsigned char)value->u.string.s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7F) {
			v_error(v, value->pos, NULL,
			        "a header value may not contain line breaks or control characters");
			return;
		}
	}
}

static void check_headers(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "value", .types = T_STRING, .flags = F_REQUIRED, .max_len = 8192 },
		{ .name = "secret", .types = T_BOOL },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (!m->key_len || m->key_len > 256 || strlen(m->key) != m->key_len ||
		    !str_all_in(m->key, TOKEN_CHARS)) {
			v_error(v, m->key_pos, NULL,
			        "\"%.60s\" is not a header name (letters, digits and "
			        "!#$%%&'*+-.^_`|~)",
			        m->key);
		} else {
			for (size_t k = 0; reserved_headers[k]; k++)
				if (!strcasecmp(m->key, reserved_headers[k]))
					v_error(v, m->key_pos, NULL,
					        "steppy sets the %s header itself",
					        reserved_headers[k]);
			for (size_t j = 0; j < i; j++)
				if (!strcasecmp(m->key, value->u.object.members[j].key)) {
					v_error(v, m->key_pos, NULL,
					        "header \"%s\" is given twice (names ignore case)",
					        m->key);
					break;
				}
		}
		const struct doc_node *hv = m->value;
		if (hv->kind == DOC_STRING) {
			check_header_value(v, hv);
		} else if (hv->kind == DOC_OBJECT) {
			if (schema_check_object(v, hv, tables, "a header value")) {
				const struct doc_node *inner = doc_get(hv, "value");
				if (inner && inner->kind == DOC_STRING) {
					size_t s2 = v_push(v, "value");
					check_header_value(v, inner);
					v_pop(v, s2);
				}
			}
		} else {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, hv);
			v_error(v, hv->pos, NULL,
			        "a header value must be a string or {\"value\": ..., \"secret\": "
			        "true}, found %s",
			        found.buf);
			strbuf_release(&found);
		}
		v_pop(v, saved);
	}
}

static void check_status_item(struct vctx *v, const struct doc_node *item)
{
	int lo, hi;
	if (item->kind == DOC_NUMBER) {
		if (!item->u.number.is_integer || item->u.number.integer < 100 ||
		    item->u.number.integer > 599)
			v_error(v, item->pos, NULL,
			        "an HTTP status is a whole number from 100 to 599");
		return;
	}
	if (item->kind == DOC_STRING) {
		if (!v_deferred(v, item) && http_status_parse(item->u.string.s, &lo, &hi) < 0)
			v_error(v, item->pos, NULL,
			        "\"%.20s\" is not an HTTP status (\"201\") or class (\"2xx\")",
			        item->u.string.s);
		return;
	}
	struct strbuf found = STRBUF_INIT;
	describe_found(&found, item);
	v_error(v, item->pos, NULL,
	        "an expected status is a number (201) or a class (\"2xx\"), found %s", found.buf);
	strbuf_release(&found);
}

static void check_expect(struct vctx *v, const struct doc_node *value)
{
	if (value->kind != DOC_ARRAY) {
		check_status_item(v, value);
		return;
	}
	if (value->u.array.len > HTTP_STATUS_MAX_RANGES) {
		v_error(v, value->pos, NULL, "at most %d expected statuses",
		        HTTP_STATUS_MAX_RANGES);
		return;
	}
	for (size_t i = 0; i < value->u.array.len; i++) {
		size_t saved = v_push_index(v, i);
		check_status_item(v, value->u.array.items[i]);
		v_pop(v, saved);
	}
}

static void check_pointer(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (v_deferred(v, value) || !*s)
		return;
	if (*s != '/') {
		v_error(v, value->pos, NULL,
		        "\"%.60s\" is not a JSON pointer (\"/status\", \"/items/0/state\"; \"\" "
		        "for the whole answer)",
		        s);
		return;
	}
	for (const char *p = s; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1') {
			v_error(v, value->pos, NULL,
			        "in a JSON pointer ~ must be followed by 0 (for ~) or 1 (for /)");
			return;
		}
}

/* A value, or a list of values (one must be equal); "" and {} are values. */
static void check_equals(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_ARRAY && !value->u.array.len)
		v_error(v, value->pos, NULL, "an empty list of values matches nothing");
}

static const struct field_spec rule_fields[] = {
	{ .name = "pointer", .types = T_STRING, .flags = F_REQUIRED, .check = check_pointer },
	{ .name = "equals", .types = T_ANY, .flags = F_REQUIRED, .check = check_equals },
	{ .name = NULL },
};

static void check_rule(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec *const tables[] = { rule_fields, NULL };
	schema_check_object(v, value, tables, "a poll rule");
}

static const struct field_spec poll_fields[] = {
	{ .name = "intervalSeconds",
	  .types = T_INTEGER,
	  .min = 1,
	  .max = 86400,
	  .unit = "seconds" },
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 8192,
	  .check = check_url },
	{ .name = "until", .types = T_OBJECT, .flags = F_REQUIRED, .check = check_rule },
	{ .name = "failWhen", .types = T_OBJECT, .check = check_rule },
	{ .name = NULL },
};

static void check_poll(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec *const tables[] = { poll_fields, NULL };
	schema_check_object(v, value, tables, "a poll");
}

static void check_body(struct vctx *v, const struct doc_node *value)
{
	check_unique_keys(v, value, "the body");
}

static const struct field_spec http_fields[] = {
	{ .name = "method", .types = T_STRING, .choices = methods },
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 8192,
	  .check = check_url },
	{ .name = "headers", .types = T_OBJECT, .check = check_headers },
	{ .name = "body", .types = T_STRING | T_OBJECT | T_ARRAY, .check = check_body },
	{ .name = "expectStatus",
	  .types = T_INTEGER | T_STRING | T_ARRAY,
	  .flags = F_NONEMPTY,
	  .check = check_expect },
	{ .name = "requestTimeoutSeconds",
	  .types = T_INTEGER,
	  .min = 1,
	  .max = 3600,
	  .unit = "seconds" },
	{ .name = "followRedirects", .types = T_BOOL },
	{ .name = "poll", .types = T_OBJECT, .check = check_poll },
	{ .name = NULL },
};

static const char *method_of(const struct doc_node *step)
{
	const char *m = step_string(step, "method");
	return m ? m : "GET";
}

static void validate_http(struct vctx *v, const struct doc_node *step)
{
	const char *method = step_string(step, "method");
	const struct doc_member *body = doc_member(step, "body");
	const struct doc_member *poll = doc_member(step, "poll");
	bool known = !method || !strcmp(method, "GET") || !strcmp(method, "HEAD") ||
	             !strcmp(method, "POST") || !strcmp(method, "PUT") ||
	             !strcmp(method, "PATCH") || !strcmp(method, "DELETE");
	if (!known)
		return; /* reported by the field table */
	const char *m = method ? method : "GET";
	if (body && (!strcmp(m, "GET") || !strcmp(m, "HEAD"))) {
		size_t saved = v_push(v, "body");
		v_error(v, body->key_pos, NULL, "a %s request has no body", m);
		v_pop(v, saved);
	}
	if (poll && poll->value->kind == DOC_OBJECT && !doc_get(poll->value, "url") &&
	    strcmp(m, "GET") != 0) {
		size_t saved = v_push(v, "poll");
		v_error(v, poll->key_pos, NULL,
		        "polls are GET requests: a %s step that polls names the URL to poll "
		        "(poll.url); its own request is sent once",
		        m);
		v_pop(v, saved);
	}
}

/* True if the header value is written as {"value": ..., "secret": true}. */
static bool header_secret(const struct doc_node *hv)
{
	const struct doc_node *s = hv->kind == DOC_OBJECT ? doc_get(hv, "secret") : NULL;
	return s && s->kind == DOC_BOOL && s->u.boolean;
}

static const char *header_text(const struct doc_node *hv)
{
	return hv->kind == DOC_STRING ? hv->u.string.s : step_string(hv, "value");
}

static void describe_rule(struct strbuf *out, const char *label, const struct doc_node *rule)
{
	json_t *eq = doc_to_json(doc_get(rule, "equals"));
	char *text = json_dumps(eq, JSON_COMPACT | JSON_ENCODE_ANY);
	describe_line(out, label, "%s %s %s", step_string(rule, "pointer"),
	              json_is_array(eq) ? "is one of" : "is", text ? text : "?");
	free(text);
	json_decref(eq);
}

static void describe_http(const struct doc_node *step, struct strbuf *out)
{
	describe_line(out, "request", "%s %s", method_of(step), step_string(step, "url"));
	const struct doc_node *headers = doc_get(step, "headers");
	for (size_t i = 0; headers && i < headers->u.object.len; i++) {
		const struct doc_member *m = &headers->u.object.members[i];
		describe_line(out, i ? "" : "headers", "%s: %s", m->key,
		              header_secret(m->value) ? "****" : header_text(m->value));
	}
	const struct doc_node *body = doc_get(step, "body");
	if (body && body->kind == DOC_STRING) {
		describe_line(out, "body", "%zu bytes of text", body->u.string.len);
	} else if (body) {
		json_t *j = doc_to_json(body);
		char *text = json_dumps(j, JSON_COMPACT);
		size_t n = text ? strlen(text) : 0;
		describe_line(out, "body", "%.*s%s (JSON)", (int)(n > 80 ? 80 : n),
		              text ? text : "", n > 80 ? "..." : "");
		free(text);
		json_decref(j);
	}
	const struct doc_node *expect = doc_get(step, "expectStatus");
	struct strbuf ex = STRBUF_INIT;
	if (!expect) {
		strbuf_addstr(&ex, "2xx");
	} else {
		size_t n = expect->kind == DOC_ARRAY ? expect->u.array.len : 1;
		for (size_t i = 0; i < n; i++) {
			const struct doc_node *item =
			    expect->kind == DOC_ARRAY ? expect->u.array.items[i] : expect;
			if (i)
				strbuf_addstr(&ex, i + 1 == n ? " or " : ", ");
			if (item->kind == DOC_NUMBER)
				strbuf_addf(&ex, "%lld", (long long)item->u.number.integer);
			else
				strbuf_addstr(&ex, item->u.string.s);
		}
	}
	describe_line(out, "expects", "status %s", ex.buf);
	strbuf_release(&ex);
	const struct doc_node *poll = doc_get(step, "poll");
	if (poll) {
		const struct doc_node *iv = doc_get(poll, "intervalSeconds");
		const char *purl = step_string(poll, "url");
		describe_line(
		    out, "polls", "GET %s every %llds", purl ? purl : step_string(step, "url"),
		    iv ? (long long)iv->u.number.integer : (long long)DEFAULT_POLL_INTERVAL_S);
		describe_rule(out, "until", doc_get(poll, "until"));
		if (doc_get(poll, "failWhen"))
			describe_rule(out, "fails when", doc_get(poll, "failWhen"));
	}
}

/* ---- configuration -------------------------------------------------------- */

/* A poll rule, read once: where to look and what to compare. */
struct http_rule {
	const char *pointer; /* borrowed from the plan */
	json_t *equals;      /* owned: a value, or an array of values */
};

/* An Http step, read once when the plan is built. Strings are borrowed from
 * the plan unless marked owned. */
struct http_config {
	const char *method;
	const char *url;
	char **headers; /* owned: "Name: value" lines, nheaders of them */
	size_t nheaders;
	char **secrets; /* owned, NULL-terminated: secret header values (and their
	                   last word: the token of "Bearer TOKEN") */
	char *body;     /* owned: the body as sent, or NULL */
	size_t body_len;
	bool body_json;        /* body came as JSON: Content-Type application/json */
	bool has_content_type; /* the plan sets Content-Type itself */
	struct http_status_set expect;
	long request_timeout_ms;
	bool follow_redirects;
	bool idempotent; /* GET, HEAD, PUT, DELETE: safe to send again */
	bool poll;
	const char *poll_url; /* or NULL: the step's own URL (a GET step) */
	long interval_ms;
	struct http_rule until, fail_when; /* fail_when.equals NULL when absent */
};

static void add_secret(struct http_config *c, size_t *n, const char *s)
{
	if (strlen(s) < MASK_MIN)
		return;
	c->secrets = xreallocarray(c->secrets, *n + 2, sizeof(*c->secrets));
	c->secrets[(*n)++] = xstrdup(s);
	c->secrets[*n] = NULL;
}

static void add_status(struct http_status_set *set, const struct doc_node *item)
{
	int lo = 0, hi = 0;
	if (item->kind == DOC_NUMBER)
		lo = hi = (int)item->u.number.integer;
	else if (http_status_parse(item->u.string.s, &lo, &hi) < 0)
		return;
	if (set->n < HTTP_STATUS_MAX_RANGES) {
		set->r[set->n].lo = lo;
		set->r[set->n].hi = hi;
		set->n++;
	}
}

static void bind_rule(struct http_rule *r, const struct doc_node *rule)
{
	if (!rule)
		return;
	r->pointer = step_string(rule, "pointer");
	r->equals = doc_to_json(doc_get(rule, "equals"));
}

static void *bind_http(const struct doc_node *step)
{
	struct http_config *c = xcalloc(1, sizeof(*c));
	c->method = method_of(step);
	c->url = step_string(step, "url");
	c->idempotent = strcmp(c->method, "POST") != 0 && strcmp(c->method, "PATCH") != 0;
	const struct doc_node *headers = doc_get(step, "headers");
	size_t nsecrets = 0;
	c->secrets = xcalloc(1, sizeof(*c->secrets));
	if (headers && headers->u.object.len) {
		c->headers = xcalloc(headers->u.object.len, sizeof(*c->headers));
		for (size_t i = 0; i < headers->u.object.len; i++) {
			const struct doc_member *m = &headers->u.object.members[i];
			const char *value = header_text(m->value);
			/* curl drops a header written "Name:" with nothing after it;
			 * "Name;" sends it empty */
			c->headers[c->nheaders++] = value && *value
			                                ? xstrfmt("%s: %s", m->key, value)
			                                : xstrfmt("%s;", m->key);
			if (!strcasecmp(m->key, "Content-Type"))
				c->has_content_type = true;
			if (header_secret(m->value) && value) {
				add_secret(c, &nsecrets, value);
				const char *last = strrchr(value, ' ');
				if (last)
					add_secret(c, &nsecrets, last + 1);
			}
		}
	}
	const struct doc_node *body = doc_get(step, "body");
	if (body && body->kind == DOC_STRING) {
		c->body = xmemdup0(body->u.string.s, body->u.string.len);
		c->body_len = body->u.string.len;
	} else if (body) {
		json_t *j = doc_to_json(body);
		c->body = json_dumps(j, JSON_COMPACT);
		c->body_len = c->body ? strlen(c->body) : 0;
		c->body_json = true;
		json_decref(j);
	}
	const struct doc_node *expect = doc_get(step, "expectStatus");
	if (!expect) {
		c->expect.n = 1;
		c->expect.r[0].lo = 200;
		c->expect.r[0].hi = 299;
	} else if (expect->kind == DOC_ARRAY) {
		for (size_t i = 0; i < expect->u.array.len; i++)
			add_status(&c->expect, expect->u.array.items[i]);
	} else {
		add_status(&c->expect, expect);
	}
	const struct doc_node *rt = doc_get(step, "requestTimeoutSeconds");
	c->request_timeout_ms = 1000L * (rt && rt->kind == DOC_NUMBER ? (long)rt->u.number.integer
	                                                              : DEFAULT_REQUEST_TIMEOUT_S);
	const struct doc_node *fr = doc_get(step, "followRedirects");
	c->follow_redirects = fr && fr->kind == DOC_BOOL && fr->u.boolean;
	const struct doc_node *poll = doc_get(step, "poll");
	if (poll) {
		c->poll = true;
		c->poll_url = step_string(poll, "url");
		const struct doc_node *iv = doc_get(poll, "intervalSeconds");
		c->interval_ms = 1000L * (iv && iv->kind == DOC_NUMBER ? (long)iv->u.number.integer
		                                                       : DEFAULT_POLL_INTERVAL_S);
		bind_rule(&c->until, doc_get(poll, "until"));
		bind_rule(&c->fail_when, doc_get(poll, "failWhen"));
	}
	return c;
}

static void free_http(void *config)
{
	struct http_config *c = config;
	if (!c)
		return;
	for (size_t i = 0; i < c->nheaders; i++)
		free(c->headers[i]);
	free(c->headers);
	for (size_t i = 0; c->secrets && c->secrets[i]; i++)
		free(c->secrets[i]);
	free(c->secrets);
	free(c->body);
	json_decref(c->until.equals);
	json_decref(c->fail_when.equals);
	free(c);
}

/* ---- the runner ------------------------------------------------------------ */

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

/* Replaces every secret in text by ****; returns text or a new string (text
 * is then freed). */
static char *mask(char *text, char *const *secrets)
{
	for (size_t k = 0; secrets && secrets[k]; k++) {
		size_t n = strlen(secrets[k]);
		if (n < MASK_MIN || !strstr(text, secrets[k]))
			continue;
		struct strbuf out = STRBUF_INIT;
		const char *p = text, *hit;
		while ((hit = strstr(p, secrets[k]))) {
			strbuf_add(&out, p, (size_t)(hit - p));
			strbuf_addstr(&out, "****");
			p = hit + n;
		}
		strbuf_addstr(&out, p);
		free(text);
		text = strbuf_detach(&out, NULL);
	}
	return text;
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
	text = mask(text, r->secrets);
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

/* The polled value for the output: itself, or its JSON cut to VALUE_KEEP
 * bytes when it is long; strings masked. */
static json_t *value_for_output(const struct call *r, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t n = text ? strlen(text) : 0;
	json_t *out;
	if (json_is_string(v))
		out = safe_text(r, json_string_value(v), json_string_length(v), VALUE_KEEP);
	else if (n > VALUE_KEEP)
		out = safe_text(r, text, n, VALUE_KEEP);
	else
		out = json_deep_copy(v);
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

static int start(struct attempt *a, const struct attempt_info *info, const void *config,
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

static void cancel(struct attempt *a, void *state)
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
static void detach(void *state)
{
	call_free(state);
}

/* "the answer to its request"; polling: "/state to be "done" at URL (now
 * "running")". */
static void waiting_for(const struct doc_node *step, const struct step_view *view,
                        struct strbuf *out)
{
	const char *url = json_string_value(json_object_get(view->work, "pollUrl"));
	if (!url) {
		strbuf_addstr(out, "the answer to its request");
		return;
	}
	const struct doc_node *until = doc_get(doc_get(step, "poll"), "until");
	json_t *eq = until ? doc_to_json(doc_get(until, "equals")) : NULL;
	char *want = eq ? json_dumps(eq, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	strbuf_addf(out, "%s to be %s%.100s at %s", until ? step_string(until, "pointer") : "?",
	            json_is_array(eq) ? "one of " : "", want ? want : "?", url);
	json_t *now = json_object_get(view->progress, "value");
	if (now) {
		char *text = json_dumps(now, JSON_COMPACT | JSON_ENCODE_ANY);
		strbuf_addf(out, " (now %.100s)", text ? text : "?");
		free(text);
	}
	free(want);
	json_decref(eq);
}

static void work_summary(const json_t *work, bool brief, struct strbuf *out)
{
	const char *url = json_string_value(json_object_get(work, "pollUrl"));
	if (!url)
		return;
	strbuf_addf(out, brief ? "%s" : "polls GET %s", url);
}

const struct step_type step_http = {
	.name = "Http",
	.summary = "send an HTTP request, optionally poll until a JSON field matches",
	.flags = STEP_RETRYABLE | STEP_REATTACH | STEP_OUTPUT_ECHOES,
	.fields = http_fields,
	.validate = validate_http,
	.describe = describe_http,
	.bind = bind_http,
	.free_config = free_http,
	.start = start,
	.cancel = cancel,
	.detach = detach,
	.waiting_for = waiting_for,
	.work_summary = work_summary,
};
