"""The Sync pages in a real browser against real users and sync services and the Salesforce
stand-in: a connection created and tested, an ETM job previewed, validated and run with the
progress bar reaching the end, a CSV upload with a bad row shown, and what a user without rights
sees (no admin action) and may not do (403 on a forged POST)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from services.console.server import ConsoleServer
from services.sync.app import build_spec
from services.users.config import UsersConfig
from steward.sync.v1 import connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from tests.conftest import bearer
from tests.console_kit import ADMIN, Clock, Stack, console_config, sign_in_by_email
from tests.salesforce_kit import create_connection, standin_config
from tests.seed import add_user
from tests.smtp_sink import SmtpSink
from tests.test_console_users import active_user
from tests.test_sync_etm import T0, Territories, build_org
from tools.salesforce_standin import Emulator

pytestmark = pytest.mark.slow


@dataclass
class SyncStack:
    base: Stack
    sync: Any
    salesforce: Emulator
    org: Territories

    @property
    def url(self) -> str:
        return self.base.url

    @property
    def jobs(self) -> jobs_pb2_grpc.JobServiceStub:
        return jobs_pb2_grpc.JobServiceStub(self.sync.channel)


@pytest.fixture
def sync_stack(serve: Any, users_api: Any, smtp: SmtpSink) -> Iterator[SyncStack]:
    """A real users service (the bootstrap admin and the org's people), a real sync service on the
    Salesforce stand-in, and the console calling both."""
    territories = build_org()
    with Emulator(territories.org) as salesforce:
        users = users_api(UsersConfig(bootstrap_admin_email=ADMIN))
        for email in ("ann@acme.io", "bob@acme.io", "cat@acme.io", "dan@acme.io"):
            add_user(users.db, email)
        sync = serve(build_spec(standin_config(users.running.address)))
        clock = Clock()
        config = console_config(users.running.address, smtp.port, sync_address=sync.address)
        server = ConsoleServer(config, clock)
        server.start()
        yield SyncStack(Stack(users, server, smtp, clock), sync, salesforce, territories)
        server.stop(timeout=2)


def test_an_etm_job_previewed_validated_and_run_with_the_progress_bar_reaching_the_end(
    sync_stack: SyncStack, page: Any
) -> None:
    stack = sync_stack
    sign_in_by_email(page, stack.base, ADMIN)
    page.get_by_role("link", name="Sync").click()
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("link", name="New connection").click()

    # A form with mistakes comes back with each in words beside its field.
    page.get_by_label("Name", exact=True).fill("Acme org")
    page.get_by_label("Org address").fill("not a url")
    page.get_by_role("button", name="Create connection").click()
    expect(page.get_by_text("Enter the org's address, like https://acme.my.salesforce.com.")).to_be_visible()
    expect(page.get_by_text("Enter the connected app's client id.")).to_be_visible()
    expect(page.get_by_text("Enter the client secret.")).to_be_visible()

    page.get_by_label("Org address").fill(stack.salesforce.url)
    page.get_by_label("Client id").fill(stack.salesforce.client_id)
    page.get_by_label("Client secret").fill(stack.salesforce.client_secret)
    page.get_by_role("button", name="Create connection").click()
    page.get_by_text("Connection Acme org created.").wait_for()
    # The secret is write-only: stored, never shown back.
    assert stack.salesforce.client_secret not in page.content()
    expect(page.locator("table.connections tbody tr")).to_contain_text("yes")

    page.get_by_role("button", name="Test connection Acme org").click()
    page.get_by_role("heading", name="Test of Acme org: it works").wait_for()
    etm = page.locator("table.outcomes tr", has_text="Salesforce ETM")
    expect(etm).to_contain_text("can read")

    # The seed's flow: connector and filter, Load Preview, mapping and role table, Validate, Save and Sync.
    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("link", name="New connector job").click()
    page.get_by_label("Job name").fill("Acme ETM")
    page.get_by_label("Connection").select_option(label="Acme org")
    page.get_by_label("Connector").select_option("salesforce-etm")
    page.get_by_label("Query filter (optional)").fill(
        "RoleInTerritory2 IN ('CSM', 'Account Executive', 'Sales Manager')"
    )
    # The service previews only with a role table: asked without, it says so beside the table.
    page.get_by_role("button", name="Load Preview").click()
    expect(page.locator("#roles-error")).to_contain_text("role")
    page.get_by_label("Role table").fill("CSM = success_manager")
    # A filter the service cannot parse: where it breaks, beside the filter.
    page.get_by_label("Query filter (optional)").fill("RoleInTerritory2 = ")
    page.get_by_role("button", name="Load Preview").click()
    expect(page.locator("#query_filter-error")).to_contain_text("at position 18")
    page.get_by_label("Query filter (optional)").fill(
        "RoleInTerritory2 IN ('CSM', 'Account Executive', 'Sales Manager')"
    )
    page.get_by_role("button", name="Load Preview").click()
    page.get_by_role("heading", name=re.compile(r"Preview: \d+ rows")).wait_for()
    ghost = page.locator("table.preview-rows tbody tr", has_text="ghost@acme.io")
    expect(ghost.first).to_contain_text("The email matches no Steward user.")
    expect(page.locator("table.preview-rows tbody tr", has_text="Sales Manager").first).to_contain_text(
        "The role value is not in the role table."
    )

    # A role table line without "=" is refused in words; nothing is saved.
    page.get_by_label("Role table").fill("CSM success_manager")
    page.get_by_role("button", name="Save and Sync").click()
    expect(page.locator("#roles-error")).to_contain_text("write the Salesforce value, an equals sign and the role")
    assert list(stack.jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=bearer()).jobs) == []

    page.get_by_label("Role table").fill("CSM = success_manager\nAccount Executive = sales_manager")
    page.get_by_role("button", name="Validate").click()
    heading = page.get_by_role("heading", name=re.compile(r"Validation: valid, \d+ of \d+ rows would be applied"))
    heading.wait_for()
    counts = page.locator("table.validation-counts")
    expect(counts).to_contain_text("USER_NOT_FOUND")
    expect(counts).to_contain_text("ROLE_UNMAPPED")

    page.get_by_role("button", name="Save and Sync").click()
    page.get_by_role("heading", name="Run of Acme ETM").wait_for()
    expect(page.get_by_text(f"by {ADMIN}")).to_be_visible()
    bar = page.locator("progress#run-bar")
    expect(bar).to_have_attribute("data-state", "succeeded", timeout=30_000)
    assert bar.get_attribute("value") == bar.get_attribute("max")
    assert int(bar.get_attribute("max") or 0) > 0
    errors = page.locator("table.run-errors tbody tr")
    expect(errors.filter(has_text="ghost@acme.io").first).to_contain_text("The email matches no Steward user.")

    (job,) = stack.jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=bearer()).jobs
    assert dict(job.etm.role_values) == {"CSM": "roles/success_manager", "Account Executive": "roles/sales_manager"}
    (run,) = stack.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=job.name), metadata=bearer()).runs
    assert run.state == jobs_pb2.RUN_STATE_SUCCEEDED and run.counts.assigned > 0

    # The job page lists the run.
    page.get_by_role("link", name="Back to Acme ETM").click()
    expect(page.locator("table.runs tbody tr")).to_have_count(1)
    expect(page.locator("table.runs tbody tr")).to_contain_text("succeeded")

    # The saved job opens in the same flow; a change is saved with UpdateJob.
    assert page.get_by_label("Role table").input_value() == "Account Executive = sales_manager\nCSM = success_manager"
    page.get_by_label("Query filter (optional)").fill("RoleInTerritory2 = 'CSM'")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_text("Job Acme ETM saved.").wait_for()
    saved = stack.jobs.GetJob(jobs_pb2.GetJobRequest(name=job.name), metadata=bearer())
    assert saved.etm.query_filter == "RoleInTerritory2 = 'CSM'"

    # Readable on a phone: no page wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/sync/jobs/{job.uid}", page_of(run.name), "/sync/jobs", "/sync/connections"):
        page.goto(f"{stack.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path


def page_of(run_name: str) -> str:
    _, job_uid, _, run_uid = run_name.split("/")
    return f"/sync/jobs/{job_uid}/runs/{run_uid}"


def test_a_csv_upload_with_a_bad_row_shown(sync_stack: SyncStack, page: Any) -> None:
    stack = sync_stack
    sign_in_by_email(page, stack.base, ADMIN)
    page.goto(f"{stack.url}/sync/jobs")
    page.get_by_role("button", name="Create upload job").click()
    expect(page.locator("#upload-name-error")).to_have_text("Enter a name of at most 200 characters.")
    page.get_by_label("New file upload job").fill("Account owners file")
    page.get_by_role("button", name="Create upload job").click()
    page.get_by_role("heading", name="Account owners file").wait_for()

    # A wrong header is refused whole, in words.
    page.get_by_label("The file holds").select_option("assignments")
    page.get_by_label("CSV file").set_input_files(
        {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"account_id,nobody___tid\n001A,ann@acme.io\n"}
    )
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("The file's header row is wrong, nothing was written.")

    # Larger than the console's other forms take (1 MiB): it reaches the service, which judges it.
    big = b"account_id,nobody___tid\n" + b"001ACME0,ann@acme.io\n" * 120_000
    page.get_by_label("CSV file").set_input_files({"name": "big.csv", "mimeType": "text/csv", "buffer": big})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text("The file's header row is wrong, nothing was written.")

    csv = "account_id,success_manager___tid\n001ACME1,ann@acme.io\n001ACME2,ghost@acme.io\n001ACME3,bob@acme.io\n"
    page.get_by_label("CSV file").set_input_files(
        {"name": "owners.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("heading", name="Run of Account owners file").wait_for()
    expect(page.locator("progress#run-bar")).to_have_attribute("data-state", "succeeded")
    page.get_by_role("heading", name="Rows not applied: 1").wait_for()
    (row,) = page.locator("table.run-errors tbody tr").all()
    cells = [cell.inner_text() for cell in row.locator("td").all()]
    assert cells[0] == "3"  # the CSV line (the header is line 1)
    assert cells[1:3] == ["001ACME2", "ghost@acme.io"]
    assert "The email matches no Steward user." in cells[4]
    expect(page.locator("#run-progress dl")).to_contain_text("Assigned")


def test_a_user_without_rights_sees_no_admin_action_and_a_forged_post_is_refused(
    sync_stack: SyncStack, page: Any
) -> None:
    stack = sync_stack
    connection = create_connection(
        connections_pb2_grpc.ConnectionServiceStub(stack.sync.channel), stack.salesforce, bearer(), "Acme org"
    )
    job = stack.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name="Acme ETM",
                type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
                connection=connection.name,
                etm=jobs_pb2.EtmSettings(role_values={"CSM": "roles/success_manager"}),
            )
        ),
        metadata=bearer(),
    )
    active_user(stack.base, "viewer@example.com", "Vera", "Viewer")
    sign_in_by_email(page, stack.base, "viewer@example.com")
    page.goto(f"{stack.url}/sync/jobs")
    page.get_by_role("link", name="Acme ETM").wait_for()
    expect(page.get_by_role("link", name="New connector job")).to_have_count(0)
    expect(page.get_by_role("button", name="Create upload job")).to_have_count(0)
    page.get_by_role("link", name="Acme ETM").click()
    page.get_by_role("heading", name="Acme ETM").wait_for()
    for button in ("Run now", "Load Preview", "Validate", "Save and Sync"):
        expect(page.get_by_role("button", name=button)).to_have_count(0)
    expect(page.locator("dl.facts")).to_contain_text("CSM = success_manager")
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("cell", name="Acme org").wait_for()
    expect(page.get_by_role("button", name=re.compile("Test connection"))).to_have_count(0)
    expect(page.get_by_role("link", name="New connection")).to_have_count(0)

    token = page.locator("form.signout input[name=csrf_token]").get_attribute("value")
    for path in (
        f"/sync/jobs/{job.uid}/run",
        f"/sync/jobs/{job.uid}",
        "/sync/jobs/new",
        "/sync/jobs/new-upload",
        "/sync/connections/new",
        f"/sync/connections/{connection.uid}/test",
    ):
        forged = page.request.post(f"{stack.url}{path}", form={"csrf_token": token or "", "action": "save_and_sync"})
        assert forged.status == 403, path
        assert "You do not have the rights to do that." in forged.text()
    assert list(stack.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=job.name), metadata=bearer()).runs) == []


def test_an_account_team_job_is_the_same_flow_with_the_other_connector(sync_stack: SyncStack, page: Any) -> None:
    stack = sync_stack
    org = stack.org
    org.org.add_team_member(org.accounts[0], org.users["ann@acme.io"], "Account Manager", at=T0)
    org.org.add_team_member(org.accounts[1], org.users["ghost@acme.io"], "Account Manager", at=T0)
    connections = connections_pb2_grpc.ConnectionServiceStub(stack.sync.channel)
    create_connection(connections, stack.salesforce, bearer(), "Acme org")
    sign_in_by_email(page, stack.base, ADMIN)
    page.goto(f"{stack.url}/sync/jobs/new")
    page.get_by_label("Job name").fill("Acme teams")
    page.get_by_label("Connection").select_option(label="Acme org")
    page.get_by_label("Connector").select_option("salesforce-account-team")
    page.get_by_label("Role table").fill("Account Manager = success_manager")
    page.get_by_role("button", name="Load Preview").click()
    page.get_by_role("heading", name="Preview: 2 rows").wait_for()
    expect(page.locator("table.preview-rows tbody tr", has_text="ann@acme.io")).to_contain_text("none")
    page.get_by_role("button", name="Save and Sync").click()
    expect(page.locator("progress#run-bar")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    page.get_by_role("heading", name="Rows not applied: 1").wait_for()
    (job,) = stack.jobs.ListJobs(jobs_pb2.ListJobsRequest(), metadata=bearer()).jobs
    assert job.connector == "salesforce-account-team" and job.WhichOneof("settings") == "account_team"
