"""One-time sign-in links for development: a signed payload (user id, nonce, expiry) that
works once. The used nonces are kept in this process until they expire: enough for the single
replica a development console runs; production signs in through the identity provider."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "steward-console-signin-link"


class LinkRefused(Exception):
    """The link is forged, expired or already used; the message is for the person."""


@dataclass(frozen=True)
class LinkClaim:
    user_id: str
    nonce: str
    expires: float


class SigninLinks:
    def __init__(self, secret: str, ttl_seconds: float) -> None:
        self._serializer = URLSafeSerializer(secret, salt=SALT)
        self._ttl = ttl_seconds
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, user_id: str, now: float) -> str:
        payload = {"uid": user_id, "nonce": secrets.token_urlsafe(16), "exp": now + self._ttl}
        return str(self._serializer.dumps(payload))

    def peek(self, token: str, now: float) -> LinkClaim:
        """The claim if the link could still be used, without using it."""
        try:
            payload = self._serializer.loads(token)
            claim = LinkClaim(str(payload["uid"]), str(payload["nonce"]), float(payload["exp"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            raise LinkRefused("This sign-in link is not valid. Ask for a new one.") from None
        if now > claim.expires:
            raise LinkRefused("This sign-in link has expired. Ask for a new one.")
        with self._lock:
            if claim.nonce in self._used:
                raise LinkRefused("This sign-in link was already used. Ask for a new one.")
        return claim

    def use(self, token: str, now: float) -> LinkClaim:
        claim = self.peek(token, now)
        with self._lock:
            if claim.nonce in self._used:  # another request used it since the peek
                raise LinkRefused("This sign-in link was already used. Ask for a new one.")
            self._used = {n: exp for n, exp in self._used.items() if exp >= now}
            self._used[claim.nonce] = claim.expires
        return claim
