/*
 * http.c - the Http step type: send one HTTP request (method, URL,
 * headers, body), check its status, and optionally poll a URL with GET
 * until a field of its JSON answer has a wanted value. This file holds the
 * plan language (fields, checks, `steppy plan`'s lines), the typed config
 * and the pure rules (http-step.h); the runner is http-run.c.
 *
 * The request goes through the process's HTTP client (http/http.h, libcurl
 * on the runtime's loop: nothing blocks). Every request is bounded:
 * requestTimeoutSeconds (and the step's own timeout), at most 16 MiB of
 * answer (http.c's cap), redirects off unless followRedirects (then at most
 * 5, http and https only), TLS verified. The step's output holds the
 * status, the first 2 KiB of the answer and the polled value,
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

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_REQUEST_TIMEOUT_S 30
#define DEFAULT_POLL_INTERVAL_S   10

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
		const struct doc_node *sec = hv->kind == DOC_OBJECT ? doc_get(hv, "secret") : NULL;
		if (http_header_is_credential(m->key) &&
		    (hv->kind == DOC_STRING ||
		     (hv->kind == DOC_OBJECT && !(sec && sec->kind == DOC_BOOL && sec->u.boolean))))
			v_error(v, m->key_pos, NULL,
			        "the %s header carries a credential: write it as {value: \"...\", "
			        "secret: true} (masked in plan, history, logs and the store)",
			        m->key);
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
	for (size_t i = 0; value->kind == DOC_ARRAY && i < value->u.array.len; i++) {
		const struct doc_node *item = value->u.array.items[i];
		if (item->kind == DOC_ARRAY)
			v_error(v, item->pos, NULL,
			        "a list inside the list of values matches nothing: each item is "
			        "one value to compare with");
	}
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

static void add_secret(struct http_config *c, size_t *n, const char *s)
{
	if (strlen(s) < RUNNER_MASK_MIN)
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
	.start = http_run_start,
	.cancel = http_run_cancel,
	.detach = http_run_detach,
	.waiting_for = waiting_for,
	.work_summary = work_summary,
};
