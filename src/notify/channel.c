/*
 * channel.c - a channel's configuration, read and checked (see notify.h and
 * docs/channels.md).
 *
 * The fields of each channel type are tables for schema_check_object(), as
 * step types describe theirs, so types, required and unknown fields (with
 * suggestions), ranges and choices are reported the way plan mistakes are.
 * What tables cannot say (url or urlEnv, not both; a header given twice;
 * starttls on smtps://) is checked after them. A channel is built only from
 * a configuration without errors.
 */
#include "notify/notify-internal.h"
#include "plan/step-type.h"

#include "util/alloc.h"
#include "util/error.h"
#include "util/strmap.h"
#include "util/suggest.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_HEADERS    20
#define MAX_RECIPIENTS 50
#define MAX_NAME       64

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

static const char *const kind_names[] = {
	"slack", "teams", "webhook", "email", "sns", "log", NULL
};
static const char *const kind_what[] = { "a slack channel",  "a teams channel", "a webhook channel",
	                                 "an email channel", "an sns channel",  "a log channel" };

/* ---- checks of single values ----------------------------------------------------------------- */

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7F)
			return true;
	return false;
}

static void check_one_line(struct vctx *v, const struct doc_node *value)
{
	if (has_control(value->u.string.s))
		v_error(v, value->pos, NULL, "control characters are not allowed here");
	else if (value->u.string.len > 4096)
		v_error(v, value->pos, NULL, "longer than 4096 characters");
}

static void check_env_var(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING && !str_is_ident(value->u.string.s))
		v_error(
		    v, value->pos, NULL,
		    "\"%.80s\" is not a valid environment variable name (letters, digits and _, "
		    "not starting with a digit)",
		    value->u.string.s);
}

/*
 * Checks "scheme://authority..." for one of the schemes; returns false after
 * reporting. Credentials in the URL are refused: they would sit in the
 * configuration in clear.
 */
static bool check_url(struct vctx *v, const struct doc_node *value, const char *const *schemes,
                      const char *what, const char *instead)
{
	const char *s = value->u.string.s;
	const char *rest = NULL;
	for (const char *const *sc = schemes; *sc && !rest; sc++)
		if (!strncasecmp(s, *sc, strlen(*sc)))
			rest = s + strlen(*sc);
	size_t host = rest ? strcspn(rest, "/?#") : 0;
	bool bad =
	    !rest || !host || strlen(s) > 2048 || strpbrk(s, " \"<>\\^`{|}") || has_control(s);
	for (const unsigned char *p = (const unsigned char *)s; *p && !bad; p++)
		bad = *p >= 0x7F;
	if (bad) {
		v_error(v, value->pos, NULL, "\"%.80s\" is not %s", s, what);
		return false;
	}
	if (memchr(rest, '@', host)) {
		v_error(v, value->pos, NULL,
		        "the URL must not hold a user name or password: %s (secrets never go in "
		        "the configuration)",
		        instead);
		return false;
	}
	return true;
}

static void check_http_url(struct vctx *v, const struct doc_node *value)
{
	static const char *const schemes[] = { "https://", "http://", NULL };
	check_url(v, value, schemes, "an http:// or https:// URL",
	          "send credentials in a header from \"headersFromEnv\"");
}

static void check_smtp_url(struct vctx *v, const struct doc_node *value)
{
	static const char *const schemes[] = { "smtp://", "smtps://", NULL };
	check_url(v, value, schemes, "an smtp:// or smtps:// URL (smtps://mail.example.com:465)",
	          "give \"username\" and \"passwordEnv\"");
}

/* A bare ASCII address, local@domain, nothing that could end a header or a command. */
static bool is_address(const char *s)
{
	const char *at = strchr(s, '@');
	if (!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7F || strchr("<>()[]\\,;:\"", *p))
			return false;
	const char *d = at + 1;
	return d[0] != '.' && d[strlen(d) - 1] != '.' && !strstr(d, "..");
}

static void check_address(struct vctx *v, const struct doc_node *value)
{
	if (value->kind == DOC_STRING && !is_address(value->u.string.s))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not a mail address such as releases@example.com (a bare "
		        "address, without a display name)",
		        value->u.string.s);
}

