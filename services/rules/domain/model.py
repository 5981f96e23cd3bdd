"""A SuccessPlay: a rule owned by a user and run by the engine.

What starts it (its trigger kind):

    EVENT            a recorded event of its type that meets its criteria
    ENTERS_SEGMENT   an account starting to meet its criteria (see segments.py)
    EXITS_SEGMENT    an account ceasing to meet them
    MANUAL           RunPlay, for one account, on demand

Its status:

    DRAFT    saved and validated, never evaluated
    ACTIVE   evaluated against every event recorded after the change committed
    PAUSED   not evaluated; runs it already matched still finish; tasks it created stay open

Any status may change to any other; a change takes effect from the next recorded event. A
segment play that becomes ACTIVE learns which accounts are in its segment then, and runs for
them only if its activation scope says EXISTING_AND_NEW.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.rules.domain import actions as play_actions
from services.rules.domain import criteria as play_criteria
from services.rules.domain.segments import ActivationScope, TriggerKind, Warning_, loop_warnings
from services.runtime.errors import NotFound, Violations
from services.runtime.etag import make_etag
from services.runtime.sealing import is_sealed

CUSTOM_TYPE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")
# What segment plays' criteria are asserted on: an account's state, not an event.
SEGMENT_FACT = "account_state"
MIN_SECRET, MAX_SECRET = 32, 200


class PlayStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"


class EventType(StrEnum):
    ACCOUNT_CREATED = "ACCOUNT_CREATED"
    ACCOUNT_UPDATED = "ACCOUNT_UPDATED"
    LIFECYCLE_STAGE_CHANGED = "LIFECYCLE_STAGE_CHANGED"
    ATTRIBUTE_CHANGED = "ATTRIBUTE_CHANGED"
    ASSIGNMENT_CHANGED = "ASSIGNMENT_CHANGED"
    CUSTOM = "CUSTOM"


def engine_type(event_type: EventType, custom_type: str) -> str:
    """The one string the engine matches a trigger and an event on; custom types cannot
    collide with built-in ones."""
    return f"custom:{custom_type}" if event_type is EventType.CUSTOM else event_type.value


@dataclass(frozen=True)
class Trigger:
    event_type: EventType | None  # EVENT plays only
    custom_event_type: str = ""
    # The authors' form (see criteria.parse); None matches every event of the type.
    criteria: dict[str, Any] | None = None
    kind: TriggerKind = TriggerKind.EVENT
    activation: ActivationScope = ActivationScope.NEW_ONLY


@dataclass
class Play:
    id: str
    display_name: str
    description: str
    owner_id: str
    origin_team: str  # "teams/{uid}" or ""
    status: PlayStatus
    trigger: Trigger
    create_time: dt.datetime
    update_time: dt.datetime
    actions: list[dict[str, Any]] = field(default_factory=list)
    version: int = 1
    # The HMAC key of call_webhook actions; write-only through the API.
    webhook_secret: str = ""
    # Which play's update_value wins when several runs of one event set one role (priority.py).
    priority: int = 0

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)

    @property
    def name(self) -> str:
        return f"plays/{self.id}"

    @property
    def trigger_key(self) -> str:
        if self.trigger.event_type is None:
            return SEGMENT_FACT
        return engine_type(self.trigger.event_type, self.trigger.custom_event_type)

    @property
    def kind(self) -> TriggerKind:
        return self.trigger.kind

    @property
    def is_time_based(self) -> bool:
        return play_criteria.is_time_based(self.parsed_criteria())

    def plan(self) -> dict[str, Any]:
        """What a run needs of this version of the play."""
        return {
            "display_name": self.display_name,
            "actions": self.actions,
            "origin_team": self.origin_team,
            "owner_id": self.owner_id,
        }

    def parsed_criteria(self) -> play_criteria.Criterion | None:
        return None if self.trigger.criteria is None else play_criteria.parse(self.trigger.criteria)

    def parsed_actions(self) -> list[play_actions.Action]:
        return play_actions.from_dicts(self.actions)

    def warnings(self, path: str = "play") -> list[Warning_]:
        problems = Violations()
        criteria = None if self.trigger.criteria is None else play_criteria.parse(self.trigger.criteria, "c", problems)
        actions = play_actions.parse_actions(self.actions, "a", problems)
        return loop_warnings(criteria, actions, path)


def check_definition(play: Play, path: str = "play") -> Violations:
    """Every problem of the play's own definition; references to users, roles and teams are
    checked against the users service by the service layer."""
    problems = Violations()
    if not play.display_name.strip() or len(play.display_name) > 200:
        problems.add(f"{path}.display_name", "1 to 200 characters", "DISPLAY_NAME_INVALID")
    if len(play.description) > 5000:
        problems.add(f"{path}.description", "at most 5000 characters", "DESCRIPTION_INVALID")
    trigger = play.trigger
    _check_trigger_kind(trigger, f"{path}.trigger", problems)
    if trigger.event_type is EventType.CUSTOM and not CUSTOM_TYPE.match(trigger.custom_event_type):
        problems.add(
            f"{path}.trigger.custom_event_type", "1 to 100 letters, digits, '_', '.' or '-'", "EVENT_TYPE_INVALID"
        )
    elif trigger.event_type is not EventType.CUSTOM and trigger.custom_event_type:
        problems.add(f"{path}.trigger.custom_event_type", "only with EVENT_TYPE_CUSTOM", "EVENT_TYPE_INVALID")
    if trigger.criteria is not None:
        play_criteria.parse(trigger.criteria, f"{path}.trigger.criteria", problems)
    parsed = play_actions.parse_actions(play.actions, f"{path}.actions", problems)
    if any(play_actions.role_set_by(a) for a in parsed.values()) and not play.origin_team:
        problems.add(f"{path}.origin_team", "a play that sets roles needs its origin team", "ORIGIN_TEAM_REQUIRED")
    if play.origin_team and not play.origin_team.startswith("teams/"):
        problems.add(f"{path}.origin_team", "a team name, teams/{uid}", "TEAM_INVALID")
    webhooks = any(isinstance(a, dict) and play_actions.call_webhook.KEY in a for a in play.actions)  # valid or not
    # A key as stored (sealed) was checked when it was set.
    stored = is_sealed(play.webhook_secret)
    if webhooks and not stored and not MIN_SECRET <= len(play.webhook_secret) <= MAX_SECRET:
        problems.add(
            f"{path}.webhook_secret",
            f"call_webhook actions sign with it: {MIN_SECRET} to {MAX_SECRET} characters",
            "WEBHOOK_SECRET_REQUIRED",
        )
    return problems


def _check_trigger_kind(trigger: Trigger, path: str, problems: Violations) -> None:
    if trigger.kind is TriggerKind.EVENT:
        if trigger.event_type is None:
            problems.add(f"{path}.event_type", "an event play names its event type", "EVENT_TYPE_REQUIRED")
        return
    if trigger.event_type is not None or trigger.custom_event_type:
        problems.add(f"{path}.event_type", f"only with kind EVENT, not {trigger.kind.value}", "EVENT_TYPE_INVALID")
    if trigger.kind.is_segment and trigger.criteria is None:
        problems.add(f"{path}.criteria", "a segment play's criteria define its segment", "CRITERIA_REQUIRED")
    if trigger.kind is TriggerKind.MANUAL and trigger.criteria is not None:
        problems.add(f"{path}.criteria", "a manual play runs for the account it is asked for", "CRITERIA_INVALID")


def play_not_found(play_id: str) -> NotFound:
    return NotFound("PLAY_NOT_FOUND", f"no play plays/{play_id}", metadata={"play": f"plays/{play_id}"})
