/*
 * config.c - reading the configuration of `steppy serve` (see config.h).
 */
#include "server/config.h"

#include "notify/notify.h"
#include "plan/schema.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const role_names[] = { "viewer", "operator", "approver", "admin", NULL };

static void check_listen(struct vctx *v, const struct doc_node *value)
{
	char host[256];
	int port;
	if (parse_listen(value->u.string.s, host, sizeof(host), &port) < 0)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an address to listen on: HOST:PORT, such as "
		        "127.0.0.1:8080 or 0.0.0.0:443",
		        value->u.string.s);
}

static void check_url(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an http:// or https:// URL (the address people open, "
		        "used in approval links)",
		        s);
}

static void check_sha256(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if (strlen(s) != 64 || !str_all_in(s, "0123456789abcdef"))
		v_error(v, value->pos, NULL,
		        "\"sha256\" is the token's SHA-256 in 64 lowercase hexadecimal digits "
		        "(steppy token prints it)");
}

static void check_s3(struct vctx *v, const struct doc_node *value)
{
	if (strncmp(value->u.string.s, "s3://", 5) != 0 || !value->u.string.s[5])
		v_error(v, value->pos, NULL, "\"s3\" is an address s3://BUCKET/PREFIX");
}

static void check_roles(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *r = value->u.array.items[i];
		if (r->kind != DOC_STRING)
			continue;
		bool known = false;
		for (int k = 0; role_names[k]; k++)
			known |= !strcmp(r->u.string.s, role_names[k]);
		if (!known) {
			size_t saved = v_push_index(v, i);
			v_error(v, r->pos, NULL,
			        "\"%.40s\" is not a role: viewer, operator, approver or admin",
			        r->u.string.s);
			v_pop(v, saved);
		}
	}
}

static void check_tokens(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "name",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 100,
		  .check = check_no_control_chars },
		{ .name = "sha256", .types = T_STRING, .flags = F_REQUIRED, .check = check_sha256 },
		{ .name = "roles",
		  .types = T_ARRAY,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .check = check_roles },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	for (size_t i = 0; i < value->u.array.len; i++) {
		size_t saved = v_push_index(v, i);
		schema_check_object(v, value->u.array.items[i], tables, "an API token");
		v_pop(v, saved);
	}
}

static void check_tls(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "certificate", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
		{ .name = "key", .types = T_STRING, .flags = F_REQUIRED | F_NONEMPTY },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	schema_check_object(v, value, tables, "\"tls\"");
}

static void check_aws(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "region", .types = T_STRING, .flags = F_NONEMPTY },
		{ .name = "profile", .types = T_STRING, .flags = F_NONEMPTY },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	schema_check_object(v, value, tables, "\"aws\"");
}

static void check_inbox(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "directory", .types = T_STRING, .flags = F_NONEMPTY },
		{ .name = "s3", .types = T_STRING, .check = check_s3 },
		{ .name = "pollSeconds", .types = T_INTEGER, .min = 1, .max = 3600 },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	schema_check_object(v, value, tables, "\"inbox\"");
}

static void check_email(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	const char *at = strchr(s, '@');
	if (!at || at == s || !at[1] || strchr(at + 1, '@') || strpbrk(s, " \t<>,;\"") ||
	    !str_all_in(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                   ".!#$%&'*+/=?^_`{|}~-@"))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an email address such as alice@example.com", s);
}

static void check_slack_user(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	if ((s[0] != 'U' && s[0] != 'W') || !s[1] ||
	    !str_all_in(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
		v_error(v, value->pos, NULL,
		        "\"%.40s\" is not a Slack user id (such as U0123ABCD: the member id in the "
		        "person's Slack profile)",
		        s);
}

static void check_group_names(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *g = value->u.array.items[i];
		if (g->kind == DOC_STRING &&
		    (!g->u.string.s[0] ||
		     !str_all_in(g->u.string.s,
		                 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                 "0123456789._-"))) {
			size_t saved = v_push_index(v, i);
			v_error(v, g->pos, NULL,
			        "\"%.40s\" is not a group name: letters, digits, \".\", \"_\" and "
			        "\"-\"",
			        g->u.string.s);
			v_pop(v, saved);
		}
	}
}

static void check_program(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *n = value->u.array.items[i];
		if (n->kind == DOC_STRING && n->u.string.s[0] != '/') {
			size_t saved = v_push_index(v, i);
			v_error(v, n->pos, NULL,
			        "\"%.80s\" is not an absolute path: list programs as Exec steps "
			        "must name them, such as /usr/bin/make",
			        n->u.string.s);
			v_pop(v, saved);
		}
	}
}

