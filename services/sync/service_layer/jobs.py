"""Connections and jobs: saved only valid, secrets kept write-only, preview and validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable
from typing import Any

from services.runtime.errors import AlreadyExists, FailedPrecondition, Unavailable, Violations
from services.runtime.etag import check_etag
from services.runtime.service_client import ServiceCallError
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.connectors.port import Connector, ConnectorError, Reader, RowSettings, mapped
from services.sync.connectors.registry import Connectors
from services.sync.domain.connection import Connection, check_connection, connection_not_found
from services.sync.domain.model import Job, JobType, check_job, job_not_found
from services.sync.domain.rows import AccountRow, OneUserPerRole
from services.sync.service_layer.row_checks import CHECK_ROWS, Checked, RowChecker, settle
from services.sync.unit_of_work import SyncUnitOfWork

UowFactory = Callable[..., SyncUnitOfWork]


def users_unavailable(error: ServiceCallError) -> Exception:
    if error.transient:
        return Unavailable("USERS_UNAVAILABLE", f"the users service cannot be reached: {error.message}")
    return FailedPrecondition("USERS_REFUSED", error.message, metadata={"reason": error.reason})


def source_failed(error: ConnectorError) -> Exception:
    if error.transient:
        return Unavailable(f"{error.system}_UNAVAILABLE", f"{error.system.title()} cannot be reached: {error.message}")
    return FailedPrecondition(f"{error.system}_{error.code}", error.message, metadata={"error_code": error.code})


# --- connections ---


def save_connection(uow_factory: UowFactory, connection: Connection, etag: str = "", *, new: bool) -> Connection:
    with uow_factory() as uow:
        current = uow.connections.get(connection.id)
        if new and current is not None:
            return current  # a retried create (the id derives from the request id)
        if not new:
            if current is None:
                raise connection_not_found(connection.id)
            check_etag(etag, current.etag)
            # A secret left empty keeps the stored one: clients never see it to send it back.
            connection = dataclasses.replace(
                connection,
                create_time=current.create_time,
                client_secret=connection.client_secret or current.client_secret,
                private_key=connection.private_key or current.private_key,
                version=current.version,
            )
        check_connection(connection).raise_if_any("the connection is invalid")
        uow.connections.put(connection)
        uow.commit()
    return connection


def delete_connection(uow_factory: UowFactory, connection_id: str, etag: str) -> None:
    with uow_factory() as uow:
        current = uow.connections.get(connection_id)
        if current is None:
            raise connection_not_found(connection_id)
        check_etag(etag, current.etag)
        if uow.jobs.using_connection(connection_id):
            raise FailedPrecondition("CONNECTION_IN_USE", "jobs read from this connection; delete or move them first")
        uow.connections.delete(connection_id)
        uow.commit()


# --- jobs ---


def checked_job(
    uow_factory: UowFactory,
    users: SyncUsersClient,
    connectors: Connectors,
    job: Job,
    settings: Any,
    problems: Violations,
) -> Job:
    """The job with its connector's settings in canonical form, or INVALID_ARGUMENT listing every
    problem. `settings` are the connector's, as given (None: none given). An update cannot
    change the connector (no update path names it; another connector's settings are refused as
    SETTINGS_MISMATCH): the job's watermark would mean nothing to another."""
    connector = connectors.find(job.connector) if job.type is JobType.CONNECTOR else None
    path = f"job.{connector.proto_field or 'settings'}" if connector is not None else "job.settings"
    named = any(v.field == "job.connector" for v in problems.items)
    if job.type is JobType.CONNECTOR and connector is None and not named:
        problems.add("job.connector", f"one of {', '.join(c.kind for c in connectors)}", "REQUIRED")
    if connector is not None and settings is not None:
        checked: RowSettings = connector.canonical(settings, path, problems)
        job = dataclasses.replace(job, settings=connector.settings_to_json(checked))
        try:
            roles = users.role_names()
        except ServiceCallError as error:
            raise users_unavailable(error) from error
        for value, role in checked.role_values.items():
            if role.startswith("roles/") and role not in roles:
                problems.add(f"{path}.role_values[{value}]", f"no account role {role}", "ROLE_UNKNOWN")
    if connector is not None and settings is None:
        problems.add(path, f"a {connector.title} job needs its settings", "REQUIRED")
    problems.items += check_job(job).items
    if job.connection_id:
        with uow_factory(write=False) as uow:
            if uow.connections.get(job.connection_id) is None:
                problems.add("job.connection", f"no connection connections/{job.connection_id}", "CONNECTION_UNKNOWN")
    problems.raise_if_any("the job is invalid")
    return job


