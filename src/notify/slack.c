/*
 * slack.c - Slack's interaction requests: signatures, replays, payloads
 * (see slack.h).
 */
#include "notify/slack.h"

#include "util/alloc.h"
#include "util/error.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MAX 100000

/* ---- signatures ------------------------------------------------------------------------------ */

int slack_signature_check(const char *secret, const char *timestamp, const char *body, size_t len,
                          const char *signature, int64_t now_s, const char **ret_why)
{
	if (!timestamp || !signature) {
		*ret_why = "the request is not signed (no X-Slack-Signature or "
		           "X-Slack-Request-Timestamp)";
		return SP_EINVAL;
	}
	size_t tlen = strlen(timestamp);
	if (!tlen || tlen > 12 || strspn(timestamp, "0123456789") != tlen) {
		*ret_why = "X-Slack-Request-Timestamp is not a time in seconds";
		return SP_EINVAL;
	}
	int64_t ts = strtoll(timestamp, NULL, 10);
	if (ts < now_s - SLACK_MAX_SKEW_S || ts > now_s + SLACK_MAX_SKEW_S) {
		*ret_why = "the request is more than 5 minutes old (or from the future): refused "
		           "as a possible replay";
		return SP_EINVAL;
	}
	/* "v0=" and 64 hex digits */
	if (strlen(signature) != 67 || strncmp(signature, "v0=", 3) != 0) {
		*ret_why = "the signature is not a v0 signature";
		return SP_EINVAL;
	}
	struct strbuf base = STRBUF_INIT;
	strbuf_addf(&base, "v0:%s:", timestamp);
	strbuf_add(&base, body, len);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	bool ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)base.buf,
	               base.len, mac, &maclen) != NULL &&
	          maclen == 32;
	strbuf_release(&base);
	if (!ok) {
		*ret_why = "cannot compute the signature";
		return SP_EINVAL;
	}
	static const char digits[] = "0123456789abcdef";
	char want[64];
	for (size_t i = 0; i < 32; i++) {
		want[2 * i] = digits[mac[i] >> 4];
		want[2 * i + 1] = digits[mac[i] & 15];
	}
	explicit_bzero(mac, sizeof(mac));
	/* Slack sends lowercase hex; anything else simply does not match */
	if (CRYPTO_memcmp(want, signature + 3, 64) != 0) {
		*ret_why = "the signature is wrong (not signed with this app's signing secret)";
		return SP_EINVAL;
	}
	return 0;
}

/* ---- replays --------------------------------------------------------------------------------- */

struct seen_sig {
	char sig[68];
	int64_t ts;
};

struct slack_replay {
	pthread_mutex_t lock;
	struct seen_sig *ring; /* oldest at head */
	size_t head, n, cap;
};

struct slack_replay *slack_replay_new(void)
{
	struct slack_replay *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	return r;
}

void slack_replay_free(struct slack_replay *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->ring);
	free(r);
}

bool slack_replay_seen(struct slack_replay *r, const char *signature, int64_t ts, int64_t now_s)
{
	pthread_mutex_lock(&r->lock);
	/* forget what the window refuses anyway */
	while (r->n && r->ring[r->head].ts < now_s - 2 * SLACK_MAX_SKEW_S) {
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->ring[(r->head + i) % r->cap].sig, signature)) {
			pthread_mutex_unlock(&r->lock);
			return true;
		}
	if (r->n == r->cap && r->cap < REPLAY_MAX) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		struct seen_sig *ring = xcalloc(cap, sizeof(*ring));
		for (size_t i = 0; i < r->n; i++)
			ring[i] = r->ring[(r->head + i) % r->cap];
		free(r->ring);
		r->ring = ring;
		r->cap = cap;
		r->head = 0;
	}
	if (r->n == r->cap) { /* full: the oldest goes */
		r->head = (r->head + 1) % r->cap;
		r->n--;
	}
	struct seen_sig *s = &r->ring[(r->head + r->n) % r->cap];
	snprintf(s->sig, sizeof(s->sig), "%s", signature);
	s->ts = ts;
	r->n++;
	pthread_mutex_unlock(&r->lock);
	return false;
}

