#!/usr/bin/python3
"""fake_oidc.py - a small OpenID Connect provider for steppy's tests.

Serves on 127.0.0.1 only:
  GET  /.well-known/openid-configuration   the discovery document
  GET  /jwks                               the public keys (RSA "rsa1", EC P-256 "ec1")
  GET  /authorize                          a login page (a form asking for a user name);
                                           with user=NAME in the query it signs in at once
  POST /authorize                          the form: redirects to redirect_uri with code, state
  POST /token                              code -> ID token; checks the client's secret
                                           (HTTP Basic), redirect_uri and the PKCE verifier (S256)
  POST /control                            JSON {"mode": M}: how the next ID tokens are made
  GET  /log                                what was asked of it (JSON), for the tests

Modes (for refusal tests): rs256 (default), es256, wrong-aud, wrong-iss, wrong-nonce,
expired, none (alg none, no signature), unknown-key (a key not in the JWKS under a
published key id), unknown-kid (a key id the JWKS lacks), tampered
(payload changed after signing), multi-aud (two audiences, azp missing), multi-aud-azp
(two audiences, azp = the client), rotate (a new key, published from now on), hs256
(HMAC with the client secret), refuse (the token endpoint answers invalid_grant).

User NAME gets sub "sub-NAME", preferred_username NAME and email NAME@example.com
(email=... in the login overrides it); groups=a,b sets the "groups" claim.

Run: fake_oidc.py --port 0 --port-file FILE --client-id ID --client-secret SECRET
"""
import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Provider:
    def __init__(self, client_id, client_secret):
        self.client_id = client_id
        self.client_secret = client_secret
        self.issuer = None
        self.lock = threading.Lock()
        self.mode = "rs256"
        self.codes = {}
        self.log = []
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.extra = []  # (kid, key) published after a rotation

    def jwks(self):
        keys = []
        for kid, key, alg in [("rsa1", self.rsa, "RS256"), ("ec1", self.ec, "ES256")] + [
            (k, v, "RS256") for k, v in self.extra
        ]:
            cls = RSAAlgorithm if alg == "RS256" else ECAlgorithm
            j = json.loads(cls.to_jwk(key.public_key()))
            j.update(kid=kid, use="sig", alg=alg)
            keys.append(j)
        return {"keys": keys}

    def id_token(self, entry):
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": "sub-" + entry["user"],
            "preferred_username": entry["user"],
            "email": entry["email"],
            "email_verified": True,
            "nonce": entry["nonce"],
            "iat": now,
            "exp": now + 300,
        }
        if entry.get("groups"):
            claims["groups"] = entry["groups"]
        mode = self.mode
        key, alg, kid = self.rsa, "RS256", "rsa1"
        if mode == "es256":
            key, alg, kid = self.ec, "ES256", "ec1"
        elif mode == "wrong-aud":
            claims["aud"] = "another-client"
        elif mode == "wrong-iss":
            claims["iss"] = "http://127.0.0.1:1/elsewhere"
        elif mode == "wrong-nonce":
            claims["nonce"] = "not-the-nonce"
        elif mode == "expired":
            claims["iat"] = now - 7200
            claims["exp"] = now - 3600
        elif mode == "unknown-key":
            key, kid = self.rogue, "rsa1"
        elif mode == "unknown-kid":
            key, kid = self.rogue, "rogue"
        elif mode == "multi-aud":
            claims["aud"] = [self.client_id, "another-client"]
        elif mode == "multi-aud-azp":
            claims["aud"] = [self.client_id, "another-client"]
            claims["azp"] = self.client_id
        elif mode == "rotate":
            new = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            kid = "rsa-rotated-%d" % len(self.extra)
            self.extra.append((kid, new))
            key = new
        if mode == "none":
            header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
            payload = b64url(json.dumps(claims).encode())
            return header + "." + payload + "."
        if mode == "hs256":
            return jwt.encode(claims, self.client_secret.encode(), algorithm="HS256",
                              headers={"kid": "rsa1"})
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        if mode == "tampered":
            h, p, s = token.split(".")
            claims["email"] = "mallory@example.com"
            claims["preferred_username"] = "mallory"
            token = h + "." + b64url(json.dumps(claims).encode()) + "." + s
        return token


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-oidc"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_oidc: " + fmt % args + "\n")

    @property
    def p(self):
        return self.server.provider

    def answer(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if ctype == "application/json" else body.encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        with self.p.lock:
            self.p.log.append({"method": "GET", "path": u.path, "query": q})
        if u.path == "/.well-known/openid-configuration":
            iss = self.p.issuer
            self.answer(200, {
                "issuer": iss,
                "authorization_endpoint": iss + "/authorize",
                "token_endpoint": iss + "/token",
                "jwks_uri": iss + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            })
        elif u.path == "/jwks":
            with self.p.lock:
                self.answer(200, self.p.jwks())
        elif u.path == "/log":
            with self.p.lock:
                self.answer(200, self.p.log)
        elif u.path == "/authorize":
            problem = self.check_authorize(q)
            if problem:
                self.answer(400, problem, "text/plain")
            elif q.get("user"):
                self.grant(q, q["user"], q.get("email"), q.get("groups"))
            else:
                fields = "".join(
                    '<input type="hidden" name="%s" value="%s">' % (k, v.replace('"', "&quot;"))
                    for k, v in q.items())
                self.answer(200, (
                    "<!doctype html><title>Fake provider</title><h1>Fake provider sign-in</h1>"
                    '<form method="post" action="/authorize">' + fields +
                    '<label>User <input name="user" id="user"></label>'
                    '<label>Groups <input name="groups" id="groups"></label>'
                    '<button type="submit" id="login">Sign in</button></form>'), "text/html")
        else:
            self.answer(404, {"error": "not_found"})

    def check_authorize(self, q):
        if q.get("response_type") != "code":
            return "response_type must be code"
        if q.get("client_id") != self.p.client_id:
            return "unknown client_id"
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            return "PKCE S256 required"
        if not q.get("state") or not q.get("nonce"):
            return "state and nonce required"
        if "openid" not in q.get("scope", "").split():
            return "scope must include openid"
        if not q.get("redirect_uri", "").startswith("http"):
            return "redirect_uri required"
        return None

    def grant(self, q, user, email=None, groups=None):
        code = secrets.token_urlsafe(24)
        with self.p.lock:
            self.p.codes[code] = {
                "user": user, "email": email or user + "@example.com",
                "groups": [g for g in (groups or "").split(",") if g],
                "nonce": q["nonce"], "challenge": q["code_challenge"],
                "redirect_uri": q["redirect_uri"],
            }
        sep = "&" if "?" in q["redirect_uri"] else "?"
        loc = q["redirect_uri"] + sep + urllib.parse.urlencode({"code": code, "state": q["state"]})
        self.answer(302, "", "text/plain", [("Location", loc)])

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        raw = self.body()
        if u.path == "/control":
            with self.p.lock:
                self.p.mode = json.loads(raw)["mode"]
            self.answer(200, {"mode": self.p.mode})
            return
        form = dict(urllib.parse.parse_qsl(raw))
        with self.p.lock:
            logged = {k: v for k, v in form.items() if k not in ("code", "code_verifier", "client_secret")}
            self.p.log.append({"method": "POST", "path": u.path, "form": logged,
                               "basic": bool(self.headers.get("Authorization"))})
        if u.path == "/authorize":
            problem = self.check_authorize(form)
            if problem or not form.get("user"):
                self.answer(400, problem or "user required", "text/plain")
            else:
                self.grant(form, form["user"], form.get("email"), form.get("groups"))
            return
        if u.path != "/token":
            self.answer(404, {"error": "not_found"})
            return
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(("%s:%s" % (
            urllib.parse.quote(self.p.client_id, safe=""),
            urllib.parse.quote(self.p.client_secret, safe=""))).encode()).decode()
        if auth != want:
            self.answer(401, {"error": "invalid_client"})
            return
        with self.p.lock:
            entry = self.p.codes.pop(form.get("code", ""), None)
            mode = self.p.mode
        if (form.get("grant_type") != "authorization_code" or not entry or mode == "refuse"
                or form.get("redirect_uri") != entry["redirect_uri"]):
            self.answer(400, {"error": "invalid_grant"})
            return
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != entry["challenge"]:
            self.answer(400, {"error": "invalid_grant", "error_description": "PKCE"})
            return
        with self.p.lock:
            token = self.p.id_token(entry)
        self.answer(200, {"access_token": secrets.token_urlsafe(16), "token_type": "Bearer",
                          "expires_in": 300, "id_token": token})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--client-id", default="steppy")
    ap.add_argument("--client-secret", default="fake-secret")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.provider = Provider(a.client_id, a.client_secret)
    port = srv.server_address[1]
    srv.provider.issuer = "http://127.0.0.1:%d" % port
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