def save_job(uow_factory: UowFactory, job: Job, etag: str = "", *, new: bool) -> Job:
    with uow_factory() as uow:
        current = uow.jobs.get(job.id)
        if new and current is not None:
            return current
        if not new:
            if current is None:
                raise job_not_found(job.id)
            check_etag(etag, current.etag)
            job = dataclasses.replace(
                job,
                create_time=current.create_time,
                watermark=current.watermark,
                last_run_id=current.last_run_id,
                last_run_time=current.last_run_time,
                version=current.version,
            )
        if any(other.display_name == job.display_name and other.id != job.id for other in _named(uow, job)):
            raise AlreadyExists("JOB_NAME_TAKEN", f"another job is named {job.display_name!r}")
        uow.jobs.put(job)
        uow.commit()
    return job


def _named(uow: SyncUnitOfWork, job: Job) -> list[Job]:
    return [j for j in uow.jobs.list_page(limit=1000, after=None, job_type=None) if j.display_name == job.display_name]


def delete_job(uow_factory: UowFactory, job_id: str, etag: str, now: dt.datetime) -> None:
    with uow_factory() as uow:
        current = uow.jobs.get(job_id)
        if current is None:
            raise job_not_found(job_id)
        check_etag(etag, current.etag)
        if uow.jobs.running(job_id, now):
            raise FailedPrecondition("RUN_IN_PROGRESS", "the job is running; delete it when the run ends")
        uow.jobs.delete(job_id)
        uow.commit()


# --- preview and validation (read the source and the directory; write nothing) ---


def _reader(uow_factory: UowFactory, connectors: Connectors, job: Job) -> tuple[Connector, RowSettings, Reader]:
    connector, settings, connection_id = connectors.settings_of(job)
    with uow_factory(write=False) as uow:
        connection = uow.connections.get(connection_id)
    if connection is None:
        raise connection_not_found(connection_id)
    return connector, settings, connector.reader(connection, settings)


def preview(
    uow_factory: UowFactory, users: SyncUsersClient, connectors: Connectors, job: Job, count: int
) -> tuple[list[Checked], str]:
    connector, settings, reader = _reader(uow_factory, connectors, job)
    try:
        rows = [mapped(connector, i, source, settings) for i, source in enumerate(reader.rows(limit=count))]
        checked = RowChecker(users, job.name).check(rows)
    except ConnectorError as error:
        raise source_failed(error) from error
    except ServiceCallError as error:
        raise users_unavailable(error) from error
    return checked, reader.queries[0] if reader.queries else ""


def validate_rows(
    uow_factory: UowFactory, users: SyncUsersClient, connectors: Connectors, job: Job
) -> tuple[int, int, Counter[str]]:
    """(rows, applicable rows, rows by problem reason) over everything the job would read."""
    connector, settings, reader = _reader(uow_factory, connectors, job)
    total, applicable, reasons = 0, 0, Counter[str]()
    try:
        # As a run does: checked, then one row per account and role (row_checks.settle).
        checker, chosen = RowChecker(users, job.name), OneUserPerRole()
        chunk: list[AccountRow] = []
        for index, source in enumerate(reader.rows()):
            chunk.append(mapped(connector, index, source, settings, keep_source=False))
            if len(chunk) == CHECK_ROWS:
                total, applicable = _tally(checker, chosen, chunk, reasons, total, applicable)
                chunk = []
        total, applicable = _tally(checker, chosen, chunk, reasons, total, applicable)
    except ConnectorError as error:
        raise source_failed(error) from error
    except ServiceCallError as error:
        raise users_unavailable(error) from error
    return total, applicable, reasons


def _tally(
    checker: RowChecker,
    chosen: OneUserPerRole,
    chunk: list[AccountRow],
    reasons: Counter[str],
    total: int,
    applicable: int,
) -> tuple[int, int]:
    """Counts each row not written under its reason (its first problem, or a conflict)."""
    total, applicable = total + len(chunk), applicable + len(chunk)
    for _, reason, _ in settle(checker, chosen, chunk):
        if reason:  # "": the same user again, written as unchanged; nothing wrong
            reasons[reason] += 1
            applicable -= 1
    return total, applicable
