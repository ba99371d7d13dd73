/*
 * respond.c - what handlers share about one request: its query, headers,
 * cookies and JSON body, where it comes from and who decides through it,
 * the answer (text, JSON, a JSON error), and the pool of store
 * connections for connection threads. server.c (routing, connections) and
 * every module of handlers use it; it uses none of them.
 */
#include "server/server-internal.h"

#include "server/auth.h"
#include "server/log.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/utf8.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_POOL 16 /* idle store connections kept */

/* ---- store pool -------------------------------------------------------------- */

struct store *server_store_get(struct server *srv, struct strbuf *err)
{
	pthread_mutex_lock(&srv->pool_lock);
	struct store *st = srv->npool ? srv->pool[--srv->npool] : NULL;
	pthread_mutex_unlock(&srv->pool_lock);
	if (!st && store_open(srv->store_path, &st, err) < 0)
		return NULL;
	return st;
}

void server_store_put(struct server *srv, struct store *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&srv->pool_lock);
	if (srv->npool >= MAX_POOL) {
		pthread_mutex_unlock(&srv->pool_lock);
		store_close(st);
		return;
	}
	if (srv->npool == srv->pool_cap) {
		srv->pool_cap = srv->pool_cap ? 2 * srv->pool_cap : 8;
		srv->pool = xreallocarray(srv->pool, srv->pool_cap, sizeof(*srv->pool));
	}
	srv->pool[srv->npool++] = st;
	pthread_mutex_unlock(&srv->pool_lock);
}

/* ---- responses --------------------------------------------------------------- */

void respond_text(struct request *rq, unsigned status, const char *ctype, const char *text,
                  size_t len)
{
	free(rq->resp);
	rq->status = status;
	rq->content_type = ctype;
	rq->resp = xmemdup0(text, len);
	rq->resp_len = len;
}

void respond_json(struct request *rq, unsigned status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(body);
	if (!text) { /* a string that is not UTF-8 made json_pack fail */
		status = 500;
		text = xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"the answer "
		               "could not be encoded\"}}");
	}
	free(rq->resp);
	rq->status = status;
	rq->content_type = "application/json";
	rq->resp = text;
	rq->resp_len = strlen(text);
}

static void answer_sent(void *cls)
{
	kept_answer_release(cls);
}

void respond_answer(struct request *rq, struct kept_answer *a)
{
	bool fresh = etag_matches(request_header(rq, "If-None-Match"), a->etag);
	free(rq->resp);
	rq->resp = NULL;
	rq->resp_len = 0;
	rq->status = fresh ? 304 : 200;
	rq->content_type = fresh ? NULL : "application/json";
	if (!rq->conn) { /* no connection (the API fuzzer): a copy */
		if (!fresh)
			respond_text(rq, 200, "application/json", a->body, a->len);
		kept_answer_release(a);
		return;
	}
	if (rq->stream)
		MHD_destroy_response(rq->stream);
	/* 200: the answer's memory goes out as it is, and its reference is
	 * given back when libmicrohttpd is done with it */
	rq->stream = fresh ? MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT)
	                   : MHD_create_response_from_buffer_with_free_callback_cls(a->len, a->body,
	                                                                            answer_sent, a);
	if (!rq->stream) {
		kept_answer_release(a);
		respond_error(rq, 500, "internal", "cannot make a response");
		return;
	}
	MHD_add_response_header(rq->stream, "ETag", a->etag);
	MHD_add_response_header(rq->stream, "Cache-Control", "no-store");
	if (fresh)
		kept_answer_release(a); /* else the response holds it */
}

/* A refused request makes a log line: who, from where, which route (a
 * link's token left out), why. */
static void log_refusal(const struct request *rq, unsigned status, const char *code,
                        const char *why)
{
	char path[160], st[8];
	log_safe_path(rq->url ? rq->url : "", path, sizeof(path));
	snprintf(st, sizeof(st), "%u", status);
	log_event("warning", "request.refused", NULL, "status", st, "code", code, "method",
	          rq->method, "path", path, "address", rq->address, "identity", rq->identity,
	          "reason", why, NULL);
}

void respond_error(struct request *rq, unsigned status, const char *code, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	strbuf_vaddf(&sb, fmt, ap);
	va_end(ap);
	utf8_sanitize(sb.buf); /* it may quote the client's path or parameters */
	if (status == 401 || status == 403)
		log_refusal(rq, status, code, sb.buf);
	/* A store's error names its address (a URL's hosts and users, a
	 * socket directory): the log has it, the answer says only what
	 * happened, like /healthz. */
	if (!strcmp(code, "store-error") || !strcmp(code, "store-unavailable")) {
		char path[160];
		log_safe_path(rq->url ? rq->url : "", path, sizeof(path));
		log_event("error", "request.store-error", NULL, "code", code, "method", rq->method,
		          "path", path, "reason", sb.buf, NULL);
		strbuf_reset(&sb);
		strbuf_addstr(&sb, strcmp(code, "store-error")
		                       ? "the store is unreachable now; steppy retries; try again "
		                         "later (the server log has the detail)"
		                       : "the store could not be read or written (the server log "
		                         "has the detail)");
	}
	respond_json(rq, status, json_pack("{s{ssss}}", "error", "code", code, "message", sb.buf));
	strbuf_release(&sb);
}

