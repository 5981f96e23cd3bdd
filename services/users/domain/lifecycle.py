"""The user lifecycle: which status an action leads to. What a user of each status may do
otherwise (hold a seat or a role, be listed, sign in) is status_policy.py's table.

    CREATED           invited, not accepted yet. May: accept, be sent (another) invitation,
                      have the invitation cancelled (-> DELETED), be deleted.
                      May not: be activated or disabled (there is nothing to switch yet).
    ACTIVE            accepted and set up. May: be disabled, be deleted.
    DISABLED          access removed, profile kept. May: be activated again, be deleted.
    CREATED_DISABLED  created disabled by an integration or bulk import. May: be sent an
                      invitation or be activated (both -> CREATED: they still have to
                      accept), be deleted.
    DELETED           access and profile removed; the row stays so that history resolves.
                      Terminal: nothing is allowed.

Every pair missing from TRANSITIONS is refused with FAILED_PRECONDITION.
Global admins may be neither disabled nor deleted: revoke global admin first.
"""

from __future__ import annotations

from enum import StrEnum

from services.runtime.errors import FailedPrecondition, PreconditionViolation
from services.users.domain.model import User, UserStatus
from services.users.domain.status_policy import policy_of

S = UserStatus


class Action(StrEnum):
    ACCEPT_INVITATION = "ACCEPT_INVITATION"
    SEND_INVITATION = "SEND_INVITATION"
    CANCEL_INVITATION = "CANCEL_INVITATION"
    ACTIVATE = "ACTIVATE"
    DISABLE = "DISABLE"
    DELETE = "DELETE"


TRANSITIONS: dict[tuple[UserStatus, Action], UserStatus] = {
    (S.CREATED, Action.ACCEPT_INVITATION): S.ACTIVE,
    (S.CREATED, Action.SEND_INVITATION): S.CREATED,
    (S.CREATED, Action.CANCEL_INVITATION): S.DELETED,
    (S.CREATED, Action.DELETE): S.DELETED,
    (S.ACTIVE, Action.DISABLE): S.DISABLED,
    (S.ACTIVE, Action.DELETE): S.DELETED,
    (S.DISABLED, Action.ACTIVATE): S.ACTIVE,
    (S.DISABLED, Action.DELETE): S.DELETED,
    (S.CREATED_DISABLED, Action.SEND_INVITATION): S.CREATED,
    (S.CREATED_DISABLED, Action.ACTIVATE): S.CREATED,
    (S.CREATED_DISABLED, Action.DELETE): S.DELETED,
}

PROTECTED_FROM = frozenset({Action.DISABLE, Action.DELETE})


def next_status(user: User, action: Action) -> UserStatus:
    """The status `action` leads to, or FAILED_PRECONDITION naming why it is not allowed."""
    if user.global_admin and action in PROTECTED_FROM:
        raise FailedPrecondition(
            "GLOBAL_ADMIN_PROTECTED",
            f"global admins cannot be {'disabled' if action is Action.DISABLE else 'deleted'}; "
            "revoke global admin first",
            metadata={"user": f"users/{user.id}"},
        )
    target = TRANSITIONS.get((user.status, action))
    if target is None:
        allowed = sorted(a.value for (status, a) in TRANSITIONS if status is user.status)
        raise FailedPrecondition(
            "TRANSITION_NOT_ALLOWED",
            f"a {user.status.value} user cannot {action.value.lower().replace('_', ' ')}"
            + (f"; allowed: {', '.join(allowed)}" if allowed else "; no action is allowed"),
            metadata={"user": f"users/{user.id}", "status": user.status.value, "action": action.value},
            precondition_violations=[
                PreconditionViolation("USER_STATUS", f"users/{user.id}", f"status is {user.status.value}")
            ],
        )
    return target


def gains_seat(before: UserStatus, after: UserStatus) -> bool:
    return not policy_of(before).holds_seat and policy_of(after).holds_seat