/* ---- payloads -------------------------------------------------------------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
	                              : -1;
}

char *form_field(const char *body, size_t len, const char *name)
{
	size_t n = strlen(name);
	for (size_t p = 0; p < len;) {
		const char *amp = memchr(body + p, '&', len - p);
		size_t end = amp ? (size_t)(amp - body) : len;
		if (end - p > n && !strncmp(body + p, name, n) && body[p + n] == '=') {
			struct strbuf v = STRBUF_INIT;
			for (size_t i = p + n + 1; i < end; i++) {
				char c = body[i];
				if (c == '+') {
					c = ' ';
				} else if (c == '%') {
					int hi = i + 2 < end ? hexval(body[i + 1]) : -1;
					int lo = hi >= 0 ? hexval(body[i + 2]) : -1;
					if (lo < 0 || (hi == 0 && lo == 0)) {
						strbuf_release(&v);
						return NULL;
					}
					c = (char)(hi << 4 | lo);
					i += 2;
				} else if (c == '\0') {
					strbuf_release(&v);
					return NULL;
				}
				strbuf_addch(&v, c);
			}
			return strbuf_detach(&v, NULL);
		}
		p = end + 1;
	}
	return NULL;
}

static char *dup_string(json_t *j)
{
	const char *s = json_string_value(j);
	return s ? xstrdup(s) : NULL;
}

int slack_action_parse(const char *body, size_t len, struct slack_action *out, struct strbuf *err)
{
	memset(out, 0, sizeof(*out));
	char *payload = form_field(body, len, "payload");
	if (!payload) {
		strbuf_addstr(err, "the body has no payload field");
		return SP_EINVAL;
	}
	json_t *j = json_loads(payload, JSON_REJECT_DUPLICATES, NULL);
	free(payload);
	const char *type = json_string_value(json_object_get(j, "type"));
	if (!j || !type || strcmp(type, "block_actions") != 0) {
		strbuf_addstr(err, "the payload is not a block_actions interaction");
		json_decref(j);
		return SP_EINVAL;
	}
	json_t *actions = json_object_get(j, "actions");
	json_t *action = json_array_get(actions, 0);
	json_t *user = json_object_get(j, "user");
	out->action_id = dup_string(json_object_get(action, "action_id"));
	out->value = dup_string(json_object_get(action, "value"));
	out->user_id = dup_string(json_object_get(user, "id"));
	out->team_id = dup_string(json_object_get(json_object_get(j, "team"), "id"));
	if (!out->team_id)
		out->team_id = dup_string(json_object_get(user, "team_id"));
	json_t *container = json_object_get(j, "container");
	out->channel_id = dup_string(json_object_get(container, "channel_id"));
	if (!out->channel_id)
		out->channel_id = dup_string(json_object_get(json_object_get(j, "channel"), "id"));
	out->message_ts = dup_string(json_object_get(container, "message_ts"));
	if (!out->message_ts)
		out->message_ts = dup_string(json_object_get(json_object_get(j, "message"), "ts"));
	/* the link of the message, to keep it when the message is replaced */
	json_t *blocks = json_object_get(json_object_get(j, "message"), "blocks"), *b;
	size_t i;
	json_array_foreach(blocks, i, b)
	{
		json_t *e;
		size_t k;
		json_array_foreach(json_object_get(b, "elements"), k, e)
		{
			const char *id = json_string_value(json_object_get(e, "action_id"));
			if (id && !strcmp(id, "steppy-open") && !out->link_url)
				out->link_url = dup_string(json_object_get(e, "url"));
		}
	}
	size_t nactions = json_array_size(actions);
	json_decref(j);
	if (nactions != 1 || !out->action_id || !out->user_id) {
		strbuf_addstr(err, "the interaction has no single action, or no user");
		return SP_EINVAL;
	}
	return 0;
}

void slack_action_release(struct slack_action *a)
{
	char *fields[] = { a->action_id,  a->value,      a->user_id, a->team_id,
		           a->channel_id, a->message_ts, a->link_url };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		free(fields[i]);
	memset(a, 0, sizeof(*a));
}
