"""One user per role per account out of source rows that name several (rows.OneUserPerRole): the
newest row wins, ties to the lowest user, whatever order the source returns the rows in. No
servers, no database."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from services.sync.domain.rows import AccountRow, OneUserPerRole

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def row(account: str, role: str, email: str, hours: int | None, index: int = 0) -> AccountRow:
    modified = None if hours is None else T0 + dt.timedelta(hours=hours)
    return AccountRow(index, {}, account, email, "", "CSM", role, modified)


def settle(rows: list[AccountRow]) -> tuple[OneUserPerRole, list[AccountRow]]:
    chosen, losers = OneUserPerRole(), []
    for r in rows:
        if (loser := chosen.offer(r)) is not None:
            losers.append(loser)
    return chosen, losers


def test_the_newest_row_wins_and_the_older_one_is_the_loser():
    old, new = row("a1", "csm", "ann@x.io", 1), row("a1", "csm", "cat@x.io", 5)
    for order in ([old, new], [new, old]):
        chosen, losers = settle(order)
        assert chosen.conflicts(old) and not chosen.conflicts(new)
        assert chosen.take_settled() == [new] and losers == [old]


def test_rows_of_one_instant_go_to_the_lowest_user_ignoring_case():
    bob, cat = row("a1", "csm", "Bob@x.io", 1), row("a1", "csm", "cat@x.io", 1)
    assert settle([cat, bob])[0].take_settled() == [bob] and settle([bob, cat])[0].take_settled() == [bob]


def test_a_row_without_a_date_loses_to_one_with_a_date():
    undated, dated = row("a1", "csm", "ann@x.io", None), row("a1", "csm", "zed@x.io", 0)
    assert settle([dated, undated])[0].take_settled() == [dated]


def test_the_same_user_twice_is_not_a_conflict_and_other_roles_and_accounts_are_apart():
    first, again = row("a1", "csm", "ann@x.io", 1), row("a1", "csm", "ANN@x.io", 3)
    other_role, other_account = row("a1", "ae", "bob@x.io", 0), row("a2", "csm", "cat@x.io", 0)
    chosen, losers = settle([first, other_role, again, other_account])
    assert losers == [first] and not chosen.conflicts(first)
    assert chosen.take_settled() == [again, other_role, other_account]  # in first-seen order of account and role


rows_strategy = st.lists(
    st.builds(
        row,
        st.sampled_from(["a1", "a2"]),
        st.sampled_from(["csm", "ae"]),
        st.sampled_from(["ann@x.io", "bob@x.io", "Cat@x.io", "cat@x.io"]),
        st.one_of(st.none(), st.integers(0, 3)),
    ),
    max_size=12,
)


@given(rows_strategy, st.randoms(use_true_random=False))
def test_the_choice_does_not_depend_on_the_order_of_the_rows(rows, rng):
    shuffled = list(rows)
    rng.shuffle(shuffled)
    chosen, losers = settle(rows)
    again, _ = settle(shuffled)

    for r in rows:  # nothing chosen is older than a row of its account and role
        held = chosen.holder(r)
        assert (held.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC)) >= (
            r.last_modified or dt.datetime.min.replace(tzinfo=dt.UTC)
        )

    def picked(c: OneUserPerRole) -> tuple[int, dict[tuple[str, str], tuple[str, dt.datetime | None]]]:
        settled = c.take_settled()
        return len(settled), {(r.account_id, r.role): (r.user_email.lower(), r.last_modified) for r in settled}

    count, choice = picked(chosen)
    assert choice == picked(again)[1]
    assert count + len(losers) == len(rows)  # each row is written or reported, once


def test_accounts_read_one_after_another_are_settled_as_soon_as_the_next_begins():
    a1, a1_ae, a2 = row("a1", "csm", "ann@x.io", 1), row("a1", "ae", "bob@x.io", 1), row("a2", "csm", "cat@x.io", 1)
    chosen, _ = settle([a1, a1_ae, a2])
    assert chosen.take_settled(open_account="a2") == [a1, a1_ae]
    assert chosen.take_settled(open_account="a2") == []  # a2 may still get rows
    newer = row("a2", "csm", "dan@x.io", 2)
    assert chosen.offer(newer) == a2
    assert chosen.take_settled() == [newer]
