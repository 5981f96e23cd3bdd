"""Signing in through the company's identity provider (OpenID Connect), with authlib's Flask
client: the authorization code flow with PKCE (S256), state and nonce. authlib keeps the state,
nonce and code verifier in the (signed) session cookie between the two legs, checks the state,
fetches the provider's JWKS and verifies the ID token's signature; the claims it must hold
(iss, aud, exp, nonce) are named here, since authlib only checks aud when told to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask
from joserfc.errors import JoseError

from services.console.config import ConsoleConfig

SCOPES = "openid email profile"
CALLBACK_PATH = "/signin/oidc/callback"
# The provider's discovery, JWKS and token endpoints: a provider slower than this is down for us.
HTTP_TIMEOUT_SECONDS = 10
# What a provider that is down or answers nonsense makes authlib raise: requests' errors are
# OSErrors, a body that is no JSON a ValueError, discovery without an endpoint a KeyError or RuntimeError.
PROVIDER_ERRORS = (OSError, ValueError, KeyError, RuntimeError)


class SigninRefused(Exception):
    """The message is for the person; `status` is the page's HTTP status."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Identity:
    email: str
    subject: str


def register(app: Flask, config: ConsoleConfig) -> Any:
    """The provider's client for this app (None without OIDC). Discovery is read on first use and
    kept; the JWKS is read again when a token names a key it does not hold (key rotation)."""
    if not config.oidc_on:
        return None
    oauth = OAuth(app)
    return oauth.register(
        name="oidc",
        client_id=config.oidc_client_id,
        client_secret=config.oidc_client_secret,
        server_metadata_url=config.oidc_discovery_url,
        client_kwargs={"scope": SCOPES, "code_challenge_method": "S256", "default_timeout": HTTP_TIMEOUT_SECONDS},
    )


def authorize_redirect(client: Any, config: ConsoleConfig) -> Any:
    """The redirect to the provider; the callback is the public URL's, as registered there."""
    try:
        return client.authorize_redirect(f"{config.public_url}{CALLBACK_PATH}")
    except PROVIDER_ERRORS as error:
        raise _unreachable(error, config.oidc_name) from error


def identity_from_callback(client: Any, config: ConsoleConfig, args: dict[str, str]) -> Identity:
    """The verified person of the provider's answer on the callback, or SigninRefused."""
    if args.get("error"):
        # The person cancelled, or the provider refused them; its description is not ours to show.
        raise SigninRefused(f"{config.oidc_name} did not sign you in (it answered {args['error'][:60]!r}).")
    try:
        token = client.authorize_access_token(claims_options=_claims_options(config))
    except MismatchingStateError:
        raise SigninRefused(
            "This sign-in answer does not belong to a sign-in started in this browser, or it was already used. "
            "Start again from the sign-in page.",
            400,
        ) from None
    except (OAuthError, JoseError, AuthlibBaseError) as error:
        raise SigninRefused(
            f"The answer of {config.oidc_name} could not be verified, so you are not signed in. "
            "Start again; if it happens again, tell your administrator.",
            400,
        ) from error
    except PROVIDER_ERRORS as error:
        raise _unreachable(error, config.oidc_name) from error
    claims = token.get("userinfo")
    if not claims:  # no ID token: an OAuth-only answer proves nobody's identity
        raise SigninRefused(f"{config.oidc_name} sent no ID token, so you are not signed in.", 400)
    email = str(claims.get("email") or "").strip()
    if not email:
        raise SigninRefused(f"{config.oidc_name} did not tell Steward your email address, so you are not signed in.")
    # Absent: the provider vouches for its addresses (Entra sends none); present, it must say yes.
    verified = claims.get("email_verified", True)
    if verified is not True and str(verified).lower() != "true":
        raise SigninRefused(f"{config.oidc_name} has not verified the address {email}, so you are not signed in.")
    return Identity(email=email, subject=str(claims.get("sub", "")))


def _claims_options(config: ConsoleConfig) -> dict[str, Any]:
    # Built anew per call: authlib pops keys out of these dicts while validating.
    return {
        "iss": {"essential": True, "value": config.oidc_issuer},
        "aud": {"essential": True, "value": config.oidc_client_id},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "sub": {"essential": True},
    }


def _unreachable(error: Exception, name: str) -> SigninRefused:
    refused = SigninRefused(
        f"{name} (the identity provider) could not be reached or gave an answer Steward does not understand. "
        "Try again in a minute; if it goes on, tell your administrator.",
        502,
    )
    refused.__cause__ = error
    return refused
