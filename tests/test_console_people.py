"""The people pages in a real browser: a user edited (and an etag conflict in words), a
reassignment with its dry run, a team created with a member added, a custom role on the Account
Assignment page, an account's team now and as of an earlier moment; and a user without rights
who sees no admin action and gets 403 on every forged people form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from services.users.domain.model import License
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2
from tests.console_kit import ADMIN, Stack, sign_in_by_email
from tests.seed import add_user

pytestmark = pytest.mark.slow
MANUAL = apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL)
SUCCESS = "roles/success_manager"


def name(user) -> str:
    return f"users/{user.id}"


def assign(stack: Stack, account: str, user) -> None:
    request = apb.SetAssignmentRequest(
        account_id=account, role=SUCCESS, user=apb.UserRef(user=name(user)), source=MANUAL
    )
    stack.users.assignments.SetAssignment(request, metadata=stack.admin_meta())


def holder(stack: Stack, account: str) -> str:
    team = stack.users.assignments.GetAccountTeam(
        apb.GetAccountTeamRequest(account_id=account), metadata=stack.admin_meta()
    )
    return {a.role: a.user for a in team.assignments}.get(SUCCESS, "")


def get_user(stack: Stack, user) -> users_pb2.User:
    found: users_pb2.User = stack.users.users.GetUser(
        users_pb2.GetUserRequest(name=name(user)), metadata=stack.admin_meta()
    )
    return found


def test_a_reassignment_with_its_dry_run(stack: Stack, page) -> None:
    db = stack.users.db
    leaver = add_user(db, "leaver@example.com", first_name="Lee", last_name="Ver")
    heir = add_user(db, "heir@example.com", first_name="Hal", last_name="Heir")
    for account in ("A1", "A2"):
        assign(stack, account, leaver)
    sign_in_by_email(page, stack, ADMIN)
    page.get_by_role("link", name="leaver@example.com").click()
    page.get_by_role("link", name="Reassign their things").click()
    page.get_by_label("Accounts (their account roles) and open tasks").select_option(label="heir@example.com")
    page.get_by_role("button", name="Dry run").click()

    page.get_by_text("Dry run: nothing has moved yet.").wait_for()
    roles_row = page.locator("table.summary tr[data-part=assignments]")
    expect(roles_row).to_contain_text("2")
    expect(roles_row).to_contain_text("heir@example.com")
    expect(roles_row).to_contain_text("A1/roles/success_manager")
    assert holder(stack, "A1") == holder(stack, "A2") == name(leaver)  # the dry run moved nothing

    confirm = {
        field: page.locator(f"form input[type=hidden][name={field}]").first.get_attribute("value") or ""
        for field in ("csrf_token", "request_id", "accounts_and_tasks_to")
    }
    page.get_by_role("button", name="Confirm reassignment").click()
    page.get_by_text("Reassignment applied.").wait_for()
    expect(page.locator("table.summary tr[data-part=assignments]")).to_contain_text("heir@example.com")
    assert holder(stack, "A1") == holder(stack, "A2") == name(heir)

    # The same confirm again (a retry after a lost answer): the same request, applied once.
    assign(stack, "A3", leaver)
    again = page.request.post(f"{stack.url}/users/{leaver.id}/reassign", form={**confirm, "action": "confirm"})
    assert again.status == 200 and "Reassignment applied." in again.text()
    assert holder(stack, "A3") == name(leaver)


def test_a_refused_reassignment_plan_is_explained(stack: Stack, page) -> None:
    leaver = add_user(stack.users.db, "leaver@example.com")
    add_user(stack.users.db, "viewer@example.com", license=License.VIEWER)
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/users/{leaver.id}/reassign")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("alert")).to_contain_text("Choose a receiver for at least one kind of thing.")
    page.get_by_label("Shared resources and campaign sender places").select_option(label="viewer@example.com")
    page.get_by_role("button", name="Dry run").click()
    expect(page.get_by_role("alert")).to_contain_text("A viewer cannot own shared resources")


def test_a_user_edited_and_an_etag_conflict_shown_in_words(stack: Stack, page) -> None:
    grace = add_user(stack.users.db, "grace@example.com", first_name="Grace", last_name="Hopper")
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/users/{grace.id}")
    page.get_by_label("First name").fill("")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#first_name-error")).to_have_text("Enter a name.")
    page.get_by_label("First name").fill("Amazing Grace")
    # Someone else changes her while the form is open.
    stack.users.users.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(name=name(grace), last_name="Brewster"), update_mask={"paths": ["last_name"]}
        ),
        metadata=stack.admin_meta(),
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Someone else changed this since you opened the page.")
    expect(page.get_by_label("Last name")).to_have_value("Brewster")
    page.get_by_label("First name").fill("Amazing Grace")
    page.get_by_label("License").select_option("contributor")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved first name, license.").wait_for()
    now = get_user(stack, grace)
    assert (now.first_name, now.last_name, now.license) == ("Amazing Grace", "Brewster", users_pb2.LICENSE_CONTRIBUTOR)

    page.get_by_role("link", name="Users", exact=True).click()
    expect(page.get_by_role("region", name="Licenses and seats")).to_contain_text("contributor")
    for missing in (
        "/users/no-such-user",
        "/users/no-such-user/reassign",
        "/teams/nope",
        "/roles/nope",
        "/users/a%20b",
    ):
        answer = page.request.get(f"{stack.url}{missing}")
        assert answer.status == 404, missing
        assert "Traceback" not in answer.text()


def test_a_team_created_and_a_member_added(stack: Stack, page) -> None:
    grace = add_user(stack.users.db, "grace@example.com", first_name="Grace", last_name="Hopper")
    sign_in_by_email(page, stack, ADMIN)
    page.get_by_role("link", name="Teams", exact=True).click()
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#display_name-error")).to_have_text("Enter the team's name.")
    page.get_by_label("Team name").fill("EMEA")
    page.get_by_role("button", name="Create team").click()
    page.get_by_role("heading", name="Team EMEA").wait_for()

    page.get_by_role("button", name="Add member").click()
    expect(page.locator("#user-error")).to_have_text("Choose a user from the list.")
    page.get_by_label("User", exact=True).select_option(label="grace@example.com")
    page.get_by_label("Role in the team").select_option("admin")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("grace@example.com added as admin.").wait_for()
    expect(page.locator("table.members tbody tr")).to_have_count(1)
    now = get_user(stack, grace)
    assert [m.role for m in now.team_memberships] == [users_pb2.TEAM_ROLE_ADMIN]

    page.get_by_role("button", name="Remove grace@example.com").click()
    page.get_by_text("Member removed.").wait_for()
    assert list(get_user(stack, grace).team_memberships) == []
    page.get_by_role("link", name="All teams").click()
    expect(page.get_by_role("link", name="EMEA")).to_be_visible()


def test_a_custom_role_created_and_edited_on_the_account_assignment_page(stack: Stack, page) -> None:
    sign_in_by_email(page, stack, ADMIN)
    page.get_by_role("link", name="Roles", exact=True).click()
    page.get_by_role("heading", name="Account assignment").wait_for()
    expect(page.locator("table.roles")).to_contain_text("Success Manager")
    page.get_by_label("Key").fill("Onboarding Mgr")
    page.get_by_label("Name people see").fill("Onboarding Manager")
    page.get_by_role("button", name="Create role").click()
    expect(page.locator("#key-error")).to_contain_text("Use lower-case letters")
    page.get_by_label("Key").fill("onboarding_manager")
    page.get_by_label("When an import leaves it empty").select_option("clear")
    page.get_by_role("button", name="Create role").click()
    page.get_by_text("its team attribute is onboarding_manager___tid").wait_for()
    page.get_by_role("link", name="Edit Onboarding Manager").click()
    page.get_by_label("Name people see").fill("Onboarding Lead")
    page.get_by_label("Who sets it").select_option("integration_only")
    page.get_by_role("button", name="Save role").click()
    page.get_by_text("Role Onboarding Lead saved.").wait_for()
    roles = stack.users.assignments.ListRoles(apb.ListRolesRequest(), metadata=stack.admin_meta()).roles
    role = {r.key: r for r in roles}["onboarding_manager"]
    assert (role.display_name, role.source, role.empty_value) == (
        "Onboarding Lead",
        apb.ROLE_SOURCE_INTEGRATION_ONLY,
        apb.EMPTY_VALUE_CLEAR,
    )


def test_an_accounts_team_now_and_as_of_an_earlier_moment(stack: Stack, page) -> None:
    db = stack.users.db
    ada = add_user(db, "ada@example.com")
    bob = add_user(db, "bob@example.com", first_name="Bob")
    assign(stack, "ACME-1", ada)
    assign(stack, "ACME-1", bob)
    sign_in_by_email(page, stack, ADMIN)
    page.get_by_role("link", name="Accounts", exact=True).click()
    page.get_by_label("Account id").fill("ACME-1")
    page.get_by_label("As of").fill("last week")
    page.get_by_role("button", name="Show the team").click()
    expect(page.locator("#as_of-error")).to_contain_text("Enter a date like")

    page.get_by_label("As of").fill("")
    page.get_by_role("button", name="Show the team").click()
    expect(page.locator("#team-now")).to_contain_text("bob@example.com")
    expect(page.locator("table.history tbody tr")).to_have_count(2)
    # The oldest change (newest first): the team right after Ada was given the role.
    page.get_by_role("link", name="Team after this change").last.click()
    expect(page.locator("#team-then")).to_contain_text("ada@example.com")
    expect(page.locator("#team-now")).to_contain_text("bob@example.com")

    page.get_by_label("As of").fill("2020-01-31")
    page.get_by_role("button", name="Show the team").click()
    expect(page.locator("#team-then")).to_contain_text("No one held a role on this account then.")


def test_a_user_without_rights_sees_no_people_admin_action_and_forged_posts_are_refused(stack: Stack, page) -> None:
    db = stack.users.db
    viewer = add_user(db, "viewer@example.com", first_name="Vic", license=License.VIEWER)
    grace = add_user(db, "grace@example.com", first_name="Grace", last_name="Hopper")
    heir = add_user(db, "heir@example.com")
    assign(stack, "A1", grace)
    team = stack.users.teams.CreateTeam(
        users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name="EMEA")), metadata=stack.admin_meta()
    )
    sign_in_by_email(page, stack, "viewer@example.com")
    page.get_by_role("link", name="grace@example.com").click()
    page.get_by_role("heading", name="Grace Hopper").wait_for()
    assert page.get_by_role("link", name="Reassign their things").count() == 0
    assert page.get_by_role("button", name="Save").count() == 0
    assert page.get_by_text("Licenses and seats").count() == 0
    for path, button in (("/teams", "Create team"), (f"/teams/{team.uid}", "Add member"), ("/roles", "Create role")):
        page.goto(f"{stack.url}{path}")
        assert page.get_by_role("button", name=button).count() == 0, path

    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = {
        f"/users/{grace.id}": {"first_name": "Hacked", "last_name": "X"},
        f"/users/{grace.id}/reassign": {"action": "confirm", "accounts_and_tasks_to": name(heir)},
        "/teams": {"display_name": "Forged"},
        f"/teams/{team.uid}": {"user": name(grace), "role": "admin"},
        f"/teams/{team.uid}/remove": {"user": name(grace)},
        "/roles": {"key": "forged", "display_name": "Forged", "source": "editable", "empty_value": "clear"},
        "/roles/success_manager": {"display_name": "Forged", "source": "editable", "empty_value": "clear"},
    }
    for path, form in forged.items():
        answer = page.request.post(f"{stack.url}{path}", form={"csrf_token": csrf, **form})
        assert answer.status == 403, path
        assert "You do not have the rights to do that." in answer.text()
    assert page.request.get(f"{stack.url}/users/{grace.id}/reassign").status == 403
    assert get_user(stack, grace).first_name == "Grace"
    assert holder(stack, "A1") == name(grace)
    teams = stack.users.teams.ListTeams(users_pb2.ListTeamsRequest(), metadata=stack.admin_meta()).teams
    assert [t.display_name for t in teams] == ["EMEA"]

    # Their own name they may change, and nothing else: no license field is offered.
    page.goto(f"{stack.url}/users/{viewer.id}")
    assert page.get_by_label("License").count() == 0
    page.get_by_label("First name").fill("Victoria")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved first name.").wait_for()
    assert get_user(stack, viewer).first_name == "Victoria"


def test_a_team_admin_manages_their_own_teams_members_only(stack: Stack, page) -> None:
    db = stack.users.db
    grace = add_user(db, "grace@example.com", first_name="Grace", last_name="Hopper")
    ada = add_user(db, "ada@example.com")
    md = stack.admin_meta()
    emea, apac = (
        stack.users.teams.CreateTeam(users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name=n)), metadata=md)
        for n in ("EMEA", "APAC")
    )
    stack.users.teams.AddTeamMember(
        users_pb2.AddTeamMemberRequest(team=emea.name, user=name(grace), role=users_pb2.TEAM_ROLE_ADMIN), metadata=md
    )
    sign_in_by_email(page, stack, "grace@example.com")
    page.goto(f"{stack.url}/teams/{emea.uid}")
    page.get_by_label("User", exact=True).select_option(label="ada@example.com")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("ada@example.com added as member.").wait_for()
    assert [m.team for m in get_user(stack, ada).team_memberships] == [emea.name]

    page.goto(f"{stack.url}/teams/{apac.uid}")
    assert page.get_by_role("button", name="Add member").count() == 0
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        f"{stack.url}/teams/{apac.uid}", form={"csrf_token": csrf, "user": name(ada), "role": "member"}
    )
    assert forged.status == 403
    assert page.request.post(f"{stack.url}/teams", form={"csrf_token": csrf, "display_name": "Mine"}).status == 403
