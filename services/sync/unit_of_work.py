"""The sync service's unit of work."""

from __future__ import annotations

from typing import Self

from services.runtime.db import UnitOfWork
from services.sync.adapters.repository import ConnectionRepository, JobRepository, RunRepository


class SyncUnitOfWork(UnitOfWork):
    connections: ConnectionRepository
    jobs: JobRepository
    runs: RunRepository

    def __enter__(self) -> Self:
        super().__enter__()
        self.connections = ConnectionRepository(self.session, self.keyring)
        self.jobs = JobRepository(self.session)
        self.runs = RunRepository(self.session)
        return self
