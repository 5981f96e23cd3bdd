"""What the users service would refuse about source rows, asked before anything is written, and the
rows settled to one per account and role.

A run checks rows a chunk at a time before they compete for an account's role: a row naming
someone who is not a user (a CRM user without Steward, common in territories and teams) or who may
not hold a role must not displace a row naming someone who may. Lookups are cached for the run:
an org names few users, so a million rows cost a few ListUsers calls. The write still decides
(a user disabled in between is refused there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.sync.adapters.users_client import SyncUsersClient
from services.sync.domain.rows import CONFLICT, AccountRow, OneUserPerRole
from steward.users.v1 import users_pb2

# Who may hold a role written by an integration (the users service's rule, mirrored to count
# the rows it would refuse before anything is written).
INELIGIBLE = {users_pb2.USER_STATUS_DISABLED, users_pb2.USER_STATUS_CREATED_DISABLED}
CHECK_ROWS = 1000  # rows per ListUsers lookup (emails not seen before in the run)


@dataclass(frozen=True)
class Checked:
    row: AccountRow
    problems: list[tuple[str, str]]


class RowChecker:
    def __init__(self, users: SyncUsersClient) -> None:
        self._users = users
        self._roles = users.role_names()
        self._known: dict[str, users_pb2.User | None] = {}  # lower-cased email -> user

    def check(self, rows: list[AccountRow]) -> list[Checked]:
        missing = {r.user_email.lower() for r in rows if r.user_email} - self._known.keys()
        if missing:
            found = self._users.users_by_email(sorted(missing))
            self._known.update((email, found.get(email)) for email in missing)
        checked = []
        for row in rows:
            problems = list(row.problems)
            if row.role and row.role not in self._roles:
                problems.append(("ROLE_NOT_FOUND", f"{row.role} is not an account role"))
            user = self._known.get(row.user_email.lower()) if row.user_email else None
            if row.user_email and user is None:
                problems.append(("USER_NOT_FOUND", f"no user with email {row.user_email}"))
            elif user is not None and user.status in INELIGIBLE:
                status = users_pb2.UserStatus.Name(user.status)
                problems.append(("USER_NOT_ELIGIBLE", f"{row.user_email} is {status}"))
            checked.append(Checked(row, problems))
        return checked

    def user_name(self, row: AccountRow) -> str | None:
        """ "users/{uid}" of the user a checked row names by email; None for a row naming a user
        by name (the users service resolves those)."""
        user = self._known.get(row.user_email.lower()) if row.user_email else None
        return user.name if user is not None else None


def settle(
    checker: RowChecker, chosen: OneUserPerRole, rows: list[AccountRow]
) -> Iterator[tuple[AccountRow, str, str]]:
    """Checks the rows and offers the good ones to `chosen`. Yields (row, reason, description)
    for each row that will not be written: its first problem; ROLE_HELD_BY_ANOTHER_ROW for a
    row that lost to another user's row; or reason "" for one that lost to a row naming the same
    user (that user holds the role: nothing is wrong)."""
    for checked in checker.check(rows) if rows else []:
        if checked.problems:
            yield checked.row, *checked.problems[0]
            continue
        loser = chosen.offer(checked.row)
        if loser is None:
            continue
        if not chosen.conflicts(loser):
            yield loser, "", ""
            continue
        holder = chosen.holder(loser)
        yield (
            loser,
            CONFLICT,
            f"{loser.account_id} has one {loser.role}: a newer row (or one as new, first by user) "
            f"gives it to {holder.user_email or holder.user_name}",
        )
