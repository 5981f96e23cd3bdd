"""Rows the public API cannot create yet (later issues add Create methods), written through each
service's own repository so that they are exactly what the service itself would store."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from services.rules.domain.model import EventType, Play, PlayStatus, Trigger
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database
from services.sync.domain.model import Job, JobState, JobType
from services.sync.unit_of_work import SyncUnitOfWork
from services.users.domain.model import License, User, UserStatus
from services.users.unit_of_work import UsersUnitOfWork

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def add_user(
    db: Database,
    email: str,
    *,
    status: UserStatus = UserStatus.ACTIVE,
    license: License = License.PRACTITIONER,
    **fields: Any,
) -> User:
    profile: dict[str, Any] = {"first_name": "Ada", "last_name": "Lovelace"} | fields
    user = User(
        id=str(uuid.uuid4()), email=email, status=status, license=license, create_time=T0, update_time=T0, **profile
    )
    with UsersUnitOfWork(db) as uow:
        uow.users.add(user)
        uow.commit()
    return user


def add_play(
    db: Database,
    display_name: str,
    *,
    status: PlayStatus = PlayStatus.ACTIVE,
    event_type: EventType = EventType.ACCOUNT_CREATED,
) -> Play:
    play = Play(
        id=str(uuid.uuid4()),
        display_name=display_name,
        description="",
        owner_id=str(uuid.uuid4()),
        origin_team="",
        status=status,
        trigger=Trigger(event_type),
        actions=[{"create_task": {"title": "Follow up", "user": "owner@example.com"}}],
        create_time=T0,
        update_time=T0,
    )
    with RulesUnitOfWork(db) as uow:
        uow.plays.add(play)
        uow.commit()
    return play


def add_job(db: Database, display_name: str, *, job_type: JobType = JobType.CONNECTOR) -> Job:
    job = Job(
        id=str(uuid.uuid4()),
        display_name=display_name,
        type=job_type,
        state=JobState.DRAFT,
        connection_id=None,
        schedule="",
        create_time=T0,
        update_time=T0,
        connector="salesforce-etm" if job_type is JobType.CONNECTOR else "",
    )
    with SyncUnitOfWork(db) as uow:
        uow.jobs.add(job)
        uow.commit()
    return job