/* people: name -> { email, slack, groups, roles }; emails and Slack ids
 * name one person each, or a sign-in could not tell who it is. */
static void check_people(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "email", .types = T_STRING, .max_len = 254, .check = check_email },
		{ .name = "slack", .types = T_STRING, .max_len = 32, .check = check_slack_user },
		{ .name = "groups", .types = T_ARRAY, .check = check_group_names },
		{ .name = "roles", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_roles },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	static const char *const keys[] = { "email", "slack" };
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (!m->key[0] || strlen(m->key) > 100 || strpbrk(m->key, "@:") ||
		    !str_all_in(m->key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                        "0123456789._-"))
			v_error(v, m->key_pos, NULL,
			        "\"%.40s\" is not a person's name here: up to 100 letters, digits, "
			        "\".\", \"_\" and \"-\" (the name histories and approvers use)",
			        m->key);
		schema_check_object(v, m->value, tables, "a person");
		for (size_t k = 0; k < 2; k++) {
			const struct doc_node *n = doc_get(m->value, keys[k]);
			for (size_t j = 0; n && n->kind == DOC_STRING && j < i; j++) {
				const struct doc_node *o =
				    doc_get(value->u.object.members[j].value, keys[k]);
				if (o && o->kind == DOC_STRING &&
				    !strcasecmp(o->u.string.s, n->u.string.s)) {
					size_t s2 = v_push(v, keys[k]);
					v_error(v, n->pos, NULL, "\"%.80s\" is already %.40s's %s",
					        n->u.string.s, value->u.object.members[j].key,
					        keys[k]);
					v_pop(v, s2);
					break;
				}
			}
		}
		v_pop(v, saved);
	}
}

static void check_exec(struct vctx *v, const struct doc_node *value)
{
	static const struct field_spec fields[] = {
		{ .name = "enabled", .types = T_BOOL },
		{ .name = "inbox", .types = T_BOOL },
		{ .name = "allow", .types = T_ARRAY, .flags = F_NONEMPTY, .check = check_program },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	schema_check_object(v, value, tables, "\"exec\"");
}

/* An issuer or redirect must be https, or plain http on this machine (tests, a local proxy). */
static bool local_or_https(const char *s)
{
	if (!strncmp(s, "https://", 8))
		return s[8] != '\0';
	static const char *const local[] = { "http://127.0.0.1", "http://localhost", "http://[::1]",
		                             NULL };
	for (int i = 0; local[i]; i++) {
		size_t n = strlen(local[i]);
		if (!strncmp(s, local[i], n) && (s[n] == ':' || s[n] == '/' || !s[n]))
			return true;
	}
	return false;
}

static void check_issuer(struct vctx *v, const struct doc_node *value)
{
	if (!local_or_https(value->u.string.s))
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not an https:// URL (plain http is accepted only for "
		        "127.0.0.1, localhost and [::1])",
		        value->u.string.s);
}

static void check_redirect_path(struct vctx *v, const struct doc_node *value)
{
	const char *s = value->u.string.s;
	static const char *const taken[] = { "/api/", "/approvals/", "/assets/", "/auth/login",
		                             NULL };
	bool clash = !strcmp(s, "/");
	for (int i = 0; taken[i]; i++)
		clash |= !strncmp(s, taken[i], strlen(taken[i]));
	if (s[0] != '/' || s[1] == '/' || strpbrk(s, "?#\\ ") || strstr(s, "/.") || clash)
		v_error(v, value->pos, NULL,
		        "\"%.80s\" is not a free path of this server: a path such as "
		        "/auth/callback (not under /api/, /approvals/ or /assets/)",
		        s);
}

static void check_role_map(struct vctx *v, const struct doc_node *value)
{
	for (size_t i = 0; i < value->u.object.len; i++) {
		const struct doc_member *m = &value->u.object.members[i];
		size_t saved = v_push(v, m->key);
		if (m->value->kind != DOC_ARRAY)
			v_error(v, m->value->pos, NULL, "a list of roles, such as [approver]");
		else
			check_roles(v, m->value);
		v_pop(v, saved);
	}
}

