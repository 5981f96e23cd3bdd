"""Inviting people, and the invitee's side: accepting."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from services.runtime.errors import AlreadyExists, FailedPrecondition, Violations
from services.users.config import UsersConfig
from services.users.domain.events import user_event
from services.users.domain.invitations import invitation_not_found, token_hash
from services.users.domain.lifecycle import Action, next_status
from services.users.domain.model import (
    License,
    User,
    UserStatus,
    ensure_visible,
    is_valid_email,
    normalize_email,
)
from services.users.domain.permissions import Actor, ensure_can_invite, ensure_can_manage_users
from services.users.domain.teams import Membership
from services.users.service_layer.lifecycle import apply_action
from services.users.service_layer.notify import send_invitation
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork

MAX_INVITES = 500


def split_addresses(emails: Sequence[str]) -> list[tuple[int, str]]:
    """(request index, address) for every address; an element may hold a comma-separated list."""
    return [(i, part.strip()) for i, item in enumerate(emails) for part in item.split(",") if part.strip()]


def invite_users(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    actor: Actor,
    emails: Sequence[str],
    license: License | None,
    global_admin: bool,
    memberships: Sequence[Membership],
    send: bool,
    now: dt.datetime,
) -> list[User]:
    ensure_can_invite(actor, global_admin, [m.team_id for m in memberships])
    addresses = split_addresses(emails)
    problems = Violations()
    if not addresses:
        problems.add("emails", "give at least one email address", "REQUIRED")
    if len(addresses) > MAX_INVITES:
        problems.add("emails", f"at most {MAX_INVITES} addresses per call", "TOO_MANY")
    if license is None:
        problems.add("license", "choose PRACTITIONER, CONTRIBUTOR or VIEWER", "REQUIRED")
    missing_teams = {m.team_id for m in memberships} - uow.teams.existing_ids(m.team_id for m in memberships)
    for j, membership in enumerate(memberships):
        if membership.team_id in missing_teams:
            problems.add(f"team_memberships[{j}].team", "no such team", "TEAM_NOT_FOUND")
    taken = uow.users.live_by_emails(address for _, address in addresses)
    seen: set[str] = set()
    for i, address in addresses:
        key = normalize_email(address)
        if not is_valid_email(key):
            problems.add(f"emails[{i}]", f"{address!r} is not an email address", "EMAIL_INVALID")
        elif key in seen:
            problems.add(f"emails[{i}]", f"{address} is listed more than once", "EMAIL_REPEATED")
        elif key in taken:
            problems.add(f"emails[{i}]", f"{address} already belongs to a user", "EMAIL_ALREADY_REGISTERED")
        seen.add(key)
    problems.raise_if_any("no one was invited")
    assert license is not None
    counted = sum(1 for _, a in addresses if config.licenses.counts(UserStatus.CREATED, a))
    SeatLedger(uow, config.licenses).take(license, counted)
    users = []
    for _, address in addresses:
        user = User(
            id=str(uuid.uuid4()),
            email=address,
            first_name="",
            last_name="",
            status=UserStatus.CREATED,
            license=license,
            create_time=now,
            update_time=now,
            global_admin=global_admin,
            memberships=list(memberships),
        )
        try:
            uow.users.add(user)
        except IntegrityError as exc:  # a concurrent invitation of the same address won the race
            raise AlreadyExists(
                "EMAIL_ALREADY_REGISTERED", f"{address} already belongs to a user", metadata={"email": address}
            ) from exc
        for membership in memberships:
            uow.teams.set_member(membership.team_id, user.id, membership.role)
        if send:
            send_invitation(uow, config, user, now)
        uow.events.append(
            user_event("created", user.id, actor.subject, status=user.status.value, license=license.value), now
        )
        users.append(user)
    return users


def accept_invitation(uow: UsersUnitOfWork, token: str, first_name: str, last_name: str, now: dt.datetime) -> User:
    problems = Violations()
    if not token:
        problems.add("token", "the token from the invitation email is required", "REQUIRED")
    for field, value in (("first_name", first_name), ("last_name", last_name)):
        if not value.strip():
            problems.add(field, "is required to finish the profile", "REQUIRED")
    problems.raise_if_any()
    invitation = uow.invitations.get_for_update(token_hash(token))
    if invitation is None:
        raise invitation_not_found()
    invitation.ensure_usable(now)
    user = ensure_visible(uow.users.get(invitation.user_id, for_update=True), invitation.user_id)
    user.update_profile({"first_name": first_name.strip(), "last_name": last_name.strip()}, now)
    user.status = next_status(user, Action.ACCEPT_INVITATION)
    user.last_activity_time = now
    uow.invitations.mark_used(invitation.token_hash, now)
    uow.users.save(user)
    uow.events.append(user_event("accepted", user.id, f"users/{user.id}", status=user.status.value), now)
    return user


def _ensure_can_handle_invitation(actor: Actor, user: User) -> None:
    """User managers, or an admin of one of the teams the user was invited into."""
    if not (user.team_ids & actor.admin_of_teams):
        ensure_can_manage_users(actor, "manage this user's invitation")


def resend_invitation(uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user_id: str, now: dt.datetime) -> User:
    user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
    _ensure_can_handle_invitation(actor, user)
    if user.status is not UserStatus.CREATED:
        raise FailedPrecondition(
            "NOT_INVITED",
            f"only CREATED users have an invitation to resend; this one is {user.status.value}",
            metadata={"user": f"users/{user.id}"},
        )
    return apply_action(uow, config, SeatLedger(uow, config.licenses), user, Action.SEND_INVITATION, now, actor.subject)


def cancel_invitation(uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user_id: str, now: dt.datetime) -> User:
    user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
    _ensure_can_handle_invitation(actor, user)
    return apply_action(
        uow, config, SeatLedger(uow, config.licenses), user, Action.CANCEL_INVITATION, now, actor.subject
    )
