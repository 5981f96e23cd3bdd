"""ReassignUserResources, and the ownership rules of disabling and deleting users."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.runtime.errors import FailedPrecondition
from services.users.adapters.reassignment_repository import ReassignmentRepository
from services.users.config import UsersConfig
from services.users.domain.events import DomainEvent, assignment_event, user_event
from services.users.domain.model import User, ensure_visible, user_not_found
from services.users.domain.notifications import Email
from services.users.domain.permissions import Actor, ensure_can_manage_users
from services.users.domain.reassignment import Holdings, Plan, check_plan, refuse_owner
from services.users.unit_of_work import UsersUnitOfWork

MAX_IDS = 10_000


@dataclass
class Part:
    target: str | None = None
    ids: list[str] = field(default_factory=list)


@dataclass
class Summary:
    dry_run: bool
    shared_resources: Part = field(default_factory=Part)
    campaign_places: Part = field(default_factory=Part)
    private_resources: Part = field(default_factory=Part)
    assignments: Part = field(default_factory=Part)
    open_tasks: Part = field(default_factory=Part)
    direct_reports: Part = field(default_factory=Part)
    managed_teams: Part = field(default_factory=Part)
    team_memberships: Part = field(default_factory=Part)
    kept_integration_only: Part = field(default_factory=Part)


def holdings(uow: UsersUnitOfWork, user_id: str) -> Holdings:
    return Holdings(**ReassignmentRepository(uow.session, uow.events).counts(user_id))


def _targets(uow: UsersUnitOfWork, plan: Plan, *, lock: bool) -> dict[str, User]:
    found = {}
    for target_id in set(plan.targets().values()):
        target = uow.users.get(target_id, for_update=lock)
        if target is None:
            raise user_not_found(target_id)
        found[target_id] = target
    return found


def reassign(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user_id: str, plan: Plan, dry_run: bool, now: dt.datetime
) -> Summary:
    ensure_can_manage_users(actor, "reassign users' resources")
    user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
    if plan.empty:
        raise FailedPrecondition("PLAN_EMPTY", "the plan names no target for any part")
    check_plan(user, plan, _targets(uow, plan, lock=False), config.employee_hierarchy)
    summary = _survey(uow, user_id, plan, dry_run)
    if dry_run:
        return summary
    _move(uow, config, actor, user, plan, summary, now)
    # A target deleted or disabled while we worked must not receive anything: re-check under lock,
    # and let the whole transaction roll back if it no longer qualifies.
    check_plan(user, plan, _targets(uow, plan, lock=True), config.employee_hierarchy)
    return summary


def _survey(uow: UsersUnitOfWork, user_id: str, plan: Plan, dry_run: bool) -> Summary:
    repo = ReassignmentRepository(uow.session, uow.events)
    summary = Summary(dry_run=dry_run)
    summary.kept_integration_only.ids = [f"{a}/roles/{r}" for a, r in repo.assignments(user_id, movable=False)]
    if plan.accounts_and_tasks_to:
        summary.assignments = Part(
            plan.accounts_and_tasks_to, [f"{a}/roles/{r}" for a, r in repo.assignments(user_id, movable=True)]
        )
        summary.open_tasks = Part(plan.accounts_and_tasks_to, [f"tasks/{t}" for t, _ in repo.open_tasks(user_id)])
    if plan.shared_resources_to:
        summary.shared_resources = Part(
            plan.shared_resources_to, [f"resources/{k.lower()}/{i}" for k, i in repo.resources(user_id, "SHARED")]
        )
        summary.campaign_places = Part(
            plan.shared_resources_to, [f"resources/campaign/{r.id}" for r in repo.campaigns_with(user_id)]
        )
    if plan.private_resources_to:
        summary.private_resources = Part(
            plan.private_resources_to, [f"resources/{k.lower()}/{i}" for k, i in repo.resources(user_id, "PRIVATE")]
        )
    if plan.team_management_to:
        summary.direct_reports = Part(plan.team_management_to, [f"users/{u}" for u in repo.direct_reports(user_id)])
        summary.managed_teams = Part(plan.team_management_to, [f"teams/{t}" for t in repo.managed_teams(user_id)])
    if plan.team_memberships_to:
        have = repo.memberships(plan.team_memberships_to)
        summary.team_memberships = Part(
            plan.team_memberships_to, [f"teams/{t}" for t in sorted(repo.memberships(user_id)) if t not in have]
        )
    return summary


def _move(
    uow: UsersUnitOfWork, config: UsersConfig, actor: Actor, user: User, plan: Plan, summary: Summary, now: dt.datetime
) -> None:
    repo = ReassignmentRepository(uow.session, uow.events)
    events: list[DomainEvent] = []
    if plan.accounts_and_tasks_to:
        target = plan.accounts_and_tasks_to
        moved = len(summary.assignments.ids)
        repo.move_assignments(user.id, target, actor.subject, now)  # history and events included
        tasks = repo.open_tasks(user.id)
        repo.move_open_tasks(user.id, target)
        events += _tasks_moved(tasks, target, user.id, actor.subject)
        _summary_email(uow, config, target, user, moved, len(tasks), now)
    for part, visibility in (("shared_resources_to", "SHARED"), ("private_resources_to", "PRIVATE")):
        target = getattr(plan, part)
        if target:
            keys = repo.resources(user.id, visibility)
            repo.move_resources(user.id, target, visibility, now)
            events += [
                DomainEvent(
                    "resource.owner_changed",
                    f"resources/{k.lower()}/{i}",
                    actor.subject,
                    {
                        "resource": f"resources/{k.lower()}/{i}",
                        "owner": f"users/{target}",
                        "previous_owner": f"users/{user.id}",
                    },
                )
                for k, i in keys
            ]
    if plan.shared_resources_to:
        for campaign in repo.campaigns_with(user.id):
            repo.replace_person(campaign, user.id, plan.shared_resources_to, now)
    if plan.team_management_to:
        repo.move_direct_reports(user.id, plan.team_management_to, now)
        repo.move_team_management(user.id, plan.team_management_to, now)
    if plan.team_memberships_to:
        repo.add_memberships(plan.team_memberships_to, repo.memberships(user.id))
    events.append(
        user_event(
            "reassigned",
            user.id,
            actor.subject,
            **{
                name: len(getattr(summary, name).ids)
                for name in ("assignments", "open_tasks", "shared_resources", "private_resources", "direct_reports")
            },
        )
    )
    uow.events.append_all(events, now)


def _summary_email(
    uow: UsersUnitOfWork, config: UsersConfig, target_id: str, source: User, accounts: int, tasks: int, now: dt.datetime
) -> None:
    target = uow.users.get(target_id)
    if target is None or not (accounts or tasks):
        return
    name = f"{source.first_name} {source.last_name}".strip() or source.email
    uow.outbox.add(
        Email(
            kind="REASSIGNMENT",
            to=target.email,
            subject=f"You now own {accounts} accounts and {tasks} tasks from {name}",
            body=(
                f"{name}'s work was reassigned to you in Steward:\n\n"
                f"- {accounts} account assignments (same roles)\n- {tasks} open tasks\n"
            ),
        ),
        now,
    )


def ensure_nothing_left(uow: UsersUnitOfWork, user: User, plan: Plan | None) -> None:
    """Disabling or deleting one user: refuse while they own something no plan part covers."""
    left = holdings(uow, user.id).uncovered_by(plan or Plan())
    if left:
        raise refuse_owner(user, left)


def release_everything(uow: UsersUnitOfWork, user: User, actor: str, now: dt.datetime) -> None:
    """Bulk disable or delete without a plan: private resources go, open tasks and assignments are
    cleared (with history and events); shared resources keep the user as owner."""
    repo = ReassignmentRepository(uow.session, uow.events)
    events: list[DomainEvent] = []
    for kind, resource_id in repo.delete_private_resources(user.id):
        name = f"resources/{kind.lower()}/{resource_id}"
        events.append(DomainEvent("resource.removed", name, actor, {"resource": name}))
    tasks = repo.open_tasks(user.id)
    repo.move_open_tasks(user.id, None)
    events += _tasks_moved(tasks, None, user.id, actor)
    for account, role in repo.clear_assignments(user.id, actor, now):
        events.append(
            assignment_event(
                "cleared",
                account,
                role,
                actor,
                user="",
                previous_user=f"users/{user.id}",
                source="BULK",
                source_ref="user removed",
                attribute=f"{role}___tid",
            )
        )
    uow.events.append_all(events, now)


def _tasks_moved(tasks: list[tuple[str, str]], target: str | None, previous: str, actor: str) -> list[DomainEvent]:
    return [
        DomainEvent(
            "task.assigned",
            f"tasks/{task}",
            actor,
            {
                "task": f"tasks/{task}",
                "account_id": account,
                "assignee": f"users/{target}" if target else "",
                "previous_assignee": f"users/{previous}",
            },
        )
        for task, account in tasks
    ]
