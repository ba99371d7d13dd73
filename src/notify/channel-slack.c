/*
 * channel-slack.c - the "slack" channel kind (docs/channels.md#slack): a
 * message in Slack's Block Kit, posted to an incoming webhook, or as a
 * Slack app's bot through Slack's Web API (chat.postMessage), with Approve
 * and Reject buttons when the channel has a signing secret; and the bot's
 * other calls the server makes (chat.update, chat.postEphemeral).
 */
#include "notify/notify-internal.h"

#include "util/alloc.h"
#include "util/timefmt.h"

#include <stdlib.h>
#include <string.h>

#define ELLIPSIS "\xE2\x80\xA6" /* U+2026, marks a text that was cut */

#define SLACK_HEADER_CHARS  150  /* Block Kit: header text */
#define SLACK_SECTION_CHARS 3000 /* Block Kit: section text, and the fallback text */

static bool is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* ---- configuration --------------------------------------------------------------------------- */

static void check_slack_channel_id(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (strlen(s) < 3 || strlen(s) > 32 || !strchr("CGD", s[0]) ||
	    !str_all_in(s + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not a Slack channel id such as C0123456789 (in Slack: the "
		        "channel's details, at the bottom; the bot must be a member)",
		        s);
}

static void check_api_url(struct vctx *v, const struct doc_node *value)
{
	static const char *const schemes[] = { "https://", "http://", NULL };
	channel_check_url(v, value, schemes, "an http:// or https:// URL (https://slack.com/api)",
	                  "the token goes in \"tokenEnv\" or \"tokenFile\"");
}

/* Slack: an incoming webhook (url, urlEnv), or a bot (token, channel, signing secret). */
static const struct field_spec slack_fields[] = {
	{ .name = "tokenEnv",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .check = channel_check_env_var },
	{ .name = "tokenFile",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 4096,
	  .check = channel_check_one_line },
	{ .name = "channel", .types = T_STRING, .check = check_slack_channel_id },
	{ .name = "signingSecretEnv",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .check = channel_check_env_var },
	{ .name = "signingSecretFile",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 4096,
	  .check = channel_check_one_line },
	{ .name = "apiUrl",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_api_url },
	{ .name = NULL },
};

static const struct field_spec *const slack_tables[] = { hook_fields, slack_fields, NULL };

/* Webhook mode (url or urlEnv) or bot mode (a token, a channel id), not both. */
static void check_slack(struct vctx *v, const struct doc_node *node, const char *what)
{
	static const char *const bot_keys[] = {
		"tokenEnv",          "tokenFile", "channel", "signingSecretEnv",
		"signingSecretFile", "apiUrl",    NULL
	};
	bool hook = doc_member(node, "url") || doc_member(node, "urlEnv");
	bool bot = false;
	for (const char *const *k = bot_keys; *k; k++)
		bot |= doc_member(node, *k) != NULL;
	if (!bot) {
		check_one_of(v, node, what, "url", "urlEnv");
		return;
	}
	if (hook) {
		const struct doc_member *m = doc_member(node, "url");
		if (!m)
			m = doc_member(node, "urlEnv");
		size_t saved = v_push(v, m->key);
		v_error(
		    v, m->key_pos, NULL,
		    "a slack channel posts through an incoming webhook (\"url\", \"urlEnv\") or "
		    "as a bot (\"tokenEnv\" or \"tokenFile\", and \"channel\"), not both");
		v_pop(v, saved);
		return;
	}
	check_one_of(v, node, "a slack bot channel", "tokenEnv", "tokenFile");
	if (!doc_member(node, "channel"))
		v_error(v, node->pos, NULL,
		        "a slack bot channel needs \"channel\", the id of the conversation to post "
		        "to (C0123456789)");
	const struct doc_member *se = doc_member(node, "signingSecretEnv");
	const struct doc_member *sf = doc_member(node, "signingSecretFile");
	if (se && sf) {
		size_t saved = v_push(v, sf->key);
		v_error(v, sf->key_pos, NULL,
		        "give \"signingSecretEnv\" or \"signingSecretFile\", not both");
		v_pop(v, saved);
	}
}

static void *parse_slack(const struct doc_node *node)
{
	struct slack_config *c = xcalloc(1, sizeof(*c));
	hook_parse(&c->hook, node);
	c->token_env = node_string(node, "tokenEnv");
	c->token_file = node_string(node, "tokenFile");
	c->slack_channel = node_string(node, "channel");
	c->signing_env = node_string(node, "signingSecretEnv");
	c->signing_file = node_string(node, "signingSecretFile");
	c->api_url = node_string(node, "apiUrl");
	if (c->slack_channel && !c->api_url)
		c->api_url = xstrdup("https://slack.com/api");
	if (c->api_url) {
		size_t n = strlen(c->api_url);
		while (n && c->api_url[n - 1] == '/')
			c->api_url[--n] = '\0';
	}
	return c;
}

static void release_slack(void *config)
{
	struct slack_config *c = config;
	if (!c)
		return;
	hook_release(&c->hook);
	char *strings[] = { c->token_env,   c->token_file,   c->slack_channel,
		            c->signing_env, c->signing_file, c->api_url };
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(strings[i]);
	free(c);
}

/* ---- Slack ----------------------------------------------------------------------------------- */

/*
 * Appends s escaped for Slack's mrkdwn (&, <, > as entities, so nothing in a
 * message becomes a link or a mention), at most max_chars characters of
 * output, never cutting an entity.
 */
static void slack_escape(struct strbuf *out, const char *s, size_t max_chars)
{
	size_t used = 0;
	for (size_t i = 0; s[i];) {
		size_t k = 1;
		while (is_cont((unsigned char)s[i + k]))
			k++;
		const char *rep = s[i] == '&'   ? "&amp;"
		                  : s[i] == '<' ? "&lt;"
		                  : s[i] == '>' ? "&gt;"
		                                : NULL;
		size_t w = rep ? strlen(rep) : 1;
		/* keep room for the ellipsis unless this is the last character */
		if (used + w > max_chars || (used + w == max_chars && s[i + k])) {
			strbuf_addstr(out, ELLIPSIS);
			return;
		}
		if (rep)
			strbuf_addstr(out, rep);
		else
			strbuf_add(out, s + i, k);
		used += w;
		i += k;
	}
}

/* The message: the fallback "text" and the "blocks"; buttons: Approve and Reject. */
static json_t *slack_message(const struct notice_text *t, bool buttons)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *blocks = json_array();

	add_chars(&sb, t->title, SLACK_HEADER_CHARS);
	json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "header",
	                                        "text", "type", "plain_text", "text",
	                                        json_take_string(&sb), "emoji", 1));
	if (*t->message) {
		slack_escape(&sb, t->message, SLACK_SECTION_CHARS);
		json_array_append_new(blocks,
		                      json_pack("{s:s, s:{s:s, s:o}}", "type", "section", "text",
		                                "type", "mrkdwn", "text", json_take_string(&sb)));
	}
	const char *labels[5], *values[5];
	size_t n = notice_facts(t, labels, values);
	for (size_t i = 0; i < n; i++)
		strbuf_addf(&sb, "%s%s %s", i ? " \xC2\xB7 " : "", labels[i], values[i]);
	if (n)
		json_array_append_new(blocks, json_pack("{s:s, s:[{s:s, s:o}]}", "type", "context",
		                                        "elements", "type", "plain_text", "text",
		                                        json_take_string(&sb)));
	if (t->outcome) {
		add_chars(&sb, t->outcome, SLACK_SECTION_CHARS);
		json_array_append_new(blocks, json_pack("{s:s, s:{s:s, s:o}}", "type", "section",
		                                        "text", "type", "plain_text", "text",
		                                        json_take_string(&sb)));
	}
	json_t *elements = json_array();
	if (buttons && t->decide_ref) {
		json_array_append_new(elements,
		                      json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s}", "type",
		                                "button", "text", "type", "plain_text", "text",
		                                "Approve", "style", "primary", "action_id",
		                                "steppy-approve", "value", t->decide_ref));
		json_array_append_new(
		    elements,
		    json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, "
		              "s:{s:s, s:s}, s:{s:s, s:s}}}",
		              "type", "button", "text", "type", "plain_text", "text", "Reject",
		              "style", "danger", "action_id", "steppy-reject", "value",
		              t->decide_ref, "confirm", "title", "type", "plain_text", "text",
		              "Reject?", "text", "type", "plain_text", "text",
		              "The release stops at this step.", "confirm", "type", "plain_text",
		              "text", "Reject", "deny", "type", "plain_text", "text", "Cancel"));
	}
	if (t->url) {
		/* primary unless Approve is */
		bool primary = !json_array_size(elements);
		json_array_append_new(
		    elements,
		    json_pack("{s:s, s:{s:s, s:s}, s:s, s:s*, s:s}", "type", "button", "text",
		              "type", "plain_text", "text", notice_link_label(t), "url", t->url,
		              "style", primary ? "primary" : NULL, "action_id", "steppy-open"));
	}
	if (json_array_size(elements))
		json_array_append_new(
		    blocks, json_pack("{s:s, s:o}", "type", "actions", "elements", elements));
	else
		json_decref(elements);

	/* The fallback text, for notifications and clients without blocks. */
	slack_escape(&sb, t->title, SLACK_HEADER_CHARS);
	if (*t->message) {
		strbuf_addstr(&sb, "\n");
		slack_escape(&sb, t->message, SLACK_SECTION_CHARS - SLACK_HEADER_CHARS - 1);
	}
	json_t *msg = json_pack("{s:o, s:o}", "text", json_take_string(&sb), "blocks", blocks);
	strbuf_release(&sb);
	return msg;
}

