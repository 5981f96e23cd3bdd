"""Account assignment: roles, who may hold them, and through which kind of write.

Eligibility, by the source of the write, for a user whose status may hold a role written by that
source (status_policy.POLICY says which):

    MANUAL, BULK   practitioner or contributor; never INTEGRATION_ONLY roles
    INTEGRATION    practitioner, contributor or viewer
    PLAY           practitioner, contributor or viewer in the play's origin team
    REASSIGNMENT   anyone (the reassignment checks the rest)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import FailedPrecondition, NotFound, Violations
from services.runtime.etag import make_etag
from services.users.domain.model import License, User
from services.users.domain.sources import Source
from services.users.domain.status_policy import policy_of, statuses_where

_KEY = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
ATTRIBUTE_SUFFIX = "___tid"
MAX_KEY = 60
BUILTIN_ROLES = {"success_manager": "Success Manager", "sales_manager": "Sales Manager"}


class RoleSource(StrEnum):
    EDITABLE = "EDITABLE"
    INTEGRATION_ONLY = "INTEGRATION_ONLY"


class EmptyValue(StrEnum):
    KEEP_EXISTING = "KEEP_EXISTING"
    CLEAR = "CLEAR"


@dataclass
class Role:
    key: str
    display_name: str
    description: str
    source: RoleSource
    empty_value: EmptyValue
    builtin: bool
    create_time: dt.datetime
    update_time: dt.datetime
    assignment_count: int = 0
    version: int = 1

    @property
    def attribute(self) -> str:
        return f"{self.key}{ATTRIBUTE_SUFFIX}"

    @property
    def etag(self) -> str:
        return make_etag(self.key, self.version)


def check_role_key(key: str, field: str = "role.key") -> None:
    problems = Violations()
    if not _KEY.match(key) or len(key) > MAX_KEY:
        problems.add(
            field,
            f"lower-case letters, digits and single underscores, starting with a letter, at most {MAX_KEY} characters",
            "ROLE_KEY_INVALID",
        )
    problems.raise_if_any()


def role_not_found(key: str) -> NotFound:
    return NotFound("ROLE_NOT_FOUND", f"no role roles/{key}", metadata={"role": f"roles/{key}"})


@dataclass(frozen=True)
class WriteSource:
    source: Source
    source_ref: str = ""
    play_team_id: str | None = None


@dataclass(frozen=True)
class Assignment:
    account_id: str
    role_key: str
    user_id: str
    source: Source
    source_ref: str
    update_time: dt.datetime


@dataclass(frozen=True)
class AssignmentChange:
    account_id: str
    role_key: str
    user_id: str | None
    previous_user_id: str | None
    source: Source
    source_ref: str
    actor: str
    change_time: dt.datetime


@dataclass(frozen=True)
class ClearSkip:
    """Why a conditional clear leaves a slot as it is."""

    reason: str
    description: str


NOT_ASSIGNED = "NOT_ASSIGNED"
CHANGED_SINCE = "CHANGED_SINCE"


def clear_skipped(holder: Assignment | None, expected_user_id: str | None, own: WriteSource | None) -> ClearSkip | None:
    """A conditional clear takes the slot only from the holder the caller expects (any holder when
    `expected_user_id` is None) and, given `own`, only if that writer's source and source_ref wrote
    the holder: what another writer changed since is not the caller's to clear. None: clear it."""
    if holder is None:
        return ClearSkip(NOT_ASSIGNED, "nobody holds the role")
    if expected_user_id is not None and holder.user_id != expected_user_id:
        return ClearSkip(CHANGED_SINCE, f"users/{holder.user_id} holds the role now, not users/{expected_user_id}")
    if own is not None and (holder.source, holder.source_ref) != (own.source, own.source_ref):
        return ClearSkip(
            CHANGED_SINCE,
            f"the holder was written by {holder.source.value} {holder.source_ref!r}, "
            f"not by {own.source.value} {own.source_ref!r}",
        )
    return None


def _refuse(reason: str, message: str, user: User, role: Role) -> FailedPrecondition:
    return FailedPrecondition(reason, message, metadata={"user": f"users/{user.id}", "role": f"roles/{role.key}"})


def ensure_eligible(user: User, role: Role, write: WriteSource) -> None:
    """May `user` hold `role` through a write of this source? FAILED_PRECONDITION with a reason if not."""
    source = write.source
    if source in (Source.MANUAL, Source.BULK) and role.source is RoleSource.INTEGRATION_ONLY:
        raise _refuse(
            "ROLE_INTEGRATION_ONLY", f"{role.display_name} is written only by integrations and plays", user, role
        )
    policy = policy_of(user.status)
    if not policy.may_hold_role(source):
        if not policy.role_sources:
            raise _refuse("USER_NOT_ELIGIBLE", f"a {user.status.value} user cannot hold an account role", user, role)
        needed = " or ".join(sorted(s.value for s in statuses_where(lambda p: p.may_hold_role(source))))
        raise _refuse(
            "USER_NOT_ACTIVE",
            f"{source.value} writes need an {needed} user; this one is {user.status.value}",
            user,
            role,
        )
    if source in (Source.MANUAL, Source.BULK) and user.license is License.VIEWER:
        raise _refuse("LICENSE_NOT_ELIGIBLE", "viewers are assigned only by integrations and plays", user, role)
    if source is Source.PLAY and (write.play_team_id is None or write.play_team_id not in user.team_ids):
        raise _refuse("NOT_IN_PLAY_TEAM", "a play assigns only members of the team it comes from", user, role)


def ambiguous_name(full_name: str, candidates: list[User]) -> FailedPrecondition:
    names = ", ".join(f"users/{u.id} <{u.email}>" for u in candidates)
    return FailedPrecondition(
        "USER_AMBIGUOUS",
        f"{len(candidates)} users are named {full_name!r}: {names}; name the user by id or email",
        metadata={"candidates": names},
    )