/* In a NULL-ended name, value list: the value of name, or NULL. */
static const char *input_lookup(const char *const *kv, const char *name, bool nocase)
{
	for (size_t i = 0; kv && kv[i] && kv[i + 1]; i += 2)
		if (nocase ? !strcasecmp(kv[i], name) : !strcmp(kv[i], name))
			return kv[i + 1];
	return NULL;
}

const char *request_query(struct request *rq, const char *name)
{
	if (rq->input)
		return input_lookup(rq->input->query, name, false);
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *request_header(struct request *rq, const char *name)
{
	if (rq->input)
		return input_lookup(rq->input->headers, name, true);
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

const char *request_cookie(struct request *rq, const char *name)
{
	if (!rq->input)
		return MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, name);
	const char *h = request_header(rq, "Cookie");
	size_t n = strlen(name);
	while (h && *h) {
		h += strspn(h, " ;");
		size_t len = strcspn(h, ";");
		if (len > n && !strncmp(h, name, n) && h[n] == '=') {
			snprintf(rq->cookie, sizeof(rq->cookie), "%.*s", (int)(len - n - 1),
			         h + n + 1);
			return rq->cookie;
		}
		h += len;
	}
	return NULL;
}

json_t *request_json(struct request *rq, const char *const *allowed)
{
	if (!rq->len)
		return json_object();
	/* Only application/json: a text or form body is what a page of another
	 * site may send without asking the browser first. */
	const char *ctype = request_header(rq, "Content-Type");
	if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
		respond_error(rq, 415, "unsupported-media-type",
		              "send the body as Content-Type: application/json");
		return NULL;
	}
	json_error_t je;
	json_t *o = json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		respond_error(rq, 400, "malformed-json",
		              "the body is not JSON: %s (line %d, column %d)", je.text, je.line,
		              je.column);
		return NULL;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		respond_error(rq, 400, "invalid-body", "the body must be a JSON object");
		return NULL;
	}
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		bool known = false;
		for (int i = 0; allowed && allowed[i]; i++)
			known |= !strcmp(allowed[i], key);
		if (!known) {
			struct strbuf list = STRBUF_INIT;
			for (int i = 0; allowed && allowed[i]; i++)
				strbuf_addf(&list, "%s%s", i ? ", " : "", allowed[i]);
			respond_error(rq, 400, "unknown-field", "/%s: unknown field (known: %s)",
			              key, list.len ? list.buf : "none");
			strbuf_release(&list);
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/*
 * The request comes from a page of this server (or from no browser at all).
 * Browsers set Origin and Sec-Fetch-Site themselves; a page cannot forge
 * either. Origin "null" is what a page sends when its referrer policy (or
 * the browser's settings) hides where it comes from: Chromium does so for
 * a page's own form POSTs under "no-referrer". It is accepted only when the
 * browser also says the request is same-origin: an opaque origin of any
 * other kind (a sandboxed frame, a data: or file: page) is "cross-site".
 */
bool request_same_origin(struct request *rq)
{
	const char *origin = request_header(rq, "Origin");
	const char *site = request_header(rq, "Sec-Fetch-Site");
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0)
		return false;
	if (!origin)
		return true;
	if (!strcmp(origin, "null"))
		return site && !strcmp(site, "same-origin");
	size_t n = strlen(origin);
	if (!strncmp(rq->srv->url, origin, n) &&
	    (rq->srv->url[n] == '\0' || rq->srv->url[n] == '/'))
		return true;
	/* behind a proxy without publicUrl: compare with the Host header */
	const char *host = request_header(rq, "Host");
	const char *o = strstr(origin, "://");
	return host && o && !strcmp(o + 3, host);
}

/* ---- who asks ------------------------------------------------------------------ */

const struct api_token *server_find_token(const struct server *srv, const char *token)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)token, strlen(token), h);
	const struct api_token *found = NULL;
	const struct serve_config *cfg = server_config(srv); /* one view: a reload may swap it */
	for (size_t i = 0; i < cfg->ntokens; i++)
		if (CRYPTO_memcmp(h, cfg->tokens[i].sha256, sizeof(h)) == 0)
			found = &cfg->tokens[i];
	return found;
}

char *session_cookie(const struct server *srv, const char *token)
{
	bool tls = server_config(srv)->tls_certificate || !strncmp(srv->url, "https://", 8);
	return xstrfmt("steppy_session=%s; Path=/; HttpOnly; SameSite=Strict%s", token,
	               tls ? "; Secure" : "");
}

void role_names(unsigned roles, const char *sep, struct strbuf *out)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = { { ROLE_VIEWER, "viewer" },
		      { ROLE_OPERATOR, "operator" },
		      { ROLE_APPROVER, "approver" } };
	size_t start = out->len;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (roles & names[i].bit)
			strbuf_addf(out, "%s%s", out->len > start ? sep : "", names[i].name);
}

void request_decider(const struct request *rq, struct approval_decider *d)
{
	d->by = server_auth_on(rq->srv) && rq->identity ? rq->identity : NULL;
	d->approver_role = d->by ? (rq->roles & ROLE_APPROVER) != 0 : -1;
	d->people = &server_config(rq->srv)->people;
}

json_t *decision_data(const struct request *rq, int stage, int step, const char *via)
{
	struct approval_decider d;
	request_decider(rq, &d);
	json_t *data = json_pack("{sisissss}", "stage", stage, "step", step, "via", via, "address",
	                         rq->address);
	if (d.by) {
		json_object_set_new(data, "by", json_string(d.by));
		json_object_set_new(data, "approverRole", json_boolean(d.approver_role == 1));
	}
	return data;
}
