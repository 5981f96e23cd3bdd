"""`steward sync ...`: Salesforce connections and ETM jobs of the sync service.

    steward sync connections list|get|create|test|delete     where jobs read from (secrets write-only)
    steward sync jobs list|get|create|update|delete          what they read and how it maps
    steward sync preview JOB                                 the first rows, as they would map
    steward sync validate JOB                                counts over every row; writes nothing
    steward sync run JOB [--follow]                          run now; --follow shows its progress
    steward sync runs JOB                                    its runs, newest first
    steward sync errors RUN                                  the rows a run could not apply
    steward sync upload JOB FILE [--kind users]              a CSV file to a file upload job

JOB is "jobs/<id>" or a job's display name; a connection is "connections/<id>" or its display name.
Secrets never travel on the command line (shell history, `ps`): they come from an environment
variable, a file, or stdin.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text

from services.cli.client import all_pages, as_dict, call, console, emit, errors
from steward.sync.v1 import connections_pb2 as cpb
from steward.sync.v1 import connections_pb2_grpc, jobs_pb2_grpc, uploads_pb2_grpc
from steward.sync.v1 import jobs_pb2 as jpb
from steward.sync.v1 import uploads_pb2 as upb

sync_app = typer.Typer(no_args_is_help=True, help="Salesforce ETM sync: connections, jobs, runs.")
connections_app = typer.Typer(no_args_is_help=True, help="Connections to Salesforce orgs (secrets are write-only).")
jobs_app = typer.Typer(no_args_is_help=True, help="ETM account-assignment jobs.")
sync_app.add_typer(connections_app, name="connections")
sync_app.add_typer(jobs_app, name="jobs")

JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
JOB = typer.Argument(..., help="jobs/<id>, or the job's display name.")
CONNECTION = typer.Argument(..., help="connections/<id>, or the connection's display name.")
T = TypeVar("T")
E = TypeVar("E")
POLL_SECONDS = 0.5


# --- the calls ---


@dataclass
class Sync:
    """The two services of sync over one channel, and the caller's metadata."""

    connections: Any
    jobs: Any
    md: list[tuple[str, str]]

    def find_connection(self, ident: str) -> str:
        """ "connections/<id>" for a resource name or a display name (exit 1 if none or several)."""
        if ident.startswith("connections/"):
            return ident
        request = cpb.ListConnectionsRequest(page_size=1000)
        found = all_pages(request, "connections", lambda r: self.connections.ListConnections(r, metadata=self.md))
        return _one("connection", ident, [c.name for c in found if c.display_name == ident])

    def find_job(self, ident: str) -> str:
        """ "jobs/<id>" for a resource name or a display name (exit 1 if none or several)."""
        if ident.startswith("jobs/"):
            return ident
        named = [j.name for j in self.list_jobs() if j.display_name == ident]
        if not named and _is_uuid(ident):
            return f"jobs/{ident}"
        return _one("job", ident, named)

    def get_job(self, ident: str) -> jpb.Job:
        return self.jobs.GetJob(jpb.GetJobRequest(name=self.find_job(ident)), metadata=self.md)

    def list_jobs(self) -> list[jpb.Job]:
        request = jpb.ListJobsRequest(page_size=1000)
        return all_pages(request, "jobs", lambda r: self.jobs.ListJobs(r, metadata=self.md))

    def connection_labels(self) -> dict[str, str]:
        """ "connections/<id>" -> display name, for tables."""
        request = cpb.ListConnectionsRequest(page_size=1000)
        found = all_pages(request, "connections", lambda r: self.connections.ListConnections(r, metadata=self.md))
        return {c.name: c.display_name for c in found}


def _sync(work: Callable[[Sync], T]) -> T:
    def stubs(channel: Any) -> tuple[Any, Any]:
        return connections_pb2_grpc.ConnectionServiceStub(channel), jobs_pb2_grpc.JobServiceStub(channel)

    return call("sync", stubs, lambda pair, md: work(Sync(pair[0], pair[1], md)))


