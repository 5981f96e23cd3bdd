"""The executor's handler of each action kind, one module per kind named as the kind's module in
domain/actions/: what it needs read before a batch's first call (`reads`) and how it applies a
stage's steps of its kind (`apply`, one call per kind and stage). This module routes steps to
them; each route is a `match` ending in `assert_never`, so mypy fails when a kind has no handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from services.rules.domain.actions import CallWebhook, CreateTask, UpdateValue
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import PlayRun
from services.rules.service_layer.action_handlers import call_webhook, create_task, update_value
from services.rules.service_layer.action_handlers.batch import Batch, Reads


def reads(run: PlayRun, step: Step, needs: Reads) -> None:
    action = step.action
    match action:
        case UpdateValue():
            update_value.reads(run, action, needs)
        case CreateTask():
            create_task.reads(run, action, needs)
        case CallWebhook():
            call_webhook.reads(run, action, needs)
        case _:
            assert_never(action)


def apply_stage(batch: Batch, stage: Sequence[Step]) -> None:
    """Each kind's steps of the stage go to its handler together. An account has one kind per
    stage (run_batch.stages), so the order between the kinds changes nothing."""
    assignments: list[tuple[Step, UpdateValue]] = []
    tasks: list[tuple[Step, CreateTask]] = []
    hooks: list[tuple[Step, CallWebhook]] = []
    for step in stage:
        action = step.action
        match action:
            case UpdateValue():
                assignments.append((step, action))
            case CreateTask():
                tasks.append((step, action))
            case CallWebhook():
                hooks.append((step, action))
            case _:
                assert_never(action)
    if assignments:
        update_value.apply(batch, assignments)
    if tasks:
        create_task.apply(batch, tasks)
    if hooks:
        call_webhook.apply(batch, hooks)
