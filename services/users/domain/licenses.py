"""License seats: who counts toward allocation, and whether there is room for more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.runtime.errors import ResourceExhausted
from services.users.domain.model import License, UserStatus
from services.users.domain.status_policy import policy_of


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].strip().lower()


@dataclass(frozen=True)
class LicensePolicy:
    # A license missing from `limits` (or mapped to None) has no limit.
    limits: Mapping[License, int | None] = field(default_factory=dict)
    exempt_domains: frozenset[str] = frozenset()

    def limit(self, license: License) -> int | None:
        return self.limits.get(license)

    def is_exempt(self, email: str) -> bool:
        return email_domain(email) in self.exempt_domains

    def counts(self, status: UserStatus, email: str) -> bool:
        """Users whose status holds a seat (status_policy), unless their domain is exempt."""
        return policy_of(status).holds_seat and not self.is_exempt(email)

    def ensure_room(self, license: License, used: int, adding: int) -> None:
        limit = self.limit(license)
        if adding <= 0 or limit is None or used + adding <= limit:
            return
        raise ResourceExhausted(
            "LICENSE_EXHAUSTED",
            f"no {license.value} seats left: {used} of {limit} used, {adding} more requested",
            metadata={"license": license.value, "used": str(used), "limit": str(limit), "requested": str(adding)},
        )


def parse_limits(text: str) -> dict[License, int | None]:
    """ "PRACTITIONER=50,CONTRIBUTOR=100" -> limits; raises ValueError on anything else."""
    limits: dict[License, int | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        license = License(name.strip().upper())
        count = int(value)
        if count < 0:
            raise ValueError(f"negative limit for {license.value}")
        limits[license] = count
    return limits
