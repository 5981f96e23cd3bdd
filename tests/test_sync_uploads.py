"""File uploads end to end: real users and sync servers, CSV files streamed through UploadService,
runs read back through JobService like ETM runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from services.sync.app import build_spec
from services.sync.config import SyncConfig
from services.sync.domain import uploads as files
from services.sync.domain.uploads import MAX_FILE_BYTES
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc, uploads_pb2, uploads_pb2_grpc
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2 as upb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

PEOPLE = {
    "ann@acme.io": ("Ann", "Archer"),
    "bob@acme.io": ("Bob", "Baker"),
    "cat@acme.io": ("Cat", "Cole"),
    "dan@acme.io": ("Dan", "Dale"),
    "sam.one@acme.io": ("Sam", "Smith"),
    "sam.two@acme.io": ("Sam", "Smith"),
}


@dataclass
class UploadApi:
    sync: Any
    users: Any
    ids: dict[str, str]  # email -> users/{uid}

    @property
    def jobs(self) -> Any:
        return jobs_pb2_grpc.JobServiceStub(self.sync.channel)

    @property
    def uploads(self) -> Any:
        return uploads_pb2_grpc.UploadServiceStub(self.sync.channel)


@pytest.fixture
def uploads_api(serve, users_api, admin):
    users = users_api()
    ids = {}
    for email, (first, last) in PEOPLE.items():
        ids[email] = f"users/{add_user(users.db, email, first_name=first, last_name=last).id}"
    users.assignments.CreateRole(
        apb.CreateRoleRequest(
            role=apb.Role(
                key="onboarding_manager", display_name="Onboarding Manager", empty_value=apb.EMPTY_VALUE_CLEAR
            )
        ),
        metadata=admin,
    )
    config = SyncConfig(users_address=users.running.address, scheduler_poll_seconds=3600)
    return UploadApi(serve(build_spec(config)), users, ids)


def upload_job(api: UploadApi, md) -> jobs_pb2.Job:
    return api.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(display_name=f"Upload {uuid.uuid4().hex[:6]}", type=jobs_pb2.JOB_TYPE_FILE_UPLOAD)
        ),
        metadata=md,
    )


def chunks(job: str, data: bytes | str, request_id: str = "", size: int = 16) -> Iterator[uploads_pb2.UploadChunk]:
    """The file in small chunks, the first naming the job."""
    raw = data.encode() if isinstance(data, str) else data
    yield uploads_pb2.UploadChunk(job=job, file_name="file.csv", request_id=request_id, data=raw[:size])
    for start in range(size, len(raw), size):
        yield uploads_pb2.UploadChunk(data=raw[start : start + size])


def team(api: UploadApi, md, account: str) -> dict[str, str]:
    reply = api.users.assignments.GetAccountTeam(apb.GetAccountTeamRequest(account_id=account), metadata=md)
    return dict(reply.attributes)


def set_manually(api: UploadApi, md, account: str, role: str, user: str) -> None:
    api.users.assignments.SetAssignment(
        apb.SetAssignmentRequest(
            account_id=account,
            role=role,
            user=apb.UserRef(user=user),
            source=apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL),
        ),
        metadata=md,
    )


def run_errors(api: UploadApi, md, run: jobs_pb2.Run) -> list[jobs_pb2.RunError]:
    return list(api.jobs.ListRunErrors(jobs_pb2.ListRunErrorsRequest(run=run.name), metadata=md).errors)


def runs_of(api: UploadApi, md, job: jobs_pb2.Job) -> list[jobs_pb2.Run]:
    return list(api.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=job.name), metadata=md).runs)


def counts(run: jobs_pb2.Run) -> tuple[int, int, int, int, int, int]:
    c = run.counts
    return (c.rows_read, c.assigned, c.updated, c.unchanged, c.removed, c.skipped)


def test_an_assignments_file_sets_clears_and_keeps_as_each_role_says(uploads_api, admin):
    api, ids = uploads_api, uploads_api.ids
    a1, a2, a3, a4 = (f"001ACME{n}{uuid.uuid4().hex[:6]}" for n in range(4))
    set_manually(api, admin, a1, "roles/success_manager", ids["cat@acme.io"])
    set_manually(api, admin, a1, "roles/onboarding_manager", ids["dan@acme.io"])
    set_manually(api, admin, a2, "roles/success_manager", ids["cat@acme.io"])
    set_manually(api, admin, a2, "roles/onboarding_manager", ids["dan@acme.io"])
    job = upload_job(api, admin)
    # A BOM, CRLF line ends, headers in another case: all accepted.
    csv = (
        "\ufeffAccount Id,Success_Manager___tid,onboarding_manager___tid\r\n"
        f"{a1},ann@acme.io,\r\n"  # SM moves cat -> ann; OM empty under CLEAR: dan cleared
        f"{a2},,bob@acme.io\r\n"  # SM empty under KEEP_EXISTING: cat stays; OM moves dan -> bob
        f"{a3},ghost@acme.io,\r\n"  # no such user; OM empty, nobody to clear
        f"{a4},bob@acme.io,ANN@acme.io\r\n"  # both given where nobody held them
    )
    run = api.uploads.UploadAssignments(chunks(job.name, csv), metadata=admin)
    assert run.state == jobs_pb2.RUN_STATE_SUCCEEDED, run.error_message
    assert run.mode == jobs_pb2.RUN_MODE_FULL and run.started_by == "admin-tests"
    assert counts(run) == (8, 2, 2, 2, 1, 1)
    assert dict(run.counts.skipped_by_reason) == {"USER_NOT_FOUND": 1}
    ann, bob, cat = ids["ann@acme.io"], ids["bob@acme.io"], ids["cat@acme.io"]
    assert team(api, admin, a1) == {"success_manager___tid": ann}
    assert team(api, admin, a2) == {"success_manager___tid": cat, "onboarding_manager___tid": bob}
    assert team(api, admin, a3) == {}
    assert team(api, admin, a4) == {"success_manager___tid": bob, "onboarding_manager___tid": ann}
    [error] = run_errors(api, admin, run)
    assert (error.row, error.reason) == (4, "USER_NOT_FOUND")  # the CSV line (the header is line 1)
    assert (error.mapped.account_id, error.mapped.user_email) == (a3, "ghost@acme.io")
    assert (error.mapped.role, error.mapped.role_value) == ("roles/success_manager", "Success_Manager___tid")
    # The same run and report machinery as ETM runs.
    assert api.jobs.GetRun(jobs_pb2.GetRunRequest(name=run.name), metadata=admin) == run
    assert [r.name for r in runs_of(api, admin, job)] == [run.name]
    assert api.jobs.GetJob(jobs_pb2.GetJobRequest(name=job.name), metadata=admin).last_run == run.name
    written = api.users.assignments.ListAssignments(
        apb.ListAssignmentsRequest(source=apb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref=job.name), metadata=admin
    ).assignments
    assert sorted((a.account_id, a.role) for a in written) == sorted(
        [
            (a1, "roles/success_manager"),
            (a2, "roles/onboarding_manager"),
            (a4, "roles/success_manager"),
            (a4, "roles/onboarding_manager"),
        ]
    )
    again = api.uploads.UploadAssignments(chunks(job.name, csv, size=4096), metadata=admin)
    assert counts(again) == (8, 0, 0, 7, 0, 1) and again.name != run.name


def test_name_columns_resolve_full_names_and_refuse_ambiguous_ones_per_row(uploads_api, admin):
    api, ids = uploads_api, uploads_api.ids
    b1, b2, b3 = (f"001B{n}{uuid.uuid4().hex[:6]}" for n in range(3))
    job = upload_job(api, admin)
    csv = (
        "account_id,sales_manager___name,success_manager___tid\n"
        f"{b1},Sam Smith,nobody@acme.io\n"  # two Sam Smiths; and no such email: one error for the line
        f"{b2},  ann   ARCHER ,\n"  # names match case- and space-insensitively
        "\n"  # blank lines are ignored
        f'"{b3}",Nobody Here,"ann@acme.io"\n'
        ",Ann Archer,ann@acme.io\n"  # no account id: both cells skipped
        f"{b3},Ann Archer\n"  # a cell short
    )
    run = api.uploads.UploadAssignments(chunks(job.name, csv), metadata=admin)
    assert run.state == jobs_pb2.RUN_STATE_SUCCEEDED, run.error_message
    assert counts(run) == (10, 2, 0, 1, 0, 7)
    assert dict(run.counts.skipped_by_reason) == {
        "USER_AMBIGUOUS": 1,
        "USER_NOT_FOUND": 2,
        "ACCOUNT_ID_MISSING": 2,
        "COLUMN_COUNT_MISMATCH": 2,
    }
    ann = ids["ann@acme.io"]
    assert team(api, admin, b1) == {}
    assert team(api, admin, b2) == {"sales_manager___tid": ann}
    assert team(api, admin, b3) == {"success_manager___tid": ann}
    errors = run_errors(api, admin, run)
    assert [(e.row, e.reason) for e in errors] == [
        (2, "USER_AMBIGUOUS"),
        (5, "USER_NOT_FOUND"),
        (6, "ACCOUNT_ID_MISSING"),
        (7, "COLUMN_COUNT_MISMATCH"),
    ]
    ambiguous = errors[0]
    assert (ambiguous.mapped.user_name, ambiguous.mapped.role) == ("Sam Smith", "roles/sales_manager")
    assert "success_manager___tid: USER_NOT_FOUND" in ambiguous.description  # the line's other problem
    assert errors[1].mapped.user_name == "Nobody Here"


def test_a_bad_file_is_refused_whole_and_nothing_is_written(uploads_api, admin):
    api = uploads_api
    job = upload_job(api, admin)
    account = f"001C{uuid.uuid4().hex[:8]}"
    bad_header = f"account_id,success_manager___tid,colour,nope___tid\n{account},ann@acme.io,red,\n"
    refused = call_fails(api.uploads.UploadAssignments, chunks(job.name, bad_header), metadata=admin)
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "HEADER_INVALID")
    assert refused.violation_reasons == {"header[2]": "COLUMN_UNKNOWN", "header[3]": "ROLE_UNKNOWN"}
    assert "'colour'" in refused.message and "'nope___tid'" in refused.message
    for data, reason in (
        (b"success_manager___tid\nann@acme.io\n", "HEADER_INVALID"),  # no account id column
        (b"", "HEADER_MISSING"),
        ("account_id,success_manager___tid\nÄ,ann@acme.io\n".encode("latin-1"), "FILE_ENCODING_INVALID"),
        (f'account_id,success_manager___tid\n{account},"ann@acme.io\n'.encode(), "FILE_MALFORMED"),
    ):
        failed = call_fails(api.uploads.UploadAssignments, chunks(job.name, data), metadata=admin)
        assert (failed.code, failed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, reason), data
    users_refused = call_fails(
        api.uploads.UploadUsers, chunks(job.name, "mail,license\nx@acme.io,viewer\n"), metadata=admin
    )
    assert users_refused.violation_reasons == {"header[0]": "COLUMN_UNKNOWN", "header": "EMAIL_COLUMN_MISSING"}
    assert runs_of(api, admin, job) == []
    assert team(api, admin, account) == {}
    # More than the limit: refused while it streams in.
    big = (uploads_pb2.UploadChunk(job=job.name if i == 0 else "", data=b"x" * (1 << 20)) for i in range(51))
    too_large = call_fails(api.uploads.UploadAssignments, big, metadata=admin)
    assert (too_large.code, too_large.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FILE_TOO_LARGE")
    assert MAX_FILE_BYTES == 50 * (1 << 20)
    missing = call_fails(api.uploads.UploadAssignments, chunks(f"jobs/{uuid.uuid4()}", "account_id\n"), metadata=admin)
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    reader = bearer("service:reporting", roles=(), scopes=["users.read"])
    denied = call_fails(api.uploads.UploadAssignments, chunks(job.name, bad_header), metadata=reader)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


def test_a_users_file_creates_updates_and_adds_to_teams(uploads_api, admin):
    api, ids = uploads_api, uploads_api.ids
    teams = api.users.teams
    enterprise = teams.CreateTeam(upb.CreateTeamRequest(team=upb.Team(display_name="Enterprise")), metadata=admin)
    smb = teams.CreateTeam(upb.CreateTeamRequest(team=upb.Team(display_name="SMB")), metadata=admin)
    teams.AddTeamMember(
        upb.AddTeamMemberRequest(team=smb.name, user=ids["ann@acme.io"], role=upb.TEAM_ROLE_ADMIN), metadata=admin
    )
    job = upload_job(api, admin)
    csv = (
        "Email,First Name,Last Name,License,Status,Teams\n"
        "new1@acme.io,New,One,practitioner,,Enterprise\n"
        f"new2@acme.io,New,Two,Viewer,CREATED_DISABLED,enterprise; {smb.name}\n"
        "ann@acme.io,,,,,SMB\n"  # already in SMB (as its admin): left as it is
        "bob@acme.io,Robert,,,,Enterprise\n"
        "bad-email,X,Y,viewer,,\n"
        "new3@acme.io,New,Three,wizard,,\n"
        "new4@acme.io,New,Four,viewer,,Nope\n"
        "new5@acme.io,New,Five,,,\n"  # a new user needs a license: the users service says so
        "NEW1@acme.io,Dup,,viewer,,\n"
        "cat@acme.io,,,,,Enterprise\n"  # nothing else changes: joining a team is an update
    )
    run = api.uploads.UploadUsers(chunks(job.name, csv), metadata=admin)
    assert run.state == jobs_pb2.RUN_STATE_SUCCEEDED, run.error_message
    assert counts(run) == (10, 2, 2, 1, 0, 5)
    assert dict(run.counts.skipped_by_reason) == {
        "EMAIL_INVALID": 1,
        "LICENSE_INVALID": 1,
        "TEAM_NOT_FOUND": 1,
        "LICENSE_REQUIRED": 1,
        "DUPLICATE_IN_FILE": 1,
    }
    assert [(e.row, e.reason, e.mapped.user_email) for e in run_errors(api, admin, run)] == [
        (6, "EMAIL_INVALID", "bad-email"),
        (7, "LICENSE_INVALID", "new3@acme.io"),
        (8, "TEAM_NOT_FOUND", "new4@acme.io"),
        (9, "LICENSE_REQUIRED", "new5@acme.io"),
        (10, "DUPLICATE_IN_FILE", "NEW1@acme.io"),
    ]
    emails = ["new1@acme.io", "new2@acme.io", "ann@acme.io", "bob@acme.io", "cat@acme.io", "new4@acme.io"]
    listed = api.users.users.ListUsers(upb.ListUsersRequest(emails=emails), metadata=admin).users
    found = {u.email: u for u in listed}
    assert set(found) == set(emails) - {"new4@acme.io"}
    new1, new2 = found["new1@acme.io"], found["new2@acme.io"]
    assert (new1.status, new1.license, new1.first_name) == (upb.USER_STATUS_CREATED, upb.LICENSE_PRACTITIONER, "New")
    assert (new2.status, new2.license) == (upb.USER_STATUS_CREATED_DISABLED, upb.LICENSE_VIEWER)

    def memberships(email: str) -> dict[str, int]:
        return {m.team: m.role for m in found[email].team_memberships}

    assert memberships("new1@acme.io") == {enterprise.name: upb.TEAM_ROLE_MEMBER}
    assert memberships("new2@acme.io") == {enterprise.name: upb.TEAM_ROLE_MEMBER, smb.name: upb.TEAM_ROLE_MEMBER}
    assert memberships("ann@acme.io") == {smb.name: upb.TEAM_ROLE_ADMIN}
    assert memberships("cat@acme.io") == {enterprise.name: upb.TEAM_ROLE_MEMBER}
    assert found["bob@acme.io"].first_name == "Robert"
    assert api.jobs.GetRun(jobs_pb2.GetRunRequest(name=run.name), metadata=admin) == run
    again = api.uploads.UploadUsers(chunks(job.name, csv), metadata=admin)
    assert counts(again) == (10, 0, 0, 5, 0, 5)


def test_a_retried_upload_returns_the_first_run_and_writes_nothing_twice(uploads_api, admin):
    api, ids = uploads_api, uploads_api.ids
    job = upload_job(api, admin)
    account = f"001D{uuid.uuid4().hex[:8]}"
    csv = f"account_id,success_manager___tid\n{account},ann@acme.io\n{account}x,ghost@acme.io\n"
    request_id = str(uuid.uuid4())
    first = api.uploads.UploadAssignments(chunks(job.name, csv, request_id), metadata=admin)
    assert counts(first) == (2, 1, 0, 0, 0, 1)
    set_manually(api, admin, account, "roles/success_manager", ids["cat@acme.io"])  # changed since
    retried = api.uploads.UploadAssignments(chunks(job.name, csv, request_id, size=1024), metadata=admin)
    assert retried == first
    assert team(api, admin, account) == {"success_manager___tid": ids["cat@acme.io"]}  # not written again
    assert [r.name for r in runs_of(api, admin, job)] == [first.name]
    assert len(run_errors(api, admin, first)) == 1
    users_csv = "email,license,status\nfresh@acme.io,viewer,created_disabled\n"
    users_request = str(uuid.uuid4())
    created = api.uploads.UploadUsers(chunks(job.name, users_csv, users_request), metadata=admin)
    assert counts(created) == (1, 1, 0, 0, 0, 0)
    assert api.uploads.UploadUsers(chunks(job.name, users_csv, users_request), metadata=admin) == created
    assert len(runs_of(api, admin, job)) == 2
    fresh = api.uploads.UploadAssignments(chunks(job.name, csv, str(uuid.uuid4())), metadata=admin)
    assert fresh.name != first.name and counts(fresh) == (2, 0, 1, 0, 0, 1)  # a new request writes again
    assert team(api, admin, account) == {"success_manager___tid": ids["ann@acme.io"]}
    bad = call_fails(api.uploads.UploadAssignments, chunks(job.name, csv, "not-a-uuid"), metadata=admin)
    assert bad.violation_reasons == {"request_id": "REQUEST_ID_INVALID"}


# --- the parser alone ---


def test_the_parser_numbers_lines_as_the_file_has_them_and_reads_quoted_newlines():
    parsed = files.read_csv(b'\n\naccount_id,success_manager___tid\n"A\n1",ann@acme.io\n\nA2,\n')
    assert parsed.header_line == 3
    records = list(parsed.records())
    assert [(r.line, r.cells) for r in records] == [(4, ("A\n1", "ann@acme.io")), (7, ("A2", ""))]
    layout = files.assignments_layout(parsed.header, {"roles/success_manager"})
    [cell] = files.assignment_cells(layout, records[1])
    assert (cell.account_id, cell.value, cell.problem) == ("A2", "", None)


def test_the_users_parser_reports_every_problem_of_a_line():
    parsed = files.read_csv(b"email,license,status,teams\nx,wizard,ACTIVE,Nope;teams/abc\n")
    layout = files.users_layout(parsed.header)
    [line] = files.user_lines(layout, parsed.records(), files.TeamDirectory.of([("teams/t1", "Known")]))
    assert [reason for reason, _ in line.problems] == [
        "EMAIL_INVALID",
        "LICENSE_INVALID",
        "TEAM_NOT_FOUND",
        "TEAM_NOT_FOUND",
    ]
    assert line.status == "ACTIVE"  # the users service decides (new users: CREATED or CREATED_DISABLED only)
    error = files.line_error(line)
    assert error.reason == "EMAIL_INVALID" and "LICENSE_INVALID" in error.description
