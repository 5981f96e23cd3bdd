"""Provisioning from an identity provider (SCIM): what the provider says a user is, and who
inherits what a deprovisioned user owns.

A deprovisioned user (active=false, or deleted) hands everything they own to an heir, in this
order of preference:
  1. their manager, when the employee hierarchy is on and the manager may receive work;
  2. the configured heir (STEWARD_SCIM_DEPROVISION_HEIR), when it names a user who may;
  3. nobody: it is released as a bulk disable releases it (assignments and open tasks cleared,
     private resources removed, shared resources kept by their owner).
Parts the heir may not take (shared resources for a viewer heir; shared resources and team
management of a user who is not a practitioner) are released as in 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.users.domain.model import License, User
from services.users.domain.notifications import Email
from services.users.domain.reassignment import Holdings, Plan
from services.users.domain.status_policy import policy_of


@dataclass(frozen=True)
class ProvisionedUser:
    """A user as the identity provider describes them (one SCIM User resource)."""

    user_name: str
    email: str
    alternative_emails: tuple[str, ...] = ()
    # {address: {"type": work|home|other, "primary": bool}}, as the provider labelled them.
    email_labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_name: str = ""
    last_name: str = ""
    # None: not said (a new user then starts as configured).
    active: bool | None = None
    external_id: str | None = None
    # None: the provider does not assign the license; Steward admins do.
    license: License | None = None
    manager_id: str | None = None


def may_inherit(candidate: User | None) -> bool:
    return candidate is not None and policy_of(candidate.status).enabled


def choose_heir(user: User, manager: User | None, configured: User | None, hierarchy: bool) -> User | None:
    for candidate in (manager if hierarchy else None, configured):
        if may_inherit(candidate) and candidate is not None and candidate.id != user.id:
            return candidate
    return None


def heir_plan(user: User, heir: User, hierarchy: bool) -> Plan:
    practitioner = user.license is License.PRACTITIONER
    return Plan(
        accounts_and_tasks_to=heir.id,
        private_resources_to=heir.id,
        shared_resources_to=heir.id if practitioner and heir.license is not License.VIEWER else None,
        team_management_to=heir.id if practitioner and hierarchy else None,
    )


def _who(user: User) -> str:
    name = f"{user.first_name} {user.last_name}".strip()
    return f"{name} <{user.email}>" if name else user.email


def deprovisioned_email(to: str, user: User, how: str, owned: Holdings, plan: Plan | None, heir: User | None) -> Email:
    """What moved where, for the people who manage users."""
    targets = plan.targets() if plan is not None else {}
    parts = (
        ("assignments", "account assignments", "accounts_and_tasks_to"),
        ("open_tasks", "open tasks", "accounts_and_tasks_to"),
        ("private_resources", "private resources", "private_resources_to"),
        ("shared_resources", "shared resources", "shared_resources_to"),
        ("direct_reports", "direct reports", "team_management_to"),
    )
    lines = []
    for attribute, label, part in parts:
        count = getattr(owned, attribute)
        if not count:
            continue
        if part in targets and heir is not None:
            where = f"moved to {_who(heir)}"
        elif attribute == "shared_resources":
            where = "kept by the user (no eligible heir)"
        elif attribute == "direct_reports":
            where = "still report to the user"
        else:
            where = "released (no eligible heir)"
        lines.append(f"- {count} {label}: {where}")
    body = f"The identity provider {how} {_who(user)} in Steward.\n\n"
    body += ("What they owned:\n" + "\n".join(lines) + "\n") if lines else "They owned nothing to hand over.\n"
    return Email(
        kind="DEPROVISIONED", to=to, subject=f"Steward: {_who(user)} was {how} by the identity provider", body=body
    )
