"""Protobuf <-> sync domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct

from services.runtime.errors import FieldViolation, InvalidArgument, Violations
from services.runtime.names import format_name, parse_name
from services.runtime.protobuf import enum_filter, enum_maps, timestamp
from services.sync.connectors.port import Connector
from services.sync.connectors.registry import Connectors
from services.sync.domain.connection import Connection, OAuthGrant
from services.sync.domain.model import Job, JobState, JobType
from services.sync.domain.rows import AccountRow
from services.sync.domain.runs import Run, RunError, RunMode, RunState
from steward.sync.v1 import connections_pb2, jobs_pb2

TYPE, TYPE_FROM_PROTO = enum_maps(JobType, "JOB_TYPE_", jobs_pb2.JobType)
STATE, STATE_FROM_PROTO = enum_maps(JobState, "JOB_STATE_", jobs_pb2.JobState)
MODE, MODE_FROM_PROTO = enum_maps(RunMode, "RUN_MODE_", jobs_pb2.RunMode)
RUN_STATE = enum_maps(RunState, "RUN_STATE_", jobs_pb2.RunState)[0]
GRANT, GRANT_FROM_PROTO = enum_maps(OAuthGrant, "O_AUTH_GRANT_", connections_pb2.OAuthGrant)


def connection_to_proto(c: Connection) -> connections_pb2.Connection:
    return connections_pb2.Connection(
        name=c.name,
        uid=c.id,
        display_name=c.display_name,
        instance_url=c.instance_url,
        api_version=c.api_version,
        oauth=connections_pb2.OAuthSettings(
            grant=GRANT[c.grant],
            token_url=c.token_url,
            client_id=c.client_id,
            username=c.username,
            has_client_secret=bool(c.client_secret),
            has_private_key=bool(c.private_key),
        ),
        create_time=timestamp(c.create_time),
        update_time=timestamp(c.update_time),
        etag=c.etag,
    )


def connection_from_proto(m: connections_pb2.Connection, connection_id: str, now: dt.datetime) -> Connection:
    grant = GRANT_FROM_PROTO.get(m.oauth.grant)
    if grant is None:
        raise InvalidArgument(
            "GRANT_REQUIRED",
            "connection.oauth.grant is required",
            field_violations=[FieldViolation("connection.oauth.grant", "CLIENT_CREDENTIALS or JWT_BEARER", "REQUIRED")],
        )
    return Connection(
        id=connection_id,
        display_name=m.display_name.strip(),
        instance_url=m.instance_url.strip(),
        api_version=m.api_version.strip() or "62.0",
        grant=grant,
        client_id=m.oauth.client_id.strip(),
        create_time=now,
        update_time=now,
        token_url=m.oauth.token_url.strip(),
        username=m.oauth.username.strip(),
        client_secret=m.oauth.client_secret,
        private_key=m.oauth.private_key,
    )


ETM = "salesforce-etm"  # the connector jobs of type JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT have


def type_filter(job_type: int) -> tuple[JobType | None, str | None]:
    """ListJobs' type filter: (job type, connector) to list."""
    if job_type == jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT:
        return JobType.CONNECTOR, ETM
    return enum_filter(job_type, TYPE_FROM_PROTO, "type"), None


def job_to_proto(job: Job, connectors: Connectors) -> jobs_pb2.Job:
    message = jobs_pb2.Job(
        name=job.name,
        uid=job.id,
        display_name=job.display_name,
        type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT if job.connector == ETM else TYPE[job.type],
        state=STATE[job.state],
        connection=format_name("connections", job.connection_id) if job.connection_id else "",
        schedule=job.schedule,
        last_run_time=timestamp(job.last_run_time),
        create_time=timestamp(job.create_time),
        update_time=timestamp(job.update_time),
        etag=job.etag,
        watermark=timestamp(job.watermark),
        last_run=f"{job.name}/runs/{job.last_run_id}" if job.last_run_id else "",
        connector=job.connector,
    )
    connector = connectors.find(job.connector)
    if connector is not None and connector.proto_field and job.settings is not None:
        settings = connector.settings_from_json(job.settings)
        getattr(message, connector.proto_field).CopyFrom(connector.settings_to_proto(settings))
    if job.run_interval is not None:
        message.run_interval.CopyFrom(Duration(seconds=int(job.run_interval.total_seconds())))
    return message


