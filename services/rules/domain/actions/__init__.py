"""What a play does when it matches: its actions, in the authors' terms, one module per kind.

A kind's module holds its dataclass and everything the domain does with it: parse (which
validates), describe, to_dict and references. Its executor handler is the module of the same name
in service_layer/action_handlers/. This module is the only place that picks a kind's function:
each dispatch is a `match` ending in `assert_never`, so mypy fails on every dispatch that lacks a
case for a new member of `Action`.

Actions are stored as plain dicts, the protobuf JSON form of steward.rules.v1.Action with the
proto's field names, so a run keeps the exact definition it matched with even if the play
changes afterwards. The proto and the dict convert into each other generically (json_format in
convert.py): a kind has no protobuf code of its own.

A new kind: its message in the Action oneof of plays.proto, its module here, its member in
`Action` and `PARSERS`, its cases below, its handler and its cases in action_handlers/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, assert_never

from services.rules.domain.actions import call_webhook, create_task, update_value
from services.rules.domain.actions.call_webhook import DEFAULT_WEBHOOK_TIMEOUT, CallWebhook
from services.rules.domain.actions.choices import Reference, UserChoice, is_user_name
from services.rules.domain.actions.create_task import CreateTask
from services.rules.domain.actions.update_value import UpdateValue
from services.runtime.errors import Violations

MAX_ACTIONS = 20

Action = UpdateValue | CreateTask | CallWebhook

# By the key of the kind's dict form (the name of its field in the proto's oneof).
PARSERS: Mapping[str, Callable[[dict[str, Any], str, Violations], Action | None]] = {
    update_value.KEY: update_value.parse,
    create_task.KEY: create_task.parse,
    call_webhook.KEY: call_webhook.parse,
}

__all__ = [
    "DEFAULT_WEBHOOK_TIMEOUT",
    "MAX_ACTIONS",
    "PARSERS",
    "Action",
    "CallWebhook",
    "CreateTask",
    "Reference",
    "UpdateValue",
    "UserChoice",
    "choice_of",
    "describe",
    "from_dicts",
    "in_one_call",
    "is_user_name",
    "parse_actions",
    "references",
    "role_set_by",
    "to_dict",
]


def parse_actions(raw: Any, path: str, problems: Violations) -> dict[int, Action]:
    """The valid actions by their position (invalid ones are reported and left out)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ACTIONS:
        problems.add(path, f"a play has 1 to {MAX_ACTIONS} actions", "ACTIONS_INVALID")
        return {}
    actions = {}
    for index, item in enumerate(raw):
        action = _parse_action(item, f"{path}[{index}]", problems)
        if action is not None:
            actions[index] = action
    return actions


def _parse_action(raw: Any, path: str, problems: Violations) -> Action | None:
    if isinstance(raw, dict) and len(raw) == 1:
        [(key, body)] = raw.items()
        parse = PARSERS.get(key)
        if parse is not None:
            # A body that is not a mapping has none of the kind's fields: each is reported missing.
            return parse(body if isinstance(body, dict) else {}, f"{path}.{key}", problems)
    *others, last = PARSERS
    problems.add(path, f"exactly one of {', '.join(others)} or {last}", "ACTION_INVALID")
    return None


def from_dicts(raw: list[dict[str, Any]]) -> list[Action]:
    """Stored actions, valid by construction (they were parsed before being stored)."""
    problems = Violations()
    actions = parse_actions(raw, "actions", problems)
    problems.raise_if_any("stored play actions are invalid")
    return list(actions.values())


def describe(action: Action) -> str:
    match action:
        case UpdateValue():
            return update_value.describe(action)
        case CreateTask():
            return create_task.describe(action)
        case CallWebhook():
            return call_webhook.describe(action)
        case _:
            assert_never(action)


def to_dict(action: Action) -> dict[str, Any]:
    match action:
        case UpdateValue():
            return update_value.to_dict(action)
        case CreateTask():
            return create_task.to_dict(action)
        case CallWebhook():
            return call_webhook.to_dict(action)
        case _:
            assert_never(action)


def references(actions: Mapping[int, Action], path: str = "actions") -> list[Reference]:
    """What the actions name that must exist in the users service, at their field paths."""
    found: list[Reference] = []
    for index, action in actions.items():
        match action:
            case UpdateValue():
                found += update_value.references(action, f"{path}[{index}].{update_value.KEY}")
            case CreateTask():
                found += create_task.references(action, f"{path}[{index}].{create_task.KEY}")
            case CallWebhook():
                found += call_webhook.references(action, f"{path}[{index}].{call_webhook.KEY}")
            case _:
                assert_never(action)
    return found


def choice_of(action: Action) -> UserChoice | None:
    """The user the action picks, if it picks one."""
    match action:
        case UpdateValue():
            return action.value
        case CreateTask():
            return action.assignee
        case CallWebhook():
            return None
        case _:
            assert_never(action)


def role_set_by(action: Action) -> str:
    """The role the action sets on the account ("" if none): what needs an origin team, may
    loop a segment, competes with other plays and is counted by round robins."""
    match action:
        case UpdateValue():
            return action.role
        case CreateTask() | CallWebhook():
            return ""
        case _:
            assert_never(action)


def in_one_call(action: Action) -> bool:
    """Whether the executor sends an account's consecutive actions of this kind in one call,
    applied in order (run_batch.py); if not, each is a stage of its own."""
    match action:
        case UpdateValue() | CreateTask():  # BatchSetAssignments rows, BatchCreateTasks items
            return True
        case CallWebhook():  # deliveries run concurrently
            return False
        case _:
            assert_never(action)