def _one(kind: str, ident: str, names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    if not names:
        errors.print(Text(f"no {kind} is named {ident!r}"))
    else:
        errors.print(Text(f"{len(names)} {kind}s are named {ident!r}; use one of: {', '.join(names)}"))
    raise typer.Exit(1)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


# --- formatting ---


def _word(enum: Any, prefix: str, value: int) -> str:
    """A proto enum value as a CLI word: RUN_STATE_SUCCEEDED -> succeeded."""
    return str(enum.Name(value)).removeprefix(prefix).lower().replace("_", "-")


def _time(message: Any, field: str) -> str:
    if not message.HasField(field):
        return ""
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


DURATION = re.compile(r"(\d+)([dhms])")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_every(text: str) -> int | None:
    """ "1h", "30m", "1h30m", "2d", "90s" -> seconds; "off"/"never"/"0" -> None (manual runs only)."""
    text = text.strip().lower()
    if text in ("off", "never", "none", "manual", "0"):
        return None
    if not text or DURATION.sub("", text):
        raise typer.BadParameter(f"{text!r}: use e.g. 15m, 1h, 1h30m, 1d, or off", param_hint="--every")
    return sum(int(n) * UNIT_SECONDS[unit] for n, unit in DURATION.findall(text))


def format_every(seconds: int) -> str:
    parts = []
    for unit, size in UNIT_SECONDS.items():
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _every(job: jpb.Job) -> str:
    return format_every(job.run_interval.seconds) if job.HasField("run_interval") else "manual"


def _roles(settings: Settings) -> str:
    return ", ".join(f"{k}={v.removeprefix('roles/')}" for k, v in sorted(settings.role_values.items()))


def _details(rows: list[tuple[str, object]]) -> None:
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, Text(str(value)))
    console.print(table)


def _json(message: Any) -> None:
    print(json.dumps(as_dict(message), indent=2))


# --- connections ---

GRANTS = {"client-credentials": cpb.O_AUTH_GRANT_CLIENT_CREDENTIALS, "jwt-bearer": cpb.O_AUTH_GRANT_JWT_BEARER}
CONNECTION_COLUMNS = [
    ("name", lambda c: c.name),
    ("connection", lambda c: c.display_name),
    ("instance url", lambda c: c.instance_url),
    ("api", lambda c: c.api_version),
    ("grant", lambda c: _word(cpb.OAuthGrant, "O_AUTH_GRANT_", c.oauth.grant)),
    ("client id", lambda c: c.oauth.client_id),
    ("username", lambda c: c.oauth.username),
    ("secret", lambda c: "stored" if c.oauth.has_client_secret or c.oauth.has_private_key else "none"),
]


def _read_secret(what: str, *, env: str, file: Path | None, stdin: bool, strip: bool = True) -> str:
    """A secret from exactly one of: an environment variable, a file ("-": stdin), stdin."""
    sources = [s for s in (env, file, stdin) if s]
    if len(sources) > 1:
        raise typer.BadParameter(f"give the {what} one way only")
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise typer.BadParameter(f"the environment variable {env} is empty or unset ({what})")
    elif file is not None:
        value = sys.stdin.read() if str(file) == "-" else file.read_text()
    elif stdin:
        value = sys.stdin.read()
    else:
        return ""
    value = value.strip() if strip else value
    if not value.strip():
        raise typer.BadParameter(f"the {what} is empty")
    return value


@connections_app.command("list")
def list_connections(as_json: bool = JSON) -> None:
    """Every connection (never its secrets)."""

    def work(sync: Sync) -> list[cpb.Connection]:
        request = cpb.ListConnectionsRequest(page_size=1000)
        return all_pages(request, "connections", lambda r: sync.connections.ListConnections(r, metadata=sync.md))

    emit(_sync(work), CONNECTION_COLUMNS, as_json)


@connections_app.command("get")
def get_connection(connection: str = CONNECTION, as_json: bool = JSON) -> None:
    """One connection (never its secrets)."""

    def work(sync: Sync) -> cpb.Connection:
        name = sync.find_connection(connection)
        return sync.connections.GetConnection(cpb.GetConnectionRequest(name=name), metadata=sync.md)

    found = _sync(work)
    if as_json:
        _json(found)
        return
    oauth = found.oauth
    _details(
        [
            ("name", found.name),
            ("connection", found.display_name),
            ("instance url", found.instance_url),
            ("api version", found.api_version),
            ("grant", _word(cpb.OAuthGrant, "O_AUTH_GRANT_", oauth.grant)),
            ("token url", oauth.token_url or f"{found.instance_url.rstrip('/')}/services/oauth2/token"),
            ("client id", oauth.client_id),
            ("username", oauth.username),
            ("client secret", "stored" if oauth.has_client_secret else "none"),
            ("private key", "stored" if oauth.has_private_key else "none"),
            ("updated", _time(found, "update_time")),
        ]
    )


