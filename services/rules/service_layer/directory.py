"""Checks a play's references (roles, users, teams, owner) against the users service.

What a user's status allows is the users service's to say (User.status_policy): a user it does
not list is unknown here, one who may not log in is no admin. An older users service that does
not send the policy reads as "neither", which refuses rather than lets through.
"""

from __future__ import annotations

from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain import actions as play_actions
from services.rules.domain import criteria as play_criteria
from services.rules.domain.events import ROLE_SUFFIX
from services.rules.domain.model import Play
from services.rules.domain.permissions import Caller
from services.runtime.auth import Principal
from services.runtime.errors import FailedPrecondition, Unavailable, Violations
from steward.users.v1 import users_pb2


def users_unreachable(error: UsersCallError) -> Exception:
    if error.transient:
        return Unavailable("USERS_UNAVAILABLE", f"the users service cannot be reached: {error.message}")
    return FailedPrecondition(
        "USERS_REFUSED", f"the users service refused: {error.message}", metadata={"reason": error.reason}
    )


def caller_of(principal: Principal) -> Caller:
    user_id = principal.user_id
    return Caller(principal.subject, user_id, principal.scopes, user_id is None and principal.is_admin)


def is_directory_admin(directory: UsersClient, caller: Caller) -> bool:
    if caller.user_id is None:
        return False
    try:
        user = directory.user(f"users/{caller.user_id}")
    except UsersCallError as error:
        raise users_unreachable(error) from error
    if user is None or not user.status_policy.may_log_in:
        return False
    return user.global_admin or user.user_management


def check_references(directory: UsersClient, play: Play, problems: Violations, path: str = "play") -> None:
    """Adds a problem for every role, user or team the play names that does not exist."""
    scratch = Violations()
    parsed = play_actions.parse_actions(play.actions, f"{path}.actions", scratch)
    refs = play_actions.references(parsed, f"{path}.actions")
    if play.trigger.criteria is not None:
        criterion = play_criteria.parse(play.trigger.criteria, "criteria", scratch)
        for field in sorted(play_criteria.fields_of(criterion) if criterion else ()):
            if field.endswith(ROLE_SUFFIX):
                key = field.removesuffix(ROLE_SUFFIX)
                refs.append(play_actions.Reference(f"{path}.trigger.criteria", "role", f"roles/{key}"))
    try:
        _check(directory, play, refs, problems, path)
    except UsersCallError as error:
        raise users_unreachable(error) from error


def _check(
    directory: UsersClient, play: Play, refs: list[play_actions.Reference], problems: Violations, path: str
) -> None:
    if any(r.kind == "role" for r in refs):
        roles = directory.role_names()
        for ref in refs:
            if ref.kind == "role" and ref.value not in roles:
                problems.add(ref.path, f"no account role {ref.value}", "ROLE_UNKNOWN")
    emails = [r.value for r in refs if r.kind == "user" and "@" in r.value]
    known = directory.users_by_email(emails) if emails else {}
    for ref in refs:
        if ref.kind == "user" and "@" in ref.value and ref.value.lower() not in known:
            problems.add(ref.path, f"no user with email {ref.value}", "USER_UNKNOWN")
        elif ref.kind == "user" and "@" not in ref.value:
            user = directory.user(ref.value)
            if not _listed(user):
                problems.add(ref.path, f"no user {ref.value}", "USER_UNKNOWN")
        elif ref.kind == "team" and not directory.team_exists(ref.value):
            problems.add(ref.path, f"no team {ref.value}", "TEAM_UNKNOWN")
    if play.origin_team.startswith("teams/") and not directory.team_exists(play.origin_team):
        problems.add(f"{path}.origin_team", f"no team {play.origin_team}", "TEAM_UNKNOWN")
    if not play.owner_id:
        problems.add(f"{path}.owner", "users/{uid}; defaults to the caller only when a user calls", "OWNER_REQUIRED")
        return
    owner = directory.user(f"users/{play.owner_id}")
    if not _listed(owner):
        problems.add(f"{path}.owner", f"no user users/{play.owner_id}", "OWNER_UNKNOWN")


def _listed(user: users_pb2.User | None) -> bool:
    return user is not None and user.status_policy.listed
