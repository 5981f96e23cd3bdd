"""ConnectionService and JobService over gRPC: protobuf in, domain calls, protobuf out.

Who may: reading needs any valid token; changing connections and jobs, previewing, validating
and running need scope sync.write, the operator role, or an ACTIVE global admin / user manager.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import grpc
from google.protobuf.empty_pb2 import Empty

from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.runtime.errors import PermissionDenied, Violations
from services.runtime.names import parse_name, validate_request_id
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import merge_masked, update_paths
from services.runtime.service_client import ServiceCallError
from services.sync import convert
from services.sync.adapters.repository import connection_key, list_key, run_key
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.connectors.port import ConnectorError
from services.sync.connectors.registry import Connectors
from services.sync.domain.connection import Connection, connection_not_found
from services.sync.domain.model import Job, job_not_found
from services.sync.domain.runs import Run, RunError, RunMode, RunState
from services.sync.service_layer import jobs as cases
from services.sync.service_layer.runner import JobRunner
from services.sync.unit_of_work import SyncUnitOfWork
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc

SCOPE_WRITE = "sync.write"
IDS = uuid.UUID("3b1d8f0a-7c2e-4f5a-9e6b-1a2b3c4d5e6f")
POLL_SECONDS = 0.2


class _Base:
    def __init__(self, db: Database, users: SyncUsersClient) -> None:
        self._db = db
        self._users = users

    def _uow(self, write: bool = True) -> SyncUnitOfWork:
        return SyncUnitOfWork(self._db, write=write)

    def _ensure_writer(self) -> str:
        principal = current_principal()
        if (principal.user_id is None and principal.is_admin) or SCOPE_WRITE in principal.scopes:
            return principal.subject
        if principal.user_id is not None:
            try:
                if self._users.is_admin(principal.subject):
                    return f"users/{principal.subject}"
            except ServiceCallError as error:
                raise cases.users_unavailable(error) from error
        raise PermissionDenied(
            "PERMISSION_DENIED",
            f"{principal.subject} may not change or run integrations",
            metadata={"scope": SCOPE_WRITE},
        )

    def _new_id(self, request_id: str, kind: str) -> str:
        validate_request_id(request_id)
        return str(uuid.uuid5(IDS, f"{kind}/{request_id}")) if request_id else str(uuid.uuid4())


class ConnectionServicer(_Base, connections_pb2_grpc.ConnectionServiceServicer):
    def __init__(self, db: Database, users: SyncUsersClient, connectors: Connectors) -> None:
        super().__init__(db, users)
        self._connectors = connectors

    def _get(self, name: str, field: str = "name") -> Connection:
        connection_id = parse_name("connections", name, field)
        with self._uow(write=False) as uow:
            connection = uow.connections.get(connection_id)
        if connection is None:
            raise connection_not_found(connection_id)
        return connection

    def CreateConnection(
        self, request: connections_pb2.CreateConnectionRequest, context: grpc.ServicerContext
    ) -> connections_pb2.Connection:
        self._ensure_writer()
        connection = convert.connection_from_proto(
            request.connection, self._new_id(request.request_id, "connection"), utcnow()
        )
        return convert.connection_to_proto(cases.save_connection(self._uow, connection, new=True))

    def GetConnection(
        self, request: connections_pb2.GetConnectionRequest, context: grpc.ServicerContext
    ) -> connections_pb2.Connection:
        return convert.connection_to_proto(self._get(request.name))

    def ListConnections(
        self, request: connections_pb2.ListConnectionsRequest, context: grpc.ServicerContext
    ) -> connections_pb2.ListConnectionsResponse:
        def fetch(page: PageRequest) -> list[Connection]:
            with self._uow(write=False) as uow:
                return uow.connections.list_page(limit=page.limit, after=page.after)

        found, token = list_response_page(request.page_size, request.page_token, {}, 2, fetch, connection_key)
        return connections_pb2.ListConnectionsResponse(
            connections=[convert.connection_to_proto(c) for c in found], next_page_token=token
        )

    def UpdateConnection(
        self, request: connections_pb2.UpdateConnectionRequest, context: grpc.ServicerContext
    ) -> connections_pb2.Connection:
        self._ensure_writer()
        validate_request_id(request.request_id)
        current = self._get(request.connection.name, "connection.name")
        paths = update_paths(request.update_mask, frozenset({"display_name", "instance_url", "api_version", "oauth"}))
        merged = merge_masked(convert.connection_to_proto(current), request.connection, paths)
        changed = convert.connection_from_proto(merged, current.id, utcnow())
        saved = cases.save_connection(self._uow, changed, request.connection.etag, new=False)
        return convert.connection_to_proto(saved)

    def DeleteConnection(
        self, request: connections_pb2.DeleteConnectionRequest, context: grpc.ServicerContext
    ) -> Empty:
        self._ensure_writer()
        cases.delete_connection(self._uow, parse_name("connections", request.name), request.etag)
        return Empty()

    def TestConnection(
        self, request: connections_pb2.TestConnectionRequest, context: grpc.ServicerContext
    ) -> connections_pb2.TestConnectionResponse:
        self._ensure_writer()
        connection = self._get(request.name)
        connectors = list(self._connectors)
        try:
            connectors[0].authenticate(connection)
        except ConnectorError as error:
            return connections_pb2.TestConnectionResponse(
                ok=False, failed_step="token", error_code=error.code, message=error.message
            )
        checks = []
        # Each connector's object is asked for: an org may let one be read and not another.
        for connector in connectors:
            try:
                connector.check(connection)
                checks.append(connections_pb2.ConnectorCheck(connector=connector.kind, ok=True))
            except ConnectorError as error:
                checks.append(
                    connections_pb2.ConnectorCheck(
                        connector=connector.kind, error_code=error.code, message=error.message
                    )
                )
        if any(c.ok for c in checks):
            return connections_pb2.TestConnectionResponse(ok=True, connectors=checks)
        return connections_pb2.TestConnectionResponse(
            ok=False, failed_step="query", error_code=checks[0].error_code, message=checks[0].message, connectors=checks
        )


class JobServicer(_Base, jobs_pb2_grpc.JobServiceServicer):
    def __init__(
        self,
        db: Database,
        users: SyncUsersClient,
        connectors: Connectors,
        runner: JobRunner,
    ) -> None:
        super().__init__(db, users)
        self._connectors = connectors
        self._runner = runner

    def _get(self, name: str, field: str = "name") -> Job:
        job_id = parse_name("jobs", name, field)
        with self._uow(write=False) as uow:
            job = uow.jobs.get(job_id)
        if job is None:
            raise job_not_found(job_id)
        return job

    def _subject(self, request: jobs_pb2.PreviewJobRequest | jobs_pb2.ValidateJobRequest) -> Job:
        if request.WhichOneof("subject") == "job":
            return self._checked(request.job, request.job.uid or str(uuid.uuid4()))
        return self._get(request.name)

    def _checked(self, message: jobs_pb2.Job, job_id: str) -> Job:
        problems = Violations()
        job, settings = convert.job_from_proto(message, job_id, utcnow(), problems, self._connectors)
        return cases.checked_job(self._uow, self._users, self._connectors, job, settings, problems)

    def CreateJob(self, request: jobs_pb2.CreateJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:
        self._ensure_writer()
        job = self._checked(request.job, self._new_id(request.request_id, "job"))
        return convert.job_to_proto(cases.save_job(self._uow, job, new=True), self._connectors)

    def GetJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:
        return convert.job_to_proto(self._get(request.name), self._connectors)

    def ListJobs(self, request: jobs_pb2.ListJobsRequest, context: grpc.ServicerContext) -> jobs_pb2.ListJobsResponse:
        job_type, connector = convert.type_filter(request.type)

        def fetch(page: PageRequest) -> list[Job]:
            with self._uow(write=False) as uow:
                return uow.jobs.list_page(limit=page.limit, after=page.after, job_type=job_type, connector=connector)

        jobs, next_token = list_response_page(
            request.page_size, request.page_token, {"type": request.type}, 2, fetch, list_key
        )
        return jobs_pb2.ListJobsResponse(
            jobs=[convert.job_to_proto(j, self._connectors) for j in jobs], next_page_token=next_token
        )

    def UpdateJob(self, request: jobs_pb2.UpdateJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:
        self._ensure_writer()
        validate_request_id(request.request_id)
        current = self._get(request.job.name, "job.name")
        settings = {c.proto_field for c in self._connectors if c.proto_field}
        paths = update_paths(
            request.update_mask, frozenset({"display_name", "state", "connection", "run_interval", *settings})
        )
        merged = merge_masked(convert.job_to_proto(current, self._connectors), request.job, paths)
        job = self._checked(merged, current.id)
        return convert.job_to_proto(cases.save_job(self._uow, job, request.job.etag, new=False), self._connectors)

    def DeleteJob(self, request: jobs_pb2.DeleteJobRequest, context: grpc.ServicerContext) -> Empty:
        self._ensure_writer()
        cases.delete_job(self._uow, parse_name("jobs", request.name), request.etag, utcnow())
        return Empty()

    def PreviewJob(
        self, request: jobs_pb2.PreviewJobRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.PreviewJobResponse:
        self._ensure_writer()
        if not 0 <= request.row_count <= 200:
            problems = Violations()
            problems.add("row_count", "0 to 200", "ROW_COUNT_INVALID")
            problems.raise_if_any()
        job = self._subject(request)
        checked, query = cases.preview(self._uow, self._users, self._connectors, job, request.row_count or 20)
        return jobs_pb2.PreviewJobResponse(
            rows=[
                jobs_pb2.PreviewRow(
                    source=convert.source_struct(c.row.source),
                    mapped=convert.mapped_to_proto(c.row),
                    problems=[jobs_pb2.RowProblem(reason=r, description=d) for r, d in c.problems],
                )
                for c in checked
            ],
            query=query,
        )

    def ValidateJob(
        self, request: jobs_pb2.ValidateJobRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.ValidateJobResponse:
        self._ensure_writer()
        job = self._subject(request)
        rows, applicable, reasons = cases.validate_rows(self._uow, self._users, self._connectors, job)
        return jobs_pb2.ValidateJobResponse(
            valid=True,
            rows=rows,
            applicable_rows=applicable,
            row_problems=[jobs_pb2.RowProblemCount(reason=r, rows=n) for r, n in sorted(reasons.items())],
        )

    def RunJob(self, request: jobs_pb2.RunJobRequest, context: grpc.ServicerContext) -> Iterator[jobs_pb2.RunProgress]:
        started_by = self._ensure_writer()
        validate_request_id(request.request_id)
        job_id = parse_name("jobs", request.name)
        mode = convert.MODE_FROM_PROTO.get(request.mode, RunMode.FULL)
        run = self._runner.start(job_id, mode, started_by, request.request_id)
        last = None
        while True:
            with self._uow(write=False) as uow:
                current = uow.runs.get(run.id)
            message = convert.run_to_proto(current or run)
            if message != last:
                yield jobs_pb2.RunProgress(run=message)
                last = message
            if current is None or current.state is not RunState.RUNNING or not context.is_active():
                return
            time.sleep(POLL_SECONDS)

    def GetRun(self, request: jobs_pb2.GetRunRequest, context: grpc.ServicerContext) -> jobs_pb2.Run:
        return convert.run_to_proto(self._run(request.name))

    def _run(self, name: str, field: str = "name") -> Run:
        parts = name.split("/")
        if len(parts) != 4 or parts[2] != "runs":
            problems = Violations()
            problems.add(field, "jobs/{uid}/runs/{run_uid}", "RESOURCE_NAME_INVALID")
            problems.raise_if_any()
        job_id = parse_name("jobs", "/".join(parts[:2]), field)
        with self._uow(write=False) as uow:
            run = uow.runs.get(parts[3])
        if run is None or run.job_id != job_id:
            from services.runtime.errors import NotFound

            raise NotFound("RUN_NOT_FOUND", f"no run {name}", metadata={"run": name})
        return run

    def ListRuns(self, request: jobs_pb2.ListRunsRequest, context: grpc.ServicerContext) -> jobs_pb2.ListRunsResponse:
        job_id = self._get(request.job, "job").id

        def fetch(page: PageRequest) -> list[Run]:
            with self._uow(write=False) as uow:
                return uow.runs.list_page(job_id=job_id, limit=page.limit, after=page.after)

        runs, token = list_response_page(request.page_size, request.page_token, {"job": job_id}, 2, fetch, run_key)
        return jobs_pb2.ListRunsResponse(runs=[convert.run_to_proto(r) for r in runs], next_page_token=token)

    def ListRunErrors(
        self, request: jobs_pb2.ListRunErrorsRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.ListRunErrorsResponse:
        run = self._run(request.run, "run")

        def fetch(page: PageRequest) -> list[RunError]:
            with self._uow(write=False) as uow:
                return uow.runs.errors_page(run_id=run.id, limit=page.limit, after=page.after)

        errors, token = list_response_page(
            request.page_size, request.page_token, {"run": run.id}, 1, fetch, lambda e: (e.row,)
        )
        return jobs_pb2.ListRunErrorsResponse(
            errors=[convert.run_error_to_proto(e) for e in errors], next_page_token=token
        )