@connections_app.command("create")
def create_connection(
    name: str = typer.Option(..., "--name", help="Display name, e.g. 'Acme production'."),
    instance_url: str = typer.Option(..., "--instance-url", help="e.g. https://acme.my.salesforce.com"),
    api_version: str = typer.Option("62.0", "--api-version", help="At least 42.0."),
    client_id: str = typer.Option(..., "--client-id", help="The connected app's consumer key."),
    client_secret: str = typer.Option(
        "", "--client-secret", help="Only '-': read the client secret from stdin (never give it on the command line)."
    ),
    client_secret_env: str = typer.Option("", "--client-secret-env", help="Read the client secret from this variable."),
    client_secret_file: Path | None = typer.Option(
        None, "--client-secret-file", help="Read the client secret from this file."
    ),
    grant: str = typer.Option("client-credentials", "--grant", help="client-credentials or jwt-bearer."),
    username: str = typer.Option("", "--username", help="JWT bearer: the Salesforce user the token is for."),
    private_key_file: Path | None = typer.Option(
        None, "--private-key-file", help="JWT bearer: PEM (RS256) or HS256 key file; '-' reads stdin."
    ),
    token_url: str = typer.Option("", "--token-url", help="Default: {instance-url}/services/oauth2/token."),
    as_json: bool = JSON,
) -> None:
    """Save a connection; the secret comes from an environment variable, a file or stdin."""
    if grant not in GRANTS:
        raise typer.BadParameter("choose client-credentials or jwt-bearer", param_hint="--grant")
    if client_secret not in ("", "-"):
        raise typer.BadParameter(
            "a secret on the command line lands in shell history: use --client-secret-env, "
            "--client-secret-file, or '--client-secret -' to read stdin",
            param_hint="--client-secret",
        )
    secret = _read_secret("client secret", env=client_secret_env, file=client_secret_file, stdin=client_secret == "-")
    key = _read_secret("private key", env="", file=private_key_file, stdin=False, strip=False)
    if GRANTS[grant] == cpb.O_AUTH_GRANT_CLIENT_CREDENTIALS and not secret:
        raise typer.BadParameter(
            "client credentials need a secret: --client-secret-env, --client-secret-file or --client-secret -"
        )
    if GRANTS[grant] == cpb.O_AUTH_GRANT_JWT_BEARER and not (username and key):
        raise typer.BadParameter("the JWT bearer grant needs --username and --private-key-file")
    connection = cpb.Connection(
        display_name=name,
        instance_url=instance_url,
        api_version=api_version,
        oauth=cpb.OAuthSettings(
            grant=GRANTS[grant],
            token_url=token_url,
            client_id=client_id,
            client_secret=secret,
            username=username,
            private_key=key,
        ),
    )
    request = cpb.CreateConnectionRequest(connection=connection, request_id=str(uuid.uuid4()))
    emit(_sync(lambda sync: sync.connections.CreateConnection(request, metadata=sync.md)), CONNECTION_COLUMNS, as_json)


