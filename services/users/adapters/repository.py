"""Loads and stores the users service's aggregates; the only place that knows how they map onto rows."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, and_, delete, func, not_, or_, select, update
from sqlalchemy.orm import Session

from services.runtime.db import flush, keyset, table_of
from services.runtime.pagination import Key
from services.runtime.set_sql import JsonRows
from services.users.adapters.orm import (
    InvitationRecord,
    LicenseSeatRecord,
    NotificationRecord,
    TeamMembershipRecord,
    TeamRecord,
    UserRecord,
    user_status_where,
)
from services.users.domain.invitations import Invitation
from services.users.domain.model import License, User, UserStatus, normalize_email
from services.users.domain.notifications import Email
from services.users.domain.teams import Membership, Team, TeamRole

_USERS = table_of(UserRecord)
_USER_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "global_admin",
    "manager_id",
    "signature",
    "create_time",
    "update_time",
    "last_activity_time",
    "user_management",
)


def _to_domain(row: UserRecord | Row[Any], memberships: list[Membership]) -> User:
    return User(
        id=row.id,
        status=UserStatus(row.status),
        license=License(row.license),
        alternative_emails=list(row.alternative_emails or []),
        custom_attributes=dict(row.custom_attributes or {}),
        memberships=memberships,
        version=row.version,
        **{name: getattr(row, name) for name in _USER_FIELDS},
    )


def _copy_into(row: UserRecord, user: User) -> None:
    for name in _USER_FIELDS:
        setattr(row, name, getattr(user, name))
    row.email_normalized = normalize_email(user.email)
    row.status = user.status.value
    row.license = user.license.value
    row.alternative_emails = list(user.alternative_emails)
    row.custom_attributes = dict(user.custom_attributes)


class UserRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _memberships(self, user_ids: Iterable[str]) -> dict[str, list[Membership]]:
        ids = list(user_ids)
        found: dict[str, list[Membership]] = defaultdict(list)
        for start in range(0, len(ids), 500):  # stay below every backend's bound-parameter limit
            query = select(TeamMembershipRecord).where(TeamMembershipRecord.user_id.in_(ids[start : start + 500]))
            for row in self._session.scalars(query.order_by(TeamMembershipRecord.team_id)):
                found[row.user_id].append(Membership(row.team_id, TeamRole(row.role)))
        return found

    def _load(self, rows: Sequence[UserRecord | Row[Any]]) -> list[User]:
        memberships = self._memberships(r.id for r in rows)
        return [_to_domain(r, memberships.get(r.id, [])) for r in rows]

    def _core_rows(self, where: Any) -> Sequence[Row[Any]]:
        """Plain rows rather than ORM instances, for reads of hundreds of users at a time (a
        batch's lookups): ~3x cheaper, and nothing is saved through them."""
        return self._session.execute(select(*_USERS.c).where(where)).all()

    def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        query = select(UserRecord).where(UserRecord.id == user_id)
        if for_update:
            query = query.with_for_update()
        rows = list(self._session.scalars(query))
        return self._load(rows)[0] if rows else None

    def get_many(self, user_ids: Iterable[str], *, for_update: bool = False) -> dict[str, User]:
        ids = sorted(set(user_ids))  # a stable order: concurrent bulk calls lock rows in the same order
        users: dict[str, User] = {}
        for start in range(0, len(ids), 500):
            chunk = UserRecord.id.in_(ids[start : start + 500])
            if for_update:
                query = select(UserRecord).where(chunk).order_by(UserRecord.id).with_for_update()
                rows: Sequence[UserRecord | Row[Any]] = list(self._session.scalars(query))
            else:
                rows = self._core_rows(chunk)
            users |= {u.id: u for u in self._load(rows)}
        return users

    def get_live_by_email(self, email: str) -> User | None:
        query = select(UserRecord).where(
            UserRecord.email_normalized == normalize_email(email), user_status_where(lambda p: p.is_listed)
        )
        rows = list(self._session.scalars(query))
        return self._load(rows)[0] if rows else None

    def live_by_emails(self, emails: Iterable[str]) -> dict[str, User]:
        wanted = sorted({normalize_email(e) for e in emails})
        found: dict[str, User] = {}
        for start in range(0, len(wanted), 500):
            rows = self._core_rows(
                and_(
                    UserRecord.email_normalized.in_(wanted[start : start + 500]),
                    user_status_where(lambda p: p.is_listed),
                )
            )
            found |= {normalize_email(u.email): u for u in self._load(rows)}
        return found

    def live_by_full_name(self, full_name: str) -> list[User]:
        wanted = " ".join(full_name.split()).lower()
        query = select(UserRecord).where(
            func.lower(UserRecord.first_name + " " + UserRecord.last_name) == wanted,
            user_status_where(lambda p: p.is_listed),
        )
        return self._load(list(self._session.scalars(query.order_by(UserRecord.email_normalized))))

    def statuses(self, user_ids: Iterable[str]) -> dict[str, UserStatus]:
        """The status of each of these users that exists, with one query whatever their number
        (the ids travel as one JSON parameter): all a batch of tasks needs of its assignees."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        batch = JsonRows([[i] for i in ids], self._session.get_bind().dialect.name, "ids")
        query = select(UserRecord.id, UserRecord.status).where(UserRecord.id.in_(select(batch.text(0))))
        return {row.id: UserStatus(row.status) for row in self._session.execute(query).all()}

    def manager_of(self, user_id: str) -> str | None:
        return self._session.scalar(select(UserRecord.manager_id).where(UserRecord.id == user_id))

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

    def list_page(self, *, limit: int, after: Key | None, show_deleted: bool, emails: Iterable[str] = ()) -> list[User]:
        """emails, when given, keeps only users whose primary email is one of them, case-insensitively."""
        query = select(UserRecord)
        if not show_deleted:
            query = query.where(user_status_where(lambda p: p.is_listed))
        wanted = sorted({normalize_email(e) for e in emails})
        if wanted:
            # email_normalized is lower(email), indexed (ix_users_list); one IN list, so keyset paging still works.
            query = query.where(UserRecord.email_normalized.in_(wanted))
        query = keyset(query, (UserRecord.email_normalized, UserRecord.id), after, limit)
        return self._load(list(self._session.scalars(query)))

    def user_manager_emails(self) -> list[str]:
        """Who manages users (global admins and user managers), to be told what provisioning did."""
        query = select(UserRecord.email).where(
            or_(UserRecord.global_admin, UserRecord.user_management), user_status_where(lambda p: p.may_log_in)
        )
        return list(self._session.scalars(query.order_by(UserRecord.email_normalized)))

    def count_seats(self, exempt_domains: Iterable[str]) -> dict[License, int]:
        """Seats held per license: users whose status holds a seat, outside the exempt domains."""
        query = select(UserRecord.license, func.count()).where(user_status_where(lambda p: p.holds_seat))
        domains = sorted(exempt_domains)
        if domains:
            query = query.where(not_(or_(*(UserRecord.email_normalized.like(f"%@{d}") for d in domains))))
        counts = dict.fromkeys(License, 0)
        for license, count in self._session.execute(query.group_by(UserRecord.license)):
            counts[License(license)] = int(count)
        return counts

    def lock_seats(self, licenses: Iterable[License]) -> None:
        """Serialise seat allocation per license (a row lock on PostgreSQL; SQLite writers queue anyway)."""
        names = sorted({lic.value for lic in licenses})
        self._session.execute(
            select(LicenseSeatRecord).where(LicenseSeatRecord.license.in_(names)).with_for_update()
        ).all()


def list_key(user: User) -> Key:
    return (normalize_email(user.email), user.id)


def _team_to_domain(row: TeamRecord, member_count: int) -> Team:
    return Team(
        id=row.id,
        display_name=row.display_name,
        manager_id=row.manager_id,
        create_time=row.create_time,
        update_time=row.update_time,
        member_count=member_count,
        version=row.version,
    )


class TeamRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def _member_counts(self, team_ids: list[str]) -> dict[str, int]:
        query = (
            select(TeamMembershipRecord.team_id, func.count())
            .where(TeamMembershipRecord.team_id.in_(team_ids))
            .group_by(TeamMembershipRecord.team_id)
        )
        return {team_id: int(count) for team_id, count in self._session.execute(query)}

    def get(self, team_id: str) -> Team | None:
        row = self._session.get(TeamRecord, team_id)
        return None if row is None else _team_to_domain(row, self._member_counts([team_id]).get(team_id, 0))

    def existing_ids(self, team_ids: Iterable[str]) -> set[str]:
        ids = list(set(team_ids))
        return set(self._session.scalars(select(TeamRecord.id).where(TeamRecord.id.in_(ids)))) if ids else set()

    def name_taken(self, display_name: str, except_id: str | None = None) -> bool:
        query = select(TeamRecord.id).where(TeamRecord.display_name_normalized == display_name.lower())
        if except_id:
            query = query.where(TeamRecord.id != except_id)
        return self._session.scalar(query) is not None

    def add(self, team: Team) -> None:
        row = TeamRecord(
            id=team.id,
            display_name=team.display_name,
            display_name_normalized=team.display_name.lower(),
            manager_id=team.manager_id,
            create_time=team.create_time,
            update_time=team.update_time,
        )
        self._session.add(row)
        flush(self._session)
        team.version = row.version

    def save(self, team: Team) -> None:
        row = self._session.get(TeamRecord, team.id)
        if row is None:
            raise LookupError(team.id)
        row.display_name, row.display_name_normalized = team.display_name, team.display_name.lower()
        row.manager_id, row.update_time = team.manager_id, team.update_time
        flush(self._session)
        team.version = row.version

    def list_page(self, *, limit: int, after: Key | None) -> list[Team]:
        query = keyset(select(TeamRecord), (TeamRecord.display_name_normalized, TeamRecord.id), after, limit)
        rows = list(self._session.scalars(query))
        counts = self._member_counts([r.id for r in rows])
        return [_team_to_domain(r, counts.get(r.id, 0)) for r in rows]

    def set_member(self, team_id: str, user_id: str, role: TeamRole) -> None:
        row = self._session.get(TeamMembershipRecord, (team_id, user_id))
        if row is None:
            self._session.add(TeamMembershipRecord(team_id=team_id, user_id=user_id, role=role.value))
        else:
            row.role = role.value
        flush(self._session)

    def remove_member(self, team_id: str, user_id: str) -> bool:
        row = self._session.get(TeamMembershipRecord, (team_id, user_id))
        if row is None:
            return False
        self._session.delete(row)
        flush(self._session)
        return True

    def remove_user_everywhere(self, user_id: str) -> None:
        self._session.execute(delete(TeamMembershipRecord).where(TeamMembershipRecord.user_id == user_id))

    def member_ids(self, team_id: str) -> list[str]:
        query = select(TeamMembershipRecord.user_id).where(TeamMembershipRecord.team_id == team_id)
        return list(self._session.scalars(query.order_by(TeamMembershipRecord.user_id)))

    def members_of(self, team_ids: Iterable[str]) -> dict[str, list[str]]:
        ids = sorted(set(team_ids))
        found: dict[str, list[str]] = {t: [] for t in ids}
        query = select(TeamMembershipRecord.team_id, TeamMembershipRecord.user_id).where(
            TeamMembershipRecord.team_id.in_(ids)
        )
        for row in self._session.execute(query.order_by(TeamMembershipRecord.user_id)):
            found[row.team_id].append(row.user_id)
        return found

    def delete(self, team_id: str) -> None:
        """The team and its memberships (the users stay)."""
        self._session.execute(delete(TeamMembershipRecord).where(TeamMembershipRecord.team_id == team_id))
        self._session.execute(delete(TeamRecord).where(TeamRecord.id == team_id))

    def members_page(self, team_id: str, *, limit: int, after: Key | None) -> list[tuple[str, TeamRole]]:
        query = select(TeamMembershipRecord).where(TeamMembershipRecord.team_id == team_id)
        query = keyset(query, (TeamMembershipRecord.user_id,), after, limit)
        return [(r.user_id, TeamRole(r.role)) for r in self._session.scalars(query)]


def team_key(team: Team) -> Key:
    return (team.display_name.lower(), team.id)


class InvitationRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, invitation: Invitation) -> None:
        self._session.add(
            InvitationRecord(
                token_hash=invitation.token_hash,
                user_id=invitation.user_id,
                create_time=invitation.create_time,
                expire_time=invitation.expire_time,
                used_time=invitation.used_time,
                revoked=invitation.revoked,
            )
        )

    def get_for_update(self, token_hash: str) -> Invitation | None:
        row = self._session.scalars(
            select(InvitationRecord).where(InvitationRecord.token_hash == token_hash).with_for_update()
        ).one_or_none()
        if row is None:
            return None
        return Invitation(row.token_hash, row.user_id, row.create_time, row.expire_time, row.used_time, row.revoked)

    def mark_used(self, token_hash: str, now: dt.datetime) -> None:
        self._session.execute(
            update(InvitationRecord).where(InvitationRecord.token_hash == token_hash).values(used_time=now)
        )

    def revoke_open(self, user_ids: Iterable[str]) -> None:
        """Every unused invitation of these users stops working (a new one replaces it, or none is wanted)."""
        ids = list(user_ids)
        if ids:
            self._session.execute(
                update(InvitationRecord)
                .where(InvitationRecord.user_id.in_(ids), InvitationRecord.used_time.is_(None))
                .values(revoked=True)
            )

    def open_expiry(self, user_ids: Iterable[str]) -> dict[str, dt.datetime]:
        ids = list(user_ids)
        if not ids:
            return {}
        query = (
            select(InvitationRecord.user_id, func.max(InvitationRecord.expire_time))
            .where(
                InvitationRecord.user_id.in_(ids),
                InvitationRecord.used_time.is_(None),
                InvitationRecord.revoked.is_(False),
            )
            .group_by(InvitationRecord.user_id)
        )
        return {user_id: expire for user_id, expire in self._session.execute(query)}


class NotificationOutbox:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, email: Email, now: dt.datetime) -> None:
        self._session.add(
            NotificationRecord(
                id=str(uuid.uuid4()),
                kind=email.kind,
                recipient=email.to,
                subject=email.subject,
                body=email.body,
                create_time=now,
                attempts=0,
                next_attempt_time=now,
                failed=False,
                last_error="",
            )
        )

    def claim_due(self, now: dt.datetime, lease_until: dt.datetime, limit: int) -> list[NotificationRecord]:
        """Rows due for sending that no other sender holds; each is claimed by a conditional update."""
        due = list(
            self._session.scalars(
                select(NotificationRecord)
                .where(
                    NotificationRecord.sent_time.is_(None),
                    NotificationRecord.failed.is_(False),
                    NotificationRecord.next_attempt_time <= now,
                    or_(NotificationRecord.claimed_until.is_(None), NotificationRecord.claimed_until < now),
                )
                .order_by(NotificationRecord.create_time)
                .limit(limit)
            )
        )
        claimed = []
        for row in due:
            result = self._session.execute(
                update(NotificationRecord)
                .where(
                    and_(
                        NotificationRecord.id == row.id,
                        or_(NotificationRecord.claimed_until.is_(None), NotificationRecord.claimed_until < now),
                    )
                )
                .values(claimed_until=lease_until)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                claimed.append(row)
        return claimed

    def mark_sent(self, notification_id: str, now: dt.datetime) -> None:
        self._session.execute(
            update(NotificationRecord)
            .where(NotificationRecord.id == notification_id)
            .values(sent_time=now, claimed_until=None, last_error="")
        )

    def mark_failed_attempt(
        self, notification_id: str, attempts: int, retry_at: dt.datetime | None, error: str
    ) -> None:
        """retry_at None: give up on this email for good (it stays in the table, marked failed)."""
        self._session.execute(
            update(NotificationRecord)
            .where(NotificationRecord.id == notification_id)
            .values(
                attempts=attempts,
                next_attempt_time=retry_at or NotificationRecord.next_attempt_time,
                failed=retry_at is None,
                claimed_until=None,
                last_error=error[:2000],
            )
        )
