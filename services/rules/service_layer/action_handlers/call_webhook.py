"""Executes call_webhook: a stage's deliveries run concurrently from the batch's pool."""

from __future__ import annotations

from collections.abc import Sequence

from services.rules import metrics
from services.rules.adapters import webhook
from services.rules.domain.actions.call_webhook import CallWebhook, describe
from services.rules.domain.run_batch import Step
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.rules.service_layer.action_handlers.batch import Batch, Reads
from services.runtime.errors import FailedPrecondition


def reads(run: PlayRun, action: CallWebhook, needs: Reads) -> None:
    """The body carries the account's attributes; the play's secret signs it."""
    needs.states.add(run.account_id)
    needs.secrets.add(run.play_id)


def apply(batch: Batch, steps: Sequence[tuple[Step, CallWebhook]]) -> None:
    results = batch.pool.map(lambda pair: _deliver(batch, *pair), steps)
    for (step, _), result in zip(steps, results, strict=True):
        batch.record(step, result)


def _deliver(batch: Batch, step: Step, action: CallWebhook) -> ActionResult:
    run, index = batch.runs[step.run], step.action_index
    secret = batch.context.secrets[run.play_id]
    if isinstance(secret, FailedPrecondition):
        return ActionResult(index, RunOutcome.FAILED, secret.reason, secret.message, action.url)
    state = batch.context.states.get(run.account_id)
    payload = {
        "play": f"plays/{run.play_id}",
        "play_version": run.play_version,
        "run": f"plays/{run.play_id}/runs/{run.id}",
        "account_id": run.account_id,
        "event_id": run.event_id,
        "attributes": state.attributes if state else {},
    }
    delivery = webhook.deliver(
        action.url,
        payload,
        secret,
        run.request_id(index),  # stable across attempts, restarts and replicas
        timeout_seconds=action.timeout_seconds,
        policy=batch.webhook_policy,
    )
    metrics.WEBHOOKS.labels("accepted" if delivery.accepted else "failed").inc()
    detail = f"{describe(action)}: {delivery.detail} after {delivery.attempts} attempt(s)"
    if delivery.accepted:
        return ActionResult(index, RunOutcome.APPLIED, description=detail, target=action.url)
    reason = "WEBHOOK_REJECTED" if 400 <= delivery.status < 500 else "WEBHOOK_UNREACHABLE"
    return ActionResult(index, RunOutcome.FAILED, reason, detail, action.url)
