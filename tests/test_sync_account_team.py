"""Salesforce Account Team Members end to end: the stand-in's AccountTeamMember over HTTP, real
sync and users servers, the same job flow as ETM (filter, preview, mapping, validate, full and
incremental runs, removals, row errors)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.sync.app import build_spec
from services.users.domain.model import UserStatus
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2, users_pb2
from tests.errors import call_fails
from tests.salesforce_kit import create_connection, standin_config
from tests.seed import add_user
from tools.salesforce_standin import Emulator, Org

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ROLE_VALUES = {"Account Manager": "roles/success_manager", "Sales Rep": "roles/sales_manager"}
STEWARD_USERS = ("ann@acme.io", "bob@acme.io", "cat@acme.io", "dan@acme.io")


@dataclass
class Teams:
    org: Org
    accounts: list[str]
    users: dict[str, str]  # email -> Salesforce user id
    members: dict[tuple[int, str], str]  # (account index, email) -> AccountTeamMember id


def build_org() -> Teams:
    """Four accounts and their teams; ghost is a Salesforce user without Steward."""
    org = Org(clock=lambda: T0)
    accounts = [org.add_account(f"Account {i}", at=T0) for i in range(4)]
    users = {email: org.add_user(email) for email in (*STEWARD_USERS, "ghost@acme.io")}
    members = {}
    for index, email, role in (
        (0, "ann@acme.io", "Account Manager"),
        (0, "bob@acme.io", "Sales Rep"),
        (1, "cat@acme.io", "Account Manager"),
        (1, "dan@acme.io", "Executive Sponsor"),  # a role the job does not map
        (2, "ghost@acme.io", "Account Manager"),  # no such Steward user
        (3, "dan@acme.io", "Sales Rep"),
    ):
        members[(index, email)] = org.add_team_member(accounts[index], users[email], role, at=T0)
    return Teams(org, accounts, users, members)


@dataclass
class TeamApi:
    sync: Any
    users: Any
    salesforce: Emulator
    teams: Teams

    @property
    def connections(self) -> connections_pb2_grpc.ConnectionServiceStub:
        return connections_pb2_grpc.ConnectionServiceStub(self.sync.channel)

    @property
    def jobs(self) -> jobs_pb2_grpc.JobServiceStub:
        return jobs_pb2_grpc.JobServiceStub(self.sync.channel)


@pytest.fixture
def team_api(serve, users_api):
    teams = build_org()
    with Emulator(teams.org) as salesforce:
        users = users_api()
        for email in STEWARD_USERS:
            add_user(users.db, email)
        config = standin_config(users.running.address)
        yield TeamApi(serve(build_spec(config)), users, salesforce, teams)


def connect(api: TeamApi, md) -> connections_pb2.Connection:
    return create_connection(api.connections, api.salesforce, md, f"Acme {uuid.uuid4().hex[:6]}")


def team_job(**settings: Any) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        display_name=f"Teams {uuid.uuid4().hex[:6]}",
        type=jobs_pb2.JOB_TYPE_CONNECTOR,
        account_team=jobs_pb2.AccountTeamSettings(**{"role_values": ROLE_VALUES, **settings}),
    )


def make_job(api: TeamApi, md, **settings: Any) -> jobs_pb2.Job:
    job = team_job(**settings)
    job.connection = connect(api, md).name
    return api.jobs.CreateJob(jobs_pb2.CreateJobRequest(job=job), metadata=md)


def run(api: TeamApi, md, job: jobs_pb2.Job, mode=jobs_pb2.RUN_MODE_FULL) -> jobs_pb2.Run:
    progress = list(api.jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name, mode=mode), metadata=md))
    assert progress and progress[0].run.state == jobs_pb2.RUN_STATE_RUNNING
    return progress[-1].run


def team(api: TeamApi, md, index: int) -> dict[str, str]:
    account = api.teams.accounts[index]
    reply = api.users.assignments.GetAccountTeam(assignments_pb2.GetAccountTeamRequest(account_id=account), metadata=md)
    return {key.removesuffix("___tid"): value for key, value in reply.attributes.items()}


def user(api: TeamApi, md, email: str) -> str:
    [found] = api.users.users.ListUsers(users_pb2.ListUsersRequest(emails=[email]), metadata=md).users
    return found.name


def test_a_job_names_its_connector_and_lists_beside_etm_jobs(team_api, admin):
    api = team_api
    job = make_job(api, admin)
    assert (job.type, job.connector) == (jobs_pb2.JOB_TYPE_CONNECTOR, "salesforce-account-team")
    settings = job.account_team
    assert settings.object == "AccountTeamMember" and settings.mapping.role == "TeamMemberRole"
    assert list(settings.fields) == [
        "AccountId",
        "User.Email",
        "User.Name",
        "TeamMemberRole",
        "Id",
        "UserId",
        "LastModifiedDate",
    ]
    assert not job.HasField("etm")
    etm = api.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name="ETM",
                type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
                connection=job.connection,
                etm=jobs_pb2.EtmSettings(role_values={"CSM": "roles/success_manager"}),
            )
        ),
        metadata=admin,
    )
    assert (etm.type, etm.connector) == (jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT, "salesforce-etm")

    def listed(job_type: jobs_pb2.JobType) -> set[str]:
        reply = api.jobs.ListJobs(jobs_pb2.ListJobsRequest(type=job_type), metadata=admin)
        return {j.name for j in reply.jobs}

    assert listed(jobs_pb2.JOB_TYPE_CONNECTOR) == {job.name, etm.name}
    assert listed(jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT) == {etm.name}
    check = api.connections.TestConnection(connections_pb2.TestConnectionRequest(name=job.connection), metadata=admin)
    assert check.ok and {(c.connector, c.ok) for c in check.connectors} == {
        ("salesforce-etm", True),
        ("salesforce-account-team", True),
    }


def test_preview_and_validate_show_each_row_and_its_problems(team_api, admin):
    api = team_api
    job = make_job(api, admin, query_filter="teammemberrole != 'Lead Qualifier'")
    assert job.account_team.query_filter == "TeamMemberRole != 'Lead Qualifier'"  # canonical
    preview = api.jobs.PreviewJob(jobs_pb2.PreviewJobRequest(name=job.name), metadata=admin)
    assert preview.query.startswith("SELECT AccountId, User.Email, User.Name, TeamMemberRole, Id, UserId, ")
    assert preview.query.endswith(
        "FROM AccountTeamMember WHERE TeamMemberRole != 'Lead Qualifier' ORDER BY AccountId, Id LIMIT 20"
    )
    rows = {(r.mapped.account_id, r.mapped.user_email): r for r in preview.rows}
    assert len(rows) == 6
    accounts = api.teams.accounts
    ann = rows[(accounts[0], "ann@acme.io")]
    assert (ann.mapped.role_value, ann.mapped.role, list(ann.problems)) == (
        "Account Manager",
        "roles/success_manager",
        [],
    )
    assert ann.source["TeamMemberRole"] == "Account Manager" and ann.source["User.Email"] == "ann@acme.io"
    [unmapped] = rows[(accounts[1], "dan@acme.io")].problems
    assert (unmapped.reason, unmapped.description) == (
        "ROLE_UNMAPPED",
        "team role 'Executive Sponsor' is not in the job's role table",
    )
    assert [p.reason for p in rows[(accounts[2], "ghost@acme.io")].problems] == ["USER_NOT_FOUND"]
    checked = api.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job.name), metadata=admin)
    assert (checked.valid, checked.rows, checked.applicable_rows) == (True, 6, 4)
    assert {p.reason: p.rows for p in checked.row_problems} == {"ROLE_UNMAPPED": 1, "USER_NOT_FOUND": 1}
    assert team(api, admin, 0) == {}  # preview and validate write nothing


def test_full_and_incremental_runs_keep_account_teams_as_salesforce_has_them(team_api, admin):
    api, teams = team_api, team_api.teams
    job = make_job(api, admin)
    first = run(api, admin, job)
    assert first.state == jobs_pb2.RUN_STATE_SUCCEEDED, first.error_message
    assert (first.counts.rows_read, first.counts.assigned) == (6, 4)
    assert dict(first.counts.skipped_by_reason) == {"ROLE_UNMAPPED": 1, "USER_NOT_FOUND": 1}
    assert first.watermark_after.ToDatetime(tzinfo=dt.UTC) == T0
    ann, bob, cat, dan = (user(api, admin, e) for e in STEWARD_USERS)
    assert team(api, admin, 0) == {"success_manager": ann, "sales_manager": bob}
    assert team(api, admin, 1) == {"success_manager": cat}
    assert team(api, admin, 3) == {"sales_manager": dan}
    errors = api.jobs.ListRunErrors(jobs_pb2.ListRunErrorsRequest(run=first.name), metadata=admin).errors
    assert sorted((e.mapped.user_email, e.reason) for e in errors) == [
        ("dan@acme.io", "ROLE_UNMAPPED"),
        ("ghost@acme.io", "USER_NOT_FOUND"),
    ]

    # dan becomes account 1's Account Manager beside cat, newer: he takes the role; nothing else is read.
    later = T0 + dt.timedelta(days=1)
    teams.org.set_team_role(teams.members[(1, "dan@acme.io")], "Account Manager", at=later)
    second = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert second.state == jobs_pb2.RUN_STATE_SUCCEEDED, second.error_message
    assert "LastModifiedDate >= 2026-01-01T00:00:00Z" in second.queries[0]
    assert second.counts.rows_read == 6  # the watermark's own second is read again (>=)
    assert (second.counts.updated, second.counts.assigned) == (1, 0)
    assert dict(second.counts.skipped_by_reason) == {"ROLE_HELD_BY_ANOTHER_ROW": 1, "USER_NOT_FOUND": 1}
    assert team(api, admin, 1) == {"success_manager": dan}
    assert second.watermark_after.ToDatetime(tzinfo=dt.UTC) == later
    third = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert (third.counts.rows_read, third.counts.updated, third.counts.unchanged) == (1, 0, 1)


def test_mirror_clears_a_member_taken_off_the_team_after_a_full_run(team_api, admin):
    api, teams = team_api, team_api.teams
    mirror = make_job(api, admin, removals=jobs_pb2.REMOVALS_MIRROR)
    assert run(api, admin, mirror).state == jobs_pb2.RUN_STATE_SUCCEEDED
    assert teams.org.remove_team_member(teams.members[(0, "bob@acme.io")])
    # An incremental run cannot see a deletion: nothing is read, nothing removed.
    quiet = run(api, admin, mirror, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert (quiet.counts.stale, quiet.counts.removed) == (0, 0)
    assert "sales_manager" in team(api, admin, 0)
    full = run(api, admin, mirror)
    assert full.state == jobs_pb2.RUN_STATE_SUCCEEDED, full.error_message
    assert (full.counts.stale, full.counts.removed) == (1, 1)
    assert team(api, admin, 0) == {"success_manager": user(api, admin, "ann@acme.io")}


def test_report_counts_a_member_taken_off_the_team_and_changes_nothing(team_api, admin):
    api, teams = team_api, team_api.teams
    report = make_job(api, admin)
    assert run(api, admin, report).state == jobs_pb2.RUN_STATE_SUCCEEDED
    teams.org.remove_team_member(teams.members[(3, "dan@acme.io")])
    counted = run(api, admin, report)
    assert (counted.counts.stale, counted.counts.removed) == (1, 0)
    assert team(api, admin, 3) == {"sales_manager": user(api, admin, "dan@acme.io")}


def test_settings_are_checked_against_account_team_member_and_the_connector_stays(team_api, admin):
    api = team_api
    connection = connect(api, admin).name
    bad = team_job(
        query_filter="RoleInTerritory2 = 'CSM'",
        fields=["AccountId", "User.Email", "Territory2Id"],
        mapping=jobs_pb2.FieldMapping(role="RoleInTerritory2"),
    )
    bad.connection = connection
    failed = call_fails(api.jobs.CreateJob, jobs_pb2.CreateJobRequest(job=bad), metadata=admin)
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(failed.violation_reasons.items()) >= {
        ("job.account_team.query_filter", "QUERY_FILTER_INVALID"),
        ("job.account_team.fields[2]", "FIELD_UNKNOWN"),
        ("job.account_team.mapping.role", "FIELD_UNKNOWN"),
    }
    mismatch = team_job()
    mismatch.connection, mismatch.connector = connection, "salesforce-etm"
    failed = call_fails(api.jobs.CreateJob, jobs_pb2.CreateJobRequest(job=mismatch), metadata=admin)
    assert failed.violation_reasons == {"job.account_team": "SETTINGS_MISMATCH", "job.etm": "REQUIRED"}
    unknown = team_job()
    unknown.connection, unknown.connector = connection, "hubspot"
    failed = call_fails(api.jobs.CreateJob, jobs_pb2.CreateJobRequest(job=unknown), metadata=admin)
    assert list(failed.violation_reasons.items()) == [("job.connector", "CONNECTOR_UNKNOWN")]

    job = make_job(api, admin)
    etm = jobs_pb2.EtmSettings(role_values={"CSM": "roles/success_manager"})
    # Settings of another connector, in place of the job's own: they are not its connector's.
    failed = call_fails(
        api.jobs.UpdateJob,
        jobs_pb2.UpdateJobRequest(
            job=jobs_pb2.Job(name=job.name, etm=etm), update_mask=FieldMask(paths=["etm", "account_team"])
        ),
        metadata=admin,
    )
    assert failed.violation_reasons["job.etm"] == "SETTINGS_MISMATCH"
    # Nor can the whole job become an ETM one: its watermark would mean nothing to ETM.
    replaced = jobs_pb2.Job(
        name=job.name,
        display_name=job.display_name,
        type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
        connection=job.connection,
        etm=etm,
    )
    failed = call_fails(
        api.jobs.UpdateJob, jobs_pb2.UpdateJobRequest(job=replaced, update_mask=FieldMask(paths=["*"])), metadata=admin
    )
    assert failed.violation_reasons["job.etm"] == "SETTINGS_MISMATCH"
    assert api.jobs.GetJob(jobs_pb2.GetJobRequest(name=job.name), metadata=admin) == job
    renamed = api.jobs.UpdateJob(
        jobs_pb2.UpdateJobRequest(
            job=jobs_pb2.Job(
                name=job.name, account_team=jobs_pb2.AccountTeamSettings(role_values={"Sales Rep": "sales_manager"})
            ),
            update_mask=FieldMask(paths=["account_team"]),
        ),
        metadata=admin,
    )
    assert dict(renamed.account_team.role_values) == {"Sales Rep": "roles/sales_manager"}
    assert renamed.connector == "salesforce-account-team"


def test_a_salesforce_failure_fails_the_run_and_keeps_the_watermark(team_api, admin):
    api = team_api
    job = make_job(api, admin)
    assert run(api, admin, job).state == jobs_pb2.RUN_STATE_SUCCEEDED
    api.salesforce.fail_next("REQUEST_LIMIT_EXCEEDED")
    failed = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert failed.state == jobs_pb2.RUN_STATE_FAILED
    assert failed.error_code == "SALESFORCE_REQUEST_LIMIT_EXCEEDED"
    stored = api.jobs.GetJob(jobs_pb2.GetJobRequest(name=job.name), metadata=admin)
    assert stored.watermark.ToDatetime(tzinfo=dt.UTC) == T0


def test_who_may_hold_a_role_is_the_users_services_answer(team_api, admin):
    """Sync asks users (BatchSetAssignments with validate_only) rather than keeping a copy of its
    status rule: a disabled user's rows are refused before they compete, a created one's pass."""
    api = team_api
    bob = user(api, admin, "bob@acme.io")
    api.users.users.DisableUser(users_pb2.DisableUserRequest(name=bob), metadata=admin)
    add_user(api.users.db, "eve@acme.io", status=UserStatus.CREATED)
    eve = api.teams.org.add_user("eve@acme.io")
    api.teams.org.add_team_member(api.teams.accounts[2], eve, "Sales Rep", at=T0)
    job = make_job(api, admin)
    preview = api.jobs.PreviewJob(jobs_pb2.PreviewJobRequest(name=job.name), metadata=admin)
    problems = {r.mapped.user_email: [(p.reason, p.description) for p in r.problems] for r in preview.rows}
    assert problems["bob@acme.io"] == [
        ("USER_NOT_ELIGIBLE", "bob@acme.io: a DISABLED user cannot hold an account role")
    ]
    assert problems["eve@acme.io"] == []
    checked = api.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job.name), metadata=admin)
    assert {p.reason: p.rows for p in checked.row_problems} == {
        "ROLE_UNMAPPED": 1,
        "USER_NOT_FOUND": 1,
        "USER_NOT_ELIGIBLE": 1,
    }
    assert team(api, admin, 2) == {}  # the pre-check wrote nothing
    final = run(api, admin, job)
    assert final.counts.skipped_by_reason["USER_NOT_ELIGIBLE"] == 1
    assert team(api, admin, 2) == {"sales_manager": user(api, admin, "eve@acme.io")}
