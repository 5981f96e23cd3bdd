"""Roles, assignments and their history."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from services.runtime.db import flush, keyset, table_of
from services.runtime.pagination import Key
from services.users.adapters.orm import AssignmentHistoryRecord, AssignmentRecord, RoleRecord
from services.users.domain.assignments import (
    Assignment,
    AssignmentChange,
    EmptyValue,
    Role,
    RoleSource,
    Source,
)


def _role(row: RoleRecord, count: int) -> Role:
    return Role(
        key=row.key,
        display_name=row.display_name,
        description=row.description,
        source=RoleSource(row.source),
        empty_value=EmptyValue(row.empty_value),
        builtin=row.builtin,
        create_time=row.create_time,
        update_time=row.update_time,
        assignment_count=count,
        version=row.version,
    )


def _assignment(row: AssignmentRecord | Row[Any]) -> Assignment:
    return Assignment(row.account_id, row.role_key, row.user_id, Source(row.source), row.source_ref, row.update_time)


def _change(row: AssignmentHistoryRecord) -> AssignmentChange:
    return AssignmentChange(
        row.account_id,
        row.role_key,
        row.user_id,
        row.previous_user_id,
        Source(row.source),
        row.source_ref,
        row.actor,
        row.change_time,
    )


_TABLE = table_of(AssignmentRecord)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """Built once: a batch runs it thousands of times with new parameters only."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING, not rowcount: a returned row says this statement created the assignment.
    return insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.account_id)


class RoleRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _counts(self, keys: list[str]) -> dict[str, int]:
        query = (
            select(AssignmentRecord.role_key, func.count())
            .where(AssignmentRecord.role_key.in_(keys))
            .group_by(AssignmentRecord.role_key)
        )
        return {key: int(n) for key, n in self._session.execute(query)}

    def get(self, key: str) -> Role | None:
        row = self._session.get(RoleRecord, key)
        return None if row is None else _role(row, self._counts([key]).get(key, 0))

    def all_by_key(self) -> dict[str, Role]:
        rows = list(self._session.scalars(select(RoleRecord)))
        return {r.key: _role(r, 0) for r in rows}

    def add(self, role: Role) -> None:
        row = RoleRecord(
            key=role.key,
            display_name=role.display_name,
            description=role.description,
            source=role.source.value,
            empty_value=role.empty_value.value,
            builtin=role.builtin,
            create_time=role.create_time,
            update_time=role.update_time,
        )
        self._session.add(row)
        flush(self._session)
        role.version = row.version

    def save(self, role: Role) -> None:
        row = self._session.get(RoleRecord, role.key)
        if row is None:
            raise LookupError(role.key)
        row.display_name, row.description = role.display_name, role.description
        row.source, row.empty_value, row.update_time = role.source.value, role.empty_value.value, role.update_time
        flush(self._session)
        role.version = row.version

    def delete(self, key: str) -> None:
        self._session.execute(delete(RoleRecord).where(RoleRecord.key == key))

    def list_page(self, *, limit: int, after: Key | None) -> list[Role]:
        rows = list(self._session.scalars(keyset(select(RoleRecord), (RoleRecord.key,), after, limit)))
        counts = self._counts([r.key for r in rows])
        return [_role(r, counts.get(r.key, 0)) for r in rows]


