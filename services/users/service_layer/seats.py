"""Taking license seats under a lock, so that concurrent writers cannot overshoot a limit."""

from __future__ import annotations

from collections import Counter

from services.users.domain.licenses import LicensePolicy
from services.users.domain.model import License
from services.users.unit_of_work import UsersUnitOfWork


class SeatLedger:
    """Seats in use per license for one unit of work: locked and counted once, then kept current
    as the unit of work takes seats, so a bulk action can check user by user."""

    def __init__(self, uow: UsersUnitOfWork, policy: LicensePolicy) -> None:
        self._uow = uow
        self._policy = policy
        self._used: Counter[License] | None = None

    def _counts(self) -> Counter[License]:
        if self._used is None:
            self._uow.users.lock_seats(License)
            self._used = Counter(self._uow.users.count_seats(self._policy.exempt_domains))
        return self._used

    def take(self, license: License, count: int = 1) -> None:
        """Raises RESOURCE_EXHAUSTED (naming the license) unless `count` more seats fit."""
        if count <= 0 or self._policy.limit(license) is None:
            return
        used = self._counts()
        self._policy.ensure_room(license, used[license], count)
        used[license] += count

    def release(self, license: License, count: int = 1) -> None:
        if self._used is not None:
            self._used[license] -= count

    def usage(self) -> dict[License, int]:
        return dict(self._uow.users.count_seats(self._policy.exempt_domains))
