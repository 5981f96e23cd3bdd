"""Plays in words for the console, from the gRPC contract only (steward.rules.v1 messages): the
trigger, the criteria as a tree of sentences, each action, a run's outcome; and where in a play
document (YAML) a key path such as actions[1].update_value.role is written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from google.protobuf.json_format import MessageToDict

from services.cli.play_files import canonical_value
from steward.rules.v1 import events_pb2, plays_pb2

# "users/{uid}" -> what a person reads (an email).
UserLabel = Callable[[str], str]

OPS = {
    "equals": "is",
    "not_equals": "is not",
    "in": "is one of",
    "greater_than": "is greater than",
    "less_than": "is less than",
    "contains": "contains",
}
DAYS = {
    "within_next_days": "is within the next {} days",
    "within_last_days": "is within the last {} days",
    "older_than_days": "is more than {} days ago",
}
REASONS = {
    "NOT_IN_PLAY_TEAM": "the user is not a member of the play's origin team",
    "ROLE_HOLDER_MISSING": "no one holds that role on the account",
    "OVERRIDDEN_BY_PLAY": "a play with a higher priority set this role",
    "NO_PARENT_ACCOUNT": "the account has no parent account",
    "WEBHOOK_REJECTED": "the webhook answered with a 4xx error",
    "WEBHOOK_UNREACHABLE": "the webhook could not be reached",
    "USER_NOT_FOUND": "no such user",
}


def enum_word(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).replace("_", " ").lower()


def status_word(status: int) -> str:
    return enum_word(plays_pb2.PlayStatus.Name(status), "PLAY_STATUS_")


def outcome_word(outcome: int) -> str:
    return enum_word(plays_pb2.RunOutcome.Name(outcome), "RUN_OUTCOME_")


def event_word(event_type: int, custom: str = "") -> str:
    if event_type == events_pb2.EVENT_TYPE_CUSTOM:
        return f"custom event “{custom}”"
    return enum_word(events_pb2.EventType.Name(event_type), "EVENT_TYPE_")


def trigger_words(trigger: plays_pb2.Trigger) -> str:
    kind = trigger.kind
    if kind == plays_pb2.TRIGGER_KIND_MANUAL:
        return "Run by hand only"
    if kind in (plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT, plays_pb2.TRIGGER_KIND_EXITS_SEGMENT):
        verb = "enters" if kind == plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT else "leaves"
        also = (
            " (also the accounts already in it when activated)"
            if trigger.activation == plays_pb2.ACTIVATION_SCOPE_EXISTING_AND_NEW
            else ""
        )
        return f"When an account {verb} the segment{also}"
    if trigger.event_type == events_pb2.EVENT_TYPE_UNSPECIFIED:
        return "No event chosen"
    return f"On each {event_word(trigger.event_type, trigger.custom_event_type)} event"


@dataclass
class Sentence:
    text: str
    children: list[Sentence] = field(default_factory=list)


def _value(value: Any) -> str:
    value = canonical_value(value)
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def criteria_words(criteria: Any) -> Sentence:
    """A criteria tree (the Struct as a dict) as sentences; what it cannot read is shown as JSON."""
    if not isinstance(criteria, dict):
        return Sentence(json.dumps(canonical_value(criteria), ensure_ascii=False))
    for key, words in (("all", "All of these"), ("any", "Any of these")):
        if key in criteria and isinstance(criteria[key], list):
            return Sentence(words + ":", [criteria_words(c) for c in criteria[key]])
    if "not" in criteria:
        return Sentence("Not this:", [criteria_words(criteria["not"])])
    name, op, value = criteria.get("field", "?"), criteria.get("op", ""), criteria.get("value")
    if op in OPS:
        return Sentence(f"{name} {OPS[op]} {_value(value)}")
    if op in DAYS:
        return Sentence(f"{name} {DAYS[op].format(_value(value))}")
    if op == "exists":
        return Sentence(f"{name} is set")
    if op == "changed":
        parts = [f"{name} changed"]
        if "from" in criteria:
            parts.append(f"from {_value(criteria['from'])}")
        if "to" in criteria:
            parts.append(f"to {_value(criteria['to'])}")
        return Sentence(" ".join(parts))
    return Sentence(json.dumps(canonical_value(criteria), ensure_ascii=False))


def trigger_criteria(trigger: plays_pb2.Trigger) -> Sentence | None:
    if not trigger.HasField("criteria"):
        return None
    return criteria_words(MessageToDict(trigger.criteria))


def _role(name: str) -> str:
    return name.removeprefix("roles/")


def action_words(action: plays_pb2.Action, user: UserLabel) -> str:
    kind = action.WhichOneof("action")
    if kind == "update_value":
        change = action.update_value
        which = change.WhichOneof("value")
        if which == "user":
            to = user(change.user)
        elif which == "holder_of_role":
            to = f"whoever holds {_role(change.holder_of_role)} on the account"
        elif which == "round_robin":
            robin = change.round_robin
            among = f"the members of team {robin.team}" if robin.team else ", ".join(user(u) for u in robin.users)
            to = f"the next of {among} (round robin: the one with the fewest accounts)"
        else:
            to = "(no one chosen)"
        return f"Set the role {_role(change.role)} to {to}"
    if kind == "create_task":
        task = action.create_task
        who = task.WhichOneof("assignee")
        assignee = (
            user(task.user)
            if who == "user"
            else f"whoever holds {_role(task.holder_of_role)}"
            if who == "holder_of_role"
            else "(no one)"
        )
        text = f"Create the task “{task.title}” for {assignee}"
        if task.due_in_days:
            text += f", due {task.due_in_days} day{'s' if task.due_in_days != 1 else ''} after the event"
        if task.on_parent_account:
            text += ", on the parent account"
        return text
    if kind == "call_webhook":
        hook = action.call_webhook
        return f"Call the webhook {hook.url} (signed; {hook.timeout_seconds or 10} s per attempt)"
    return json.dumps(MessageToDict(action), ensure_ascii=False)  # a kind this console does not know yet


def reason_words(reason: str, description: str) -> str:
    words = REASONS.get(reason)
    if words and description:
        return f"{words} ({description})"
    return words or description or reason


# --- where a key path is in a document ----------------------------------------------------

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def line_of(text: str, path: str) -> int | None:
    """The line (1-based) of the deepest key of `path` found in the YAML text, or None."""
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    if node is None:
        return None
    line: int | None = node.start_mark.line + 1 if path == "" else None
    for key, index in _STEP.findall(path):
        if key and isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif index and isinstance(node, yaml.SequenceNode) and int(index) < len(node.value):
            node = node.value[int(index)]
            line = node.start_mark.line + 1
        else:
            break
    return line
