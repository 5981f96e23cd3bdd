"""The rules service's unit of work."""

from __future__ import annotations

from typing import Self

from services.rules.adapters.repository import (
    AccountRepository,
    AttributeRepository,
    CursorRepository,
    EventRepository,
    PlayRepository,
    RateWindowRepository,
    RunRepository,
    SegmentRepository,
)
from services.runtime.db import UnitOfWork


class RulesUnitOfWork(UnitOfWork):
    plays: PlayRepository
    events: EventRepository
    accounts: AccountRepository
    runs: RunRepository
    cursors: CursorRepository
    segments: SegmentRepository
    attributes: AttributeRepository
    rate_windows: RateWindowRepository

    def __enter__(self) -> Self:
        super().__enter__()
        self.plays = PlayRepository(self.session, self.keyring)
        self.events = EventRepository(self.session)
        self.accounts = AccountRepository(self.session)
        self.runs = RunRepository(self.session)
        self.cursors = CursorRepository(self.session)
        self.segments = SegmentRepository(self.session)
        self.attributes = AttributeRepository(self.session)
        self.rate_windows = RateWindowRepository(self.session)
        return self
