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

from services.rules import metrics
from services.rules.adapters import webhook
from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain.actions import Action, UserChoice, from_dicts, role_set_by
from services.rules.domain.run_batch import Step, Turns, stages
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome, retry_delay
from services.rules.service_layer import action_handlers
from services.rules.service_layer.action_handlers.batch import (
    MAX_UNEXPECTED_ATTEMPTS,
    REFUSALS,
    UNEXPECTED,
    Batch,
    Context,
    Reads,
    Wait,
)
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime import tracing
from services.runtime.db import Database, utcnow
from services.runtime.errors import FailedPrecondition
from services.runtime.leases import LeaseLost
from services.runtime.logging import get_logger
from services.runtime.partitions import PartitionLeases
from services.runtime.service_client import TRANSIENT

log = get_logger("steward.rules.executor")
# A batch that failed this many times for a reason other than the users service being away is
# retried a run at a time, so that one run the users service cannot take does not hold the rest.
ISOLATE_AFTER = 2
# What a waiting run's reason is when the users service was merely away (the batch stays whole).
AWAY = frozenset(code.name for code in TRANSIENT)


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
            assert self._pool is not None, "started"
            batch = Batch(runs, context, self._directory, self._pool, self._webhook_policy)
            for stage in stages(steps):
                action_handlers.apply_stage(batch, stage)
        except Wait as wait:
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

    def _prepare(self, runs: list[PlayRun], steps: list[Step]) -> Context:
        context = Context()
        needs = Reads()
        for step in steps:
            action_handlers.reads(runs[step.run], step, needs)
        choices = [(step, step.choice) for step in steps if step.choice is not None]
        # Round robins choose among users, so emails among their candidates become names.
        needs.emails |= {u for _, c in choices for u in c.round_robin_users if "@" in u}
        if needs.emails:
            found = self._directory.users_by_email(sorted(needs.emails))
            context.emails = {email: user.name for email, user in found.items()}
        copied = sorted({(s.account_id, c.holder_of_role) for s, c in choices if c.holder_of_role})
        if copied:
            context.holders = self._directory.holders(copied)
        self._choose_turns(runs, [(s, c) for s, c in choices if c.is_round_robin], context)
        if needs.states or needs.secrets:
            with RulesUnitOfWork(self._db, write=False) as uow:
                context.states = uow.accounts.states(needs.states)
                for play_id in needs.secrets:
                    try:
                        context.secrets[play_id] = uow.plays.webhook_secret(play_id)
                    except FailedPrecondition as error:  # sealed with a key this replica does not have
                        context.secrets[play_id] = error
        return context

    def _choose_turns(self, runs: list[PlayRun], robins: list[tuple[Step, UserChoice]], context: Context) -> None:
        """Round robin for the whole batch from counts read once; saved before any call."""
        todo = [(s, c) for s, c in robins if str(s.action_index) not in runs[s.run].choices]
        if not todo:
            return
        members: dict[str, list[str]] = {}
        turns = Turns()
        chosen: dict[int, PlayRun] = {}
        for step, choice in todo:
            role = role_set_by(step.action)
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
                    raise Wait(error) from error
                outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
                key = (step.run, step.action_index)
                context.refused[key] = ActionResult(step.action_index, outcome, error.reason, error.message)
                continue
            run = runs[step.run]
            run.choices[str(step.action_index)] = turns.choose(role, candidates)
            chosen[step.run] = run
        self._save(list(chosen.values()))  # a retry must send the same users with the same request ids


def _count_finished(runs: Sequence[PlayRun], now: dt.datetime) -> None:
    for run in runs:
        metrics.RUNS_FINISHED.labels(run.outcome.value).inc()
        metrics.RUN_LAG.observe(max((now - run.create_time).total_seconds(), 0.0))
