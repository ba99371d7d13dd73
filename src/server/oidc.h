/*
 * oidc.h - the OpenID Connect client of `steppy serve`: the provider's
 * discovery document, its signing keys (JWKS), the authorization code
 * exchange with PKCE, and the verification of ID tokens.
 *
 * Signatures are checked by libcjose, never by code of ours; this module
 * decides which keys and algorithms it accepts (RS256 with RSA keys of at
 * least 2048 bits, ES256 with P-256 keys; never "none", never HMAC) and
 * checks the claims (iss, aud, azp, exp, iat, nbf, nonce, sub).
 *
 * The provider is reached over libcurl's easy interface from the calling
 * (connection) thread, at most 10 s and 1 MiB per answer, http(s) only,
 * no redirects followed. The discovery document is cached for an hour,
 * the keys until a token names a key id they lack (then they are fetched
 * once more). One lock guards both, so any thread may call any function.
 *
 * Nothing here prints; errors come back as SP_E* codes with one line in err
 * that never holds a token, a code or the client secret.
 */
#ifndef STEPPY_SERVER_OIDC_H
#define STEPPY_SERVER_OIDC_H

#include "util/strbuf.h"

#include <jansson.h>
#include <stdint.h>

struct oidc_config;
struct oidc;

#define OIDC_LEEWAY_S 60 /* clock skew allowed on exp, iat and nbf */

/* A client for cfg (borrowed; must outlive it). Fetches nothing yet. */
struct oidc *oidc_new(const struct oidc_config *cfg);
/* Accepts NULL. */
void oidc_free(struct oidc *o);

/*
 * The provider's authorization URL for one sign-in (caller frees
 * *ret_url): response_type=code, the configured client and scopes,
 * redirect_uri, state, nonce and the S256 code challenge. Fetches the
 * discovery document when it is not cached. Returns 0, SP_EIO (provider
 * unreachable) or SP_EINVAL (a discovery document that does not fit).
 */
int oidc_authorize_url(struct oidc *o, const char *redirect_uri, const char *state,
                       const char *nonce, const char *code_challenge, char **ret_url,
                       struct strbuf *err);

/*
 * Redeems an authorization code at the token endpoint (with the PKCE
 * verifier and, when configured, the client secret) and verifies the ID
 * token it returns (oidc_verify_id_token()). On success *ret_claims holds
 * the token's claims (caller decrefs). SP_EIO: the provider could not be
 * reached or refused the code; SP_EINVAL: the ID token is not acceptable.
 */
int oidc_redeem(struct oidc *o, const char *code, const char *redirect_uri, const char *verifier,
                const char *nonce, int64_t now_s, json_t **ret_claims, struct strbuf *err);

/*
 * Verifies a compact JWS ID token: an allowed algorithm, a signature by one
 * of the provider's keys (fetched again once for an unknown key id), iss
 * equal to the configured issuer, aud holding the client id (and azp equal
 * to it when there are several audiences), exp and iat (and nbf) within
 * OIDC_LEEWAY_S of now_s, nonce equal to nonce, a non-empty sub. Returns 0
 * with *ret_claims (caller decrefs), SP_EINVAL with the reason, or SP_EIO
 * when the keys could not be fetched.
 */
int oidc_verify_id_token(struct oidc *o, const char *jwt, const char *nonce, int64_t now_s,
                         json_t **ret_claims, struct strbuf *err);

/* base64url without padding of n bytes (caller frees). */
char *oidc_b64url(const unsigned char *data, size_t n);

#endif
