"""UpsertUsers: integrations create or update users by email, and put them in teams, with an
outcome per row."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument
from services.users.config import UsersConfig
from services.users.domain.events import user_event
from services.users.domain.model import License, User, UserStatus, is_valid_email, normalize_email
from services.users.domain.permissions import Actor, ensure_can_upsert
from services.users.domain.teams import Membership, TeamRole, team_not_found, teams_to_join
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork

MAX_ROWS = 1000
CREATABLE = frozenset({UserStatus.CREATED, UserStatus.CREATED_DISABLED})


class RowResult(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class UpsertRow:
    email: str
    first_name: str = ""
    last_name: str = ""
    license: License | None = None
    status: UserStatus | None = None
    custom_attributes: dict[str, str] = field(default_factory=dict)
    # Team ids the user should be a member of: missing memberships are added as MEMBER.
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowOutcome:
    row: int
    email: str
    result: RowResult
    user_id: str = ""
    reason: str = ""
    description: str = ""


def upsert_users(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, rows: Sequence[UpsertRow], now: dt.datetime
) -> list[RowOutcome]:
    """Each row either applies whole or fails alone; rows are checked before they write.

    Team memberships are written last in a row, after its user is, and only after every team it
    names is known to exist; like AddTeamMember they record no event of their own (a created or
    updated user's event is recorded as before)."""
    ensure_can_upsert(actor)
    if len(rows) > MAX_ROWS:
        raise InvalidArgument("TOO_MANY_ROWS", f"at most {MAX_ROWS} rows per call; got {len(rows)}")
    existing = uow.users.live_by_emails(r.email for r in rows if is_valid_email(normalize_email(r.email)))
    known_teams = uow.teams.existing_ids(t for r in rows for t in r.teams)
    seats = SeatLedger(uow, config.licenses)
    seen: set[str] = set()
    outcomes = []
    for index, row in enumerate(rows):
        key = normalize_email(row.email)
        try:
            if not is_valid_email(key):
                raise InvalidArgument("EMAIL_INVALID", f"{row.email!r} is not an email address")
            if key in seen:
                raise InvalidArgument("DUPLICATE_IN_REQUEST", "this email appears in an earlier row")
            seen.add(key)
            unknown = next((t for t in row.teams if t not in known_teams), None)
            if unknown is not None:
                raise team_not_found(unknown)
            user = existing.get(key)
            if user is None:
                user = _create(uow, config, seats, row, now)
                existing[key] = user
                uow.events.append(user_event("created", user.id, actor.subject, status=user.status.value), now)
                _join(uow, user, row.teams)
                outcomes.append(RowOutcome(index, row.email, RowResult.CREATED, user.id))
            else:
                changed = _update(uow, config, seats, user, row, now)
                if changed:
                    uow.events.append(user_event("updated", user.id, actor.subject), now)
                joined = _join(uow, user, row.teams)
                outcomes.append(
                    RowOutcome(
                        index, row.email, RowResult.UPDATED if changed or joined else RowResult.UNCHANGED, user.id
                    )
                )
        except DomainError as failed:
            outcomes.append(RowOutcome(index, row.email, RowResult.FAILED, "", failed.reason, failed.message))
    return outcomes


def _create(uow: UsersUnitOfWork, config: UsersConfig, seats: SeatLedger, row: UpsertRow, now: dt.datetime) -> User:
    status = row.status or UserStatus.CREATED
    if status not in CREATABLE:
        raise FailedPrecondition("STATUS_NOT_CREATABLE", "new users start as CREATED or CREATED_DISABLED")
    if row.license is None:
        raise InvalidArgument("LICENSE_REQUIRED", "a new user needs a license")
    user = User(
        id=str(uuid.uuid4()),
        email=row.email.strip(),
        first_name="",
        last_name="",
        status=status,
        license=row.license,
        create_time=now,
        update_time=now,
    )
    user.update_profile(_profile(row), now)
    if config.licenses.counts(status, user.email):
        seats.take(row.license)
    uow.users.add(user)
    return user


def _join(uow: UsersUnitOfWork, user: User, team_ids: Sequence[str]) -> bool:
    """Adds the user as a MEMBER of the teams they are not in yet (any role counts as in).
    True when a membership was added."""
    missing = teams_to_join(user.memberships, team_ids)
    for team_id in missing:
        uow.teams.set_member(team_id, user.id, TeamRole.MEMBER)
        user.memberships.append(Membership(team_id, TeamRole.MEMBER))
    return bool(missing)


def _profile(row: UpsertRow) -> dict[str, object]:
    changes: dict[str, object] = {"first_name": row.first_name.strip(), "last_name": row.last_name.strip()}
    if row.custom_attributes:
        changes["custom_attributes"] = dict(row.custom_attributes)
    return changes


def _update(
    uow: UsersUnitOfWork, config: UsersConfig, seats: SeatLedger, user: User, row: UpsertRow, now: dt.datetime
) -> bool:
    """Empty names and attributes in a row leave the stored ones as they are."""
    changes = {k: v for k, v in _profile(row).items() if v and v != getattr(user, k)}
    license_changes = row.license is not None and row.license is not user.license
    if license_changes and row.license is License.VIEWER:
        user.change_license(License.VIEWER)  # refused for practitioners and contributors, with its reason
    if not changes and not license_changes:
        return False
    if changes:
        user.update_profile(changes, now)
    if license_changes and row.license is not None:
        if config.licenses.counts(user.status, user.email):
            seats.take(row.license)
            seats.release(user.license)
        user.license = row.license
    user.update_time = now
    uow.users.save(user)
    return True
