"""Who may do what to whom. The whole permission matrix of the users service is here.

    global admin          everything (and so: roles, assignments of any source, tasks, resources, events)
    user management       every user and team operation, except granting or revoking global admin
    team admin            invite into, and manage the members of, the teams they administer
    any active user       read the directory; edit their own name, signature and attributes
    practitioner,         set assignments from the account profile or a bulk edit (MANUAL, BULK),
      contributor         create tasks, complete their own, register and hand over their resources
    service accounts      what their token's scopes say: users.read, users.upsert (UpsertUsers,
                          adding the users to teams as members included), users.manage,
                          assignments.write (INTEGRATION, PLAY writes), tasks.write,
                          resources.write, events.read, users.scim (provisioning over SCIM
                          from an identity provider: user management, as users.manage)
                          (the `admin` role counts as global admin, for operators' tokens)

Users are identified by their token's `sub` (their id); what they may do comes from the
directory, never from the token, so revoking a permission takes effect at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.runtime.errors import PermissionDenied
from services.users.domain.model import License, User
from services.users.domain.status_policy import policy_of
from services.users.domain.teams import TeamRole

SELF_EDITABLE = frozenset({"first_name", "last_name", "signature", "custom_attributes"})
SCOPE_READ = "users.read"
SCOPE_UPSERT = "users.upsert"
SCOPE_MANAGE = "users.manage"
SCOPE_ASSIGN = "assignments.write"
SCOPE_TASKS = "tasks.write"
SCOPE_RESOURCES = "resources.write"
SCOPE_EVENTS = "events.read"
SCOPE_SCIM = "users.scim"


@dataclass(frozen=True)
class Actor:
    subject: str
    user_id: str | None = None
    global_admin: bool = False
    user_management: bool = False
    admin_of_teams: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    # Practitioners and contributors work on accounts; viewers only look.
    works_on_accounts: bool = False

    @classmethod
    def for_user(cls, user: User) -> Actor:
        if not policy_of(user.status).may_log_in:
            raise PermissionDenied(
                "ACTOR_NOT_ACTIVE", f"the calling user is {user.status.value}", metadata={"user": f"users/{user.id}"}
            )
        return cls(
            subject=user.id,
            user_id=user.id,
            global_admin=user.global_admin,
            user_management=user.user_management,
            admin_of_teams=frozenset(m.team_id for m in user.memberships if m.role is TeamRole.ADMIN),
            works_on_accounts=user.license is not License.VIEWER,
        )

    @classmethod
    def for_service(cls, subject: str, scopes: Iterable[str], roles: Iterable[str]) -> Actor:
        return cls(subject=subject, global_admin="admin" in set(roles), scopes=frozenset(scopes))

    @property
    def manages_users(self) -> bool:
        return self.global_admin or self.user_management or bool({SCOPE_MANAGE, SCOPE_SCIM} & self.scopes)

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
    """UpsertUsers: user managers, or a service account with users.upsert.

    That includes adding the upserted users to teams (UpsertUserRow.teams), as members only: putting
    a user in their teams when they are created or updated is part of provisioning them from an
    integration, just as creating them is. It can only add: the role is always MEMBER (which grants
    no permission here; only ADMIN does), existing memberships keep their role, none is removed,
    and nothing else users.manage allows (disable, delete, reassign, appoint team admins) comes
    with it. So an integration that provisions users into teams needs users.upsert, not
    users.manage (least privilege). Other ways to add members keep their own checks: AddTeamMember
    needs user management or admin of the team, BulkUserAction ADD_TO_TEAM user management.
    """
    if actor.manages_users or SCOPE_UPSERT in actor.scopes:
        return
    raise _deny(actor, "upsert users", scope=SCOPE_UPSERT)


def _has(actor: Actor, scope: str) -> bool:
    return actor.manages_users or scope in actor.scopes


def ensure_can_manage_roles(actor: Actor) -> None:
    if not actor.manages_users:
        raise _deny(actor, "create, change or delete account roles")


def ensure_can_assign(actor: Actor, source: str) -> None:
    """MANUAL/BULK: people who work on accounts; INTEGRATION/PLAY: integrations (and user managers)."""
    if source in ("MANUAL", "BULK") and (actor.works_on_accounts or actor.manages_users):
        return
    if source in ("INTEGRATION", "PLAY") and _has(actor, SCOPE_ASSIGN):
        return
    raise _deny(actor, f"write {source} assignments", scope=SCOPE_ASSIGN)


def ensure_can_create_tasks(actor: Actor) -> None:
    if not (actor.works_on_accounts or _has(actor, SCOPE_TASKS)):
        raise _deny(actor, "create tasks", scope=SCOPE_TASKS)


def ensure_can_complete(actor: Actor, assignee_id: str) -> None:
    if not (actor.is_self(assignee_id) or _has(actor, SCOPE_TASKS)):
        raise _deny(actor, "complete someone else's task")


def ensure_can_own_resource(actor: Actor, owner_id: str) -> None:
    """Register or hand over a resource: its owner, integrations (plays), or user managers."""
    if not ((actor.is_self(owner_id) and actor.works_on_accounts) or _has(actor, SCOPE_RESOURCES)):
        raise _deny(actor, "manage resources owned by someone else", scope=SCOPE_RESOURCES)


def ensure_can_watch_events(actor: Actor) -> None:
    if not _has(actor, SCOPE_EVENTS):
        raise _deny(actor, "watch the event stream", scope=SCOPE_EVENTS)
