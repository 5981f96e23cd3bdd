"""The play engine on durable-rules: every operator, and every (event, play) match exactly once."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.rules.domain.criteria import AllOf, AnyOf, Condition, NotOf, Op, parse
from services.rules.engine.evaluator import CompiledPlay, PlayEngine
from services.runtime.errors import InvalidArgument


def _engine(*criteria, event_type: str = "ACCOUNT_CREATED") -> PlayEngine:
    engine = PlayEngine()
    engine.load([CompiledPlay(f"p{i}", event_type, c) for i, c in enumerate(criteria)])
    return engine


def _matches(
    engine: PlayEngine,
    attributes: dict[str, Any],
    previous: dict[str, Any] | None = None,
    event_type: str = "ACCOUNT_CREATED",
) -> list[str]:
    return engine.evaluate("e1", event_type, attributes, previous)


@pytest.mark.parametrize(
    ("condition", "matching", "not_matching"),
    [
        (Condition("segment", Op.EQUALS, "X"), {"segment": "X"}, {"segment": "Y"}),
        (Condition("segment", Op.NOT_EQUALS, "X"), {"segment": "Y"}, {"segment": "X"}),
        (Condition("segment", Op.IN, ["X", "Z"]), {"segment": "Z"}, {"segment": "Y"}),
        (Condition("arr", Op.GREATER_THAN, 100), {"arr": 101}, {"arr": 100}),
        (Condition("arr", Op.LESS_THAN, 100), {"arr": 99.5}, {"arr": 100}),
        (Condition("name", Op.CONTAINS, "Acme"), {"name": "Big acme Ltd"}, {"name": "Other"}),
        (Condition("owner", Op.EXISTS), {"owner": "u1"}, {"segment": "X"}),
        (Condition("stage", Op.CHANGED, "adoption", "onboarding"), {"stage": "adoption"}, {"stage": "adoption"}),
    ],
)
def test_each_operator(condition, matching, not_matching):
    engine = _engine(condition)
    previous = {"stage": "onboarding"} if condition.op is Op.CHANGED else None
    assert _matches(engine, matching, previous) == ["p0"]
    other_previous = {"stage": "renewal"} if condition.op is Op.CHANGED else None
    assert _matches(engine, not_matching, other_previous) == []


def test_missing_values_count_as_not_equal_and_not_greater():
    engine = _engine(
        Condition("segment", Op.NOT_EQUALS, "X"),
        NotOf(Condition("arr", Op.GREATER_THAN, 5)),
        NotOf(Condition("segment", Op.IN, ["X"])),
        NotOf(Condition("owner", Op.EXISTS)),
    )
    assert _matches(engine, {}) == ["p0", "p1", "p2", "p3"]


def test_and_or_not_and_the_event_type():
    criteria = AllOf(
        (
            Condition("segment", Op.EQUALS, "SMB"),
            AnyOf((Condition("arr", Op.GREATER_THAN, 1000), Condition("name", Op.CONTAINS, "vip"))),
            NotOf(Condition("region", Op.IN, ["APAC", "LATAM"])),
        )
    )
    engine = _engine(criteria)
    assert _matches(engine, {"segment": "SMB", "arr": 5000, "region": "EMEA"}) == ["p0"]
    assert _matches(engine, {"segment": "SMB", "arr": 5, "name": "VIP Corp", "region": "EMEA"}) == ["p0"]
    assert _matches(engine, {"segment": "SMB", "arr": 5000, "region": "APAC"}) == []
    assert _matches(engine, {"segment": "SMB", "arr": 5000}, event_type="ACCOUNT_UPDATED") == []


def test_an_event_matching_no_play_is_normal():
    engine = _engine(Condition("segment", Op.EQUALS, "X"))
    assert _matches(engine, {"segment": "nothing like it"}) == []
    assert PlayEngine().evaluate("e", "ACCOUNT_CREATED", {"a": 1}) == []  # no plays loaded at all


def _oracle(condition: Condition, attributes: dict[str, Any]) -> bool:
    """The semantics, written out independently of the compiler."""
    value = attributes.get(condition.field)
    if condition.op is Op.EQUALS:
        return value == condition.value
    if condition.op is Op.GREATER_THAN:
        return value is not None and value > condition.value
    if condition.op is Op.IN:
        return value in condition.value
    raise AssertionError(condition.op)


def test_many_plays_many_events_each_match_exactly_once():
    rng = random.Random(7)
    segments, regions = [f"S{i}" for i in range(10)], ["EMEA", "NA", "APAC"]
    conditions = []
    for _ in range(100):
        kind = rng.choice(["eq", "gt", "in"])
        if kind == "eq":
            conditions.append(Condition("segment", Op.EQUALS, rng.choice(segments)))
        elif kind == "gt":
            conditions.append(Condition("arr", Op.GREATER_THAN, rng.randrange(0, 10_000)))
        else:
            conditions.append(Condition("region", Op.IN, rng.sample(regions, 2)))
    engine = _engine(*conditions)
    expected = actual = 0
    for n in range(2000):
        attributes = {"segment": rng.choice(segments), "arr": rng.randrange(0, 10_000), "region": rng.choice(regions)}
        want = [f"p{i}" for i, c in enumerate(conditions) if _oracle(c, attributes)]
        got = engine.evaluate(f"e{n}", "ACCOUNT_CREATED", attributes)
        assert got == want, (attributes, got, want)
        expected += len(want)
        actual += len(got)
    assert actual == expected > 10_000  # matches were plentiful, and none was lost or doubled


def test_loading_new_plays_changes_the_next_evaluation():
    engine = _engine(Condition("segment", Op.EQUALS, "X"))
    assert _matches(engine, {"segment": "X"}) == ["p0"]
    engine.load([CompiledPlay("edited", "ACCOUNT_CREATED", Condition("segment", Op.EQUALS, "Y"))])
    assert _matches(engine, {"segment": "X"}) == []
    assert _matches(engine, {"segment": "Y"}) == ["edited"]


def test_authors_criteria_are_parsed_with_every_problem_reported():
    parsed = parse(
        {
            "all": [
                {"field": "segment", "op": "equals", "value": "X"},
                {"not": {"field": "stage", "op": "changed", "from": "a", "to": "b"}},
            ]
        }
    )
    assert isinstance(parsed, AllOf) and isinstance(parsed.items[1], NotOf)
    with pytest.raises(InvalidArgument) as err:
        parse(
            {
                "any": [
                    {"field": "arr", "op": "greater_than", "value": "lots"},
                    {"field": "segment", "op": "like", "value": "X"},
                    {"field": "region", "op": "in", "value": []},
                ]
            }
        )
    assert {v.reason for v in err.value.field_violations} == {"TYPE_MISMATCH", "OPERATOR_UNKNOWN"}
    assert len(err.value.field_violations) == 3
