"""Target criteria of a play: conditions over an event's attributes, combined with and/or/not.

Written by workflow authors (YAML/JSON), so parsing reports every problem at once.
"""

from __future__ import annotations

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
    return Condition(field, op, value, raw.get("from") if op is Op.CHANGED else None)


def fields_of(criterion: Criterion) -> set[str]:
    if isinstance(criterion, Condition):
        return {criterion.field}
    if isinstance(criterion, NotOf):
        return fields_of(criterion.item)
    return set().union(*(fields_of(i) for i in criterion.items))
