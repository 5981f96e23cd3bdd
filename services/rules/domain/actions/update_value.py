"""update_value: sets an account assignment role (the "Update Information / Update Value"
activity) to a user, the next of a round robin, or the holder of another role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.rules.domain.actions.choices import (
    Reference,
    UserChoice,
    choice_references,
    choice_to_dict,
    parse_choice,
    parse_role,
    who,
)
from services.runtime.errors import Violations

KEY = "update_value"


@dataclass(frozen=True)
class UpdateValue:
    role: str  # "roles/{key}"
    value: UserChoice


def parse(body: dict[str, Any], path: str, problems: Violations) -> UpdateValue | None:
    role = parse_role(body.get("role"), f"{path}.role", problems)
    value = parse_choice(body, path, problems, allow_round_robin=True, what="value")
    return UpdateValue(role, value) if role and value else None


def describe(action: UpdateValue) -> str:
    return f"set {action.role} to {who(action.value)}"


def to_dict(action: UpdateValue) -> dict[str, Any]:
    return {KEY: {"role": action.role, **choice_to_dict(action.value)}}


def references(action: UpdateValue, path: str) -> list[Reference]:
    return [Reference(f"{path}.role", "role", action.role), *choice_references(action.value, path)]
