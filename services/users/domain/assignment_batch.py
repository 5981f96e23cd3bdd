"""A batch of assignment writes, applied in row order to the slots' holders, as pure data.

A batch is written with a handful of set statements (adapters/assignment_batch_repository.py),
but its meaning is that of its rows applied one after another, as single SetAssignment and
ClearAssignment calls would: a slot named twice sees the first row's effect, the same user
again changes nothing (no history, no event), and every change is one link of the slot's
history chain. This module works that meaning out from the holders read (and locked) before the
writes, so the database is asked only for what actually changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from services.users.domain.assignments import WriteSource

Slot = tuple[str, str]  # (account id, role key)


class Result(StrEnum):
    SET = "SET"
    CLEARED = "CLEARED"
    UNCHANGED = "UNCHANGED"


# Named tuples: a batch makes tens of thousands of these, and they are the cheapest to build.
class SlotWrite(NamedTuple):
    """Row `row` of the batch gives `slot` to `user_id`, or clears it (None). Rows that failed
    their checks never become a SlotWrite. `source`: the row's own writer when it is not the
    batch's (None: the batch's, the common case that costs nothing more)."""

    row: int
    slot: Slot
    user_id: str | None
    source: WriteSource | None = None


class SlotChange(NamedTuple):
    """One link of a slot's history chain: the holder went from `previous_user_id` to `user_id`,
    written by `source` (None: the batch's writer)."""

    slot: Slot
    user_id: str | None
    previous_user_id: str | None
    source: WriteSource | None = None


class WriteOutcome(NamedTuple):
    row: int
    result: Result
    # The holder before this row: for an UNCHANGED set, the user already there.
    previous_user_id: str


@dataclass
class BatchPlan:
    outcomes: list[WriteOutcome] = field(default_factory=list)
    # In row order: the history rows and events, as single writes would have made them.
    changes: list[SlotChange] = field(default_factory=list)
    # The holder of every slot that changed, once the whole batch is applied (None: empty).
    final: dict[Slot, str | None] = field(default_factory=dict)
    # The writer of those final holders, for the slots whose last change a row of its own source
    # made (absent: the batch's writer). A holder keeps the source of the change that put it there.
    final_sources: dict[Slot, WriteSource] = field(default_factory=dict)


def first_claims(writes: Iterable[SlotWrite]) -> dict[Slot, str]:
    """The user each slot would get first: what a free slot is claimed with before the holders
    are known. A clear before it changes nothing on a free slot, so the first set is the one."""
    claims: dict[Slot, str] = {}
    for write in writes:
        if write.user_id is not None and write.slot not in claims:
            claims[write.slot] = write.user_id
    return claims


def claim_sources(writes: Iterable[SlotWrite]) -> dict[Slot, WriteSource]:
    """The writer of each slot's first set, where it is a row's own (absent: the batch's): the
    source a free slot is claimed with, as first_claims gives its user."""
    sources: dict[Slot, WriteSource] = {}
    claimed: set[Slot] = set()
    for write in writes:
        if write.user_id is not None and write.slot not in claimed:
            claimed.add(write.slot)
            if write.source is not None:
                sources[write.slot] = write.source
    return sources


def plan(writes: Sequence[SlotWrite], holders: Mapping[Slot, str]) -> BatchPlan:
    """Apply `writes` in order to `holders` (the slots' users before the batch; absent: free)."""
    state: dict[Slot, str | None] = {}
    result = BatchPlan()
    for write in writes:
        slot = write.slot
        current = state[slot] if slot in state else holders.get(slot)
        if write.user_id is not None and current == write.user_id:
            result.outcomes.append(WriteOutcome(write.row, Result.UNCHANGED, current))
            continue
        if write.user_id is None and current is None:
            result.outcomes.append(WriteOutcome(write.row, Result.UNCHANGED, ""))
            continue
        state[slot] = write.user_id
        result.final[slot] = write.user_id
        if write.source is not None:
            result.final_sources[slot] = write.source
        elif result.final_sources and slot in result.final_sources:
            del result.final_sources[slot]  # the batch's writer made the last change
        result.changes.append(SlotChange(slot, write.user_id, current, write.source))
        kind = Result.SET if write.user_id is not None else Result.CLEARED
        result.outcomes.append(WriteOutcome(write.row, kind, current or ""))
    return result
