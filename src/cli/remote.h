/*
 * remote.h - the CLI as a client of `steppy serve`: approve, reject, abort
 * and retry with --server URL decide through the server's JSON API
 * (docs/openapi.yaml) under the identity of an API token, instead of
 * writing to a store under a name anyone can claim.
 *
 * One blocking request at a time (libcurl's easy interface); answers are
 * capped (1 MiB) and treated as hostile: a body that is not JSON is reported
 * as such, never trusted.
 */
#ifndef STEPPY_CLI_REMOTE_H
#define STEPPY_CLI_REMOTE_H

#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>

/* A server to talk to. Both strings are owned (remote_release frees them). */
struct remote {
	char *url;   /* "http(s)://host[:port][/prefix]", no trailing slash */
	char *token; /* the API token, or NULL to ask anonymously */
};

/*
 * Reads the API token: from token_file when not NULL (refused unless it is a
 * regular file that neither group nor others may read, as ssh does with
 * keys), else from $STEPPY_TOKEN, else none (*ret_token = NULL). A token is
 * one line of printable ASCII without spaces (at most 4 KiB). Returns 0 and
 * *ret_token (caller frees), or SP_EINVAL / SP_EIO with the reason in err.
 */
int remote_token_load(const char *token_file, char **ret_token, struct strbuf *err);

/*
 * Sets r up for url (http:// or https://, no query or fragment); takes
 * token. Returns 0, or SP_EINVAL (err says why; token is freed).
 */
int remote_init(struct remote *r, const char *url, char *token, struct strbuf *err);

/* True when r sends its token unencrypted beyond this machine: http:// to a
 * host other than localhost, 127.x.x.x or [::1]. */
bool remote_cleartext(const struct remote *r);

/* Frees what r holds; accepts a zeroed r. */
void remote_release(struct remote *r);

/*
 * Sends METHOD url+path (path starts with '/') with body (JSON, borrowed;
 * NULL for none) and the token as a bearer token. On an answer, returns 0
 * with *ret_status (HTTP status) and *ret_json (the parsed body, caller
 * decrefs; NULL when the body is empty or not JSON; control characters in
 * its strings replaced by '?', as it is shown on terminals). Returns SP_EIO when no
 * answer came (err names the URL and the reason), SP_ETOOBIG when the
 * answer exceeds 1 MiB.
 */
/*
 * The whole id of a release the server has, from an id or unique prefix
 * (the API takes whole ids only). Returns EXIT_OK and *ret_id (caller
 * frees), or prints why not and returns an exit code. (cmd-control.c)
 */
int remote_find(const struct remote *rm, const char *prefix, char **ret_id);

int remote_call(const struct remote *r, const char *method, const char *path, const json_t *body,
                long *ret_status, json_t **ret_json, struct strbuf *err);

/* The "message" of an API error body ({"error": {"code", "message"}}), or
 * NULL; borrowed from j. */
const char *remote_error_message(const json_t *j);
/* Its "code", or NULL; borrowed from j. */
const char *remote_error_code(const json_t *j);

#endif
