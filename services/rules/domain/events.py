"""Account events as the rules service sees them, and the account state they update.

A play's criteria see the event's attributes merged over the account's last known attributes,
so "segment = Enterprise" matches an ACCOUNT_UPDATED event that only reports a new ARR.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.rules.domain.model import CUSTOM_TYPE, EventType, engine_type
from services.runtime.errors import Violations

MAX_EVENT_ID = 200
MAX_ACCOUNT_ID = 100
MAX_ATTRIBUTES = 500
ROLE_SUFFIX = "___tid"  # the users service exposes each role as attribute <key>___tid


@dataclass(frozen=True)
class AccountEvent:
    event_id: str
    account_id: str
    type: EventType
    custom_type: str
    occurred_at: dt.datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)

    @property
    def engine_type(self) -> str:
        return engine_type(self.type, self.custom_type)


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"billing": {"country": "FR"}} -> {"billing.country": "FR"}; lists stay values."""
    flat: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = _whole(value)
    return flat


def _whole(value: Any) -> Any:
    # protobuf Struct numbers are doubles: 3.0 is the 3 the publisher sent.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def check_event(
    event: AccountEvent, path: str, problems: Violations, *, need_id: bool = True, known_type: bool = True
) -> None:
    """known_type=False: the type itself was refused already; custom_type is not judged against it."""
    if need_id and not 1 <= len(event.event_id) <= MAX_EVENT_ID:
        problems.add(f"{path}.event_id", f"1 to {MAX_EVENT_ID} characters", "EVENT_ID_INVALID")
    if not 1 <= len(event.account_id) <= MAX_ACCOUNT_ID or event.account_id.strip() != event.account_id:
        problems.add(
            f"{path}.account_id", f"1 to {MAX_ACCOUNT_ID} characters, no surrounding spaces", "ACCOUNT_ID_INVALID"
        )
    custom = event.type is EventType.CUSTOM
    if known_type and custom and not CUSTOM_TYPE.match(event.custom_type):
        problems.add(f"{path}.custom_type", "1 to 100 letters, digits, '_', '.' or '-'", "EVENT_TYPE_INVALID")
    elif known_type and not custom and event.custom_type:
        problems.add(f"{path}.custom_type", "only with EVENT_TYPE_CUSTOM", "EVENT_TYPE_INVALID")
    if len(event.attributes) > MAX_ATTRIBUTES:
        problems.add(f"{path}.attributes", f"at most {MAX_ATTRIBUTES} attributes", "ATTRIBUTES_TOO_MANY")


@dataclass(frozen=True)
class Evaluation:
    """What the engine sees of one event: current and previous values, flat."""

    attributes: dict[str, Any]
    previous: dict[str, Any]
    new_state: dict[str, Any]


def evaluation_input(event: AccountEvent, state: Mapping[str, Any]) -> Evaluation:
    reported = flatten(event.attributes)
    current = {**state, **reported, "account_id": event.account_id}
    # "changed from X": what the publisher says it was, else what we knew before this event.
    previous = {name: state[name] for name in reported if name in state}
    previous |= flatten(event.previous)
    if event.type is EventType.ASSIGNMENT_CHANGED:
        # The account keeps only the team ("<role>___tid"), not the change's own fields.
        reported = {name: value for name, value in reported.items() if name.endswith(ROLE_SUFFIX)}
    return Evaluation(current, previous, {**state, **reported})
