"""Runs ACTIVE jobs that have a run_interval when they are due: incremental once a run has set
their watermark, full before that. Every replica may try; the job's run lease lets one win."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from services.runtime.db import Database, utcnow
from services.runtime.errors import Aborted, DomainError
from services.runtime.logging import get_logger
from services.sync.domain.runs import RunMode
from services.sync.service_layer.runner import JobRunner
from services.sync.unit_of_work import SyncUnitOfWork

log = get_logger("steward.sync.scheduler")


class Scheduler:
    def __init__(
        self,
        db: Database,
        runner: JobRunner,
        *,
        poll_seconds: float = 30.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._runner = runner
        self._poll = poll_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sync-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._runner.wait(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._poll):
            try:
                self.tick()
            except Exception:  # the next tick tries again
                log.exception("scheduler_failed")

    def tick(self) -> list[str]:
        """Starts every due job; returns the runs started."""
        now = self._clock()
        with SyncUnitOfWork(self._db, write=False) as uow:
            jobs = uow.jobs.due(now)
        started = []
        for job in jobs:
            assert job.run_interval is not None
            if job.last_run_time is not None and job.last_run_time + job.run_interval > now:
                continue
            mode = RunMode.INCREMENTAL if job.watermark is not None else RunMode.FULL
            try:
                started.append(self._runner.start(job.id, mode, "schedule").name)
            except Aborted:
                continue  # running already, here or on another replica
            except DomainError as refused:  # one job that cannot run must not hold up the others
                log.warning("scheduled_run_refused", job=job.name, reason=refused.reason)
        return started
