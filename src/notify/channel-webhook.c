/*
 * channel-webhook.c - the "webhook" channel kind (docs/channels.md#webhook):
 * the notice as JSON POSTed to any URL, with extra headers, written in the
 * configuration or (secrets) read from the environment.
 */
#include "notify/notify-internal.h"

#include "http/http.h"

#include "util/alloc.h"
#include "util/strmap.h"
#include "util/timefmt.h"

#include <string.h>
#include <strings.h>

#define MAX_HEADERS 20

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static bool is_token(const char *s)
{
	return *s && str_all_in(s, ALNUM "!#$%&'*+-.^_`|~");
}

/* Headers steppy sets itself or that would break the request. */
static bool header_reserved(const char *name)
{
	static const char *const reserved[] = {
		"Host",   "Content-Length", "Content-Type", "Connection", "Transfer-Encoding",
		"Expect", "Upgrade",        "TE",           NULL
	};
	for (const char *const *r = reserved; *r; r++)
		if (!strcasecmp(name, *r))
			return true;
	return false;
}

static bool header_secret(const char *name)
{
	return http_header_is_credential(name);
}

static void check_headers(struct vctx *v, const struct doc_node *value, bool from_env)
{
	if (value->u.object.len > MAX_HEADERS)
		v_error(v, value->pos, NULL, "more than %d headers", MAX_HEADERS);
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		const struct doc_node *hv = m->value;
		size_t saved = v_push(v, m->key);
		if (!is_token(m->key) || m->key_len > 100) {
			v_error(v, m->key_pos, NULL, "\"%.80s\" is not a valid HTTP header name",
			        m->key);
		} else if (header_reserved(m->key)) {
			v_error(v, m->key_pos, NULL, "the header \"%s\" is set by steppy", m->key);
		} else if (!from_env && header_secret(m->key)) {
			v_error(
			    v, m->key_pos, NULL,
			    "\"%s\" carries a secret: give it in \"headersFromEnv\" as the name "
			    "of an environment variable holding the value",
			    m->key);
		} else if (hv->kind != DOC_STRING) {
			struct strbuf found = STRBUF_INIT;
			describe_found(&found, hv);
			v_error(v, hv->pos, NULL, "header values must be strings, found %s",
			        found.buf);
			strbuf_release(&found);
		} else if (from_env) {
			channel_check_env_var(v, hv);
		} else if (memchr(hv->u.string.s, '\0', hv->u.string.len) ||
		           channel_has_control(hv->u.string.s) || hv->u.string.len > 1024) {
			v_error(v, hv->pos, NULL,
			        "header values must be one line of at most 1024 characters");
		}
		v_pop(v, saved);
	}
}

static void check_plain_headers(struct vctx *v, const struct doc_node *value)
{
	check_headers(v, value, false);
}

static void check_env_headers(struct vctx *v, const struct doc_node *value)
{
	check_headers(v, value, true);
}

static const struct field_spec webhook_fields[] = {
	{ .name = "headers", .types = T_OBJECT, .check = check_plain_headers },
	{ .name = "headersFromEnv", .types = T_OBJECT, .check = check_env_headers },
	{ .name = NULL },
};

static const struct field_spec *const webhook_tables[] = { hook_fields, webhook_fields, NULL };

static void check_header_twice(struct vctx *v, const struct doc_node *node)
{
	const char *keys[] = { "headers", "headersFromEnv" };
	struct strmap seen = STRMAP_INIT;
	char lower[128];
	for (size_t k = 0; k < 2; k++) {
		const struct doc_node *h = doc_get(node, keys[k]);
		if (!h || h->kind != DOC_OBJECT)
			continue;
		size_t saved = v_push(v, keys[k]);
		for (size_t i = 0; i < h->u.object.len; i++) {
			const struct doc_member *m = &h->u.object.members[i];
			if (m->key_len >= sizeof(lower))
				continue;
			for (size_t j = 0; j <= m->key_len; j++)
				lower[j] =
				    (char)(m->key[j] >= 'A' && m->key[j] <= 'Z' ? m->key[j] + 32
				                                                : m->key[j]);
			const struct doc_member *first = v_first_seen(&seen, lower, m);
			if (first) {
				size_t s2 = v_push(v, m->key);
				v_error(v, m->key_pos, NULL,
				        "the header \"%s\" is given twice (first at line %u)",
				        m->key, (unsigned)first->key_pos.line);
				v_pop(v, s2);
			}
		}
		v_pop(v, saved);
	}
	strmap_release(&seen);
}

static void check_webhook(struct vctx *v, const struct doc_node *node, const char *what)
{
	check_one_of(v, node, what, "url", "urlEnv");
	check_header_twice(v, node);
}

char *format_webhook(const struct notice_text *t)
{
	struct strbuf time = STRBUF_INIT;
	rfc3339_format(&time, t->time_ms);
	json_t *j = json_pack(
	    "{s:s, s:s?, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "kind", t->kind, "subject",
	    t->subject, "message", t->message, "executionId", t->execution_id, "plan", t->plan,
	    "environment", t->environment, "stage", t->stage, "step", t->step,
	    !strcmp(t->kind, "approval") ? "approvalUrl" : "releaseUrl", t->url, "time", time.buf);
	strbuf_release(&time);
	return json_dump_compact(j);
}

static int format_webhook_request(const struct channel *c, const struct notice_text *t,
                                  struct channel_request *req, char **error)
{
	return hook_request(c->config, format_webhook(t), req, error);
}

const struct channel_type channel_webhook = {
	.name = "webhook",
	.what = "a webhook channel",
	.fields = webhook_tables,
	.check = check_webhook,
	.parse = hook_config_new,
	.release = hook_config_free,
	.format = format_webhook_request,
	.send = notify_http_send,
};
