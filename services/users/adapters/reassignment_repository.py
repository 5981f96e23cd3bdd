"""Set-based moves of everything a user owns: a leaving user may hold 100,000 assignments."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from services.runtime.db import table_of
from services.runtime.set_sql import json_object, text_value, time_value
from services.users.adapters.event_log import EventLog
from services.users.adapters.orm import (
    AssignmentHistoryRecord,
    AssignmentRecord,
    ResourceRecord,
    RoleRecord,
    TaskRecord,
    TeamMembershipRecord,
    TeamRecord,
    UserRecord,
)

MOVABLE_CAMPAIGNS = ("ACTIVE", "DRAFT")


class ReassignmentRepository:
    def __init__(self, session: Session, events: EventLog) -> None:
        self._session = session
        self._events = events
        self._dialect = session.get_bind().dialect.name

    def _integration_only(self) -> Any:
        return select(RoleRecord.key).where(RoleRecord.source == "INTEGRATION_ONLY").scalar_subquery()

    def assignments(self, user_id: str, *, movable: bool) -> list[tuple[str, str]]:
        roles = self._integration_only()
        query = select(AssignmentRecord.account_id, AssignmentRecord.role_key).where(
            AssignmentRecord.user_id == user_id,
            AssignmentRecord.role_key.not_in(roles) if movable else AssignmentRecord.role_key.in_(roles),
        )
        return [(a, r) for a, r in self._session.execute(query.order_by(AssignmentRecord.account_id))]

    def move_assignments(self, user_id: str, target_id: str, actor: str, now: dt.datetime) -> None:
        """History rows, outbox events and the move itself as three set-based statements: a leaving
        user may hold 100,000 assignments, which must not travel through Python one by one."""
        a = AssignmentRecord
        movable = and_(a.user_id == user_id, a.role_key.not_in(self._integration_only()))
        ref = f"users/{user_id}"
        history = table_of(AssignmentHistoryRecord)
        self._session.execute(
            insert(history).from_select(
                [
                    "account_id",
                    "role_key",
                    "user_id",
                    "previous_user_id",
                    "source",
                    "source_ref",
                    "actor",
                    "change_time",
                ],
                select(
                    a.account_id,
                    a.role_key,
                    text_value(target_id),
                    text_value(user_id),
                    text_value("REASSIGNMENT"),
                    text_value(ref),
                    text_value(actor),
                    time_value(now, self._dialect),
                ).where(movable),
            )
        )
        data = json_object(self._dialect)(
            text_value("account_id"),
            a.account_id,
            text_value("role"),
            text_value("roles/") + a.role_key,
            text_value("user"),
            text_value(f"users/{target_id}"),
            text_value("previous_user"),
            text_value(ref),
            text_value("source"),
            text_value("REASSIGNMENT"),
            text_value("source_ref"),
            text_value(ref),
            text_value("attribute"),
            a.role_key + text_value("___tid"),
        )
        subject = text_value("accounts/") + a.account_id + text_value("/roles/") + a.role_key
        self._events.append_select(
            select(text_value("assignment.set"), subject, text_value(actor), data, time_value(now, self._dialect))
            .where(movable)
            .order_by(a.account_id, a.role_key)
        )
        self._session.execute(
            update(a)
            .where(movable)
            .values(user_id=target_id, source="REASSIGNMENT", source_ref=ref, update_time=now)
            .execution_options(synchronize_session=False)
        )

    def clear_assignments(self, user_id: str, actor: str, now: dt.datetime) -> list[tuple[str, str]]:
        keys = [
            (a, r)
            for a, r in self._session.execute(
                select(AssignmentRecord.account_id, AssignmentRecord.role_key).where(
                    AssignmentRecord.user_id == user_id
                )
            )
        ]
        if keys:
            self._session.execute(
                delete(AssignmentRecord)
                .where(AssignmentRecord.user_id == user_id)
                .execution_options(synchronize_session=False)
            )
            self._history(keys, None, user_id, actor, now, "BULK", "user removed")
        return keys

    def _history(
        self,
        keys: list[tuple[str, str]],
        user_id: str | None,
        previous: str,
        actor: str,
        now: dt.datetime,
        source: str,
        source_ref: str,
    ) -> None:
        self._session.execute(
            insert(table_of(AssignmentHistoryRecord)),
            [
                {
                    "account_id": a,
                    "role_key": r,
                    "user_id": user_id,
                    "previous_user_id": previous,
                    "source": source,
                    "source_ref": source_ref,
                    "actor": actor,
                    "change_time": now,
                }
                for a, r in keys
            ],
        )

    def open_tasks(self, user_id: str) -> list[tuple[str, str]]:
        query = select(TaskRecord.id, TaskRecord.account_id).where(
            TaskRecord.assignee_id == user_id, TaskRecord.status == "OPEN"
        )
        return [(t, a) for t, a in self._session.execute(query.order_by(TaskRecord.id))]

    def move_open_tasks(self, user_id: str, target_id: str | None) -> None:
        self._session.execute(
            update(TaskRecord)
            .where(TaskRecord.assignee_id == user_id, TaskRecord.status == "OPEN")
            .values(assignee_id=target_id)
            .execution_options(synchronize_session=False)
        )

    def resources(self, user_id: str, visibility: str) -> list[tuple[str, str]]:
        query = select(ResourceRecord.kind, ResourceRecord.id).where(
            ResourceRecord.owner_id == user_id, ResourceRecord.visibility == visibility
        )
        return [(k, i) for k, i in self._session.execute(query.order_by(ResourceRecord.kind, ResourceRecord.id))]

    def move_resources(self, user_id: str, target_id: str, visibility: str, now: dt.datetime) -> None:
        # By visibility, not by listed keys: a key list matched as "kind IN (...) AND id IN (...)"
        # could also catch a resource of the other visibility that happens to share an id.
        self._session.execute(
            update(ResourceRecord)
            .where(ResourceRecord.owner_id == user_id, ResourceRecord.visibility == visibility)
            .values(owner_id=target_id, update_time=now)
            .execution_options(synchronize_session=False)
        )

    def delete_private_resources(self, user_id: str) -> list[tuple[str, str]]:
        """Only segments, plays and SuccessBLOCs can be private (enforced when they are registered)."""
        keys = self.resources(user_id, "PRIVATE")
        self._session.execute(
            delete(ResourceRecord)
            .where(ResourceRecord.owner_id == user_id, ResourceRecord.visibility == "PRIVATE")
            .execution_options(synchronize_session=False)
        )
        return keys

    def counts(self, user_id: str) -> dict[str, int]:
        """How much of each part the user owns, counted by the database (not fetched to be counted)."""
        a, t, r = AssignmentRecord, TaskRecord, ResourceRecord
        queries = {
            "assignments": select(func.count()).where(
                a.user_id == user_id, a.role_key.not_in(self._integration_only())
            ),
            "open_tasks": select(func.count()).where(t.assignee_id == user_id, t.status == "OPEN"),
            "shared_resources": select(func.count()).where(r.owner_id == user_id, r.visibility == "SHARED"),
            "private_resources": select(func.count()).where(r.owner_id == user_id, r.visibility == "PRIVATE"),
            "direct_reports": select(func.count()).where(UserRecord.manager_id == user_id),
        }
        return {part: int(self._session.scalar(query) or 0) for part, query in queries.items()}

    def owners_among(self, user_ids: list[str]) -> set[str]:
        """Which of these users hold assignments, open tasks or private resources (a few queries for
        a whole bulk action, so that users who own nothing cost nothing more)."""
        found: set[str] = set()
        for start in range(0, len(user_ids), 500):
            chunk = user_ids[start : start + 500]
            for query in (
                select(AssignmentRecord.user_id).where(AssignmentRecord.user_id.in_(chunk)),
                select(TaskRecord.assignee_id).where(TaskRecord.assignee_id.in_(chunk), TaskRecord.status == "OPEN"),
                select(ResourceRecord.owner_id).where(
                    ResourceRecord.owner_id.in_(chunk), ResourceRecord.visibility == "PRIVATE"
                ),
            ):
                found |= {str(owner) for owner in self._session.scalars(query.distinct())}
        return found

    def campaigns_with(self, user_id: str) -> list[ResourceRecord]:
        """ACTIVE and DRAFT campaigns naming the user as sender or BCC (filtered here: JSON lists)."""
        query = select(ResourceRecord).where(
            ResourceRecord.kind == "CAMPAIGN", ResourceRecord.campaign_status.in_(MOVABLE_CAMPAIGNS)
        )
        return [r for r in self._session.scalars(query) if user_id in (r.senders or []) or user_id in (r.bcc or [])]

    @staticmethod
    def replace_person(row: ResourceRecord, user_id: str, target_id: str, now: dt.datetime) -> None:
        def swap(people: list[str]) -> list[str]:
            out = [target_id if p == user_id else p for p in people]
            return list(dict.fromkeys(out))  # the target may have been there already

        row.senders, row.bcc, row.update_time = swap(row.senders or []), swap(row.bcc or []), now

    def direct_reports(self, user_id: str) -> list[str]:
        return list(self._session.scalars(select(UserRecord.id).where(UserRecord.manager_id == user_id)))

    def move_direct_reports(self, user_id: str, target_id: str, now: dt.datetime) -> None:
        # Bulk UPDATEs bypass the ORM's version counter: bump it here, so etags still change.
        self._session.execute(
            update(UserRecord)
            .where(UserRecord.manager_id == user_id)
            .values(manager_id=target_id, version=UserRecord.version + 1, update_time=now)
            .execution_options(synchronize_session=False)
        )

    def managed_teams(self, user_id: str) -> list[str]:
        return list(self._session.scalars(select(TeamRecord.id).where(TeamRecord.manager_id == user_id)))

    def move_team_management(self, user_id: str, target_id: str, now: dt.datetime) -> None:
        self._session.execute(
            update(TeamRecord)
            .where(TeamRecord.manager_id == user_id)
            .values(manager_id=target_id, version=TeamRecord.version + 1, update_time=now)
            .execution_options(synchronize_session=False)
        )

    def memberships(self, user_id: str) -> dict[str, str]:
        query = select(TeamMembershipRecord.team_id, TeamMembershipRecord.role).where(
            TeamMembershipRecord.user_id == user_id
        )
        return {team: role for team, role in self._session.execute(query)}

    def add_memberships(self, target_id: str, memberships: dict[str, str]) -> list[str]:
        have = self.memberships(target_id)
        added = [team for team in sorted(memberships) if team not in have]
        for team in added:
            self._session.add(TeamMembershipRecord(team_id=team, user_id=target_id, role=memberships[team]))
        return added
