/*
 * auth.c - signing people in to the dashboard and the approval pages with
 * OpenID Connect, and the signed session cookies that keep them signed in.
 *
 * The flow (authorization code with PKCE, docs/dashboard.md):
 *   GET /auth/login?return=/approvals/TOKEN
 *       a fresh state, nonce and PKCE verifier go into a short-lived signed
 *       cookie (steppy_oidc, SameSite=Lax so it survives the way back); the
 *       browser is sent to the provider's authorization endpoint.
 *   GET <redirectPath>?code=..&state=..
 *       the state must match the cookie's; the code is redeemed with the
 *       verifier (oidc.c), the ID token verified; its claim (email,
 *       preferred_username or sub) is looked up in the people directory,
 *       which gives the steppy name and roles. A session cookie is set and a
 *       small page sends the browser on to where it came from: a path of
 *       this server only, never another site.
 *
 * A session cookie is "v1.<payload>.<mac>": the payload (base64url JSON:
 * name, roles, expiry) signed with HMAC-SHA256 under the server's secret,
 * which is new at every start (so a restart signs everyone out). API
 * tokens in the same cookie (the token sign-in) keep working as before.
 */
#include "server/auth.h"
#include "server/log.h"

#include "server/oidc.h"
#include "server/server-internal.h"
#include "util/alloc.h"
#include "util/error.h"

#include <cjose/cjose.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOGIN_TTL_S    600 /* from /auth/login to the provider's answer */
#define MAX_RETURN_LEN 1000
#define MAX_NAME_LEN   100

/* ---- signed values ------------------------------------------------------------------- */

/* base64url(HMAC-SHA256(secret, purpose ":" text)) (caller frees). */
static char *mac_of(const struct server *srv, const char *purpose, const char *text)
{
	unsigned char mac[32];
	unsigned int len = sizeof(mac);
	struct strbuf sb = STRBUF_INIT;
	strbuf_addf(&sb, "%s:%s", purpose, text);
	HMAC(EVP_sha256(), srv->secret, (int)sizeof(srv->secret), (const unsigned char *)sb.buf,
	     sb.len, mac, &len);
	strbuf_release(&sb);
	return oidc_b64url(mac, sizeof(mac));
}

/* "<base64url(json)>.<mac>" (caller frees). */
static char *sign_json(const struct server *srv, const char *purpose, json_t *payload /* taken */)
{
	char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(payload);
	char *b64 = oidc_b64url((const unsigned char *)text, strlen(text));
	free(text);
	char *mac = mac_of(srv, purpose, b64);
	char *out = xstrfmt("%s.%s", b64, mac);
	free(b64);
	free(mac);
	return out;
}

/* The JSON object of a value made by sign_json() if its mac is right, else NULL. */
static json_t *open_signed(const struct server *srv, const char *purpose, const char *value)
{
	const char *dot = value ? strrchr(value, '.') : NULL;
	if (!dot || dot == value || (size_t)(dot - value) > 4096)
		return NULL;
	char *b64 = xstrndup(value, (size_t)(dot - value));
	char *want = mac_of(srv, purpose, b64);
	bool ok =
	    strlen(dot + 1) == strlen(want) && CRYPTO_memcmp(dot + 1, want, strlen(want)) == 0;
	free(want);
	json_t *j = NULL;
	uint8_t *raw = NULL;
	size_t len = 0;
	cjose_err cerr;
	if (ok && cjose_base64url_decode(b64, strlen(b64), &raw, &len, &cerr)) {
		j = json_loadb((const char *)raw, len, 0, NULL);
		cjose_get_dealloc()(raw);
		if (!json_is_object(j)) {
			json_decref(j);
			j = NULL;
		}
	}
	free(b64);
	return j;
}

static char *random_b64(size_t nbytes)
{
	unsigned char raw[32];
	if (nbytes > sizeof(raw) || RAND_bytes(raw, (int)nbytes) != 1)
		abort(); /* no CSPRNG: nothing safe can be done */
	return oidc_b64url(raw, nbytes);
}

/* ---- sessions ------------------------------------------------------------------------- */

bool server_auth_on(const struct server *srv)
{
	return server_config(srv)->ntokens || server_config(srv)->oidc.issuer;
}