static void check_oidc(struct vctx *v, const struct doc_node *value)
{
	static const char *const claims[] = { "email", "preferred_username", "sub", NULL };
	static const struct field_spec fields[] = {
		{ .name = "issuer", .types = T_STRING, .flags = F_REQUIRED, .check = check_issuer },
		{ .name = "clientId",
		  .types = T_STRING,
		  .flags = F_REQUIRED | F_NONEMPTY,
		  .max_len = 200,
		  .check = check_no_control_chars },
		{ .name = "clientSecretFile", .types = T_STRING, .flags = F_NONEMPTY },
		{ .name = "clientSecretEnv", .types = T_STRING, .check = check_env_name },
		{ .name = "redirectPath",
		  .types = T_STRING,
		  .max_len = 200,
		  .check = check_redirect_path },
		{ .name = "claim", .types = T_STRING, .choices = claims },
		{ .name = "groupsClaim", .types = T_STRING, .flags = F_NONEMPTY, .max_len = 100 },
		{ .name = "groupRoles", .types = T_OBJECT, .check = check_role_map },
		{ .name = "scopes",
		  .types = T_ARRAY,
		  .flags = F_NONEMPTY,
		  .check = check_string_list },
		{ .name = "defaultRoles", .types = T_ARRAY, .check = check_roles },
		{ .name = "sessionHours", .types = T_INTEGER, .min = 1, .max = 720 },
		{ .name = "label",
		  .types = T_STRING,
		  .flags = F_NONEMPTY,
		  .max_len = 60,
		  .check = check_no_control_chars },
		{ .name = NULL },
	};
	static const struct field_spec *const tables[] = { fields, NULL };
	schema_check_object(v, value, tables, "\"oidc\"");
	const struct doc_member *file = doc_member(value, "clientSecretFile");
	if (file && doc_get(value, "clientSecretEnv")) {
		size_t saved = v_push(v, "clientSecretFile");
		v_error(v, file->value->pos, NULL,
		        "give the client secret once: clientSecretFile or clientSecretEnv");
		v_pop(v, saved);
	}
	const struct doc_node *scopes = doc_get(value, "scopes");
	for (size_t i = 0; scopes && scopes->kind == DOC_ARRAY && i < scopes->u.array.len; i++) {
		const struct doc_node *sc = scopes->u.array.items[i];
		if (sc->kind == DOC_STRING &&
		    !str_all_in(sc->u.string.s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
		                                "OPQRSTUVWXYZ0123456789_-.:/")) {
			size_t s1 = v_push(v, "scopes");
			size_t s2 = v_push_index(v, i);
			v_error(v, sc->pos, NULL, "\"%.60s\" is not a scope name", sc->u.string.s);
			v_pop(v, s2);
			v_pop(v, s1);
		}
	}
}

/* pluginPath: absolute directories, without ':' (docs/plugins.md). */
static void check_plugin_dirs(struct vctx *v, const struct doc_node *value)
{
	check_string_list(v, value);
	for (size_t i = 0; i < value->u.array.len; i++) {
		const struct doc_node *d = value->u.array.items[i];
		if (d->kind == DOC_STRING &&
		    (d->u.string.s[0] != '/' || strchr(d->u.string.s, ':'))) {
			size_t saved = v_push_index(v, i);
			v_error(v, d->pos, NULL,
			        "a plugin directory is an absolute path without ':'");
			v_pop(v, saved);
		}
	}
}

