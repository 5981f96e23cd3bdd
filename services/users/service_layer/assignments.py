"""Roles and account assignments: single writes, batches, clears, and the team as of a date."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from services.runtime.errors import (
    AlreadyExists,
    DomainError,
    ErrorKind,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Violations,
)
from services.runtime.etag import check_etag
from services.users.domain import assignment_batch as batches
from services.users.domain import assignments as domain
from services.users.domain.assignment_batch import Result, SlotWrite
from services.users.domain.assignments import (
    Assignment,
    EmptyValue,
    Role,
    RoleSource,
    Source,
    WriteSource,
    ambiguous_name,
    check_role_key,
    ensure_eligible,
    role_not_found,
)
from services.users.domain.events import DomainEvent, assignment_event
from services.users.domain.model import User, normalize_email, user_not_found
from services.users.domain.permissions import Actor, ensure_can_assign, ensure_can_manage_roles
from services.users.domain.work import check_account_id, is_account_id
from services.users.unit_of_work import UsersUnitOfWork

MAX_BATCH = 10_000
# CountAssignments: users per call.
MAX_COUNT_USERS = 1000
# ListAssignments: the longest source_ref filter.
MAX_SOURCE_REF = 200


class UserRef(NamedTuple):
    """Who a write names: exactly one of these. A tuple: a batch hashes one per row, and a tuple
    hashes in C, a frozen dataclass in Python (~5x slower)."""

    user_id: str = ""
    email: str = ""
    full_name: str = ""


def resolve_user(uow: UsersUnitOfWork, ref: UserRef) -> User:
    if ref.user_id:
        user = uow.users.get(ref.user_id)
        if user is None:
            raise user_not_found(ref.user_id)
        return user
    if ref.email:
        user = uow.users.get_live_by_email(ref.email)
        if user is None:
            raise user_not_found(normalize_email(ref.email))
        return user
    candidates = uow.users.live_by_full_name(ref.full_name)
    if not candidates:
        raise user_not_found(ref.full_name)
    if len(candidates) > 1:
        raise ambiguous_name(ref.full_name, candidates)
    return candidates[0]


def get_role(uow: UsersUnitOfWork, key: str) -> Role:
    role = uow.roles.get(key)
    if role is None:
        raise role_not_found(key)
    return role


def _check_write(actor: Actor, write: WriteSource) -> None:
    if write.source is Source.REASSIGNMENT:
        raise InvalidArgument("SOURCE_RESERVED", "REASSIGNMENT writes come only from ReassignUserResources")
    ensure_can_assign(actor, write.source.value)


def _account(account_id: str, field: str = "account_id") -> str:
    problems = Violations()
    check_account_id(account_id, field, problems)
    problems.raise_if_any()
    return account_id


def _record(
    uow: UsersUnitOfWork,
    account_id: str,
    role: Role,
    user_id: str | None,
    previous: str | None,
    write: WriteSource,
    actor: Actor,
    now: dt.datetime,
    events: list[DomainEvent],
) -> None:
    uow.assignments.record(
        domain.AssignmentChange(
            account_id, role.key, user_id, previous, write.source, write.source_ref, actor.subject, now
        )
    )
    kind = "set" if user_id else "cleared"
    events.append(
        assignment_event(
            kind,
            account_id,
            role.key,
            actor.subject,
            user=f"users/{user_id}" if user_id else "",
            previous_user=f"users/{previous}" if previous else "",
            source=write.source.value,
            source_ref=write.source_ref,
            attribute=role.attribute,
        )
    )


def _set(
    uow: UsersUnitOfWork,
    actor: Actor,
    account_id: str,
    role: Role,
    user: User,
    write: WriteSource,
    now: dt.datetime,
    events: list[DomainEvent],
) -> tuple[Result, str]:
    """The result, and the id of the user who held the role before ("" if nobody did)."""
    ensure_eligible(user, role, write)
    holder = uow.assignments.claim(account_id, role.key, user.id, write.source, write.source_ref, now)
    if holder is not None and holder.user_id == user.id:
        return Result.UNCHANGED, user.id  # the same user again: no history, no event
    if holder is not None:
        uow.assignments.replace_holder(account_id, role.key, user.id, write.source, write.source_ref, now)
    _record(uow, account_id, role, user.id, holder.user_id if holder else None, write, actor, now, events)
    return Result.SET, holder.user_id if holder else ""


def _ensure_may_clear(role: Role, write: WriteSource) -> None:
    if write.source in (Source.MANUAL, Source.BULK) and role.source is RoleSource.INTEGRATION_ONLY:
        raise FailedPrecondition(
            "ROLE_INTEGRATION_ONLY",
            f"{role.display_name} is written only by integrations and plays",
            metadata={"role": f"roles/{role.key}"},
        )


def _clear(
    uow: UsersUnitOfWork,
    actor: Actor,
    account_id: str,
    role: Role,
    write: WriteSource,
    now: dt.datetime,
    events: list[DomainEvent],
) -> str | None:
    """Whatever the role's empty_value: that says only what an upload row without a user means."""
    _ensure_may_clear(role, write)
    previous = uow.assignments.remove(account_id, role.key)
    if previous is not None:
        _record(uow, account_id, role, None, previous, write, actor, now, events)
    return previous


