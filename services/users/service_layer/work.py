"""Tasks and owned resources."""

from __future__ import annotations

import datetime as dt
import uuid

from services.runtime.errors import FailedPrecondition
from services.users.domain.events import DomainEvent
from services.users.domain.model import User, UserStatus, user_not_found
from services.users.domain.permissions import (
    Actor,
    ensure_can_complete,
    ensure_can_create_tasks,
    ensure_can_own_resource,
)
from services.users.domain.work import (
    Resource,
    ResourceKind,
    Task,
    TaskStatus,
    check_task,
    check_visibility,
    resource_not_found,
    task_not_found,
)
from services.users.unit_of_work import UsersUnitOfWork


def _holder(uow: UsersUnitOfWork, user_id: str, what: str) -> User:
    """Someone who can be handed work: exists, and is neither deleted nor disabled."""
    user = uow.users.get(user_id)
    if user is None:
        raise user_not_found(user_id)
    if user.status in (UserStatus.DELETED, UserStatus.DISABLED, UserStatus.CREATED_DISABLED):
        raise FailedPrecondition(
            "USER_NOT_ELIGIBLE", f"a {user.status.value} user cannot {what}", metadata={"user": f"users/{user.id}"}
        )
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
    _holder(uow, assignee_id, "be assigned tasks")
    creator = created_by_play or (f"users/{actor.user_id}" if actor.user_id else actor.subject)
    task = Task(
        id=str(uuid.uuid4()),
        account_id=account_id,
        title=title.strip(),
        assignee_id=assignee_id,
        status=TaskStatus.OPEN,
        created_by=creator,
        create_time=now,
        due_time=due_time,
    )
    uow.tasks.add(task)
    if created_by_play:
        _record_play_owner_activity(uow, created_by_play, now)
    uow.events.append(
        DomainEvent(
            "task.created",
            f"tasks/{task.id}",
            actor.subject,
            {"task": f"tasks/{task.id}", "account_id": account_id, "assignee": f"users/{assignee_id}"},
        ),
        now,
    )
    return task


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