char *session_signed_cookie(const struct server *srv, const char *name, unsigned roles,
                            int64_t expires_s)
{
	json_t *p = json_pack("{sssisI}", "n", name, "r", (int)roles, "e", (json_int_t)expires_s);
	char *signed_value = sign_json(srv, "session", p);
	char *value = xstrfmt("v1.%s", signed_value);
	free(signed_value);
	char *cookie = session_cookie(srv, value);
	free(value);
	return cookie;
}

bool session_signed_check(const struct server *srv, const char *value, int64_t now_s, char *name,
                          size_t name_size, unsigned *ret_roles)
{
	if (!value || strncmp(value, "v1.", 3) != 0)
		return false;
	json_t *p = open_signed(srv, "session", value + 3);
	const char *n = json_string_value(json_object_get(p, "n"));
	json_t *r = json_object_get(p, "r"), *e = json_object_get(p, "e");
	bool ok = n && *n && strlen(n) < name_size && json_is_integer(r) && json_is_integer(e) &&
	          json_integer_value(e) > now_s;
	if (ok) {
		snprintf(name, name_size, "%s", n);
		*ret_roles =
		    (unsigned)json_integer_value(r) & (ROLE_VIEWER | ROLE_OPERATOR | ROLE_APPROVER);
	}
	json_decref(p);
	return ok;
}

/* ---- pages ---------------------------------------------------------------------------- */

bool auth_local_path(const char *s)
{
	if (!s || s[0] != '/' || s[1] == '/' || s[1] == '\\' || strlen(s) > MAX_RETURN_LEN)
		return false;
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	                         "-._~/?#=&%+:@!$,*()";
	return strspn(s, ok) == strlen(s);
}

static void html(struct strbuf *out, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '<')
			strbuf_addstr(out, "&lt;");
		else if (*s == '>')
			strbuf_addstr(out, "&gt;");
		else if (*s == '&')
			strbuf_addstr(out, "&amp;");
		else if (*s == '"')
			strbuf_addstr(out, "&quot;");
		else if (*s == '\'')
			strbuf_addstr(out, "&#39;");
		else
			strbuf_addch(out, *s);
	}
}

static void auth_page(struct request *rq, unsigned status, const char *title, const char *text,
                      const char *next)
{
	struct strbuf out = STRBUF_INIT;
	strbuf_addstr(&out, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
	if (next) {
		strbuf_addstr(&out, "<meta http-equiv=\"refresh\" content=\"0;url=");
		html(&out, next);
		strbuf_addstr(&out, "\">");
	}
	strbuf_addstr(&out, "<meta name=\"viewport\" content=\"width=device-width\"><title>");
	html(&out, title);
	strbuf_addstr(&out, "</title><style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;"
	                    "margin:2em auto;padding:0 1em}</style></head><body><h1>");
	html(&out, title);
	strbuf_addstr(&out, "</h1><p id=\"state\">");
	html(&out, text);
	strbuf_addstr(&out, "</p>");
	if (next) {
		strbuf_addstr(&out, "<p><a id=\"continue\" href=\"");
		html(&out, next);
		strbuf_addstr(&out, "\">Continue</a></p>");
	}
	strbuf_addstr(&out, "</body></html>\n");
	respond_text(rq, status, "text/html; charset=utf-8", out.buf, out.len);
	strbuf_release(&out);
}

void auth_sign_in_link(const struct request *rq, struct strbuf *out, const char *return_path)
{
	if (!server_config(rq->srv)->oidc.issuer || !auth_local_path(return_path))
		return;
	strbuf_addstr(out, "<p><a class=\"sso\" id=\"sso\" href=\"/auth/login?return=");
	for (const char *p = return_path; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    strchr("-._~/", c))
			strbuf_addch(out, (char)c);
		else
			strbuf_addf(out, "%%%02X", c);
	}
	strbuf_addstr(out, "\">Sign in with ");
	html(out, server_config(rq->srv)->oidc.label);
	strbuf_addstr(out, "</a></p>");
}

/* ---- the flow ------------------------------------------------------------------------- */

static char *redirect_uri(const struct server *srv)
{
	return xstrfmt("%s%s", srv->url, server_config(srv)->oidc.redirect_path);
}

