"""Secrets at rest: what a service must give back to an outside system (Salesforce credentials
in sync, play webhook keys in rules) is sealed before it reaches the database, so that a backup,
a replica or a read-only database user does not hand it out.

STEWARD_SECRETS_KEYS holds comma-separated Fernet keys (AES-128-CBC with HMAC-SHA256, from
`cryptography`; make one with `python3 -c 'from cryptography.fernet import Fernet;
print(Fernet.generate_key().decode())'`). The first key seals; every key opens.
Rotation: put a new key first, roll the pods, run `steward-<service> reseal-secrets`, then drop
the old key. A stored value is "fernet:<token>"; any other value was stored without a key (the
embedded default, or before keys were set) and is read as it is, and sealed at its next write
or by reseal-secrets.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.runtime.errors import FailedPrecondition

PREFIX = "fernet:"


class MalformedKey(ValueError):
    """STEWARD_SECRETS_KEYS holds something that is not a Fernet key."""


class Keyring:
    def __init__(self, keys: Sequence[str] = ()) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
        except (ValueError, TypeError) as error:
            raise MalformedKey("every key must be a Fernet key: 32 url-safe base64-encoded bytes") from error

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        return cls([key.strip() for key in text.split(",") if key.strip()])

    @property
    def seals(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if not value or self._fernet is None:
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # stored without a key
        if self._fernet is None:
            raise FailedPrecondition(
                "SECRET_SEALED", "a stored secret is sealed, and STEWARD_SECRETS_KEYS is not set on this service"
            )
        try:
            return self._fernet.decrypt(stored.removeprefix(PREFIX).encode()).decode()
        except InvalidToken as error:
            raise FailedPrecondition(
                "SECRET_KEY_UNKNOWN",
                "a stored secret was sealed with a key that is not in STEWARD_SECRETS_KEYS",
            ) from error

    def reseal(self, stored: str) -> str:
        """With the first key (rotation); a value stored without a key gets sealed."""
        return self.seal(self.open(stored))


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def new_key() -> str:
    return Fernet.generate_key().decode()
