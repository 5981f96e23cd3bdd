"""The executor's pure parts: stages keep each account's order, round robin over a batch, and
the share of partitions each live replica takes."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from services.rules.domain.actions import CallWebhook, CreateTask, UpdateValue, UserChoice
from services.rules.domain.run_batch import Step, Turns, stages
from services.runtime.partitions import account_slot, share

SM, SALES = "roles/success_manager", "roles/sales_manager"


def assign(role: str = SM, user: str = "users/a") -> UpdateValue:
    return UpdateValue(role, UserChoice(user=user))


def copy(role: str, of: str) -> UpdateValue:
    return UpdateValue(role, UserChoice(holder_of_role=of))


def task(of: str = SM) -> CreateTask:
    return CreateTask("Kick-off", UserChoice(holder_of_role=of))


HOOK = CallWebhook("https://example.com/hook")


def where(grouped: list[list[Step]]) -> dict[tuple[int, int], int]:
    return {(s.run, s.action_index): n for n, stage in enumerate(grouped) for s in stage}


def test_one_action_per_account_is_one_stage_whatever_the_kinds():
    steps = [Step(0, 0, assign(), "a"), Step(1, 0, task(), "b"), Step(2, 0, HOOK, "c")]
    assert stages(steps) == [steps]


def test_a_task_after_an_assignment_of_its_account_waits_a_stage():
    steps = [Step(0, 0, assign(), "a"), Step(0, 1, task(), "a"), Step(1, 0, assign(), "b")]
    assert where(stages(steps)) == {(0, 0): 0, (1, 0): 0, (0, 1): 1}


def test_consecutive_assignments_of_an_account_share_a_stage_unless_one_copies_another():
    steps = [
        Step(0, 0, assign(SM, "users/a"), "a"),
        Step(1, 0, assign(SM, "users/b"), "a"),  # same kind: applied in row order in one call
        Step(1, 1, copy(SALES, of=SM), "a"),  # reads what the stage writes: next stage
        Step(2, 0, assign(SALES, "users/c"), "a"),
    ]
    assert where(stages(steps)) == {(0, 0): 0, (1, 0): 0, (1, 1): 1, (2, 0): 1}


def test_webhooks_of_one_account_go_one_stage_each():
    steps = [Step(0, 0, HOOK, "a"), Step(1, 0, HOOK, "a"), Step(2, 0, HOOK, "b")]
    assert where(stages(steps)) == {(0, 0): 0, (1, 0): 1, (2, 0): 0}


ACTIONS = st.sampled_from([assign(SM), assign(SALES), copy(SALES, of=SM), task(), HOOK])


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.lists(ACTIONS, min_size=1, max_size=4)), max_size=30))
def test_stages_keep_every_accounts_order_and_never_mix_kinds_of_one_account(runs):
    steps = [
        Step(r, i, action, account) for r, (account, actions) in enumerate(runs) for i, action in enumerate(actions)
    ]
    grouped = stages(steps)
    assert sorted(s for stage in grouped for s in stage) == sorted(steps)  # each step once
    placed = where(grouped)
    for account in "abcd":
        mine = [s for s in steps if s.account_id == account]
        numbers = [placed[(s.run, s.action_index)] for s in mine]
        assert numbers == sorted(numbers), "an account's steps go in its order"
        for n in set(numbers):
            kinds = {s.kind for s in mine if placed[(s.run, s.action_index)] == n}
            assert len(kinds) == 1, "one kind per account per stage"
            hooks = [s for s in mine if placed[(s.run, s.action_index)] == n and s.kind is CallWebhook]
            assert len(hooks) <= 1
            written: set[str] = set()
            for s in mine:
                if placed[(s.run, s.action_index)] != n or s.kind is not UpdateValue:
                    continue
                assert s.reads not in written, "a copy never reads a holder its own stage writes"
                assert isinstance(s.action, UpdateValue)
                written.add(s.action.role)


def test_round_robin_over_a_batch_evens_out_from_the_counts_read_once():
    turns = Turns()
    turns.load(SM, {"users/a": 3, "users/b": 0, "users/c": 1}, ["users/a", "users/b", "users/c"])
    chosen = [turns.choose(SM, ["users/a", "users/b", "users/c"]) for _ in range(8)]
    assert chosen[:3] == ["users/b", "users/b", "users/c"]  # b catches up first, ties go to the first listed
    final = Counter(chosen) + Counter({"users/a": 3, "users/c": 1})
    assert max(final.values()) - min(final.values()) <= 1


@given(st.integers(1, 64), st.integers(1, 9))
def test_live_members_split_the_partitions_evenly_and_completely(partitions, members):
    names = sorted(f"replica-{i}" for i in range(members))
    shares = [share(partitions, names, name) for name in names]
    assert sorted(p for s in shares for p in s) == list(range(partitions))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert share(partitions, names, "not-a-member") == frozenset()


def test_account_slots_are_stable_and_spread():
    assert account_slot("001ACME") == account_slot("001ACME")
    rng = random.Random(3)
    counts = Counter(account_slot(f"001{rng.getrandbits(48):012x}") % 16 for _ in range(16_000))
    assert min(counts.values()) > 800 and max(counts.values()) < 1200