def set_assignment(
    uow: UsersUnitOfWork,
    actor: Actor,
    account_id: str,
    role_key: str,
    ref: UserRef,
    write: WriteSource,
    now: dt.datetime,
) -> Assignment:
    _check_write(actor, write)
    role = get_role(uow, role_key)
    user = resolve_user(uow, ref)
    events: list[DomainEvent] = []
    _set(uow, actor, _account(account_id), role, user, write, now, events)
    uow.events.append_all(events, now)
    current = uow.assignments.get(account_id, role.key)
    assert current is not None
    return current


def clear_assignment(
    uow: UsersUnitOfWork, actor: Actor, account_id: str, role_key: str, write: WriteSource, now: dt.datetime
) -> str | None:
    _check_write(actor, write)
    events: list[DomainEvent] = []
    previous = _clear(uow, actor, _account(account_id), get_role(uow, role_key), write, now, events)
    uow.events.append_all(events, now)
    return previous


# Tuples, not dataclasses: a batch makes 10,000 of each, and a frozen dataclass costs ~1 us more.
class BatchRow(NamedTuple):
    account_id: str
    role_key: str
    user: UserRef | None
    # The row's own writer (AssignmentRow.source); None: the batch's.
    write: WriteSource | None = None


class RowOutcome(NamedTuple):
    result: Result | None
    user_id: str = ""
    reason: str = ""
    description: str = ""
    previous_user_id: str = ""
    # A failed row (result None): the kind of error SetAssignment would have failed with.
    error: ErrorKind | None = None


def batch_writers(rows: Sequence[BatchRow], write: WriteSource | None) -> tuple[WriteSource, list[WriteSource]]:
    """The batch's writer (the request's, else the first row's own: a batch whose rows all name
    their writer needs none) and the other writers its rows name, each once."""
    others: dict[WriteSource, None] = {}
    for row in rows:
        if row.write is not None and row.write is not write:
            others[row.write] = None
    if write is None:
        first = rows[0].write if rows else None
        if first is None:
            raise InvalidArgument(
                "SOURCE_REQUIRED",
                "source is required unless every row names its own",
                field_violations=[FieldViolation("source.source", "is required", "REQUIRED")],
            )
        write = first
    others.pop(write, None)
    return write, list(others)


