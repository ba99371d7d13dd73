/*
 * oidc.c - the OpenID Connect client (see oidc.h): discovery, keys, the
 * code exchange, and ID token verification with libcjose.
 */
#include "server/oidc.h"

#include "server/config.h"
#include "util/alloc.h"
#include "util/error.h"

#include <cjose/cjose.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ANSWER   (1u << 20) /* bytes of one answer from the provider */
#define TIMEOUT_S    10L
#define DISCOVERY_S  3600 /* how long a discovery document is trusted */
#define MAX_KEYS     50
#define MIN_RSA_BITS 2048

struct key {
	char *kid;        /* or NULL */
	bool rsa;         /* else EC P-256 */
	cjose_jwk_t *jwk; /* owned */
};

struct oidc {
	const struct oidc_config *cfg;
	pthread_mutex_t lock; /* guards everything below */
	int64_t discovered_s; /* when the discovery document was read; 0: never */
	char *authorization_endpoint, *token_endpoint, *jwks_uri;
	bool secret_post; /* the provider takes client_secret_post only */
	struct key keys[MAX_KEYS];
	size_t nkeys;
};

struct oidc *oidc_new(const struct oidc_config *cfg)
{
	struct oidc *o = xcalloc(1, sizeof(*o));
	o->cfg = cfg;
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

static void drop_keys(struct oidc *o)
{
	for (size_t i = 0; i < o->nkeys; i++) {
		free(o->keys[i].kid);
		cjose_jwk_release(o->keys[i].jwk);
	}
	o->nkeys = 0;
}

void oidc_free(struct oidc *o)
{
	if (!o)
		return;
	drop_keys(o);
	free(o->authorization_endpoint);
	free(o->token_endpoint);
	free(o->jwks_uri);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

char *oidc_b64url(const unsigned char *data, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = xmalloc((n + 2) / 3 * 4 + 1);
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = abc[v & 63];
	}
	if (i + 1 == n) {
		unsigned v = (unsigned)data[i] << 16;
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
	} else if (i + 2 == n) {
		unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8;
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
	}
	out[o] = '\0';
	return out;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
	struct strbuf *sb = arg;
	return strbuf_add(sb, data, size * n) < 0 ? 0 : size * n;
}

/* http://127.0.0.1, http://localhost and http://[::1] (tests, a local proxy), else https. */
static bool acceptable_url(const char *url)
{
	if (!strncmp(url, "https://", 8))
		return url[8] != '\0';
	static const char *const local[] = { "http://127.0.0.1", "http://localhost", "http://[::1]",
		                             NULL };
	for (int i = 0; local[i]; i++) {
		size_t n = strlen(local[i]);
		if (!strncmp(url, local[i], n) && (url[n] == ':' || url[n] == '/' || !url[n]))
			return true;
	}
	return false;
}

/*
 * GET (form NULL) or POST form to url; *ret_json is the answer's JSON
 * object whatever the status (for the provider's error), *ret_status the
 * status. Returns 0 or SP_EIO (with what in err).
 */
static int http_json(const char *url, const char *form, const char *user, const char *password,
                     long *ret_status, json_t **ret_json, const char *what, struct strbuf *err)
{
	CURL *c = curl_easy_init();
	if (!c) {
		strbuf_addf(err, "%s: cannot start an HTTP request", what);
		return SP_EIO;
	}
	struct strbuf body;
	strbuf_init(&body, MAX_ANSWER);
	struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "steppy");
	if (form) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	}
	if (user) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERNAME, user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, password);
	}
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(c);
	int r = 0;
	if (rc != CURLE_OK) {
		strbuf_addf(err, "%s: %s", what,
		            rc == CURLE_WRITE_ERROR ? "the answer is larger than 1 MiB"
		                                    : curl_easy_strerror(rc));
		r = SP_EIO;
	} else {
		json_t *j = json_loadb(body.buf, body.len, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(j)) {
			json_decref(j);
			strbuf_addf(err, "%s: HTTP %ld without a JSON object", what, status);
			r = SP_EIO;
		} else {
			*ret_json = j;
			*ret_status = status;
		}
	}
	strbuf_release(&body);
	return r;
}

