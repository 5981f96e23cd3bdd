"""The connector seam: a connector the runner has never heard of, added from the outside, goes
through preview, validation, full and incremental runs and removals, over the real gRPC API
of a sync server built with it (services/sync is not touched to add it)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from google.protobuf.message import Message

from services.runtime.db import utcnow
from services.runtime.errors import Violations
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.app import build_spec
from services.sync.config import SyncConfig
from services.sync.connectors.port import Reader
from services.sync.connectors.registry import Connectors, standard
from services.sync.domain.connection import Connection
from services.sync.domain.model import Job, JobState, JobType, Removals
from services.sync.domain.rows import FieldMapping
from services.sync.service_layer import jobs as cases
from services.sync.unit_of_work import SyncUnitOfWork
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2, users_pb2
from tests.conftest import JWT_SECRET
from tests.seed import add_user

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


MAPPING = FieldMapping(account_id="company", user_email="owner", user_name="", role="kind")


@dataclass(frozen=True)
class CrmSettings:
    mapping: FieldMapping = MAPPING
    role_values: dict[str, str] = field(default_factory=dict)
    removals: Removals = Removals.REPORT


class CrmReader:
    """Rows of an in-memory CRM: a full read comes company by company, an incremental one in
    the order rows changed."""

    def __init__(self, crm: FakeCrm) -> None:
        self._crm = crm
        self.queries: list[str] = []

    def groups_accounts(self, since: dt.datetime | None) -> bool:
        return since is None

    def rows(self, since: dt.datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        self.queries.append(f"owners changed since {since.isoformat()}" if since else "every owner")
        with self._crm.lock:
            rows = [dict(r) for r in self._crm.rows if since is None or r["changed"] >= since]
        rows.sort(key=(lambda r: (r["company"], r["owner"])) if since is None else (lambda r: r["changed"]))
        yield from rows[:limit]


class FakeCrm:
    """A connector for a CRM Steward does not ship: what a new connector has to provide."""

    kind = "fake-crm"
    title = "Fake CRM"
    system = "FAKECRM"
    role_label = "owner kind"
    modified_field = "changed"
    proto_field = None

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[dict[str, Any]] = []

    def put(self, company: str, owner: str, kind: str, changed: dt.datetime) -> None:
        with self.lock:
            self.rows = [r for r in self.rows if (r["company"], r["kind"]) != (company, kind) or r["owner"] != owner]
            self.rows.append({"company": company, "owner": owner, "kind": kind, "changed": changed})

    def drop(self, company: str, owner: str) -> None:
        with self.lock:
            self.rows = [r for r in self.rows if (r["company"], r["owner"]) != (company, owner)]

    def canonical(self, settings: CrmSettings, path: str, problems: Violations) -> CrmSettings:
        if not settings.role_values:
            problems.add(f"{path}.role_values", "map at least one owner kind", "ROLE_VALUES_EMPTY")
        return settings

    def settings_to_json(self, settings: CrmSettings) -> dict[str, Any]:
        return {"role_values": settings.role_values, "removals": settings.removals.value}

    def settings_from_json(self, raw: Mapping[str, Any]) -> CrmSettings:
        return CrmSettings(role_values=dict(raw["role_values"]), removals=Removals(raw["removals"]))

    def settings_to_proto(self, settings: Any) -> Message:
        raise NotImplementedError("no contract field: jobs of this connector are made in-process")

    def settings_from_proto(self, message: Any) -> Any:
        raise NotImplementedError

    def reader(self, connection: Connection, settings: CrmSettings) -> Reader:
        return CrmReader(self)

    def authenticate(self, connection: Connection) -> None:
        pass

    def check(self, connection: Connection) -> None:
        pass


@dataclass
class Seam:
    crm: FakeCrm
    sync: Any
    users: Any
    users_client: SyncUsersClient
    connectors: Connectors

    @property
    def jobs(self) -> jobs_pb2_grpc.JobServiceStub:
        return jobs_pb2_grpc.JobServiceStub(self.sync.channel)


@pytest.fixture
def seam(serve, users_api):
    crm = FakeCrm()
    connectors = Connectors([*standard(), crm])
    users = users_api()
    for email in ("ann@acme.io", "bob@acme.io"):
        add_user(users.db, email)
    config = SyncConfig(users_address=users.running.address, scheduler_poll_seconds=3600)
    client = SyncUsersClient(users.running.address, JWT_SECRET)
    yield Seam(crm, serve(build_spec(config, connectors)), users, client, connectors)
    client.stop(1)


def make_job(seam: Seam, md, removals: Removals = Removals.REPORT) -> str:
    """A job of the fake connector, checked and saved by the service layer: the contract has no
    field for settings it does not know."""
    connection = connections_pb2_grpc.ConnectionServiceStub(seam.sync.channel).CreateConnection(
        connections_pb2.CreateConnectionRequest(
            connection=connections_pb2.Connection(
                display_name="Fake CRM",
                instance_url="https://crm.example",
                oauth=connections_pb2.OAuthSettings(
                    grant=connections_pb2.O_AUTH_GRANT_CLIENT_CREDENTIALS, client_id="id", client_secret="secret"
                ),
            )
        ),
        metadata=md,
    )
    now = utcnow()
    job = Job(
        id=str(uuid.uuid4()),
        display_name=f"CRM {uuid.uuid4().hex[:6]}",
        type=JobType.CONNECTOR,
        state=JobState.DRAFT,
        connection_id=connection.uid,
        schedule="",
        create_time=now,
        update_time=now,
        connector=seam.crm.kind,
    )
    settings = CrmSettings(role_values={"csm": "roles/success_manager", "ae": "roles/sales_manager"}, removals=removals)

    def uow(write: bool = True) -> SyncUnitOfWork:
        return SyncUnitOfWork(seam.sync.db, write=write)

    checked = cases.checked_job(uow, seam.users_client, seam.connectors, job, settings, Violations())
    return cases.save_job(uow, checked, new=True).name


def run(seam: Seam, md, job: str, mode: jobs_pb2.RunMode = jobs_pb2.RUN_MODE_FULL) -> jobs_pb2.Run:
    final = list(seam.jobs.RunJob(jobs_pb2.RunJobRequest(name=job, mode=mode), metadata=md))[-1].run
    assert final.state == jobs_pb2.RUN_STATE_SUCCEEDED, final.error_message
    return final


def team(seam: Seam, md, company: str) -> dict[str, str]:
    reply = seam.users.assignments.GetAccountTeam(
        assignments_pb2.GetAccountTeamRequest(account_id=company), metadata=md
    )
    found = {}
    for key, value in reply.attributes.items():
        user = seam.users.users.GetUser(users_pb2.GetUserRequest(name=value), metadata=md)
        found[key.removesuffix("___tid")] = user.email
    return found


def test_a_new_connector_previews_validates_and_runs_full_and_incremental(seam, admin):
    crm = seam.crm
    crm.put("acme", "ann@acme.io", "csm", T0)
    crm.put("acme", "bob@acme.io", "ae", T0)
    crm.put("globex", "bob@acme.io", "csm", T0)
    crm.put("globex", "zed@acme.io", "ae", T0)  # no such Steward user
    crm.put("initech", "ann@acme.io", "partner", T0)  # an owner kind the job does not map
    job = make_job(seam, admin)
    stored = seam.jobs.GetJob(jobs_pb2.GetJobRequest(name=job), metadata=admin)
    assert (stored.type, stored.connector) == (jobs_pb2.JOB_TYPE_CONNECTOR, "fake-crm")

    preview = seam.jobs.PreviewJob(jobs_pb2.PreviewJobRequest(name=job), metadata=admin)
    assert preview.query == "every owner"
    problems = {(r.mapped.account_id, r.mapped.user_email): [p.reason for p in r.problems] for r in preview.rows}
    assert problems == {
        ("acme", "ann@acme.io"): [],
        ("acme", "bob@acme.io"): [],
        ("globex", "bob@acme.io"): [],
        ("globex", "zed@acme.io"): ["USER_NOT_FOUND"],
        ("initech", "ann@acme.io"): ["ROLE_UNMAPPED"],
    }
    [unmapped] = [r for r in preview.rows if r.mapped.account_id == "initech"]
    assert unmapped.problems[0].description == "owner kind 'partner' is not in the job's role table"
    checked = seam.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job), metadata=admin)
    assert (checked.rows, checked.applicable_rows) == (5, 3)

    full = run(seam, admin, job)
    assert (full.counts.rows_read, full.counts.assigned, full.counts.skipped) == (5, 3, 2)
    assert full.queries == ["every owner"]
    assert team(seam, admin, "acme") == {"success_manager": "ann@acme.io", "sales_manager": "bob@acme.io"}
    assert team(seam, admin, "globex") == {"success_manager": "bob@acme.io"}
    assert full.watermark_after.ToDatetime(tzinfo=dt.UTC) == T0

    later = T0 + dt.timedelta(hours=1)
    crm.put("acme", "bob@acme.io", "csm", later)  # bob becomes acme's CSM too, newer than ann
    incremental = run(seam, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert incremental.queries == [f"owners changed since {T0.isoformat()}"]
    assert incremental.counts.rows_read == 6  # everything stamped T0 again (>=), and bob's new row
    assert incremental.counts.updated == 1
    assert team(seam, admin, "acme")["success_manager"] == "bob@acme.io"
    assert incremental.watermark_after.ToDatetime(tzinfo=dt.UTC) == later


def test_a_new_connector_gets_removals_from_the_runner(seam, admin):
    crm = seam.crm
    crm.put("acme", "ann@acme.io", "csm", T0)
    crm.put("acme", "bob@acme.io", "ae", T0)
    job = make_job(seam, admin, Removals.MIRROR)
    run(seam, admin, job)
    crm.drop("acme", "bob@acme.io")
    assert run(seam, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL).counts.removed == 0
    full = run(seam, admin, job)
    assert (full.counts.stale, full.counts.removed) == (1, 1)
    assert team(seam, admin, "acme") == {"success_manager": "ann@acme.io"}
