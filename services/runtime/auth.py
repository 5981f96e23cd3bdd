"""Bearer tokens: HS256 JWTs signed with STEWARD_JWT_SECRET.

Claims: `sub` (a user id or a service account such as `service:rules`), `scopes` (list of
strings) and `roles` (list of strings, e.g. `admin`). The caller is kept in a context
variable for the duration of one call, so the domain layer can ask who is acting.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import jwt

from services.runtime.errors import Unauthenticated

ALGORITHM = "HS256"
ISSUER = "steward"


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_service_account(self) -> bool:
        return self.subject.startswith("service:")

    @property
    def user_id(self) -> str | None:
        """The subject as a user id of the directory (a UUID), or None for anyone else."""
        try:
            return str(uuid.UUID(self.subject))
        except ValueError:
            return None

    def has_scope(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current_principal() -> Principal:
    principal = _current.get()
    if principal is None:  # only reachable if a servicer runs without the interceptor
        raise Unauthenticated("NO_PRINCIPAL", "no authenticated caller for this call")
    return principal


def set_principal(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


def mint_token(
    secret: str,
    subject: str,
    *,
    scopes: Iterable[str] = (),
    roles: Iterable[str] = (),
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "scopes": sorted(set(scopes)),
        "roles": sorted(set(roles)),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("TOKEN_EXPIRED", "the bearer token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated("TOKEN_INVALID", "the bearer token is not valid") from exc
    scopes, roles = claims.get("scopes", []), claims.get("roles", [])
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise Unauthenticated("TOKEN_INVALID", "the bearer token has no subject")
    if not all(isinstance(s, str) for s in [*scopes, *roles]):
        raise Unauthenticated("TOKEN_INVALID", "scopes and roles must be lists of strings")
    return Principal(claims["sub"], frozenset(scopes), frozenset(roles))


def principal_from_metadata(secret: str, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
    values = [v for k, v in metadata if k == "authorization"]
    if not values:
        raise Unauthenticated("TOKEN_MISSING", "send 'authorization: Bearer <token>' metadata")
    raw = values[0].decode() if isinstance(values[0], bytes) else values[0]
    scheme, _, token = raw.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("TOKEN_MISSING", "the authorization metadata must be 'Bearer <token>'")
    return verify_token(secret, token.strip())
