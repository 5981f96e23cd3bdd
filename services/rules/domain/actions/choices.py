"""Who an action names, shared by the kinds that pick a user: parsed, described, written back and
listed as references the same way whichever kind holds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.runtime.errors import Violations


@dataclass(frozen=True)
class UserChoice:
    """Who an action names: a user ("users/{uid}" or an email), the next of a round robin
    (users or a team's members), or the holder of a role on the same account."""

    user: str = ""
    round_robin_users: tuple[str, ...] = ()
    round_robin_team: str = ""
    holder_of_role: str = ""

    @property
    def is_round_robin(self) -> bool:
        return bool(self.round_robin_users or self.round_robin_team)


@dataclass(frozen=True)
class Reference:
    """Something an action names that must exist in the users service."""

    path: str
    kind: str  # "role", "user" or "team"
    value: str


def is_user_name(value: str) -> bool:
    return value.startswith("users/") or "@" in value


def parse_role(raw: Any, path: str, problems: Violations) -> str:
    if not isinstance(raw, str) or not raw.startswith("roles/") or len(raw) <= len("roles/"):
        problems.add(path, "a role name, roles/{key}", "ROLE_INVALID")
        return ""
    return raw


def parse_choice(
    body: dict[str, Any], path: str, problems: Violations, *, allow_round_robin: bool, what: str
) -> UserChoice | None:
    """`what`: the name of the proto oneof the choice fills (value, assignee), where a choice
    that is not exactly one is reported."""
    given = [k for k in ("user", "round_robin", "holder_of_role") if body.get(k)]
    allowed = "user, round_robin or holder_of_role" if allow_round_robin else "user or holder_of_role"
    if len(given) != 1 or (given[0] == "round_robin" and not allow_round_robin):
        problems.add(f"{path}.{what}", f"exactly one of {allowed}", "VALUE_INVALID")
        return None
    kind = given[0]
    if kind == "user":
        user = str(body["user"]).strip()
        if not is_user_name(user):
            problems.add(f"{path}.user", "users/{uid} or an email address", "USER_INVALID")
            return None
        return UserChoice(user=user)
    if kind == "holder_of_role":
        role = parse_role(body["holder_of_role"], f"{path}.holder_of_role", problems)
        return UserChoice(holder_of_role=role) if role else None
    return _round_robin(body["round_robin"], f"{path}.round_robin", problems)


def _round_robin(robin: Any, path: str, problems: Violations) -> UserChoice | None:
    raw_users = robin.get("users", []) if isinstance(robin, dict) else None
    raw_team = robin.get("team", "") if isinstance(robin, dict) else None
    # A text where a list belongs would otherwise be read as a list of its characters.
    if not isinstance(raw_users, list) or not isinstance(raw_team, str):
        problems.add(path, "users (a list) or team (a name)", "ROUND_ROBIN_INVALID")
        return None
    users, team = [str(u).strip() for u in raw_users], raw_team.strip()
    if bool(users) == bool(team):
        problems.add(path, "exactly one of users or team", "ROUND_ROBIN_INVALID")
        return None
    if team and not team.startswith("teams/"):
        problems.add(f"{path}.team", "a team name, teams/{uid}", "TEAM_INVALID")
        return None
    bad = [u for u in users if not is_user_name(u)]
    if bad:
        problems.add(f"{path}.users", f"not users/{{uid}} or emails: {', '.join(bad)}", "USER_INVALID")
        return None
    if len(set(users)) != len(users):
        problems.add(f"{path}.users", "each user once", "USER_DUPLICATE")
        return None
    return UserChoice(round_robin_users=tuple(users), round_robin_team=team)


def choice_to_dict(choice: UserChoice) -> dict[str, Any]:
    if choice.holder_of_role:
        return {"holder_of_role": choice.holder_of_role}
    if choice.round_robin_team:
        return {"round_robin": {"team": choice.round_robin_team}}
    if choice.round_robin_users:
        return {"round_robin": {"users": list(choice.round_robin_users)}}
    return {"user": choice.user}


def who(choice: UserChoice) -> str:
    if choice.holder_of_role:
        return f"the holder of {choice.holder_of_role}"
    if choice.round_robin_team:
        return f"the next member of {choice.round_robin_team} (round robin)"
    if choice.round_robin_users:
        return f"the next of {', '.join(choice.round_robin_users)} (round robin)"
    return choice.user


def choice_references(choice: UserChoice, path: str) -> list[Reference]:
    found = []
    if choice.holder_of_role:
        found.append(Reference(f"{path}.holder_of_role", "role", choice.holder_of_role))
    if choice.user:
        found.append(Reference(f"{path}.user", "user", choice.user))
    found += [Reference(f"{path}.round_robin.users", "user", u) for u in choice.round_robin_users]
    if choice.round_robin_team:
        found.append(Reference(f"{path}.round_robin.team", "team", choice.round_robin_team))
    return found
