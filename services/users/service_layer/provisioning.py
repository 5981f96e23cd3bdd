"""Provisioning from an identity provider (SCIM): the same domain operations as the gRPC twins
(InviteUsers, UpdateUser, DisableUser/ActivateUser, DeleteUser, teams), with the provider's rules
on top: a user is described whole, and a deprovisioned user's work goes to an heir."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.runtime.errors import AlreadyExists, InvalidArgument
from services.users.adapters.scim_repository import ScimIdentity
from services.users.config import UsersConfig
from services.users.domain.events import user_event
from services.users.domain.lifecycle import Action, next_status
from services.users.domain.model import User, UserStatus, is_valid_email, normalize_email, user_not_found
from services.users.domain.permissions import Actor, ensure_can_manage_users
from services.users.domain.provisioning import ProvisionedUser, choose_heir, deprovisioned_email, heir_plan
from services.users.domain.status_policy import policy_of
from services.users.domain.teams import Team, TeamRole
from services.users.service_layer import profiles, teams
from services.users.service_layer.lifecycle import apply_action
from services.users.service_layer.notify import send_invitation
from services.users.service_layer.reassignment import holdings, reassign, release_everything
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork


def live_user(uow: UsersUnitOfWork, user_id: str, *, lock: bool = False) -> User:
    user = uow.users.get(user_id, for_update=lock)
    if user is None or not policy_of(user.status).is_listed:
        raise user_not_found(user_id)
    return user


def _user_name_taken(user_name: str) -> AlreadyExists:
    return AlreadyExists("USER_NAME_TAKEN", f"userName {user_name!r} belongs to another user")


def _email_taken(email: str) -> AlreadyExists:
    return AlreadyExists("EMAIL_ALREADY_REGISTERED", f"{email} already belongs to another user")


def _check(uow: UsersUnitOfWork, wanted: ProvisionedUser, user_id: str | None) -> None:
    if not is_valid_email(normalize_email(wanted.email)):
        raise InvalidArgument("EMAIL_INVALID", f"{wanted.email!r} is not an email address")
    holder = uow.scim.user_name_holder(wanted.user_name)
    if holder is not None and holder != user_id:
        raise _user_name_taken(wanted.user_name)
    other = uow.users.get_live_by_email(wanted.email)
    if other is not None and other.id != user_id:
        raise _email_taken(wanted.email)
    if wanted.manager_id is not None:
        manager = uow.users.get(wanted.manager_id)
        if manager is None or not policy_of(manager.status).is_listed:
            raise InvalidArgument("MANAGER_NOT_FOUND", f"manager {wanted.manager_id!r} is not a Steward user")


def create_user(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, wanted: ProvisionedUser, now: dt.datetime
) -> User:
    """InviteUsers for one person (CREATED, with the invitation email), or ACTIVE at once for
    organisations signing in through their identity provider; `active: false` creates them
    CREATED_DISABLED, holding no seat."""
    ensure_can_manage_users(actor, "provision users")
    _check(uow, wanted, None)
    status = config.scim.create_status if wanted.active is not False else UserStatus.CREATED_DISABLED
    license = wanted.license or config.scim.default_license
    user = User(
        id=str(uuid.uuid4()),
        email=wanted.email.strip(),
        first_name="",
        last_name="",
        status=status,
        license=license,
        create_time=now,
        update_time=now,
        manager_id=wanted.manager_id,
    )
    user.update_profile(_profile(wanted), now)
    if config.licenses.counts(status, user.email):
        SeatLedger(uow, config.licenses).take(license)
    try:
        uow.users.add(user)
        uow.scim.save(_identity(user, wanted))
    except IntegrityError as exc:  # the same person provisioned concurrently
        raise _email_taken(wanted.email) from exc
    if status is UserStatus.CREATED:
        send_invitation(uow, config, user, now)
    uow.events.append(user_event("created", user.id, actor.subject, status=status.value, license=license.value), now)
    return user


def _profile(wanted: ProvisionedUser) -> dict[str, Any]:
    return {
        "first_name": wanted.first_name.strip(),
        "last_name": wanted.last_name.strip(),
        "alternative_emails": list(wanted.alternative_emails),
    }


def _identity(user: User, wanted: ProvisionedUser) -> ScimIdentity:
    return ScimIdentity(
        user.id,
        wanted.user_name,
        wanted.external_id,
        license_managed=wanted.license is not None,
        email_labels=dict(wanted.email_labels),
    )


def replace_user(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user_id: str, wanted: ProvisionedUser, now: dt.datetime
) -> User:
    """PUT and PATCH: the provider's whole new picture of the user, applied as UpdateUser (profile,
    email, manager, license: each with its gRPC rules), then the status change, in one transaction."""
    ensure_can_manage_users(actor, "provision users")
    user = live_user(uow, user_id, lock=True)
    _check(uow, wanted, user.id)
    changes: dict[str, Any] = {name: value for name, value in _profile(wanted).items() if value != getattr(user, name)}
    if normalize_email(wanted.email) != normalize_email(user.email):
        changes["email"] = wanted.email.strip()
    if wanted.manager_id != user.manager_id:
        changes["manager_id"] = wanted.manager_id
    if wanted.license is not None and wanted.license is not user.license:
        changes["license"] = wanted.license
    if changes:
        user = profiles.update_user(uow, config, actor, user.id, "", changes, now)
    identity = _identity(user, wanted)
    if identity != uow.scim.identity(user):
        uow.scim.save(identity)
        if not changes:  # meta.version and lastModified follow every change the provider sees
            user.update_time = now
            uow.users.save(user)
    if wanted.active is not None and wanted.active != policy_of(user.status).enabled:
        user = activate(uow, config, actor, user, now) if wanted.active else deprovision(uow, config, actor, user, now)
    return user


def activate(uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user: User, now: dt.datetime) -> User:
    """ActivateUser: DISABLED -> ACTIVE (taking a seat); CREATED_DISABLED -> CREATED (invited)."""
    return apply_action(uow, config, SeatLedger(uow, config.licenses), user, Action.ACTIVATE, now, actor.subject)


def deprovision(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user: User, now: dt.datetime, *, delete: bool = False
) -> User:
    """DisableUser or DeleteUser for someone the identity provider let go: what they own goes to
    their heir (domain/provisioning.py) or is released, with history and events, and the user
    managers get an email saying what moved where. Global admins are refused before anything moves."""
    action = Action.DELETE if delete else Action.DISABLE
    next_status(user, action)
    owned = holdings(uow, user.id)
    plan = heir = None
    if any(vars(owned).values()):
        manager = uow.users.get(user.manager_id) if user.manager_id else None
        configured = uow.users.get_live_by_email(config.scim.deprovision_heir) if config.scim.deprovision_heir else None
        heir = choose_heir(user, manager, configured, config.employee_hierarchy)
        if heir is not None:
            plan = heir_plan(user, heir, config.employee_hierarchy)
            reassign(uow, config, actor, user.id, plan, dry_run=False, now=now)
        release_everything(uow, user, actor.subject, now)
        for manager_email in uow.users.user_manager_emails():
            uow.outbox.add(
                deprovisioned_email(manager_email, user, "deleted" if delete else "deactivated", owned, plan, heir), now
            )
    user = live_user(uow, user.id, lock=True)
    user = apply_action(uow, config, SeatLedger(uow, config.licenses), user, action, now, actor.subject)
    if delete:
        uow.scim.forget(user.id)
    return user


def delete_user(uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user_id: str, now: dt.datetime) -> None:
    ensure_can_manage_users(actor, "deprovision users")
    deprovision(uow, config, actor, live_user(uow, user_id, lock=True), now, delete=True)


def replace_members(uow: UsersUnitOfWork, actor: Actor, team_id: str, member_ids: list[str]) -> bool:
    """A group's members are the team's: members added as MEMBER, missing ones removed (a team
    admin stays an admin while listed). True when anything changed."""
    ensure_can_manage_users(actor, "provision teams")
    wanted = list(dict.fromkeys(member_ids))
    live = uow.users.statuses(wanted)
    unknown = [m for m in wanted if (status := live.get(m)) is None or not policy_of(status).is_listed]
    if unknown:
        raise InvalidArgument("MEMBER_NOT_FOUND", f"members {', '.join(unknown[:5])} are not Steward users")
    current = set(uow.teams.member_ids(team_id))
    for user_id in wanted:
        if user_id not in current:
            uow.teams.set_member(team_id, user_id, TeamRole.MEMBER)
    gone = current - set(wanted)
    for user_id in gone:
        uow.teams.remove_member(team_id, user_id)
    return bool(gone) or any(m not in current for m in wanted)


def create_group(
    uow: UsersUnitOfWork, actor: Actor, name: str, external_id: str | None, member_ids: list[str], now: dt.datetime
) -> Team:
    team = teams.create_team(uow, actor, name, None, now)
    replace_members(uow, actor, team.id, member_ids)
    uow.scim.set_group_external_id(team.id, external_id)
    return team


def replace_group(
    uow: UsersUnitOfWork,
    actor: Actor,
    team_id: str,
    name: str,
    external_id: str | None,
    member_ids: list[str],
    now: dt.datetime,
) -> Team:
    """UpdateTeam and the member calls; the team's version moves with its members, so that a
    group's meta.version changes whenever the group does."""
    team = teams.update_team(uow, actor, team_id, "", name, None, False, now)
    replace_members(uow, actor, team.id, member_ids)
    uow.scim.set_group_external_id(team.id, external_id)
    team.update_time = now
    uow.teams.save(team)
    return team


def delete_group(uow: UsersUnitOfWork, actor: Actor, team_id: str) -> None:
    teams.delete_team(uow, actor, team_id, "")  # DeleteTeam; SCIM's If-Match is checked before
