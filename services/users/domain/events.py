"""Domain events: what happened, for other services to react to (through the event stream)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DomainEvent:
    type: str
    subject: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)


def user_event(kind: str, user_id: str, actor: str, **data: Any) -> DomainEvent:
    return DomainEvent(f"user.{kind}", f"users/{user_id}", actor, {"user": f"users/{user_id}", **data})


def assignment_event(kind: str, account_id: str, role_key: str, actor: str, **data: Any) -> DomainEvent:
    return DomainEvent(
        f"assignment.{kind}",
        f"accounts/{account_id}/roles/{role_key}",
        actor,
        {"account_id": account_id, "role": f"roles/{role_key}", **data},
    )