static const struct field_spec config_fields[] = {
	{ .name = "listen", .types = T_STRING, .flags = F_NONEMPTY, .check = check_listen },
	{ .name = "publicUrl", .types = T_STRING, .flags = F_NONEMPTY, .check = check_url },
	{ .name = "store", .types = T_STRING, .flags = F_NONEMPTY },
	{ .name = "secretKeyFile", .types = T_STRING, .flags = F_NONEMPTY },
	{ .name = "tls", .types = T_OBJECT, .check = check_tls },
	{ .name = "tokens", .types = T_ARRAY, .check = check_tokens },
	{ .name = "channels", .types = T_OBJECT }, /* each one: channel_parse() */
	{ .name = "defaultChannels", .types = T_ARRAY, .check = check_string_list },
	{ .name = "aws", .types = T_OBJECT, .check = check_aws },
	{ .name = "inbox", .types = T_OBJECT, .check = check_inbox },
	{ .name = "exec", .types = T_OBJECT, .check = check_exec },
	{ .name = "maxBodyBytes", .types = T_INTEGER, .min = 1024, .max = 67108864 },
	{ .name = "clientTimeoutSeconds", .types = T_INTEGER, .min = 1, .max = 3600 },
	{ .name = "people", .types = T_OBJECT, .check = check_people },
	{ .name = "oidc", .types = T_OBJECT, .check = check_oidc },
	{ .name = "requestHeadTimeoutSeconds", .types = T_INTEGER, .min = 1, .max = 600 },
	{ .name = "maxConnections", .types = T_INTEGER, .min = 16, .max = 100000 },
	{ .name = "maxConnectionsPerAddress", .types = T_INTEGER, .min = 1, .max = 100000 },
	{ .name = "pluginPath", .types = T_ARRAY, .check = check_plugin_dirs },
	{ .name = NULL },
};

int parse_listen(const char *s, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *p = colon ? colon + 1 : s;
	size_t hn = colon ? (size_t)(colon - s) : 0;
	char *end;
	long n = strtol(p, &end, 10);
	if (!*p || *end || n < 0 || n > 65535 || hn >= host_size)
		return -1;
	if (hn >= 2 && s[0] == '[' && s[hn - 1] == ']') {
		s++;
		hn -= 2;
	}
	memcpy(host, s, hn);
	host[hn] = '\0';
	if (!hn)
		snprintf(host, host_size, "127.0.0.1");
	*port = (int)n;
	return 0;
}

void serve_config_defaults(struct serve_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen_host = "127.0.0.1";
	c->listen_port = 8080;
	c->inbox_poll_ms = 5000;
	c->max_body_bytes = 1u << 20;
	c->client_timeout_s = 30;
	c->head_timeout_s = 10;
	c->max_connections = 1024;
	c->max_per_address = 32;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch - 'a' + 10;
}

/* The ROLE_* bits of a valid "roles" list; every role includes viewer. */
static unsigned roles_from(const struct doc_node *roles)
{
	unsigned bits = 0;
	for (size_t k = 0; k < roles->u.array.len; k++) {
		const char *role = roles->u.array.items[k]->u.string.s;
		bits |= !strcmp(role, "viewer")     ? ROLE_VIEWER
		        : !strcmp(role, "operator") ? ROLE_OPERATOR | ROLE_VIEWER
		        : !strcmp(role, "approver") ? ROLE_APPROVER | ROLE_VIEWER
		                                    : ROLE_VIEWER | ROLE_OPERATOR | ROLE_APPROVER;
	}
	return bits;
}
static int config_check(struct doc *doc, int r, struct serve_config *c, struct diag_list *diags);

static const char *str(const struct doc_node *obj, const char *key)
{
	const struct doc_node *n = doc_get(obj, key);
	return n && n->kind == DOC_STRING ? n->u.string.s : NULL;
}

/* Fills c->people from a valid "people" object (or none). Strings stay in
 * the document; the person list and group lists are allocated. */
static void load_people(struct serve_config *c, const struct doc_node *people)
{
	size_t n = people ? people->u.object.len : 0;
	struct person *list = xcalloc(n ? n : 1, sizeof(*list));
	for (size_t i = 0; i < n; i++) {
		const struct doc_member *m = &people->u.object.members[i];
		struct person *p = &list[i];
		p->name = m->key;
		p->email = str(m->value, "email");
		p->slack_user = str(m->value, "slack");
		const struct doc_node *groups = doc_get(m->value, "groups");
		size_t ng = groups ? groups->u.array.len : 0;
		p->groups = xcalloc(ng + 1, sizeof(*p->groups));
		for (size_t k = 0; k < ng; k++)
			p->groups[k] = groups->u.array.items[k]->u.string.s;
		const struct doc_node *roles = doc_get(m->value, "roles");
		p->roles = roles ? roles_from(roles) : ROLE_VIEWER | ROLE_APPROVER;
	}
	c->people.list = list;
	c->people.n = n;
}

unsigned roles_of_names(const struct doc_node *list)
{
	return list && list->kind == DOC_ARRAY ? roles_from(list) : 0;
}

