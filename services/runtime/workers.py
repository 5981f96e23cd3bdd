"""A background worker that does one step every few seconds on its own thread, and stops
between steps (the runtime's BackgroundWorker protocol: start, stop(timeout))."""

from __future__ import annotations

import threading

from services.runtime.logging import get_logger

log = get_logger("steward.runtime.workers")


class PeriodicWorker:
    """Subclasses implement step(); an exception is logged and the next period tries again."""

    def __init__(self, name: str, every_seconds: float) -> None:
        self.name = name
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.step()
            except Exception:  # the next period tries again
                log.exception("worker_step_failed", worker=self.name)

    def step(self) -> None:
        raise NotImplementedError