static void h_login(struct request *rq)
{
	struct server *srv = rq->srv;
	const char *ret = request_query(rq, "return");
	if (!srv->oidc) {
		auth_page(rq, 404, "No single sign-on",
		          "This server does not sign people in through a provider (no \"oidc\" in "
		          "its configuration).",
		          NULL);
		return;
	}
	if (ret && !auth_local_path(ret)) {
		auth_page(rq, 400, "Bad request",
		          "Where to go after signing in must be a page of this server.", NULL);
		return;
	}
	char *state = random_b64(16), *nonce = random_b64(16), *verifier = random_b64(32);
	unsigned char h[32];
	SHA256((const unsigned char *)verifier, strlen(verifier), h);
	char *challenge = oidc_b64url(h, sizeof(h));
	char *uri = redirect_uri(srv);
	char *url = NULL;
	struct strbuf err = STRBUF_INIT;
	int r = oidc_authorize_url(srv->oidc, uri, state, nonce, challenge, &url, &err);
	if (r < 0) {
		log_eventf("error", "signin.error", "sign-in: %s", err.buf);
		auth_page(rq, 502, "Sign-in unavailable",
		          "The sign-in provider cannot be reached right now. Try again later, or "
		          "sign in with an API token.",
		          NULL);
	} else {
		json_t *p = json_pack("{sssssssssI}", "s", state, "n", nonce, "v", verifier, "r",
		                      ret ? ret : "/", "e", (json_int_t)(time(NULL) + LOGIN_TTL_S));
		char *value = sign_json(srv, "login", p);
		bool tls = server_config(srv)->tls_certificate || !strncmp(srv->url, "https://", 8);
		/* Lax: the provider sends the browser back with a cross-site navigation */
		rq->set_cookie = xstrfmt("steppy_oidc=%s; Path=/; HttpOnly; SameSite=Lax; "
		                         "Max-Age=%d%s",
		                         value, LOGIN_TTL_S, tls ? "; Secure" : "");
		free(value);
		rq->location = url;
		url = NULL;
		respond_text(rq, 303, "text/plain", "to the sign-in provider\n", 24);
	}
	strbuf_release(&err);
	free(url);
	free(uri);
	free(challenge);
	OPENSSL_cleanse(verifier, strlen(verifier));
	free(state);
	free(nonce);
	free(verifier);
}

/* The roles the provider's groups grant through oidc.groupRoles. */
static unsigned group_roles(const struct oidc_config *cfg, const json_t *claims)
{
	if (!cfg->groups_claim || !cfg->group_roles)
		return 0;
	const json_t *groups = json_object_get(claims, cfg->groups_claim);
	unsigned roles = 0;
	size_t i;
	json_t *g;
	json_array_foreach(groups, i, g)
	{
		if (!json_is_string(g))
			continue;
		roles |= roles_of_names(doc_get(cfg->group_roles, json_string_value(g)));
	}
	return roles;
}

/* Whether s is fit to be (part of) a name: printable, not too long. */
static bool printable(const char *s)
{
	if (!s || !*s || strlen(s) > MAX_NAME_LEN)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f)
			return false;
	return true;
}

/*
 * Who the claims say signed in: the directory's name and roles, or for a
 * value the directory lacks "oidc:VALUE" with oidc.defaultRoles (so that it
 * never matches an approver listed by name). Returns false with the reason.
 */
static bool map_claims(const struct server *srv, const json_t *claims, char *name, size_t name_size,
                       unsigned *roles, struct strbuf *why)
{
	const struct oidc_config *cfg = &server_config(srv)->oidc;
	const char *value = json_string_value(json_object_get(claims, cfg->claim));
	if (!printable(value)) {
		strbuf_addf(why, "the provider did not say who signed in (no usable \"%s\" claim)",
		            cfg->claim);
		return false;
	}
	if (!strcmp(cfg->claim, "email") &&
	    json_is_false(json_object_get(claims, "email_verified"))) {
		strbuf_addf(why, "the provider has not verified the address %s", value);
		return false;
	}
	const struct person *p = !strcmp(cfg->claim, "email")
	                             ? people_by_email(&server_config(srv)->people, value)
	                             : people_find(&server_config(srv)->people, value);
	unsigned extra = group_roles(cfg, claims);
	if (p) {
		snprintf(name, name_size, "%s", p->name);
		*roles = p->roles | extra;
	} else {
		snprintf(name, name_size, "oidc:%s", value);
		*roles = cfg->default_roles | extra;
	}
	if (!*roles) {
		strbuf_addf(why, "%s is not in this server's people directory", value);
		return false;
	}
	return true;
}

