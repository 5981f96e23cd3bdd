"""Criteria -> durable-rules conditions over flat facts.

Facts are flat: attribute `segment` is key `a__segment`, its previous value `p__segment`.
Predicates the engine cannot evaluate safely (`$nex` hangs it; regexes are fragile) become
derived boolean keys computed in Python when the fact is built: "contains", "exists", and the
"missing" half of "not equals".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.rules.domain.criteria import (
    RELATIVE_DATES,
    AllOf,
    AnyOf,
    Condition,
    Criterion,
    NotOf,
    Op,
    relative_date_holds,
)

Derived = Callable[[dict[str, Any]], bool]
# The evaluation's clock, in every fact (epoch seconds): relative dates are judged against it.
NOW_KEY = "t__now"


def key(field_name: str) -> str:
    return "a__" + field_name.replace(".", "__")


def previous_key(field_name: str) -> str:
    return "p__" + field_name.replace(".", "__")


@dataclass
class Compiler:
    """Compiles many plays into one ruleset; derived keys are shared across them."""

    derived: dict[str, Derived] = field(default_factory=dict)

    def _derive(self, name: str, predicate: Derived) -> str:
        self.derived.setdefault(name, predicate)
        return name

    def exists(self, field_name: str) -> str:
        k = key(field_name)
        return self._derive(f"d__exists__{k}", lambda attrs: attrs.get(k) is not None)

    def contains(self, field_name: str, needle: str) -> str:
        k = key(field_name)
        return self._derive(
            f"d__contains__{k}__{needle.encode().hex()}",
            lambda attrs: isinstance(attrs.get(k), str) and needle.lower() in attrs[k].lower(),
        )

    def relative_date(self, field_name: str, op: Op, days: int) -> str:
        k = key(field_name)
        return self._derive(
            f"d__{op.value}__{days}__{k}", lambda attrs: relative_date_holds(op, days, attrs.get(k), attrs[NOW_KEY])
        )

    def compile(self, criterion: Criterion, negate: bool = False) -> dict[str, Any]:
        if isinstance(criterion, NotOf):
            return self.compile(criterion.item, not negate)
        if isinstance(criterion, AllOf | AnyOf):
            joins_all = isinstance(criterion, AllOf) != negate  # De Morgan
            parts = [self.compile(item, negate) for item in criterion.items]
            return parts[0] if len(parts) == 1 else {"$and" if joins_all else "$or": parts}
        return self._condition(criterion, negate)

    def _condition(self, c: Condition, negate: bool) -> dict[str, Any]:
        k = key(c.field)
        if c.op is Op.EXISTS:
            return {self.exists(c.field): not negate}
        if c.op is Op.CONTAINS:
            return {self.contains(c.field, str(c.value)): not negate}
        if c.op in RELATIVE_DATES:
            return {self.relative_date(c.field, c.op, int(c.value)): not negate}
        if c.op is Op.IN:
            values = list(c.value)
            if negate:  # neither of them, or no value at all
                return {"$or": [{"$and": [{"$neq": {k: v}} for v in values]}, {self.exists(c.field): False}]}
            return {"$or": [{k: v} for v in values]} if len(values) > 1 else {k: values[0]}
        if c.op is Op.CHANGED:
            now, before = {k: c.value}, {previous_key(c.field): c.previous}
            if negate:
                return {"$or": [{"$neq": now}, {"$neq": before}, {self.exists(c.field): False}]}
            return {"$and": [before, now]}
        equal = (c.op is Op.EQUALS) != negate
        if c.op in (Op.EQUALS, Op.NOT_EQUALS):
            # A missing value is "not equal" to anything: the engine's $neq alone would not match it.
            return {k: c.value} if equal else {"$or": [{"$neq": {k: c.value}}, {self.exists(c.field): False}]}
        ops = {
            (Op.GREATER_THAN, False): "$gt",
            (Op.GREATER_THAN, True): "$lte",
            (Op.LESS_THAN, False): "$lt",
            (Op.LESS_THAN, True): "$gte",
        }
        compared = {ops[(c.op, negate)]: {k: c.value}}
        # "not greater than" is also true of a missing value.
        return {"$or": [compared, {self.exists(c.field): False}]} if negate else compared
