"""Loads and stores users; the only place that knows how a User maps onto rows."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.runtime.db import flush, keyset
from services.runtime.pagination import Key
from services.users.adapters.orm import UserRecord
from services.users.domain.model import License, User, UserStatus


def _to_domain(row: UserRecord) -> User:
    return User(
        id=row.id,
        email=row.email,
        first_name=row.first_name,
        last_name=row.last_name,
        status=UserStatus(row.status),
        license=License(row.license),
        global_admin=row.global_admin,
        manager_id=row.manager_id,
        alternative_emails=list(row.alternative_emails or []),
        custom_attributes=dict(row.custom_attributes or {}),
        signature=row.signature,
        create_time=row.create_time,
        update_time=row.update_time,
        last_activity_time=row.last_activity_time,
        version=row.version,
    )


def _copy_into(row: UserRecord, user: User) -> None:
    row.email = user.email
    row.email_normalized = user.email.strip().lower()
    row.first_name = user.first_name
    row.last_name = user.last_name
    row.status = user.status.value
    row.license = user.license.value
    row.global_admin = user.global_admin
    row.manager_id = user.manager_id
    row.alternative_emails = list(user.alternative_emails)
    row.custom_attributes = dict(user.custom_attributes)
    row.signature = user.signature
    row.create_time = user.create_time
    row.update_time = user.update_time
    row.last_activity_time = user.last_activity_time


class UserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        query = select(UserRecord).where(UserRecord.id == user_id)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return None if row is None else _to_domain(row)

    def add(self, user: User) -> None:
        row = UserRecord(id=user.id)
        _copy_into(row, user)
        self._session.add(row)
        flush(self._session)
        user.version = row.version

    def save(self, user: User) -> None:
        """Write back a user read in this unit of work; fails with ABORTED if someone else wrote it."""
        row = self._session.get(UserRecord, user.id)
        if row is None:
            raise LookupError(user.id)
        _copy_into(row, user)
        flush(self._session)
        user.version = row.version

    def list_page(self, *, limit: int, after: Key | None, show_deleted: bool) -> list[User]:
        query = select(UserRecord)
        if not show_deleted:
            query = query.where(UserRecord.status != UserStatus.DELETED.value)
        query = keyset(query, (UserRecord.email_normalized, UserRecord.id), after, limit)
        return [_to_domain(row) for row in self._session.scalars(query)]


def list_key(user: User) -> Key:
    return (user.email.strip().lower(), user.id)
