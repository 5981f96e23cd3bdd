"""Tasks and owned resources."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from services.runtime.db import keyset, table_of
from services.runtime.pagination import Key
from services.runtime.set_sql import JsonRows
from services.users.adapters.orm import ResourceRecord, TaskRecord, UserRecord
from services.users.domain.work import CampaignStatus, Resource, ResourceKind, Task, TaskStatus, Visibility


def _task(row: TaskRecord) -> Task:
    return Task(
        id=row.id,
        account_id=row.account_id,
        title=row.title,
        assignee_id=row.assignee_id,
        status=TaskStatus(row.status),
        created_by=row.created_by,
        create_time=row.create_time,
        due_time=row.due_time,
        complete_time=row.complete_time,
    )


def task_key(task: Task) -> Key:
    return (task.create_time.isoformat(), task.id)


class TaskRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, task_id: str, *, for_update: bool = False) -> Task | None:
        query = select(TaskRecord).where(TaskRecord.id == task_id)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return None if row is None else _task(row)

    def add(self, task: Task) -> None:
        self._session.add(
            TaskRecord(
                id=task.id,
                account_id=task.account_id,
                title=task.title,
                assignee_id=task.assignee_id,
                status=task.status.value,
                created_by=task.created_by,
                due_time=task.due_time,
                create_time=task.create_time,
                complete_time=task.complete_time,
            )
        )

    def add_all(self, tasks: Sequence[Task]) -> None:
        """One INSERT (executemany) for a batch of new tasks."""
        if tasks:
            self._session.execute(
                insert(table_of(TaskRecord)),
                [
                    {
                        "id": t.id,
                        "account_id": t.account_id,
                        "title": t.title,
                        "assignee_id": t.assignee_id,
                        "status": t.status.value,
                        "created_by": t.created_by,
                        "due_time": t.due_time,
                        "create_time": t.create_time,
                        "complete_time": t.complete_time,
                    }
                    for t in tasks
                ],
            )

    def save(self, task: Task) -> None:
        row = self._session.get(TaskRecord, task.id)
        if row is None:
            raise LookupError(task.id)
        row.assignee_id, row.status, row.complete_time = task.assignee_id, task.status.value, task.complete_time

    def list_page(
        self,
        *,
        limit: int,
        after: Key | None,
        assignee_id: str | None,
        account_id: str | None,
        status: TaskStatus | None,
    ) -> list[Task]:
        query = select(TaskRecord)
        if assignee_id:
            query = query.where(TaskRecord.assignee_id == assignee_id)
        if account_id:
            query = query.where(TaskRecord.account_id == account_id)
        if status:
            query = query.where(TaskRecord.status == status.value)
        bound = None if after is None else (dt.datetime.fromisoformat(str(after[0])), after[1])
        query = keyset(query, (TaskRecord.create_time, TaskRecord.id), bound, limit)
        return [_task(r) for r in self._session.scalars(query)]


def _resource(row: ResourceRecord) -> Resource:
    return Resource(
        kind=ResourceKind(row.kind),
        id=row.id,
        display_name=row.display_name,
        owner_id=row.owner_id,
        visibility=Visibility(row.visibility),
        update_time=row.update_time,
        campaign_status=CampaignStatus(row.campaign_status) if row.campaign_status else None,
        senders=list(row.senders or []),
        bcc=list(row.bcc or []),
    )


def resource_key(resource: Resource) -> Key:
    return (resource.kind.value, resource.id)


class ResourceRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, kind: ResourceKind, resource_id: str, *, for_update: bool = False) -> Resource | None:
        query = select(ResourceRecord).where(ResourceRecord.kind == kind.value, ResourceRecord.id == resource_id)
        if for_update:
            query = query.with_for_update()
        row = self._session.scalars(query).one_or_none()
        return None if row is None else _resource(row)

    def put(self, resource: Resource) -> None:
        row = self._session.get(ResourceRecord, (resource.kind.value, resource.id))
        if row is None:
            row = ResourceRecord(kind=resource.kind.value, id=resource.id)
            self._session.add(row)
        row.display_name, row.owner_id, row.visibility = (
            resource.display_name,
            resource.owner_id,
            resource.visibility.value,
        )
        row.campaign_status = resource.campaign_status.value if resource.campaign_status else None
        row.senders, row.bcc, row.update_time = list(resource.senders), list(resource.bcc), resource.update_time

    def record_owners_activity(self, kind: ResourceKind, resource_ids: Iterable[str], now: dt.datetime) -> None:
        """last_activity_time = now for the owners of these registered resources, whatever their
        status, with one UPDATE (and a new version, as any write of a user). Resources that are not
        registered change nothing. On PostgreSQL the owners are locked in id order first, within the
        statement, so two batches naming the same owners never deadlock."""
        ids = sorted(set(resource_ids))
        if not ids:
            return
        batch = JsonRows([[i] for i in ids], self._session.get_bind().dialect.name, "resource_ids")
        # IN, not a join: SQLite would read every resource of the kind and scan the ids for each.
        owners = select(ResourceRecord.owner_id).where(
            ResourceRecord.kind == kind.value, ResourceRecord.id.in_(select(batch.text(0)))
        )
        users = table_of(UserRecord)
        owner = users.alias("owner")  # not correlated with the updated table
        locked = select(owner.c.id).where(owner.c.id.in_(owners)).order_by(owner.c.id).with_for_update()
        self._session.execute(
            update(users).where(users.c.id.in_(locked)).values(last_activity_time=now, version=users.c.version + 1)
        )

    def delete(self, kind: ResourceKind, resource_id: str) -> None:
        row = self._session.get(ResourceRecord, (kind.value, resource_id))
        if row is not None:
            self._session.delete(row)
            self._session.flush()

    def list_page(self, *, limit: int, after: Key | None, owner_id: str, kind: ResourceKind | None) -> list[Resource]:
        query = select(ResourceRecord).where(ResourceRecord.owner_id == owner_id)
        if kind:
            query = query.where(ResourceRecord.kind == kind.value)
        query = keyset(query, (ResourceRecord.kind, ResourceRecord.id), after, limit)
        return [_resource(r) for r in self._session.scalars(query)]
