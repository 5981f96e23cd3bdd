"""Lifecycle actions on users: one at a time, or in bulk with an outcome per user."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import DomainError, FailedPrecondition
from services.runtime.etag import check_etag
from services.users.adapters.reassignment_repository import ReassignmentRepository
from services.users.config import UsersConfig
from services.users.domain.events import user_event
from services.users.domain.lifecycle import Action, gains_seat, next_status
from services.users.domain.model import License, User, UserStatus, ensure_visible, user_not_found
from services.users.domain.notifications import access_disabled_email, access_enabled_email
from services.users.domain.permissions import Actor, ensure_can_manage_users
from services.users.domain.reassignment import Plan
from services.users.domain.teams import Membership, team_not_found
from services.users.service_layer.notify import queue, send_invitation
from services.users.service_layer.reassignment import ensure_nothing_left, reassign, release_everything
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork

_EVENT = {
    Action.ACCEPT_INVITATION: "accepted",
    Action.SEND_INVITATION: "invited",
    Action.CANCEL_INVITATION: "deleted",
    Action.ACTIVATE: "activated",
    Action.DISABLE: "disabled",
    Action.DELETE: "deleted",
}


def apply_action(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    seats: SeatLedger,
    user: User,
    action: Action,
    now: dt.datetime,
    actor: str,
) -> User:
    """Move `user` along the lifecycle, taking a seat if the new status holds one, and queue its email."""
    before = user.status
    after = next_status(user, action)
    if gains_seat(before, after) and config.licenses.counts(after, user.email):
        seats.take(user.license)
    user.status = after
    user.update_time = now
    if action is Action.SEND_INVITATION or (action is Action.ACTIVATE and after is UserStatus.CREATED):
        send_invitation(uow, config, user, now)
    elif action is Action.ACTIVATE:
        queue(uow, access_enabled_email(user.email), now)
    elif action is Action.DISABLE:
        queue(uow, access_disabled_email(user.email), now)
    elif after is UserStatus.DELETED:
        uow.invitations.revoke_open([user.id])
        uow.teams.remove_user_everywhere(user.id)
        user.memberships = []
    uow.users.save(user)
    uow.events.append(user_event(_EVENT[action], user.id, actor, status=after.value, previous_status=before.value), now)
    return user


def change_status(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    actor: Actor,
    user_id: str,
    etag: str,
    action: Action,
    now: dt.datetime,
    plan: Plan | None = None,
) -> User:
    ensure_can_manage_users(actor, f"{action.value.lower().replace('_', ' ')} users")
    user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
    check_etag(etag, user.etag)
    if action in (Action.DISABLE, Action.DELETE):
        next_status(user, action)  # an illegal transition is refused before anything moves
        # One user at a time, nothing may be orphaned: what they own moves in this transaction.
        ensure_nothing_left(uow, user, plan)
        if plan is not None and not plan.empty:
            reassign(uow, config, actor, user.id, plan, dry_run=False, now=now)
            user = ensure_visible(uow.users.get(user_id), user_id)
    return apply_action(uow, config, SeatLedger(uow, config.licenses), user, action, now, actor.subject)


@dataclass(frozen=True)
class BulkOutcome:
    user_id: str
    done: bool
    reason: str = ""
    description: str = ""


class BulkKind(StrEnum):
    SEND_INVITATION = "SEND_INVITATION"
    DELETE = "DELETE"
    ACTIVATE = "ACTIVATE"
    DISABLE = "DISABLE"
    UPDATE_LICENSE = "UPDATE_LICENSE"
    ADD_TO_TEAM = "ADD_TO_TEAM"


_LIFECYCLE = {
    BulkKind.SEND_INVITATION: Action.SEND_INVITATION,
    BulkKind.DELETE: Action.DELETE,
    BulkKind.ACTIVATE: Action.ACTIVATE,
    BulkKind.DISABLE: Action.DISABLE,
}


MAX_BULK = 10_000


def bulk_action(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    actor: Actor,
    action: BulkKind,
    user_ids: Sequence[str],
    now: dt.datetime,
    *,
    license: License | None = None,
    membership: Membership | None = None,
) -> list[BulkOutcome]:
    """Every user gets an outcome. Checks run before any write for a user, so a skipped user is
    left exactly as it was; the whole batch commits in the caller's one transaction."""
    ensure_can_manage_users(actor, "run bulk actions")
    if membership is not None and not uow.teams.existing_ids([membership.team_id]):
        raise team_not_found(membership.team_id)
    seats = SeatLedger(uow, config.licenses)
    users = uow.users.get_many(user_ids, for_update=True)
    releasing = action in (BulkKind.DISABLE, BulkKind.DELETE)
    owners = ReassignmentRepository(uow.session, uow.events).owners_among(list(users)) if releasing else set()
    outcomes: list[BulkOutcome] = []
    seen: set[str] = set()
    for user_id in user_ids:
        if user_id in seen:
            outcomes.append(BulkOutcome(user_id, False, "DUPLICATE_IN_REQUEST", "listed more than once"))
            continue
        seen.add(user_id)
        user = users.get(user_id)
        try:
            if user is None:
                raise user_not_found(user_id)
            _bulk_one(uow, config, seats, user, action, now, license, membership, actor.subject, user.id in owners)
            outcomes.append(BulkOutcome(user_id, True))
        except DomainError as skipped:
            outcomes.append(BulkOutcome(user_id, False, skipped.reason, skipped.message))
    return outcomes


def _bulk_one(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    seats: SeatLedger,
    user: User,
    action: BulkKind,
    now: dt.datetime,
    license: License | None,
    membership: Membership | None,
    actor: str,
    owns_something: bool = False,
) -> None:
    if action in _LIFECYCLE:
        lifecycle_action = _LIFECYCLE[action]
        if owns_something:
            next_status(user, lifecycle_action)  # skipped users keep what they own
            release_everything(uow, user, actor, now)
        apply_action(uow, config, seats, user, lifecycle_action, now, actor)
        return
    if user.status is UserStatus.DELETED:
        raise FailedPrecondition("USER_DELETED", "the user is deleted")
    if action is BulkKind.UPDATE_LICENSE and license is not None:
        change_license(uow, config, seats, user, license, now)
        uow.events.append(user_event("updated", user.id, actor, fields=["license"]), now)
    elif action is BulkKind.ADD_TO_TEAM and membership is not None:
        if membership in user.memberships:
            raise FailedPrecondition("ALREADY_IN_STATE", "already in the team with this role")
        uow.teams.set_member(membership.team_id, user.id, membership.role)


def change_license(
    uow: UsersUnitOfWork, config: UsersConfig, seats: SeatLedger, user: User, license: License, now: dt.datetime
) -> None:
    if user.license is license:
        raise FailedPrecondition("ALREADY_IN_STATE", f"already {license.value}")
    before = user.license
    user.change_license(license)
    if config.licenses.counts(user.status, user.email):
        seats.take(license)
        seats.release(before)
    user.update_time = now
    uow.users.save(user)
