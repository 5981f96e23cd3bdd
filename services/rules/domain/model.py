"""A SuccessPlay: an event-triggered rule owned by a user and run by the engine."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import NotFound
from services.runtime.etag import make_etag


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


@dataclass(frozen=True)
class Trigger:
    event_type: EventType
    custom_event_type: str = ""


@dataclass
class Play:
    id: str
    display_name: str
    description: str
    owner_id: str
    origin_team: str
    status: PlayStatus
    trigger: Trigger
    create_time: dt.datetime
    update_time: dt.datetime
    version: int = 1

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)


def play_not_found(play_id: str) -> NotFound:
    return NotFound("PLAY_NOT_FOUND", f"no play plays/{play_id}", metadata={"play": f"plays/{play_id}"})
