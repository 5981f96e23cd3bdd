"""Applies pending play runs against the users service, many runs per call, in event order.

The executor takes the oldest pending runs of the partitions this replica holds (a hash of the
account, runtime/partitions.py), up to a batch, and applies their actions in stages
(domain/run_batch.py): one BatchSetAssignments and one BatchCreateTasks per stage, webhooks
concurrently from a bounded pool. What a batch needs to know is read once: the round robin's
teams and counts, users by email, the holders of copied roles, account states.

Exactly once: every action carries a request_id derived from (run, action), and the users
service answers a repeated one from its record, per row, whatever batch it comes in. Round
robin choices are saved before the first call, so a retry sends the same users. Finished runs
are saved a batch at a time under the partitions' fence: a replica that lost a partition
records nothing, and the new holder repeats the batch with the same request ids.

Order: a run never overtakes an earlier run of its account. The queue is read in event order;
a run backing off (the users service away) holds back its account's later runs; and the
stages keep each account's actions in order.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.rules import metrics
from services.rules.adapters import webhook
from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain.actions import Action, CallWebhook, CreateTask, UpdateValue, UserChoice, describe, from_dicts
from services.rules.domain.events import AccountState
from services.rules.domain.run_batch import Step, StepKind, Turns, stages
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome, retry_delay
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime import tracing
from services.runtime.db import Database, utcnow
from services.runtime.errors import FailedPrecondition
from services.runtime.leases import LeaseLost
from services.runtime.logging import get_logger
from services.runtime.partitions import PartitionLeases
from services.runtime.service_client import TRANSIENT
from steward.users.v1 import assignments_pb2, work_pb2

log = get_logger("steward.rules.executor")
# A business rule said no: the play was right to try, the account just does not qualify.
REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})
REFUSAL_CODES = frozenset(code.value[0] for code in REFUSALS)
# Unexpected errors are retried a few times before the run gives up on the action.
UNEXPECTED = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
MAX_UNEXPECTED_ATTEMPTS = 5
# A batch that failed this many times for a reason other than the users service being away is
# retried a run at a time, so that one run the users service cannot take does not hold the rest.
ISOLATE_AFTER = 2
# What a waiting run's reason is when the users service was merely away (the batch stays whole).
AWAY = frozenset(code.name for code in TRANSIENT)
PLAY_SOURCE = assignments_pb2.ASSIGNMENT_SOURCE_PLAY


class _Refused(Exception):
    def __init__(self, reason: str, description: str, outcome: RunOutcome = RunOutcome.SKIPPED) -> None:
        super().__init__(description)
        self.reason, self.description, self.outcome = reason, description, outcome

    def result(self, index: int) -> ActionResult:
        return ActionResult(index, self.outcome, self.reason, self.description)


class _Wait(Exception):
    """A call of the batch failed in a way worth retrying later: the batch waits."""

    def __init__(self, error: UsersCallError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Context:
    """What the batch's steps need to know, read once before the first call."""

    emails: dict[str, str] = field(default_factory=dict)  # lower-cased email -> users/{uid}
    holders: dict[tuple[str, str], str] = field(default_factory=dict)  # (account, role) -> users/{uid}
    states: dict[str, AccountState] = field(default_factory=dict)
    secrets: dict[str, str | FailedPrecondition] = field(default_factory=dict)
    # (run position, action index) -> its result, when a read for it was refused (a team or a
    # role gone since the play was written).
    refused: dict[tuple[int, int], ActionResult] = field(default_factory=dict)