static void check_recipients(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	if (value->u.array.len > MAX_RECIPIENTS)
		v_error(v, value->pos, NULL,
		        "\"to\" lists more than %d addresses (use a list address)", MAX_RECIPIENTS);
	for (size_t i = 0; i < value->u.array.len; i++) {
		size_t saved = v_push_index(v, i);
		if (value->u.array.items[i]->kind == DOC_STRING &&
		    value->u.array.items[i]->u.string.len)
			check_address(v, value->u.array.items[i]);
		v_pop(v, saved);
	}
}

/* arn:PARTITION:sns:REGION:ACCOUNT:NAME; returns the region's length (0 if not such an ARN). */
static size_t topic_region(const char *s, const char **region)
{
	if (strncmp(s, "arn:aws", 7) != 0)
		return 0;
	const char *p = strchr(s + 4, ':');
	if (!p || strncmp(p, ":sns:", 5) != 0)
		return 0;
	p += 5;
	size_t rlen = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
	if (!rlen || p[rlen] != ':')
		return 0;
	const char *account = p + rlen + 1;
	if (strspn(account, "0123456789") != 12 || account[12] != ':')
		return 0;
	const char *name = account + 13;
	size_t nlen = strlen(name);
	if (!nlen || nlen > 256 || !str_all_in(name, ALNUM "_-."))
		return 0;
	*region = p;
	return rlen;
}

static void check_topic_arn(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s, *region;
	size_t n = strlen(s);
	if (!topic_region(s, &region))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)", s);
	else if (n > 5 && !strcmp(s + n - 5, ".fifo"))
		v_error(v, value->pos, NULL,
		        "FIFO topics are not supported (they need a message group): use a standard "
		        "topic");
}

static void check_role_arn(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	const char *p = !strncmp(s, "arn:aws", 7) ? strchr(s + 4, ':') : NULL;
	bool ok = p && !strncmp(p, ":iam::", 6);
	if (ok) {
		p += 6;
		ok = strspn(p, "0123456789") == 12 && !strncmp(p + 12, ":role/", 6) && p[18] &&
		     str_all_in(p + 18, ALNUM "+=,.@_-/");
	}
	if (!ok)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)",
		        s);
}

/* ---- webhook headers ------------------------------------------------------------------------- */

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
	return !strcasecmp(name, "Authorization") || !strcasecmp(name, "Proxy-Authorization") ||
	       !strcasecmp(name, "Cookie");
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
			check_env_var(v, hv);
		} else if (memchr(hv->u.string.s, '\0', hv->u.string.len) ||
		           has_control(hv->u.string.s) || hv->u.string.len > 1024) {
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

/* ---- field tables ---------------------------------------------------------------------------- */

static const struct field_spec common_fields[] = {
	{ .name = "type", .types = T_STRING, .flags = F_REQUIRED, .choices = kind_names },
	{ .name = "timeoutSeconds", .types = T_INTEGER, .min = 1, .max = 300, .unit = "seconds" },
	{ .name = NULL },
};

static const struct field_spec hook_fields[] = {
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_http_url },
	{ .name = "urlEnv", .types = T_STRING, .flags = F_NONEMPTY, .check = check_env_var },
	{ .name = NULL },
};

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
	check_url(v, value, schemes, "an http:// or https:// URL (https://slack.com/api)",
	          "the token goes in \"tokenEnv\" or \"tokenFile\"");
}

/* Slack: an incoming webhook (url, urlEnv), or a bot (token, channel, signing secret). */
static const struct field_spec slack_fields[] = {
	{ .name = "tokenEnv", .types = T_STRING, .flags = F_NONEMPTY, .check = check_env_var },
	{ .name = "tokenFile",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 4096,
	  .check = check_one_line },
	{ .name = "channel", .types = T_STRING, .check = check_slack_channel_id },
	{ .name = "signingSecretEnv",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .check = check_env_var },
	{ .name = "signingSecretFile",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 4096,
	  .check = check_one_line },
	{ .name = "apiUrl",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_api_url },
	{ .name = NULL },
};

static const struct field_spec webhook_fields[] = {
	{ .name = "headers", .types = T_OBJECT, .check = check_plain_headers },
	{ .name = "headersFromEnv", .types = T_OBJECT, .check = check_env_headers },
	{ .name = NULL },
};