static void h_callback(struct request *rq)
{
	struct server *srv = rq->srv;
	const char *code = request_query(rq, "code"), *state = request_query(rq, "state");
	const char *perr = request_query(rq, "error");
	const char *cookie = MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, "steppy_oidc");
	json_t *login = open_signed(srv, "login", cookie);
	const char *want_state = json_string_value(json_object_get(login, "s"));
	const char *nonce = json_string_value(json_object_get(login, "n"));
	const char *verifier = json_string_value(json_object_get(login, "v"));
	const char *ret = json_string_value(json_object_get(login, "r"));
	json_t *e = json_object_get(login, "e");
	/* the login cookie is used once, whatever happens */
	rq->set_cookie = xstrdup("steppy_oidc=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
	if (!login || !want_state || !nonce || !verifier || !auth_local_path(ret) ||
	    !json_is_integer(e) || json_integer_value(e) < time(NULL)) {
		auth_page(rq, 400, "Sign-in expired",
		          "This sign-in was not started here, or took too long. Start again from "
		          "the page you wanted to open.",
		          NULL);
	} else if (!state || strlen(state) != strlen(want_state) ||
	           CRYPTO_memcmp(state, want_state, strlen(want_state)) != 0) {
		auth_page(rq, 400, "Sign-in refused",
		          "The provider's answer does not belong to this sign-in (state).", NULL);
	} else if (perr || !code || !*code || strlen(code) > 4096) {
		auth_page(rq, 403, "Sign-in cancelled",
		          "The provider did not sign you in. Start again from the page you wanted "
		          "to open.",
		          NULL);
	} else {
		char *uri = redirect_uri(srv);
		json_t *claims = NULL;
		struct strbuf err = STRBUF_INIT;
		int r = oidc_redeem(srv->oidc, code, uri, verifier, nonce, (int64_t)time(NULL),
		                    &claims, &err);
		char name[MAX_NAME_LEN + 8];
		unsigned roles = 0;
		if (r < 0) {
			log_eventf("warning", "signin.refused", "sign-in refused: %s", err.buf);
			auth_page(rq, r == SP_EIO ? 502 : 403, "Sign-in refused", err.buf, NULL);
		} else if (!map_claims(srv, claims, name, sizeof(name), &roles, &err)) {
			log_eventf("warning", "signin.refused", "sign-in refused: %s", err.buf);
			auth_page(rq, 403, "No access", err.buf, NULL);
		} else {
			free(rq->set_cookie);
			/* Both cookies: the session, and the end of the login one. */
			char *session = session_signed_cookie(
			    srv, name, roles,
			    (int64_t)time(NULL) + server_config(srv)->oidc.session_s);
			rq->set_cookie = session;
			rq->set_cookie_2 =
			    xstrdup("steppy_oidc=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
			log_eventf("info", "signin", "%s signed in through %s", name,
			           server_config(srv)->oidc.issuer);
			char *text = xstrfmt("Signed in as %s.", name);
			/* A page of ours moves on, so that the SameSite=Strict session
			 * cookie goes with the next request (a redirect chain that began
			 * at the provider would count as cross-site). */
			auth_page(rq, 200, "Signed in", text, ret);
			free(text);
		}
		strbuf_release(&err);
		json_decref(claims);
		free(uri);
	}
	json_decref(login);
}

bool auth_route(struct request *rq)
{
	struct server *srv = rq->srv;
	const char *method = !strcmp(rq->method, "HEAD") ? "GET" : rq->method;
	bool login = !strcmp(rq->url, "/auth/login");
	bool callback = srv->oidc && !strcmp(rq->url, server_config(srv)->oidc.redirect_path);
	if (!login && !callback)
		return false;
	if (strcmp(method, "GET") != 0) {
		respond_error(rq, 405, "method-not-allowed", "%s is not allowed here; use GET",
		              rq->method);
		return true;
	}
	if (callback)
		h_callback(rq);
	else
		h_login(rq);
	return true;
}

json_t *auth_methods_json(const struct server *srv)
{
	json_t *m = json_object();
	json_object_set_new(m, "token", json_boolean(server_config(srv)->ntokens > 0));
	if (server_config(srv)->oidc.issuer)
		json_object_set_new(m, "oidc",
		                    json_pack("{ssss}", "label", server_config(srv)->oidc.label,
		                              "url", "/auth/login"));
	return m;
}
