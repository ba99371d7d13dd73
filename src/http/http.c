/*
 * http.c - libcurl's multi interface driven by libuv (see http.h).
 *
 * curl tells us which sockets to watch (socket_cb) and when to wake it
 * (timer_cb); libuv watches them and calls curl_multi_socket_action(); after
 * each call finished transfers are collected and their callbacks run, outside
 * any curl callback, so a callback may start new requests.
 */
#include "http/http.h"

#include "util/alloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY (16u << 20)

struct http {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	struct http_transfer *transfers;
	size_t n;
};

struct http_transfer {
	struct http *h;
	CURL *easy;
	struct curl_slist *headers;
	http_done_fn done;
	void *arg;
	char *body;
	size_t len, cap;
	bool too_big;
	char **resp_headers;
	size_t nresp, resp_cap;
	struct http_transfer *next;
};

/* One watched socket; freed when libuv has closed its poll handle. */
struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct http *h;
};

static void check_done(struct http *h);

static void transfer_free(struct http_transfer *t)
{
	curl_easy_cleanup(t->easy);
	curl_slist_free_all(t->headers);
	for (size_t i = 0; i < t->nresp; i++)
		free(t->resp_headers[i]);
	free(t->resp_headers);
	free(t->body);
	free(t);
}

static void unlink_transfer(struct http_transfer *t)
{
	for (struct http_transfer **p = &t->h->transfers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			t->h->n--;
			return;
		}
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct sock *s = p->data;
	struct http *h = s->h;
	int flags = 0;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	int running;
	curl_multi_socket_action(h->multi, s->fd, flags, &running);
	check_done(h);
}

static void sock_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)easy;
	struct http *h = userp;
	struct sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, sock_close_cb);
			curl_multi_assign(h->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->h = h;
		if (uv_poll_init_socket(h->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(h->multi, fd, s);
	}
	int events = 0;
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&s->poll, events, poll_cb);
	return 0;
}

static void timer_fire(uv_timer_t *t)
{
	struct http *h = t->data;
	int running;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct http *h = userp;
	if (timeout_ms < 0)
		uv_timer_stop(&h->timer);
	else
		/* 0 means "now": run it from the loop, not from inside curl */
		uv_timer_start(&h->timer, timer_fire, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t n = size * nmemb;
	if (t->len + n > MAX_BODY) {
		t->too_big = true;
		return 0;
	}
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + n + 1)
			cap *= 2;
		t->body = xrealloc(t->body, cap);
		t->cap = cap;
	}
	memcpy(t->body + t->len, data, n);
	t->len += n;
	t->body[t->len] = '\0';
	return n;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_transfer *t = userp;
	size_t n = size * nmemb;
	size_t len = n;
	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* a new response (after a 100 Continue or a redirect): forget the last */
		for (size_t i = 0; i < t->nresp; i++)
			free(t->resp_headers[i]);
		t->nresp = 0;
		return n;
	}
	if (!len || t->nresp >= 200)
		return n;
	if (t->nresp == t->resp_cap) {
		t->resp_cap = t->resp_cap ? 2 * t->resp_cap : 16;
		t->resp_headers = xrealloc(t->resp_headers, t->resp_cap * sizeof(char *));
	}
	t->resp_headers[t->nresp++] = xstrndup(data, len);
	return n;
}

static void check_done(struct http *h)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(h->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct http_transfer *t = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
		CURLcode code = msg->data.result;
		curl_multi_remove_handle(h->multi, t->easy);
		unlink_transfer(t);
		struct http_response res = { .body = t->body ? t->body : "",
			                     .len = t->len,
			                     .headers = t->resp_headers,
			                     .nheaders = t->nresp };
		if (code == CURLE_OK)
			curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &res.status);
		else
			res.error = t->too_big ? "the response is larger than 16 MiB"
			                       : curl_easy_strerror(code);
		t->done(t->arg, &res);
		transfer_free(t);
	}
}

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct http *http_new(uv_loop_t *loop)
{
	static uv_once_t once = UV_ONCE_INIT;
	uv_once(&once, global_init);
	struct http *h = xcalloc(1, sizeof(*h));
	h->loop = loop;
	h->multi = curl_multi_init();
	if (!h->multi) {
		fputs("steppy: out of memory\n", stderr);
		abort();
	}
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 50L);
	return h;
}

static void http_timer_close_cb(uv_handle_t *handle)
{
	free(handle->data);
}

void http_free(struct http *h)
{
	if (!h)
		return;
	while (h->transfers)
		http_cancel(h->transfers);
	curl_multi_cleanup(h->multi); /* closes sockets through socket_cb */
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->timer, http_timer_close_cb);
}

struct http_transfer *http_send(struct http *h, CURL *easy, struct curl_slist *headers,
                                http_done_fn done, void *arg)
{
	struct http_transfer *t = xcalloc(1, sizeof(*t));
	*t = (struct http_transfer){
		.h = h, .easy = easy, .headers = headers, .done = done, .arg = arg
	};
	curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	if (headers)
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	t->next = h->transfers;
	h->transfers = t;
	h->n++;
	curl_multi_add_handle(h->multi, easy);
	return t;
}

void http_cancel(struct http_transfer *t)
{
	curl_multi_remove_handle(t->h->multi, t->easy);
	unlink_transfer(t);
	transfer_free(t);
}

const char *http_header(const struct http_response *res, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < res->nheaders; i++) {
		const char *line = res->headers[i];
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			return v;
		}
	}
	return NULL;
}

size_t http_in_flight(const struct http *h)
{
	return h->n;
}

bool http_header_is_credential(const char *name)
{
	static const char *const names[] = { "Authorization", "Proxy-Authorization", "Cookie",
		                             "X-Api-Key",     "X-Auth-Token",        NULL };
	for (const char *const *n = names; *n; n++)
		if (!strcasecmp(name, *n))
			return true;
	return false;
}
