"""Screenshots of the console's main pages for the README, from a stack like the browser tests':
real users, rules and sync services on scratch SQLite databases, the Salesforce stand-in with a
small hand-made org, an SMTP sink, the console, and headless Debian chromium driven by Playwright
(no downloaded browser). Every run starts from empty databases and overwrites the same files.

    .venv/bin/python scripts/console_screenshots.py [--out docs/screenshots]

Pages at 1280 px wide (full page), and the users page at 390 px (a phone): the people pages, the
Plays pages (two plays with runs from published account events) and the Sync pages (an ETM job
previewed, validated and run, and a CSV upload with a bad row)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.console.config import ConsoleConfig, SmtpOut
from services.console.server import ConsoleServer
from services.rules.app import build_spec as rules_spec
from services.sync.app import build_spec as sync_spec
from services.users.app import build_spec
from services.users.config import SmtpSettings, UsersConfig
from services.users.domain.model import License, UserStatus
from steward.rules.v1 import events_pb2, plays_pb2
from steward.sync.v1 import connections_pb2_grpc
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import (
    JWT_SECRET,
    RulesApi,
    RunningService,
    UsersApi,
    bearer,
    rules_config,
    settings_for,
    start_service,
    stop_service,
)
from tests.console_kit import ADMIN, CHROMIUM, Clock, Stack, sign_in_by_email
from tests.plays_kit import account_event, play_message, publish, wait_processed
from tests.processes import free_port
from tests.salesforce_kit import create_connection, standin_config
from tests.seed import add_user
from tests.smtp_sink import SmtpSink
from tools.salesforce_standin import Emulator, Org

MANUAL = apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL)


def seed(stack: Stack) -> dict[str, Any]:
    db, md, api = stack.users.db, stack.admin_meta(), stack.users
    people = {
        "grace": add_user(db, "grace.hopper@example.com", first_name="Grace", last_name="Hopper"),
        "ada": add_user(db, "ada.lovelace@example.com"),
        "alan": add_user(db, "alan.turing@example.com", first_name="Alan", last_name="Turing"),
        "katherine": add_user(
            db,
            "katherine.johnson@example.com",
            first_name="Katherine",
            last_name="Johnson",
            license=License.CONTRIBUTOR,
        ),
        "margaret": add_user(
            db, "margaret.hamilton@example.com", first_name="Margaret", last_name="Hamilton", license=License.VIEWER
        ),
        "edsger": add_user(
            db, "edsger.dijkstra@example.com", first_name="Edsger", last_name="Dijkstra", status=UserStatus.DISABLED
        ),
    }
    api.users.InviteUsers(
        users_pb2.InviteUsersRequest(emails=["new.hire@example.com"], license=users_pb2.LICENSE_VIEWER), metadata=md
    )
    team = api.teams.CreateTeam(
        users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name="EMEA Success", manager=_n(people["grace"]))),
        metadata=md,
    )
    for who, team_role in (
        ("grace", users_pb2.TEAM_ROLE_ADMIN),
        ("ada", users_pb2.TEAM_ROLE_MEMBER),
        ("alan", users_pb2.TEAM_ROLE_MEMBER),
    ):
        api.teams.AddTeamMember(
            users_pb2.AddTeamMemberRequest(team=team.name, user=_n(people[who]), role=team_role), metadata=md
        )
    api.assignments.CreateRole(
        apb.CreateRoleRequest(
            role=apb.Role(
                key="onboarding_manager",
                display_name="Onboarding Manager",
                description="Leads the first 90 days",
                empty_value=apb.EMPTY_VALUE_CLEAR,
            )
        ),
        metadata=md,
    )
    for account, role, who in (
        ("ACME-1", "roles/success_manager", "ada"),
        ("ACME-1", "roles/success_manager", "alan"),
        ("ACME-1", "roles/sales_manager", "grace"),
        ("ACME-1", "roles/onboarding_manager", "katherine"),
        ("GLOBEX-7", "roles/success_manager", "alan"),
        ("INITECH-3", "roles/success_manager", "alan"),
    ):
        api.assignments.SetAssignment(
            apb.SetAssignmentRequest(
                account_id=account, role=role, user=apb.UserRef(user=_n(people[who])), source=MANUAL
            ),
            metadata=md,
        )
    return {"team": team, **people}


def _n(user: Any) -> str:
    return f"users/{user.id}"


@dataclass
class Services:
    """The rules and sync services beside the users service, and the Salesforce stand-in."""

    rules: RulesApi
    sync: RunningService
    salesforce: Emulator


ENTERPRISE = json.dumps(
    {"account_id": "HOOLI-2", "type": "account_created", "attributes": {"segment": "Enterprise", "arr": 250000}},
    indent=2,
)


def seed_plays(services: Services, world: dict[str, Any]) -> dict[str, plays_pb2.Play]:
    """Two plays of the EMEA Success team, and account events through AccountEventService so
    that their runs have outcomes: applied, and skipped where nobody holds the role."""
    api, md = services.rules, bearer()
    team = world["team"].name
    onboarding = play_message(
        "Enterprise onboarding",
        [
            {"update_value": {"role": "roles/success_manager", "user": _n(world["ada"])}},
            {"create_task": {"title": "Kick-off call", "holder_of_role": "roles/success_manager", "due_in_days": 3}},
        ],
        owner=world["grace"],
        team=team,
        criteria={
            "all": [
                {"field": "segment", "op": "equals", "value": "Enterprise"},
                {"field": "arr", "op": "greater_than", "value": 10000},
            ]
        },
    )
    onboarding.description = "New Enterprise accounts get a success manager and a kick-off call."
    renewal = play_message(
        "Renewal check-in",
        [{"create_task": {"title": "Renewal check-in", "holder_of_role": "roles/success_manager", "due_in_days": 7}}],
        owner=world["grace"],
        team=team,
        criteria={"field": "days_to_renewal", "op": "less_than", "value": 90},
        event_type=events_pb2.EVENT_TYPE_ACCOUNT_UPDATED,
    )
    renewal.description = "A task for the success manager when a renewal is less than 90 days away."
    plays = {
        key: api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=md)
        for key, play in (("onboarding", onboarding), ("renewal", renewal))
    }
    updated = events_pb2.EVENT_TYPE_ACCOUNT_UPDATED
    events = [
        account_event("HOOLI-2", {"segment": "Enterprise", "arr": 250000}),
        account_event("STARK-5", {"segment": "Enterprise", "arr": 80000}),
        account_event("WAYNE-8", {"segment": "Commercial", "arr": 30000}),  # no match, no run
        account_event("ACME-1", {"days_to_renewal": 45}, event_type=updated),
        account_event("GLOBEX-7", {"days_to_renewal": 60}, event_type=updated),
        account_event("UMBRELLA-4", {"days_to_renewal": 30}, event_type=updated),  # nobody holds the role
    ]
    for event in events:  # one at a time: the runs list in the order they happened
        publish(api, md, event)
        wait_processed(api, md, event.event_id)
    return plays


def build_org() -> Org:
    """A small ETM org: the seeded people by email, one ghost (no Steward user) and one role the
    job's role table leaves out, so that the preview, the validation and the run show problems."""
    org = Org()
    active = org.add_model("FY26", "Active")
    names = ("EMEA North", "EMEA South", "AMER East")
    territories = [org.add_territory(name, active) for name in names]
    accounts = [
        org.add_account(name)
        for name in ("Acme Corp", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises")
    ]
    for index, account in enumerate(accounts):
        org.assign_account(account, territories[index % 3])
    people = {
        email: org.add_user(email)
        for email in (
            "ada.lovelace@example.com",
            "alan.turing@example.com",
            "grace.hopper@example.com",
            "katherine.johnson@example.com",
            "ghost@example.com",
        )
    }
    for email, territory, role in (
        ("ada.lovelace@example.com", 0, "CSM"),
        ("grace.hopper@example.com", 0, "Account Executive"),
        ("alan.turing@example.com", 1, "CSM"),
        ("katherine.johnson@example.com", 2, "Sales Manager"),  # not in the role table
        ("ghost@example.com", 2, "CSM"),  # no such Steward user
    ):
        org.add_user_to_territory(people[email], territories[territory], role)
    return org


def shoot(stack: Stack, out: Path, world: dict[str, Any], services: Services) -> list[Path]:
    from playwright.sync_api import sync_playwright

    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(30_000)
        page = context.new_page()
        sign_in_by_email(page, stack, ADMIN)

        def snap(name: str) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=True)
            taken.append(path)

        snap("users")
        page.goto(f"{stack.url}/users/{world['grace'].id}")
        snap("user")
        page.goto(f"{stack.url}/users/{world['alan'].id}/reassign")
        page.get_by_label("Accounts (their account roles) and open tasks").select_option(
            label="ada.lovelace@example.com"
        )
        page.get_by_label("Team memberships").select_option(label="grace.hopper@example.com")
        page.get_by_role("button", name="Dry run").click()
        page.get_by_text("Dry run: nothing has moved yet.").wait_for()
        snap("reassign-dry-run")
        page.goto(f"{stack.url}/teams/{world['team'].uid}")
        snap("team")
        page.goto(f"{stack.url}/roles")
        snap("roles")
        page.goto(f"{stack.url}/accounts?account_id=ACME-1")
        page.get_by_role("link", name="Team after this change").last.click()
        page.locator("#team-then").wait_for()
        snap("account-team")
        shoot_plays(page, stack, world["plays"], snap)
        shoot_sync(page, stack, services, snap)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{stack.url}/users")
        snap("users-phone")
        context.close()
        browser.close()
    return taken


