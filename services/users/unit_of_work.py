"""The users service's unit of work: one transaction and the repositories that share it."""

from __future__ import annotations

from typing import Self

from services.runtime.db import UnitOfWork
from services.users.adapters.assignment_batch_repository import AssignmentBatchRepository
from services.users.adapters.assignment_repository import AssignmentRepository, RoleRepository
from services.users.adapters.event_log import EventLog
from services.users.adapters.item_records import ItemRecords
from services.users.adapters.repository import (
    InvitationRepository,
    NotificationOutbox,
    TeamRepository,
    UserRepository,
)
from services.users.adapters.scim_repository import ScimRepository
from services.users.adapters.work_repository import ResourceRepository, TaskRepository


class UsersUnitOfWork(UnitOfWork):
    users: UserRepository
    teams: TeamRepository
    invitations: InvitationRepository
    outbox: NotificationOutbox
    roles: RoleRepository
    assignments: AssignmentRepository
    # Set statements for batches (BatchSetAssignments, BatchClearAssignments).
    assignment_batches: AssignmentBatchRepository
    tasks: TaskRepository
    resources: ResourceRepository
    events: EventLog
    # Idempotency records of batch items (BatchSetAssignments rows, BatchCreateTasks items).
    item_records: ItemRecords
    # What identity providers keep about users and teams (SCIM).
    scim: ScimRepository

    def __enter__(self) -> Self:
        super().__enter__()
        self.users = UserRepository(self.session)
        self.teams = TeamRepository(self.session)
        self.invitations = InvitationRepository(self.session)
        self.outbox = NotificationOutbox(self.session)
        self.roles = RoleRepository(self.session)
        self.assignments = AssignmentRepository(self.session)
        self.tasks = TaskRepository(self.session)
        self.resources = ResourceRepository(self.session)
        self.events = EventLog(self.session)
        self.assignment_batches = AssignmentBatchRepository(self.session, self.events)
        self.item_records = ItemRecords(self.session)
        self.scim = ScimRepository(self.session)
        return self

    def commit(self) -> None:
        self.assignments.flush_history()
        super().commit()