def batch_set(
    uow: UsersUnitOfWork,
    actor: Actor,
    rows: Sequence[BatchRow],
    write: WriteSource | None,
    now: dt.datetime,
    answered: Mapping[int, RowOutcome] | None = None,
    *,
    validate_only: bool = False,
) -> list[RowOutcome]:
    """SetAssignment (or ClearAssignment, for a row without a user) for every row, in row order,
    with a handful of statements (assignment_batch_repository). Each row is checked before
    anything is written, so a failed row leaves nothing behind and the others still apply.

    A row writes as its own `write` when it names one (its source, source_ref and play team: for
    the permission, the eligibility, the history and the event), else as the batch's `write`.
    `answered`: rows the caller has answered already (a row request_id applied before); their
    writers are checked like every row's, but they are neither applied nor looked at again.
    `validate_only`: the same checks and outcomes against the holders as they are now, with
    nothing written or locked."""
    write, others = batch_writers(rows, write)
    for writer in (write, *others):  # every writer first: a refused one refuses the whole batch
        _check_write(actor, writer)
    if len(rows) > MAX_BATCH:
        raise InvalidArgument("TOO_MANY_ROWS", f"at most {MAX_BATCH} rows per call; got {len(rows)}")
    roles = uow.roles.all_by_key()
    if answered:
        refs = {row.user for i, row in enumerate(rows) if row.user is not None and i not in answered}
    else:
        refs = {row.user for row in rows if row.user is not None}
    users = _resolve_all(uow, refs)
    outcomes: list[RowOutcome] = [_UNCHANGED] * len(rows)
    writes: list[SlotWrite] = []
    # A batch names each user with a few roles and writers: (user, role, the row's own writer).
    eligible: set[tuple[str, str, WriteSource | None]] = set()
    for index, row in enumerate(rows):
        if answered and index in answered:
            outcomes[index] = answered[index]
            continue
        # None: the batch's writer (also for a row naming it again), costing nothing more.
        own = row.write if row.write is not None and row.write != write else None
        try:
            if not is_account_id(row.account_id):
                _account(row.account_id, "rows.account_id")
            role = roles.get(row.role_key) or _raise(role_not_found(row.role_key))
            if row.user is None:
                if role.empty_value is EmptyValue.KEEP_EXISTING:
                    continue  # UNCHANGED: the row says nothing about the holder
                _ensure_may_clear(role, own or write)
                writes.append(SlotWrite(index, (row.account_id, role.key), None, own))
                continue
            user = users[row.user]
            if isinstance(user, DomainError):
                raise user
            if (user.id, role.key, own) not in eligible:
                ensure_eligible(user, role, own or write)
                eligible.add((user.id, role.key, own))
            writes.append(SlotWrite(index, (row.account_id, role.key), user.id, own))
        except DomainError as failed:
            outcomes[index] = RowOutcome(None, "", failed.reason, failed.message, "", failed.kind)
    if validate_only:
        plan = _plan_batch(uow, writes)
    else:
        plan = _write_batch(uow, writes, write, actor, now, mixed=bool(others))
    for outcome, slot_write in zip(plan.outcomes, writes, strict=True):
        outcomes[outcome.row] = RowOutcome(outcome.result, slot_write.user_id or "", "", "", outcome.previous_user_id)
    return outcomes


_UNCHANGED = RowOutcome(Result.UNCHANGED)


def _plan_batch(uow: UsersUnitOfWork, writes: Sequence[SlotWrite]) -> batches.BatchPlan:
    """What _write_batch would work out, from the holders read without a lock."""
    held = uow.assignment_batches.holders(sorted({w.slot for w in writes}), lock=False)
    return batches.plan(writes, {slot: holder.user_id for slot, holder in held.items()})