def shoot_plays(page: Any, stack: Stack, plays: dict[str, plays_pb2.Play], snap: Any) -> None:
    onboarding = plays["onboarding"]
    page.goto(f"{stack.url}/plays")
    page.get_by_role("heading", name="Plays").wait_for()
    snap("plays")
    page.goto(f"{stack.url}/plays/{plays['renewal'].uid}")
    page.locator("table.runs tbody tr").nth(2).wait_for()
    snap("play")
    # The server's violation beside the document, in file terms; nothing is saved.
    page.goto(f"{stack.url}/plays/{onboarding.uid}/edit")
    document = page.get_by_label(re.compile("Play document"))
    document.fill(document.input_value().replace("role: success_manager", "role: chief_of_fun", 1))
    page.get_by_role("button", name="Save").click()
    page.locator(".play-problems").wait_for()
    snap("play-edit-problem")
    page.goto(f"{stack.url}/plays/{onboarding.uid}/test")
    page.get_by_label("Sample event (JSON)").fill(ENTERPRISE)
    page.get_by_role("button", name="Test").click()
    page.locator(".test-result").get_by_role("heading", name="Matched").wait_for()
    snap("play-test")


def shoot_sync(page: Any, stack: Stack, services: Services, snap: Any) -> None:
    connections = connections_pb2_grpc.ConnectionServiceStub(services.sync.channel)
    create_connection(connections, services.salesforce, bearer(), "Acme org")
    # The seed's flow: connector and filter, Load Preview, mapping and role table, Validate, Save and Sync.
    page.goto(f"{stack.url}/sync/jobs/new")
    page.get_by_label("Job name").fill("Acme ETM")
    page.get_by_label("Connection").select_option(label="Acme org")
    page.get_by_label("Connector").select_option("salesforce-etm")
    page.get_by_label("Query filter (optional)").fill(
        "RoleInTerritory2 IN ('CSM', 'Account Executive', 'Sales Manager')"
    )
    page.get_by_label("Role table").fill("CSM = success_manager\nAccount Executive = sales_manager")
    page.get_by_role("button", name="Load Preview").click()
    page.get_by_role("heading", name=re.compile(r"Preview: \d+ rows")).wait_for()
    snap("sync-job-preview")
    page.get_by_role("button", name="Validate").click()
    page.get_by_role("heading", name=re.compile(r"Validation: ")).wait_for()
    snap("sync-job-validation")
    page.get_by_role("button", name="Save and Sync").click()
    page.get_by_role("heading", name="Run of Acme ETM").wait_for()
    page.wait_for_selector("progress#run-bar[data-state=succeeded]")
    page.locator("table.run-errors tbody tr").first.wait_for()
    snap("sync-run")
    # A CSV upload with a bad row (an email that matches nobody).
    page.goto(f"{stack.url}/sync/jobs")
    page.get_by_label("New file upload job").fill("Account owners file")
    page.get_by_role("button", name="Create upload job").click()
    page.get_by_role("heading", name="Account owners file").wait_for()
    page.get_by_label("The file holds").select_option("assignments")
    csv = (
        "account_id,success_manager___tid\n"
        "ACME-1,ada.lovelace@example.com\n"
        "GLOBEX-7,nobody@example.com\n"
        "INITECH-3,alan.turing@example.com\n"
    )
    page.get_by_label("CSV file").set_input_files(
        {"name": "owners.csv", "mimeType": "text/csv", "buffer": csv.encode()}
    )
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("heading", name="Run of Account owners file").wait_for()
    page.wait_for_selector("progress#run-bar[data-state=succeeded]")
    page.get_by_role("heading", name="Rows not applied: 1").wait_for()
    snap("sync-upload")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    smtp = SmtpSink(free_port()).start()
    with tempfile.TemporaryDirectory() as scratch, Emulator(build_org()) as salesforce:
        config = UsersConfig(bootstrap_admin_email=ADMIN).model_copy(
            update={"smtp": SmtpSettings(host="127.0.0.1", port=smtp.port, poll_seconds=0.05)}
        )
        running = start_service(build_spec(config), settings_for("users", f"sqlite:///{scratch}/users.db"))
        users = UsersApi(
            running, users_pb2_grpc.UserServiceStub(running.channel), users_pb2_grpc.TeamServiceStub(running.channel)
        )
        rules = start_service(
            rules_spec(rules_config(running.address)), settings_for("rules", f"sqlite:///{scratch}/rules.db")
        )
        sync = start_service(
            sync_spec(standin_config(running.address)), settings_for("sync", f"sqlite:///{scratch}/sync.db")
        )
        services = Services(RulesApi(rules, users), sync, salesforce)
        console = ConsoleServer(
            ConsoleConfig(
                host="127.0.0.1",
                port=0,
                public_url="http://localhost:8080",
                users_address=running.address,
                rules_address=rules.address,
                sync_address=sync.address,
                jwt_secret=JWT_SECRET,
                smtp=SmtpOut(host="127.0.0.1", port=smtp.port),
                grace_seconds=2.0,
            ),
            Clock(now=time.time()),
        )
        console.start()
        try:
            stack = Stack(users, console, smtp, Clock())
            world = seed(stack)
            world["plays"] = seed_plays(services, world)
            taken = shoot(stack, args.out, world, services)
        finally:
            console.stop(timeout=2)
            stop_service(sync)
            stop_service(rules)
            stop_service(running)
            smtp.stop()
    for path in taken:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
