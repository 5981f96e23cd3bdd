"""Who may do what to whom. The whole permission matrix of the users service is here.

    global admin          everything
    user management       every user and team operation, except granting or revoking global admin
    team admin            invite into, and manage the members of, the teams they administer
    any active user       read the directory; edit their own name, signature and attributes
    service accounts      what their token's scopes say: users.read, users.upsert, users.manage
                          (the `admin` role counts as global admin, for operators' tokens)

Users are identified by their token's `sub` (their id); what they may do comes from the
directory, never from the token, so revoking a permission takes effect at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.runtime.errors import PermissionDenied
from services.users.domain.model import User, UserStatus
from services.users.domain.teams import TeamRole

SELF_EDITABLE = frozenset({"first_name", "last_name", "signature", "custom_attributes"})
SCOPE_READ = "users.read"
SCOPE_UPSERT = "users.upsert"
SCOPE_MANAGE = "users.manage"


@dataclass(frozen=True)
class Actor:
    subject: str
    user_id: str | None = None
    global_admin: bool = False
    user_management: bool = False
    admin_of_teams: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()

    @classmethod
    def for_user(cls, user: User) -> Actor:
        if user.status is not UserStatus.ACTIVE:
            raise PermissionDenied(
                "ACTOR_NOT_ACTIVE", f"the calling user is {user.status.value}", metadata={"user": f"users/{user.id}"}
            )
        return cls(
            subject=user.id,
            user_id=user.id,
            global_admin=user.global_admin,
            user_management=user.user_management,
            admin_of_teams=frozenset(m.team_id for m in user.memberships if m.role is TeamRole.ADMIN),
        )

    @classmethod
    def for_service(cls, subject: str, scopes: Iterable[str], roles: Iterable[str]) -> Actor:
        return cls(subject=subject, global_admin="admin" in set(roles), scopes=frozenset(scopes))

    @property
    def manages_users(self) -> bool:
        return self.global_admin or self.user_management or SCOPE_MANAGE in self.scopes

    def is_self(self, user_id: str) -> bool:
        return self.user_id is not None and self.user_id == user_id


def _deny(actor: Actor, what: str, **metadata: str) -> PermissionDenied:
    return PermissionDenied(
        "PERMISSION_DENIED", f"{actor.subject} may not {what}", metadata={"actor": actor.subject, **metadata}
    )


def ensure_can_read(actor: Actor) -> None:
    if actor.user_id is None and not (
        actor.manages_users or SCOPE_READ in actor.scopes or SCOPE_UPSERT in actor.scopes
    ):
        raise _deny(actor, "read the directory", scope=SCOPE_READ)


def ensure_can_manage_users(actor: Actor, what: str = "manage users") -> None:
    if not actor.manages_users:
        raise _deny(actor, what)


def ensure_can_update(actor: Actor, target: User, paths: Iterable[str]) -> None:
    paths = set(paths)
    if "global_admin" in paths and not actor.global_admin:
        raise _deny(actor, "grant or revoke global admin", user=f"users/{target.id}")
    if actor.manages_users:
        return
    if actor.is_self(target.id) and paths <= SELF_EDITABLE:
        return
    raise _deny(actor, f"update {', '.join(sorted(paths))} of this user", user=f"users/{target.id}")


def ensure_can_invite(actor: Actor, global_admin: bool, team_ids: Iterable[str]) -> None:
    teams = set(team_ids)
    if global_admin and not actor.global_admin:
        raise _deny(actor, "invite global admins")
    if actor.manages_users:
        return
    if teams and teams <= actor.admin_of_teams:
        return
    raise _deny(actor, "invite users" + (" into teams they do not administer" if teams else " without a team"))


def ensure_can_manage_members(actor: Actor, team_id: str) -> None:
    if actor.manages_users or team_id in actor.admin_of_teams:
        return
    raise _deny(actor, "manage the members of this team", team=f"teams/{team_id}")


def ensure_can_upsert(actor: Actor) -> None:
    if actor.manages_users or SCOPE_UPSERT in actor.scopes:
        return
    raise _deny(actor, "upsert users", scope=SCOPE_UPSERT)
