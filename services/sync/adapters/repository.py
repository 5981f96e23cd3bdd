"""Loads and stores integration jobs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.runtime.db import flush, keyset
from services.runtime.pagination import Key
from services.sync.adapters.orm import JobRecord
from services.sync.domain.model import Job, JobState, JobType


def _to_domain(row: JobRecord) -> Job:
    return Job(
        id=row.id,
        display_name=row.display_name,
        type=JobType(row.type),
        state=JobState(row.state),
        connection_id=row.connection_id,
        schedule=row.schedule,
        create_time=row.create_time,
        update_time=row.update_time,
        last_run_time=row.last_run_time,
        version=row.version,
    )


class JobRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, job_id: str) -> Job | None:
        row = self._session.get(JobRecord, job_id)
        return None if row is None else _to_domain(row)

    def add(self, job: Job) -> None:
        row = JobRecord(
            id=job.id,
            display_name=job.display_name,
            type=job.type.value,
            state=job.state.value,
            connection_id=job.connection_id,
            schedule=job.schedule,
            last_run_time=job.last_run_time,
            create_time=job.create_time,
            update_time=job.update_time,
        )
        self._session.add(row)
        flush(self._session)
        job.version = row.version

    def list_page(self, *, limit: int, after: Key | None, job_type: JobType | None) -> list[Job]:
        query = select(JobRecord)
        if job_type is not None:
            query = query.where(JobRecord.type == job_type.value)
        query = keyset(query, (JobRecord.display_name, JobRecord.id), after, limit)
        return [_to_domain(row) for row in self._session.scalars(query)]


def list_key(job: Job) -> Key:
    return (job.display_name, job.id)
