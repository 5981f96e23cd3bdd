"""A sample account event written as JSON, for TestPlay (`steward plays test`, the console's Test
page): the keys of steward.rules.v1.AccountEvent an author needs, with event types written as in
play files (account_created, ..., or custom with custom_type).

    {"account_id": "acct-1", "type": "account_created",
     "attributes": {"segment": "Enterprise"}, "previous": {"segment": "SMB"}}

Pure: problems come back as (key, description, reason); whether the values make sense is the
server's to say.
"""

from __future__ import annotations

import json
from typing import Any

from services.cli.play_files import EVENTS
from steward.rules.v1 import events_pb2

EVENT_KEYS = ("account_id", "type", "custom_type", "event_id", "attributes", "previous")
TEXT_KEYS = ("account_id", "type", "custom_type", "event_id")
MAX_CHARACTERS = 100_000
Issue = tuple[str, str, str]


def event_from_json(text: str) -> tuple[events_pb2.AccountEvent, list[Issue]]:
    """The event the JSON text describes, and what is wrong with it (the event is only
    meaningful when nothing is)."""
    event = events_pb2.AccountEvent()
    if not text.strip():
        return event, [("", "write the sample event as JSON", "REQUIRED")]
    if len(text) > MAX_CHARACTERS:
        return event, [("", f"too long: at most {MAX_CHARACTERS:,} characters", "TOO_LONG")]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        return event, [("", f"not JSON: line {error.lineno}, column {error.colno}: {error.msg}", "JSON_INVALID")]
    return event_from_data(data)


def event_from_data(data: Any) -> tuple[events_pb2.AccountEvent, list[Issue]]:
    event = events_pb2.AccountEvent()
    if not isinstance(data, dict):
        return event, [("", 'a JSON object, e.g. {"account_id": "acct-1", "type": "account_created"}', "TYPE_INVALID")]
    issues: list[Issue] = [
        (str(key), f"unknown key; use {', '.join(EVENT_KEYS)}", "UNKNOWN_KEY") for key in data if key not in EVENT_KEYS
    ]
    issues += [(key, "must be text (in quotes)", "TYPE_INVALID") for key in TEXT_KEYS if _not_text(data, key)]
    account = data.get("account_id")
    if isinstance(account, str) and account.strip():
        event.account_id = account.strip()
    elif "account_id" not in data or isinstance(account, str):
        issues.append(("account_id", "required: the account the event is about", "REQUIRED"))
    kind = data.get("type")
    custom = data.get("custom_type")
    if isinstance(custom, str):
        event.custom_type = custom.strip()
    if isinstance(kind, str) and kind.strip():
        key = kind.strip().lower().removeprefix("event_type_")
        if key == "custom":
            event.type = events_pb2.EVENT_TYPE_CUSTOM
        elif key in EVENTS:
            event.type = EVENTS[key]  # type: ignore[assignment]
        else:
            issues.append(("type", f"unknown event type; use one of {', '.join(EVENTS)} or custom", "ENUM_INVALID"))
    elif event.custom_type:
        event.type = events_pb2.EVENT_TYPE_CUSTOM
    elif kind is None or isinstance(kind, str):
        issues.append(("type", f"required: one of {', '.join(EVENTS)} or custom", "REQUIRED"))
    if isinstance(data.get("event_id"), str):
        event.event_id = data["event_id"].strip()
    for key in ("attributes", "previous"):
        if key not in data:
            continue
        if isinstance(data[key], dict):
            getattr(event, key).update(data[key])
        else:
            issues.append((key, "a JSON object of attribute names to values", "TYPE_INVALID"))
    return event, issues


def _not_text(data: dict[str, Any], key: str) -> bool:
    return key in data and not isinstance(data[key], str)