/*
 * The "oidc" section into c->oidc, once its fields are checked. The client
 * secret is read now: from its file, or from its environment variable,
 * which is then removed so that no command a release runs inherits it.
 */
static void load_oidc(struct vctx *v, struct doc *doc, struct serve_config *c,
                      const struct doc_node *node)
{
	struct oidc_config *o = &c->oidc;
	o->issuer = str(node, "issuer");
	o->client_id = str(node, "clientId");
	o->redirect_path = str(node, "redirectPath") ? str(node, "redirectPath") : "/auth/callback";
	o->claim = str(node, "claim") ? str(node, "claim") : "email";
	o->groups_claim = str(node, "groupsClaim");
	o->group_roles = doc_get(node, "groupRoles");
	o->default_roles = roles_of_names(doc_get(node, "defaultRoles"));
	const struct doc_node *hours = doc_get(node, "sessionHours");
	o->session_s = (hours ? hours->u.number.integer : 12) * 3600;
	o->label = str(node, "label") ? str(node, "label") : "single sign-on";
	/* scopes, space-separated, "openid" first whatever the list says */
	struct strbuf sc = STRBUF_INIT;
	strbuf_addstr(&sc, "openid");
	const struct doc_node *scopes = doc_get(node, "scopes");
	for (size_t i = 0; scopes && i < scopes->u.array.len; i++)
		if (strcmp(scopes->u.array.items[i]->u.string.s, "openid") != 0)
			strbuf_addf(&sc, " %s", scopes->u.array.items[i]->u.string.s);
	if (!scopes)
		strbuf_addstr(&sc, " email profile");
	o->scopes = arena_strdup(&doc->arena, sc.buf);
	strbuf_release(&sc);
	const struct doc_member *file = doc_member(node, "clientSecretFile");
	const struct doc_member *env = doc_member(node, "clientSecretEnv");
	char *secret = NULL;
	if (file) {
		struct strbuf e = STRBUF_INIT;
		size_t len;
		if (read_file_capped(file->value->u.string.s, 65536, &secret, &len, &e) < 0) {
			size_t s1 = v_push(v, "oidc");
			size_t s2 = v_push(v, "clientSecretFile");
			v_error(v, file->value->pos, NULL, "cannot read the client secret: %s",
			        e.buf);
			v_pop(v, s2);
			v_pop(v, s1);
		}
		strbuf_release(&e);
	} else if (env) {
		const char *val = getenv(env->value->u.string.s);
		if (!val || !*val) {
			size_t s1 = v_push(v, "oidc");
			size_t s2 = v_push(v, "clientSecretEnv");
			v_error(v, env->value->pos, NULL, "the environment variable %s is not set",
			        env->value->u.string.s);
			v_pop(v, s2);
			v_pop(v, s1);
		} else {
			secret = xstrdup(val);
			unsetenv(env->value->u.string.s);
		}
	}
	if (secret) {
		size_t n = strlen(secret);
		while (n &&
		       (secret[n - 1] == '\n' || secret[n - 1] == '\r' || secret[n - 1] == ' '))
			secret[--n] = '\0';
	}
	o->client_secret = secret;
}

int serve_config_load(const char *path, struct serve_config *c, struct diag_list *diags)
{
	serve_config_defaults(c);
	struct doc *doc = NULL;
	int r = doc_load(path, &doc, diags);
	return config_check(doc, r, c, diags);
}

int serve_config_parse(const char *name, const char *text, size_t len, struct serve_config *c,
                       struct diag_list *diags)
{
	serve_config_defaults(c);
	struct doc *doc = NULL;
	int r = doc_parse(name, text, len, doc_guess_syntax(name, text, len), &doc, diags);
	return config_check(doc, r, c, diags);
}

/* Checks the parsed document (r: the parser's result) and fills c. */
/* defaultChannels must name channels of "channels". */
static void check_default_channels(struct vctx *v, const struct doc_node *root)
{
	const struct doc_node *defaults = doc_get(root, "defaultChannels");
	const struct doc_node *channels = doc_get(root, "channels");
	for (size_t i = 0; defaults && defaults->kind == DOC_ARRAY && i < defaults->u.array.len;
	     i++) {
		const struct doc_node *n = defaults->u.array.items[i];
		if (n->kind == DOC_STRING && !(channels && channels->kind == DOC_OBJECT &&
		                               doc_get(channels, n->u.string.s))) {
			size_t s1 = v_push(v, "defaultChannels");
			size_t s2 = v_push_index(v, i);
			v_error(v, n->pos, NULL,
			        "no channel \"%.60s\" is configured under \"channels\"",
			        n->u.string.s);
			v_pop(v, s2);
			v_pop(v, s1);
		}
	}
}

