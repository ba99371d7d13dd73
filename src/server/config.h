/*
 * config.h - the configuration of `steppy serve`: a YAML or JSON file read
 * with the plan reader (so every error names file:line:col and the JSON
 * pointer) and checked with the same field tables. docs/configuration.md
 * documents every key.
 */
#ifndef STEPPY_SERVER_CONFIG_H
#define STEPPY_SERVER_CONFIG_H

#include "core/people.h"
#include "core/policy.h"
#include "plan/diag.h"
#include "plan/doc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct channel;

/* What a token may do; a token has one or more. */
#define ROLE_VIEWER   (1u << 0) /* read executions, histories, metrics */
#define ROLE_OPERATOR (1u << 1) /* submit, abort, retry */
#define ROLE_APPROVER (1u << 2) /* approve and reject Human steps */

struct api_token {
	const char *name; /* the identity: who started or approved */
	unsigned char sha256[32];
	unsigned roles;
};

/*
 * OpenID Connect sign-in for the dashboard and the approval pages
 * (docs/configuration.md, "oidc"); on when issuer is not NULL. Strings
 * are borrowed from the configuration's document but client_secret.
 */
struct oidc_config {
	const char *issuer;        /* exactly as the provider's tokens say "iss" */
	const char *client_id;     /* steppy's client id at the provider */
	char *client_secret;       /* read from clientSecretFile or clientSecretEnv; owned and
	                            * wiped by serve_config_release(); NULL: a public client */
	const char *redirect_path; /* "/auth/callback": where the provider sends people back */
	const char *claim;         /* "email", "preferred_username" or "sub" */
	const char *groups_claim;  /* a claim listing the provider's groups, or NULL */
	const struct doc_node *group_roles; /* object: provider group -> list of roles, or NULL */
	const char *scopes;                 /* space-separated, always with "openid" */
	unsigned default_roles;             /* for names the people directory lacks; 0: refused */
	int64_t session_s;                  /* how long a sign-in lasts */
	const char *label;                  /* the button says "Sign in with LABEL" */
};

/* The roles a list of role names grants (viewer, operator, approver, admin). */
unsigned roles_of_names(const struct doc_node *list);

struct serve_config {
	struct doc *doc; /* owns every string below; NULL for the built-in defaults */
	const char *listen_host;
	int listen_port;
	const char *public_url;                /* no trailing slash */
	const char *store;                     /* or NULL: the command's default */
	const char *secret_key_file;           /* or NULL: the command's default */
	const char *tls_certificate, *tls_key; /* both or neither */
	struct api_token *tokens;
	size_t ntokens;
	const struct doc_node *channels;         /* object name -> channel, or NULL */
	const struct doc_node *default_channels; /* list of names, or NULL */
	struct channel **channel_list;           /* parsed; the server takes them */
	size_t nchannels;
	const char **default_names; /* NULL-terminated */
	size_t ndefault_names;
	const char *aws_region, *aws_profile; /* or NULL */
	const char *inbox_directory;          /* or NULL */
	const char *inbox_s3;                 /* s3://bucket/prefix, or NULL */
	int64_t inbox_poll_ms;
	size_t max_body_bytes;
	unsigned client_timeout_s; /* a connection silent this long is closed */
	struct people people;      /* the people directory; empty when not configured */
	struct exec_policy exec;   /* steps that run local code; all off by default */
	const char **exec_allow;   /* owned array behind exec.allow, or NULL */
	const char *plugin_path;   /* pluginPath as a colon list, or NULL (docs/plugins.md) */
	unsigned head_timeout_s;   /* a request head must arrive within this, whole */
	unsigned max_connections;  /* open connections in all */
	unsigned max_per_address;  /* open connections from one address, <= max_connections */
	struct oidc_config oidc;   /* oidc.issuer NULL: no OpenID Connect sign-in */
};

/* The defaults: 127.0.0.1:8080, no tokens (loopback only), no channels. */
void serve_config_defaults(struct serve_config *c);

/*
 * Reads and checks a configuration file. Returns 0, or a negative code with
 * every problem in diags (c->doc is then the document, when there is one,
 * for showing source lines). Free with serve_config_release() either way.
 */
int serve_config_load(const char *path, struct serve_config *c, struct diag_list *diags);

/* As serve_config_load, for text in memory named name (its extension
 * decides the syntax, as for a file); for the fuzzer. */
int serve_config_parse(const char *name, const char *text, size_t len, struct serve_config *c,
                       struct diag_list *diags);

/* Parses "HOST:PORT" or ":PORT" or "PORT". Returns 0 or -1. */
int parse_listen(const char *s, char *host, size_t host_size, int *port);

void serve_config_release(struct serve_config *c);

#endif
