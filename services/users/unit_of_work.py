"""The users service's unit of work: one transaction and the repositories that share it."""

from __future__ import annotations

from typing import Self

from services.runtime.db import UnitOfWork
from services.users.adapters.repository import (
    InvitationRepository,
    NotificationOutbox,
    TeamRepository,
    UserRepository,
)


class UsersUnitOfWork(UnitOfWork):
    users: UserRepository
    teams: TeamRepository
    invitations: InvitationRepository
    outbox: NotificationOutbox

    def __enter__(self) -> Self:
        super().__enter__()
        self.users = UserRepository(self.session)
        self.teams = TeamRepository(self.session)
        self.invitations = InvitationRepository(self.session)
        self.outbox = NotificationOutbox(self.session)
        return self
