"""Pure domain: what a batch's rows do, in order, to the holders they start from."""

from __future__ import annotations

from services.users.domain.assignment_batch import (
    Result,
    SlotChange,
    SlotWrite,
    WriteOutcome,
    claim_sources,
    first_claims,
    plan,
)
from services.users.domain.assignments import Source, WriteSource

A, B = ("acc-1", "csm"), ("acc-2", "csm")


def test_rows_apply_in_order_and_the_same_user_again_changes_nothing():
    writes = [
        SlotWrite(0, A, "ann"),  # ann held it already
        SlotWrite(1, A, "bob"),
        SlotWrite(2, A, "bob"),  # bob since row 1
        SlotWrite(3, B, "cat"),  # a free slot
        SlotWrite(4, A, None),
        SlotWrite(5, A, None),  # empty since row 4
    ]
    result = plan(writes, {A: "ann"})
    assert result.outcomes == [
        WriteOutcome(0, Result.UNCHANGED, "ann"),
        WriteOutcome(1, Result.SET, "ann"),
        WriteOutcome(2, Result.UNCHANGED, "bob"),
        WriteOutcome(3, Result.SET, ""),
        WriteOutcome(4, Result.CLEARED, "bob"),
        WriteOutcome(5, Result.UNCHANGED, ""),
    ]
    # The history chain of each slot, in row order: each change replaces the one before it.
    assert result.changes == [SlotChange(A, "bob", "ann"), SlotChange(B, "cat", None), SlotChange(A, None, "bob")]
    assert result.final == {A: None, B: "cat"}


def test_a_batch_that_ends_where_it_began_still_names_the_slot_it_changed():
    result = plan([SlotWrite(0, A, "bob"), SlotWrite(1, A, "ann")], {A: "ann"})
    assert result.changes == [SlotChange(A, "bob", "ann"), SlotChange(A, "ann", "bob")]
    assert result.final == {A: "ann"}  # written again: its source and time are this batch's


def test_untouched_and_unchanged_slots_are_not_in_the_final_holders():
    assert plan([SlotWrite(0, A, "ann"), SlotWrite(1, B, None)], {A: "ann"}).final == {}


def test_a_free_slot_is_claimed_for_its_first_set_row():
    writes = [SlotWrite(0, A, None), SlotWrite(1, A, "bob"), SlotWrite(2, A, "cat"), SlotWrite(3, B, None)]
    assert first_claims(writes) == {A: "bob"}


def test_each_slot_keeps_the_writer_of_its_last_change():
    p1, p2 = WriteSource(Source.PLAY, "plays/1"), WriteSource(Source.PLAY, "plays/2")
    writes = [
        SlotWrite(0, A, "bob", p1),
        SlotWrite(1, A, "ann"),  # the batch's writer
        SlotWrite(2, B, "cat", p2),
        SlotWrite(3, B, "cat", p1),  # the same user again: no change, the writer stays p2
    ]
    result = plan(writes, {A: "ann"})
    assert result.changes == [
        SlotChange(A, "bob", "ann", p1),
        SlotChange(A, "ann", "bob"),
        SlotChange(B, "cat", None, p2),
    ]
    assert result.final == {A: "ann", B: "cat"}
    assert result.final_sources == {B: p2}  # A's last change was the batch writer's
    # A free slot is claimed with its first set row's user and writer.
    assert claim_sources(writes) == {A: p1, B: p2}
    assert claim_sources([SlotWrite(0, A, None, p1), SlotWrite(1, A, "bob"), SlotWrite(2, A, "cat", p2)]) == {}