def _write_batch(
    uow: UsersUnitOfWork,
    writes: Sequence[SlotWrite],
    write: WriteSource,
    actor: Actor,
    now: dt.datetime,
    *,
    mixed: bool = False,
) -> batches.BatchPlan:
    """Claim the free slots, lock the taken ones, work out what the rows do in order, and write
    only what changed. `mixed`: some rows have writers of their own (SlotWrite.source), so the
    source of each slot is carried row by row rather than as one value for the statement."""
    claims = batches.first_claims(writes)
    sources = batches.claim_sources(writes) if mixed else None
    claimed, holders = uow.assignment_batches.take({w.slot for w in writes}, claims, write, now, sources)
    plan = batches.plan(writes, holders)
    # What the table holds now, for the slots that changed: the claims, or the locked holders.
    written = {slot: claims[slot] if slot in claimed else holders.get(slot) for slot in plan.final}
    final = {
        slot: user
        for slot, user in plan.final.items()
        # A claimed slot already carries its claim's source and this batch's time; a held one that
        # changed takes them even if the batch ends on the user it started with.
        if user != written[slot]
        or slot not in claimed
        or (sources is not None and plan.final_sources.get(slot) != sources.get(slot))
    }
    uow.assignment_batches.apply(final, write, now, plan.final_sources if mixed else None)
    uow.assignment_batches.record(plan.changes, write, actor.subject, now)
    return plan


class ClearResult(StrEnum):
    CLEARED = "CLEARED"
    SKIPPED = "SKIPPED"


@dataclass(frozen=True)
class ClearRow:
    account_id: str
    role_key: str
    # Clear only if this user still holds the role; None: whoever holds it.
    expected_user_id: str | None = None


@dataclass(frozen=True)
class ClearOutcome:
    result: ClearResult | None  # None: the row failed
    reason: str = ""
    description: str = ""


def batch_clear(
    uow: UsersUnitOfWork,
    actor: Actor,
    rows: Sequence[ClearRow],
    write: WriteSource,
    only_own: bool,
    now: dt.datetime,
) -> list[ClearOutcome]:
    """ClearAssignment for many rows at once, each only if it still holds what the caller expects
    (domain.clear_skipped). The slots are read and locked with one query and the cleared ones
    deleted together; history and events are ClearAssignment's, written with set statements."""
    _check_write(actor, write)
    if len(rows) > MAX_BATCH:
        raise InvalidArgument("TOO_MANY_ROWS", f"at most {MAX_BATCH} rows per call; got {len(rows)}")
    roles = uow.roles.all_by_key()
    holders = uow.assignment_batches.holders(sorted({(r.account_id, r.role_key) for r in rows if r.role_key in roles}))
    own = write if only_own else None
    changes: list[batches.SlotChange] = []
    outcomes = []
    for row in rows:
        try:
            _account(row.account_id, "rows.account_id")
            role = roles.get(row.role_key) or _raise(role_not_found(row.role_key))
            _ensure_may_clear(role, write)
        except DomainError as failed:
            outcomes.append(ClearOutcome(None, failed.reason, failed.message))
            continue
        key = (row.account_id, role.key)
        holder = holders.get(key)
        skip = domain.clear_skipped(holder, row.expected_user_id, own)
        if skip is not None:
            outcomes.append(ClearOutcome(ClearResult.SKIPPED, skip.reason, skip.description))
            continue
        assert holder is not None  # clear_skipped says NOT_ASSIGNED otherwise
        del holders[key]  # the same slot named again later in the batch is empty by then
        changes.append(batches.SlotChange(key, None, holder.user_id))
        outcomes.append(ClearOutcome(ClearResult.CLEARED))
    uow.assignment_batches.apply({change.slot: None for change in changes}, write, now)
    uow.assignment_batches.record(changes, write, actor.subject, now)
    return outcomes


def _resolve_all(uow: UsersUnitOfWork, refs: set[UserRef]) -> dict[UserRef, User | DomainError]:
    """Every user a batch names, looked up with a few queries instead of one per row."""
    by_email = uow.users.live_by_emails(r.email for r in refs if r.email)
    by_id = uow.users.get_many(r.user_id for r in refs if r.user_id)
    found: dict[UserRef, User | DomainError] = {}
    for ref in refs:
        try:
            if ref.email:
                found[ref] = by_email.get(normalize_email(ref.email)) or _missing(normalize_email(ref.email))
            elif ref.user_id:
                found[ref] = by_id.get(ref.user_id) or _missing(ref.user_id)
            else:
                found[ref] = resolve_user(uow, ref)
        except DomainError as error:
            found[ref] = error
    return found


