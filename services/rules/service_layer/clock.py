"""The background worker that lets time pass for time-based segment plays: every few seconds
(STEWARD_RULES_TIME_PASS_SECONDS) the replica holding the workers' lease runs one pass."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

from services.rules import metrics
from services.rules.service_layer.ingest import PlayCatalog
from services.rules.service_layer.segments import time_pass
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database, utcnow
from services.runtime.leases import LeaseLost, WorkerLease
from services.runtime.logging import get_logger
from services.runtime.workers import PeriodicWorker

log = get_logger("steward.rules.clock")


class SegmentClock(PeriodicWorker):
    def __init__(
        self,
        db: Database,
        catalog: PlayCatalog,
        lease: WorkerLease,
        on_recorded: Callable[[], None],
        *,
        every_seconds: float = 60.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        super().__init__("rules-clock", every_seconds)
        self._db = db
        self._catalog = catalog
        self._lease = lease
        self._on_recorded = on_recorded
        self._clock = clock

    def step(self) -> None:
        if not self._lease.held:
            return  # another replica keeps the time
        started = time.perf_counter()
        try:
            result = time_pass(lambda: RulesUnitOfWork(self._db), self._catalog, self._clock(), self._lease)
        except LeaseLost:
            return  # nothing was recorded past the lease; the new holder passes next
        metrics.TIME_PASS_SECONDS.observe(time.perf_counter() - started)
        if result.runs:
            self._on_recorded()
        if result.entered or result.left:
            log.info("time_pass", **dataclasses.asdict(result))