static const struct field_spec email_fields[] = {
	{ .name = "url",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 2048,
	  .check = check_smtp_url },
	{ .name = "starttls", .types = T_BOOL },
	{ .name = "username",
	  .types = T_STRING,
	  .flags = F_NONEMPTY,
	  .max_len = 256,
	  .check = check_one_line },
	{ .name = "passwordEnv", .types = T_STRING, .flags = F_NONEMPTY, .check = check_env_var },
	{ .name = "from", .types = T_STRING, .flags = F_REQUIRED, .check = check_address },
	{ .name = "to",
	  .types = T_ARRAY,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .check = check_recipients },
	{ .name = NULL },
};

static const struct field_spec sns_fields[] = {
	{ .name = "topicArn", .types = T_STRING, .flags = F_REQUIRED, .check = check_topic_arn },
	{ .name = "roleArn", .types = T_STRING, .check = check_role_arn },
	{ .name = NULL },
};

static const struct field_spec log_fields[] = {
	{ .name = "path",
	  .types = T_STRING,
	  .flags = F_REQUIRED | F_NONEMPTY,
	  .max_len = 4096,
	  .check = check_one_line },
	{ .name = NULL },
};

/* The tables of each kind, in enum channel_kind order. */
static const struct field_spec *const kind_tables[][4] = {
	[CHANNEL_SLACK] = { common_fields, hook_fields, slack_fields, NULL },
	[CHANNEL_TEAMS] = { common_fields, hook_fields, NULL },
	[CHANNEL_WEBHOOK] = { common_fields, hook_fields, webhook_fields, NULL },
	[CHANNEL_EMAIL] = { common_fields, email_fields, NULL },
	[CHANNEL_SNS] = { common_fields, sns_fields, NULL },
	[CHANNEL_LOG] = { common_fields, log_fields, NULL },
};

/* ---- what tables cannot say ------------------------------------------------------------------ */

static void check_name(struct vctx *v, const char *name, const struct doc_node *node)
{
	size_t n = strlen(name);
	if (!n || n > MAX_NAME || !strchr(ALNUM, name[0]) || !str_all_in(name, ALNUM "_.-"))
		v_error(v, node->pos, NULL,
		        "\"%.80s\" is not a valid channel name (up to %d letters, digits, _, . and "
		        "-, starting with a letter or digit)",
		        name, MAX_NAME);
	else if (!strcmp(name, "terminal") || !strcmp(name, "log"))
		v_error(v, node->pos, NULL,
		        "\"%s\" is the name of a built-in channel: choose another name", name);
}

static void check_one_of(struct vctx *v, const struct doc_node *node, const char *what,
                         const char *a, const char *b)
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

static void check_email(struct vctx *v, const struct doc_node *node)
{
	const struct doc_node *url = doc_get(node, "url");
	const struct doc_member *tls = doc_member(node, "starttls");
	if (tls && tls->value->kind == DOC_BOOL && tls->value->u.boolean && url &&
	    url->kind == DOC_STRING && !strncasecmp(url->u.string.s, "smtps://", 8)) {
		size_t saved = v_push(v, "starttls");
		v_error(v, tls->key_pos, NULL,
		        "\"starttls\" is for smtp:// URLs (smtps:// uses TLS from the start)");
		v_pop(v, saved);
	}
	const struct doc_member *user = doc_member(node, "username");
	const struct doc_member *pass = doc_member(node, "passwordEnv");
	if (!user != !pass) {
		const struct doc_member *m = user ? user : pass;
		size_t saved = v_push(v, m->key);
		v_error(v, m->key_pos, NULL, "\"username\" and \"passwordEnv\" go together");
		v_pop(v, saved);
	}
}

/* Webhook mode (url or urlEnv) or bot mode (a token, a channel id), not both. */
static void check_slack(struct vctx *v, const struct doc_node *node)
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
		check_one_of(v, node, "a slack channel", "url", "urlEnv");
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

/* ---- building -------------------------------------------------------------------------------- */

static char *get_string(const struct doc_node *node, const char *key)
{
	const struct doc_node *n = doc_get(node, key);
	return n && n->kind == DOC_STRING ? xstrdup(n->u.string.s) : NULL;
}

static void add_headers(struct channel *c, const struct doc_node *h, bool from_env)
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