/* One address may not take every connection. */
static void check_connection_limits(struct vctx *v, const struct doc_node *root)
{
	const struct doc_node *per = doc_get(root, "maxConnectionsPerAddress");
	const struct doc_node *all = doc_get(root, "maxConnections");
	int64_t all_n = all && all->kind == DOC_NUMBER && all->u.number.is_integer
	                    ? all->u.number.integer
	                    : 1024;
	if (per && per->kind == DOC_NUMBER && per->u.number.is_integer &&
	    per->u.number.integer >= all_n) {
		size_t s1 = v_push(v, "maxConnectionsPerAddress");
		v_error(v, per->pos, NULL,
		        "must be below maxConnections (%lld), or one address can take them all",
		        (long long)all_n);
		v_pop(v, s1);
	}
}

/* Parses every channel of "channels" into c->channel_list (problems to v). */
static void parse_channels(struct vctx *v, struct serve_config *c, const struct doc_node *channels)
{
	if (!channels || channels->kind != DOC_OBJECT)
		return;
	c->channel_list = xcalloc(channels->u.object.len + 1, sizeof(*c->channel_list));
	for (size_t i = 0; i < channels->u.object.len; i++) {
		const struct doc_member *m = &channels->u.object.members[i];
		size_t s1 = v_push(v, "channels");
		size_t s2 = v_push(v, m->key);
		struct channel *ch;
		if (channel_parse(v, m->key, m->value, &ch) == 0)
			c->channel_list[c->nchannels++] = ch;
		v_pop(v, s2);
		v_pop(v, s1);
	}
}

/* The server's limits: timeouts, connections, body size. */
static void apply_limits(struct serve_config *c, const struct doc_node *root)
{
	const struct doc_node *n;
	if ((n = doc_get(root, "clientTimeoutSeconds")))
		c->client_timeout_s = (unsigned)n->u.number.integer;
	if ((n = doc_get(root, "requestHeadTimeoutSeconds")))
		c->head_timeout_s = (unsigned)n->u.number.integer;
	if ((n = doc_get(root, "maxConnections")))
		c->max_connections = (unsigned)n->u.number.integer;
	if ((n = doc_get(root, "maxConnectionsPerAddress")))
		c->max_per_address = (unsigned)n->u.number.integer;
	if ((n = doc_get(root, "maxBodyBytes")))
		c->max_body_bytes = (size_t)n->u.number.integer;
}

/* The inbox and what Exec steps may run. */
static void apply_inbox_exec(struct serve_config *c, const struct doc_node *root)
{
	const struct doc_node *inbox = doc_get(root, "inbox");
	c->inbox_directory = str(inbox, "directory");
	c->inbox_s3 = str(inbox, "s3");
	const struct doc_node *poll = doc_get(inbox, "pollSeconds");
	if (poll)
		c->inbox_poll_ms = poll->u.number.integer * 1000;
	const struct doc_node *exec = doc_get(root, "exec");
	const struct doc_node *n;
	c->exec.enabled = (n = doc_get(exec, "enabled")) && n->u.boolean;
	c->exec.inbox = (n = doc_get(exec, "inbox")) && n->u.boolean;
	if ((n = doc_get(exec, "allow"))) {
		c->exec_allow = xcalloc(n->u.array.len + 1, sizeof(*c->exec_allow));
		for (size_t i = 0; i < n->u.array.len; i++)
			c->exec_allow[i] = n->u.array.items[i]->u.string.s;
		c->exec.allow = c->exec_allow;
	}
}

/* The API tokens: name, SHA-256 (from hex) and roles of each. */
static void apply_tokens(struct serve_config *c, const struct doc_node *root)
{
	const struct doc_node *tokens = doc_get(root, "tokens");
	c->ntokens = tokens ? tokens->u.array.len : 0;
	c->tokens = xcalloc(c->ntokens ? c->ntokens : 1, sizeof(*c->tokens));
	for (size_t i = 0; i < c->ntokens; i++) {
		const struct doc_node *t = tokens->u.array.items[i];
		struct api_token *at = &c->tokens[i];
		at->name = str(t, "name");
		const char *hex = str(t, "sha256");
		for (int k = 0; k < 32; k++)
			at->sha256[k] =
			    (unsigned char)(hexval(hex[2 * k]) << 4 | hexval(hex[2 * k + 1]));
		at->roles = roles_from(doc_get(t, "roles"));
	}
}

