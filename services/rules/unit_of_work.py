"""The rules service's unit of work."""

from __future__ import annotations

from typing import Self

from services.rules.adapters.repository import PlayRepository
from services.runtime.db import UnitOfWork


class RulesUnitOfWork(UnitOfWork):
    plays: PlayRepository

    def __enter__(self) -> Self:
        super().__enter__()
        self.plays = PlayRepository(self.session)
        return self
