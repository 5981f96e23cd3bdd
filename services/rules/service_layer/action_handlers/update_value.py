"""Executes update_value: one BatchSetAssignments row per action, a stage's rows in one call."""

from __future__ import annotations

from collections.abc import Sequence

from services.rules.domain.actions.update_value import UpdateValue, describe
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.rules.service_layer.action_handlers.batch import REFUSAL_CODES, Batch, Reads, Refused
from steward.users.v1 import assignments_pb2

PLAY_SOURCE = assignments_pb2.ASSIGNMENT_SOURCE_PLAY
FAILED = assignments_pb2.AssignmentRowOutcome.RESULT_FAILED


def reads(run: PlayRun, action: UpdateValue, needs: Reads) -> None:
    """Nothing beyond its choice: the users service resolves an email itself."""


def apply(batch: Batch, steps: Sequence[tuple[Step, UpdateValue]]) -> None:
    sent: list[tuple[Step, UpdateValue]] = []
    rows: list[assignments_pb2.AssignmentRow] = []
    for step, action in steps:
        run = batch.runs[step.run]
        try:
            user = batch.user_of(step, action.value)
        except Refused as refused:
            batch.record(step, refused.result(step.action_index))
            continue
        ref = assignments_pb2.UserRef(user=user) if user.startswith("users/") else assignments_pb2.UserRef(email=user)
        source = assignments_pb2.WriteSource(
            source=PLAY_SOURCE, source_ref=f"plays/{run.play_id}", play_team=run.plan["origin_team"]
        )
        rows.append(
            assignments_pb2.AssignmentRow(
                account_id=run.account_id,
                role=action.role,
                user=ref,
                source=source,
                request_id=run.request_id(step.action_index),
            )
        )
        sent.append((step, action))
    if not rows:
        return
    outcomes = batch.call([s for s, _ in sent], lambda: batch.directory.batch_set(rows))
    if outcomes is None:
        return
    for (step, action), outcome in zip(sent, outcomes, strict=True):
        if outcome.result == FAILED:
            kind = RunOutcome.SKIPPED if outcome.code in REFUSAL_CODES else RunOutcome.FAILED
            batch.record(step, ActionResult(step.action_index, kind, outcome.reason, outcome.description))
            continue
        # Later stages that copy this role's holder see who it is now.
        batch.context.holders[(batch.runs[step.run].account_id, action.role)] = outcome.user
        batch.record(
            step, ActionResult(step.action_index, RunOutcome.APPLIED, description=describe(action), target=outcome.user)
        )
