"""Runs connector jobs: read the source, write account teams through the users service, keep the record.

One run per job at a time, across replicas: a lease on the job row, renewed while the run makes
progress; a replica that dies lets its lease expire, and the next run takes over (marking the
dead one FAILED/INTERRUPTED). Each account and role gets one user however many rows name one
(row_checks.settle), so a pair is written only once all its rows are read: a read that comes
account by account (Reader.groups_accounts) writes each account as soon as the next begins, in batches of 10,000
rows sent on a thread of their own while reading goes on (_Pipeline); other reads (incremental,
one pinned account) settle everything first. Only rows that change a holder are sent: the
batch's current holders are read in bulk (BatchGetAssignments) and a row naming the holder
already counts as unchanged. Each batch has a request id derived from (run, batch), so a
retried batch is applied once. The watermark moves only with a successful run: a failed or
interrupted run leaves it, and the next run reads again.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from services.runtime import tracing
from services.runtime.db import Database, utcnow
from services.runtime.errors import Aborted, DomainError, FailedPrecondition
from services.runtime.logging import get_logger
from services.runtime.service_client import ServiceCallError
from services.runtime.users_client import BATCH_ROWS
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.connectors.port import ConnectorError, RowSettings, mapped
from services.sync.connectors.registry import Connectors
from services.sync.domain.connection import Connection, connection_not_found
from services.sync.domain.model import Job, JobType, Removals, job_not_found
from services.sync.domain.rows import AccountRow, OneUserPerRole
from services.sync.domain.runs import Run, RunError, RunMode, RunState
from services.sync.service_layer.records import count_outcome, finish_run
from services.sync.service_layer.row_checks import CHECK_ROWS, RowChecker, settle
from services.sync.unit_of_work import SyncUnitOfWork
from steward.users.v1 import assignments_pb2

log = get_logger("steward.sync.runner")
RUN_IDS = uuid.UUID("9f3c1e52-6a7b-4d8e-b1f0-2c4a5d6e7f81")


class LeaseLost(Exception):
    """Another replica took the job over (this one stalled past its lease)."""


@dataclass
class _Progress:
    """What a run accumulates between two saves."""

    errors: list[RunError] = field(default_factory=list)
    newest: dt.datetime | None = None
    # Batches written so far: numbers each batch's request id (rows skipped at mapping make
    # rows_read useless for that: two batches could share a number, and so a request id).
    batches: int = 0
    # (account, role, "users/{uid}") the run confirmed: what MIRROR must not remove.
    current: set[tuple[str, str, str]] = field(default_factory=set)
    # Did the job hold any assignment when the run began? If not, whatever it holds at the end
    # this run wrote, so nothing can be stale: no scan, and `current` need not be kept.
    held_before: bool = True


@dataclass(frozen=True)
class _Batch:
    number: int
    rows: list[AccountRow]
    # "users/{uid}" each row names, where the run knows it (rows naming a user by email)
    users: list[str | None]


@dataclass(frozen=True)
class _Sent:
    batch: _Batch
    changing: list[int]  # the rows that went to the users service
    reply: assignments_pb2.BatchSetAssignmentsResponse | None


class _Pipeline:
    """Writes settled rows in batches of BATCH_ROWS on a thread of its own while the run goes on
    reading: at most IN_FLIGHT batches are on their way, so memory stays bounded by the batches
    and the settlement state. Their outcomes are counted on the run's thread, in batch order."""

    IN_FLIGHT = 2

    def __init__(self, runner: JobRunner, run: Run, job: Job, progress: _Progress, checker: RowChecker) -> None:
        self._runner, self._run, self._job, self._progress, self._checker = runner, run, job, progress, checker
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sync-write-{run.id[:8]}")
        self._in_flight: deque[Future[_Sent]] = deque()
        self._pending: list[AccountRow] = []

    def __enter__(self) -> _Pipeline:
        return self

    def add(self, rows: list[AccountRow]) -> None:
        self._pending.extend(rows)
        while len(self._pending) >= BATCH_ROWS:
            self._submit(self._pending[:BATCH_ROWS])
            del self._pending[:BATCH_ROWS]
        while self._in_flight and self._in_flight[0].done():  # counted as soon as written
            self._runner._record(self._run, self._progress, self._in_flight.popleft().result())

    def _submit(self, rows: list[AccountRow]) -> None:
        while len(self._in_flight) >= self.IN_FLIGHT:
            self._runner._record(self._run, self._progress, self._in_flight.popleft().result())
        batch = _Batch(self._progress.batches, rows, [self._checker.user_name(r) for r in rows])
        self._progress.batches += 1
        # The writer thread works in the run's trace: a context copy carries the current span.
        context = contextvars.copy_context()
        self._in_flight.append(self._pool.submit(context.run, self._runner._send, self._run, self._job, batch))

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                if self._pending:
                    self._submit(self._pending)
                    self._pending = []
                while self._in_flight:
                    self._runner._record(self._run, self._progress, self._in_flight.popleft().result())
        finally:
            # On failure, batches not started are dropped; one already sent finishes first.
            self._pool.shutdown(wait=True, cancel_futures=True)


