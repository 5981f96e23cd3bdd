"""Teams, team roles and the employee hierarchy."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import FailedPrecondition, NotFound, Violations
from services.runtime.etag import make_etag

MAX_TEAM_NAME = 100


class TeamRole(StrEnum):
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"


@dataclass(frozen=True)
class Membership:
    team_id: str
    role: TeamRole


@dataclass
class Team:
    id: str
    display_name: str
    manager_id: str | None
    create_time: dt.datetime
    update_time: dt.datetime
    member_count: int = 0
    version: int = 1

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)


def teams_to_join(memberships: Iterable[Membership], team_ids: Iterable[str]) -> list[str]:
    """The teams among `team_ids` (each once, in order) that the user is not in yet, with any role."""
    have = {m.team_id for m in memberships}
    missing: list[str] = []
    for team_id in team_ids:
        if team_id not in have and team_id not in missing:
            missing.append(team_id)
    return missing


def clean_team_name(name: str, field: str = "team.display_name") -> str:
    cleaned = " ".join(name.split())
    problems = Violations()
    if not cleaned:
        problems.add(field, "must not be empty", "REQUIRED")
    elif len(cleaned) > MAX_TEAM_NAME:
        problems.add(field, f"at most {MAX_TEAM_NAME} characters", "TOO_LONG")
    problems.raise_if_any()
    return cleaned


def team_not_found(team_id: str) -> NotFound:
    return NotFound("TEAM_NOT_FOUND", f"no team teams/{team_id}", metadata={"team": f"teams/{team_id}"})


def ensure_no_manager_cycle(user_id: str, new_manager_id: str | None, manager_of: Callable[[str], str | None]) -> None:
    """Refuse a manager that would make `user_id` (indirectly) their own manager."""
    seen: set[str] = set()
    current = new_manager_id
    while current is not None:
        if current == user_id:
            raise FailedPrecondition(
                "MANAGER_CYCLE",
                "that manager would make the user their own (indirect) manager",
                metadata={"user": f"users/{user_id}", "manager": f"users/{new_manager_id}"},
            )
        if current in seen:  # an existing cycle elsewhere; it cannot involve user_id
            return
        seen.add(current)
        current = manager_of(current)
