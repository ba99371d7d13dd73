/*
 * web.c - the dashboard: GET / answers web/index.html, GET /assets/NAME the
 * other files of web/. The files are compiled in (web-assets.h), so the
 * binary serves them from its own memory without copying.
 *
 * Every answer carries a strict Content-Security-Policy: scripts, styles,
 * images and connections from this origin only, no inline script or style
 * attribute, no plugins, no framing, no <base>, forms post only here. The
 * dashboard is written to need nothing more (docs/dashboard.md).
 *
 * Caching by content: the ETag is a hash of the file made at build time and
 * Cache-Control is no-cache, so a browser asks each time and gets 304 Not
 * Modified until a new binary serves different bytes. Unknown names are 404
 * with the API's JSON error.
 */
#include "server/server-internal.h"
#include "server/web-assets.h"

#include <string.h>

#define CSP                                                                                        \
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'; "                \
	"form-action 'self'; frame-ancestors 'none'"

static const struct {
	const char *suffix, *type;
} content_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".json", "application/json" },
	{ ".txt", "text/plain; charset=utf-8" },
};

static const char *content_type_of(const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
		size_t k = strlen(content_types[i].suffix);
		if (n > k && !strcmp(name + n - k, content_types[i].suffix))
			return content_types[i].type;
	}
	return "application/octet-stream";
}

static const struct web_asset *find_asset(const char *name)
{
	for (const struct web_asset *a = web_assets; a->name; a++)
		if (!strcmp(a->name, name))
			return a;
	return NULL;
}

/* Answers with asset a, or 304 when the browser holds these very bytes. */
static void serve_asset(struct request *rq, const struct web_asset *a)
{
	const char *if_none_match = request_header(rq, "If-None-Match");
	bool fresh = if_none_match && strstr(if_none_match, a->etag) != NULL;
	/* The bytes live as long as the program: MHD may send them as they are. */
	rq->stream = MHD_create_response_from_buffer(fresh ? 0 : a->len, (void *)a->data,
	                                             MHD_RESPMEM_PERSISTENT);
	if (!rq->stream) {
		respond_error(rq, 500, "internal", "cannot make a response");
		return;
	}
	rq->status = fresh ? 304 : 200;
	rq->content_type = fresh ? NULL : content_type_of(a->name);
	MHD_add_response_header(rq->stream, "ETag", a->etag);
	MHD_add_response_header(rq->stream, "Cache-Control", "no-cache");
	MHD_add_response_header(rq->stream, "Content-Security-Policy", CSP);
}

static void h_index(struct request *rq)
{
	const struct web_asset *a = find_asset("index.html");
	if (a)
		serve_asset(rq, a);
	else
		respond_error(rq, 404, "not-found", "this build has no dashboard");
}

static void h_asset(struct request *rq)
{
	const struct web_asset *a = find_asset(rq->params[0]);
	if (a)
		serve_asset(rq, a);
	else
		respond_error(rq, 404, "not-found", "no such resource: %s", rq->url);
}

const struct route web_routes[] = {
	{ "GET", "/", h_index, 0 },
	{ "GET", "/assets/{}", h_asset, 0 },
	{ NULL, NULL, NULL, 0 },
};
