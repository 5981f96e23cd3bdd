"""Loads and stores connections, jobs, runs and run errors; the per-job run lease."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from services.runtime.db import flush, keyset, table_of
from services.runtime.pagination import Key
from services.runtime.sealing import Keyring
from services.runtime.set_sql import JsonRows, text_value
from services.sync.adapters.orm import ConnectionRecord, JobRecord, RunErrorRecord, RunRecord
from services.sync.domain.connection import Connection, OAuthGrant
from services.sync.domain.model import Job, JobState, JobType
from services.sync.domain.runs import Run, RunCounts, RunError, RunMode, RunState


def _connection(row: ConnectionRecord, keyring: Keyring) -> Connection:
    return Connection(
        id=row.id,
        display_name=row.display_name,
        instance_url=row.instance_url,
        api_version=row.api_version,
        grant=OAuthGrant(row.grant),
        client_id=row.client_id,
        create_time=row.create_time,
        update_time=row.update_time,
        token_url=row.token_url,
        username=row.username,
        client_secret=keyring.open(row.client_secret),
        private_key=keyring.open(row.private_key),
        version=row.version,
    )


SEALED = ("client_secret", "private_key")  # a connection's credentials: sealed at rest


class ConnectionRepository:
    def __init__(self, session: Session, keyring: Keyring) -> None:
        self._session = session
        self._keyring = keyring

    def get(self, connection_id: str) -> Connection | None:
        row = self._session.get(ConnectionRecord, connection_id)
        return None if row is None else _connection(row, self._keyring)

    def put(self, connection: Connection) -> None:
        row = self._session.get(ConnectionRecord, connection.id)
        if row is None:
            row = ConnectionRecord(id=connection.id, create_time=connection.create_time)
            self._session.add(row)
        for name in (
            "display_name",
            "instance_url",
            "api_version",
            "token_url",
            "client_id",
            "username",
            "update_time",
        ):
            setattr(row, name, getattr(connection, name))
        for name in SEALED:
            value = getattr(connection, name)
            # Sealing is randomised: an unchanged secret keeps its stored form.
            if self._keyring.open(getattr(row, name) or "") != value or getattr(row, name) is None:
                setattr(row, name, self._keyring.seal(value))
        row.grant = connection.grant.value
        flush(self._session)
        connection.version = row.version

    def delete(self, connection_id: str) -> None:
        row = self._session.get(ConnectionRecord, connection_id)
        if row is not None:
            self._session.delete(row)
            flush(self._session)

    def list_page(self, *, limit: int, after: Key | None) -> list[Connection]:
        query = keyset(select(ConnectionRecord), (ConnectionRecord.display_name, ConnectionRecord.id), after, limit)
        return [_connection(row, self._keyring) for row in self._session.scalars(query)]

    def reseal_all(self) -> int:
        """Every stored credential sealed again with the first key (rotation), or sealed for
        the first time; returns the connections rewritten. The version does not move: the
        connection did not change."""
        table = table_of(ConnectionRecord)
        rows = self._session.execute(select(table.c.id, *(table.c[name] for name in SEALED))).all()
        for row in rows:
            values = {name: self._keyring.reseal(getattr(row, name) or "") for name in SEALED}
            self._session.execute(update(table).where(table.c.id == row.id).values(**values))
        return len(rows)


def connection_key(connection: Connection) -> Key:
    return (connection.display_name, connection.id)


# The type a row of an ETM job keeps, and the settings it keeps in `etm`: what replicas of the
# release before connectors read (migration 0003 says when that stops).
LEGACY_ETM_TYPE, LEGACY_ETM_CONNECTOR = "ETM_ACCOUNT_ASSIGNMENT", "salesforce-etm"


def _job_type(stored: str) -> JobType:
    return JobType.CONNECTOR if stored == LEGACY_ETM_TYPE else JobType(stored)


def _stored_type(job: Job) -> str:
    legacy = job.type is JobType.CONNECTOR and job.connector == LEGACY_ETM_CONNECTOR
    return LEGACY_ETM_TYPE if legacy else job.type.value


def _job(row: JobRecord) -> Job:
    return Job(
        id=row.id,
        display_name=row.display_name,
        type=_job_type(row.type),
        state=JobState(row.state),
        connection_id=row.connection_id,
        schedule=row.schedule,
        create_time=row.create_time,
        update_time=row.update_time,
        last_run_time=row.last_run_time,
        version=row.version,
        connector=row.connector,
        settings=dict(row.settings) if row.settings is not None else None,
        run_interval=dt.timedelta(seconds=row.run_interval_seconds) if row.run_interval_seconds else None,
        watermark=row.watermark,
        last_run_id=row.last_run_id or "",
    )


class JobRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, job_id: str, *, for_update: bool = False) -> Job | None:
        row = self._session.get(JobRecord, job_id, with_for_update=for_update)
        return None if row is None else _job(row)

    def put(self, job: Job) -> None:
        row = self._session.get(JobRecord, job.id)
        if row is None:
            row = JobRecord(id=job.id, create_time=job.create_time)
            self._session.add(row)
        row.display_name, row.type, row.state = job.display_name, _stored_type(job), job.state.value
        row.connection_id, row.schedule = job.connection_id, job.schedule
        row.last_run_time, row.update_time = job.last_run_time, job.update_time
        row.connector, row.settings = job.connector, job.settings
        row.etm = job.settings if row.type == LEGACY_ETM_TYPE else None
        row.run_interval_seconds = int(job.run_interval.total_seconds()) if job.run_interval else None
        row.watermark, row.last_run_id = job.watermark, job.last_run_id
        flush(self._session)
        job.version = row.version

    add = put

    def delete(self, job_id: str) -> None:
        row = self._session.get(JobRecord, job_id)
        if row is not None:
            self._session.delete(row)
            flush(self._session)

    def using_connection(self, connection_id: str) -> int:
        query = select(JobRecord.id).where(JobRecord.connection_id == connection_id)
        return len(list(self._session.scalars(query)))

    def list_page(
        self, *, limit: int, after: Key | None, job_type: JobType | None, connector: str | None = None
    ) -> list[Job]:
        query = select(JobRecord)
        if job_type is JobType.CONNECTOR:
            query = query.where(JobRecord.type.in_([JobType.CONNECTOR.value, LEGACY_ETM_TYPE]))
        elif job_type is not None:
            query = query.where(JobRecord.type == job_type.value)
        if connector is not None:
            query = query.where(JobRecord.connector == connector)
        query = keyset(query, (JobRecord.display_name, JobRecord.id), after, limit)
        return [_job(row) for row in self._session.scalars(query)]

    def due(self, now: dt.datetime) -> list[Job]:
        """Active jobs with an interval (the caller checks the time since their last run)."""
        query = select(JobRecord).where(
            JobRecord.state == JobState.ACTIVE.value,
            JobRecord.run_interval_seconds.is_not(None),
            JobRecord.type.in_([JobType.CONNECTOR.value, LEGACY_ETM_TYPE]),
        )
        return [_job(row) for row in self._session.scalars(query)]

    # --- the run lease (plain UPDATE ... WHERE: atomic on SQLite and PostgreSQL alike) ---

    def take_lease(self, job_id: str, run_id: str, now: dt.datetime, until: dt.datetime) -> str | None:
        """Takes the job's lease for run_id unless a live one is held; returns the run id whose
        expired lease was taken over (a crashed run), "" when there was none, None if refused."""
        table = table_of(JobRecord)
        previous = self._session.execute(select(table.c.lease_run_id).where(table.c.id == job_id)).scalar()
        result = self._session.execute(
            update(table)
            .where(
                table.c.id == job_id,
                or_(table.c.lease_run_id.is_(None), table.c.lease_until < now, table.c.lease_run_id == run_id),
            )
            .values(lease_run_id=run_id, lease_until=until)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return previous if previous and previous != run_id else ""

    def renew_lease(self, job_id: str, run_id: str, until: dt.datetime) -> bool:
        table = table_of(JobRecord)
        result = self._session.execute(
            update(table).where(and_(table.c.id == job_id, table.c.lease_run_id == run_id)).values(lease_until=until)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release_lease(self, job_id: str, run_id: str) -> None:
        table = table_of(JobRecord)
        self._session.execute(
            update(table)
            .where(and_(table.c.id == job_id, table.c.lease_run_id == run_id))
            .values(lease_run_id=None, lease_until=None)
        )

    def running(self, job_id: str, now: dt.datetime) -> str | None:
        row = self._session.get(JobRecord, job_id)
        if row is None or row.lease_run_id is None or row.lease_until is None or row.lease_until < now:
            return None
        return row.lease_run_id


def list_key(job: Job) -> Key:
    return (job.display_name, job.id)


def _run(row: RunRecord) -> Run:
    return Run(
        id=row.id,
        job_id=row.job_id,
        mode=RunMode(row.mode),
        state=RunState(row.state),
        start_time=row.start_time,
        started_by=row.started_by,
        counts=RunCounts.from_dict(dict(row.counts)),
        watermark_before=row.watermark_before,
        watermark_after=row.watermark_after,
        end_time=row.end_time,
        error_code=row.error_code,
        error_message=row.error_message,
        queries=list(row.queries),
    )


class RunRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, run_id: str) -> Run | None:
        row = self._session.get(RunRecord, run_id)
        return None if row is None else _run(row)

    def put(self, run: Run) -> None:
        row = self._session.get(RunRecord, run.id)
        if row is None:
            row = RunRecord(id=run.id, job_id=run.job_id, start_time=run.start_time, started_by=run.started_by)
            self._session.add(row)
        row.mode, row.state = run.mode.value, run.state.value
        row.counts, row.queries = run.counts.as_dict(), list(run.queries)
        row.watermark_before, row.watermark_after = run.watermark_before, run.watermark_after
        row.end_time, row.error_code, row.error_message = run.end_time, run.error_code, run.error_message
        self._session.flush()

    def list_page(self, *, job_id: str, limit: int, after: Key | None) -> list[Run]:
        query = select(RunRecord).where(RunRecord.job_id == job_id)
        bound = None if after is None else (dt.datetime.fromisoformat(str(after[0])), after[1])
        query = keyset(query, (RunRecord.start_time, RunRecord.id), bound, limit, descending=True)
        return [_run(row) for row in self._session.scalars(query)]

    def add_errors(self, run_id: str, errors: Sequence[RunError]) -> None:
        """One INSERT ... SELECT for the lot: a million-row run may skip half a million rows."""
        if not errors:
            return
        batch = JsonRows(
            [
                [
                    e.row,
                    e.account_id[:100],
                    e.user_email[:320],
                    e.user_name[:200],
                    e.role_value[:200],
                    e.role[:100],
                    e.reason[:100],
                    e.description,
                ]
                for e in errors
            ],
            self._session.get_bind().dialect.name,
        )
        columns = ["row", "account_id", "user_email", "user_name", "role_value", "role", "reason", "description"]
        self._session.execute(
            insert(table_of(RunErrorRecord)).from_select(
                ["run_id", *columns],
                select(text_value(run_id), batch.integer(0), *(batch.text(i) for i in range(1, len(columns)))),
            )
        )

    def errors_page(self, *, run_id: str, limit: int, after: Key | None) -> list[RunError]:
        query = select(RunErrorRecord).where(RunErrorRecord.run_id == run_id)
        query = keyset(query, (RunErrorRecord.row,), after, limit)
        return [
            RunError(r.row, r.account_id, r.user_email, r.user_name, r.role_value, r.role, r.reason, r.description)
            for r in self._session.scalars(query)
        ]


def run_key(run: Run) -> Key:
    return (run.start_time.isoformat(), run.id)