char *format_slack(const struct notice_text *t)
{
	return json_dump_compact(slack_message(t, false));
}

char *format_slack_api(const struct notice_text *t, const char *slack_channel, const char *ts,
                       bool buttons)
{
	json_t *msg = slack_message(t, buttons);
	json_t *j = json_pack("{s:s}", "channel", slack_channel);
	if (ts)
		json_object_set_new(j, "ts", json_string(ts));
	json_object_update_new(j, msg);
	if (!ts) /* a preview would fetch the approval page for everyone in the channel */
		json_object_update_new(
		    j, json_pack("{s:b, s:b}", "unfurl_links", 0, "unfurl_media", 0));
	return json_dump_compact(j);
}

/* ---- sending --------------------------------------------------------------------------------- */

static const struct slack_config *slack_of(const struct channel *c)
{
	return c->type == &channel_slack ? c->config : NULL;
}

bool channel_slack_bot(const struct channel *c)
{
	const struct slack_config *s = slack_of(c);
	return s && s->slack_channel;
}

bool channel_slack_interactive(const struct channel *c)
{
	const struct slack_config *s = slack_of(c);
	return channel_slack_bot(c) && (s->signing_env || s->signing_file);
}

char *channel_slack_signing_secret(const struct channel *c, struct strbuf *err)
{
	if (!channel_slack_interactive(c))
		return NULL;
	const struct slack_config *s = slack_of(c);
	char *error = NULL;
	char *what = s->signing_env ? xstrdup("signingSecretEnv")
	                            : xstrfmt("signingSecretFile %s", s->signing_file);
	char *secret = read_secret(s->signing_env, s->signing_file, what, &error);
	free(what);
	if (!secret && err)
		strbuf_addf(err, "slack channel \"%s\": %s", c->name, error);
	free(error);
	return secret;
}