class AssignmentRepository:
    """Writes go through Core statements on the table: a batch of thousands of rows must not pay
    for ORM bookkeeping (identity map, autoflush) on every row."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._history: list[dict[str, object]] = []

    def claim(
        self, account_id: str, role_key: str, user_id: str, source: Source, source_ref: str, now: dt.datetime
    ) -> Assignment | None:
        """Create the assignment if the slot is free, else lock the holder's row and return it.

        INSERT ... ON CONFLICT DO NOTHING makes a concurrent writer wait for ours to commit and
        then see it, so two writers can never both believe the slot was empty.
        """
        created = self._session.execute(
            _claim_statement(self._session.get_bind().dialect.name),
            {
                "account_id": account_id,
                "role_key": role_key,
                "user_id": user_id,
                "source": source.value,
                "source_ref": source_ref,
                "update_time": now,
            },
        ).first()
        if created is not None:
            return None
        return self.get(account_id, role_key, for_update=True)

    def get(self, account_id: str, role_key: str, *, for_update: bool = False) -> Assignment | None:
        query = select(AssignmentRecord).where(
            AssignmentRecord.account_id == account_id, AssignmentRecord.role_key == role_key
        )
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query.execution_options(populate_existing=True)).one_or_none()
        return None if row is None else _assignment(row)

    def replace_holder(
        self, account_id: str, role_key: str, user_id: str, source: Source, source_ref: str, now: dt.datetime
    ) -> None:
        self._session.execute(
            update(AssignmentRecord)
            .where(AssignmentRecord.account_id == account_id, AssignmentRecord.role_key == role_key)
            .values(user_id=user_id, source=source.value, source_ref=source_ref, update_time=now)
        )

    def remove(self, account_id: str, role_key: str) -> str | None:
        holder = self.get(account_id, role_key, for_update=True)
        if holder is None:
            return None
        self._session.execute(
            delete(AssignmentRecord).where(
                AssignmentRecord.account_id == account_id, AssignmentRecord.role_key == role_key
            )
        )
        return holder.user_id

    def of_role(self, role_key: str) -> list[Assignment]:
        query = select(AssignmentRecord).where(AssignmentRecord.role_key == role_key).with_for_update()
        return [_assignment(r) for r in self._session.scalars(query)]

    def team(self, account_id: str) -> list[Assignment]:
        query = select(AssignmentRecord).where(AssignmentRecord.account_id == account_id)
        return [_assignment(r) for r in self._session.scalars(query.order_by(AssignmentRecord.role_key))]

    def list_page(
        self,
        *,
        limit: int,
        after: Key | None,
        user_id: str | None,
        role_key: str | None,
        account_id: str | None,
        source: Source | None = None,
        source_ref: str | None = None,
    ) -> list[Assignment]:
        """By source_ref, ix_assignments_source_ref serves both the filter and the order. Plain
        rows, not ORM instances: a sync's stale scan pages through every assignment a job wrote."""
        query = select(*_TABLE.c)
        if user_id:
            query = query.where(AssignmentRecord.user_id == user_id)
        if role_key:
            query = query.where(AssignmentRecord.role_key == role_key)
        if account_id:
            query = query.where(AssignmentRecord.account_id == account_id)
        if source is not None:
            query = query.where(AssignmentRecord.source == source.value)
        if source_ref:
            query = query.where(AssignmentRecord.source_ref == source_ref)
        query = keyset(query, (AssignmentRecord.account_id, AssignmentRecord.role_key), after, limit)
        return [_assignment(r) for r in self._session.execute(query)]

    def count_by_user(self, role_key: str, user_ids: Iterable[str]) -> dict[str, int]:
        """Accounts on which each of these users holds the role now: one GROUP BY query. Users who
        hold it nowhere are absent from the result."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        query = (
            select(AssignmentRecord.user_id, func.count())
            .where(AssignmentRecord.role_key == role_key, AssignmentRecord.user_id.in_(ids))
            .group_by(AssignmentRecord.user_id)
        )
        return {user_id: int(n) for user_id, n in self._session.execute(query)}

    def record(self, change: AssignmentChange) -> None:
        """Buffered, and written in one statement by flush_history (the unit of work calls it on commit)."""
        self._history.append(
            {
                "account_id": change.account_id,
                "role_key": change.role_key,
                "user_id": change.user_id,
                "previous_user_id": change.previous_user_id,
                "source": change.source.value,
                "source_ref": change.source_ref,
                "actor": change.actor,
                "change_time": change.change_time,
            }
        )

    def flush_history(self) -> None:
        if self._history:
            self._session.execute(insert(table_of(AssignmentHistoryRecord)), self._history)
            self._history = []

    def history_until(self, account_id: str, as_of: dt.datetime) -> list[AssignmentChange]:
        self.flush_history()
        query = (
            select(AssignmentHistoryRecord)
            .where(AssignmentHistoryRecord.account_id == account_id, AssignmentHistoryRecord.change_time <= as_of)
            .order_by(AssignmentHistoryRecord.change_time, AssignmentHistoryRecord.id)
        )
        return [_change(r) for r in self._session.scalars(query)]

    def history_page(
        self, *, limit: int, after: Key | None, account_id: str | None, role_key: str | None, user_id: str | None
    ) -> list[tuple[int, AssignmentChange]]:
        self.flush_history()
        query = select(AssignmentHistoryRecord)
        if account_id:
            query = query.where(AssignmentHistoryRecord.account_id == account_id)
        if role_key:
            query = query.where(AssignmentHistoryRecord.role_key == role_key)
        if user_id:
            query = query.where(
                (AssignmentHistoryRecord.user_id == user_id) | (AssignmentHistoryRecord.previous_user_id == user_id)
            )
        query = keyset(query, (AssignmentHistoryRecord.id,), after, limit, descending=True)
        return [(r.id, _change(r)) for r in self._session.scalars(query)]

    def count_for_users(self, user_ids: Iterable[str]) -> int:
        ids = list(user_ids)
        return int(self._session.scalar(select(func.count()).where(AssignmentRecord.user_id.in_(ids))) or 0)
