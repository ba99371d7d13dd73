/*
 * hook.c - what webhook-like channel kinds share (channel-type.h): the URL
 * from "url" or, as a secret, from the environment variable "urlEnv"; extra
 * HTTP headers, written or from the environment; read when a notice is sent,
 * so a rotated secret is used without a restart.
 */
#include "notify/channel-type.h"

#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

static void check_http_url(struct vctx *v, const struct doc_node *value)
{
	static const char *const schemes[] = { "https://", "http://", NULL };
	channel_check_url(v, value, schemes, "an http:// or https:// URL",
	                  "send credentials in a header from \"headersFromEnv\"");
}

const struct field_spec hook_fields[] = {
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_http_url },
	{ .name = "urlEnv",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .check = channel_check_env_var },
	{ .name = NULL },
};

void check_one_of(struct vctx *v, const struct doc_node *node, const char *what, const char *a,
                  const char *b)
{
	const struct doc_member *ma = doc_member(node, a), *mb = doc_member(node, b);
	if (!ma && !mb) {
		v_error(v, node->pos, NULL, "%s needs \"%s\" or \"%s\"", what, a, b);
	} else if (ma && mb) {
		size_t saved = v_push(v, b);
		v_error(v, mb->key_pos, NULL, "give \"%s\" or \"%s\", not both", a, b);
		v_pop(v, saved);
	}
}

char *node_string(const struct doc_node *node, const char *key)
{
	const struct doc_node *n = doc_get(node, key);
	return n && n->kind == DOC_STRING ? xstrdup(n->u.string.s) : NULL;
}

static void add_headers(struct hook_config *c, const struct doc_node *h, bool from_env)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->u.object.len; i++) {
		struct channel_header *ch = &c->headers[c->nheaders++];
		ch->name = xstrdup(h->u.object.members[i].key);
		ch->value = xstrdup(h->u.object.members[i].value->u.string.s);
		ch->from_env = from_env;
	}
}

void hook_parse(struct hook_config *c, const struct doc_node *node)
{
	c->url = node_string(node, "url");
	c->url_env = node_string(node, "urlEnv");
	const struct doc_node *h = doc_get(node, "headers"), *he = doc_get(node, "headersFromEnv");
	size_t nh = (h ? h->u.object.len : 0) + (he ? he->u.object.len : 0);
	if (nh) {
		c->headers = xcalloc(nh, sizeof(*c->headers));
		add_headers(c, h, false);
		add_headers(c, he, true);
	}
}

void hook_release(struct hook_config *c)
{
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->headers);
	free(c->url);
	free(c->url_env);
}

/* The value of an environment variable, or NULL (with *error) when unset or empty. */
static char *from_env(const char *var, const char *what, char **error)
{
	const char *v = getenv(var);
	if (!v || !*v) {
		*error = xstrfmt("the environment variable %s (%s) is not set", var, what);
		return NULL;
	}
	return xstrdup(v);
}

/* The header h as "Name: value" (its value read from the environment now), or NULL. */
static char *header_line(const struct channel_header *h, char **error)
{
	if (!h->from_env)
		return xstrfmt("%s: %s", h->name, h->value);
	char *what = xstrfmt("headersFromEnv.%s", h->name);
	char *value = from_env(h->value, what, error);
	free(what);
	if (!value)
		return NULL;
	if (strpbrk(value, "\r\n")) {
		wipe(value);
		*error = xstrfmt("the environment variable %s holds a line break", h->value);
		return NULL;
	}
	char *line = xstrfmt("%s: %s", h->name, value);
	wipe(value);
	return line;
}

int hook_prepare(const struct hook_config *c, struct channel_request *req, char **error)
{
	static const char *const http_schemes[] = { "http", "https", NULL };
	req->url = c->url ? xstrdup(c->url) : from_env(c->url_env, "urlEnv", error);
	if (!req->url)
		return -1;
	req->host = url_host(req->url, http_schemes);
	if (!req->host) {
		*error = xstrfmt("the URL in %s is not an http:// or https:// URL",
		                 c->url_env ? c->url_env : "url");
		return -1;
	}
	req->headers = c->nheaders ? xcalloc(c->nheaders, sizeof(char *)) : NULL;
	for (size_t i = 0; i < c->nheaders; i++) {
		char *line = header_line(&c->headers[i], error);
		if (!line)
			return -1;
		req->headers[req->nheaders++] = line;
	}
	return 0;
}

int hook_request(const struct hook_config *c, char *body, struct channel_request *req, char **error)
{
	if (hook_prepare(c, req, error) < 0) {
		free(body);
		return -1;
	}
	req->body = body;
	req->len = strlen(body);
	return 0;
}

void *hook_config_new(const struct doc_node *node)
{
	struct hook_config *c = xcalloc(1, sizeof(*c));
	hook_parse(c, node);
	return c;
}

void hook_config_free(void *config)
{
	if (config)
		hook_release(config);
	free(config);
}

void hook_check(struct vctx *v, const struct doc_node *node, const char *what)
{
	check_one_of(v, node, what, "url", "urlEnv");
}