/* Takes the values of a checked configuration into c (pointing into doc). */
static void config_apply(struct serve_config *c, struct doc *doc)
{
	const struct doc_node *root = doc->root;
	c->doc = doc;
	const char *listen = str(root, "listen");
	if (listen) {
		char host[256];
		parse_listen(listen, host, sizeof(host), &c->listen_port);
		c->listen_host = arena_strdup(&doc->arena, host);
	}
	c->public_url = str(root, "publicUrl");
	c->store = str(root, "store");
	const struct doc_node *plugins = doc_get(root, "pluginPath");
	if (plugins && plugins->kind == DOC_ARRAY && plugins->u.array.len) {
		struct strbuf dirs = STRBUF_INIT;
		for (size_t i = 0; i < plugins->u.array.len; i++)
			strbuf_addf(&dirs, "%s%s", i ? ":" : "",
			            plugins->u.array.items[i]->u.string.s);
		c->plugin_path = arena_strdup(&doc->arena, dirs.buf);
		strbuf_release(&dirs);
	}
	c->secret_key_file = str(root, "secretKeyFile");
	const struct doc_node *tls = doc_get(root, "tls");
	c->tls_certificate = str(tls, "certificate");
	c->tls_key = str(tls, "key");
	c->channels = doc_get(root, "channels");
	const struct doc_node *defaults = doc_get(root, "defaultChannels");
	c->default_channels = defaults;
	c->ndefault_names = defaults ? defaults->u.array.len : 0;
	c->default_names = xcalloc(c->ndefault_names + 1, sizeof(*c->default_names));
	for (size_t i = 0; i < c->ndefault_names; i++)
		c->default_names[i] = defaults->u.array.items[i]->u.string.s;
	const struct doc_node *aws = doc_get(root, "aws");
	c->aws_region = str(aws, "region");
	c->aws_profile = str(aws, "profile");
	apply_inbox_exec(c, root);
	apply_limits(c, root);
	apply_tokens(c, root);
	load_people(c, doc_get(root, "people"));
}

static int config_check(struct doc *doc, int r, struct serve_config *c, struct diag_list *diags)
{
	if (r < 0) {
		c->doc = doc; /* for showing source lines; NULL if unreadable */
		return r;
	}
	/* bound = false: a configuration has no variables to speak of */
	struct vctx v = { .doc = doc, .diags = diags, .bound = false };
	strbuf_init(&v.ptr, SIZE_MAX);
	static const struct field_spec *const tables[] = { config_fields, NULL };
	schema_check_object(&v, doc->root, tables, "the configuration");
	check_default_channels(&v, doc->root);
	check_connection_limits(&v, doc->root);
	parse_channels(&v, c, doc_get(doc->root, "channels"));
	const struct doc_node *oidc = doc_get(doc->root, "oidc");
	if (oidc && oidc->kind == DOC_OBJECT && !diags->errors)
		load_oidc(&v, doc, c, oidc);
	strbuf_release(&v.ptr);
	if (diags->errors) {
		for (size_t i = 0; i < c->nchannels; i++)
			channel_free(c->channel_list[i]);
		free(c->channel_list);
		c->channel_list = NULL;
		c->nchannels = 0;
		c->doc = doc; /* for showing source lines */
		return SP_EINVAL;
	}
	config_apply(c, doc);
	return 0;
}

void serve_config_release(struct serve_config *c)
{
	if (c->oidc.client_secret) {
		memset(c->oidc.client_secret, 0, strlen(c->oidc.client_secret));
		free(c->oidc.client_secret);
	}
	for (size_t i = 0; i < c->nchannels; i++)
		channel_free(c->channel_list[i]);
	free(c->channel_list);
	free(c->default_names);
	free(c->exec_allow);
	free(c->tokens);
	for (size_t i = 0; i < c->people.n; i++)
		free((void *)c->people.list[i].groups);
	free((void *)c->people.list);
	doc_free(c->doc);
	memset(c, 0, sizeof(*c));
}
