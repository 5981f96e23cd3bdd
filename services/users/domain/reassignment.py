"""Handing a leaving user's things to others: which parts exist, who may receive them, and what
a user still owns (which blocks disabling or deleting them one by one)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from services.runtime.errors import FailedPrecondition, PreconditionViolation
from services.users.domain.model import License, User
from services.users.domain.status_policy import policy_of


@dataclass(frozen=True)
class Plan:
    shared_resources_to: str | None = None
    private_resources_to: str | None = None
    accounts_and_tasks_to: str | None = None
    team_management_to: str | None = None
    team_memberships_to: str | None = None

    def targets(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @property
    def empty(self) -> bool:
        return not self.targets()


@dataclass(frozen=True)
class Holdings:
    """What a user owns that someone must take over before they go."""

    assignments: int = 0
    open_tasks: int = 0
    shared_resources: int = 0
    private_resources: int = 0
    direct_reports: int = 0

    def uncovered_by(self, plan: Plan) -> dict[str, int]:
        covered = {
            "assignments": plan.accounts_and_tasks_to,
            "open_tasks": plan.accounts_and_tasks_to,
            "shared_resources": plan.shared_resources_to,
            "private_resources": plan.private_resources_to,
            "direct_reports": plan.team_management_to,
        }
        return {name: getattr(self, name) for name in covered if getattr(self, name) and not covered[name]}


def refuse_owner(user: User, left: dict[str, int]) -> FailedPrecondition:
    listing = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in left.items())
    return FailedPrecondition(
        "USER_OWNS_RESOURCES",
        f"users/{user.id} still owns {listing}; give a reassignment plan for them",
        metadata={"user": f"users/{user.id}", **{k: str(v) for k, v in left.items()}},
        precondition_violations=[
            PreconditionViolation("OWNERSHIP", name, f"owns {count}") for name, count in left.items()
        ],
    )


def check_plan(user: User, plan: Plan, targets: dict[str, User], hierarchy_enabled: bool) -> None:
    """Every condition of the plan, checked before anything changes."""
    if plan.shared_resources_to and user.license is not License.PRACTITIONER:
        raise FailedPrecondition(
            "SHARED_RESOURCES_NEED_PRACTITIONER",
            "shared resources are reassigned only for users with a PRACTITIONER license",
        )
    if plan.team_management_to:
        if user.license is not License.PRACTITIONER:
            raise FailedPrecondition(
                "TEAM_MANAGEMENT_NEEDS_PRACTITIONER", "team management is reassigned only for PRACTITIONER users"
            )
        if not hierarchy_enabled:
            raise FailedPrecondition("HIERARCHY_DISABLED", "the employee hierarchy is not enabled")
    for part, target_id in plan.targets().items():
        target = targets[target_id]
        if target.id == user.id:
            raise FailedPrecondition("TARGET_IS_SOURCE", f"{part} cannot go to the user it comes from")
        if not policy_of(target.status).enabled:
            raise FailedPrecondition(
                "TARGET_NOT_ELIGIBLE",
                f"{part}: a {target.status.value} user cannot receive it",
                metadata={"part": part, "target": f"users/{target.id}"},
            )
        if part == "shared_resources_to" and target.license is License.VIEWER:
            raise FailedPrecondition(
                "TARGET_CANNOT_OWN_SHARED",
                "a viewer cannot own shared resources",
                metadata={"target": f"users/{target.id}"},
            )
