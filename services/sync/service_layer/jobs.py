"""Connections and jobs: saved only valid, secrets kept write-only, preview and validation."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.runtime.errors import AlreadyExists, FailedPrecondition, Unavailable, Violations
from services.runtime.etag import check_etag
from services.runtime.service_client import ServiceCallError
from services.sync.adapters.etm_reader import EtmReader
from services.sync.adapters.salesforce import SalesforceClient, SalesforceError
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.domain.connection import Connection, check_connection, connection_not_found
from services.sync.domain.etm import CONFLICT, EtmRow, OneUserPerRole, canonical_settings, map_row
from services.sync.domain.model import Job, check_job, job_not_found
from services.sync.domain.soql_filter import accounts_pinned, fields_of, parse
from services.sync.unit_of_work import SyncUnitOfWork
from steward.users.v1 import users_pb2

UowFactory = Callable[..., SyncUnitOfWork]
# Who may hold a role written by an integration (the users service's rule, mirrored to count
# the rows it would refuse before anything is written).
INELIGIBLE = {users_pb2.USER_STATUS_DISABLED, users_pb2.USER_STATUS_CREATED_DISABLED}


def users_unavailable(error: ServiceCallError) -> Exception:
    if error.transient:
        return Unavailable("USERS_UNAVAILABLE", f"the users service cannot be reached: {error.message}")
    return FailedPrecondition("USERS_REFUSED", error.message, metadata={"reason": error.reason})


def salesforce_failed(error: SalesforceError) -> Exception:
    if error.transient:
        return Unavailable("SALESFORCE_UNAVAILABLE", f"Salesforce cannot be reached: {error.message}")
    return FailedPrecondition(f"SALESFORCE_{error.code}", error.message, metadata={"error_code": error.code})


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


def checked_job(uow_factory: UowFactory, users: SyncUsersClient, job: Job, problems: Violations) -> Job:
    """The job with its settings in canonical form, or INVALID_ARGUMENT listing every problem."""
    problems.items += check_job(job).items
    if job.etm is not None:
        job = dataclasses.replace(job, etm=canonical_settings(job.etm, "job.etm", problems))
        parsed = parse(job.etm.query_filter) if job.etm is not None and job.etm.query_filter else None
        if parsed is not None and "Id" in fields_of(parsed) and accounts_pinned(parsed) is None:
            problems.add(
                "job.etm.query_filter",
                "a filter on Id (the view's record id) needs a single AccountId = '...' as well",
                "QUERY_FILTER_UNSUPPORTED",
            )
        try:
            roles = users.role_names()
        except ServiceCallError as error:
            raise users_unavailable(error) from error
        for value, role in (job.etm.role_values if job.etm else {}).items():
            if role.startswith("roles/") and role not in roles:
                problems.add(f"job.etm.role_values[{value}]", f"no account role {role}", "ROLE_UNKNOWN")
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


# --- preview and validation (read Salesforce and the directory; write nothing) ---


@dataclass(frozen=True)
class Checked:
    row: EtmRow
    problems: list[tuple[str, str]]


def _reader(uow_factory: UowFactory, job: Job, salesforce: Callable[[Connection], SalesforceClient]) -> EtmReader:
    assert job.etm is not None
    with uow_factory(write=False) as uow:
        connection = uow.connections.get(job.connection_id or "")
    if connection is None:
        raise connection_not_found(job.connection_id or "")
    return EtmReader(salesforce(connection), job.etm)


def _check_rows(users: SyncUsersClient, rows: list[EtmRow], roles: set[str]) -> list[Checked]:
    known = users.users_by_email([r.user_email for r in rows if r.user_email])
    checked = []
    for row in rows:
        problems = list(row.problems)
        if row.role and row.role not in roles:
            problems.append(("ROLE_NOT_FOUND", f"{row.role} is not an account role"))
        user = known.get(row.user_email.lower()) if row.user_email else None
        if row.user_email and user is None:
            problems.append(("USER_NOT_FOUND", f"no user with email {row.user_email}"))
        elif user is not None and user.status in INELIGIBLE:
            problems.append(("USER_NOT_ELIGIBLE", f"{row.user_email} is {users_pb2.UserStatus.Name(user.status)}"))
        checked.append(Checked(row, problems))
    return checked


def preview(
    uow_factory: UowFactory,
    users: SyncUsersClient,
    salesforce: Callable[[Connection], SalesforceClient],
    job: Job,
    count: int,
) -> tuple[list[Checked], str]:
    assert job.etm is not None
    reader = _reader(uow_factory, job, salesforce)
    try:
        rows = [map_row(i, source, job.etm) for i, source in enumerate(reader.rows(limit=count))]
        checked = _check_rows(users, rows, users.role_names())
    except SalesforceError as error:
        raise salesforce_failed(error) from error
    except ServiceCallError as error:
        raise users_unavailable(error) from error
    return checked, reader.queries[0] if reader.queries else ""


def validate_rows(
    uow_factory: UowFactory,
    users: SyncUsersClient,
    salesforce: Callable[[Connection], SalesforceClient],
    job: Job,
) -> tuple[int, int, Counter[str]]:
    """(rows, applicable rows, rows by problem reason) over everything the job would read."""
    assert job.etm is not None
    reader = _reader(uow_factory, job, salesforce)
    total, applicable, reasons = 0, 0, Counter[str]()
    # As a run does: rows that give an account's role to another user than the row chosen for
    # it are not written (etm.OneUserPerRole).
    chosen, displaced, troubled = OneUserPerRole(), list[int](), set[int]()
    try:
        roles = users.role_names()
        chunk: list[EtmRow] = []
        for index, source in enumerate(reader.rows()):
            row = map_row(index, source, job.etm)
            chunk.append(row)
            if row.applicable and (loser := chosen.offer(row)) is not None and chosen.conflicts(loser):
                displaced.append(loser.index)
            if len(chunk) == 1000:
                total, applicable = _tally(users, chunk, roles, reasons, total, applicable, troubled)
                chunk = []
        total, applicable = _tally(users, chunk, roles, reasons, total, applicable, troubled)
    except SalesforceError as error:
        raise salesforce_failed(error) from error
    except ServiceCallError as error:
        raise users_unavailable(error) from error
    for index in displaced:
        if index not in troubled:
            reasons[CONFLICT] += 1
            applicable -= 1
    return total, applicable, reasons


def _tally(
    users: SyncUsersClient,
    chunk: list[EtmRow],
    roles: set[str],
    reasons: Counter[str],
    total: int,
    applicable: int,
    troubled: set[int],
) -> tuple[int, int]:
    """Counts each row under its first problem; `troubled` gathers the rows that have one."""
    for checked in _check_rows(users, chunk, roles) if chunk else []:
        total += 1
        if checked.problems:
            reasons[checked.problems[0][0]] += 1
            troubled.add(checked.row.index)
        else:
            applicable += 1
    return total, applicable