/*
 * Slack's Web API answers 200 with {"ok": true, ...}, or {"ok": false, "error":
 * "channel_not_found"}: final, but for Slack's own passing troubles.
 */
static void slack_answer(struct notify_delivery *d, const struct http_response *res)
{
	static const char *const passing[] = { "internal_error",      "fatal_error",
		                               "service_unavailable", "request_timeout",
		                               "ratelimited",         NULL };
	const struct channel_request *req = notify_request(d);
	json_t *j = json_loadb(res->body, res->len, 0, NULL);
	if (json_is_true(json_object_get(j, "ok"))) {
		json_decref(j);
		notify_attempt_done(d, true, NULL, false, 0);
		return;
	}
	const char *code = json_string_value(json_object_get(j, "error"));
	char *text = code ? text_snippet(code, strlen(code)) : text_snippet(res->body, res->len);
	bool retry = false;
	for (const char *const *p = passing; code && *p; p++)
		retry |= !strcmp(code, *p);
	notify_attempt_done(d, false,
	                    xstrfmt("%s refused by %s: %s", (const char *)req->data, req->host,
	                            text ? text : "no answer"),
	                    retry, 0);
	free(text);
	json_decref(j);
}

static void send_slack(struct notify_delivery *d)
{
	notify_http_post(d, notify_request(d)->data ? slack_answer : NULL);
}