/* ---- discovery and keys ----------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* Reads the discovery document unless a fresh one is cached. Under the lock. */
static int discover(struct oidc *o, int64_t now_s, struct strbuf *err)
{
	if (o->discovered_s && now_s - o->discovered_s < DISCOVERY_S)
		return 0;
	const char *iss = o->cfg->issuer;
	size_t n = strlen(iss);
	while (n && iss[n - 1] == '/')
		n--;
	char *url = xstrfmt("%.*s/.well-known/openid-configuration", (int)n, iss);
	json_t *doc = NULL;
	long status = 0;
	int r = http_json(url, NULL, NULL, NULL, &status, &doc, "the provider's discovery document",
	                  err);
	free(url);
	if (r < 0)
		return r;
	const char *issuer = jstr(doc, "issuer");
	const char *authz = jstr(doc, "authorization_endpoint");
	const char *token = jstr(doc, "token_endpoint");
	const char *jwks = jstr(doc, "jwks_uri");
	if (status != 200) {
		strbuf_addf(err, "the provider's discovery document: HTTP %ld", status);
		r = SP_EIO;
	} else if (!issuer || strcmp(issuer, o->cfg->issuer) != 0) {
		strbuf_addf(err,
		            "the provider's discovery document names another issuer (\"%.200s\", "
		            "configured: \"%s\")",
		            issuer ? issuer : "", o->cfg->issuer);
		r = SP_EINVAL;
	} else if (!authz || !token || !jwks || !acceptable_url(authz) || !acceptable_url(token) ||
	           !acceptable_url(jwks)) {
		strbuf_addstr(err, "the provider's discovery document lacks https URLs for "
		                   "authorization_endpoint, token_endpoint and jwks_uri");
		r = SP_EINVAL;
	} else {
		free(o->authorization_endpoint);
		free(o->token_endpoint);
		free(o->jwks_uri);
		o->authorization_endpoint = xstrdup(authz);
		o->token_endpoint = xstrdup(token);
		o->jwks_uri = xstrdup(jwks);
		/* client_secret_basic is the default; some providers take only _post */
		const json_t *methods =
		    json_object_get(doc, "token_endpoint_auth_methods_supported");
		bool basic = !json_is_array(methods), post = false;
		size_t i;
		json_t *m;
		json_array_foreach(methods, i, m)
		{
			basic |= json_is_string(m) &&
			         !strcmp(json_string_value(m), "client_secret_basic");
			post |= json_is_string(m) &&
			        !strcmp(json_string_value(m), "client_secret_post");
		}
		o->secret_post = !basic && post;
		o->discovered_s = now_s;
	}
	json_decref(doc);
	return r;
}

/* Fetches the provider's keys, replacing those held. Under the lock. */
static int fetch_keys(struct oidc *o, struct strbuf *err)
{
	json_t *doc = NULL;
	long status = 0;
	int r = http_json(o->jwks_uri, NULL, NULL, NULL, &status, &doc,
	                  "the provider's keys (JWKS)", err);
	if (r < 0)
		return r;
	const json_t *keys = json_object_get(doc, "keys");
	if (status != 200 || !json_is_array(keys)) {
		strbuf_addf(err, "the provider's keys (JWKS): HTTP %ld without a \"keys\" list",
		            status);
		json_decref(doc);
		return SP_EIO;
	}
	drop_keys(o);
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		const char *kty = jstr(k, "kty"), *use = jstr(k, "use"), *crv = jstr(k, "crv");
		if (o->nkeys == MAX_KEYS || !kty || (use && strcmp(use, "sig") != 0))
			continue;
		bool rsa = !strcmp(kty, "RSA");
		if (!rsa && !(!strcmp(kty, "EC") && crv && !strcmp(crv, "P-256")))
			continue; /* no other key may sign what we accept */
		if (json_object_get(k, "d"))
			continue; /* a private key published by mistake: not ours to use */
		char *text = json_dumps(k, JSON_COMPACT);
		cjose_err cerr;
		cjose_jwk_t *jwk = text ? cjose_jwk_import(text, strlen(text), &cerr) : NULL;
		free(text);
		if (!jwk)
			continue;
		if (rsa && cjose_jwk_get_keysize(jwk, &cerr) < MIN_RSA_BITS) {
			cjose_jwk_release(jwk);
			continue;
		}
		const char *kid = jstr(k, "kid");
		o->keys[o->nkeys++] =
		    (struct key){ .kid = kid ? xstrdup(kid) : NULL, .rsa = rsa, .jwk = jwk };
	}
	json_decref(doc);
	return 0;
}

/* ---- ID tokens ---------------------------------------------------------------------------- */

