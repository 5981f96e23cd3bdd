"""The sync service's unit of work."""

from __future__ import annotations

from typing import Self

from services.runtime.db import UnitOfWork
from services.sync.adapters.repository import JobRepository


class SyncUnitOfWork(UnitOfWork):
    jobs: JobRepository

    def __enter__(self) -> Self:
        super().__enter__()
        self.jobs = JobRepository(self.session)
        return self