/* A call of Slack's Web API method with body (taken), as the bot of channel c. */
static int prepare_api(const struct channel *c, const char *method, char *body,
                       struct channel_request *req, char **error)
{
	static const char *const http_schemes[] = { "http", "https", NULL };
	const struct slack_config *s = c->config;
	req->body = body;
	req->len = strlen(body);
	req->data = xstrdup(method); /* its answers say {"ok": false, "error": ...} when refused */
	req->url = xstrfmt("%s/%s", s->api_url, method);
	req->host = url_host(req->url, http_schemes);
	if (!req->host) {
		*error = xstrdup("\"apiUrl\" is not an http:// or https:// URL");
		return -1;
	}
	char *what = s->token_env ? xstrdup("tokenEnv") : xstrfmt("tokenFile %s", s->token_file);
	char *token = read_secret(s->token_env, s->token_file, what, error);
	free(what);
	if (!token)
		return -1;
	if (strpbrk(token, "\r\n")) {
		wipe(token);
		*error = xstrdup("the bot token holds a line break");
		return -1;
	}
	req->headers = xcalloc(1, sizeof(char *));
	req->headers[req->nheaders++] = xstrfmt("Authorization: Bearer %s", token);
	wipe(token);
	return 0;
}

static int format_slack_request(const struct channel *c, const struct notice_text *t,
                                struct channel_request *req, char **error)
{
	const struct slack_config *s = c->config;
	if (channel_slack_bot(c))
		return prepare_api(
		    c, "chat.postMessage",
		    format_slack_api(t, s->slack_channel, NULL, channel_slack_interactive(c)), req,
		    error);
	return hook_request(&s->hook, format_slack(t), req, error);
}

const struct channel_type channel_slack = {
	.name = "slack",
	.what = "a slack channel",
	.fields = slack_tables,
	.check = check_slack,
	.parse = parse_slack,
	.release = release_slack,
	.format = format_slack_request,
	.send = send_slack,
};

struct notify_delivery *notify_slack_update(struct notifier *n, const struct channel *c,
                                            const struct notice *notice, const char *slack_channel,
                                            const char *ts, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, done, arg);
	struct notice_text t;
	notice_text_init(&t, notice, wall_clock_ms());
	char *error = NULL;
	bool ready = false;
	if (!channel_slack_bot(c))
		error = xstrdup("not a Slack bot channel");
	else
		ready = prepare_api(
		            c, "chat.update",
		            format_slack_api(&t, slack_channel, ts, channel_slack_interactive(c)),
		            notify_request(d), &error) == 0;
	notice_text_release(&t);
	return delivery_start(d, ready, error);
}

struct notify_delivery *notify_slack_ephemeral(struct notifier *n, const struct channel *c,
                                               const char *slack_channel, const char *user,
                                               const char *text, notify_done_fn done, void *arg)
{
	struct notify_delivery *d = delivery_new(n, c, done, arg);
	char *error = NULL;
	bool ready = false;
	if (!channel_slack_bot(c)) {
		error = xstrdup("not a Slack bot channel");
	} else {
		struct strbuf esc = STRBUF_INIT;
		for (const char *p = text; *p; p++) /* mrkdwn: nothing in it is a link */
			if (*p == '&' || *p == '<' || *p == '>')
				strbuf_addstr(&esc, *p == '&'   ? "&amp;"
				                    : *p == '<' ? "&lt;"
				                                : "&gt;");
			else
				strbuf_addch(&esc, *p);
		json_t *j = json_pack("{s:s, s:s, s:s}", "channel", slack_channel, "user", user,
		                      "text", esc.buf);
		strbuf_release(&esc);
		ready = prepare_api(c, "chat.postEphemeral", json_dump_compact(j),
		                    notify_request(d), &error) == 0;
	}
	return delivery_start(d, ready, error);
}
