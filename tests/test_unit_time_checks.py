"""When time alone can next change an account's time-based segments (criteria.next_time_check).

The clock pass trusts this schedule and skips every account whose moment has not come, so the
properties below are what keeps it from missing a flip: nothing any relative-date condition
says about the account changes before the scheduled check, and the check is not later than
the first change. No servers, no database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.rules.domain.criteria import (
    DAY,
    SETTLE_SECONDS,
    AllOf,
    Condition,
    NotOf,
    Op,
    TimeCondition,
    boundaries,
    next_time_check,
    relative_date_holds,
    time_conditions,
)

UTC = dt.UTC
JAN_1 = dt.datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def at(year: int, month: int, day: int, hour: int = 0) -> float:
    return dt.datetime(year, month, day, hour, tzinfo=UTC).timestamp()


def holds(conditions: list[TimeCondition], attributes: dict[str, Any], when: float) -> list[bool]:
    return [relative_date_holds(c.op, c.days, attributes.get(c.field), when) for c in conditions]


# --- examples an author would recognise ---


def test_a_renewal_window_is_checked_when_it_opens_and_when_the_date_has_passed():
    renewing = [TimeCondition("renewal_date", Op.WITHIN_NEXT_DAYS, 30)]
    account = {"renewal_date": "2026-03-01"}
    assert next_time_check(renewing, account, JAN_1) == at(2026, 1, 30) + SETTLE_SECONDS
    inside = at(2026, 2, 10)
    assert next_time_check(renewing, account, inside) == at(2026, 3, 1) + SETTLE_SECONDS
    assert next_time_check(renewing, account, at(2026, 3, 2)) is None  # past: time changes nothing more


def test_no_activity_for_60_days_is_checked_once_the_60_days_are_up():
    quiet = [TimeCondition("last_activity", Op.OLDER_THAN_DAYS, 60)]
    assert next_time_check(quiet, {"last_activity": "2026-01-10T12:00:00Z"}, JAN_1) == at(2026, 3, 11, 12) + 0.001
    assert next_time_check(quiet, {"last_activity": "2026-01-10T12:00:00Z"}, at(2026, 4, 1)) is None


def test_recent_activity_is_checked_when_it_ages_out():
    recent = [TimeCondition("last_login", Op.WITHIN_LAST_DAYS, 7)]
    assert next_time_check(recent, {"last_login": at(2026, 1, 5)}, JAN_1) == at(2026, 1, 5) + SETTLE_SECONDS
    assert next_time_check(recent, {"last_login": at(2026, 1, 5)}, at(2026, 1, 6)) == at(2026, 1, 12) + 0.001


def test_the_earliest_of_several_dates_and_plays_wins():
    conditions = [
        TimeCondition("renewal_date", Op.WITHIN_NEXT_DAYS, 30),
        TimeCondition("renewal_date", Op.WITHIN_NEXT_DAYS, 90),
        TimeCondition("last_activity", Op.OLDER_THAN_DAYS, 60),
    ]
    account = {"renewal_date": "2026-06-01", "last_activity": "2025-12-20"}
    assert next_time_check(conditions, account, JAN_1) == at(2026, 2, 18) + SETTLE_SECONDS  # Dec 20 + 60 days


def test_accounts_without_a_usable_date_are_never_due():
    renewing = [TimeCondition("renewal_date", Op.WITHIN_NEXT_DAYS, 30)]
    for account in ({}, {"renewal_date": "soon"}, {"renewal_date": True}, {"renewal_date": ""}):
        assert next_time_check(renewing, account, JAN_1) is None
    assert next_time_check([], {"renewal_date": "2026-03-01"}, JAN_1) is None


def test_relative_dates_are_found_under_all_any_and_not():
    criteria = AllOf(
        (
            Condition("segment", Op.EQUALS, "Enterprise"),
            NotOf(Condition("renewal_date", Op.WITHIN_NEXT_DAYS, 30)),
            AllOf((Condition("last_activity", Op.OLDER_THAN_DAYS, 60.0),)),
        )
    )
    assert time_conditions(criteria) == {
        TimeCondition("renewal_date", Op.WITHIN_NEXT_DAYS, 30),
        TimeCondition("last_activity", Op.OLDER_THAN_DAYS, 60),
    }
    assert time_conditions(Condition("segment", Op.EQUALS, "SMB")) == set()
    assert time_conditions(None) == set()


# --- properties ---

FIELDS = ("renewal_date", "last_activity", "signed_on")
TIMES = st.integers(min_value=int(at(2020, 1, 1)), max_value=int(at(2032, 1, 1)))
conditions_strategy = st.lists(
    st.builds(
        TimeCondition,
        st.sampled_from(FIELDS),
        st.sampled_from([Op.WITHIN_NEXT_DAYS, Op.WITHIN_LAST_DAYS, Op.OLDER_THAN_DAYS]),
        st.integers(min_value=1, max_value=3650),
    ),
    min_size=1,
    max_size=5,
)
value_strategy = st.one_of(
    TIMES,  # epoch seconds
    TIMES.map(lambda s: dt.datetime.fromtimestamp(s, UTC).date().isoformat()),
    TIMES.map(lambda s: dt.datetime.fromtimestamp(s, UTC).isoformat()),
    st.just("not a date"),
)
attributes_strategy = st.dictionaries(st.sampled_from(FIELDS), value_strategy)


@settings(max_examples=400, deadline=None)
@given(conditions_strategy, attributes_strategy, TIMES, st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_nothing_changes_before_the_scheduled_check(conditions, attributes, now, fractions):
    due = next_time_check(conditions, attributes, now)
    then = holds(conditions, attributes, now)
    if due is None:
        for fraction in fractions:  # up to well past every date the strategy can make
            assert holds(conditions, attributes, now + fraction * 4000 * DAY) == then
        return
    assert due > now
    quiet_until = due - SETTLE_SECONDS
    moments = [now + fraction * (quiet_until - now) * 0.999999 for fraction in fractions]
    moments.append(max(now, quiet_until - SETTLE_SECONDS))  # the last moment before the check
    for moment in moments:
        assert holds(conditions, attributes, moment) == then, moment


@settings(max_examples=400, deadline=None)
@given(conditions_strategy, attributes_strategy, TIMES)
def test_the_check_comes_no_later_than_the_first_change(conditions, attributes, now):
    due = next_time_check(conditions, attributes, now)
    if due is None:
        return
    recent = [b for c in conditions for b in boundaries(c, attributes.get(c.field)) if now - SETTLE_SECONDS < b <= now]
    if recent:
        return  # a boundary just passed: its settling check is due first, and may change nothing
    # Something does change by the check: it is not scheduled for nothing, nor late.
    assert holds(conditions, attributes, due) != holds(conditions, attributes, now)
