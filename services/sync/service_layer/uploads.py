"""File uploads: each file one run of a FILE_UPLOAD job, written through the users service.

Before anything is recorded the file is read whole and its header checked against what the users
service knows (roles, teams): a bad file leaves no run behind. Then the run is held like a connector
run (the job's lease, renewed with every batch, so a run left by a dead replica is taken over and
marked INTERRUPTED), rows go in batches whose request ids derive from (run, batch), and counts and
row errors are saved after every batch, so GetRun / ListRunErrors read uploads as they read connector
runs. An upload retried with the same request_id finds the run of the first and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

from services.runtime.db import Database, utcnow
from services.runtime.errors import Aborted, FailedPrecondition
from services.runtime.logging import get_logger
from services.runtime.service_client import ServiceCallError
from services.runtime.users_client import BATCH_ROWS
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.domain import uploads as files
from services.sync.domain.model import Job, JobType, job_not_found
from services.sync.domain.runs import Run, RunError, RunMode, RunState
from services.sync.service_layer.jobs import users_unavailable
from services.sync.service_layer.records import count_outcome, finish_run
from services.sync.service_layer.runner import LeaseLost
from services.sync.unit_of_work import SyncUnitOfWork
from steward.users.v1 import assignments_pb2, users_pb2

log = get_logger("steward.sync.uploads")
UPLOAD_IDS = uuid.UUID("5d2e8c41-0b7a-4f63-9a1e-7c3b2d4e5f60")
UPSERT = users_pb2.UpsertUserOutcome
USER_BATCH = 1000  # UpsertUsers' limit per call
T = TypeVar("T")


class Uploads:
    def __init__(
        self,
        db: Database,
        users: SyncUsersClient,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        lease_seconds: float = 60.0,
    ) -> None:
        self._db = db
        self._users = users
        self._clock = clock
        self._lease = dt.timedelta(seconds=lease_seconds)

    # --- the two uploads ---

    def assignments(self, job_id: str, data: bytes, started_by: str, request_id: str = "", file_name: str = "") -> Run:
        earlier = self._earlier(job_id, request_id)
        if earlier is not None:
            return earlier
        job = self._upload_job(job_id)
        csv_file = files.read_csv(data)
        roles = self._ask(self._users.role_names)
        layout = files.assignments_layout(csv_file.header, roles)
        run, new = self._begin(job, request_id, started_by)
        if new:
            self._execute(run, "assignments", file_name, lambda: self._write_assignments(run, job, layout, csv_file))
        return run

    def users(self, job_id: str, data: bytes, started_by: str, request_id: str = "", file_name: str = "") -> Run:
        earlier = self._earlier(job_id, request_id)
        if earlier is not None:
            return earlier
        job = self._upload_job(job_id)
        csv_file = files.read_csv(data)
        layout = files.users_layout(csv_file.header)
        teams = files.TeamDirectory()
        if "teams" in layout.columns:
            teams = files.TeamDirectory.of([(t.name, t.display_name) for t in self._ask(self._users.all_teams)])
        lines = files.user_lines(layout, csv_file.records(), teams)
        run, new = self._begin(job, request_id, started_by)
        if new:
            self._execute(run, "users", file_name, lambda: self._write_users(run, lines))
        return run

    # --- the run around them ---

    @staticmethod
    def _run_id(job_id: str, request_id: str) -> str:
        return str(uuid.uuid5(UPLOAD_IDS, f"{job_id}/{request_id}")) if request_id else str(uuid.uuid4())

    def _earlier(self, job_id: str, request_id: str) -> Run | None:
        if not request_id:
            return None
        with SyncUnitOfWork(self._db, write=False) as uow:
            return uow.runs.get(self._run_id(job_id, request_id))

    def _upload_job(self, job_id: str) -> Job:
        with SyncUnitOfWork(self._db, write=False) as uow:
            job = uow.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        if job.type is not JobType.FILE_UPLOAD:
            raise FailedPrecondition(
                "JOB_NOT_FILE_UPLOAD", f"{job.name} is not a file upload job", metadata={"job": job.name}
            )
        return job

    @staticmethod
    def _ask(question: Callable[[], T]) -> T:
        try:
            return question()
        except ServiceCallError as error:
            raise users_unavailable(error) from error

    def _begin(self, job: Job, request_id: str, started_by: str) -> tuple[Run, bool]:
        """(the new run, holding the job's lease, True); or (the run the same request started, False)."""
        run_id = self._run_id(job.id, request_id)
        now = self._clock()
        with SyncUnitOfWork(self._db) as uow:
            taken = uow.jobs.take_lease(job.id, run_id, now, now + self._lease)
            if taken is None:
                raise Aborted(
                    "RUN_IN_PROGRESS",
                    f"{job.name} is already running; follow that run or retry later",
                    metadata={"run": f"{job.name}/runs/{uow.jobs.running(job.id, now)}"},
                )
            earlier = uow.runs.get(run_id)  # the same request, retried concurrently
            if earlier is not None:
                return earlier, False  # leaving without commit gives the lease back as it was
            if taken:
                dead = uow.runs.get(taken)
                if dead is not None and dead.state is RunState.RUNNING:
                    dead.fail(now, "INTERRUPTED", "the replica running it stopped; a later run took over")
                    uow.runs.put(dead)
            run = Run(run_id, job.id, RunMode.FULL, RunState.RUNNING, now, started_by)
            uow.runs.put(run)
            uow.commit()
        return run, True

    def _execute(self, run: Run, kind: str, file_name: str, work: Callable[[], None]) -> None:
        log.info("upload_started", run=run.name, kind=kind, file_name=file_name, started_by=run.started_by)
        try:
            work()
            run.succeed(self._clock(), None)
        except ServiceCallError as error:
            run.fail(self._clock(), f"USERS_{error.reason}", error.message)
        except LeaseLost:
            run.fail(self._clock(), "LEASE_LOST", "another replica took the job over")
        except Exception as error:  # the record says it failed; the log has the trace
            log.exception("upload_failed", run=run.name)
            run.fail(self._clock(), "INTERNAL", type(error).__name__)
        self._finish(run)

    def _save(self, run: Run, errors: list[RunError]) -> None:
        """Counts and errors so far, and the lease renewed: a run that cannot renew it stops."""
        now = self._clock()
        with SyncUnitOfWork(self._db) as uow:
            if not uow.jobs.renew_lease(run.job_id, run.id, now + self._lease):
                raise LeaseLost(run.id)
            uow.runs.add_errors(run.id, errors)
            uow.runs.put(run)
            uow.commit()

    def _finish(self, run: Run) -> None:
        finish_run(self._db, run, moves_watermark=False)
        log.info("upload_finished", run=run.name, state=run.state.value, **run.counts.as_dict())

    def _request_id(self, run: Run, what: str) -> str:
        return str(uuid.uuid5(UPLOAD_IDS, f"{run.id}/{what}"))

    # --- assignments: batches of whole lines, up to BatchSetAssignments' limit ---

    def _write_assignments(self, run: Run, job: Job, layout: files.AssignmentsLayout, csv_file: files.CsvFile) -> None:
        batch: list[files.AssignmentCell] = []
        number = 0
        for record in csv_file.records():
            cells = files.assignment_cells(layout, record)
            if batch and len(batch) + len(cells) > BATCH_ROWS:
                self._assignment_batch(run, job, batch, number)
                batch, number = [], number + 1
            batch.extend(cells)
        self._assignment_batch(run, job, batch, number)

    def _assignment_batch(self, run: Run, job: Job, cells: list[files.AssignmentCell], number: int) -> None:
        errors: list[RunError] = []

        def skip(cell: files.AssignmentCell, reason: str, description: str) -> None:
            run.counts.skipped_by_reason[reason] += 1
            errors.append(files.cell_error(cell, reason, description))

        run.counts.rows_read += len(cells)
        applicable = []
        for cell in cells:
            if cell.problem is not None:
                skip(cell, *cell.problem)
            else:
                applicable.append(cell)
        if applicable:
            rows = [_assignment_row(cell) for cell in applicable]
            reply = self._users.set_assignments(rows, job.name, self._request_id(run, f"set/{number}"))
            for cell, outcome in zip(applicable, sorted(reply.outcomes, key=lambda o: o.row), strict=True):
                if not count_outcome(run.counts, outcome):
                    skip(cell, outcome.reason, outcome.description)
        self._save(run, files.one_per_line(errors))

    # --- users: batches of UpsertUsers' limit, each line's teams in its row ---

    def _write_users(self, run: Run, lines: Iterator[files.UserLine]) -> None:
        batch: list[files.UserLine] = []
        number = 0
        for line in lines:
            batch.append(line)
            if len(batch) == USER_BATCH:
                self._user_batch(run, batch, number)
                batch, number = [], number + 1
        self._user_batch(run, batch, number)

    def _user_batch(self, run: Run, lines: list[files.UserLine], number: int) -> None:
        """A line's user and its team memberships are written together (UpsertUserRow.teams) or
        not at all; joining a team counts as an update (the users service says RESULT_UPDATED)."""
        errors: list[RunError] = []

        def skip(line: files.UserLine, reason: str, description: str) -> None:
            run.counts.skipped_by_reason[reason] += 1
            errors.append(files.user_error(line, reason, description))

        run.counts.rows_read += len(lines)
        applicable = []
        for line in lines:
            if line.problems:
                run.counts.skipped_by_reason[line.problems[0][0]] += 1
                errors.append(files.line_error(line))
            else:
                applicable.append(line)
        if applicable:
            rows = [_upsert_row(line) for line in applicable]
            reply = self._users.upsert_users(rows, self._request_id(run, f"upsert/{number}"))
            for line, outcome in zip(applicable, sorted(reply.outcomes, key=lambda o: o.row), strict=True):
                if outcome.result == UPSERT.RESULT_FAILED:
                    skip(line, outcome.reason, outcome.description)
                elif outcome.result == UPSERT.RESULT_CREATED:
                    run.counts.assigned += 1
                elif outcome.result == UPSERT.RESULT_UPDATED:
                    run.counts.updated += 1
                else:
                    run.counts.unchanged += 1
        self._save(run, errors)


def _assignment_row(cell: files.AssignmentCell) -> assignments_pb2.AssignmentRow:
    row = assignments_pb2.AssignmentRow(account_id=cell.account_id, role=cell.column.role)
    if cell.value:
        ref = (
            assignments_pb2.UserRef(full_name=cell.value)
            if cell.column.by_name
            else assignments_pb2.UserRef(email=cell.value)
        )
        row.user.CopyFrom(ref)
    return row


def _upsert_row(line: files.UserLine) -> users_pb2.UpsertUserRow:
    return users_pb2.UpsertUserRow(
        email=line.email,
        first_name=line.first_name,
        last_name=line.last_name,
        license=f"LICENSE_{line.license or 'UNSPECIFIED'}",
        status=f"USER_STATUS_{line.status or 'UNSPECIFIED'}",
        teams=list(line.teams),
    )
