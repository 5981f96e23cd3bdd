"""Signing in to the console in a real browser: an invitation accepted through the emailed link,
the one-time email link (used once, refused when used or expired), and sessions that expire."""

from __future__ import annotations

from steward.users.v1 import users_pb2
from tests.console_kit import ADMIN, Stack, sign_in_by_email, token_of

pytestmark = __import__("pytest").mark.slow


def user_by_email(stack: Stack, email: str) -> users_pb2.User:
    reply = stack.users.users.ListUsers(users_pb2.ListUsersRequest(emails=[email]), metadata=stack.admin_meta())
    assert len(reply.users) == 1, reply
    user: users_pb2.User = reply.users[0]
    return user


def test_an_invitation_sent_from_the_console_is_accepted_through_the_emailed_link(stack: Stack, page, browser) -> None:
    sign_in_by_email(page, stack, ADMIN)
    page.get_by_role("link", name="Invite users").click()
    page.get_by_label("Email addresses").fill("not-an-address")
    page.get_by_role("button", name="Invite").click()
    page.get_by_text("Not an email address: not-an-address.").wait_for()
    # A refusal of the service, in words beside the field.
    page.get_by_label("Email addresses").fill(ADMIN)
    page.get_by_role("button", name="Invite").click()
    page.get_by_text("already belongs to a user").wait_for()
    page.get_by_label("Email addresses").fill("ada@example.com")
    page.get_by_label("License").select_option("contributor")
    page.get_by_role("button", name="Invite").click()
    page.get_by_text("Invited 1: ada@example.com.").wait_for()
    assert user_by_email(stack, "ada@example.com").status == users_pb2.USER_STATUS_CREATED

    link = stack.link_in_next_mail("ada@example.com", "/accept-invitation")
    invitee = browser.new_context().new_page()
    invitee.goto(link)
    invitee.get_by_role("button", name="Finish and sign in").click()
    invitee.get_by_text("Enter your first name.").wait_for()
    invitee.get_by_label("First name").fill("Ada")
    invitee.get_by_label("Last name").fill("Lovelace")
    invitee.get_by_role("button", name="Finish and sign in").click()
    invitee.get_by_role("heading", name="Users").wait_for()
    assert invitee.get_by_text("ada@example.com").first.is_visible()
    accepted = user_by_email(stack, "ada@example.com")
    assert accepted.status == users_pb2.USER_STATUS_ACTIVE
    assert (accepted.first_name, accepted.last_name) == ("Ada", "Lovelace")

    # The link works once: a second person opening it is told so, in words.
    again = browser.new_context().new_page()
    again.goto(link)
    again.get_by_label("First name").fill("Eve")
    again.get_by_label("Last name").fill("Mallory")
    again.get_by_role("button", name="Finish and sign in").click()
    again.get_by_text("This invitation was already accepted. Sign in instead.").wait_for()
    again.goto(f"{stack.url}/accept-invitation?token=made-up")
    again.get_by_label("First name").fill("Eve")
    again.get_by_label("Last name").fill("Mallory")
    again.get_by_role("button", name="Finish and sign in").click()
    again.get_by_text("This invitation link is not valid.").wait_for()
    invitee.context.close()
    again.context.close()


def test_the_one_time_email_link_signs_in_once_and_not_after_it_expires(stack: Stack, page, browser) -> None:
    sign_in_by_email(page, stack, ADMIN)
    first_link = f"{stack.url}/signin/link?token={token_of(_last_link(stack))}"

    other = browser.new_context().new_page()
    other.goto(first_link)
    other.get_by_text("This sign-in link was already used. Ask for a new one.").wait_for()

    # A link past its 15 minutes.
    other.goto(f"{stack.url}/signin")
    other.get_by_label("Email").fill(ADMIN)
    other.get_by_role("button", name="Email me a sign-in link").click()
    late = stack.link_in_next_mail(ADMIN, "/signin/link")
    stack.clock.now += 16 * 60
    other.goto(late)
    other.get_by_text("This sign-in link has expired. Ask for a new one.").wait_for()

    # A forged link, and an address that is nobody's: the same answer as for a real one, no email.
    other.goto(f"{stack.url}/signin/link?token=forged")
    other.get_by_text("This sign-in link is not valid.").wait_for()
    other.goto(f"{stack.url}/signin")
    other.get_by_label("Email").fill("nobody@example.com")
    other.get_by_role("button", name="Email me a sign-in link").click()
    other.get_by_text("If this address belongs to an active user, a sign-in link is on its way.").wait_for()
    other.goto(f"{stack.url}/users")
    assert "/signin" in other.url
    assert stack.smtp.to("nobody@example.com") == []
    other.context.close()


def _last_link(stack: Stack) -> str:
    import re

    body = stack.smtp.to(ADMIN)[-1].get_content()
    found = re.search(r"https?://\S+", body)
    assert found
    return found.group(0)


def test_an_idle_session_goes_back_to_sign_in(stack: Stack, page) -> None:
    sign_in_by_email(page, stack, ADMIN)
    stack.clock.now += 29 * 60
    page.goto(f"{stack.url}/users")
    page.get_by_role("heading", name="Users").wait_for()
    stack.clock.now += 31 * 60
    page.goto(f"{stack.url}/users?q=ada")
    page.get_by_text("Your session has expired. Sign in again.").wait_for()
    assert "/signin" in page.url and "next=" in page.url


def test_health_and_readiness(stack: Stack, page) -> None:
    assert page.goto(f"{stack.url}/healthz").status == 200
    assert page.goto(f"{stack.url}/readyz").status == 200
