"""create_task: a task for a user or a role's holder, on the account or on its parent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.rules.domain.actions.choices import (
    Reference,
    UserChoice,
    choice_references,
    choice_to_dict,
    parse_choice,
    who,
)
from services.runtime.errors import Violations

KEY = "create_task"
MAX_TITLE = 500
MAX_DUE_DAYS = 3650


@dataclass(frozen=True)
class CreateTask:
    title: str
    assignee: UserChoice
    due_in_days: int = 0
    on_parent_account: bool = False  # the account's immediate parent gets the task


def parse(body: dict[str, Any], path: str, problems: Violations) -> CreateTask | None:
    title = body.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE:
        problems.add(f"{path}.title", f"1 to {MAX_TITLE} characters", "TITLE_INVALID")
    due = body.get("due_in_days", 0)
    if not isinstance(due, int) or isinstance(due, bool) or not 0 <= due <= MAX_DUE_DAYS:
        problems.add(f"{path}.due_in_days", f"0 to {MAX_DUE_DAYS} days", "DUE_INVALID")
    assignee = parse_choice(body, path, problems, allow_round_robin=False, what="assignee")
    parent = body.get("on_parent_account", False)
    if not isinstance(parent, bool):
        problems.add(f"{path}.on_parent_account", "true or false", "TYPE_MISMATCH")
    if not isinstance(title, str) or assignee is None or not isinstance(due, int) or not isinstance(parent, bool):
        return None
    return CreateTask(title.strip(), assignee, due, parent)


def describe(action: CreateTask) -> str:
    due = f", due in {action.due_in_days} days" if action.due_in_days else ""
    where = " on the parent account" if action.on_parent_account else ""
    return f"create task {action.title!r} for {who(action.assignee)}{due}{where}"


def to_dict(action: CreateTask) -> dict[str, Any]:
    body: dict[str, Any] = {"title": action.title, **choice_to_dict(action.assignee)}
    if action.due_in_days:
        body["due_in_days"] = action.due_in_days
    if action.on_parent_account:
        body["on_parent_account"] = True
    return {KEY: body}


def references(action: CreateTask, path: str) -> list[Reference]:
    return choice_references(action.assignee, path)
