"""Invitation tokens: random, stored only as a hash, single-use, expiring."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from services.runtime.errors import FailedPrecondition, NotFound


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Invitation:
    token_hash: str
    user_id: str
    create_time: dt.datetime
    expire_time: dt.datetime
    used_time: dt.datetime | None = None
    revoked: bool = False

    def ensure_usable(self, now: dt.datetime) -> None:
        if self.used_time is not None:
            raise FailedPrecondition("INVITATION_USED", "this invitation was already accepted")
        if self.revoked:
            raise FailedPrecondition("INVITATION_REVOKED", "this invitation was replaced or cancelled")
        if now >= self.expire_time:
            raise FailedPrecondition(
                "INVITATION_EXPIRED",
                "this invitation has expired; ask for a new one",
                metadata={"expire_time": self.expire_time.isoformat()},
            )


def invitation_not_found() -> NotFound:
    # Deliberately vague: whether a token ever existed is not for an anonymous caller to learn.
    return NotFound("INVITATION_NOT_FOUND", "no invitation matches this token")
