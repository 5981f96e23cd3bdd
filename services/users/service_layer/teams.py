"""Teams and their members."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.exc import IntegrityError

from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from services.runtime.etag import check_etag
from services.users.domain.model import user_not_found
from services.users.domain.permissions import Actor, ensure_can_manage_members, ensure_can_manage_users
from services.users.domain.status_policy import policy_of
from services.users.domain.teams import Team, TeamRole, clean_team_name, team_not_found
from services.users.unit_of_work import UsersUnitOfWork


def _name_taken(name: str) -> AlreadyExists:
    return AlreadyExists("TEAM_NAME_TAKEN", f"a team named {name!r} already exists", metadata={"display_name": name})


def _live_user(uow: UsersUnitOfWork, user_id: str) -> None:
    user = uow.users.get(user_id)
    if user is None or not policy_of(user.status).is_listed:
        raise user_not_found(user_id)


def get_team(uow: UsersUnitOfWork, team_id: str) -> Team:
    team = uow.teams.get(team_id)
    if team is None:
        raise team_not_found(team_id)
    return team


def create_team(
    uow: UsersUnitOfWork, actor: Actor, display_name: str, manager_id: str | None, now: dt.datetime
) -> Team:
    ensure_can_manage_users(actor, "create teams")
    name = clean_team_name(display_name)
    if uow.teams.name_taken(name):
        raise _name_taken(name)
    if manager_id:
        _live_user(uow, manager_id)
    team = Team(id=str(uuid.uuid4()), display_name=name, manager_id=manager_id, create_time=now, update_time=now)
    try:
        uow.teams.add(team)
    except IntegrityError as exc:  # created concurrently under the same name
        raise _name_taken(name) from exc
    return team


def update_team(
    uow: UsersUnitOfWork,
    actor: Actor,
    team_id: str,
    etag: str,
    display_name: str | None,
    manager_id: str | None,
    set_manager: bool,
    now: dt.datetime,
) -> Team:
    ensure_can_manage_users(actor, "rename teams or change their manager")
    team = get_team(uow, team_id)
    check_etag(etag, team.etag)
    if display_name is not None:
        name = clean_team_name(display_name)
        if uow.teams.name_taken(name, except_id=team.id):
            raise _name_taken(name)
        team.display_name = name
    if set_manager:
        if manager_id:
            _live_user(uow, manager_id)
        team.manager_id = manager_id
    team.update_time = now
    uow.teams.save(team)
    return team


def delete_team(uow: UsersUnitOfWork, actor: Actor, team_id: str, etag: str) -> None:
    """The team and its memberships go; its members stay users (with their other teams)."""
    ensure_can_manage_users(actor, "delete teams")
    team = get_team(uow, team_id)
    check_etag(etag, team.etag)
    uow.teams.delete(team_id)


def add_member(uow: UsersUnitOfWork, actor: Actor, team_id: str, user_id: str, role: TeamRole) -> None:
    get_team(uow, team_id)
    ensure_can_manage_members(actor, team_id)
    if role is TeamRole.ADMIN and not actor.manages_users:
        raise FailedPrecondition("TEAM_ADMIN_NEEDS_USER_MANAGER", "only user managers appoint team admins")
    _live_user(uow, user_id)
    uow.teams.set_member(team_id, user_id, role)


def remove_member(uow: UsersUnitOfWork, actor: Actor, team_id: str, user_id: str) -> None:
    get_team(uow, team_id)
    ensure_can_manage_members(actor, team_id)
    if not uow.teams.remove_member(team_id, user_id):
        raise NotFound(
            "MEMBER_NOT_FOUND",
            "the user is not a member of this team",
            metadata={"team": f"teams/{team_id}", "user": f"users/{user_id}"},
        )
