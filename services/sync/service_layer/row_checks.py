"""What the users service would refuse about source rows, asked before anything is written, and
the rows settled to one per account and role.

A run checks rows a chunk at a time before they compete for an account's role: a row naming
someone who is not a user (a CRM user without Steward, common in territories and teams) or who may
not hold a role must not displace a row naming someone who may. Whether a user may is the users
service's rule (its status policy), so it is asked, not copied: each email new to the run is
checked once with BatchSetAssignments(validate_only), a row of its own naming a role that exists,
and the verdict is cached for the run. An org names few users, so a million rows cost a few
calls. The write still decides (a user disabled in between is refused there).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from services.sync.adapters.users_client import SyncUsersClient
from services.sync.domain.rows import CONFLICT, AccountRow, OneUserPerRole
from steward.users.v1 import assignments_pb2

CHECK_ROWS = 1000  # rows per check (one validate_only call for the emails not seen before in the run)
# The users service's verdicts that are about the user, whatever the row: cached per email.
USER_REASONS = frozenset({"USER_NOT_FOUND", "USER_NOT_ELIGIBLE", "USER_AMBIGUOUS"})
FAILED = assignments_pb2.AssignmentRowOutcome.RESULT_FAILED


@dataclass(frozen=True)
class Checked:
    row: AccountRow
    problems: list[tuple[str, str]]


@dataclass(frozen=True)
class _Verdict:
    user: str | None  # "users/{uid}" of a user who may hold the role
    problem: tuple[str, str] | None


class RowChecker:
    def __init__(self, users: SyncUsersClient, job: str) -> None:
        self._users = users
        self._job = job
        self._roles = users.role_names()
        self._known: dict[str, _Verdict] = {}  # lower-cased email -> the users service's verdict

    def _ask(self, rows: list[AccountRow]) -> None:
        """One validate_only call for the emails not seen before: a row per email, on one of its
        rows' account and on a role that exists, so that a refusal is about the user."""
        probes: dict[str, AccountRow] = {}
        for row in rows:
            email = row.user_email.lower()
            if email and email not in self._known and (email not in probes or not probes[email].account_id):
                probes[email] = row
        if not probes or not self._roles:
            return
        fallback = min(self._roles)
        request = [
            assignments_pb2.AssignmentRow(
                account_id=row.account_id or "-",
                role=row.role if row.role in self._roles else fallback,
                user=assignments_pb2.UserRef(email=row.user_email),
            )
            for row in probes.values()
        ]
        reply = self._users.check_assignments(request, self._job)
        for email, outcome in zip(probes, sorted(reply.outcomes, key=lambda o: o.row), strict=True):
            if outcome.result == FAILED and outcome.reason in USER_REASONS:
                # The row report names the user by the email the source gave.
                if outcome.reason == "USER_NOT_FOUND":
                    description = f"no user with email {probes[email].user_email}"
                else:
                    description = f"{probes[email].user_email}: {outcome.description}"
                self._known[email] = _Verdict(None, (outcome.reason, description))
            else:
                self._known[email] = _Verdict(outcome.user or None, None)

    def check(self, rows: list[AccountRow]) -> list[Checked]:
        self._ask(rows)
        checked = []
        for row in rows:
            problems = list(row.problems)
            if row.role and row.role not in self._roles:
                problems.append(("ROLE_NOT_FOUND", f"{row.role} is not an account role"))
            verdict = self._known.get(row.user_email.lower()) if row.user_email else None
            if verdict is not None and verdict.problem is not None:
                problems.append(verdict.problem)
            checked.append(Checked(row, problems))
        return checked

    def user_name(self, row: AccountRow) -> str | None:
        """ "users/{uid}" of the user a checked row names by email; None for a row naming a user
        by name (the users service resolves those)."""
        verdict = self._known.get(row.user_email.lower()) if row.user_email else None
        return verdict.user if verdict is not None else None


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