@connections_app.command("test")
def test_connection(connection: str = CONNECTION, as_json: bool = JSON) -> None:
    """Get a token and run a one-row query; exit 1 if either fails."""

    def work(sync: Sync) -> tuple[str, cpb.TestConnectionResponse]:
        name = sync.find_connection(connection)
        return name, sync.connections.TestConnection(cpb.TestConnectionRequest(name=name), metadata=sync.md)

    name, result = _sync(work)
    if as_json:
        _json(result)
    elif result.ok:
        console.print(Text(f"{name}: ok (token and query)", style="green"))
    else:
        errors.print(
            Text(f"{name}: {result.failed_step} failed: {result.error_code}: {result.message}", style="red"),
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(1)


@connections_app.command("delete")
def delete_connection(connection: str = CONNECTION) -> None:
    """Delete a connection (refused while jobs read from it)."""

    def work(sync: Sync) -> str:
        name = sync.find_connection(connection)
        sync.connections.DeleteConnection(cpb.DeleteConnectionRequest(name=name), metadata=sync.md)
        return name

    console.print(Text(f"deleted {_sync(work)}"))


# --- jobs ---

STATES = {"draft": jpb.JOB_STATE_DRAFT, "active": jpb.JOB_STATE_ACTIVE, "paused": jpb.JOB_STATE_PAUSED}
REMOVALS = {"report": jpb.REMOVALS_REPORT, "mirror": jpb.REMOVALS_MIRROR}
# A connector's kind -> the Job field holding its settings.
CONNECTORS = {"salesforce-etm": "etm", "salesforce-account-team": "account_team"}
Settings = jpb.EtmSettings | jpb.AccountTeamSettings


def _settings(job: jpb.Job) -> Settings:
    """The job's connector settings (empty for an upload job)."""
    field = job.WhichOneof("settings") or CONNECTORS.get(job.connector, "etm")
    settings: Settings = getattr(job, field)
    return settings


MODES = {"full": jpb.RUN_MODE_FULL, "incremental": jpb.RUN_MODE_INCREMENTAL}


def _job_columns(labels: dict[str, str]) -> list[tuple[str, Callable[[Any], object]]]:
    return [
        ("name", lambda j: j.name),
        ("job", lambda j: j.display_name),
        ("state", lambda j: _word(jpb.JobState, "JOB_STATE_", j.state)),
        ("connection", lambda j: labels.get(j.connection, j.connection)),
        ("filter", lambda j: _settings(j).query_filter),
        ("roles", lambda j: _roles(_settings(j))),
        ("removals", lambda j: _word(jpb.Removals, "REMOVALS_", _settings(j).removals)),
        ("every", _every),
        ("last run", lambda j: _time(j, "last_run_time")),
    ]


def _choice(value: str, choices: dict[str, E], option: str) -> E:
    if value.lower() not in choices:
        raise typer.BadParameter(f"choose one of: {', '.join(choices)}", param_hint=option)
    return choices[value.lower()]


def parse_roles(specs: list[str]) -> dict[str, str]:
    """["CSM=success_manager", "Account Executive=roles/sales_manager"] -> ETM value -> "roles/{key}";
    an empty role ("CSM=") maps to "" (on update: drop that value)."""
    table: dict[str, str] = {}
    for spec in specs:
        value, sep, role = spec.rpartition("=")
        if not sep or not value.strip():
            raise typer.BadParameter(f"{spec!r}: use ETM_VALUE=ROLE, e.g. CSM=success_manager", param_hint="--role")
        role = role.strip()
        table[value.strip()] = role if not role or role.startswith("roles/") else f"roles/{role}"
    return table


@dataclass
class JobOptions:
    """What `jobs create` and `jobs update` were given; None: not given."""

    name: str | None
    connection: str | None
    query_filter: str | None
    roles: list[str]
    removals: str | None
    every: str | None
    state: str | None


NAME_OPTION = typer.Option(None, "--name", help="Display name.")
CONNECTION_OPTION = typer.Option(None, "--connection", help="connections/<id>, or a connection's display name.")
FILTER_OPTION = typer.Option(
    None,
    "--filter",
    help="SOQL WHERE clause over the connector's object (AccountUserTerritory2View, AccountTeamMember).",
)
ROLE_OPTION = typer.Option(
    None, "--role", help="VALUE=ROLE, e.g. CSM=success_manager; repeat. On update: adds or changes; 'CSM=' drops."
)
REMOVALS_OPTION = typer.Option(None, "--removals", help="report (count what the source dropped) or mirror (clear it).")
CONNECTOR_OPTION = typer.Option(
    "salesforce-etm", "--connector", help="What the job reads: salesforce-etm or salesforce-account-team."
)
EVERY_OPTION = typer.Option(None, "--every", help="Run by itself this often (15m, 1h, 1d; at least 5m), or off.")
STATE_OPTION = typer.Option(
    None, "--state", help="draft, active or paused. Only active jobs run by themselves; --every on create: active."
)


def _apply(options: JobOptions, job: jpb.Job, sync: Sync, *, creating: bool) -> list[str]:
    """Write the options given into `job`; the update_mask paths they touch."""
    paths: list[str] = []
    if options.name is not None:
        job.display_name = options.name
        paths.append("display_name")
    if options.connection is not None:
        job.connection = sync.find_connection(options.connection)
        paths.append("connection")
    settings, changed = _settings(job), False
    if options.query_filter is not None:
        settings.query_filter = options.query_filter
        changed = True
    if options.roles:
        table = dict(settings.role_values) if not creating else {}
        for value, role in parse_roles(options.roles).items():
            if role:
                table[value] = role
            else:
                table.pop(value, None)
        settings.ClearField("role_values")
        settings.role_values.update(table)
        changed = True
    if options.removals is not None:
        settings.removals = _choice(options.removals, REMOVALS, "--removals")
        changed = True
    if changed or creating:
        settings.SetInParent()
        paths.append(job.WhichOneof("settings") or "etm")
    if options.every is not None:
        seconds = parse_every(options.every)
        job.ClearField("run_interval")
        if seconds is not None:
            job.run_interval.CopyFrom(Duration(seconds=seconds))
        paths.append("run_interval")
    state = options.state
    if state is None and creating and options.every is not None and job.HasField("run_interval"):
        state = "active"
    if state is not None:
        job.state = _choice(state, STATES, "--state")
        paths.append("state")
    return paths


def _print_job(job: jpb.Job, sync: Sync, as_json: bool) -> None:
    labels = {} if as_json else sync.connection_labels()
    emit(job, _job_columns(labels), as_json)


@jobs_app.command("list")
def list_jobs(as_json: bool = JSON) -> None:
    """Every job, by name."""

    def work(sync: Sync) -> tuple[list[jpb.Job], dict[str, str]]:
        return sync.list_jobs(), ({} if as_json else sync.connection_labels())

    jobs, labels = _sync(work)
    emit(jobs, _job_columns(labels), as_json)


@jobs_app.command("get")
def get_job(job: str = JOB, as_json: bool = JSON) -> None:
    """One job: its filter, role table, schedule and last run."""

    def work(sync: Sync) -> tuple[jpb.Job, dict[str, str]]:
        return sync.get_job(job), ({} if as_json else sync.connection_labels())

    found, labels = _sync(work)
    if as_json:
        _json(found)
        return
    settings = _settings(found)
    mapping = settings.mapping
    connection = f"{labels[found.connection]} ({found.connection})" if found.connection in labels else found.connection
    _details(
        [
            ("name", found.name),
            ("job", found.display_name),
            ("type", _word(jpb.JobType, "JOB_TYPE_", found.type)),
            ("connector", found.connector),
            ("state", _word(jpb.JobState, "JOB_STATE_", found.state)),
            ("connection", connection),
            ("object", settings.object),
            ("fields", ", ".join(settings.fields)),
            ("filter", settings.query_filter),
            (
                "mapping",
                f"account {mapping.account_id}, email {mapping.user_email}, "
                f"name {mapping.user_name}, role {mapping.role}",
            ),
            ("roles", _roles(settings)),
            ("removals", _word(jpb.Removals, "REMOVALS_", settings.removals)),
            ("every", _every(found)),
            ("watermark", _time(found, "watermark")),
            ("last run", f"{found.last_run} {_time(found, 'last_run_time')}".strip()),
        ]
    )


@jobs_app.command("create")
def create_job(
    name: str = typer.Option(..., "--name", help="Display name."),
    connection: str = typer.Option(..., "--connection", help="connections/<id>, or a connection's display name."),
    query_filter: str | None = FILTER_OPTION,
    role: list[str] | None = ROLE_OPTION,
    removals: str | None = REMOVALS_OPTION,
    every: str | None = EVERY_OPTION,
    state: str | None = STATE_OPTION,
    connector: str = CONNECTOR_OPTION,
    as_json: bool = JSON,
) -> None:
    """Save a connector job (checked first: filter, roles, connection; every problem at once)."""
    options = JobOptions(name, connection, query_filter, role or [], removals or "report", every, state)
    if connector not in CONNECTORS:
        raise typer.BadParameter(f"one of {', '.join(CONNECTORS)}", param_hint="--connector")

    def work(sync: Sync) -> jpb.Job:
        job = jpb.Job(type=jpb.JOB_TYPE_CONNECTOR, connector=connector)
        getattr(job, CONNECTORS[connector]).SetInParent()
        _apply(options, job, sync, creating=True)
        request = jpb.CreateJobRequest(job=job, request_id=str(uuid.uuid4()))
        created = sync.jobs.CreateJob(request, metadata=sync.md)
        _print_job(created, sync, as_json)
        return created

    _sync(work)


@jobs_app.command("update")
def update_job(
    job: str = JOB,
    name: str | None = NAME_OPTION,
    connection: str | None = CONNECTION_OPTION,
    query_filter: str | None = FILTER_OPTION,
    role: list[str] | None = ROLE_OPTION,
    removals: str | None = REMOVALS_OPTION,
    every: str | None = EVERY_OPTION,
    state: str | None = STATE_OPTION,
    as_json: bool = JSON,
) -> None:
    """Change what is given and keep the rest (--filter '' clears the filter, --every off the schedule)."""
    options = JobOptions(name, connection, query_filter, role or [], removals, every, state)

    def work(sync: Sync) -> jpb.Job:
        current = sync.get_job(job)
        changed = jpb.Job()
        changed.CopyFrom(current)
        paths = _apply(options, changed, sync, creating=False)
        if not paths:
            raise typer.BadParameter("nothing to change: give --name, --connection, --filter, --role, ... ")
        request = jpb.UpdateJobRequest(job=changed, update_mask=FieldMask(paths=paths), request_id=str(uuid.uuid4()))
        updated = sync.jobs.UpdateJob(request, metadata=sync.md)
        _print_job(updated, sync, as_json)
        return updated

    _sync(work)


@jobs_app.command("delete")
def delete_job(job: str = JOB) -> None:
    """Delete a job (refused while it runs)."""

    def work(sync: Sync) -> str:
        name = sync.find_job(job)
        sync.jobs.DeleteJob(jpb.DeleteJobRequest(name=name), metadata=sync.md)
        return name

    console.print(Text(f"deleted {_sync(work)}"))


# --- preview, validate ---


def _role_cell(mapped: jpb.MappedRow) -> str:
    if not mapped.role:
        return mapped.role_value
    return f"{mapped.role_value} → {mapped.role.removeprefix('roles/')}"


@sync_app.command("preview")
def preview(
    job: str = JOB,
    rows: int = typer.Option(20, "--rows", min=1, max=200, help="How many rows to read."),
    as_json: bool = JSON,
) -> None:
    """The first rows as Salesforce returns them and as they would map; rows with problems in red."""

    def work(sync: Sync) -> jpb.PreviewJobResponse:
        request = jpb.PreviewJobRequest(name=sync.find_job(job), row_count=rows)
        return sync.jobs.PreviewJob(request, metadata=sync.md)

    reply = _sync(work)
    if as_json:
        _json(reply)
        return
    table = Table("account", "email", "name", "role value → role", "problems", caption=reply.query)
    for row in reply.rows:
        mapped = row.mapped
        problems = "; ".join(f"{p.reason}: {p.description}" if p.description else p.reason for p in row.problems)
        table.add_row(
            *(Text(v) for v in (mapped.account_id, mapped.user_email, mapped.user_name, _role_cell(mapped), problems)),
            style="red" if row.problems else None,
        )
    console.print(table)
    bad = sum(1 for r in reply.rows if r.problems)
    console.print(Text(f"{len(reply.rows)} row(s), {bad} with problems"))


@sync_app.command("validate")
def validate(job: str = JOB, as_json: bool = JSON) -> None:
    """Count over every row: how many would apply, and the problems of the others (writes nothing)."""

    def work(sync: Sync) -> jpb.ValidateJobResponse:
        return sync.jobs.ValidateJob(jpb.ValidateJobRequest(name=sync.find_job(job)), metadata=sync.md)

    report = _sync(work)
    if as_json:
        _json(report)
        return
    console.print(Text(f"rows: {report.rows}, applicable: {report.applicable_rows}"))
    if report.row_problems:
        table = Table("problem", "rows")
        for problem in report.row_problems:
            table.add_row(Text(problem.reason, style="red"), str(problem.rows))
        console.print(table)


# --- runs ---

COUNTS = (
    ("read", "rows_read"),
    ("assigned", "assigned"),
    ("updated", "updated"),
    ("unchanged", "unchanged"),
    ("skipped", "skipped"),
    ("stale", "stale"),
    ("removed", "removed"),
)
RUN_COLUMNS: list[tuple[str, Callable[[Any], object]]] = [
    ("run", lambda r: r.name),
    ("mode", lambda r: _word(jpb.RunMode, "RUN_MODE_", r.mode)),
    ("state", lambda r: _word(jpb.RunState, "RUN_STATE_", r.state)),
    ("started", lambda r: _time(r, "start_time")),
    ("ended", lambda r: _time(r, "end_time")),
    ("by", lambda r: r.started_by),
    *((label, (lambda r, f=field: getattr(r.counts, f))) for label, field in COUNTS),
    ("error", lambda r: f"{r.error_code}: {r.error_message}" if r.error_code else ""),
]


def _progress_line(run: jpb.Run) -> str:
    c = run.counts
    return (
        f"read {c.rows_read} · assigned {c.assigned} · updated {c.updated} · unchanged {c.unchanged} · "
        f"skipped {c.skipped} · stale/removed {c.stale}/{c.removed}"
    )


def _summary(run: jpb.Run) -> None:
    state = _word(jpb.RunState, "RUN_STATE_", run.state)
    colour = {"succeeded": "green", "failed": "red"}.get(state, "yellow")
    console.print(Text.assemble(f"{run.name}: ", (state, colour)), soft_wrap=True)
    table = Table("count", "rows")
    for label, field in COUNTS:
        table.add_row(label, str(getattr(run.counts, field)))
    for reason, count in sorted(run.counts.skipped_by_reason.items()):
        table.add_row(Text(f"  skipped: {reason}", style="red"), str(count))
    console.print(table)


def _follow(sync: Sync, stream: Any, first: jpb.Run, quiet: bool) -> jpb.Run:
    """Every progress message until the run ends; then GetRun if the stream stopped before."""
    last = first
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    ) as progress:
        task = progress.add_task(_progress_line(first), total=None)
        for message in stream:
            last = message.run
            progress.update(task, description=_progress_line(last))
        while last.state == jpb.RUN_STATE_RUNNING:
            time.sleep(POLL_SECONDS)
            last = sync.jobs.GetRun(jpb.GetRunRequest(name=last.name), metadata=sync.md)
            progress.update(task, description=_progress_line(last))
    return last


