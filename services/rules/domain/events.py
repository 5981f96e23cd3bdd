"""Account events as the rules service sees them, and the account state they update.

A play's criteria see the event's attributes merged over the account's last known attributes,
so "segment = Enterprise" matches an ACCOUNT_UPDATED event that only reports a new ARR.

Each attribute of the state remembers when its value occurred: an event that occurred before
that (delivered late, or replayed) does not roll the attribute back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.rules.domain.criteria import ROLE_SUFFIX
from services.rules.domain.model import CUSTOM_TYPE, EventType, engine_type
from services.runtime.errors import Violations

MAX_EVENT_ID = 200
MAX_ACCOUNT_ID = 100
MAX_ATTRIBUTES = 500


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


@dataclass
class AccountState:
    """An account's last known attributes (flat), and when each value occurred (ISO 8601)."""

    attributes: dict[str, Any] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)
    update_time: dt.datetime | None = None
    # When time alone may next change its time-based segments (epoch seconds); None: never.
    next_time_check: float | None = None

    def view(self, account_id: str) -> dict[str, Any]:
        """What segment criteria see: the attributes, and the account's own id."""
        return {**self.attributes, "account_id": account_id}


def moment(when: dt.datetime) -> str:
    """Comparable as text: always UTC, always with microseconds."""
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Evaluation:
    """What the engine sees of one event: current and previous values, flat."""

    attributes: dict[str, Any]
    previous: dict[str, Any]
    new_state: AccountState


def evaluation_input(event: AccountEvent, state: AccountState | None) -> Evaluation:
    known = state or AccountState()
    when = moment(event.occurred_at)
    # A value that occurred after this event stays: the event is older news.
    told = flatten(event.attributes)
    reported = {name: value for name, value in told.items() if not (name in known.times and known.times[name] > when)}
    stale = told.keys() - reported.keys()
    current = {**known.attributes, **reported, "account_id": event.account_id}
    # "changed from X": what the publisher says it was, else what we knew before this event.
    previous = {name: known.attributes[name] for name in reported if name in known.attributes}
    # The publisher's "before" of an attribute whose news is stale is staler still.
    previous |= {name: value for name, value in flatten(event.previous).items() if name not in stale}
    attributes = {**known.attributes, **reported}
    if event.type is EventType.ASSIGNMENT_CHANGED:
        # The account keeps only the team ("<role>___tid"), not the change's own fields; a
        # cleared role leaves the team, so that "exists" and "not exists" see it gone.
        reported = {name: value for name, value in reported.items() if name.endswith(ROLE_SUFFIX)}
        attributes = {**known.attributes, **reported}
        for name, value in reported.items():
            if value == "":
                attributes.pop(name, None)
                current.pop(name, None)
    new_state = AccountState(attributes, {**known.times, **dict.fromkeys(reported, when)}, known.update_time)
    return Evaluation(current, previous, new_state)
