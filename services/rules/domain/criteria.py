"""Target criteria of a play: conditions over an event's attributes, combined with and/or/not.

Written by workflow authors (YAML/JSON), so parsing reports every problem at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.runtime.errors import Violations


class Op(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    IN = "in"
    GREATER_THAN = "greater_than"
    LESS_THAN = "less_than"
    CONTAINS = "contains"
    EXISTS = "exists"
    CHANGED = "changed"  # from X to Y: the event carries the previous value
    # Relative dates: the attribute is a date; the value a number of days. True or false
    # depends on when it is asked, so accounts enter and leave such segments as time passes.
    WITHIN_NEXT_DAYS = "within_next_days"  # between now and N days from now
    WITHIN_LAST_DAYS = "within_last_days"  # between N days ago and now
    OLDER_THAN_DAYS = "older_than_days"  # before N days ago


ROLE_SUFFIX = "___tid"  # the users service exposes each role as attribute <key>___tid
RELATIVE_DATES = frozenset({Op.WITHIN_NEXT_DAYS, Op.WITHIN_LAST_DAYS, Op.OLDER_THAN_DAYS})
MAX_DAYS = 3650


@dataclass(frozen=True)
class Condition:
    field: str
    op: Op
    value: Any = None
    previous: Any = None  # CHANGED only: the value it changed from


@dataclass(frozen=True)
class AllOf:
    items: tuple[Criterion, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Criterion, ...]


@dataclass(frozen=True)
class NotOf:
    item: Criterion


Criterion = Condition | AllOf | AnyOf | NotOf
SCALAR = (str, int, float, bool)


def parse(raw: Any, path: str = "criteria", problems: Violations | None = None) -> Criterion | None:
    """From the authors' form: {"all": [...]}, {"any": [...]}, {"not": {...}},
    {"field": "segment", "op": "equals", "value": "X"} or {"field", "op": "changed", "from", "to"}."""
    own = problems is None
    problems = problems or Violations()
    result = _parse(raw, path, problems)
    if own:
        problems.raise_if_any("invalid criteria")
    return result


def _parse(raw: Any, path: str, problems: Violations) -> Criterion | None:
    if not isinstance(raw, dict):
        problems.add(path, "must be an object", "CRITERIA_INVALID")
        return None
    for key, kind in (("all", AllOf), ("any", AnyOf)):
        if key in raw:
            items = raw[key]
            if not isinstance(items, list) or not items:
                problems.add(f"{path}.{key}", "must be a non-empty list", "CRITERIA_INVALID")
                return None
            parsed = [_parse(item, f"{path}.{key}[{i}]", problems) for i, item in enumerate(items)]
            return kind(tuple(p for p in parsed if p is not None))
    if "not" in raw:
        inner = _parse(raw["not"], f"{path}.not", problems)
        return NotOf(inner) if inner is not None else None
    return _condition(raw, path, problems)


def _condition(raw: dict[str, Any], path: str, problems: Violations) -> Condition | None:
    field, op_name = raw.get("field"), raw.get("op")
    if not isinstance(field, str) or not field.replace("_", "").replace(".", "").isalnum():
        problems.add(f"{path}.field", "an attribute name (letters, digits, _ and .)", "FIELD_INVALID")
        return None
    try:
        op = Op(str(op_name))
    except ValueError:
        problems.add(
            f"{path}.op",
            f"unknown operator {op_name!r}; use one of {', '.join(o.value for o in Op)}",
            "OPERATOR_UNKNOWN",
        )
        return None
    value = raw.get("to") if op is Op.CHANGED else raw.get("value")
    if op in (Op.GREATER_THAN, Op.LESS_THAN) and (not isinstance(value, int | float) or isinstance(value, bool)):
        problems.add(f"{path}.value", f"{op.value} compares numbers", "TYPE_MISMATCH")
    elif op is Op.IN and (not isinstance(value, list) or not value or not all(isinstance(v, SCALAR) for v in value)):
        problems.add(f"{path}.value", "in needs a non-empty list of values", "TYPE_MISMATCH")
    elif op is Op.CONTAINS and not isinstance(value, str):
        problems.add(f"{path}.value", "contains looks for a text", "TYPE_MISMATCH")
    elif op in (Op.EQUALS, Op.NOT_EQUALS, Op.CHANGED) and not isinstance(value, SCALAR):
        problems.add(f"{path}.value", f"{op.value} needs a text, number or true/false", "TYPE_MISMATCH")
    elif op in RELATIVE_DATES and not _whole_days(value):
        problems.add(f"{path}.value", f"{op.value} needs a whole number of days, 1 to {MAX_DAYS}", "TYPE_MISMATCH")
    if op in RELATIVE_DATES and isinstance(value, float) and value.is_integer():
        value = int(value)
    return Condition(field, op, value, raw.get("from") if op is Op.CHANGED else None)


def _whole_days(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return value == int(value) and 1 <= value <= MAX_DAYS


def fields_of(criterion: Criterion) -> set[str]:
    if isinstance(criterion, Condition):
        return {criterion.field}
    if isinstance(criterion, NotOf):
        return fields_of(criterion.item)
    return set().union(*(fields_of(i) for i in criterion.items))


def is_time_based(criterion: Criterion | None) -> bool:
    """True when the criteria's truth can change with no event, as time passes."""
    if criterion is None:
        return False
    if isinstance(criterion, Condition):
        return criterion.op in RELATIVE_DATES
    if isinstance(criterion, NotOf):
        return is_time_based(criterion.item)
    return any(is_time_based(i) for i in criterion.items)


