"""Executes create_task: one BatchCreateTasks item per action, a stage's items in one call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from services.rules.domain.actions.create_task import CreateTask, describe
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.rules.service_layer.action_handlers.batch import REFUSAL_CODES, Batch, Reads, Refused, refuse
from steward.users.v1 import work_pb2


def reads(run: PlayRun, action: CreateTask, needs: Reads) -> None:
    """A task names its assignee as users/{uid}; its parent account is in the account's state."""
    if "@" in action.assignee.user:
        needs.emails.add(action.assignee.user)
    if action.on_parent_account:
        needs.states.add(run.account_id)


def apply(batch: Batch, steps: Sequence[tuple[Step, CreateTask]]) -> None:
    sent: list[tuple[Step, CreateTask]] = []
    items: list[work_pb2.CreateTaskRequest] = []
    for step, action in steps:
        run = batch.runs[step.run]
        try:
            assignee = batch.user_of(step, action.assignee)
            if "@" in assignee:
                assignee = batch.context.emails.get(assignee.lower()) or refuse(
                    "USER_NOT_FOUND", f"no user with email {assignee}"
                )
            account = _parent_of(batch, run.account_id) if action.on_parent_account else run.account_id
        except Refused as refused:
            batch.record(step, refused.result(step.action_index))
            continue
        task = work_pb2.Task(account_id=account, title=action.title, assignee=assignee)
        if action.due_in_days:
            day = run.create_time.astimezone(dt.UTC).date() + dt.timedelta(days=action.due_in_days)
            due = Timestamp()
            due.FromDatetime(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
            task.due_time.CopyFrom(due)
        items.append(
            work_pb2.CreateTaskRequest(
                task=task, created_by_play=f"plays/{run.play_id}", request_id=run.request_id(step.action_index)
            )
        )
        sent.append((step, action))
    if not items:
        return
    outcomes = batch.call([s for s, _ in sent], lambda: batch.directory.batch_create_tasks(items))
    if outcomes is None:
        return
    for (step, action), outcome in zip(sent, outcomes, strict=True):
        if not outcome.HasField("task"):
            kind = RunOutcome.SKIPPED if outcome.code in REFUSAL_CODES else RunOutcome.FAILED
            batch.record(step, ActionResult(step.action_index, kind, outcome.reason, outcome.description))
            continue
        batch.record(
            step,
            ActionResult(step.action_index, RunOutcome.APPLIED, description=describe(action), target=outcome.task.name),
        )


def _parent_of(batch: Batch, account_id: str) -> str:
    """The account's immediate parent, as its state knows it when the run executes."""
    state = batch.context.states.get(account_id)
    parent = str(state.attributes.get("parent_account_id", "") or "") if state else ""
    if not parent:
        raise Refused("NO_PARENT_ACCOUNT", f"{account_id} has no parent_account_id")
    return parent
