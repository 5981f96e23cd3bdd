"""What the action handlers share while they apply one batch of runs: the runs, what was read
for them before the first call, the users service, and how a call's failure becomes results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc

from services.rules.adapters import webhook
from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain.actions import UserChoice
from services.rules.domain.events import AccountState
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.runtime.errors import FailedPrecondition

# A business rule said no: the play was right to try, the account just does not qualify.
REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})
REFUSAL_CODES = frozenset(code.value[0] for code in REFUSALS)
# Unexpected errors are retried a few times before the run gives up on the action.
UNEXPECTED = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
MAX_UNEXPECTED_ATTEMPTS = 5


class Refused(Exception):
    def __init__(self, reason: str, description: str, outcome: RunOutcome = RunOutcome.SKIPPED) -> None:
        super().__init__(description)
        self.reason, self.description, self.outcome = reason, description, outcome

    def result(self, index: int) -> ActionResult:
        return ActionResult(index, self.outcome, self.reason, self.description)


def refuse(reason: str, description: str) -> str:
    raise Refused(reason, description)


class Wait(Exception):
    """A call of the batch failed in a way worth retrying later: the batch waits."""

    def __init__(self, error: UsersCallError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Reads:
    """What the handlers ask to be read once before the batch's first call, besides what their
    user choices need (the executor reads that for every kind)."""

    emails: set[str] = field(default_factory=set)  # to resolve to users/{uid}
    states: set[str] = field(default_factory=set)  # account ids
    secrets: set[str] = field(default_factory=set)  # play ids whose webhook secret is needed


@dataclass
class Context:
    """What the batch's steps need to know, read once before the first call."""

    emails: dict[str, str] = field(default_factory=dict)  # lower-cased email -> users/{uid}
    holders: dict[tuple[str, str], str] = field(default_factory=dict)  # (account, role) -> users/{uid}
    states: dict[str, AccountState] = field(default_factory=dict)
    secrets: dict[str, str | FailedPrecondition] = field(default_factory=dict)
    # (run position, action index) -> its result, when a read for it was refused (a team or a
    # role gone since the play was written).
    refused: dict[tuple[int, int], ActionResult] = field(default_factory=dict)


@dataclass
class Batch:
    runs: list[PlayRun]
    context: Context
    directory: UsersClient
    pool: ThreadPoolExecutor  # webhook deliveries
    webhook_policy: webhook.WebhookPolicy

    @property
    def isolated(self) -> bool:
        """A run alone: a call that keeps failing ends its actions instead of holding a batch."""
        return len(self.runs) == 1

    def record(self, step: Step, result: ActionResult) -> None:
        self.runs[step.run].results.append(result)

    def user_of(self, step: Step, choice: UserChoice) -> str:
        """The user the step's choice names now (users/{uid} or an email); Refused if none."""
        run = self.runs[step.run]
        refused = self.context.refused.get((step.run, step.action_index))
        if refused is not None:
            raise Refused(refused.reason, refused.description, refused.outcome)
        if choice.user:
            return choice.user
        if choice.holder_of_role:
            holder = self.context.holders.get((run.account_id, choice.holder_of_role))
            if not holder:
                raise Refused("ROLE_HOLDER_MISSING", f"nobody holds {choice.holder_of_role} on {run.account_id}")
            return holder
        chosen = run.choices.get(str(step.action_index))
        if chosen is None:
            raise Refused("NO_CANDIDATES", "the round robin has nobody to choose from")
        return chosen

    def call(self, steps: Sequence[Step], send: Callable[[], Any]) -> Any:
        """The batch call; None when it failed for good (each step then has its result)."""
        try:
            return send()
        except UsersCallError as error:
            attempts = self.runs[0].attempts + 1
            if (
                not self.isolated
                or error.transient
                or (error.code in UNEXPECTED and attempts < MAX_UNEXPECTED_ATTEMPTS)
            ):
                raise Wait(error) from error
            outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
            for step in steps:
                self.record(step, ActionResult(step.action_index, outcome, error.reason, error.message))
            return None
