/*
 * http.h - asynchronous HTTP requests on a libuv loop, through libcurl's
 * multi interface: any number of requests in flight on one thread, with
 * connections kept alive between them.
 */
#ifndef STEPPY_HTTP_HTTP_H
#define STEPPY_HTTP_HTTP_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct http;
struct http_transfer;

struct http_response {
	long status;       /* HTTP status, 0 if no response came */
	const char *error; /* transport failure (connect, timeout ...), or NULL */
	const char *body;  /* NUL-terminated; may contain NULs before len */
	size_t len;
	/* Response header lines "Name: value", without CRLF. */
	char **headers;
	size_t nheaders;
};

/* Called once per request, unless it was cancelled. res is valid during the call. */
typedef void (*http_done_fn)(void *arg, const struct http_response *res);

struct http *http_new(uv_loop_t *loop);
/* Drops every request in flight without calling back. Accepts NULL. */
void http_free(struct http *h);

/*
 * Sends a request prepared on easy (URL, method, body, timeouts); takes
 * ownership of easy and of headers (may be NULL). Returns a handle for
 * http_cancel(), valid until done is called.
 */
struct http_transfer *http_send(struct http *h, CURL *easy, struct curl_slist *headers,
                                http_done_fn done, void *arg);
/* Abandons a request; done is not called. */
void http_cancel(struct http_transfer *t);

/* The value of a response header (case-insensitive name), or NULL. */
const char *http_header(const struct http_response *res, const char *name);

/*
 * True if a request header of this name (case-insensitive) carries a
 * credential: Authorization, Proxy-Authorization, Cookie, X-Api-Key,
 * X-Auth-Token. Plans and channels must keep its value secret (the one
 * rule both validators use).
 */
bool http_header_is_credential(const char *name);

/* Requests in flight. */
size_t http_in_flight(const struct http *h);

#endif
