"""What each user status allows: the one table every check reads (seats, account roles, listings
and lookups, signing in, handed work, SCIM's `active`). Other services ask the users service
(User.status_policy, BatchSetAssignments with validate_only) instead of keeping a copy.

    status            seat  listed  log in  enabled  may hold a role written by
    CREATED           yes   yes     no      yes      INTEGRATION, REASSIGNMENT
    ACTIVE            yes   yes     yes     yes      every source
    DISABLED          no    yes     no      no       none
    CREATED_DISABLED  no    yes     no      no       none
    DELETED           no    no      no      no       none

A role also depends on the role, the license and the play's team (assignments.ensure_eligible),
and which status follows which on the lifecycle (lifecycle.TRANSITIONS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from services.users.domain.model import UserStatus
from services.users.domain.sources import Source


@dataclass(frozen=True)
class StatusPolicy:
    # Counts toward its license's seats (unless the email's domain is exempt).
    holds_seat: bool
    # In default listings, and found by email or full name. An unlisted user's row stays only so
    # that history resolves; its email is free for someone else.
    is_listed: bool
    # May sign in and call the API as themself (their tokens are refused otherwise).
    may_log_in: bool
    # Neither disabled nor deleted: may be handed work (tasks, resources, what a reassignment or
    # a deprovisioning moves). What SCIM calls `active`.
    enabled: bool
    # The writers through which the user may hold an account role.
    role_sources: frozenset[Source]

    def may_hold_role(self, source: Source) -> bool:
        return source in self.role_sources


_NO_ROLES: frozenset[Source] = frozenset()
_SYSTEM_WRITES = frozenset({Source.INTEGRATION, Source.REASSIGNMENT})
_ANY_WRITE = frozenset(Source)


def _every_status(table: dict[UserStatus, StatusPolicy]) -> Mapping[UserStatus, StatusPolicy]:
    # An error at import, not a KeyError in some request: a status added to UserStatus must be
    # given its policy here before the service can start.
    missing = [s.value for s in UserStatus if s not in table]
    if missing:
        raise RuntimeError(f"status_policy.POLICY has no entry for {', '.join(missing)}")
    return MappingProxyType(table)


POLICY: Mapping[UserStatus, StatusPolicy] = _every_status(
    {
        UserStatus.CREATED: StatusPolicy(
            holds_seat=True, is_listed=True, may_log_in=False, enabled=True, role_sources=_SYSTEM_WRITES
        ),
        UserStatus.ACTIVE: StatusPolicy(
            holds_seat=True, is_listed=True, may_log_in=True, enabled=True, role_sources=_ANY_WRITE
        ),
        UserStatus.DISABLED: StatusPolicy(
            holds_seat=False, is_listed=True, may_log_in=False, enabled=False, role_sources=_NO_ROLES
        ),
        UserStatus.CREATED_DISABLED: StatusPolicy(
            holds_seat=False, is_listed=True, may_log_in=False, enabled=False, role_sources=_NO_ROLES
        ),
        UserStatus.DELETED: StatusPolicy(
            holds_seat=False, is_listed=False, may_log_in=False, enabled=False, role_sources=_NO_ROLES
        ),
    }
)


def policy_of(status: UserStatus) -> StatusPolicy:
    return POLICY[status]


def statuses_where(test: Callable[[StatusPolicy], bool]) -> frozenset[UserStatus]:
    """The statuses whose policy passes `test`, e.g. for a SQL `IN` filter:
    statuses_where(lambda p: p.holds_seat)."""
    return frozenset(status for status, policy in POLICY.items() if test(policy))