def _connector(m: jobs_pb2.Job, connectors: Connectors, problems: Violations) -> Connector | None:
    """The connector a job names: by `connector`, by the settings set, or by the ETM type; each
    must agree with the others."""
    field = m.WhichOneof("settings")
    by_settings = connectors.by_proto_field(field) if field else None
    named = m.connector.strip() or (ETM if m.type == jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT else "")
    if not named:
        return by_settings
    connector = connectors.find(named)
    if connector is None:
        kinds = ", ".join(c.kind for c in connectors)
        problems.add("job.connector", f"one of {kinds}", "CONNECTOR_UNKNOWN")
    elif by_settings is not None and by_settings is not connector:
        problems.add(f"job.{field}", f"connector {named} takes job.{connector.proto_field}", "SETTINGS_MISMATCH")
    return connector


def job_from_proto(
    m: jobs_pb2.Job, job_id: str, now: dt.datetime, problems: Violations, connectors: Connectors
) -> tuple[Job, Any]:
    """The job, and its connector's settings as given (not yet checked; None for other jobs)."""
    job_type = JobType.CONNECTOR if m.type == jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT else TYPE_FROM_PROTO.get(m.type)
    if job_type is None:
        problems.add("job.type", "one of the JOB_TYPE_ values", "REQUIRED")
    connection = None
    if m.connection:
        try:
            connection = parse_name("connections", m.connection, "job.connection")
        except InvalidArgument as error:
            problems.items += error.field_violations
    connector = _connector(m, connectors, problems) if job_type is JobType.CONNECTOR else None
    settings = None
    if connector is not None and connector.proto_field and m.HasField(connector.proto_field):
        settings = connector.settings_from_proto(getattr(m, connector.proto_field))
    job = Job(
        id=job_id,
        display_name=m.display_name.strip(),
        type=job_type or JobType.CONNECTOR,
        state=STATE_FROM_PROTO.get(m.state, JobState.DRAFT),
        connection_id=connection,
        schedule="",
        create_time=now,
        update_time=now,
        connector=connector.kind if connector is not None else "",
        run_interval=dt.timedelta(seconds=m.run_interval.seconds) if m.HasField("run_interval") else None,
    )
    return job, settings


def mapped_to_proto(row: AccountRow) -> jobs_pb2.MappedRow:
    return jobs_pb2.MappedRow(
        account_id=row.account_id,
        user_email=row.user_email,
        user_name=row.user_name,
        role_value=row.role_value,
        role=row.role,
    )


def source_struct(source: dict[str, Any]) -> Struct:
    out = Struct()
    out.update({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in source.items()})
    return out


def run_to_proto(run: Run) -> jobs_pb2.Run:
    counts = run.counts
    return jobs_pb2.Run(
        name=run.name,
        mode=MODE[run.mode],
        state=RUN_STATE[run.state],
        counts=jobs_pb2.RunCounts(
            rows_read=counts.rows_read,
            assigned=counts.assigned,
            updated=counts.updated,
            unchanged=counts.unchanged,
            skipped=counts.skipped,
            skipped_by_reason=dict(counts.skipped_by_reason),
            stale=counts.stale,
            removed=counts.removed,
        ),
        watermark_before=timestamp(run.watermark_before),
        watermark_after=timestamp(run.watermark_after),
        start_time=timestamp(run.start_time),
        end_time=timestamp(run.end_time),
        error_code=run.error_code,
        error_message=run.error_message,
        queries=run.queries,
        started_by=run.started_by,
    )


def run_error_to_proto(e: RunError) -> jobs_pb2.RunError:
    return jobs_pb2.RunError(
        row=e.row,
        mapped=jobs_pb2.MappedRow(
            account_id=e.account_id,
            user_email=e.user_email,
            user_name=e.user_name,
            role_value=e.role_value,
            role=e.role,
        ),
        reason=e.reason,
        description=e.description,
    )
