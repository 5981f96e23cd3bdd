"""The Plays pages in a real browser against real users, rules and console servers: a play edited
with a validation error shown beside the document (nothing saved), then saved and tested against
a sample event; a stale edit refused by its etag; and what a user without rights sees and may not
do (no edit action, 403 on a forged POST)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from services.cli.sample_events import event_from_json
from services.console.config import ConsoleConfig, SmtpOut
from services.console.plays_words import action_words, criteria_words, line_of
from services.console.server import ConsoleServer
from services.users.config import UsersConfig
from steward.rules.v1 import events_pb2, plays_pb2
from tests.conftest import JWT_SECRET, bearer
from tests.console_kit import ADMIN, Clock, Stack, sign_in_by_email
from tests.console_rules_kit import RulesStack, rules_console_running
from tests.plays_kit import account_event, play_message, publish, team_with, wait_processed
from tests.processes import free_port
from tests.seed import add_user

pytestmark = pytest.mark.slow


@pytest.fixture
def rules_console(users_api: Any, rules_stack: Any, smtp: Any) -> Iterator[RulesStack]:
    """Real users and rules services and a console that knows both addresses."""
    with rules_console_running(users_api, rules_stack, smtp) as running:
        yield running


ENTERPRISE = (
    '{"account_id": "acct-42", "type": "account_created", "attributes": {"segment": "Enterprise", "arr": 50000}}'
)


def seeded_play(stack: RulesStack) -> plays_pb2.Play:
    """An active play: new Enterprise accounts get bob as their success manager, and a task."""
    md = stack.admin_meta()
    bob = add_user(stack.users.db, "bob@example.com")
    team = team_with(stack.api, md, "Customer Success", bob)
    play = play_message(
        "Enterprise onboarding",
        [
            {"update_value": {"role": "roles/success_manager", "user": f"users/{bob.id}"}},
            {"create_task": {"title": "Kick-off call", "holder_of_role": "roles/success_manager", "due_in_days": 3}},
        ],
        team=team,
        criteria={
            "all": [
                {"field": "segment", "op": "equals", "value": "Enterprise"},
                {"field": "arr", "op": "greater_than", "value": 10000},
            ]
        },
    )
    created: plays_pb2.Play = stack.api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=md)
    return created


def saved(stack: RulesStack, play: plays_pb2.Play) -> plays_pb2.Play:
    found: plays_pb2.Play = stack.api.plays.GetPlay(
        plays_pb2.GetPlayRequest(name=play.name), metadata=stack.admin_meta()
    )
    return found


def replace_in_document(page: Any, old: str, new: str) -> None:
    document = page.get_by_label(re.compile("Play document"))
    text = document.input_value()
    assert old in text, text
    document.fill(text.replace(old, new))


def test_a_play_edited_with_a_validation_error_shown_then_saved_and_tested(rules_console: RulesStack, page) -> None:
    stack = rules_console
    play = seeded_play(stack)
    sign_in_by_email(page, stack, ADMIN)

    # The list: name, trigger, state, priority and run counts; each name links to its play.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Plays").click()
    page.get_by_role("heading", name="Plays").wait_for()
    row = page.locator("table.plays tbody tr")
    expect(row).to_have_count(1)
    assert row.inner_text().split("\t")[1:5] == ["On each account created event", "active", "0", "0"]
    page.get_by_role("link", name="Enterprise onboarding").click()

    # The play in words, from the proto.
    page.get_by_role("heading", name="Enterprise onboarding").wait_for()
    expect(page.locator(".criteria")).to_contain_text("segment is “Enterprise”")
    expect(page.locator(".play-facts")).to_contain_text(f"Customer Success ({play.origin_team})")
    actions = page.locator("ol.play-actions li")
    expect(actions.nth(0)).to_have_text("Set the role success_manager to bob@example.com")
    expect(actions.nth(1)).to_have_text(
        "Create the task “Kick-off call” for whoever holds success_manager, due 3 days after the event"
    )
    expect(page.locator("table.runs")).to_contain_text("No runs yet.")

    # An unknown role: the server's violation beside the document, in file terms, and nothing saved.
    page.get_by_role("link", name="Edit").click()
    replace_in_document(page, "role: success_manager", "role: chief_of_fun")
    page.get_by_role("button", name="Save").click()
    problems = page.locator(".play-problems")
    expect(problems).to_contain_text("actions[0].update_value.role")
    expect(problems).to_contain_text("ROLE_UNKNOWN")
    expect(problems).to_contain_text("line ")
    expect(page.locator("p.problem")).to_contain_text("Nothing was saved")
    assert "chief_of_fun" in page.get_by_label(re.compile("Play document")).input_value()  # the text is kept
    unchanged = saved(stack, play)
    assert unchanged.version == 1 and unchanged.actions[0].update_value.role == "roles/success_manager"

    # Fixed: saved for real (a new version), back on the play's page.
    replace_in_document(page, "role: chief_of_fun", "role: sales_manager")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved “Enterprise onboarding”, version 2.")
    expect(page.locator("ol.play-actions li").nth(0)).to_have_text("Set the role sales_manager to bob@example.com")
    after = saved(stack, play)
    assert after.version == 2 and after.actions[0].update_value.role == "roles/sales_manager"

    # Tested against a sample event: a match, and the actions that would run.
    page.get_by_role("link", name="Test").click()
    page.get_by_label("Sample event (JSON)").fill(ENTERPRISE)
    page.get_by_role("button", name="Test").click()
    result = page.locator(".test-result")
    expect(result.get_by_role("heading")).to_have_text("Matched")
    expect(result.locator("li").nth(0)).to_contain_text("sales_manager")
    expect(result.locator("li").nth(0)).to_contain_text("bob@example.com")  # users in words, not ids
    expect(result.locator("li").nth(1)).to_contain_text("Kick-off call")
    # Too small: no match, and which condition it misses.
    page.get_by_label("Sample event (JSON)").fill(ENTERPRISE.replace("50000", "500"))
    page.get_by_role("button", name="Test").click()
    expect(result.get_by_role("heading")).to_have_text("Not matched")
    expect(result).to_contain_text("do not meet the criteria: it misses these.")
    expect(result.locator("ul.unmet li")).to_have_text(["arr is greater than 10000"])
    # Another event type: said so.
    page.get_by_label("Sample event (JSON)").fill(ENTERPRISE.replace("account_created", "account_updated"))
    page.get_by_role("button", name="Test").click()
    expect(result).to_contain_text("The play fires on account created events; this is an account updated event.")
    # A bad event is shown in words.
    page.get_by_label("Sample event (JSON)").fill('{"account_id": "acct-42", "type": "account_created",')
    page.get_by_role("button", name="Test").click()
    expect(page.locator(".play-problems")).to_contain_text("not JSON: line 1")
    # The test recorded nothing.
    assert saved(stack, play).stats.matched == 0

    # A real event: its run and outcome on the play's page, its counts in the list.
    event = account_event("acct-42", {"segment": "Enterprise", "arr": 50000})
    publish(stack.api, bearer(), event)
    wait_processed(stack.api, bearer(), event.event_id)
    page.goto(f"{stack.url}/plays/{play.uid}")
    run = page.locator("table.runs tbody tr")
    expect(run).to_have_count(1)
    expect(run).to_contain_text("acct-42")
    expect(run.locator("td").nth(2)).to_have_text("applied")
    expect(run).to_contain_text("1: applied → bob@example.com")
    page.get_by_label("Outcome").select_option("failed")
    page.get_by_role("button", name="Show").click()
    expect(run).to_have_text(["No failed runs."])
    page.get_by_label("Outcome").select_option("applied")
    page.get_by_role("button", name="Show").click()
    expect(run.locator("td").nth(1)).to_have_text("acct-42")
    assert page.request.get(f"{stack.url}/plays/{play.uid}?runs=made-up").ok  # back to the newest, in words
    page.get_by_role("link", name="Plays", exact=True).first.click()
    counts = page.locator("table.plays tbody tr td")
    expect(counts.nth(4)).to_have_text("1")
    expect(counts.nth(5)).to_have_text("1")


def test_a_stale_edit_is_refused_by_its_etag(rules_console: RulesStack, page) -> None:
    stack = rules_console
    play = seeded_play(stack)
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/plays/{play.uid}/edit")
    # Meanwhile someone else changes it.
    changed = plays_pb2.Play(name=play.name, description="Changed elsewhere")
    stack.api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(play=changed, update_mask={"paths": ["description"]}), metadata=stack.admin_meta()
    )
    replace_in_document(page, "status: active", "status: paused")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.problem")).to_contain_text("Someone else changed this play since you opened it")
    after = saved(stack, play)
    assert (after.version, after.status, after.description) == (2, plays_pb2.PLAY_STATUS_ACTIVE, "Changed elsewhere")


def test_a_new_play_is_created_from_its_document(rules_console: RulesStack, page) -> None:
    stack = rules_console
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/plays")
    page.get_by_role("link", name="New play").click()
    replace_in_document(page, "name: New play", "name: Welcome")

    # Tried before it is saved: the document as written against a sample event; nothing saved.
    page.get_by_text("Test this document before saving").click()
    page.get_by_label("Sample event (JSON)").fill(ENTERPRISE)
    page.get_by_role("button", name="Test this document").click()
    result = page.locator(".test-result")
    expect(result.get_by_role("heading")).to_have_text("Matched")
    expect(result.locator("li")).to_contain_text(["Kick-off call"])
    replace_in_document(page, "value: Enterprise", "value: Mid-market")
    page.get_by_role("button", name="Test this document").click()
    expect(result.get_by_role("heading")).to_have_text("Not matched")
    expect(result.locator("ul.unmet li")).to_have_text(["segment is “Enterprise”".replace("Enterprise", "Mid-market")])
    replace_in_document(page, "holder_of_role: success_manager", "holder_of_role: nobody")
    page.get_by_role("button", name="Test this document").click()
    expect(page.locator("p.problem")).to_contain_text("Nothing was tested")
    expect(page.locator(".play-problems")).to_contain_text("actions[0].create_task.holder_of_role")
    assert stack.api.plays.ListPlays(plays_pb2.ListPlaysRequest(), metadata=stack.admin_meta()).plays == []

    replace_in_document(page, "holder_of_role: nobody", "holder_of_role: success_manager")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Saved “Welcome”, version 1.")
    names = [
        p.display_name
        for p in stack.api.plays.ListPlays(plays_pb2.ListPlaysRequest(), metadata=stack.admin_meta()).plays
    ]
    assert names == ["Welcome"]


def test_a_user_without_rights_sees_no_edit_action_and_a_forged_post_is_refused(
    rules_console: RulesStack, page
) -> None:
    stack = rules_console
    play = seeded_play(stack)
    add_user(stack.users.db, "viewer@example.com")
    sign_in_by_email(page, stack, "viewer@example.com")
    page.goto(f"{stack.url}/plays")
    page.get_by_role("link", name="Enterprise onboarding").wait_for()
    assert page.get_by_role("link", name="New play").count() == 0
    page.get_by_role("link", name="Enterprise onboarding").click()
    page.get_by_role("heading", name="Enterprise onboarding").wait_for()
    assert page.get_by_role("link", name="Edit").count() == 0
    assert page.get_by_role("link", name="Test").count() == 1  # reading and dry runs are for everyone

    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    document = "name: Enterprise onboarding\nstatus: paused\ntrigger: {event: account_created}\n"
    forged = page.request.post(
        f"{stack.url}/plays/{play.uid}/edit", form={"csrf_token": csrf, "document": document, "etag": play.etag}
    )
    assert forged.status == 403
    assert "You do not have the rights to do that." in forged.text()
    assert page.request.get(f"{stack.url}/plays/{play.uid}/edit").status == 403
    assert page.request.post(f"{stack.url}/plays/new", form={"csrf_token": csrf, "document": document}).status == 403
    assert saved(stack, play).version == 1


def test_a_webhook_play_keeps_its_write_only_secret_and_an_unchanged_save_changes_nothing(
    rules_console: RulesStack, page
) -> None:
    stack = rules_console
    hook = {"call_webhook": {"url": "https://hooks.example.com/steward", "timeout_seconds": 5}}
    play = stack.api.plays.CreatePlay(
        plays_pb2.CreatePlayRequest(play=play_message("Tell the CRM", [hook], webhook_secret="s" * 40)),
        metadata=stack.admin_meta(),
    )
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/plays/{play.uid}/edit")
    expect(page.locator("#secret-hint")).to_contain_text("this play has one; leave empty to keep it")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("Nothing changed: “Tell the CRM” stays at version 1.")

    page.goto(f"{stack.url}/plays/{play.uid}/edit")
    replace_in_document(page, "name: Tell the CRM", "name: Tell the CRM\nwebhook_secret_env: CRM_KEY")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".play-problems")).to_contain_text("The console cannot read environment variables")
    replace_in_document(page, "webhook_secret_env: CRM_KEY", "description: Every new account")
    page.get_by_label(re.compile("Webhook secret")).fill("too short")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".play-problems")).to_contain_text("webhook secret")
    assert saved(stack, play).version == 1

    page.get_by_role("button", name="Save").click()  # the secret field is empty again: the old one stays
    expect(page.locator(".flash")).to_contain_text("Saved “Tell the CRM”, version 2.")
    after = saved(stack, play)
    assert (after.description, after.has_webhook_secret) == ("Every new account", True)


def test_criteria_and_actions_in_words_and_where_a_key_is_written() -> None:
    criteria = {
        "all": [
            {"field": "segment", "op": "in", "value": ["Enterprise", "Mid"]},
            {"any": [{"field": "arr", "op": "less_than", "value": 5.0}, {"field": "owner", "op": "exists"}]},
            {"not": {"field": "stage", "op": "changed", "from": "onboarding", "to": "adoption"}},
            {"field": "renewal_date", "op": "within_next_days", "value": 30},
        ]
    }
    words = criteria_words(criteria)
    assert words.text == "All of these:"
    assert [c.text for c in words.children] == [
        "segment is one of “Enterprise”, “Mid”",
        "Any of these:",
        "Not this:",
        "renewal_date is within the next 30 days",
    ]
    assert [c.text for c in words.children[1].children] == ["arr is less than 5", "owner is set"]
    assert words.children[2].children[0].text == "stage changed from “onboarding” to “adoption”"

    action = plays_pb2.Action(
        update_value=plays_pb2.UpdateValueAction(
            role="roles/csm", round_robin=plays_pb2.RoundRobin(users=["users/1", "a@x.com"])
        )
    )
    assert action_words(action, lambda name: {"users/1": "one@x.com"}.get(name, name)) == (
        "Set the role csm to the next of one@x.com, a@x.com (round robin: the one with the fewest accounts)"
    )

    document = "name: X\ntrigger:\n  event: account_created\nactions:\n- create_task:\n    title: Hi\n"
    assert line_of(document, "actions[0].create_task.title") == 6
    assert line_of(document, "trigger.event") == 3
    assert line_of(document, "actions[3].update_value") == 4  # the deepest key there is
    assert line_of("name: [", "name") is None


def test_a_sample_event_in_json_and_its_problems_in_words() -> None:
    event, issues = event_from_json('{"account_id": " a-1 ", "custom_type": "renewal.signed", "attributes": {"x": 1}}')
    assert issues == []
    assert (event.account_id, event.type, event.custom_type) == ("a-1", events_pb2.EVENT_TYPE_CUSTOM, "renewal.signed")
    assert event.attributes["x"] == 1
    _, issues = event_from_json('{"account_id": 5, "type": "nope", "attributes": [], "extra": 1}')
    assert {(path, reason) for path, _, reason in issues} == {
        ("extra", "UNKNOWN_KEY"),
        ("account_id", "TYPE_INVALID"),
        ("type", "ENUM_INVALID"),
        ("attributes", "TYPE_INVALID"),
    }
    assert event_from_json("[1]")[1][0][2] == "TYPE_INVALID"
    assert event_from_json("")[1][0][2] == "REQUIRED"
    assert event_from_json('{"account_id": "a"')[1][0][2] == "JSON_INVALID"


def test_the_rules_service_away_is_said_in_words(users_api: Any, smtp: Any, page) -> None:
    users = users_api(UsersConfig(bootstrap_admin_email=ADMIN))
    config = ConsoleConfig(
        host="127.0.0.1",
        port=0,
        users_address=users.running.address,
        rules_address=f"127.0.0.1:{free_port()}",  # nothing listens there
        jwt_secret=JWT_SECRET,
        smtp=SmtpOut(host="127.0.0.1", port=smtp.port),
    )
    server = ConsoleServer(config, Clock())
    server.start()
    try:
        stack = Stack(users, server, smtp, Clock())
        sign_in_by_email(page, stack, ADMIN)
        answer = page.request.get(f"{stack.url}/plays")
        assert answer.status == 503
        assert "The rules or users service cannot be reached right now." in answer.text()
        assert "Traceback" not in answer.text()
    finally:
        server.stop(timeout=2)


def test_segment_and_manual_plays_are_shown_and_tested_in_words(rules_console: RulesStack, page) -> None:
    stack = rules_console
    md = stack.admin_meta()
    event = account_event("acct-1", {"segment": "Enterprise", "renewal_date": "2999-01-01"})
    publish(stack.api, bearer(), event)  # segment criteria may name only attributes events carried
    task = {"create_task": {"title": "Plan the renewal", "holder_of_role": "roles/success_manager"}}
    segment = play_message(
        "Renewal coming up",
        [task],
        kind=plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT,
        activation=plays_pb2.ACTIVATION_SCOPE_EXISTING_AND_NEW,
        criteria={"field": "renewal_date", "op": "within_next_days", "value": 30},
        status=plays_pb2.PLAY_STATUS_DRAFT,
    )
    manual = play_message("Escalate", [task], kind=plays_pb2.TRIGGER_KIND_MANUAL, status=plays_pb2.PLAY_STATUS_DRAFT)
    created = [stack.api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=p), metadata=md) for p in (segment, manual)]
    sign_in_by_email(page, stack, ADMIN)
    page.goto(f"{stack.url}/plays")
    rows = page.locator("table.plays tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Run by hand only")
    expect(rows.nth(1)).to_contain_text(
        "When an account enters the segment (also the accounts already in it when activated)"
    )
    expect(rows.nth(1)).to_contain_text("draft")

    page.goto(f"{stack.url}/plays/{created[0].uid}")
    expect(page.locator(".criteria")).to_contain_text("renewal_date is within the next 30 days")
    for play in created:
        page.goto(f"{stack.url}/plays/{play.uid}/test")
        page.get_by_role("button", name="Test").click()
        expect(page.locator(".test-result").get_by_role("heading")).to_have_text("Not matched")
    expect(page.locator(".test-result")).to_contain_text("This play runs only by hand")