static struct channel *build(const char *name, enum channel_kind kind, const struct doc_node *node)
{
	struct channel *c = xcalloc(1, sizeof(*c));
	c->name = xstrdup(name);
	c->kind = kind;
	const struct doc_node *timeout = doc_get(node, "timeoutSeconds");
	c->timeout_ms = timeout                 ? (long)timeout->u.number.integer * 1000
	                : kind == CHANNEL_EMAIL ? 30000
	                                        : 10000;
	c->url = get_string(node, "url");
	c->url_env = get_string(node, "urlEnv");
	c->token_env = get_string(node, "tokenEnv");
	c->token_file = get_string(node, "tokenFile");
	c->slack_channel = get_string(node, "channel");
	c->signing_env = get_string(node, "signingSecretEnv");
	c->signing_file = get_string(node, "signingSecretFile");
	c->api_url = get_string(node, "apiUrl");
	if (c->slack_channel && !c->api_url)
		c->api_url = xstrdup("https://slack.com/api");
	if (c->api_url) {
		size_t n = strlen(c->api_url);
		while (n && c->api_url[n - 1] == '/')
			c->api_url[--n] = '\0';
	}
	const struct doc_node *h = doc_get(node, "headers"), *he = doc_get(node, "headersFromEnv");
	size_t nh = (h ? h->u.object.len : 0) + (he ? he->u.object.len : 0);
	if (nh) {
		c->headers = xcalloc(nh, sizeof(*c->headers));
		add_headers(c, h, false);
		add_headers(c, he, true);
	}
	const struct doc_node *tls = doc_get(node, "starttls");
	c->starttls = tls && tls->u.boolean;
	c->username = get_string(node, "username");
	c->password_env = get_string(node, "passwordEnv");
	c->from = get_string(node, "from");
	const struct doc_node *to = doc_get(node, "to");
	if (to) {
		c->to = xcalloc(to->u.array.len, sizeof(*c->to));
		for (size_t i = 0; i < to->u.array.len; i++)
			c->to[c->nto++] = xstrdup(to->u.array.items[i]->u.string.s);
	}
	c->topic_arn = get_string(node, "topicArn");
	if (c->topic_arn) {
		const char *region;
		size_t n = topic_region(c->topic_arn, &region);
		c->region = xstrndup(region, n);
	}
	c->role_arn = get_string(node, "roleArn");
	c->path = get_string(node, "path");
	return c;
}

/* channel_parse without the care for v->bound. */
static int parse(struct vctx *v, const char *name, const struct doc_node *node,
                 struct channel **ret)
{
	size_t errors = v->diags->errors;
	check_name(v, name, node);
	if (node->kind != DOC_OBJECT) {
		schema_check_object(v, node, kind_tables[CHANNEL_LOG], "a channel");
		return SP_EINVAL;
	}
	const struct doc_node *type = doc_get(node, "type");
	if (!type) {
		v_error(
		    v, node->pos, NULL,
		    "a channel needs a \"type\" field (slack, teams, webhook, email, sns or log)");
		return SP_EINVAL;
	}
	size_t kind = 0;
	while (kind_names[kind] &&
	       !(type->kind == DOC_STRING && !strcmp(type->u.string.s, kind_names[kind])))
		kind++;
	if (!kind_names[kind]) {
		size_t saved = v_push(v, "type");
		schema_check_value(v, type, &common_fields[0]);
		if (v->diags->errors == errors) /* "${x}": not a choice either */
			v_error(v, type->pos, NULL,
			        "\"type\" must be one of slack, teams, webhook, email, sns, log");
		v_pop(v, saved);
		return SP_EINVAL;
	}
	const char *what = kind_what[kind];
	schema_check_object(v, node, kind_tables[kind], what);
	switch ((enum channel_kind)kind) {
	case CHANNEL_SLACK:
		check_slack(v, node);
		break;
	case CHANNEL_TEAMS:
		check_one_of(v, node, what, "url", "urlEnv");
		break;
	case CHANNEL_WEBHOOK:
		check_one_of(v, node, what, "url", "urlEnv");
		check_header_twice(v, node);
		break;
	case CHANNEL_EMAIL:
		check_email(v, node);
		break;
	case CHANNEL_SNS:
	case CHANNEL_LOG:
		break;
	}
	if (v->diags->errors != errors)
		return SP_EINVAL;
	*ret = build(name, (enum channel_kind)kind, node);
	return 0;
}

int channel_parse(struct vctx *v, const char *name, const struct doc_node *node,
                  struct channel **ret)
{
	/* No variables here: unbound, so no message says "after substituting variables"; the
	 * checks above never defer a value that holds "${". */
	bool bound = v->bound;
	v->bound = false;
	int r = parse(v, name, node, ret);
	v->bound = bound;
	return r;
}

