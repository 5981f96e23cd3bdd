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

Slot = tuple[str, str]  # (account id, role key)


class Result(StrEnum):
    SET = "SET"
    CLEARED = "CLEARED"
    UNCHANGED = "UNCHANGED"


# Named tuples: a batch makes tens of thousands of these, and they are the cheapest to build.
class SlotWrite(NamedTuple):
    """Row `row` of the batch gives `slot` to `user_id`, or clears it (None). Rows that failed
    their checks never become a SlotWrite."""

    row: int
    slot: Slot
    user_id: str | None


class SlotChange(NamedTuple):
    """One link of a slot's history chain: the holder went from `previous_user_id` to `user_id`."""

    slot: Slot
    user_id: str | None
    previous_user_id: str | None


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


def first_claims(writes: Iterable[SlotWrite]) -> dict[Slot, str]:
    """The user each slot would get first: what a free slot is claimed with before the holders
    are known. A clear before it changes nothing on a free slot, so the first set is the one."""
    claims: dict[Slot, str] = {}
    for write in writes:
        if write.user_id is not None and write.slot not in claims:
            claims[write.slot] = write.user_id
    return claims


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
        result.changes.append(SlotChange(slot, write.user_id, current))
        kind = Result.SET if write.user_id is not None else Result.CLEARED
        result.outcomes.append(WriteOutcome(write.row, kind, current or ""))
    return result