def _missing(key: str) -> User:
    raise user_not_found(key)


def _raise(error: DomainError) -> Role:
    raise error


def team_as_of(uow: UsersUnitOfWork, account_id: str, as_of: dt.datetime | None) -> list[Assignment]:
    _account(account_id)
    if as_of is None:
        return uow.assignments.team(account_id)
    holders: dict[str, domain.AssignmentChange] = {}
    for change in uow.assignments.history_until(account_id, as_of):
        holders[change.role_key] = change
    return [
        Assignment(account_id, key, c.user_id, c.source, c.source_ref, c.change_time)
        for key, c in sorted(holders.items())
        if c.user_id
    ]


def count_assignments(uow: UsersUnitOfWork, role_key: str, user_ids: Sequence[str]) -> list[tuple[str, int]]:
    """(user id, accounts on which they hold the role now) for every requested user, in request
    order; 0 for users who hold it nowhere. Unknown role: NOT_FOUND."""
    get_role(uow, role_key)
    counts = uow.assignments.count_by_user(role_key, user_ids)
    return [(user_id, counts.get(user_id, 0)) for user_id in user_ids]


def create_role(uow: UsersUnitOfWork, actor: Actor, role: Role, now: dt.datetime) -> Role:
    ensure_can_manage_roles(actor)
    check_role_key(role.key)
    _check_display_name(role.display_name)
    if uow.roles.get(role.key) is not None:
        raise AlreadyExists(
            "ROLE_EXISTS", f"a role with key {role.key!r} exists", metadata={"role": f"roles/{role.key}"}
        )
    uow.roles.add(role)
    uow.events.append(
        DomainEvent("role.created", f"roles/{role.key}", actor.subject, {"role": f"roles/{role.key}"}), now
    )
    return role


def _check_display_name(name: str) -> None:
    problems = Violations()
    if not name.strip() or len(name) > 100:
        problems.add("role.display_name", "1 to 100 characters", "DISPLAY_NAME_INVALID")
    problems.raise_if_any()


def update_role(
    uow: UsersUnitOfWork, actor: Actor, key: str, etag: str, changes: dict[str, object], now: dt.datetime
) -> Role:
    ensure_can_manage_roles(actor)
    role = get_role(uow, key)
    check_etag(etag, role.etag)
    if "display_name" in changes:
        _check_display_name(str(changes["display_name"]))
    for field, value in changes.items():
        setattr(role, field, value)
    role.update_time = now
    uow.roles.save(role)
    uow.events.append(
        DomainEvent("role.updated", f"roles/{key}", actor.subject, {"role": f"roles/{key}", "fields": sorted(changes)}),
        now,
    )
    return role


def delete_role(uow: UsersUnitOfWork, actor: Actor, key: str, force: bool, now: dt.datetime) -> int:
    ensure_can_manage_roles(actor)
    role = get_role(uow, key)
    if role.builtin:
        raise FailedPrecondition("ROLE_BUILTIN", f"{role.display_name} comes with Steward and cannot be deleted")
    held = uow.assignments.of_role(key)
    if held and not force:
        raise FailedPrecondition(
            "ROLE_IN_USE",
            f"{len(held)} accounts have a {role.display_name}; clear them or delete with force",
            metadata={"assignments": str(len(held))},
        )
    events: list[DomainEvent] = []
    write = WriteSource(Source.INTEGRATION, "role deleted")
    for assignment in held:
        _clear(uow, actor, assignment.account_id, role, write, now, events)
    uow.roles.delete(key)
    events.append(
        DomainEvent(
            "role.deleted", f"roles/{key}", actor.subject, {"role": f"roles/{key}", "cleared_assignments": len(held)}
        )
    )
    uow.events.append_all(events, now)
    return len(held)
