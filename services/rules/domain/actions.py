"""What a play does when it matches: its actions, in the authors' terms.

Stored as plain dicts (the same shape as the protobuf JSON form), so a run keeps the exact
definition it matched with even if the play changes afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.runtime.errors import Violations

MAX_ACTIONS = 20
MAX_DUE_DAYS = 3650
DEFAULT_WEBHOOK_TIMEOUT = 10
MAX_WEBHOOK_TIMEOUT = 30
MAX_URL = 2000


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
class UpdateValue:
    role: str  # "roles/{key}"
    value: UserChoice


@dataclass(frozen=True)
class CreateTask:
    title: str
    assignee: UserChoice
    due_in_days: int = 0
    on_parent_account: bool = False  # the account's immediate parent gets the task


@dataclass(frozen=True)
class CallWebhook:
    url: str
    timeout_seconds: int = DEFAULT_WEBHOOK_TIMEOUT


Action = UpdateValue | CreateTask | CallWebhook


def describe(action: Action) -> str:
    if isinstance(action, UpdateValue):
        return f"set {action.role} to {_who(action.value)}"
    if isinstance(action, CallWebhook):
        return f"call webhook {action.url}"
    due = f", due in {action.due_in_days} days" if action.due_in_days else ""
    where = " on the parent account" if action.on_parent_account else ""
    return f"create task {action.title!r} for {_who(action.assignee)}{due}{where}"


def _who(choice: UserChoice) -> str:
    if choice.holder_of_role:
        return f"the holder of {choice.holder_of_role}"
    if choice.round_robin_team:
        return f"the next member of {choice.round_robin_team} (round robin)"
    if choice.round_robin_users:
        return f"the next of {', '.join(choice.round_robin_users)} (round robin)"
    return choice.user


def is_user_name(value: str) -> bool:
    return value.startswith("users/") or "@" in value


def parse_actions(raw: Any, path: str, problems: Violations) -> dict[int, Action]:
    """The valid actions by their position (invalid ones are reported and left out)."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ACTIONS:
        problems.add(path, f"a play has 1 to {MAX_ACTIONS} actions", "ACTIONS_INVALID")
        return {}
    actions = {}
    for index, item in enumerate(raw):
        action = _parse_action(item, f"{path}[{index}]", problems)
        if action is not None:
            actions[index] = action
    return actions


def _parse_action(raw: Any, path: str, problems: Violations) -> Action | None:
    if isinstance(raw, dict) and len(raw) == 1 and "update_value" in raw:
        body, where = raw["update_value"], f"{path}.update_value"
        role = _role(body.get("role"), f"{where}.role", problems)
        value = _choice(body, where, problems, allow_round_robin=True, what="value")
        return UpdateValue(role, value) if role and value else None
    if isinstance(raw, dict) and len(raw) == 1 and "create_task" in raw:
        body, where = raw["create_task"], f"{path}.create_task"
        title = body.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 500:
            problems.add(f"{where}.title", "1 to 500 characters", "TITLE_INVALID")
        due = body.get("due_in_days", 0)
        if not isinstance(due, int) or isinstance(due, bool) or not 0 <= due <= MAX_DUE_DAYS:
            problems.add(f"{where}.due_in_days", f"0 to {MAX_DUE_DAYS} days", "DUE_INVALID")
        assignee = _choice(body, where, problems, allow_round_robin=False, what="assignee")
        parent = body.get("on_parent_account", False)
        if not isinstance(parent, bool):
            problems.add(f"{where}.on_parent_account", "true or false", "TYPE_MISMATCH")
        if not isinstance(title, str) or assignee is None or not isinstance(due, int) or not isinstance(parent, bool):
            return None
        return CreateTask(title.strip(), assignee, due, parent)
    if isinstance(raw, dict) and len(raw) == 1 and "call_webhook" in raw:
        return _webhook(raw["call_webhook"], f"{path}.call_webhook", problems)
    problems.add(path, "exactly one of update_value, create_task or call_webhook", "ACTION_INVALID")
    return None


