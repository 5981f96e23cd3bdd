"""Play actions, one module per kind (services/rules/domain/actions/): every kind of the union
round-trips dict ⇄ dataclass ⇄ proto, is parsed, described, listed and executed by a handler."""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any, get_args

import pytest

from services.rules import convert
from services.rules.domain import actions
from services.rules.domain.actions import Action, CallWebhook, CreateTask, UpdateValue, UserChoice
from services.rules.domain.model import EventType, Play, PlayStatus, Trigger
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import PlayRun
from services.rules.service_layer import action_handlers
from services.rules.service_layer.action_handlers.batch import Reads
from services.runtime.errors import Violations
from steward.rules.v1 import plays_pb2

NOW = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
SM = "roles/success_manager"
OWNER = "6f1c2b9e-0000-4000-8000-000000000001"
# Every member of the union, each in the forms its fields allow.
EXAMPLES: dict[type, list[Any]] = {
    UpdateValue: [
        UpdateValue(SM, UserChoice(user="ann@example.com")),
        UpdateValue(SM, UserChoice(user="users/u1")),
        UpdateValue(SM, UserChoice(round_robin_users=("users/u1", "bob@example.com"))),
        UpdateValue(SM, UserChoice(round_robin_team="teams/t1")),
        UpdateValue("roles/renewal_manager", UserChoice(holder_of_role=SM)),
    ],
    CreateTask: [
        CreateTask("Kick-off", UserChoice(user="ann@example.com")),
        CreateTask("Review", UserChoice(holder_of_role=SM), due_in_days=3, on_parent_account=True),
    ],
    CallWebhook: [CallWebhook("https://hooks.example.com/steward", 5), CallWebhook("http://hooks.example.com/x")],
}
ALL = [example for examples in EXAMPLES.values() for example in examples]


def test_every_member_of_the_union_has_examples_here():
    assert set(EXAMPLES) == set(get_args(Action))


def test_every_kind_of_the_protos_oneof_has_a_parser_and_nothing_else_does():
    oneof = plays_pb2.Action.DESCRIPTOR.oneofs_by_name["action"]
    assert set(actions.PARSERS) == {field.name for field in oneof.fields}
    assert {next(iter(actions.to_dict(a))) for a in ALL} == set(actions.PARSERS)


def test_every_kind_has_an_executor_handler_named_as_its_module():
    for key in actions.PARSERS:
        handler = importlib.import_module(f"{action_handlers.__name__}.{key}")
        assert callable(handler.reads) and callable(handler.apply), key


@pytest.mark.parametrize("action", ALL, ids=lambda a: type(a).__name__)
def test_dict_to_dataclass_to_dict(action):
    problems = Violations()
    parsed = actions.parse_actions([actions.to_dict(action)], "actions", problems)
    assert problems.items == [] and parsed == {0: action}


@pytest.mark.parametrize("action", ALL, ids=lambda a: type(a).__name__)
def test_dataclass_to_proto_and_back_as_the_service_converts_plays(action):
    trigger = Trigger(EventType.ACCOUNT_CREATED)
    play = Play("p1", "P", "", OWNER, "teams/t1", PlayStatus.DRAFT, trigger, NOW, NOW, [actions.to_dict(action)])
    message = convert.play_to_proto(play)
    [proto] = message.actions
    assert proto.WhichOneof("action") == next(iter(actions.to_dict(action)))
    # Through the wire, as a client sends it back.
    back, shape = convert.play_from_proto(plays_pb2.Play.FromString(message.SerializeToString()), "p1", NOW)
    assert shape.items == []
    assert back.actions == [actions.to_dict(action)]
    assert back.parsed_actions() == [action]


@pytest.mark.parametrize("action", ALL, ids=lambda a: type(a).__name__)
def test_every_kind_is_described_listed_and_staged(action):
    assert actions.describe(action)
    for reference in actions.references({2: action}):
        assert reference.path.startswith(f"actions[2].{next(iter(actions.to_dict(action)))}.")
        assert reference.kind in ("role", "user", "team")
    choice = actions.choice_of(action)
    assert choice is None or isinstance(choice, UserChoice)
    assert actions.role_set_by(action) in ("", getattr(action, "role", ""))
    assert isinstance(actions.in_one_call(action), bool)
    run = PlayRun("r1", "p1", 1, 1, "e1", "a1", {"actions": [actions.to_dict(action)]}, NOW)
    action_handlers.reads(run, Step(0, 0, action, "a1"), Reads())  # assert_never would raise


def test_what_each_kind_references_describes_and_sets():
    robin, copy = EXAMPLES[UpdateValue][2], EXAMPLES[UpdateValue][4]
    assert [(r.path, r.kind, r.value) for r in actions.references({0: robin, 1: copy})] == [
        ("actions[0].update_value.role", "role", SM),
        ("actions[0].update_value.round_robin.users", "user", "users/u1"),
        ("actions[0].update_value.round_robin.users", "user", "bob@example.com"),
        ("actions[1].update_value.role", "role", "roles/renewal_manager"),
        ("actions[1].update_value.holder_of_role", "role", SM),
    ]
    assert actions.describe(robin) == f"set {SM} to the next of users/u1, bob@example.com (round robin)"
    task = EXAMPLES[CreateTask][1]
    assert actions.describe(task) == f"create task 'Review' for the holder of {SM}, due in 3 days on the parent account"
    assert [r.path for r in actions.references({0: task})] == ["actions[0].create_task.holder_of_role"]
    hook = EXAMPLES[CallWebhook][0]
    assert actions.references({0: hook}) == [] and actions.choice_of(hook) is None
    assert [actions.role_set_by(a) for a in (robin, task, hook)] == [SM, "", ""]
    assert [actions.in_one_call(a) for a in (robin, task, hook)] == [True, True, False]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # A body that is not a mapping used to raise AttributeError for these two kinds.
        ({"create_task": "Call the customer"}, {"a[0].create_task.title", "a[0].create_task.assignee"}),
        ({"update_value": None}, {"a[0].update_value.role", "a[0].update_value.value"}),
        ({"call_webhook": "https://example.com"}, {"a[0].call_webhook.url"}),
        # A text where the list of users belongs was read as a list of its characters.
        (
            {"update_value": {"role": SM, "round_robin": {"users": "ann@example.com"}}},
            {"a[0].update_value.round_robin"},
        ),
        ({"update_value": {"role": SM, "round_robin": ["ann@example.com"]}}, {"a[0].update_value.round_robin"}),
        ({"send_email": {}}, {"a[0]"}),
    ],
)
def test_malformed_bodies_are_problems_not_exceptions(raw, expected):
    problems = Violations()
    assert actions.parse_actions([raw], "a", problems) == {}
    assert {v.field for v in problems.items} == expected


def test_an_unknown_kind_names_every_kind_there_is():
    problems = Violations()
    actions.parse_actions([{"send_email": {}}], "a", problems)
    [violation] = problems.items
    assert violation.description == "exactly one of update_value, create_task or call_webhook"