class RunExecutor:
    def __init__(
        self,
        db: Database,
        directory: UsersClient,
        partitions: PartitionLeases,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        batch: int = 500,
        base_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        idle_seconds: float = 1.0,
        webhook_policy: webhook.WebhookPolicy = webhook.DEFAULT_POLICY,
        webhook_workers: int = 16,
    ) -> None:
        self._db = db
        self._directory = directory
        self._partitions = partitions
        self._clock = clock
        self._batch = batch
        self._base, self._cap = base_backoff_seconds, max_backoff_seconds
        self._idle = idle_seconds
        self._webhook_policy = webhook_policy
        self._webhook_workers = webhook_workers
        self._pool: ThreadPoolExecutor | None = None
        self._actions: dict[tuple[str, int], list[Action]] = {}  # a version's actions never change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        partitions.on_change(self.wake)

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self._webhook_workers, thread_name_prefix="rules-webhook")
        self._thread = threading.Thread(target=self._loop, name="rules-executor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._partitions.wait_owned(self._idle):
                continue  # the other replicas hold every partition (or none is taken yet)
            try:
                busy = self.drain()
            except LeaseLost as lost:
                log.info("executor_partitions_lost", detail=str(lost))
                busy = True  # go on with the partitions still held
            except Exception:  # keep the worker alive; the runs stay pending and are retried
                log.exception("executor_failed")
                busy = False
            if not busy:
                self._wake.wait(self._idle)
                self._wake.clear()

    def drain(self) -> bool:
        """Executes batches of pending runs until none is due; True when it did something."""
        did = False
        while not self._stop.is_set():
            owned = self._partitions.owned
            if not owned:
                return did
            with RulesUnitOfWork(self._db, write=False) as uow:
                runs = uow.runs.next_pending(self._batch, owned, self._partitions.count)
            due = self._due(runs)
            if not due:
                return did
            self._execute(due)
            did = True
        return did

    def _due(self, runs: list[PlayRun]) -> list[PlayRun]:
        """The runs to execute now: not backing off, and not behind a run of their account that is."""
        now = self._clock()
        held_back: set[str] = set()
        due = []
        for run in runs:
            if run.account_id in held_back:
                continue
            if run.next_attempt_time is not None and run.next_attempt_time > now:
                held_back.add(run.account_id)
                continue
            due.append(run)
        if due and due[0].attempts >= ISOLATE_AFTER and due[0].reason not in AWAY:
            return due[:1]
        return due

    def _partitions_of(self, runs: Sequence[PlayRun]) -> set[int]:
        return {self._partitions.partition_of(run.account_id) for run in runs}

    def _save(self, runs: Sequence[PlayRun]) -> None:
        if not runs:
            return
        with RulesUnitOfWork(self._db) as uow:
            self._partitions.fence(uow.session, self._partitions_of(runs))
            uow.runs.save_all(runs)
            uow.commit()

    def _execute(self, runs: list[PlayRun]) -> None:
        with tracing.span("rules.execute_runs", [r.traceparent for r in runs], runs=len(runs)):
            self._execute_traced(runs)

    def _execute_traced(self, runs: list[PlayRun]) -> None:
        steps = []
        for position, run in enumerate(runs):
            done = {r.index for r in run.results}
            actions = self._plan_actions(run)
            steps += [Step(position, i, action, run.account_id) for i, action in enumerate(actions) if i not in done]
        try:
            context = self._prepare(runs, steps)
            for stage in stages(steps):
                self._apply_stage(runs, stage, context)
        except _Wait as wait:
            self._wait(runs, wait.error)
            return
        except UsersCallError as error:  # a read of the batch's context: the same as a call's failure
            self._wait(runs, error)
            return
        now = self._clock()
        for run in runs:
            run.finish(now)
        self._save(runs)
        _count_finished(runs, now)
        log.info("runs_finished", runs=len(runs), first=runs[0].id, last=runs[-1].id)

    def _wait(self, runs: list[PlayRun], error: UsersCallError) -> None:
        """Records what the batch did so far; the runs not done retry later with backoff. A run
        alone that keeps failing for another reason than the users service being away gives up."""
        now = self._clock()
        gives_up = len(runs) == 1 and not error.transient and runs[0].attempts + 1 >= MAX_UNEXPECTED_ATTEMPTS
        for run in runs:
            actions = self._plan_actions(run)
            if gives_up:
                done = {r.index for r in run.results}
                outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
                run.results += [
                    ActionResult(i, outcome, error.reason, error.message) for i in range(len(actions)) if i not in done
                ]
            if len(run.results) == len(actions):
                run.finish(now)  # every action answered before the failing call (or gave up)
                continue
            run.attempts += 1
            run.next_attempt_time = now + retry_delay(run.attempts, self._base, self._cap)
            run.reason, run.description = error.code.name, error.message
        self._save(runs)
        _count_finished([run for run in runs if run.finish_time is not None], now)
        metrics.RUN_WAITS.inc()
        log.warning("runs_waiting", runs=len(runs), attempts=runs[0].attempts, code=error.code.name)

    def _plan_actions(self, run: PlayRun) -> list[Action]:
        key = (run.play_id, run.play_version)
        actions = self._actions.get(key)
        if actions is None:
            actions = self._actions[key] = from_dicts(run.plan["actions"])
        return actions

    # --- reading what the batch needs, once ---

    def _prepare(self, runs: list[PlayRun], steps: list[Step]) -> _Context:
        context = _Context()
        choices = [(step, step.choice) for step in steps if step.choice is not None]
        # Assignments name users by email as they are (the users service resolves them); tasks
        # and round robins need the users' names.
        emails = {c.user for s, c in choices if "@" in c.user and s.kind is StepKind.TASK}
        emails |= {u for _, c in choices for u in c.round_robin_users if "@" in u}
        if emails:
            found = self._directory.users_by_email(sorted(emails))
            context.emails = {email: user.name for email, user in found.items()}
        copied = sorted({(s.account_id, c.holder_of_role) for s, c in choices if c.holder_of_role})
        if copied:
            context.holders = self._directory.holders(copied)
        self._choose_turns(runs, [(s, c) for s, c in choices if c.is_round_robin], context)
        parents = {s.account_id for s in steps if isinstance(s.action, CreateTask) and s.action.on_parent_account}
        hooked = [s for s in steps if s.kind is StepKind.WEBHOOK]
        if parents or hooked:
            with RulesUnitOfWork(self._db, write=False) as uow:
                context.states = uow.accounts.states(parents | {s.account_id for s in hooked})
                for play_id in {runs[s.run].play_id for s in hooked}:
                    try:
                        context.secrets[play_id] = uow.plays.webhook_secret(play_id)
                    except FailedPrecondition as error:  # sealed with a key this replica does not have
                        context.secrets[play_id] = error
        return context

    def _choose_turns(self, runs: list[PlayRun], robins: list[tuple[Step, UserChoice]], context: _Context) -> None:
        """Round robin for the whole batch from counts read once; saved before any call."""
        todo = [(s, c) for s, c in robins if str(s.action_index) not in runs[s.run].choices]
        if not todo:
            return
        members: dict[str, list[str]] = {}
        turns = Turns()
        chosen: dict[int, PlayRun] = {}
        for step, choice in todo:
            role = step.action.role if isinstance(step.action, UpdateValue) else ""
            try:
                if choice.round_robin_team:
                    team = choice.round_robin_team
                    if team not in members:
                        members[team] = self._directory.team_members(team)
                    candidates = members[team]
                else:
                    candidates = [
                        u if "@" not in u else context.emails[u.lower()]
                        for u in choice.round_robin_users
                        if "@" not in u or u.lower() in context.emails
                    ]
                if not candidates:
                    continue  # NO_CANDIDATES when the step is applied
                unknown = [u for u in candidates if not turns.known(role, u)]
                if unknown:
                    turns.load(role, self._directory.assignment_counts(role, unknown), unknown)
            except UsersCallError as error:
                if error.transient or error.code in UNEXPECTED:
                    raise _Wait(error) from error
                outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
                key = (step.run, step.action_index)
                context.refused[key] = ActionResult(step.action_index, outcome, error.reason, error.message)
                continue
            run = runs[step.run]
            run.choices[str(step.action_index)] = turns.choose(role, candidates)
            chosen[step.run] = run
        self._save(list(chosen.values()))  # a retry must send the same users with the same request ids

    # --- applying a stage ---

    def _apply_stage(self, runs: list[PlayRun], stage: list[Step], context: _Context) -> None:
        by_kind: dict[StepKind, list[Step]] = {kind: [] for kind in StepKind}
        for step in stage:
            by_kind[step.kind].append(step)
        isolated = len(runs) == 1
        if by_kind[StepKind.ASSIGN]:
            self._assign(runs, by_kind[StepKind.ASSIGN], context, isolated)
        if by_kind[StepKind.TASK]:
            self._tasks(runs, by_kind[StepKind.TASK], context, isolated)
        if by_kind[StepKind.WEBHOOK]:
            self._webhooks(runs, by_kind[StepKind.WEBHOOK], context)

    def _user_of(self, run: PlayRun, step: Step, context: _Context) -> str:
        choice = step.choice
        assert choice is not None, "webhooks name nobody"
        refused = context.refused.get((step.run, step.action_index))
        if refused is not None:
            raise _Refused(refused.reason, refused.description, refused.outcome)
        if choice.user:
            return choice.user
        if choice.holder_of_role:
            holder = context.holders.get((run.account_id, choice.holder_of_role))
            if not holder:
                raise _Refused("ROLE_HOLDER_MISSING", f"nobody holds {choice.holder_of_role} on {run.account_id}")
            return holder
        chosen = run.choices.get(str(step.action_index))
        if chosen is None:
            raise _Refused("NO_CANDIDATES", "the round robin has nobody to choose from")
        return chosen

    def _call(self, runs: list[PlayRun], steps: list[Step], isolated: bool, send: Callable[[], Any]) -> Any:
        """The batch call; None when it failed for good (each step then has its result)."""
        try:
            return send()
        except UsersCallError as error:
            attempts = runs[0].attempts + 1
            if not isolated or error.transient or (error.code in UNEXPECTED and attempts < MAX_UNEXPECTED_ATTEMPTS):
                raise _Wait(error) from error
            outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
            for step in steps:
                runs[step.run].results.append(ActionResult(step.action_index, outcome, error.reason, error.message))
            return None

    def _assign(self, runs: list[PlayRun], steps: list[Step], context: _Context, isolated: bool) -> None:
        sent: list[Step] = []
        rows: list[assignments_pb2.AssignmentRow] = []
        for step in steps:
            run, action = runs[step.run], step.action
            assert isinstance(action, UpdateValue)
            try:
                user = self._user_of(run, step, context)
            except _Refused as refused:
                run.results.append(refused.result(step.action_index))
                continue
            ref = (
                assignments_pb2.UserRef(user=user) if user.startswith("users/") else assignments_pb2.UserRef(email=user)
            )
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
            sent.append(step)
        if not rows:
            return
        outcomes = self._call(runs, sent, isolated, lambda: self._directory.batch_set(rows))
        if outcomes is None:
            return
        failed = assignments_pb2.AssignmentRowOutcome.RESULT_FAILED
        for step, outcome in zip(sent, outcomes, strict=True):
            run, action = runs[step.run], step.action
            assert isinstance(action, UpdateValue)
            if outcome.result == failed:
                kind = RunOutcome.SKIPPED if outcome.code in REFUSAL_CODES else RunOutcome.FAILED
                run.results.append(ActionResult(step.action_index, kind, outcome.reason, outcome.description))
                continue
            context.holders[(run.account_id, action.role)] = outcome.user
            run.results.append(
                ActionResult(step.action_index, RunOutcome.APPLIED, description=describe(action), target=outcome.user)
            )

    def _tasks(self, runs: list[PlayRun], steps: list[Step], context: _Context, isolated: bool) -> None:
        sent: list[Step] = []
        items: list[work_pb2.CreateTaskRequest] = []
        for step in steps:
            run, action = runs[step.run], step.action
            assert isinstance(action, CreateTask)
            try:
                assignee = self._user_of(run, step, context)
                if "@" in assignee:
                    assignee = context.emails.get(assignee.lower()) or _refuse(
                        "USER_NOT_FOUND", f"no user with email {assignee}"
                    )
                account = self._parent_of(run.account_id, context) if action.on_parent_account else run.account_id
            except _Refused as refused:
                run.results.append(refused.result(step.action_index))
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
            sent.append(step)
        if not items:
            return
        outcomes = self._call(runs, sent, isolated, lambda: self._directory.batch_create_tasks(items))
        if outcomes is None:
            return
        for step, outcome in zip(sent, outcomes, strict=True):
            run, action = runs[step.run], step.action
            assert isinstance(action, CreateTask)
            if not outcome.HasField("task"):
                kind = RunOutcome.SKIPPED if outcome.code in REFUSAL_CODES else RunOutcome.FAILED
                run.results.append(ActionResult(step.action_index, kind, outcome.reason, outcome.description))
                continue
            run.results.append(
                ActionResult(
                    step.action_index, RunOutcome.APPLIED, description=describe(action), target=outcome.task.name
                )
            )

    def _parent_of(self, account_id: str, context: _Context) -> str:
        """The account's immediate parent, as its state knows it when the run executes."""
        state = context.states.get(account_id)
        parent = str(state.attributes.get("parent_account_id", "") or "") if state else ""
        if not parent:
            raise _Refused("NO_PARENT_ACCOUNT", f"{account_id} has no parent_account_id")
        return parent

    def _webhooks(self, runs: list[PlayRun], steps: list[Step], context: _Context) -> None:
        assert self._pool is not None, "started"
        results = self._pool.map(lambda step: self._webhook(runs[step.run], step, context), steps)
        for step, result in zip(steps, results, strict=True):
            runs[step.run].results.append(result)

    def _webhook(self, run: PlayRun, step: Step, context: _Context) -> ActionResult:
        action, index = step.action, step.action_index
        assert isinstance(action, CallWebhook)
        secret = context.secrets[run.play_id]
        if isinstance(secret, FailedPrecondition):
            return ActionResult(index, RunOutcome.FAILED, secret.reason, secret.message, action.url)
        state = context.states.get(run.account_id)
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
            policy=self._webhook_policy,
        )
        metrics.WEBHOOKS.labels("accepted" if delivery.accepted else "failed").inc()
        detail = f"{describe(action)}: {delivery.detail} after {delivery.attempts} attempt(s)"
        if delivery.accepted:
            return ActionResult(index, RunOutcome.APPLIED, description=detail, target=action.url)
        reason = "WEBHOOK_REJECTED" if 400 <= delivery.status < 500 else "WEBHOOK_UNREACHABLE"
        return ActionResult(index, RunOutcome.FAILED, reason, detail, action.url)


def _count_finished(runs: Sequence[PlayRun], now: dt.datetime) -> None:
    for run in runs:
        metrics.RUNS_FINISHED.labels(run.outcome.value).inc()
        metrics.RUN_LAG.observe(max((now - run.create_time).total_seconds(), 0.0))


def _refuse(reason: str, description: str) -> str:
    raise _Refused(reason, description)
