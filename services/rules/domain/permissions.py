"""Who may do what in the rules service.

    read plays, runs and events    any authenticated caller
    create, change, delete plays   service accounts with scope plays.write; operators (role admin);
                                   users who are global admins or user managers and
                                   may log in (the users service's status policy says)
    publish account events         service accounts with scope events.publish; operators
    run a manual play (RunPlay)    users of the directory (the button's clicker); service accounts
                                   with scope plays.run; operators

A user's rights come from the users service's directory, never from the token, so revoking
one takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.runtime.errors import PermissionDenied

SCOPE_PLAYS_WRITE = "plays.write"
SCOPE_PUBLISH = "events.publish"
SCOPE_RUN = "plays.run"


@dataclass(frozen=True)
class Caller:
    subject: str
    user_id: str | None  # set when the subject is a user of the directory
    scopes: frozenset[str]
    operator: bool  # the token's "admin" role


def _deny(caller: Caller, what: str, scope: str) -> PermissionDenied:
    return PermissionDenied(
        "PERMISSION_DENIED", f"{caller.subject} may not {what}", metadata={"actor": caller.subject, "scope": scope}
    )


def author_by_token(caller: Caller) -> bool:
    return caller.operator or SCOPE_PLAYS_WRITE in caller.scopes


def ensure_can_author(caller: Caller, directory_says_admin: bool) -> None:
    if not (author_by_token(caller) or directory_says_admin):
        raise _deny(caller, "create, change or delete plays", SCOPE_PLAYS_WRITE)


def ensure_can_publish(caller: Caller) -> None:
    if not (caller.operator or SCOPE_PUBLISH in caller.scopes):
        raise _deny(caller, "publish account events", SCOPE_PUBLISH)


def ensure_can_run_manually(caller: Caller) -> None:
    if not (caller.operator or caller.user_id is not None or SCOPE_RUN in caller.scopes):
        raise _deny(caller, "run manual plays", SCOPE_RUN)
