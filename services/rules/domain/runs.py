"""Play runs: one per (event, play) match, with the outcome of each of its actions.

    PENDING   matched; actions run in the background, retried while the users service is away
    APPLIED   every action took effect
    SKIPPED   a business rule refused an action (the user is not in the play's origin team,
              nobody holds the role to copy...), with its reason
    FAILED    a permanent error, with its reason

A run's outcome is the worst of its actions' outcomes; an action that is skipped or fails does
not stop the ones after it (they are independent steps, like the product's play actions).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunOutcome(StrEnum):
    PENDING = "PENDING"
    APPLIED = "APPLIED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"


SEVERITY = {RunOutcome.APPLIED: 0, RunOutcome.SKIPPED: 1, RunOutcome.FAILED: 2}
RUN_NAMESPACE = uuid.UUID("5b7c2f0e-8d43-4a8e-9f61-2d0c9a51c3a7")


@dataclass
class ActionResult:
    index: int
    outcome: RunOutcome
    reason: str = ""
    description: str = ""
    target: str = ""


@dataclass
class PlayRun:
    id: str
    play_id: str
    play_version: int
    event_seq: int
    event_id: str
    account_id: str
    # The play as it matched: actions, origin team and owner (so edits do not change a run).
    plan: dict[str, Any]
    create_time: dt.datetime
    outcome: RunOutcome = RunOutcome.PENDING
    reason: str = ""
    description: str = ""
    results: list[ActionResult] = field(default_factory=list)
    # Choices made before an action was sent (round robin), reused on every retry.
    choices: dict[str, str] = field(default_factory=dict)
    # Failed attempts while the users service was away or erring; reason/description say why.
    attempts: int = 0
    next_attempt_time: dt.datetime | None = None
    finish_time: dt.datetime | None = None
    # W3C traceparent of the call that recorded the run: its execution continues that trace.
    traceparent: str = ""

    def finish(self, now: dt.datetime) -> None:
        worst = max(self.results, key=lambda r: SEVERITY[r.outcome], default=None)
        self.outcome = RunOutcome.APPLIED if worst is None else worst.outcome
        # While pending, reason and description said why the run was waiting.
        self.reason, self.description = "", ""
        if worst is not None and worst.outcome is not RunOutcome.APPLIED:
            self.reason, self.description = worst.reason, worst.description
        self.finish_time = now
        self.next_attempt_time = None

    def request_id(self, action_index: int) -> str:
        """Stable across retries and replicas, so the users service applies each action once."""
        return str(uuid.uuid5(RUN_NAMESPACE, f"{self.id}/{action_index}"))


def new_run_id() -> str:
    """Random: an event is evaluated once (its id is unique and its runs are stored in the same
    transaction), so nothing needs to derive a run's id again; uuid5 cost ~14 us a run."""
    return str(uuid.uuid4())


def retry_delay(attempts: int, base_seconds: float, cap_seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), cap_seconds))
