"""The Users page in a real browser: the filter, a bulk disable with each user's outcome, and
what a user without rights sees and may not do (no admin action, 403 on a forged POST, a POST
without the CSRF token refused)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from steward.users.v1 import users_pb2
from tests.console_kit import ADMIN, Stack, sign_in_by_email, token_of

pytestmark = pytest.mark.slow


def invite(stack: Stack, *emails: str, license: users_pb2.License = users_pb2.LICENSE_VIEWER) -> list[users_pb2.User]:
    request = users_pb2.InviteUsersRequest(emails=list(emails), license=license)
    return list(stack.users.users.InviteUsers(request, metadata=stack.admin_meta()).users)


def active_user(stack: Stack, email: str, first: str, last: str) -> users_pb2.User:
    invite(stack, email)
    token = token_of(stack.link_in_next_mail(email, "/accept-invitation"))
    accepted: users_pb2.User = stack.users.users.AcceptInvitation(
        users_pb2.AcceptInvitationRequest(token=token, first_name=first, last_name=last)
    )
    return accepted


def status_of(stack: Stack, user: users_pb2.User) -> int:
    found = stack.users.users.GetUser(users_pb2.GetUserRequest(name=user.name), metadata=stack.admin_meta())
    status: int = found.status
    return status


def test_bulk_disable_on_a_mixed_selection_shows_each_users_outcome(stack: Stack, page) -> None:
    grace = active_user(stack, "grace@example.com", "Grace", "Hopper")
    (pending,) = invite(stack, "pending@example.com")
    sign_in_by_email(page, stack, ADMIN)

    # The filter: by text and by status (htmx swaps the table in; the form also works without it).
    page.get_by_label("Search").fill("hopper")
    page.get_by_role("cell", name="Grace Hopper", exact=True).wait_for()
    expect(page.locator("table.users tbody tr")).to_have_count(1)
    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option("created")
    expect(page.get_by_role("cell", name="grace@example.com", exact=True)).to_have_count(0)
    assert page.get_by_role("cell", name="pending@example.com", exact=True).is_visible()
    page.get_by_label("Status").select_option("")
    page.get_by_role("cell", name="grace@example.com", exact=True).wait_for()

    for email in ("grace@example.com", "pending@example.com", ADMIN):
        page.get_by_label(f"Select {email}").check()
    page.get_by_label("Action").select_option("disable")
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("heading", name="Bulk disable: 1 done, 2 skipped").wait_for()

    rows = {
        row.locator("td").nth(0).inner_text(): row.inner_text() for row in page.locator("table.outcomes tbody tr").all()
    }
    assert set(rows) == {"grace@example.com", "pending@example.com", ADMIN}
    assert "done" in rows["grace@example.com"]
    assert "skipped" in rows["pending@example.com"]
    assert "That action does not apply to this user's status." in rows["pending@example.com"]
    assert "Global admins cannot be disabled or deleted." in rows[ADMIN]
    assert status_of(stack, grace) == users_pb2.USER_STATUS_DISABLED
    assert status_of(stack, pending) == users_pb2.USER_STATUS_CREATED


def test_the_other_bulk_actions_change_license_add_to_team_and_delete_after_confirming(stack: Stack, page) -> None:
    ada = active_user(stack, "ada@example.com", "Ada", "Lovelace")
    (pending,) = invite(stack, "pending@example.com")
    team = stack.users.teams.CreateTeam(
        users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name="EMEA Success")), metadata=stack.admin_meta()
    )
    sign_in_by_email(page, stack, ADMIN)

    def apply(action: str, *emails: str, **choices: str) -> None:
        page.goto(f"{stack.url}/users")
        for email in emails:
            page.get_by_label(f"Select {email}").check()
        page.get_by_label("Action").select_option(action)
        if "license" in choices:
            page.get_by_label("License (change license)").select_option(choices["license"])
        if "team" in choices:
            page.get_by_label("Team (add to team)").select_option(label=choices["team"])
        if choices.get("confirm"):
            page.get_by_label("Yes, delete them (delete)").check()
        page.get_by_role("button", name="Apply").click()

    apply("change-license", "ada@example.com", "pending@example.com", license="contributor")
    page.get_by_role("heading", name="Bulk change license: 2 done, 0 skipped").wait_for()
    found = stack.users.users.GetUser(users_pb2.GetUserRequest(name=ada.name), metadata=stack.admin_meta())
    assert found.license == users_pb2.LICENSE_CONTRIBUTOR

    apply("add-to-team", "ada@example.com", team="EMEA Success")
    page.get_by_role("heading", name="Bulk add to team: 1 done, 0 skipped").wait_for()
    members = stack.users.teams.ListTeamMembers(
        users_pb2.ListTeamMembersRequest(team=team.name), metadata=stack.admin_meta()
    )
    assert [m.user for m in members.members] == [ada.name]

    apply("delete", "pending@example.com")  # not confirmed: nothing happens
    expect(page.get_by_text("it cannot be undone")).to_be_visible()
    assert status_of(stack, pending) == users_pb2.USER_STATUS_CREATED
    apply("delete", "pending@example.com", confirm="yes")
    page.get_by_role("heading", name="Bulk delete: 1 done, 0 skipped").wait_for()
    assert status_of(stack, pending) == users_pb2.USER_STATUS_DELETED


def test_pages_of_the_user_list_follow_each_other(stack: Stack, page) -> None:
    invite(stack, *(f"person{i:02}@example.com" for i in range(30)))
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/users?size=20&q=person")
    first = page.locator("table.users tbody tr").count()
    page.get_by_role("link", name="Next page").click()
    page.get_by_role("link", name="First page").wait_for()
    second = page.locator("table.users tbody tr").count()
    assert (first, second) == (20, 10)
    assert page.get_by_role("link", name="Next page").count() == 0


def test_a_user_without_rights_sees_no_admin_action_and_a_forged_post_is_refused(stack: Stack, page) -> None:
    viewer = active_user(stack, "viewer@example.com", "Vic", "Viewer")
    grace = active_user(stack, "grace@example.com", "Grace", "Hopper")
    sign_in_by_email(page, stack, "viewer@example.com")
    page.get_by_role("cell", name="grace@example.com", exact=True).wait_for()
    assert page.get_by_role("link", name="Invite users").count() == 0
    assert page.get_by_role("button", name="Apply").count() == 0
    assert page.get_by_role("checkbox").count() == 0

    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        f"{stack.url}/users/bulk", form={"csrf_token": csrf, "action": "disable", "user": grace.name}
    )
    assert forged.status == 403
    assert "You do not have the rights to do that." in forged.text()
    assert page.request.get(f"{stack.url}/users/invite").status == 403
    assert status_of(stack, grace) == users_pb2.USER_STATUS_ACTIVE
    assert status_of(stack, viewer) == users_pb2.USER_STATUS_ACTIVE


def test_a_post_without_the_csrf_token_is_refused(stack: Stack, page) -> None:
    grace = active_user(stack, "grace@example.com", "Grace", "Hopper")
    sign_in_by_email(page, stack, ADMIN)
    refused = page.request.post(f"{stack.url}/users/bulk", form={"action": "disable", "user": grace.name})
    assert refused.status == 400
    assert re.search(r"not sent from this console page", refused.text())
    assert status_of(stack, grace) == users_pb2.USER_STATUS_ACTIVE
    # The sign-in form too: no token, no email.
    anonymous = page.context.browser.new_context()
    assert anonymous.request.post(f"{stack.url}/signin", form={"email": ADMIN}).status == 400
    anonymous.close()