class JobRunner:
    def __init__(
        self,
        db: Database,
        users: SyncUsersClient,
        connectors: Connectors,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        lease_seconds: float = 60.0,
    ) -> None:
        self._db = db
        self._users = users
        self._connectors = connectors
        self._clock = clock
        self._lease = dt.timedelta(seconds=lease_seconds)
        self._threads: list[threading.Thread] = []

    def start(self, job_id: str, mode: RunMode, started_by: str, request_id: str = "") -> Run:
        """Takes the job's lease and starts the run in the background; an equal request_id
        finds the run it started before."""
        return self.start_run(job_id, mode, started_by, request_id)[0]

    def start_run(self, job_id: str, mode: RunMode, started_by: str, request_id: str = "") -> tuple[Run, bool]:
        """start(), also saying whether this call created the run."""
        run_id = str(uuid.uuid5(RUN_IDS, f"{job_id}/{request_id}")) if request_id else str(uuid.uuid4())
        now = self._clock()
        with SyncUnitOfWork(self._db) as uow:
            earlier = uow.runs.get(run_id)
            if earlier is not None:
                if self._reap_if_dead(uow, earlier, now):
                    uow.commit()
                return earlier, False
            job = uow.jobs.get(job_id)
            if job is None:
                raise job_not_found(job_id)
            if job.type is not JobType.CONNECTOR or job.settings is None or not job.connection_id:
                raise FailedPrecondition("JOB_NOT_RUNNABLE", "only connector jobs with a connection run here")
            self._connectors.get(job.connector)  # one this replica cannot read must not take the lease
            taken = uow.jobs.take_lease(job_id, run_id, now, now + self._lease)
            if taken is None:
                raise Aborted(
                    "RUN_IN_PROGRESS",
                    f"{job.name} is already running; follow that run or retry later",
                    metadata={"run": f"{job.name}/runs/{uow.jobs.running(job_id, now)}"},
                )
            # On PostgreSQL a caller with the same run id may have committed it while this one
            # waited on the job row's lock: the lease is "ours" then, and so is the run.
            earlier = uow.runs.get(run_id)
            if earlier is not None:
                return earlier, False
            if taken:
                self._interrupted(uow, taken, now)
            run = Run(
                run_id,
                job_id,
                mode,
                RunState.RUNNING,
                now,
                started_by,
                watermark_before=job.watermark,
            )
            uow.runs.put(run)
            uow.commit()
        # The run goes on in a thread of its own, in the trace of the RunJob call (or of the
        # schedule's slot) that started it.
        thread = threading.Thread(
            target=self._run, args=(run, tracing.current_traceparent()), name=f"sync-run-{run_id[:8]}", daemon=True
        )
        self._threads.append(thread)
        thread.start()
        return run, True

    def wait(self, timeout: float) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    @staticmethod
    def _reap_if_dead(uow: SyncUnitOfWork, run: Run, now: dt.datetime) -> bool:
        """A run still RUNNING whose lease expired died with its replica. Recording it as the
        job's last run moves a schedule on: the next scheduled run is keyed by the run before
        it, and would otherwise keep finding this dead one."""
        if run.state is not RunState.RUNNING or uow.jobs.running(run.job_id, now) == run.id:
            return False
        run.fail(now, "INTERRUPTED", "the replica running it stopped; a later run took over")
        uow.runs.put(run)
        job = uow.jobs.get(run.job_id)
        if job is not None:
            job.last_run_id, job.last_run_time = run.id, run.start_time
            uow.jobs.put(job)
            uow.jobs.release_lease(run.job_id, run.id)
        return True

    @staticmethod
    def _interrupted(uow: SyncUnitOfWork, run_id: str, now: dt.datetime) -> None:
        dead = uow.runs.get(run_id)
        if dead is not None and dead.state is RunState.RUNNING:
            dead.fail(now, "INTERRUPTED", "the replica running it stopped; a later run took over")
            uow.runs.put(dead)

    # --- the run itself, on its own thread ---

    def _run(self, run: Run, traceparent: str = "") -> None:
        with tracing.span("sync.run", [traceparent], run=run.name, mode=run.mode.value, started_by=run.started_by):
            self._run_traced(run)

    def _run_traced(self, run: Run) -> None:
        try:
            with SyncUnitOfWork(self._db, write=False) as uow:
                job = uow.jobs.get(run.job_id)
                connection = uow.connections.get(job.connection_id or "") if job else None
            if job is None:
                raise job_not_found(run.job_id)
            if connection is None:
                raise connection_not_found(job.connection_id or "")
            progress = self._sync(run, job, connection)
            run.succeed(self._clock(), progress.newest)
        except ConnectorError as error:
            run.fail(self._clock(), f"{error.system}_{error.code}", error.message)
        except ServiceCallError as error:
            run.fail(self._clock(), f"USERS_{error.reason}", error.message)
        except LeaseLost:
            run.fail(self._clock(), "LEASE_LOST", "another replica took the job over")
        except DomainError as error:  # e.g. SECRET_KEY_UNKNOWN: the connection's credentials
            run.fail(self._clock(), error.reason, error.message)
        except Exception as error:  # the record says it failed; the log has the trace
            log.exception("run_failed", run=run.name)
            run.fail(self._clock(), "INTERNAL", type(error).__name__)
        self._finish(run)

    def _sync(self, run: Run, job: Job, connection: Connection) -> _Progress:
        connector, settings, _ = self._connectors.settings_of(job)
        since = run.watermark_before if run.mode is RunMode.INCREMENTAL else None
        reader = connector.reader(connection, settings)
        # Rows of one account arrive together: each account is written once the next begins.
        streams = reader.groups_accounts(since)
        progress = _Progress(held_before=run.mode is RunMode.FULL and self._users.holds_any(job.name))
        checker, chosen = RowChecker(self._users, job.name), OneUserPerRole()
        with _Pipeline(self, run, job, progress, checker) as writes:
            chunk: list[AccountRow] = []
            reading = ""  # the account being read (a row whose account is missing does not move it)
            for index, source in enumerate(reader.rows(since)):
                run.counts.rows_read += 1
                row = mapped(connector, index, source, settings, keep_source=False)
                reading = row.account_id or reading
                if row.last_modified is not None and (progress.newest is None or row.last_modified > progress.newest):
                    progress.newest = row.last_modified
                chunk.append(row)
                if len(chunk) == CHECK_ROWS:
                    self._settle(run, progress, checker, chosen, chunk)
                    if streams:
                        writes.add(chosen.take_settled(open_account=reading))
                    chunk = []
                if run.counts.rows_read % BATCH_ROWS == 0:
                    self._save(run, progress)  # progress shown, lease renewed while reading
            self._settle(run, progress, checker, chosen, chunk)
            writes.add(chosen.take_settled())
        run.queries = list(reader.queries)
        self._save(run, progress)
        if run.mode is RunMode.FULL:
            self._removals(run, job, settings, progress)
        return progress

    def _settle(
        self, run: Run, progress: _Progress, checker: RowChecker, chosen: OneUserPerRole, rows: list[AccountRow]
    ) -> None:
        with tracing.span("sync.settle", rows=len(rows)):
            settled = list(settle(checker, chosen, rows))
        for row, reason, description in settled:
            if reason:
                self._skip(run, progress, row, reason, description)
            else:
                run.counts.unchanged += 1  # the same user again (through another territory)

    @staticmethod
    def _skip(run: Run, progress: _Progress, row: AccountRow, reason: str, description: str) -> None:
        run.counts.skipped_by_reason[reason] += 1
        progress.errors.append(
            RunError(
                row.index, row.account_id, row.user_email, row.user_name, row.role_value, row.role, reason, description
            )
        )

    def _send(self, run: Run, job: Job, batch: _Batch) -> _Sent:
        with tracing.span("sync.write_batch", batch=batch.number, rows=len(batch.rows)):
            return self._send_traced(run, job, batch)

    def _send_traced(self, run: Run, job: Job, batch: _Batch) -> _Sent:
        """On the pipeline's thread: only the rows that change a holder go to the users service
        (the holders are read in bulk first), as one BatchSetAssignments call."""
        held = self._users.holders([(r.account_id, r.role) for r in batch.rows])
        changing = [
            i
            for i, (row, user) in enumerate(zip(batch.rows, batch.users, strict=True))
            if user is None or held.get((row.account_id, row.role)) != user
        ]
        reply = None
        if changing:
            rows = [
                assignments_pb2.AssignmentRow(
                    account_id=r.account_id,
                    role=r.role,
                    user=assignments_pb2.UserRef(email=r.user_email)
                    if r.user_email
                    else assignments_pb2.UserRef(full_name=r.user_name),
                )
                for r in (batch.rows[i] for i in changing)
            ]
            request_id = str(uuid.uuid5(RUN_IDS, f"{run.id}/set/{batch.number}"))
            reply = self._users.set_assignments(rows, job.name, request_id)
        return _Sent(batch, changing, reply)

    def _record(self, run: Run, progress: _Progress, sent: _Sent) -> None:
        """Back on the run's thread: the outcomes of a batch counted, and the run saved."""
        outcomes = iter(sorted(sent.reply.outcomes, key=lambda o: o.row) if sent.reply else ())
        changing = set(sent.changing)
        for index, (row, user) in enumerate(zip(sent.batch.rows, sent.batch.users, strict=True)):
            if index not in changing:
                run.counts.unchanged += 1  # the holder already: nothing was sent
                if progress.held_before:
                    progress.current.add((row.account_id, row.role, user or ""))
                continue
            outcome = next(outcomes)
            if not count_outcome(run.counts, outcome):
                self._skip(run, progress, row, outcome.reason, outcome.description)
                continue
            if outcome.user and progress.held_before:
                progress.current.add((row.account_id, row.role, outcome.user))
        self._save(run, progress)

    def _removals(self, run: Run, job: Job, settings: RowSettings, progress: _Progress) -> None:
        if not progress.held_before:
            return  # the job's first full run (or the first since it held nothing): nothing stale
        stale = [
            assignments_pb2.ClearRow(account_id=a.account_id, role=a.role, expected_user=a.user)
            for a in self._users.written_by(job.name)
            if (a.account_id, a.role, a.user) not in progress.current
        ]
        run.counts.stale = len(stale)
        if settings.removals is Removals.MIRROR:
            for start in range(0, len(stale), BATCH_ROWS):
                request_id = str(uuid.uuid5(RUN_IDS, f"{run.id}/clear/{start}"))
                reply = self._users.clear_own(stale[start : start + BATCH_ROWS], job.name, request_id)
                run.counts.removed += reply.cleared_count
        self._save(run, progress)

    def _save(self, run: Run, progress: _Progress) -> None:
        """Counts and errors so far, and the lease renewed: a run that cannot renew it stops."""
        now = self._clock()
        with SyncUnitOfWork(self._db) as uow:
            if not uow.jobs.renew_lease(run.job_id, run.id, now + self._lease):
                raise LeaseLost(run.id)
            uow.runs.add_errors(run.id, progress.errors)
            uow.runs.put(run)
            uow.commit()
        progress.errors = []

    def _finish(self, run: Run) -> None:
        finish_run(self._db, run, moves_watermark=True)
        log.info("run_finished", run=run.name, state=run.state.value, **run.counts.as_dict())
