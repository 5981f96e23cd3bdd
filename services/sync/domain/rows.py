"""What one source row becomes, and the rows of a run settled to one user per account and role.

Every connector reads rows (dicts keyed by the source's field names); the job's mapping says
which field holds the account id, the user's email and name, and the role value, and its role
table which Steward role a role value is. Pure domain: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class FieldMapping:
    """Which source field feeds which Steward value (a connector gives the defaults)."""

    account_id: str
    user_email: str
    user_name: str
    role: str

    def fields(self) -> dict[str, str]:
        return {
            "account_id": self.account_id,
            "user_email": self.user_email,
            "user_name": self.user_name,
            "role": self.role,
        }


@dataclass(frozen=True, slots=True)  # a run keeps one per account and role
class AccountRow:
    """One source row, mapped; `problems` are (reason, description) pairs."""

    index: int
    source: dict[str, Any]
    account_id: str
    user_email: str
    user_name: str
    role_value: str
    role: str
    last_modified: dt.datetime | None
    problems: tuple[tuple[str, str], ...] = ()

    @property
    def applicable(self) -> bool:
        return not self.problems


def map_row(
    index: int,
    source: dict[str, Any],
    mapping: FieldMapping,
    role_values: Mapping[str, str],
    *,
    modified_field: str,
    role_label: str = "role",
    keep_source: bool = True,
) -> AccountRow:
    """Mapping problems only; whether the user exists and may hold the role is the users service's to say.
    Without keep_source the row does not hold on to the source's record (a run settles a million
    rows; only a preview shows the source). `role_label` names the role value in problems."""

    def text(name: str) -> str:
        value = source.get(name)
        return "" if value is None else str(value).strip()

    account, email, name, role_value = (
        text(mapping.account_id),
        text(mapping.user_email),
        text(mapping.user_name),
        text(mapping.role),
    )
    role = role_values.get(role_value, "")
    problems = []
    if not account:
        problems.append(("ACCOUNT_ID_MISSING", f"{mapping.account_id} is empty"))
    if not email and not name:
        problems.append(("USER_MISSING", f"{mapping.user_email} and {mapping.user_name} are empty"))
    if not role:
        problems.append(("ROLE_UNMAPPED", f"{role_label} {role_value!r} is not in the job's role table"))
    modified = source.get(modified_field)
    return AccountRow(
        index,
        source if keep_source else _NO_SOURCE,
        account,
        email,
        name,
        role_value,
        role,
        modified if isinstance(modified, dt.datetime) else None,
        tuple(problems),
    )


_NO_SOURCE: dict[str, Any] = {}

# --- one user per role per account ---

CONFLICT = "ROLE_HELD_BY_ANOTHER_ROW"
_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def _user_key(row: AccountRow) -> str:
    return (row.user_email or row.user_name).lower()


def _beats(row: AccountRow, other: AccountRow) -> bool:
    """The newest row wins (LastModifiedDate); between rows of one instant, the lowest user, so
    that the choice does not depend on the order the source returns rows in."""
    mine, theirs = row.last_modified or _OLDEST, other.last_modified or _OLDEST
    if mine != theirs:
        return mine > theirs
    return _user_key(row) < _user_key(other)


class OneUserPerRole:
    """A source may associate several users with an account in one role (two reps in one
    territory, two territories of the account, two members of a team given one team role),
    while an account has one user per role. Writing them all would let the last one win, so
    each run would move the role back and forth between them.
    Instead the rows of a run are settled first: per account and role the newest row wins, ties
    to the lowest user. An incremental run, which sees only rows modified since the last one,
    picks what a full run would: a modified row is the newest. Memory: one slotted row per
    account and role it holds: every pair of the run, or (rows arriving account by account) only
    those of the accounts not yet taken (take_settled)."""

    def __init__(self) -> None:
        self._chosen: dict[tuple[str, str], AccountRow] = {}

    def offer(self, row: AccountRow) -> AccountRow | None:
        """The row that lost to this one or that this one lost to; None: the first of its kind.
        Rows are kept without their source: a run may settle a million of them."""
        if row.source:
            row = replace(row, source=_NO_SOURCE)
        key = (row.account_id, row.role)
        held = self._chosen.get(key)
        if held is None:
            self._chosen[key] = row
            return None
        winner, loser = (row, held) if _beats(row, held) else (held, row)
        self._chosen[key] = winner
        return loser

    def holder(self, row: AccountRow) -> AccountRow:
        """The row chosen, so far, for this row's account and role."""
        return self._chosen[(row.account_id, row.role)]

    def conflicts(self, row: AccountRow) -> bool:
        """Does the row chosen so far give this row's account and role to another user?"""
        return _user_key(self.holder(row)) != _user_key(row)

    def take_settled(self, open_account: str | None = None) -> list[AccountRow]:
        """Remove and return the chosen rows of every account but `open_account`, in the order
        their account and role first appeared. For rows that arrive account by account: the
        accounts before the one being read can get no more rows, so their choice is final."""
        settled = []
        for key in list(self._chosen):
            if key[0] == open_account:
                break  # this account's rows are the newest entries: it is the one being read
            settled.append(self._chosen.pop(key))
        return settled