@sync_app.command("run")
def run(
    job: str = JOB,
    mode: str = typer.Option("full", "--mode", help="full (every row the filter selects) or incremental."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Show progress until the run ends."),
    as_json: bool = JSON,
) -> None:
    """Run a job now. Without --follow: print the run's name and return (the run goes on);
    with --follow: show its progress and counts; exit 1 if it fails."""
    run_mode = _choice(mode, MODES, "--mode")

    def work(sync: Sync) -> jpb.Run:
        request = jpb.RunJobRequest(name=sync.find_job(job), mode=run_mode, request_id=str(uuid.uuid4()))
        stream = sync.jobs.RunJob(request, metadata=sync.md)
        message = next(stream, None)
        if message is None:
            errors.print(Text("the sync service ended the run's stream without a word"))
            raise typer.Exit(1)
        first = message.run
        if not follow:
            stream.cancel()  # the run goes on without us
            return first
        try:
            return _follow(sync, stream, first, quiet=as_json)
        except KeyboardInterrupt:
            stream.cancel()
            errors.print(Text(f"stopped following; {first.name} goes on (steward sync runs {job!r})"))
            raise typer.Exit(130) from None

    final = _sync(work)
    if as_json:
        _json(final)
    elif not follow:
        print(final.name)
    else:
        _summary(final)
    if final.state == jpb.RUN_STATE_FAILED:
        errors.print(Text(f"{final.error_code}: {final.error_message}", style="red"), soft_wrap=True)
        raise typer.Exit(1)


@sync_app.command("runs")
def runs(
    job: str = JOB,
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="Newest first, at most this many."),
    as_json: bool = JSON,
) -> None:
    """A job's runs, newest first, with their counts."""

    def work(sync: Sync) -> list[jpb.Run]:
        request = jpb.ListRunsRequest(job=sync.find_job(job), page_size=limit)
        return list(sync.jobs.ListRuns(request, metadata=sync.md).runs)

    found = _sync(work)
    if as_json or console.width >= WIDE_COLUMNS:
        emit(found, RUN_COLUMNS, as_json)
        return
    console.print(narrow_runs_table(found))
    console.print(Text("Wider terminals show every count; --json gives full run names."), soft_wrap=True)