def to_epoch(value: Any) -> float | None:
    """An attribute's value as a point in time: epoch seconds, or an ISO-8601 date or date-time
    (a date is its midnight UTC; a date-time without zone is UTC). None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    return _parse_moment(value)


# Every evaluation of a time-based play parses its dates (and so does scheduling the account's
# next check); accounts share few distinct dates, so parsing each once pays (a profile of ingest
# spent 8 % of its time here).
@functools.lru_cache(maxsize=65536)
def _parse_moment(value: str) -> float | None:
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


DAY = 86400.0


def relative_date_holds(op: Op, days: int, value: Any, now: float) -> bool:
    moment = to_epoch(value)
    if moment is None:
        return False  # no date, or not a date: not in any relative-date segment
    if op is Op.WITHIN_NEXT_DAYS:
        return now <= moment <= now + days * DAY
    if op is Op.WITHIN_LAST_DAYS:
        return now - days * DAY <= moment <= now
    return moment < now - days * DAY


# --- when time alone can next change a criterion ---

# Checks are scheduled a little after a boundary, so that float rounding at the exact instant
# cannot make the check see the old truth and then schedule nothing more.
SETTLE_SECONDS = 0.001


@dataclass(frozen=True)
class TimeCondition:
    field: str
    op: Op
    days: int


def time_conditions(criterion: Criterion | None) -> set[TimeCondition]:
    """The relative-date conditions in a criterion (under not, too: negation flips the truth at
    the same instants)."""
    if criterion is None:
        return set()
    if isinstance(criterion, Condition):
        return (
            {TimeCondition(criterion.field, criterion.op, int(criterion.value))}
            if criterion.op in RELATIVE_DATES
            else set()
        )
    if isinstance(criterion, NotOf):
        return time_conditions(criterion.item)
    return set().union(*(time_conditions(i) for i in criterion.items))


def boundaries(condition: TimeCondition, value: Any) -> tuple[float, ...]:
    """The instants at which relative_date_holds(op, days, value, t) changes as t grows: true
    from the first (inclusive), false after the second; older_than is true only after one."""
    moment = to_epoch(value)
    if moment is None:
        return ()
    span = condition.days * DAY
    if condition.op is Op.WITHIN_NEXT_DAYS:
        return (moment - span, moment)
    if condition.op is Op.WITHIN_LAST_DAYS:
        return (moment, moment + span)
    return (moment + span,)


def next_time_check(conditions: Iterable[TimeCondition], attributes: Mapping[str, Any], now: float) -> float | None:
    """The earliest moment after `now` at which time alone may change one of these conditions for
    an account with these attributes (epoch seconds); None: time alone never will. Until then
    re-evaluating the account as time passes cannot change its segments."""
    ahead = [
        moment + SETTLE_SECONDS
        for condition in conditions
        for moment in boundaries(condition, attributes.get(condition.field))
        if moment + SETTLE_SECONDS > now
    ]
    return min(ahead, default=None)
