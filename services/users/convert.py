"""Protobuf <-> domain for the users service: enums, users, teams, outcomes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.names import format_name, parse_name
from services.runtime.protobuf import timestamp
from services.users.domain.model import License, User, UserStatus
from services.users.domain.teams import Membership, Team, TeamRole
from steward.users.v1 import users_pb2

# Message constructors take enum value names, which keeps these maps readable and typed.
STATUS_NAME = {s: f"USER_STATUS_{s.value}" for s in UserStatus}
LICENSE_NAME = {lic: f"LICENSE_{lic.value}" for lic in License}
ROLE_NAME = {r: f"TEAM_ROLE_{r.value}" for r in TeamRole}
LICENSE_FROM_PROTO = {users_pb2.License.Value(v): k for k, v in LICENSE_NAME.items()}
STATUS_FROM_PROTO = {users_pb2.UserStatus.Value(v): k for k, v in STATUS_NAME.items()}
ROLE_FROM_PROTO = {users_pb2.TeamRole.Value(v): k for k, v in ROLE_NAME.items()}


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