# Below this width the full runs table cuts every cell to "jo…": fewer, shorter columns instead.
WIDE_COLUMNS = 200
NARROW_RUN_COLUMNS: list[tuple[str, Callable[[Any], object]]] = [
    ("run", lambda r: r.name.rsplit("/", 1)[-1][:8]),
    ("mode", lambda r: "incr" if r.mode == jpb.RUN_MODE_INCREMENTAL else "full"),
    ("state", lambda r: _word(jpb.RunState, "RUN_STATE_", r.state)),
    ("started", lambda r: _time(r, "start_time")[5:16].replace("T", " ")),
    ("read", lambda r: r.counts.rows_read),
    ("new", lambda r: r.counts.assigned),
    ("upd", lambda r: r.counts.updated),
    ("same", lambda r: r.counts.unchanged),
    ("skip", lambda r: r.counts.skipped),
    ("error", lambda r: r.error_code),
]


def narrow_runs_table(found: list[jpb.Run]) -> Table:
    """Runs for an 80-column terminal: the run's short id, its state and start, the counts that
    matter; no column is cut (the error code is the only one that may wrap)."""
    table = Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold underline")
    for label, _ in NARROW_RUN_COLUMNS:
        numeric = label in ("read", "new", "upd", "same", "skip")
        table.add_column(
            label,
            no_wrap=label != "error",
            overflow="fold",
            min_width=len(label),
            justify="right" if numeric else "left",
        )
    for r in found:
        table.add_row(*(str(get(r)) for _, get in NARROW_RUN_COLUMNS))
    return table


