"""What identity providers keep about users and teams (userName, externalId, labels), beside
Steward's own rows. A user no provider has touched has no row: their userName is their email."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.users.adapters.orm import ScimGroupRecord, ScimUserRecord, UserRecord, user_status_where
from services.users.domain.model import User


def user_name_key(user_name: str) -> str:
    """userName is caseExact=false: compared lower-cased, in NFC (scim2-models' default key)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", user_name).lower())


@dataclass
class ScimIdentity:
    user_id: str
    user_name: str
    external_id: str | None = None
    license_managed: bool = False
    email_labels: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def default_for(cls, user: User) -> ScimIdentity:
        return cls(user.id, user.email)


class ScimRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def identities(self, users: Iterable[User]) -> dict[str, ScimIdentity]:
        by_id = {u.id: u for u in users}
        found = {u: ScimIdentity.default_for(user) for u, user in by_id.items()}
        ids = sorted(by_id)
        for start in range(0, len(ids), 500):
            rows = self._session.scalars(
                select(ScimUserRecord).where(ScimUserRecord.user_id.in_(ids[start : start + 500]))
            )
            for row in rows:
                found[row.user_id] = ScimIdentity(
                    row.user_id, row.user_name, row.external_id, row.license_managed, dict(row.email_labels or {})
                )
        return found

    def identity(self, user: User) -> ScimIdentity:
        return self.identities([user])[user.id]

    def save(self, identity: ScimIdentity) -> None:
        row = self._session.get(ScimUserRecord, identity.user_id)
        if row is None:
            row = ScimUserRecord(user_id=identity.user_id)
            self._session.add(row)
        row.user_name = identity.user_name
        row.user_name_key = user_name_key(identity.user_name)
        row.external_id = identity.external_id
        row.license_managed = identity.license_managed
        row.email_labels = dict(identity.email_labels)
        self._session.flush()

    def forget(self, user_id: str) -> None:
        """A deleted user's userName and externalId are free for someone else."""
        self._session.execute(delete(ScimUserRecord).where(ScimUserRecord.user_id == user_id))

    def user_name_holder(self, user_name: str) -> str | None:
        """The live user known by this userName: a provider's userName, or the email of a user no
        provider has named."""
        key = user_name_key(user_name)
        named = self._session.scalar(select(ScimUserRecord.user_id).where(ScimUserRecord.user_name_key == key))
        if named is not None:
            return named
        unnamed = select(UserRecord.id).where(
            UserRecord.email_normalized == key,
            user_status_where(lambda p: p.is_listed),
            ~select(ScimUserRecord.user_id).where(ScimUserRecord.user_id == UserRecord.id).exists(),
        )
        return self._session.scalar(unnamed)

    def group_external_ids(self, team_ids: Iterable[str]) -> dict[str, str | None]:
        ids = sorted(set(team_ids))
        rows = self._session.execute(
            select(ScimGroupRecord.team_id, ScimGroupRecord.external_id).where(ScimGroupRecord.team_id.in_(ids))
        )
        return {row.team_id: row.external_id for row in rows}

    def set_group_external_id(self, team_id: str, external_id: str | None) -> None:
        row = self._session.get(ScimGroupRecord, team_id)
        if row is None:
            row = ScimGroupRecord(team_id=team_id)
            self._session.add(row)
        row.external_id = external_id
        self._session.flush()
