"""Runs ACTIVE jobs that have a run_interval when they are due: incremental once a run has set
their watermark, full before that.

Every replica's scheduler looks, and each due run happens once. The job's run lease stops two
runs at the same time; that is not enough, because a replica that saw the job due may come to
start it just after another replica's run finished and released the lease. So a scheduled run
is started with a request id naming its slot, the run that came before it: every replica that
saw the same slot asks for the same run id, and only the first creates it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from services.runtime.db import Database, utcnow
from services.runtime.errors import Aborted, DomainError
from services.runtime.logging import get_logger
from services.runtime.workers import PeriodicWorker
from services.sync.domain.model import Job
from services.sync.domain.runs import RunMode
from services.sync.service_layer.runner import JobRunner
from services.sync.unit_of_work import SyncUnitOfWork

log = get_logger("steward.sync.scheduler")


class Scheduler(PeriodicWorker):
    def __init__(
        self,
        db: Database,
        runner: JobRunner,
        *,
        poll_seconds: float = 30.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__("sync-scheduler", poll_seconds)
        self._db = db
        self._runner = runner
        self._clock = clock

    def stop(self, timeout: float) -> None:
        super().stop(timeout)
        self._runner.wait(timeout)

    def step(self) -> None:
        self.tick()

    def tick(self) -> list[str]:
        """Starts every due job; returns the runs started."""
        return self.start_due(self.due_now())

    def due_now(self) -> list[Job]:
        now = self._clock()
        with SyncUnitOfWork(self._db, write=False) as uow:
            jobs = uow.jobs.due(now)
        return [
            job
            for job in jobs
            if job.run_interval is not None
            and (job.last_run_time is None or job.last_run_time + job.run_interval <= now)
        ]

    def start_due(self, jobs: list[Job]) -> list[str]:
        """Starts the runs of jobs found due (perhaps a while ago); returns the runs it created."""
        started = []
        for job in jobs:
            mode = RunMode.INCREMENTAL if job.watermark is not None else RunMode.FULL
            slot = f"schedule/after/{job.last_run_id or 'none'}"
            try:
                run, created = self._runner.start_run(job.id, mode, "schedule", slot)
            except Aborted:
                continue  # running already, here or on another replica
            except DomainError as refused:  # one job that cannot run must not hold up the others
                log.warning("scheduled_run_refused", job=job.name, reason=refused.reason)
                continue
            if created:
                started.append(run.name)
        return started
