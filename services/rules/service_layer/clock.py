"""The background worker that lets time pass for time-based segment plays: every few seconds
(STEWARD_RULES_TIME_PASS_SECONDS) the replica holding the workers' lease runs one pass."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable

from services.rules import metrics
from services.rules.service_layer.ingest import PlayCatalog
from services.rules.service_layer.segments import time_pass
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database, utcnow
from services.runtime.leases import LeaseLost, WorkerLease
from services.runtime.logging import get_logger

log = get_logger("steward.rules.clock")


class SegmentClock:
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
        self._db = db
        self._catalog = catalog
        self._lease = lease
        self._on_recorded = on_recorded
        self._every = every_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rules-clock", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            if not self._lease.held:
                continue  # another replica keeps the time
            started = time.perf_counter()
            try:
                result = time_pass(lambda: RulesUnitOfWork(self._db), self._catalog, self._clock(), self._lease)
            except LeaseLost:
                continue
            except Exception:  # the next pass tries again; nothing is half-recorded (a page per transaction)
                log.exception("time_pass_failed")
                continue
            metrics.TIME_PASS_SECONDS.observe(time.perf_counter() - started)
            if result.runs:
                self._on_recorded()
            if result.entered or result.left:
                log.info("time_pass", **dataclasses.asdict(result))
