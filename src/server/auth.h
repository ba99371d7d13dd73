/*
 * auth.h - OpenID Connect sign-in and signed session cookies for
 * `steppy serve` (auth.c). Connection threads.
 */
#ifndef STEPPY_SERVER_AUTH_H
#define STEPPY_SERVER_AUTH_H

#include "util/strbuf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;
struct request;

/* Whether the server knows who asks (API tokens or OpenID Connect are
 * configured); without either everyone is "anonymous" on loopback. */
bool server_auth_on(const struct server *srv);

/* The Set-Cookie value of a signed session for name with roles until
 * expires_s (seconds since the epoch); caller frees. */
char *session_signed_cookie(const struct server *srv, const char *name, unsigned roles,
                            int64_t expires_s);

/*
 * Checks a session cookie's value ("v1...."): true if this server signed it
 * and it has not expired; then name (of name_size bytes) and *ret_roles
 * are set. False for anything else, API tokens included.
 */
bool session_signed_check(const struct server *srv, const char *value, int64_t now_s, char *name,
                          size_t name_size, unsigned *ret_roles);

/* Whether s is a path of this server to send a browser to after signing in
 * ("/approvals/X", "/#/executions/Y"): no scheme, no host, no "//". */
bool auth_local_path(const char *s);

/* Answers /auth/login and the configured redirect path; false (nothing
 * answered) for any other path. */
bool auth_route(struct request *rq);

/* Appends "Sign in with LABEL" (a link to /auth/login that comes back to
 * return_path) to a page, when OpenID Connect is configured. */
void auth_sign_in_link(const struct request *rq, struct strbuf *out, const char *return_path);

/* {"token": bool, "oidc": {"label", "url"}}: how one may sign in here. */
json_t *auth_methods_json(const struct server *srv);

#endif
