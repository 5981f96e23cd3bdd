"""Runs the actions of pending play runs against the users service, in event order.

Each action carries a request_id derived from (run, action), so a retry after a timeout, a
crash or a restart of either service is applied once by the users service. Finished runs are
saved a batch at a time, and a round-robin choice is saved before its call, so a retry repeats
exactly the same requests. While the users service is unreachable the oldest pending run is
retried with backoff and later ones wait behind it: an account's runs apply in order.

Only the replica holding the workers' lease executes, and every save is fenced by it: a
replica that lost the lease mid-batch records nothing, and the new holder repeats the batch
with the same request ids.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import grpc

from services.rules import metrics
from services.rules.adapters import webhook
from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain.actions import Action, CallWebhook, UpdateValue, UserChoice, describe, from_dicts
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome, retry_delay
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database, utcnow
from services.runtime.errors import FailedPrecondition
from services.runtime.leases import LeaseLost, WorkerLease
from services.runtime.logging import get_logger

log = get_logger("steward.rules.executor")
# A business rule said no: the play was right to try, the account just does not qualify.
REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})
# Unexpected errors are retried a few times before the run gives up on the action.
UNEXPECTED = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
MAX_UNEXPECTED_ATTEMPTS = 5


class _Refused(Exception):
    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason, self.description = reason, description


class RunExecutor:
    def __init__(
        self,
        db: Database,
        directory: UsersClient,
        lease: WorkerLease,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        batch: int = 100,
        base_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        idle_seconds: float = 1.0,
        webhook_policy: webhook.WebhookPolicy = webhook.DEFAULT_POLICY,
    ) -> None:
        self._db = db
        self._directory = directory
        self._lease = lease
        self._clock = clock
        self._batch = batch
        self._base, self._cap = base_backoff_seconds, max_backoff_seconds
        self._idle = idle_seconds
        self._webhook_policy = webhook_policy
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rules-executor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._lease.wait_held(self._idle):
                continue  # another replica executes
            try:
                busy = self.drain()
            except LeaseLost:
                log.info("executor_standing_by", reason="another replica took the lease")
                busy = False
            except Exception:  # keep the worker alive; the run stays pending and is retried
                log.exception("executor_failed")
                busy = False
            if not busy:
                self._wake.wait(self._idle)
                self._wake.clear()

    def drain(self) -> bool:
        """Executes pending runs until none is due; True when it did something.

        Finished runs are saved together, one transaction per batch: if the process dies
        before that, the runs are executed again with the same request ids, which the users
        service answers from its record without applying anything twice."""
        did = False
        while not self._stop.is_set():
            with RulesUnitOfWork(self._db, write=False) as uow:
                runs = uow.runs.next_pending(self._batch)
            if not runs:
                return did
            finished: list[PlayRun] = []
            try:
                for run in runs:
                    if run.next_attempt_time is not None and run.next_attempt_time > self._clock():
                        return did  # the oldest run is backing off; later ones keep their order
                    if not self._execute(run):
                        return did
                    finished.append(run)
                    did = True
            finally:
                self._save(*finished)
        return did

    def _save(self, *runs: PlayRun) -> None:
        if not runs:
            return
        with RulesUnitOfWork(self._db) as uow:
            self._lease.fence(uow.session)
            for run in runs:
                uow.runs.save(run)
            uow.commit()
        for run in runs:
            if run.finish_time is not None:
                metrics.RUNS_FINISHED.labels(run.outcome.value).inc()
                metrics.RUN_LAG.observe(max((run.finish_time - run.create_time).total_seconds(), 0.0))

    def _execute(self, run: PlayRun) -> bool:
        """False when the run must wait (the users service is unreachable)."""
        actions = from_dicts(run.plan["actions"])
        done = {r.index for r in run.results}
        for index, action in enumerate(actions):
            if index in done:
                continue
            try:
                result = self._apply(run, index, action)
            except _Refused as refused:
                result = ActionResult(index, RunOutcome.SKIPPED, refused.reason, refused.description)
            except UsersCallError as error:
                if error.transient or (error.code in UNEXPECTED and run.attempts + 1 < MAX_UNEXPECTED_ATTEMPTS):
                    run.attempts += 1
                    run.next_attempt_time = self._clock() + retry_delay(run.attempts, self._base, self._cap)
                    self._save(run)
                    metrics.RUN_WAITS.inc()
                    log.warning("run_waiting", run=run.id, attempts=run.attempts, code=error.code.name)
                    return False
                outcome = RunOutcome.SKIPPED if error.code in REFUSALS else RunOutcome.FAILED
                result = ActionResult(index, outcome, error.reason, error.message)
            run.results.append(result)
        run.finish(self._clock())  # saved by drain() with the rest of its batch
        log.info("run_finished", run=run.id, play=run.play_id, account=run.account_id, outcome=run.outcome.value)
        return True

    def _apply(self, run: PlayRun, index: int, action: Action) -> ActionResult:
        play = f"plays/{run.play_id}"
        if isinstance(action, CallWebhook):
            return self._webhook(run, index, action)
        if isinstance(action, UpdateValue):
            user = self._choose(run, index, action.role, action.value)
            assignment = self._directory.set_assignment(
                run.account_id, action.role, user, play, run.plan["origin_team"], run.request_id(index)
            )
            return ActionResult(index, RunOutcome.APPLIED, description=describe(action), target=assignment.user)
        assignee = self._choose(run, index, "", action.assignee)
        if "@" in assignee:
            assignee = self._by_email(assignee)
        due = None
        if action.due_in_days:
            day = run.create_time.astimezone(dt.UTC).date() + dt.timedelta(days=action.due_in_days)
            due = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        account = self._parent_of(run.account_id) if action.on_parent_account else run.account_id
        task = self._directory.create_task(account, action.title, assignee, due, play, run.request_id(index))
        return ActionResult(index, RunOutcome.APPLIED, description=describe(action), target=task.name)

    def _parent_of(self, account_id: str) -> str:
        """The account's immediate parent, as its state knows it when the run executes."""
        with RulesUnitOfWork(self._db, write=False) as uow:
            state = uow.accounts.states([account_id]).get(account_id)
        parent = str(state.attributes.get("parent_account_id", "") or "") if state else ""
        if not parent:
            raise _Refused("NO_PARENT_ACCOUNT", f"{account_id} has no parent_account_id")
        return parent

    def _webhook(self, run: PlayRun, index: int, action: CallWebhook) -> ActionResult:
        with RulesUnitOfWork(self._db, write=False) as uow:
            try:
                secret = uow.plays.webhook_secret(run.play_id)
            except FailedPrecondition as error:  # sealed with a key this replica does not have
                return ActionResult(index, RunOutcome.FAILED, error.reason, error.message, action.url)
            state = uow.accounts.states([run.account_id]).get(run.account_id)
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

    def _choose(self, run: PlayRun, index: int, role: str, choice: UserChoice) -> str:
        if choice.user:
            return choice.user
        if choice.holder_of_role:
            holder = self._directory.account_team(run.account_id).get(choice.holder_of_role)
            if not holder:
                raise _Refused("ROLE_HOLDER_MISSING", f"nobody holds {choice.holder_of_role} on {run.account_id}")
            return holder
        key = str(index)
        if key not in run.choices:
            run.choices[key] = self._next_in_turn(role, choice)
            self._save(run)  # a retry must send the same user with the same request_id
        return run.choices[key]

    def _next_in_turn(self, role: str, choice: UserChoice) -> str:
        if choice.round_robin_team:
            candidates = self._directory.team_members(choice.round_robin_team)
        else:
            emails = [u for u in choice.round_robin_users if "@" in u]
            found = self._directory.users_by_email(emails) if emails else {}
            candidates = [
                u if "@" not in u else found[u.lower()].name
                for u in choice.round_robin_users
                if "@" not in u or u.lower() in found
            ]
        if not candidates:
            raise _Refused("NO_CANDIDATES", "the round robin has nobody to choose from")
        counts = self._directory.assignment_counts(role, candidates)
        return min(candidates, key=lambda user: (counts.get(user, 0), candidates.index(user)))

    def _by_email(self, email: str) -> str:
        found = self._directory.users_by_email([email]).get(email.lower())
        if found is None:
            raise _Refused("USER_NOT_FOUND", f"no user with email {email}")
        return found.name
