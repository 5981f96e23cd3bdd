"""Tasks and owned resources."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import NamedTuple

from services.runtime.errors import DomainError, InvalidArgument
from services.users.domain.events import DomainEvent
from services.users.domain.model import User, user_not_found
from services.users.domain.permissions import (
    Actor,
    ensure_can_complete,
    ensure_can_create_tasks,
    ensure_can_own_resource,
)
from services.users.domain.work import (
    MAX_TASK_BATCH,
    Resource,
    ResourceKind,
    Task,
    TaskStatus,
    check_task,
    check_visibility,
    holder_problem,
    resource_not_found,
    task_item_problem,
    task_not_found,
)
from services.users.unit_of_work import UsersUnitOfWork


def _holder(uow: UsersUnitOfWork, user_id: str, what: str) -> User:
    """Someone who can be handed work: exists, and is neither deleted nor disabled."""
    user = uow.users.get(user_id)
    if user is None:
        raise user_not_found(user_id)
    problem = holder_problem(user.id, user.status, what)
    if problem is not None:
        raise problem
    return user


def create_task(
    uow: UsersUnitOfWork,
    actor: Actor,
    account_id: str,
    title: str,
    assignee_id: str,
    due_time: dt.datetime | None,
    created_by_play: str,
    now: dt.datetime,
) -> Task:
    ensure_can_create_tasks(actor)
    check_task(title, account_id)
    _holder(uow, assignee_id, _ASSIGNED)
    task = _new_task(actor, TaskItem(account_id, title, assignee_id, due_time, created_by_play), now)
    uow.tasks.add(task)
    if created_by_play:
        _record_play_owner_activity(uow, created_by_play, now)
    uow.events.append(_created(task, actor), now)
    return task


_ASSIGNED = "be assigned tasks"


class TaskItem(NamedTuple):
    """One task of a batch, as CreateTask takes it."""

    account_id: str
    title: str
    assignee_id: str
    due_time: dt.datetime | None
    created_by_play: str  # "plays/{uid}" or ""


def _new_task(actor: Actor, item: TaskItem, now: dt.datetime) -> Task:
    return Task(
        id=str(uuid.uuid4()),
        account_id=item.account_id,
        title=item.title.strip(),
        assignee_id=item.assignee_id,
        status=TaskStatus.OPEN,
        created_by=item.created_by_play or (f"users/{actor.user_id}" if actor.user_id else actor.subject),
        create_time=now,
        due_time=item.due_time,
    )


def _created(task: Task, actor: Actor) -> DomainEvent:
    return DomainEvent(
        "task.created",
        f"tasks/{task.id}",
        actor.subject,
        {"task": f"tasks/{task.id}", "account_id": task.account_id, "assignee": f"users/{task.assignee_id}"},
    )


def batch_create_tasks(
    uow: UsersUnitOfWork, actor: Actor, items: Sequence[TaskItem], now: dt.datetime
) -> list[Task | DomainError]:
    """CreateTask for every item, in one transaction and a handful of statements: the assignees
    are read with one query, then the tasks, their task.created events and the last activity of
    the owners of the plays that created them are each written with one statement. Every item is
    checked before anything is written: a failed one (its error, in its place) leaves nothing
    behind and the others still apply."""
    ensure_can_create_tasks(actor)
    if len(items) > MAX_TASK_BATCH:
        raise InvalidArgument("TOO_MANY_ITEMS", f"at most {MAX_TASK_BATCH} tasks per call; got {len(items)}")
    statuses = uow.users.statuses(item.assignee_id for item in items)
    results: list[Task | DomainError] = []
    created: list[Task] = []
    plays: set[str] = set()
    for item in items:
        problem = task_item_problem(item.title, item.account_id) or holder_problem(
            item.assignee_id, statuses.get(item.assignee_id), _ASSIGNED
        )
        if problem is not None:
            results.append(problem)
            continue
        task = _new_task(actor, item, now)
        created.append(task)
        results.append(task)
        if item.created_by_play:
            plays.add(item.created_by_play.removeprefix("plays/"))
    uow.tasks.add_all(created)
    uow.resources.record_owners_activity(ResourceKind.PLAY, plays, now)
    uow.events.append_all([_created(task, actor) for task in created], now)
    return results


def _record_play_owner_activity(uow: UsersUnitOfWork, play: str, now: dt.datetime) -> None:
    """A play acts for its owner (the owner of its registered PLAY resource): their last activity is
    now, even when they are disabled or deleted. An unregistered play changes nothing. No event: activity
    is not a change anyone watches (accepting an invitation records it the same way)."""
    resource = uow.resources.get(ResourceKind.PLAY, play.removeprefix("plays/"))
    if resource is None:
        return
    owner = uow.users.get(resource.owner_id, for_update=True)
    if owner is None:
        return
    owner.record_activity(now)
    uow.users.save(owner)


def complete_task(uow: UsersUnitOfWork, actor: Actor, task_id: str, now: dt.datetime) -> Task:
    task = uow.tasks.get(task_id, for_update=True)
    if task is None:
        raise task_not_found(task_id)
    ensure_can_complete(actor, task.assignee_id or "")
    task.complete(now)
    uow.tasks.save(task)
    uow.events.append(
        DomainEvent(
            "task.completed",
            f"tasks/{task.id}",
            actor.subject,
            {"task": f"tasks/{task.id}", "account_id": task.account_id, "assignee": f"users/{task.assignee_id}"},
        ),
        now,
    )
    return task


def get_task(uow: UsersUnitOfWork, task_id: str) -> Task:
    task = uow.tasks.get(task_id)
    if task is None:
        raise task_not_found(task_id)
    return task


def register_resource(uow: UsersUnitOfWork, actor: Actor, resource: Resource, now: dt.datetime) -> Resource:
    check_visibility(resource.kind, resource.visibility)
    ensure_can_own_resource(actor, resource.owner_id)
    _holder(uow, resource.owner_id, "own resources")
    resource.update_time = now
    uow.resources.put(resource)
    uow.events.append(
        DomainEvent(
            "resource.registered",
            resource.name,
            actor.subject,
            {"resource": resource.name, "owner": f"users/{resource.owner_id}"},
        ),
        now,
    )
    return resource


def delete_resource(uow: UsersUnitOfWork, actor: Actor, kind: ResourceKind, resource_id: str, now: dt.datetime) -> bool:
    resource = uow.resources.get(kind, resource_id, for_update=True)
    if resource is None:
        return False
    ensure_can_own_resource(actor, resource.owner_id)
    uow.resources.delete(kind, resource_id)
    uow.events.append(
        DomainEvent(
            "resource.deleted",
            resource.name,
            actor.subject,
            {"resource": resource.name, "owner": f"users/{resource.owner_id}"},
        ),
        now,
    )
    return True


def change_owner(
    uow: UsersUnitOfWork, actor: Actor, kind: ResourceKind, resource_id: str, owner_id: str, now: dt.datetime
) -> Resource:
    resource = uow.resources.get(kind, resource_id, for_update=True)
    if resource is None:
        raise resource_not_found(kind, resource_id)
    ensure_can_own_resource(actor, resource.owner_id)
    _holder(uow, owner_id, "own resources")
    previous = resource.owner_id
    resource.owner_id, resource.update_time = owner_id, now
    uow.resources.put(resource)
    uow.events.append(
        DomainEvent(
            "resource.owner_changed",
            resource.name,
            actor.subject,
            {"resource": resource.name, "owner": f"users/{owner_id}", "previous_owner": f"users/{previous}"},
        ),
        now,
    )
    return resource
