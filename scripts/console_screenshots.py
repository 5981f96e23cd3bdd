"""Screenshots of the console's main pages for the README, from a stack like the browser tests':
a real users service on a scratch SQLite database, an SMTP sink, the console, and headless Debian
chromium driven by Playwright (no downloaded browser).

    .venv/bin/python scripts/console_screenshots.py [--out docs/screenshots]

Pages at 1280 px wide (full page), and the users page at 390 px (a phone)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.console.config import ConsoleConfig, SmtpOut
from services.console.server import ConsoleServer
from services.users.app import build_spec
from services.users.config import SmtpSettings, UsersConfig
from services.users.domain.model import License, UserStatus
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import JWT_SECRET, UsersApi, settings_for, start_service, stop_service
from tests.console_kit import ADMIN, CHROMIUM, Clock, Stack, sign_in_by_email
from tests.processes import free_port
from tests.seed import add_user
from tests.smtp_sink import SmtpSink

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


def shoot(stack: Stack, out: Path, world: dict[str, Any]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800})
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
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{stack.url}/users")
        snap("users-phone")
        context.close()
        browser.close()
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    smtp = SmtpSink(free_port()).start()
    with tempfile.TemporaryDirectory() as scratch:
        config = UsersConfig(bootstrap_admin_email=ADMIN).model_copy(
            update={"smtp": SmtpSettings(host="127.0.0.1", port=smtp.port, poll_seconds=0.05)}
        )
        running = start_service(build_spec(config), settings_for("users", f"sqlite:///{scratch}/users.db"))
        users = UsersApi(
            running, users_pb2_grpc.UserServiceStub(running.channel), users_pb2_grpc.TeamServiceStub(running.channel)
        )
        console = ConsoleServer(
            ConsoleConfig(
                host="127.0.0.1",
                port=0,
                public_url="http://localhost:8080",
                users_address=running.address,
                jwt_secret=JWT_SECRET,
                smtp=SmtpOut(host="127.0.0.1", port=smtp.port),
                grace_seconds=2.0,
            ),
            Clock(now=time.time()),
        )
        console.start()
        try:
            stack = Stack(users, console, smtp, Clock())
            taken = shoot(stack, args.out, seed(stack))
        finally:
            console.stop(timeout=2)
            stop_service(running)
            smtp.stop()
    for path in taken:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
