"""A stand-in OpenID Connect provider for development and tests only: it speaks the real protocol
(discovery, JWKS, the authorization code flow with PKCE S256, RS256 ID tokens) but has no login
form: /authorize signs in at once as the person it was told to (constructor, `sign_in_as` or
POST /__standin/settings). Never point a production console at it.

GET  /.well-known/openid-configuration   discovery
GET  /jwks                               the RSA public key generated at start
GET  /authorize                          checks client_id, redirect_uri and the S256 code_challenge;
                                         redirects back with code and state
POST /token                              checks the code, its code_verifier and the client's secret
                                         (basic or post); returns access_token and id_token
GET  /userinfo                           the person of a bearer access token
POST /__standin/settings                 JSON {"email", "email_verified", "audience", "consent"} (test controls)

In the same process, tests also switch `audience`, `consent`, `rogue_key` and `nonce` (see __init__).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_CLIENT_ID = "steward-console"
DEFAULT_CLIENT_SECRET = "standin-client-secret"
CODE_SECONDS = 60  # an authorization code is used at once or not at all
TOKEN_SECONDS = 300


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    email: str
    email_verified: bool
    expires: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64url(number: int) -> str:
    return _b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class OidcStandin:
    def __init__(
        self,
        *,
        email: str | None = None,
        email_verified: bool = True,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uris: tuple[str, ...] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.client_id, self.client_secret, self.redirect_uris = client_id, client_secret, redirect_uris
        self.email, self.email_verified = email, email_verified
        # Set: ID tokens name this audience instead of the client (a token meant for another app).
        self.audience: str | None = None
        # Set: /authorize shows a page with a Continue link instead of redirecting (a consent
        # screen), so that a test can read and alter the answer before the console gets it.
        self.consent = False
        # Set: ID tokens are signed by a key that is not in the JWKS (under the published kid),
        # or carry this nonce instead of the one asked for: a forgery and a replay.
        self.rogue_key = False
        self.nonce: str | None = None
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self.issuer = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever that must be running
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def sign_in_as(self, email: str | None, email_verified: bool = True) -> None:
        self.email, self.email_verified = email, email_verified

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self._key.public_key().public_numbers()
        key = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid}
        return {"keys": [{**key, "n": _int_b64url(numbers.n), "e": _int_b64url(numbers.e)}]}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """(status, headers, body): errors before the redirect URI is trusted are shown, not redirected."""
        if query.get("client_id") != self.client_id:
            return 400, {}, "unknown client_id"
        redirect_uri = query.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return 400, {}, f"redirect_uri {redirect_uri!r} is not registered"
        back = {"state": query["state"]} if "state" in query else {}
        problem = None
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            problem = "unsupported_response_type"
        elif query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problem = "invalid_request"  # PKCE with S256 is required here, as providers do for public apps
        elif not self.email:
            problem = "access_denied"
        if problem:
            return 302, {"Location": f"{redirect_uri}?{urlencode({'error': problem, **back})}"}, ""
        code = secrets.token_urlsafe(24)
        grant = _Grant(
            self.client_id,
            redirect_uri,
            query["code_challenge"],
            query.get("nonce"),
            str(self.email),
            self.email_verified,
            time.time() + CODE_SECONDS,
        )
        with self._lock:
            self._grants[code] = grant
        location = f"{redirect_uri}?{urlencode({'code': code, **back})}"
        if self.consent:
            page = f'<p>Signed in as {html.escape(grant.email)}.</p><a href="{html.escape(location)}">Continue</a>'
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page
        return 302, {"Location": location}, ""

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return 401, {"error": "invalid_client"}
            client_id, _, secret = (unquote_plus(part) for part in decoded.partition(":"))
        if client_id != self.client_id or not secrets.compare_digest(secret, self.client_secret):
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:  # a code works once, whatever the outcome
            grant = self._grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "").encode()
        if (
            grant is None
            or grant.expires < time.time()
            or grant.client_id != client_id
            or grant.redirect_uri != form.get("redirect_uri")
            or _b64url(hashlib.sha256(verifier).digest()) != grant.code_challenge
        ):
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": hashlib.sha256(grant.email.encode()).hexdigest()[:24],
            "aud": self.audience or self.client_id,
            "iat": now,
            "exp": now + TOKEN_SECONDS,
            "email": grant.email,
            "email_verified": grant.email_verified,
            **({"nonce": self.nonce or grant.nonce} if grant.nonce else {}),
        }
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if self.rogue_key else self._key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access_token] = grant
        body = {"access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_SECONDS}
        return 200, {**body, "id_token": id_token, "scope": "openid email profile"}

    def userinfo(self, authorization: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            grant = self._access.get(authorization.removeprefix("Bearer "))
        if grant is None:
            return 401, {"error": "invalid_token"}
        sub = hashlib.sha256(grant.email.encode()).hexdigest()[:24]
        return 200, {"sub": sub, "email": grant.email, "email_verified": grant.email_verified}


def _handler(standin: OidcStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests' output stays readable
            pass

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = (json.dumps(body) if not isinstance(body, str) else body).encode()
            self.send_response(status)
            kind = "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
            for name, value in {"Content-Type": kind, "Cache-Control": "no-store", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _form(self) -> dict[str, str]:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                return dict(json.loads(raw or "{}"))
            return {k: v[0] for k, v in parse_qs(raw).items()}

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._send(200, standin.discovery())
            elif parts.path == "/jwks":
                self._send(200, standin.jwks())
            elif parts.path == "/authorize":
                status, headers, body = standin.authorize({k: v[0] for k, v in parse_qs(parts.query).items()})
                self._send(status, body, headers)
            elif parts.path == "/userinfo":
                self._send(*standin.userinfo(self.headers.get("Authorization", "")))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            form = self._form()
            if self.path == "/token":
                self._send(*standin.token(form, self.headers.get("Authorization", "")))
            elif self.path == "/__standin/settings":
                if "email" in form:
                    standin.sign_in_as(form["email"], bool(form.get("email_verified", True)))
                if "audience" in form:
                    standin.audience = form["audience"] or None
                if "consent" in form:
                    standin.consent = bool(form["consent"])
                self._send(200, {"email": standin.email, "audience": standin.audience})
            else:
                self._send(404, {"error": "not_found"})

    return Handler
