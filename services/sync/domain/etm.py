"""An ETM account-assignment job's settings, and what one Salesforce row becomes.

object        AccountUserTerritory2View (the only one this job reads)
fields        what is read: AccountId, User.Email, User.Name, RoleInTerritory2 (mapping and
              filtering), Id, Territory2Id, LastModifiedDate (filtering)
query filter  the admin's SOQL WHERE clause, kept in canonical form (soql_filter)
mapping       Salesforce field -> account id, user email, user name, role value
role values   ETM role value -> Steward role ("CSM" -> roles/success_manager)
removals      REPORT (count what ETM stopped returning) or MIRROR (clear it after a full run)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from services.runtime.errors import Violations
from services.sync.domain import soql_filter

VIEW = "AccountUserTerritory2View"
DEFAULT_FIELDS = ("AccountId", "User.Email", "User.Name", "RoleInTerritory2", "Id", "Territory2Id", "LastModifiedDate")
MAPPABLE = ("AccountId", "UserId", "User.Email", "User.Name", "RoleInTerritory2", "Territory2Id", "Id")


class Removals(StrEnum):
    REPORT = "REPORT"
    MIRROR = "MIRROR"


@dataclass(frozen=True)
class FieldMapping:
    account_id: str = "AccountId"
    user_email: str = "User.Email"
    user_name: str = "User.Name"
    role: str = "RoleInTerritory2"

    def fields(self) -> dict[str, str]:
        return {
            "account_id": self.account_id,
            "user_email": self.user_email,
            "user_name": self.user_name,
            "role": self.role,
        }


@dataclass(frozen=True)
class EtmSettings:
    object: str = VIEW
    fields: tuple[str, ...] = DEFAULT_FIELDS
    query_filter: str = ""  # canonical SOQL, or empty
    mapping: FieldMapping = field(default_factory=FieldMapping)
    role_values: dict[str, str] = field(default_factory=dict)
    removals: Removals = Removals.REPORT

    def parsed_filter(self) -> soql_filter.Filter | None:
        return soql_filter.parse(self.query_filter) if self.query_filter else None


def canonical_settings(settings: EtmSettings, path: str, problems: Violations) -> EtmSettings:
    """Every problem of the settings; the filter comes back in canonical form."""
    if settings.object != VIEW:
        problems.add(f"{path}.object", f"only {VIEW} is supported", "OBJECT_UNSUPPORTED")
    known = soql_filter.FIELDS
    canonical_fields = []
    for index, name in enumerate(settings.fields):
        match = next((k for k in known if k.lower() == name.strip().lower()), None)
        if match is None:
            problems.add(f"{path}.fields[{index}]", f"one of {', '.join(known)}", "FIELD_UNKNOWN")
        elif match not in canonical_fields:
            canonical_fields.append(match)
    for role, mapped in settings.mapping.fields().items():
        if mapped not in MAPPABLE:
            problems.add(f"{path}.mapping.{role}", f"one of {', '.join(MAPPABLE)}", "FIELD_UNKNOWN")
        elif mapped not in canonical_fields:
            problems.add(f"{path}.mapping.{role}", f"{mapped} must be among the job's fields", "FIELD_NOT_READ")
    for value, role in settings.role_values.items():
        if not value.strip():
            problems.add(f"{path}.role_values", "an ETM role value may not be empty", "ROLE_VALUE_INVALID")
        if not role.startswith("roles/") or len(role) <= len("roles/"):
            problems.add(f"{path}.role_values[{value}]", "a role name, roles/{key}", "ROLE_INVALID")
    if not settings.role_values:
        problems.add(f"{path}.role_values", "map at least one ETM role to a Steward role", "ROLE_VALUES_EMPTY")
    query_filter = ""
    if settings.query_filter.strip():
        try:
            query_filter = soql_filter.render(soql_filter.parse(settings.query_filter))
        except soql_filter.FilterError as error:
            problems.add(f"{path}.query_filter", error.message, "QUERY_FILTER_INVALID")
    return replace(settings, fields=tuple(canonical_fields), query_filter=query_filter)


@dataclass(frozen=True, slots=True)  # a run keeps one per account and role
class EtmRow:
    """One Salesforce row, mapped; `problems` are (reason, description) pairs."""

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


def map_row(index: int, source: dict[str, Any], settings: EtmSettings, *, keep_source: bool = True) -> EtmRow:
    """Mapping problems only; whether the user exists and may hold the role is the users service's to say.
    Without keep_source the row does not hold on to Salesforce's record (a run settles a million
    rows; only a preview shows the source)."""
    mapping = settings.mapping

    def text(name: str) -> str:
        value = source.get(name)
        return "" if value is None else str(value).strip()

    account, email, name, role_value = (
        text(mapping.account_id),
        text(mapping.user_email),
        text(mapping.user_name),
        text(mapping.role),
    )
    role = settings.role_values.get(role_value, "")
    problems = []
    if not account:
        problems.append(("ACCOUNT_ID_MISSING", f"{mapping.account_id} is empty"))
    if not email and not name:
        problems.append(("USER_MISSING", f"{mapping.user_email} and {mapping.user_name} are empty"))
    if not role:
        problems.append(("ROLE_UNMAPPED", f"ETM role {role_value!r} is not in the job's role table"))
    modified = source.get("LastModifiedDate")
    return EtmRow(
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


def _user_key(row: EtmRow) -> str:
    return (row.user_email or row.user_name).lower()


def _beats(row: EtmRow, other: EtmRow) -> bool:
    """The newest row wins (LastModifiedDate); between rows of one instant, the lowest user, so
    that the choice does not depend on the order Salesforce returns rows in."""
    mine, theirs = row.last_modified or _OLDEST, other.last_modified or _OLDEST
    if mine != theirs:
        return mine > theirs
    return _user_key(row) < _user_key(other)


class OneUserPerRole:
    """ETM may associate several users with an account in one role (two reps in a territory, or
    two territories of the account), while an account has one user per role. Writing them all
    would let the last one win, so each run would move the role back and forth between them.
    Instead the rows of a run are settled first: per account and role the newest row wins, ties
    to the lowest user. An incremental run, which sees only rows modified since the last one,
    picks what a full run would: a modified row is the newest. Memory: one slotted row per
    account and role it holds: every pair of the run, or (rows arriving account by account) only
    those of the accounts not yet taken (take_settled)."""

    def __init__(self) -> None:
        self._chosen: dict[tuple[str, str], EtmRow] = {}

    def offer(self, row: EtmRow) -> EtmRow | None:
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

    def holder(self, row: EtmRow) -> EtmRow:
        """The row chosen, so far, for this row's account and role."""
        return self._chosen[(row.account_id, row.role)]

    def conflicts(self, row: EtmRow) -> bool:
        """Does the row chosen so far give this row's account and role to another user?"""
        return _user_key(self.holder(row)) != _user_key(row)

    def take_settled(self, open_account: str | None = None) -> list[EtmRow]:
        """Remove and return the chosen rows of every account but `open_account`, in the order
        their account and role first appeared. For rows that arrive account by account: the
        accounts before the one being read can get no more rows, so their choice is final."""
        settled = []
        for key in list(self._chosen):
            if key[0] == open_account:
                break  # this account's rows are the newest entries: it is the one being read
            settled.append(self._chosen.pop(key))
        return settled
