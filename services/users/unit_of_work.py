"""The users service's unit of work: one transaction and the repositories that share it."""

from __future__ import annotations

from typing import Self

from services.runtime.db import Database, UnitOfWork
from services.users.adapters.repository import UserRepository


class UsersUnitOfWork(UnitOfWork):
    users: UserRepository

    def __init__(self, db: Database, *, write: bool = True) -> None:
        super().__init__(db, write=write)

    def __enter__(self) -> Self:
        super().__enter__()
        self.users = UserRepository(self.session)
        return self