/* Whether the payload's claims are acceptable; the reason in err if not. */
static bool claims_ok(const struct oidc *o, const json_t *c, const char *nonce, int64_t now_s,
                      struct strbuf *err)
{
	const char *iss = jstr(c, "iss"), *azp = jstr(c, "azp"), *sub = jstr(c, "sub");
	const char *got_nonce = jstr(c, "nonce");
	const json_t *aud = json_object_get(c, "aud");
	const char *client = o->cfg->client_id;
	bool aud_ok = false;
	size_t naud = 0;
	if (json_is_string(aud)) {
		aud_ok = !strcmp(json_string_value(aud), client);
		naud = 1;
	} else if (json_is_array(aud)) {
		size_t i;
		json_t *a;
		json_array_foreach(aud, i, a) aud_ok |=
		    json_is_string(a) && !strcmp(json_string_value(a), client);
		naud = json_array_size(aud);
	}
	const json_t *exp = json_object_get(c, "exp"), *iat = json_object_get(c, "iat");
	const json_t *nbf = json_object_get(c, "nbf");
	if (!iss || strcmp(iss, o->cfg->issuer) != 0)
		strbuf_addstr(err, "the ID token comes from another issuer (iss)");
	else if (!aud_ok)
		strbuf_addstr(err, "the ID token is meant for another client (aud)");
	else if ((naud > 1 && !azp) || (azp && strcmp(azp, client) != 0))
		strbuf_addstr(err, "the ID token was issued to another client (azp)");
	else if (!json_is_number(exp) || !json_is_number(iat))
		strbuf_addstr(err, "the ID token lacks exp or iat");
	else if (json_number_value(exp) + OIDC_LEEWAY_S < (double)now_s)
		strbuf_addstr(err, "the ID token has expired (exp)");
	else if (json_number_value(iat) > (double)(now_s + OIDC_LEEWAY_S))
		strbuf_addstr(err, "the ID token was issued in the future (iat)");
	else if (nbf &&
	         (!json_is_number(nbf) || json_number_value(nbf) > (double)(now_s + OIDC_LEEWAY_S)))
		strbuf_addstr(err, "the ID token is not valid yet (nbf)");
	else if (!got_nonce || !nonce || strcmp(got_nonce, nonce) != 0)
		strbuf_addstr(err, "the ID token belongs to another sign-in (nonce)");
	else if (!sub || !*sub)
		strbuf_addstr(err, "the ID token names nobody (sub)");
	else
		return true;
	return false;
}

/* Tries the keys that fit alg and kid. 1: verified, 0: no key fits, -1: keys fit, none verifies. */
static int verify_with_keys(struct oidc *o, cjose_jws_t *jws, bool rsa, const char *kid)
{
	int tried = 0;
	for (size_t i = 0; i < o->nkeys; i++) {
		const struct key *k = &o->keys[i];
		if (k->rsa != rsa || (kid && (!k->kid || strcmp(k->kid, kid) != 0)))
			continue;
		tried++;
		cjose_err cerr;
		if (cjose_jws_verify(jws, k->jwk, &cerr))
			return 1;
	}
	return tried ? -1 : 0;
}

int oidc_verify_id_token(struct oidc *o, const char *jwt, const char *nonce, int64_t now_s,
                         json_t **ret_claims, struct strbuf *err)
{
	cjose_err cerr;
	cjose_jws_t *jws = cjose_jws_import(jwt, strlen(jwt), &cerr);
	if (!jws) {
		strbuf_addstr(err, "the ID token is not a signed JWT (JWS compact form)");
		return SP_EINVAL;
	}
	cjose_header_t *hdr = cjose_jws_get_protected(jws);
	const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &cerr) : NULL;
	const char *kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &cerr) : NULL;
	int r = 0;
	if (!alg || (strcmp(alg, "RS256") != 0 && strcmp(alg, "ES256") != 0)) {
		strbuf_addf(err,
		            "the ID token's algorithm \"%.20s\" is not accepted (RS256, ES256)",
		            alg ? alg : "");
		cjose_jws_release(jws);
		return SP_EINVAL;
	}
	bool rsa = !strcmp(alg, "RS256");
	pthread_mutex_lock(&o->lock);
	r = discover(o, now_s, err);
	if (r == 0 && !o->nkeys)
		r = fetch_keys(o, err);
	int v = r == 0 ? verify_with_keys(o, jws, rsa, kid) : 0;
	if (r == 0 && v == 0) {
		/* a key we do not know: the provider may have rotated its keys */
		r = fetch_keys(o, err);
		if (r == 0)
			v = verify_with_keys(o, jws, rsa, kid);
	}
	pthread_mutex_unlock(&o->lock);
	if (r == 0 && v != 1) {
		strbuf_addstr(err, v == 0 ? "the ID token is signed by a key the provider does not "
		                            "publish"
		                          : "the ID token's signature does not verify");
		r = SP_EINVAL;
	}
	uint8_t *payload = NULL;
	size_t len = 0;
	json_t *claims = NULL;
	if (r == 0 &&
	    (!cjose_jws_get_plaintext(jws, &payload, &len, &cerr) ||
	     !(claims = json_loadb((const char *)payload, len, JSON_REJECT_DUPLICATES, NULL)) ||
	     !json_is_object(claims))) {
		strbuf_addstr(err, "the ID token's payload is not a JSON object");
		r = SP_EINVAL;
	}
	if (r == 0 && !claims_ok(o, claims, nonce, now_s, err))
		r = SP_EINVAL;
	cjose_jws_release(jws); /* owns payload */
	if (r < 0) {
		json_decref(claims);
		return r;
	}
	*ret_claims = claims;
	return 0;
}

