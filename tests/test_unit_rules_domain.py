"""Pure rules-domain logic: actions as authors write them, event input to the engine, run outcomes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.rules.domain import actions
from services.rules.domain.events import AccountEvent, AccountState, evaluation_input, flatten
from services.rules.domain.model import EventType, Play, PlayStatus, Trigger, check_definition
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.runtime.errors import Violations

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def _problems(raw) -> dict[str, str]:
    problems = Violations()
    actions.parse_actions(raw, "actions", problems)
    return {v.field: v.reason for v in problems.items}


def test_every_action_problem_is_reported_with_its_path():
    raw = [
        {"update_value": {"role": "success_manager", "user": "ann@example.com"}},  # role without roles/
        {"update_value": {"role": "roles/x", "user": "a@x.io", "holder_of_role": "roles/y"}},  # two values
        {"create_task": {"title": "", "user": "not-a-user", "due_in_days": -1}},
        {"create_task": {"title": "t", "round_robin": {"users": ["a@x.io"]}}},  # tasks have no round robin
        {"update_value": {"role": "roles/x", "round_robin": {"users": ["a@x.io", "a@x.io"]}}},
        {"send_email": {}},
    ]
    assert _problems(raw) == {
        "actions[0].update_value.role": "ROLE_INVALID",
        "actions[1].update_value.value": "VALUE_INVALID",
        "actions[2].create_task.title": "TITLE_INVALID",
        "actions[2].create_task.due_in_days": "DUE_INVALID",
        "actions[2].create_task.user": "USER_INVALID",
        "actions[3].create_task.assignee": "VALUE_INVALID",
        "actions[4].update_value.round_robin.users": "USER_DUPLICATE",
        "actions[5]": "ACTION_INVALID",
    }
    assert _problems([]) == {"actions": "ACTIONS_INVALID"}


def test_actions_round_trip_through_their_stored_form_and_name_their_references():
    raw: list[dict[str, Any]] = [
        {"update_value": {"role": "roles/success_manager", "round_robin": {"team": "teams/t1"}}},
        {"update_value": {"role": "roles/sales_manager", "holder_of_role": "roles/success_manager"}},
        {"create_task": {"title": "Kick-off", "user": "ann@example.com", "due_in_days": 3}},
    ]
    parsed = actions.from_dicts(raw)
    assert [actions.to_dict(a) for a in parsed] == raw
    refs = actions.references(dict(enumerate(parsed)))
    assert [(r.path, r.kind, r.value) for r in refs] == [
        ("actions[0].update_value.role", "role", "roles/success_manager"),
        ("actions[0].update_value.round_robin.team", "team", "teams/t1"),
        ("actions[1].update_value.role", "role", "roles/sales_manager"),
        ("actions[1].update_value.holder_of_role", "role", "roles/success_manager"),
        ("actions[2].create_task.user", "user", "ann@example.com"),
    ]
    assert actions.describe(parsed[2]) == "create task 'Kick-off' for ann@example.com, due in 3 days"


def test_a_play_that_sets_roles_needs_an_origin_team_and_custom_triggers_a_type():
    play = Play(
        "p1",
        "Name",
        "",
        "owner",
        "",
        PlayStatus.ACTIVE,
        Trigger(EventType.CUSTOM, "", {"field": "x", "op": "like", "value": 1}),
        NOW,
        NOW,
        actions=[{"update_value": {"role": "roles/r", "user": "a@x.io"}}],
    )
    reasons = {v.field: v.reason for v in check_definition(play).items}
    assert reasons == {
        "play.trigger.custom_event_type": "EVENT_TYPE_INVALID",
        "play.trigger.criteria.op": "OPERATOR_UNKNOWN",
        "play.origin_team": "ORIGIN_TEAM_REQUIRED",
    }


def test_the_engine_sees_the_event_over_the_last_known_state_and_what_changed():
    event = AccountEvent(
        "e1",
        "a1",
        EventType.ACCOUNT_UPDATED,
        "",
        NOW,
        {"stage": "adoption", "billing": {"country": "FR", "seats": 3.0}},
    )
    seen = evaluation_input(event, AccountState({"stage": "onboarding", "segment": "SMB"}))
    assert seen.attributes == {
        "stage": "adoption",
        "segment": "SMB",
        "billing.country": "FR",
        "billing.seats": 3,
        "account_id": "a1",
    }
    assert seen.previous == {"stage": "onboarding"}
    assert seen.new_state.attributes == {
        "stage": "adoption",
        "segment": "SMB",
        "billing.country": "FR",
        "billing.seats": 3,
    }
    explicit = AccountEvent("e2", "a1", EventType.ACCOUNT_UPDATED, "", NOW, {"stage": "x"}, {"stage": "told"})
    assert evaluation_input(explicit, AccountState({"stage": "known"})).previous == {"stage": "told"}
    assert flatten({"a": {"b": {"c": [1, 2]}}}) == {"a.b.c": [1, 2]}


def test_an_older_event_does_not_roll_back_an_attribute_a_newer_one_set():
    newer = AccountEvent("e2", "a1", EventType.ATTRIBUTE_CHANGED, "", NOW, {"segment": "Enterprise", "arr": 5})
    state = evaluation_input(newer, None).new_state
    late = AccountEvent(
        "e1", "a1", EventType.ATTRIBUTE_CHANGED, "", NOW - dt.timedelta(hours=1), {"segment": "SMB", "region": "EU"}
    )
    seen = evaluation_input(late, state)
    # The late event's own news (region) is taken; what it says about segment is older news.
    assert seen.new_state.attributes == {"segment": "Enterprise", "arr": 5, "region": "EU"}
    assert seen.attributes["segment"] == "Enterprise"
    same_time = AccountEvent("e3", "a1", EventType.ATTRIBUTE_CHANGED, "", NOW, {"segment": "Mid"})
    assert evaluation_input(same_time, state).new_state.attributes["segment"] == "Mid"  # ties: the later arrival


def test_a_cleared_role_leaves_the_account_team():
    held = evaluation_input(
        AccountEvent("e1", "a1", EventType.ASSIGNMENT_CHANGED, "", NOW, {"role": "roles/sm", "sm___tid": "u"}), None
    ).new_state
    cleared = AccountEvent(
        "e2",
        "a1",
        EventType.ASSIGNMENT_CHANGED,
        "",
        NOW + dt.timedelta(seconds=1),
        {"role": "roles/sm", "sm___tid": ""},
    )
    seen = evaluation_input(cleared, held)
    assert "sm___tid" not in seen.new_state.attributes and "sm___tid" not in seen.attributes
    assert seen.previous == {"sm___tid": "u"}


def test_assignment_changes_update_only_the_account_team_in_the_state():
    event = AccountEvent(
        "e", "a1", EventType.ASSIGNMENT_CHANGED, "", NOW, {"role": "roles/sm", "user": "users/u", "sm___tid": "u"}
    )
    seen = evaluation_input(event, AccountState({"segment": "SMB"}))
    assert seen.new_state.attributes == {"segment": "SMB", "sm___tid": "u"}
    assert seen.attributes["role"] == "roles/sm"


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], RunOutcome.APPLIED),
        ([RunOutcome.APPLIED, RunOutcome.APPLIED], RunOutcome.APPLIED),
        ([RunOutcome.APPLIED, RunOutcome.SKIPPED], RunOutcome.SKIPPED),
        ([RunOutcome.FAILED, RunOutcome.SKIPPED, RunOutcome.APPLIED], RunOutcome.FAILED),
    ],
)
def test_a_run_takes_the_worst_outcome_of_its_actions(outcomes, expected):
    run = PlayRun("r", "p", 1, 1, "e", "a", {}, NOW)
    run.results = [
        ActionResult(i, o, reason=f"R{i}" if o is not RunOutcome.APPLIED else "") for i, o in enumerate(outcomes)
    ]
    run.finish(NOW)
    assert run.outcome is expected and run.finish_time == NOW
    worst = next((r for r in run.results if r.outcome is expected), None)
    assert run.reason == ("" if expected is RunOutcome.APPLIED or worst is None else worst.reason)
    assert run.request_id(0) == run.request_id(0) != run.request_id(1)