void channel_free(struct channel *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->headers);
	for (size_t i = 0; i < c->nto; i++)
		free(c->to[i]);
	free(c->to);
	char *strings[] = { c->name,          c->url,         c->url_env,      c->username,
		            c->password_env,  c->from,        c->topic_arn,    c->region,
		            c->role_arn,      c->path,        c->token_env,    c->token_file,
		            c->slack_channel, c->signing_env, c->signing_file, c->api_url };
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
		free(strings[i]);
	free(c);
}

const char *channel_name(const struct channel *c)
{
	return c->name;
}

const char *channel_type(const struct channel *c)
{
	return kind_names[c->kind];
}

/* ---- names in plans -------------------------------------------------------------------------- */

/* Checks one step's "channels" (v->ptr is the step's pointer). */
static void check_step_channels(struct vctx *v, const struct doc_node *step,
                                const char *const *known, const char *const *candidates,
                                bool notify, const char *where)
{
	const struct doc_node *list = doc_get(step, "channels");
	if (!list || list->kind != DOC_ARRAY)
		return;
	size_t s1 = v_push(v, "channels");
	for (size_t i = 0; i < list->u.array.len; i++) {
		const struct doc_node *item = list->u.array.items[i];
		if (item->kind != DOC_STRING || strstr(item->u.string.s, "${"))
			continue;
		const char *name = item->u.string.s;
		bool found = notify && (!strcmp(name, "terminal") || !strcmp(name, "log") ||
		                        (!strncmp(name, "arn:", 4) && strstr(name, ":sns:")));
		for (const char *const *k = known; *k && !found; k++)
			found = !strcmp(*k, name);
		if (found)
			continue;
		size_t s2 = v_push_index(v, i);
		struct strbuf list_text = STRBUF_INIT;
		for (const char *const *k = known; *k; k++)
			strbuf_addf(&list_text, "%s%s", k == known ? "" : ", ", *k);
		if (!*known)
			v_error(v, item->pos, notify ? suggest_closest(name, candidates) : NULL,
			        "no channel \"%.64s\" is configured: %s has no channels%s", name,
			        where,
			        notify ? " (a Notify step may use \"terminal\" and \"log\")" : "");
		else
			v_error(v, item->pos, suggest_closest(name, notify ? candidates : known),
			        "no channel \"%.64s\" is configured (%s has %s)", name, where,
			        list_text.buf);
		strbuf_release(&list_text);
		v_pop(v, s2);
	}
	v_pop(v, s1);
}

size_t channels_check_plan(struct channel *const *channels, size_t n, const struct doc *doc,
                           const char *where, struct diag_list *diags)
{
	size_t errors = diags->errors;
	const char **known = xcalloc(n + 3, sizeof(*known));
	for (size_t i = 0; i < n; i++)
		known[i] = channels[i]->name;
	const char **with_builtins = xcalloc(n + 3, sizeof(*with_builtins));
	memcpy(with_builtins, known, n * sizeof(*known));
	with_builtins[n] = "terminal";
	with_builtins[n + 1] = "log";
	struct vctx v = { .doc = doc, .diags = diags, .bound = false };
	strbuf_init(&v.ptr, SIZE_MAX);
	const struct doc_node *stages = doc_get(doc->root, "stages");
	for (size_t i = 0; stages && stages->kind == DOC_ARRAY && i < stages->u.array.len; i++) {
		const struct doc_node *steps = doc_get(stages->u.array.items[i], "steps");
		size_t s1 = v_push(&v, "stages");
		size_t s2 = v_push_index(&v, i);
		size_t s3 = v_push(&v, "steps");
		for (size_t k = 0; steps && steps->kind == DOC_ARRAY && k < steps->u.array.len;
		     k++) {
			const struct doc_node *step = steps->u.array.items[k];
			const struct doc_node *type = doc_get(step, "type");
			if (!type || type->kind != DOC_STRING)
				continue;
			bool notify = !strcmp(type->u.string.s, "Notify");
			const struct step_type *t = step_type_find(type->u.string.s);
			if (!notify && !(t && (t->flags & STEP_DECISION)))
				continue;
			size_t s4 = v_push_index(&v, k);
			check_step_channels(&v, step, known, with_builtins, notify, where);
			v_pop(&v, s4);
		}
		v_pop(&v, s3);
		v_pop(&v, s2);
		v_pop(&v, s1);
	}
	free(with_builtins);
	free(known);
	strbuf_release(&v.ptr);
	return diags->errors - errors;
}
