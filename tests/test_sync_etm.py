"""ETM sync end to end: a Salesforce stand-in over HTTP, real sync and users servers."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from services.sync.app import build_spec
from services.sync.config import SyncConfig
from services.users.unit_of_work import UsersUnitOfWork
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2
from tests.errors import call_fails
from tests.salesforce_kit import create_connection, standin_config
from tests.seed import add_user
from tools.salesforce_standin import Emulator, Org

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class Territories:
    org: Org
    accounts: list[str]
    users: dict[str, str]  # email -> Salesforce user id
    territories: list[str]


def build_org() -> Territories:
    """Three territories of the Active model (and one of a Planning model that must not count)."""
    org = Org(clock=lambda: T0)
    active = org.add_model("FY26", "Active", at=T0)
    planning = org.add_model("FY27", "Planning", at=T0)
    territories = [org.add_territory(f"T{i}", active, at=T0) for i in range(3)]
    future = org.add_territory("Future", planning, at=T0)
    accounts = [org.add_account(f"Account {i}", at=T0) for i in range(6)]
    users = {
        email: org.add_user(email, email.split("@")[0].title())
        for email in ("ann@acme.io", "bob@acme.io", "cat@acme.io", "dan@acme.io", "ghost@acme.io")
    }
    for index, account in enumerate(accounts):
        org.assign_account(account, territories[index % 3], at=T0)
    org.assign_account(accounts[0], future, at=T0)
    org.add_user_to_territory(users["ann@acme.io"], territories[0], "CSM", at=T0)
    org.add_user_to_territory(users["bob@acme.io"], territories[0], "Account Executive", at=T0)
    org.add_user_to_territory(users["cat@acme.io"], territories[1], "CSM", at=T0)
    org.add_user_to_territory(users["dan@acme.io"], territories[2], "Sales Manager", at=T0)  # unmapped role
    org.add_user_to_territory(users["ghost@acme.io"], territories[2], "CSM", at=T0)  # no such Steward user
    org.add_user_to_territory(users["dan@acme.io"], future, "CSM", at=T0)
    return Territories(org, accounts, users, territories)


@dataclass
class SyncApi:
    sync: Any
    users: Any
    salesforce: Emulator
    org: Territories

    @property
    def connections(self):
        return connections_pb2_grpc.ConnectionServiceStub(self.sync.channel)

    @property
    def jobs(self):
        return jobs_pb2_grpc.JobServiceStub(self.sync.channel)


@pytest.fixture
def sync_api(serve, users_api):
    territories = build_org()
    with Emulator(territories.org) as salesforce:
        users = users_api()
        for email in ("ann@acme.io", "bob@acme.io", "cat@acme.io", "dan@acme.io"):
            add_user(users.db, email)
        config = standin_config(users.running.address)
        yield SyncApi(serve(build_spec(config)), users, salesforce, territories)


def connect(api: SyncApi, md) -> connections_pb2.Connection:
    return create_connection(api.connections, api.salesforce, md, "Acme org")


ROLE_VALUES = {"CSM": "roles/success_manager", "Account Executive": "roles/sales_manager"}


def make_job(api: SyncApi, md, *, query_filter: str = "", removals=jobs_pb2.REMOVALS_REPORT) -> jobs_pb2.Job:
    connection = connect(api, md)
    return api.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name=f"ETM {uuid.uuid4().hex[:6]}",
                type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
                connection=connection.name,
                etm=jobs_pb2.EtmSettings(query_filter=query_filter, role_values=ROLE_VALUES, removals=removals),
            )
        ),
        metadata=md,
    )


def run(api: SyncApi, md, job: jobs_pb2.Job, mode=jobs_pb2.RUN_MODE_FULL) -> jobs_pb2.Run:
    progress = list(api.jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name, mode=mode), metadata=md))
    assert progress, "RunJob streamed nothing"
    assert progress[0].run.state == jobs_pb2.RUN_STATE_RUNNING
    return progress[-1].run


def team(api: SyncApi, md, account: str) -> dict[str, str]:
    reply = api.users.assignments.GetAccountTeam(assignments_pb2.GetAccountTeamRequest(account_id=account), metadata=md)
    return dict(reply.attributes)


def user_id(api: SyncApi, md, email: str) -> str:
    from steward.users.v1 import users_pb2

    [user] = api.users.users.ListUsers(users_pb2.ListUsersRequest(emails=[email]), metadata=md).users
    return user.name


def test_a_full_run_assigns_what_the_active_model_says_and_reports_the_rest(sync_api, admin):
    api = sync_api
    job = make_job(api, admin)
    final = run(api, admin, job)
    assert final.state == jobs_pb2.RUN_STATE_SUCCEEDED, final.error_message
    # T0: accounts 0, 3 (ann CSM, bob AE); T1: accounts 1, 4 (cat CSM); T2: accounts 2, 5 (dan, ghost).
    assert final.counts.rows_read == 2 * 2 + 2 * 1 + 2 * 2
    assert (final.counts.assigned, final.counts.updated, final.counts.unchanged) == (6, 0, 0)
    assert dict(final.counts.skipped_by_reason) == {"ROLE_UNMAPPED": 2, "USER_NOT_FOUND": 2}
    accounts = api.org.accounts
    ann, bob, cat = (user_id(api, admin, f"{n}@acme.io") for n in ("ann", "bob", "cat"))
    assert team(api, admin, accounts[0]) == {"success_manager___tid": ann, "sales_manager___tid": bob}
    assert team(api, admin, accounts[4]) == {"success_manager___tid": cat}
    assert team(api, admin, accounts[5]) == {}
    errors = api.jobs.ListRunErrors(jobs_pb2.ListRunErrorsRequest(run=final.name), metadata=admin).errors
    assert sorted((e.mapped.account_id, e.reason) for e in errors) == sorted(
        [
            (accounts[2], "ROLE_UNMAPPED"),
            (accounts[5], "ROLE_UNMAPPED"),
            (accounts[2], "USER_NOT_FOUND"),
            (accounts[5], "USER_NOT_FOUND"),
        ]
    )
    assert all(e.mapped.role_value in ("Sales Manager", "CSM") for e in errors)
    # Whole-org reads go through the association objects: a handful of queries, never the view.
    assert api.salesforce.count("query", sobject="AccountUserTerritory2View") == 0
    assert len(final.queries) == 2
    again = run(api, admin, job)
    assert (again.counts.assigned, again.counts.unchanged) == (0, 6)


def test_incremental_runs_read_only_what_changed_and_move_the_watermark(sync_api, admin):
    api = sync_api
    job = make_job(api, admin)
    first = run(api, admin, job)
    assert first.state == jobs_pb2.RUN_STATE_SUCCEEDED
    assert first.watermark_after.ToDatetime(tzinfo=dt.UTC) == T0
    org, later = api.org, T0 + dt.timedelta(days=1)
    # dan's role in T2 becomes one the job maps: accounts 2 and 5 get a Sales Manager.
    org.org.set_role(org.users["dan@acme.io"], org.territories[2], "Account Executive", at=later)
    second = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert second.state == jobs_pb2.RUN_STATE_SUCCEEDED, second.error_message
    # The first watermark is T0, the second of every row: all of them are read again (>=).
    assert second.counts.rows_read == 10
    assert (second.counts.assigned, second.counts.unchanged) == (2, 6)
    assert second.watermark_after.ToDatetime(tzinfo=dt.UTC) == later
    dan = user_id(api, admin, "dan@acme.io")
    assert team(api, admin, org.accounts[2]) == {"sales_manager___tid": dan}
    stored = api.jobs.GetJob(jobs_pb2.GetJobRequest(name=job.name), metadata=admin)
    assert stored.watermark.ToDatetime(tzinfo=dt.UTC) == later and stored.last_run == second.name
    # Salesforce stamps whole seconds: a change in the watermark's own second must not be missed,
    # so the watermark's second is read again (its rows come back unchanged).
    org.org.set_role(org.users["cat@acme.io"], org.territories[1], "Account Executive", at=later)
    third = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert third.counts.rows_read == 4  # dan's two rows again, and cat's two accounts
    assert (third.counts.unchanged, third.counts.assigned) == (2, 2)
    cat = user_id(api, admin, "cat@acme.io")
    assert team(api, admin, org.accounts[1]) == {"success_manager___tid": cat, "sales_manager___tid": cat}
    assert third.watermark_after == second.watermark_after


def _written(api: SyncApi, md) -> tuple[int, int]:
    """(history changes, assignment events) the users service holds so far."""
    changes, token = 0, ""
    while True:
        reply = api.users.assignments.ListAssignmentHistory(
            assignments_pb2.ListAssignmentHistoryRequest(page_size=1000, page_token=token), metadata=md
        )
        changes += len(reply.changes)
        token = reply.next_page_token
        if not token:
            break
    with UsersUnitOfWork(api.users.db, write=False) as uow:  # the outbox the event stream serves
        events = len(uow.events.after(0, ["assignment.set", "assignment.cleared"], 1_000_000))
    return changes, events


def test_an_incremental_run_reads_and_writes_only_what_changed(sync_api, admin):
    api, org = sync_api, sync_api.org
    for i in range(40):  # a bigger territory T1 (cat is its CSM): the org grows, the change below does not
        org.org.assign_account(org.org.add_account(f"More {i}", at=T0), org.territories[1], at=T0)
    job = make_job(api, admin)
    assert run(api, admin, job).state == jobs_pb2.RUN_STATE_SUCCEEDED
    t1, t2 = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
    org.org.set_role(org.users["dan@acme.io"], org.territories[2], "Account Executive", at=t1)
    assert run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL).watermark_after.ToDatetime(tzinfo=dt.UTC) == t1
    before = _written(api, admin)

    # bob becomes T0's CSM beside ann, newer: 2 accounts change holder, nothing else in the org.
    org.org.set_role(org.users["bob@acme.io"], org.territories[0], "CSM", at=t2)
    changed = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert changed.state == jobs_pb2.RUN_STATE_SUCCEEDED, changed.error_message
    # Read: bob's 2 rows, and dan's 2 of the watermark's second again (not the 46 other accounts).
    assert changed.counts.rows_read == 4
    assert (changed.counts.assigned, changed.counts.updated, changed.counts.unchanged) == (0, 2, 2)
    # Written: exactly the 2 changes; the unchanged rows made no history and no event.
    assert _written(api, admin) == (before[0] + 2, before[1] + 2)
    bob = user_id(api, admin, "bob@acme.io")
    assert team(api, admin, org.accounts[3])["success_manager___tid"] == bob


def test_two_users_in_one_role_settle_on_the_newest_row_and_stop_moving(sync_api, admin):
    """ETM can give an account two users in one role; an account has one per role. Writing both
    would move the role between them on every run."""
    api, org = sync_api, sync_api.org
    later = T0 + dt.timedelta(days=1)
    org.org.add_user_to_territory(org.users["cat@acme.io"], org.territories[0], "CSM", at=later)  # beside ann
    org.org.add_user_to_territory(org.users["bob@acme.io"], org.territories[1], "CSM", at=T0)  # beside cat, as old
    # The newest CSM of T1 is no Steward user: that row is refused before it competes.
    org.org.add_user_to_territory(org.users["ghost@acme.io"], org.territories[1], "CSM", at=later)
    job = make_job(api, admin)
    checked = api.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job.name), metadata=admin)
    problems = {p.reason: p.rows for p in checked.row_problems}
    assert problems == {"ROLE_HELD_BY_ANOTHER_ROW": 4, "USER_NOT_FOUND": 4, "ROLE_UNMAPPED": 2}
    assert (checked.rows, checked.applicable_rows) == (16, 6)
    first = run(api, admin, job)
    assert first.state == jobs_pb2.RUN_STATE_SUCCEEDED, first.error_message
    ann, bob, cat = (user_id(api, admin, f"{n}@acme.io") for n in ("ann", "bob", "cat"))
    # T0 (accounts 0, 3): cat's association is newer than ann's. T1 (accounts 1, 4): bob's and
    # cat's are as old, and bob comes first by user.
    for account, holder in ((0, cat), (3, cat), (1, bob), (4, bob)):
        assert team(api, admin, org.accounts[account])["success_manager___tid"] == holder, account
    assert dict(first.counts.skipped_by_reason) == problems  # what ValidateJob said
    errors = api.jobs.ListRunErrors(jobs_pb2.ListRunErrorsRequest(run=first.name), metadata=admin).errors
    conflicts = sorted(
        (org.accounts.index(e.mapped.account_id), e.mapped.user_email, e.description.split("gives it to ")[1])
        for e in errors
        if e.reason == "ROLE_HELD_BY_ANOTHER_ROW"
    )
    assert [c[:2] for c in conflicts] == [
        (0, "ann@acme.io"),
        (1, "cat@acme.io"),
        (3, "ann@acme.io"),
        (4, "cat@acme.io"),
    ]
    assert [c[2].split(" ")[0] for c in conflicts] == ["cat@acme.io", "bob@acme.io", "cat@acme.io", "bob@acme.io"]

    again = run(api, admin, job)  # nothing moves: every row of the chosen users is unchanged
    assert (again.counts.assigned, again.counts.updated) == (0, 0)
    assert again.counts.skipped_by_reason["ROLE_HELD_BY_ANOTHER_ROW"] == 4

    # ann's association changes after cat's: an incremental run, which reads only ann's rows,
    # picks what a full run picks.
    org.org.touch_user_association(org.users["ann@acme.io"], org.territories[0], at=later + dt.timedelta(hours=1))
    incremental = run(api, admin, job, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert incremental.counts.updated == 2
    assert team(api, admin, org.accounts[0])["success_manager___tid"] == ann
    full = run(api, admin, job)
    assert (full.counts.assigned, full.counts.updated) == (0, 0)
    assert team(api, admin, org.accounts[3])["success_manager___tid"] == ann


def test_mirror_clears_only_what_this_job_wrote_and_etm_dropped(sync_api, admin):
    api = sync_api
    report = make_job(api, admin)
    mirror = make_job(api, admin, removals=jobs_pb2.REMOVALS_MIRROR)
    assert run(api, admin, mirror).state == jobs_pb2.RUN_STATE_SUCCEEDED
    org = api.org
    org.org.remove_user_from_territory(org.users["bob@acme.io"], org.territories[0])  # bob leaves T0
    org.org.remove_user_from_territory(org.users["cat@acme.io"], org.territories[1])  # cat leaves T1
    # Someone changes account 4 by hand: no longer the job's to clear.
    dan = user_id(api, admin, "dan@acme.io")
    api.users.assignments.SetAssignment(
        assignments_pb2.SetAssignmentRequest(
            account_id=org.accounts[4],
            role="roles/success_manager",
            user=assignments_pb2.UserRef(user=dan),
            source=assignments_pb2.WriteSource(source=assignments_pb2.ASSIGNMENT_SOURCE_MANUAL),
        ),
        metadata=admin,
    )
    reported = run(api, admin, report)
    assert (reported.counts.stale, reported.counts.removed) == (0, 0)  # the report job wrote nothing left
    mirrored = run(api, admin, mirror)
    assert mirrored.state == jobs_pb2.RUN_STATE_SUCCEEDED, mirrored.error_message
    # bob on accounts 0 and 3 and cat on account 1 are stale; account 4 was changed by hand.
    assert (mirrored.counts.stale, mirrored.counts.removed) == (3, 3)
    assert "sales_manager___tid" not in team(api, admin, org.accounts[0])
    assert team(api, admin, org.accounts[1]) == {}
    assert team(api, admin, org.accounts[4]) == {"success_manager___tid": dan}
    incremental = run(api, admin, mirror, jobs_pb2.RUN_MODE_INCREMENTAL)
    assert incremental.counts.stale == 0  # only full runs know what ETM stopped returning


def test_a_storm_of_429s_and_an_expired_token_lose_nothing(sync_api, admin):
    api = sync_api
    job = make_job(api, admin)
    api.salesforce.fail_next("429", count=4, retry_after=0, scope="query")
    api.salesforce.expire_tokens()
    final = run(api, admin, job)
    assert final.state == jobs_pb2.RUN_STATE_SUCCEEDED, final.error_message
    assert final.counts.assigned == 6
    api.salesforce.fail_next("503", count=50, scope="query")
    failed = run(api, admin, job)
    assert failed.state == jobs_pb2.RUN_STATE_FAILED and failed.error_code.startswith("SALESFORCE_")
    assert failed.watermark_after == final.watermark_after  # the watermark stays with a failed run


def test_a_single_account_filter_reads_the_view_directly(sync_api, admin):
    api = sync_api
    account = api.org.accounts[0]
    job = make_job(api, admin, query_filter=f"accountid = '{account}' and RoleInTerritory2 = 'CSM'")
    assert job.etm.query_filter == f"AccountId = '{account}' AND RoleInTerritory2 = 'CSM'"
    final = run(api, admin, job)
    assert final.counts.rows_read == 1 and final.counts.assigned == 1
    assert api.salesforce.count("query", sobject="AccountUserTerritory2View") == 1
    assert final.queries == [
        "SELECT AccountId, User.Email, User.Name, RoleInTerritory2, Id, Territory2Id, LastModifiedDate "
        f"FROM AccountUserTerritory2View WHERE AccountId = '{account}' AND RoleInTerritory2 = 'CSM'"
    ]


def test_bad_settings_are_refused_with_every_problem_and_the_filter_position(sync_api, admin):
    api = sync_api
    connection = connect(api, admin)
    refused = call_fails(
        api.jobs.CreateJob,
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name="Broken",
                type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
                connection=connection.name,
                etm=jobs_pb2.EtmSettings(
                    query_filter="AccountId = '0018c00002VY27fAAD' OR",
                    role_values={"CSM": "roles/nope"},
                    mapping=jobs_pb2.FieldMapping(user_email="User.Phone"),
                ),
            )
        ),
        metadata=admin,
    )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "job.etm.query_filter": "QUERY_FILTER_INVALID",
        "job.etm.role_values[CSM]": "ROLE_UNKNOWN",
        "job.etm.mapping.user_email": "FIELD_UNKNOWN",
    }
    assert "position 35" in refused.field_violations["job.etm.query_filter"]


def test_preview_and_validate_show_row_problems_and_write_nothing(sync_api, admin):
    api = sync_api
    job = make_job(api, admin)
    preview = api.jobs.PreviewJob(jobs_pb2.PreviewJobRequest(name=job.name, row_count=50), metadata=admin)
    problems = sorted(p.reason for r in preview.rows for p in r.problems)
    assert problems == ["ROLE_UNMAPPED", "ROLE_UNMAPPED", "USER_NOT_FOUND", "USER_NOT_FOUND"]
    assert len(preview.rows) == 10 and preview.query.startswith("SELECT Id, UserId")
    assert {r.mapped.role for r in preview.rows} >= {"roles/success_manager", "roles/sales_manager"}
    report = api.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job.name), metadata=admin)
    assert (report.valid, report.rows, report.applicable_rows) == (True, 10, 6)
    assert {p.reason: p.rows for p in report.row_problems} == {"ROLE_UNMAPPED": 2, "USER_NOT_FOUND": 2}
    assert team(api, admin, api.org.accounts[0]) == {}


def test_connections_keep_secrets_write_only(sync_api, admin):
    api = sync_api
    connection = connect(api, admin)
    assert connection.oauth.client_secret == "" and connection.oauth.has_client_secret
    assert api.connections.TestConnection(
        connections_pb2.TestConnectionRequest(name=connection.name), metadata=admin
    ).ok
    renamed = api.connections.UpdateConnection(
        connections_pb2.UpdateConnectionRequest(
            connection=connections_pb2.Connection(name=connection.name, display_name="Renamed"),
            update_mask=FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
    )
    assert renamed.display_name == "Renamed" and renamed.oauth.has_client_secret
    broken = api.connections.UpdateConnection(
        connections_pb2.UpdateConnectionRequest(
            connection=connections_pb2.Connection(
                name=connection.name,
                oauth=connections_pb2.OAuthSettings(
                    grant=connections_pb2.O_AUTH_GRANT_CLIENT_CREDENTIALS, client_id="wrong", client_secret="nope"
                ),
            ),
            update_mask=FieldMask(paths=["oauth"]),
        ),
        metadata=admin,
    )
    result = api.connections.TestConnection(connections_pb2.TestConnectionRequest(name=broken.name), metadata=admin)
    assert (result.ok, result.failed_step, result.error_code) == (False, "token", "invalid_client")
    listed = api.connections.ListConnections(connections_pb2.ListConnectionsRequest(), metadata=admin).connections
    assert all(c.oauth.client_secret == "" for c in listed)


def test_active_jobs_with_an_interval_run_on_schedule(sync_api, serve, databases, admin):
    base = sync_api
    config = SyncConfig(users_address=base.users.running.address, scheduler_poll_seconds=0.1)
    scheduled = SyncApi(
        serve(build_spec(config), database_url=databases.url("sync_scheduled")), base.users, base.salesforce, base.org
    )
    from google.protobuf.duration_pb2 import Duration

    draft = make_job(scheduled, admin)
    active = make_job(scheduled, admin)
    every_hour = Duration(seconds=3600)
    for job, state in ((draft, jobs_pb2.JOB_STATE_DRAFT), (active, jobs_pb2.JOB_STATE_ACTIVE)):
        scheduled.jobs.UpdateJob(
            jobs_pb2.UpdateJobRequest(
                job=jobs_pb2.Job(name=job.name, state=state, run_interval=every_hour),
                update_mask=FieldMask(paths=["state", "run_interval"]),
            ),
            metadata=admin,
        )
    import time

    deadline = time.monotonic() + 20
    while True:
        runs = scheduled.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=active.name), metadata=admin).runs
        if runs and runs[0].state != jobs_pb2.RUN_STATE_RUNNING:
            break
        assert time.monotonic() < deadline, "the scheduler never ran the active job"
        time.sleep(0.1)
    [run] = runs
    assert (run.started_by, run.mode, run.state) == ("schedule", jobs_pb2.RUN_MODE_FULL, jobs_pb2.RUN_STATE_SUCCEEDED)
    assert scheduled.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=draft.name), metadata=admin).runs == []
    too_often = call_fails(
        scheduled.jobs.UpdateJob,
        jobs_pb2.UpdateJobRequest(
            job=jobs_pb2.Job(name=active.name, run_interval=Duration(seconds=60)),
            update_mask=FieldMask(paths=["run_interval"]),
        ),
        metadata=admin,
    )
    assert too_often.violation_reasons == {"job.run_interval": "RUN_INTERVAL_INVALID"}


def test_one_run_per_job_at_a_time_and_a_running_job_is_not_deleted(sync_api, admin):
    api = sync_api
    job = make_job(api, admin)
    api.salesforce.set_latency(0.3)
    stream = api.jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name), metadata=admin)
    first = next(iter(stream))
    assert first.run.state == jobs_pb2.RUN_STATE_RUNNING
    busy = call_fails(
        lambda request, **kw: list(api.jobs.RunJob(request, **kw)),
        jobs_pb2.RunJobRequest(name=job.name),
        metadata=admin,
    )
    assert (busy.code, busy.reason) == (grpc.StatusCode.ABORTED, "RUN_IN_PROGRESS")
    assert busy.error_metadata["run"] == first.run.name
    held = call_fails(api.jobs.DeleteJob, jobs_pb2.DeleteJobRequest(name=job.name), metadata=admin)
    assert held.reason == "RUN_IN_PROGRESS"
    api.salesforce.set_latency(0)
    final = list(stream)[-1].run
    assert final.state == jobs_pb2.RUN_STATE_SUCCEEDED
    again = run(api, admin, job)  # the lease was released with the run
    assert again.state == jobs_pb2.RUN_STATE_SUCCEEDED