def _webhook(body: Any, path: str, problems: Violations) -> CallWebhook | None:
    url = body.get("url") if isinstance(body, dict) else None
    timeout = body.get("timeout_seconds", 0) if isinstance(body, dict) else 0
    ok = True
    try:
        parts = urlsplit(url) if isinstance(url, str) and not any(c.isspace() for c in url) else None
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(str(url)) > MAX_URL:
        problems.add(
            f"{path}.url", f"an http:// or https:// URL with a host, at most {MAX_URL} characters", "URL_INVALID"
        )
        ok = False
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= MAX_WEBHOOK_TIMEOUT:
        problems.add(
            f"{path}.timeout_seconds",
            f"0 (default {DEFAULT_WEBHOOK_TIMEOUT}) to {MAX_WEBHOOK_TIMEOUT}",
            "TIMEOUT_INVALID",
        )
        ok = False
    if not ok:
        return None
    return CallWebhook(str(url), int(timeout) or DEFAULT_WEBHOOK_TIMEOUT)


def _role(raw: Any, path: str, problems: Violations) -> str:
    if not isinstance(raw, str) or not raw.startswith("roles/") or len(raw) <= len("roles/"):
        problems.add(path, "a role name, roles/{key}", "ROLE_INVALID")
        return ""
    return raw


def _choice(body: Any, path: str, problems: Violations, *, allow_round_robin: bool, what: str) -> UserChoice | None:
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
        role = _role(body["holder_of_role"], f"{path}.holder_of_role", problems)
        return UserChoice(holder_of_role=role) if role else None
    robin = body["round_robin"]
    users, team = [str(u).strip() for u in robin.get("users", [])], str(robin.get("team", "")).strip()
    if bool(users) == bool(team):
        problems.add(f"{path}.round_robin", "exactly one of users or team", "ROUND_ROBIN_INVALID")
        return None
    if team and not team.startswith("teams/"):
        problems.add(f"{path}.round_robin.team", "a team name, teams/{uid}", "TEAM_INVALID")
        return None
    bad = [u for u in users if not is_user_name(u)]
    if bad:
        problems.add(f"{path}.round_robin.users", f"not users/{{uid}} or emails: {', '.join(bad)}", "USER_INVALID")
        return None
    if len(set(users)) != len(users):
        problems.add(f"{path}.round_robin.users", "each user once", "USER_DUPLICATE")
        return None
    return UserChoice(round_robin_users=tuple(users), round_robin_team=team)


def to_dict(action: Action) -> dict[str, Any]:
    if isinstance(action, UpdateValue):
        return {"update_value": {"role": action.role, **_choice_dict(action.value)}}
    if isinstance(action, CallWebhook):
        return {"call_webhook": {"url": action.url, "timeout_seconds": action.timeout_seconds}}
    body: dict[str, Any] = {"title": action.title, **_choice_dict(action.assignee)}
    if action.due_in_days:
        body["due_in_days"] = action.due_in_days
    if action.on_parent_account:
        body["on_parent_account"] = True
    return {"create_task": body}


def _choice_dict(choice: UserChoice) -> dict[str, Any]:
    if choice.holder_of_role:
        return {"holder_of_role": choice.holder_of_role}
    if choice.round_robin_team:
        return {"round_robin": {"team": choice.round_robin_team}}
    if choice.round_robin_users:
        return {"round_robin": {"users": list(choice.round_robin_users)}}
    return {"user": choice.user}


def from_dicts(raw: list[dict[str, Any]]) -> list[Action]:
    """Stored actions, valid by construction (they were parsed before being stored)."""
    problems = Violations()
    actions = parse_actions(raw, "actions", problems)
    problems.raise_if_any("stored play actions are invalid")
    return list(actions.values())


@dataclass(frozen=True)
class Reference:
    """Something an action names that must exist in the users service."""

    path: str
    kind: str  # "role", "user" or "team"
    value: str


def references(actions: dict[int, Action], path: str = "actions") -> list[Reference]:
    found: list[Reference] = []
    for index, action in actions.items():
        if isinstance(action, CallWebhook):
            continue
        if isinstance(action, UpdateValue):
            where, choice = f"{path}[{index}].update_value", action.value
            found.append(Reference(f"{where}.role", "role", action.role))
        else:
            where, choice = f"{path}[{index}].create_task", action.assignee
        if choice.holder_of_role:
            found.append(Reference(f"{where}.holder_of_role", "role", choice.holder_of_role))
        if choice.user:
            found.append(Reference(f"{where}.user", "user", choice.user))
        found += [Reference(f"{where}.round_robin.users", "user", u) for u in choice.round_robin_users]
        if choice.round_robin_team:
            found.append(Reference(f"{where}.round_robin.team", "team", choice.round_robin_team))
    return found