ERROR_COLUMNS: list[tuple[str, Callable[[Any], object]]] = [
    ("row", lambda e: e.row),
    ("account", lambda e: e.mapped.account_id),
    ("email", lambda e: e.mapped.user_email),
    ("role value", lambda e: e.mapped.role_value),
    ("reason", lambda e: e.reason),
    ("description", lambda e: e.description),
]


@sync_app.command("errors")
def run_errors(
    run_name: str = typer.Argument(..., metavar="RUN", help="jobs/<id>/runs/<id>; or a JOB, for its latest run."),
    limit: int = typer.Option(100, "--limit", min=1, help="At most this many rows, in row order."),
    as_json: bool = JSON,
) -> None:
    """The rows a run could not apply: which account, whom, which role value, and why."""

    def work(sync: Sync) -> list[jpb.RunError]:
        name = run_name
        if "/runs/" not in name:
            found = sync.get_job(name)
            if not found.last_run:
                errors.print(Text(f"{found.name} has not run yet"))
                raise typer.Exit(1)
            name = found.last_run
        rows: list[jpb.RunError] = []
        request = jpb.ListRunErrorsRequest(run=name, page_size=min(limit, 1000))
        while len(rows) < limit:
            reply = sync.jobs.ListRunErrors(request, metadata=sync.md)
            rows += reply.errors
            if not reply.next_page_token:
                break
            request.page_token = reply.next_page_token
        return rows[:limit]

    emit(_sync(work), ERROR_COLUMNS, as_json)