/* ---- the flow ------------------------------------------------------------------------------ */

static void add_param(struct strbuf *sb, const char *name, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	strbuf_addf(sb, "%s%s=%s", sb->len ? "&" : "", name, esc ? esc : "");
	curl_free(esc);
}

int oidc_authorize_url(struct oidc *o, const char *redirect_uri, const char *state,
                       const char *nonce, const char *code_challenge, char **ret_url,
                       struct strbuf *err)
{
	pthread_mutex_lock(&o->lock);
	int r = discover(o, (int64_t)time(NULL), err);
	char *endpoint = r == 0 ? xstrdup(o->authorization_endpoint) : NULL;
	pthread_mutex_unlock(&o->lock);
	if (r < 0)
		return r;
	struct strbuf q = STRBUF_INIT;
	add_param(&q, "response_type", "code");
	add_param(&q, "client_id", o->cfg->client_id);
	add_param(&q, "redirect_uri", redirect_uri);
	add_param(&q, "scope", o->cfg->scopes);
	add_param(&q, "state", state);
	add_param(&q, "nonce", nonce);
	add_param(&q, "code_challenge", code_challenge);
	add_param(&q, "code_challenge_method", "S256");
	*ret_url = xstrfmt("%s%c%s", endpoint, strchr(endpoint, '?') ? '&' : '?', q.buf);
	strbuf_release(&q);
	free(endpoint);
	return 0;
}

int oidc_redeem(struct oidc *o, const char *code, const char *redirect_uri, const char *verifier,
                const char *nonce, int64_t now_s, json_t **ret_claims, struct strbuf *err)
{
	pthread_mutex_lock(&o->lock);
	int r = discover(o, now_s, err);
	char *endpoint = r == 0 ? xstrdup(o->token_endpoint) : NULL;
	bool post = o->secret_post;
	pthread_mutex_unlock(&o->lock);
	if (r < 0)
		return r;
	const char *secret = o->cfg->client_secret;
	struct strbuf form = STRBUF_INIT;
	add_param(&form, "grant_type", "authorization_code");
	add_param(&form, "code", code);
	add_param(&form, "redirect_uri", redirect_uri);
	add_param(&form, "code_verifier", verifier);
	add_param(&form, "client_id", o->cfg->client_id);
	if (secret && post)
		add_param(&form, "client_secret", secret);
	/* client_secret_basic: both parts form-encoded first (RFC 6749 2.3.1) */
	char *user = NULL, *pass = NULL;
	if (secret && !post) {
		user = curl_easy_escape(NULL, o->cfg->client_id, 0);
		pass = curl_easy_escape(NULL, secret, 0);
	}
	json_t *answer = NULL;
	long status = 0;
	r = http_json(endpoint, form.buf, user, pass, &status, &answer,
	              "the provider's token endpoint", err);
	free(endpoint);
	curl_free(user);
	if (pass) {
		memset(pass, 0, strlen(pass));
		curl_free(pass);
	}
	memset(form.buf, 0, form.len); /* the code, the verifier, maybe the secret */
	strbuf_release(&form);
	if (r < 0)
		return r;
	const char *id_token = jstr(answer, "id_token");
	if (status != 200 || !id_token) {
		/* the provider's error code is shown only if it looks like one */
		const char *e = jstr(answer, "error");
		if (e && (strlen(e) > 60 || !e[0] ||
		          strspn(e, "abcdefghijklmnopqrstuvwxyz_") != strlen(e)))
			e = NULL;
		strbuf_addf(err, "the provider refused the sign-in: HTTP %ld%s%s", status,
		            e ? ", " : "", e ? e : "");
		r = SP_EIO;
	} else {
		r = oidc_verify_id_token(o, id_token, nonce, now_s, ret_claims, err);
	}
	json_decref(answer);
	return r;
}
