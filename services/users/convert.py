"""Protobuf <-> domain for the users service: enums, users, teams, outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.names import format_name, parse_name
from services.runtime.protobuf import enum_maps, timestamp
from services.users.domain import assignments as assign
from services.users.domain import work
from services.users.domain.model import License, User, UserStatus
from services.users.domain.status_policy import POLICY
from services.users.domain.teams import Membership, Team, TeamRole
from steward.users.v1 import assignments_pb2, users_pb2, work_pb2

# Message constructors take enum value names; numbers come back from requests.
STATUS_NAME, STATUS_FROM_PROTO = enum_maps(UserStatus, "USER_STATUS_", users_pb2.UserStatus)
LICENSE_NAME, LICENSE_FROM_PROTO = enum_maps(License, "LICENSE_", users_pb2.License)
ROLE_NAME, ROLE_FROM_PROTO = enum_maps(TeamRole, "TEAM_ROLE_", users_pb2.TeamRole)
# Built once: a page of ListUsers carries one per user.
STATUS_POLICY = {
    status: users_pb2.StatusPolicy(
        holds_seat=p.holds_seat, listed=p.is_listed, may_log_in=p.may_log_in, enabled=p.enabled
    )
    for status, p in POLICY.items()
}


def user_to_proto(user: User, invitation_expiry: dt.datetime | None = None) -> users_pb2.User:
    return users_pb2.User(
        name=format_name("users", user.id),
        uid=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        status=STATUS_NAME[user.status],
        license=LICENSE_NAME[user.license],
        global_admin=user.global_admin,
        user_management=user.user_management,
        manager=format_name("users", user.manager_id) if user.manager_id else "",
        alternative_emails=user.alternative_emails,
        custom_attributes=user.custom_attributes,
        signature=user.signature,
        team_memberships=[
            users_pb2.TeamMembership(team=format_name("teams", m.team_id), role=ROLE_NAME[m.role])
            for m in user.memberships
        ],
        create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time),
        last_activity_time=timestamp(user.last_activity_time),
        invitation_expire_time=timestamp(invitation_expiry if user.status is UserStatus.CREATED else None),
        etag=user.etag,
        status_policy=STATUS_POLICY[user.status],
    )


def users_to_proto(users: Iterable[User], expiries: dict[str, dt.datetime]) -> list[users_pb2.User]:
    return [user_to_proto(u, expiries.get(u.id)) for u in users]


def team_to_proto(team: Team) -> users_pb2.Team:
    return users_pb2.Team(
        name=format_name("teams", team.id),
        uid=team.id,
        display_name=team.display_name,
        manager=format_name("users", team.manager_id) if team.manager_id else "",
        member_count=team.member_count,
        create_time=timestamp(team.create_time),
        update_time=timestamp(team.update_time),
        etag=team.etag,
    )


def _bad(field: str, description: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        reason, f"{field} {description}", field_violations=[FieldViolation(field, description, reason)]
    )


def license_from_proto(value: int, field: str = "license", required: bool = True) -> License | None:
    if value == 0 and not required:
        return None
    if value not in LICENSE_FROM_PROTO:
        raise _bad(
            field,
            "must be PRACTITIONER, CONTRIBUTOR or VIEWER",
            "LICENSE_REQUIRED" if value == 0 else "ENUM_VALUE_INVALID",
        )
    return LICENSE_FROM_PROTO[value]


def role_from_proto(value: int, field: str) -> TeamRole:
    if value == 0:
        return TeamRole.MEMBER  # the usual case needs no saying
    if value not in ROLE_FROM_PROTO:
        raise _bad(field, f"has no value {value}", "ENUM_VALUE_INVALID")
    return ROLE_FROM_PROTO[value]


def memberships_from_proto(items: Iterable[users_pb2.TeamMembership], field: str) -> list[Membership]:
    out = []
    for j, item in enumerate(items):
        team_id = parse_name("teams", item.team, f"{field}[{j}].team")
        out.append(Membership(team_id, role_from_proto(item.role, f"{field}[{j}].role")))
    if len({m.team_id for m in out}) != len(out):
        raise _bad(field, "names a team more than once", "TEAM_REPEATED")
    return out


def optional_user_name(name: str, field: str) -> str | None:
    return parse_name("users", name, field) if name else None


# --- account assignment, tasks, resources -------------------------------------------------------
ROLE_SOURCE_NAME, ROLE_SOURCE_FROM_PROTO = enum_maps(assign.RoleSource, "ROLE_SOURCE_", assignments_pb2.RoleSource)
EMPTY_NAME, EMPTY_FROM_PROTO = enum_maps(assign.EmptyValue, "EMPTY_VALUE_", assignments_pb2.EmptyValue)
SOURCE_NAME, SOURCE_FROM_PROTO = enum_maps(assign.Source, "ASSIGNMENT_SOURCE_", assignments_pb2.AssignmentSource)
TASK_STATUS_NAME, TASK_STATUS_FROM_PROTO = enum_maps(work.TaskStatus, "TASK_STATUS_", work_pb2.TaskStatus)
KIND_NAME, KIND_FROM_PROTO = enum_maps(work.ResourceKind, "RESOURCE_KIND_", work_pb2.ResourceKind)
VISIBILITY_NAME, VISIBILITY_FROM_PROTO = enum_maps(work.Visibility, "VISIBILITY_", work_pb2.Visibility)
CAMPAIGN_NAME, CAMPAIGN_FROM_PROTO = enum_maps(work.CampaignStatus, "CAMPAIGN_STATUS_", work_pb2.CampaignStatus)


def required_enum(value: int, from_proto: dict[int, Any], field: str) -> Any:
    if value not in from_proto:
        raise _bad(
            field,
            "is required" if value == 0 else f"has no value {value}",
            "REQUIRED" if value == 0 else "ENUM_VALUE_INVALID",
        )
    return from_proto[value]


def role_to_proto(role: assign.Role) -> assignments_pb2.Role:
    return assignments_pb2.Role(
        name=f"roles/{role.key}",
        key=role.key,
        display_name=role.display_name,
        description=role.description,
        source=ROLE_SOURCE_NAME[role.source],
        empty_value=EMPTY_NAME[role.empty_value],
        attribute=role.attribute,
        builtin=role.builtin,
        assignment_count=role.assignment_count,
        create_time=timestamp(role.create_time),
        update_time=timestamp(role.update_time),
        etag=role.etag,
    )


def role_key(name: str, field: str = "role") -> str:
    key = name.removeprefix("roles/")
    if not key:
        raise _bad(field, "must name a role, e.g. roles/success_manager", "REQUIRED")
    return key


def assignment_to_proto(a: assign.Assignment) -> assignments_pb2.Assignment:
    return assignments_pb2.Assignment(
        account_id=a.account_id,
        role=f"roles/{a.role_key}",
        user=format_name("users", a.user_id),
        source=SOURCE_NAME[a.source],
        source_ref=a.source_ref,
        update_time=timestamp(a.update_time),
    )


def change_to_proto(c: assign.AssignmentChange) -> assignments_pb2.AssignmentChange:
    return assignments_pb2.AssignmentChange(
        account_id=c.account_id,
        role=f"roles/{c.role_key}",
        user=format_name("users", c.user_id) if c.user_id else "",
        previous_user=format_name("users", c.previous_user_id) if c.previous_user_id else "",
        source=SOURCE_NAME[c.source],
        source_ref=c.source_ref,
        actor=c.actor,
        change_time=timestamp(c.change_time),
    )


def task_to_proto(t: work.Task) -> work_pb2.Task:
    return work_pb2.Task(
        name=f"tasks/{t.id}",
        uid=t.id,
        account_id=t.account_id,
        title=t.title,
        assignee=format_name("users", t.assignee_id) if t.assignee_id else "",
        status=TASK_STATUS_NAME[t.status],
        created_by=t.created_by,
        due_time=timestamp(t.due_time),
        create_time=timestamp(t.create_time),
        complete_time=timestamp(t.complete_time),
    )


def resource_to_proto(r: work.Resource) -> work_pb2.Resource:
    return work_pb2.Resource(
        name=r.name,
        kind=KIND_NAME[r.kind],
        id=r.id,
        display_name=r.display_name,
        owner=format_name("users", r.owner_id),
        visibility=VISIBILITY_NAME[r.visibility],
        campaign_status=CAMPAIGN_NAME[r.campaign_status] if r.campaign_status else None,
        senders=[format_name("users", s) for s in r.senders],
        bcc=[format_name("users", b) for b in r.bcc],
        update_time=timestamp(r.update_time),
    )