# --- uploads ---

UPLOAD_KINDS = ("assignments", "users")
CHUNK_BYTES = 1024 * 1024


def _chunks(job: str, path: Path, request_id: str, advance: Callable[[int], None]) -> Any:
    """The file in 1 MiB chunks, the first naming the job; each one counted as gRPC takes it."""
    with path.open("rb") as file:
        first = True
        while True:
            data = file.read(CHUNK_BYTES)
            if not data and not first:
                return
            if first:
                yield upb.UploadChunk(job=job, file_name=path.name, request_id=request_id, data=data)
                first = False
            else:
                yield upb.UploadChunk(data=data)
            advance(len(data))
            if not data:
                return


@sync_app.command("upload")
def upload(
    job: str = JOB,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="The CSV file."),
    kind: str = typer.Option("assignments", "--kind", help="What the file holds: assignments or users."),
    as_json: bool = JSON,
) -> None:
    """Upload a CSV file to a file upload job, with a progress bar; prints the run's counts and
    the lines it could not apply (exit 1 if the file is refused or the run fails)."""
    if kind not in UPLOAD_KINDS:
        raise typer.BadParameter(f"{kind!r}: use assignments or users", param_hint="--kind")
    size = file.stat().st_size

    def stubs(channel: Any) -> tuple[Any, Any, Any]:
        return (
            connections_pb2_grpc.ConnectionServiceStub(channel),
            jobs_pb2_grpc.JobServiceStub(channel),
            uploads_pb2_grpc.UploadServiceStub(channel),
        )

    def work(found: tuple[Any, Any, Any], md: list[tuple[str, str]]) -> tuple[jpb.Run, list[jpb.RunError]]:
        sync = Sync(found[0], found[1], md)
        name = sync.find_job(job)
        method = found[2].UploadAssignments if kind == "assignments" else found[2].UploadUsers
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json or not console.is_terminal,
        ) as progress:
            task = progress.add_task(f"uploading {file.name}", total=size)
            chunks = _chunks(name, file, str(uuid.uuid4()), lambda n: progress.advance(task, n))
            finished: jpb.Run = method(chunks, metadata=md)
            progress.update(task, completed=size, description="written")
        request = jpb.ListRunErrorsRequest(run=finished.name, page_size=1000)
        rows = list(sync.jobs.ListRunErrors(request, metadata=md).errors)
        return finished, rows

    final, rows = call("sync", stubs, work)
    if as_json:
        print(json.dumps({"run": as_dict(final), "errors": [as_dict(r) for r in rows]}, indent=2))
    else:
        console.print(Text(f"sent {size} bytes of {file.name}"))
        _summary(final)
        if rows:
            console.print(Text(f"{len(rows)} line(s) not applied:", style="red"))
            table = Table("line", "account", "user", "column", "reason")
            for error in rows:
                user = error.mapped.user_email or error.mapped.user_name
                table.add_row(str(error.row), error.mapped.account_id, user, error.mapped.role_value, error.reason)
            console.print(table)
    if final.state == jpb.RUN_STATE_FAILED:
        errors.print(Text(f"{final.error_code}: {final.error_message}", style="red"), soft_wrap=True)
        raise typer.Exit(1)
