"""Pure unit tests of segment plays' domain logic: membership flips and what fires, relative-date
criteria (parsing, clock arithmetic, the engine in process), call_webhook and parent-account
actions, trigger-kind checks, loop warnings, out-of-order account state, webhook signatures.

No servers, no database."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from services.rules.adapters.webhook import encode, sign
from services.rules.domain import actions
from services.rules.domain.criteria import (
    DAY,
    AllOf,
    AnyOf,
    Condition,
    NotOf,
    Op,
    is_time_based,
    parse,
    relative_date_holds,
    to_epoch,
)
from services.rules.domain.events import AccountEvent, AccountState, evaluation_input
from services.rules.domain.model import SEGMENT_FACT, EventType, Play, PlayStatus, Trigger, check_definition
from services.rules.domain.segments import ActivationScope, Flip, TriggerKind, fires, flips, loop_warnings
from services.rules.engine.evaluator import CompiledPlay, PlayEngine
from services.runtime.errors import InvalidArgument, Violations

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 26, tzinfo=UTC)
NOW = T0.timestamp()
SECRET = "s" * 32
TASK = {"create_task": {"title": "Call them", "user": "ann@example.com"}}


def _play(
    trigger: Trigger,
    play_actions: list[dict[str, Any]] | None = None,
    *,
    origin_team: str = "teams/t1",
    webhook_secret: str = "",
) -> Play:
    return Play(
        "p1",
        "Name",
        "",
        "owner",
        origin_team,
        PlayStatus.DRAFT,
        trigger,
        T0,
        T0,
        actions=[TASK] if play_actions is None else play_actions,
        webhook_secret=webhook_secret,
    )


def _segment(criteria: dict[str, Any] | None, kind: TriggerKind = TriggerKind.ENTERS_SEGMENT) -> Trigger:
    return Trigger(None, "", criteria, kind, ActivationScope.NEW_ONLY)


def _reasons(problems: Violations) -> dict[str, str]:
    return {v.field: v.reason for v in problems.items}


def _action_problems(raw: list[Any]) -> tuple[dict[int, actions.Action], dict[str, str]]:
    problems = Violations()
    parsed = actions.parse_actions(raw, "actions", problems)
    return parsed, _reasons(problems)


# --- flips and what fires -------------------------------------------------------------------------


def test_flips_report_entered_and_left_per_considered_play_sorted_by_play():
    changed = flips(
        "a1", members_before=["p3", "p1", "p9"], members_now=["p2", "p3", "p4"], considered=["p4", "p1", "p2"]
    )
    assert changed == [Flip("p1", "a1", False), Flip("p2", "a1", True), Flip("p4", "a1", True)]
    # p9 left and p3 stayed, but neither is considered; p3 would not flip anyway.


def test_no_flip_when_membership_is_unchanged_or_the_play_is_not_considered():
    assert flips("a1", ["p1"], ["p1"], ["p1", "p2"]) == []  # in and in, out and out
    assert flips("a1", [], ["p1"], []) == []
    assert flips("a1", ["p1"], [], ["p2"]) == []
    # Iterables of any kind, duplicates in considered count once.
    assert flips("a1", iter(()), iter(["p1"]), ["p1", "p1"]) == [Flip("p1", "a1", True)]


@pytest.mark.parametrize(
    ("kind", "on_enter", "on_exit"),
    [
        (TriggerKind.ENTERS_SEGMENT, True, False),
        (TriggerKind.EXITS_SEGMENT, False, True),
        (TriggerKind.EVENT, False, False),
        (TriggerKind.MANUAL, False, False),
    ],
)
def test_enters_fires_on_entering_only_exits_on_leaving_only_others_never(kind, on_enter, on_exit):
    assert fires(kind, Flip("p1", "a1", True)) is on_enter
    assert fires(kind, Flip("p1", "a1", False)) is on_exit


def test_only_the_two_segment_kinds_are_segments():
    assert {k for k in TriggerKind if k.is_segment} == {TriggerKind.ENTERS_SEGMENT, TriggerKind.EXITS_SEGMENT}


# --- relative dates: to_epoch and relative_date_holds ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_764_115_200, 1_764_115_200.0),
        (1_764_115_200.5, 1_764_115_200.5),
        ("2026-11-26", NOW),  # a date is its midnight UTC
        ("2026-11-26T10:30:00Z", NOW + 10.5 * 3600),
        ("2026-11-26T10:30:00+00:00", NOW + 10.5 * 3600),
        ("2026-11-26T12:30:00+02:00", NOW + 10.5 * 3600),
        ("2026-11-25T22:00:00-05:00", NOW + 3 * 3600),
        ("2026-11-26T10:30:00", NOW + 10.5 * 3600),  # no zone: UTC, not the machine's local time
        ("2026-11-26T10:30:00.250000Z", NOW + 10.5 * 3600 + 0.25),
    ],
)
def test_to_epoch_reads_epoch_numbers_dates_and_iso_date_times(value, expected):
    assert to_epoch(value) == pytest.approx(expected, abs=1e-6)
    assert isinstance(to_epoch(value), float)


@pytest.mark.parametrize(
    "value",
    [True, False, None, "", "soon", "2026-13-01", "2026-02-30", "26/11/2026", "2026-11-26T25:00:00", [1], {"a": 1}],
)
def test_to_epoch_is_none_for_anything_not_a_point_in_time(value):
    assert to_epoch(value) is None


# (op, offset of the date from now in seconds, holds?) with N = 30 days
BOUNDARIES = [
    (Op.WITHIN_NEXT_DAYS, 0, True),  # exactly now
    (Op.WITHIN_NEXT_DAYS, 30 * DAY, True),  # exactly N days ahead
    (Op.WITHIN_NEXT_DAYS, 30 * DAY + 1, False),  # one second beyond
    (Op.WITHIN_NEXT_DAYS, -1, False),  # already past
    (Op.WITHIN_LAST_DAYS, 0, True),
    (Op.WITHIN_LAST_DAYS, -30 * DAY, True),
    (Op.WITHIN_LAST_DAYS, -30 * DAY - 1, False),
    (Op.WITHIN_LAST_DAYS, 1, False),  # in the future
    (Op.OLDER_THAN_DAYS, 0, False),
    (Op.OLDER_THAN_DAYS, -30 * DAY, False),  # exactly N days ago is not older than N days
    (Op.OLDER_THAN_DAYS, -30 * DAY - 1, True),
    (Op.OLDER_THAN_DAYS, 30 * DAY, False),
]


@pytest.mark.parametrize(("op", "offset", "holds"), BOUNDARIES)
def test_relative_dates_at_their_boundaries(op, offset, holds):
    assert relative_date_holds(op, 30, NOW + offset, NOW) is holds
    # The same instant written as an ISO date-time with an offset zone.
    moment = dt.datetime.fromtimestamp(NOW + offset, dt.timezone(dt.timedelta(hours=-7)))
    assert relative_date_holds(op, 30, moment.isoformat(), NOW) is holds


@pytest.mark.parametrize("op", [Op.WITHIN_NEXT_DAYS, Op.WITHIN_LAST_DAYS, Op.OLDER_THAN_DAYS])
@pytest.mark.parametrize("missing", [None, "", "not a date", True])
def test_a_missing_or_unreadable_date_is_in_no_relative_date_segment(op, missing):
    assert relative_date_holds(op, 30, missing, NOW) is False


def test_a_date_only_value_counts_from_its_midnight_utc():
    now = NOW + 12 * 3600  # noon on 2026-11-26
    assert relative_date_holds(Op.WITHIN_LAST_DAYS, 1, "2026-11-26", now)
    assert relative_date_holds(Op.WITHIN_NEXT_DAYS, 1, "2026-11-27", now)
    assert not relative_date_holds(Op.WITHIN_NEXT_DAYS, 1, "2026-11-26", now)  # midnight has passed
    assert relative_date_holds(Op.OLDER_THAN_DAYS, 1, "2026-11-25", now + 1)


# --- criteria.parse for relative dates ------------------------------------------------------------


@pytest.mark.parametrize("op", ["within_next_days", "within_last_days", "older_than_days"])
@pytest.mark.parametrize("value", [0, 3651, 2.5, -1, "30", True, None, [30]])
def test_relative_date_ops_refuse_anything_but_whole_days_1_to_3650(op, value):
    with pytest.raises(InvalidArgument) as refused:
        parse({"all": [{"field": "segment", "op": "exists"}, {"field": "renewal_date", "op": op, "value": value}]})
    assert _reasons(Violations(refused.value.field_violations)) == {"criteria.all[1].value": "TYPE_MISMATCH"}


@pytest.mark.parametrize("op", ["within_next_days", "within_last_days", "older_than_days"])
@pytest.mark.parametrize(("value", "days"), [(1, 1), (3650, 3650), (30, 30), (30.0, 30)])
def test_relative_date_ops_take_whole_days_and_a_whole_float_becomes_an_int(op, value, days):
    parsed = parse({"field": "renewal_date", "op": op, "value": value})
    assert parsed == Condition("renewal_date", Op(op), days)
    assert isinstance(parsed, Condition)
    assert type(parsed.value) is int


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_relative_date_ops_refuse_non_finite_numbers_as_a_type_mismatch(value):
    problems = Violations()
    parse({"field": "renewal_date", "op": "within_next_days", "value": value}, "c", problems)
    assert _reasons(problems) == {"c.value": "TYPE_MISMATCH"}


def test_is_time_based_looks_through_all_any_and_not():
    soon = {"field": "renewal_date", "op": "within_next_days", "value": 30}
    plain = {"field": "segment", "op": "equals", "value": "Enterprise"}
    assert is_time_based(parse(soon))
    assert is_time_based(parse({"all": [plain, {"any": [plain, {"not": soon}]}]}))
    assert is_time_based(parse({"not": {"not": {"field": "last_seen", "op": "older_than_days", "value": 7}}}))
    assert not is_time_based(parse({"all": [plain, {"any": [plain, {"not": plain}]}]}))
    assert not is_time_based(None)
    # Constructed directly too.
    assert is_time_based(AnyOf((Condition("a", Op.EXISTS), AllOf((NotOf(Condition("d", Op.WITHIN_LAST_DAYS, 3)),)))))


# --- the engine, in process -----------------------------------------------------------------------

RENEWAL = dt.datetime(2027, 3, 1, tzinfo=UTC)


def _engine(**criteria: dict[str, Any]) -> PlayEngine:
    engine = PlayEngine()
    engine.load([CompiledPlay(play_id, SEGMENT_FACT, parse(raw)) for play_id, raw in criteria.items()])
    return engine


def _at(when: dt.datetime) -> float:
    return when.timestamp()


def test_the_engine_judges_within_next_days_against_the_given_now():
    soon = {"field": "renewal_date", "op": "within_next_days", "value": 30}
    engine = _engine(soon=soon, not_soon={"not": soon})

    def matches(renewal: Any, now: dt.datetime) -> list[str]:
        return engine.evaluate("e1", SEGMENT_FACT, {"renewal_date": renewal, "account_id": "a1"}, now=_at(now))

    for renewal in ("2027-03-01", "2027-03-01T00:00:00Z", _at(RENEWAL)):
        assert matches(renewal, RENEWAL - dt.timedelta(days=20)) == ["soon"]
        assert matches(renewal, RENEWAL - dt.timedelta(days=40)) == ["not_soon"]
        assert matches(renewal, RENEWAL + dt.timedelta(days=1)) == ["not_soon"]
        assert matches(renewal, RENEWAL) == ["soon"]
    assert engine.evaluate("e1", SEGMENT_FACT, {"account_id": "a1"}, now=_at(RENEWAL)) == ["not_soon"]
    # Another fact type does not reach segment plays.
    assert engine.evaluate("e1", "ACCOUNT_UPDATED", {"renewal_date": "2027-03-01"}, now=_at(RENEWAL)) == []


def test_the_engine_finds_accounts_with_no_activity_for_longer_than_n_days():
    engine = _engine(
        quiet={"field": "last_activity_at", "op": "older_than_days", "value": 14},
        quiet_enterprise={
            "all": [
                {"field": "last_activity_at", "op": "older_than_days", "value": 14},
                {"field": "segment", "op": "equals", "value": "Enterprise"},
            ]
        },
        recent={"field": "last_activity_at", "op": "within_last_days", "value": 14},
    )
    last = dt.datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    facts = {"last_activity_at": last.isoformat(), "segment": "Enterprise"}

    def matches(now: dt.datetime, attributes: dict[str, Any] = facts) -> list[str]:
        return engine.evaluate("e1", SEGMENT_FACT, attributes, now=_at(now))

    assert matches(last + dt.timedelta(days=15)) == ["quiet", "quiet_enterprise"]
    assert matches(last + dt.timedelta(days=15), {**facts, "segment": "SMB"}) == ["quiet"]
    assert matches(last + dt.timedelta(days=13)) == ["recent"]
    assert matches(last + dt.timedelta(days=14)) == ["recent"]  # exactly 14 days: not older yet
    assert matches(last + dt.timedelta(days=14, seconds=1)) == ["quiet", "quiet_enterprise"]
    assert matches(last + dt.timedelta(days=15), {"segment": "Enterprise"}) == []  # no activity recorded


# --- actions: call_webhook, tasks on the parent account -------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "https://example.com/hooks/steward?x=1",
        "https://hooks.example.com:8443/p",
        "http://127.0.0.1:9000/h",
        "https://example.com/" + "a" * (2000 - len("https://example.com/")),  # exactly 2000
    ],
)
def test_call_webhook_takes_http_and_https_urls_with_a_host(url):
    parsed, problems = _action_problems([{"call_webhook": {"url": url}}])
    assert problems == {}
    assert parsed == {0: actions.CallWebhook(url, actions.DEFAULT_WEBHOOK_TIMEOUT)}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "example.com",
        "example.com/hook",
        "http://",
        "https:///path-only",
        "mailto:ann@example.com",
        "",
        None,
        42,
        "https://example.com/" + "a" * (2001 - len("https://example.com/")),  # 2001
    ],
)
def test_call_webhook_refuses_other_urls(url):
    parsed, problems = _action_problems([TASK, {"call_webhook": {"url": url}}])
    assert problems == {"actions[1].call_webhook.url": "URL_INVALID"}
    assert list(parsed) == [0]


def test_call_webhook_refuses_a_malformed_ipv6_host_as_url_invalid():
    _, problems = _action_problems([{"call_webhook": {"url": "http://[::1/hook"}}])
    assert problems == {"actions[0].call_webhook.url": "URL_INVALID"}


@pytest.mark.parametrize(("given", "kept"), [(0, 10), (1, 1), (30, 30), (None, 10)])
def test_call_webhook_timeout_zero_or_absent_means_the_default(given, kept):
    body: dict[str, Any] = {"url": "https://example.com/h"}
    if given is not None:
        body["timeout_seconds"] = given
    parsed, problems = _action_problems([{"call_webhook": body}])
    assert problems == {}
    assert parsed[0] == actions.CallWebhook("https://example.com/h", kept)


@pytest.mark.parametrize("timeout", [31, -1, 2.5, "10", True])
def test_call_webhook_refuses_timeouts_outside_0_to_30(timeout):
    parsed, problems = _action_problems(
        [{"call_webhook": {"url": "https://example.com/h", "timeout_seconds": timeout}}]
    )
    assert problems == {"actions[0].call_webhook.timeout_seconds": "TIMEOUT_INVALID"}
    assert parsed == {}


def test_a_bad_url_and_a_bad_timeout_are_both_reported():
    _, problems = _action_problems([{"call_webhook": {"url": "ftp://x", "timeout_seconds": 99}}])
    assert problems == {
        "actions[0].call_webhook.url": "URL_INVALID",
        "actions[0].call_webhook.timeout_seconds": "TIMEOUT_INVALID",
    }
    _, problems = _action_problems([{"call_webhook": "https://example.com"}])
    assert problems == {"actions[0].call_webhook.url": "URL_INVALID"}


def test_webhook_and_parent_account_actions_round_trip_through_their_stored_form():
    raw: list[dict[str, Any]] = [
        {"call_webhook": {"url": "https://example.com/h", "timeout_seconds": 5}},
        {"create_task": {"title": "Review", "user": "ann@example.com", "due_in_days": 2, "on_parent_account": True}},
        {"create_task": {"title": "Local", "holder_of_role": "roles/success_manager"}},
    ]
    parsed = actions.from_dicts(raw)
    assert [actions.to_dict(a) for a in parsed] == raw
    assert parsed[1] == actions.CreateTask("Review", actions.UserChoice(user="ann@example.com"), 2, True)
    assert parsed[2] == actions.CreateTask("Local", actions.UserChoice(holder_of_role="roles/success_manager"))
    assert parsed[2].on_parent_account is False
    # The default timeout is stored explicitly: the stored form does not depend on the default later.
    [default] = actions.from_dicts([{"call_webhook": {"url": "https://example.com/h"}}])
    assert actions.to_dict(default) == {"call_webhook": {"url": "https://example.com/h", "timeout_seconds": 10}}
    assert actions.from_dicts([actions.to_dict(default)]) == [default]
    # References never name a webhook.
    assert [r.path for r in actions.references(dict(enumerate(parsed)))] == [
        "actions[1].create_task.user",
        "actions[2].create_task.holder_of_role",
    ]


def test_describe_webhooks_and_tasks_on_the_parent_account():
    assert actions.describe(actions.CallWebhook("https://example.com/h", 5)) == "call webhook https://example.com/h"
    on_parent = actions.CreateTask("Review", actions.UserChoice(user="ann@example.com"), 2, True)
    assert (
        actions.describe(on_parent) == "create task 'Review' for ann@example.com, due in 2 days on the parent account"
    )
    here = actions.CreateTask("Review", actions.UserChoice(holder_of_role="roles/sm"))
    assert actions.describe(here) == "create task 'Review' for the holder of roles/sm"
    assert "parent" not in actions.describe(here)


@pytest.mark.parametrize("flag", ["yes", 1, 0, None, "true"])
def test_on_parent_account_must_be_true_or_false(flag):
    parsed, problems = _action_problems([{"create_task": {"title": "T", "user": "a@x.io", "on_parent_account": flag}}])
    assert problems == {"actions[0].create_task.on_parent_account": "TYPE_MISMATCH"}
    assert parsed == {}


# --- model: trigger kinds and the webhook secret --------------------------------------------------

ENTERPRISE = {"field": "segment", "op": "equals", "value": "Enterprise"}


@pytest.mark.parametrize("kind", [TriggerKind.ENTERS_SEGMENT, TriggerKind.EXITS_SEGMENT])
def test_segment_plays_need_criteria_and_no_event_type(kind):
    assert _reasons(check_definition(_play(_segment(ENTERPRISE, kind)))) == {}
    assert _reasons(check_definition(_play(_segment(None, kind)))) == {"play.trigger.criteria": "CRITERIA_REQUIRED"}
    typed = Trigger(EventType.ACCOUNT_UPDATED, "", ENTERPRISE, kind)
    assert _reasons(check_definition(_play(typed))) == {"play.trigger.event_type": "EVENT_TYPE_INVALID"}
    custom = Trigger(None, "renewal", ENTERPRISE, kind)
    assert _reasons(check_definition(_play(custom))) == {
        "play.trigger.event_type": "EVENT_TYPE_INVALID",
        "play.trigger.custom_event_type": "EVENT_TYPE_INVALID",
    }


def test_event_plays_need_an_event_type():
    assert _reasons(check_definition(_play(Trigger(EventType.ACCOUNT_CREATED, "", ENTERPRISE)))) == {}
    assert _reasons(check_definition(_play(Trigger(None, "", ENTERPRISE)))) == {
        "play.trigger.event_type": "EVENT_TYPE_REQUIRED"
    }


def test_manual_plays_take_neither_criteria_nor_an_event_type():
    assert _reasons(check_definition(_play(Trigger(None, kind=TriggerKind.MANUAL)))) == {}
    assert _reasons(check_definition(_play(Trigger(None, "", ENTERPRISE, TriggerKind.MANUAL)))) == {
        "play.trigger.criteria": "CRITERIA_INVALID"
    }
    assert _reasons(check_definition(_play(Trigger(EventType.ACCOUNT_CREATED, kind=TriggerKind.MANUAL)))) == {
        "play.trigger.event_type": "EVENT_TYPE_INVALID"
    }


def test_segment_criteria_problems_are_reported_under_the_trigger():
    bad = {"field": "renewal_date", "op": "within_next_days", "value": 0}
    assert _reasons(check_definition(_play(_segment(bad)))) == {"play.trigger.criteria.value": "TYPE_MISMATCH"}


def test_segment_plays_are_keyed_on_the_account_state_and_know_whether_time_moves_them():
    segment = _play(_segment({"field": "renewal_date", "op": "within_next_days", "value": 30}))
    assert segment.trigger_key == SEGMENT_FACT
    assert segment.is_time_based
    assert not _play(_segment(ENTERPRISE)).is_time_based
    assert _play(Trigger(EventType.CUSTOM, "renewal", None)).trigger_key == "custom:renewal"


WEBHOOK = {"call_webhook": {"url": "https://example.com/h"}}


@pytest.mark.parametrize(("length", "ok"), [(0, False), (31, False), (32, True), (200, True), (201, False)])
def test_a_play_with_a_webhook_needs_a_secret_of_32_to_200_characters(length, ok):
    play = _play(_segment(ENTERPRISE), [TASK, WEBHOOK], webhook_secret="k" * length)
    expected = {} if ok else {"play.webhook_secret": "WEBHOOK_SECRET_REQUIRED"}
    assert _reasons(check_definition(play)) == expected


def test_an_invalid_webhook_action_still_requires_the_secret_and_no_webhook_needs_none():
    play = _play(_segment(ENTERPRISE), [{"call_webhook": {"url": "ftp://example.com"}}])
    assert _reasons(check_definition(play)) == {
        "play.actions[0].call_webhook.url": "URL_INVALID",
        "play.webhook_secret": "WEBHOOK_SECRET_REQUIRED",
    }
    assert _reasons(check_definition(_play(_segment(ENTERPRISE), [TASK]))) == {}


# --- loop warnings --------------------------------------------------------------------------------

SETS_SM = {"update_value": {"role": "roles/success_manager", "user": "ann@example.com"}}
SETS_OTHER = {"update_value": {"role": "roles/sales_manager", "user": "ann@example.com"}}
NO_SM = {"all": [ENTERPRISE, {"not": {"field": "success_manager___tid", "op": "exists"}}]}


def test_a_play_setting_a_role_its_criteria_read_is_warned_once_at_that_action():
    play = _play(_segment(NO_SM), [TASK, SETS_OTHER, SETS_SM])
    assert _reasons(check_definition(play)) == {}  # a warning, not a problem
    [warning] = play.warnings()
    assert (warning.field, warning.reason) == ("play.actions[2]", "PLAY_MAY_LOOP")
    assert "roles/success_manager" in warning.description
    assert "success_manager___tid" in warning.description
    assert [w.field for w in play.warnings("plays[3]")] == ["plays[3].actions[2]"]


def test_warnings_keep_action_positions_when_an_earlier_action_is_invalid():
    play = _play(_segment(NO_SM), [{"send_email": {}}, SETS_SM, SETS_SM])
    assert [(w.field, w.reason) for w in play.warnings()] == [
        ("play.actions[1]", "PLAY_MAY_LOOP"),
        ("play.actions[2]", "PLAY_MAY_LOOP"),
    ]


def test_no_loop_warning_for_an_unrelated_role_or_without_criteria():
    assert _play(_segment(NO_SM), [SETS_OTHER]).warnings() == []
    assert _play(_segment(ENTERPRISE), [SETS_SM]).warnings() == []
    assert _play(Trigger(EventType.ACCOUNT_UPDATED), [SETS_SM]).warnings() == []
    assert _play(Trigger(None, kind=TriggerKind.MANUAL), [SETS_SM]).warnings() == []
    # Tasks assigned to the role's holder do not change it.
    task = {"create_task": {"title": "T", "holder_of_role": "roles/success_manager"}}
    assert _play(_segment(NO_SM), [task]).warnings() == []


def test_loop_warnings_directly_on_parsed_criteria_and_actions():
    criteria = parse({"field": "success_manager___tid", "op": "equals", "value": "t1"})
    parsed = actions.parse_actions([SETS_OTHER, SETS_SM], "a", Violations())
    assert [(w.field, w.reason) for w in loop_warnings(criteria, parsed, "x")] == [("x.actions[1]", "PLAY_MAY_LOOP")]
    assert loop_warnings(None, parsed) == []


# --- account state: out-of-order events -----------------------------------------------------------


def _event(event_id: str, when: dt.datetime, attributes: dict[str, Any], **previous: Any) -> AccountEvent:
    return AccountEvent(event_id, "a1", EventType.ATTRIBUTE_CHANGED, "", when, attributes, previous)


def test_a_late_older_event_keeps_newer_values_but_adds_what_the_state_lacks():
    newer = _event("e2", dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC), {"segment": "Enterprise", "arr": 5})
    state = evaluation_input(newer, None).new_state
    # 11:30 at +02:00 is 09:30 UTC: older, although its wall-clock reading is later.
    late_at = dt.datetime(2026, 11, 26, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    late = _event("e1", late_at, {"segment": "SMB", "arr": 3, "region": "EU"})
    seen = evaluation_input(late, state)
    assert seen.new_state.attributes == {"segment": "Enterprise", "arr": 5, "region": "EU"}
    assert seen.attributes == {"segment": "Enterprise", "arr": 5, "region": "EU", "account_id": "a1"}
    assert seen.previous == {}  # nothing the late event reported replaced a known value
    assert seen.new_state.times == {
        "segment": "2026-11-26T10:00:00.000000+00:00",
        "arr": "2026-11-26T10:00:00.000000+00:00",
        "region": "2026-11-26T09:30:00.000000+00:00",
    }
    # The state given is not modified.
    assert state.attributes == {"segment": "Enterprise", "arr": 5}


def test_one_microsecond_older_is_older():
    at = dt.datetime(2026, 11, 26, 10, 0, 0, 1, tzinfo=UTC)
    state = evaluation_input(_event("e2", at, {"segment": "Enterprise"}), None).new_state
    assert state.times == {"segment": "2026-11-26T10:00:00.000001+00:00"}
    older = _event("e1", at - dt.timedelta(microseconds=1), {"segment": "SMB"})
    assert evaluation_input(older, state).new_state.attributes == {"segment": "Enterprise"}
    newer = _event("e3", at + dt.timedelta(microseconds=1), {"segment": "Mid"})
    assert evaluation_input(newer, state).new_state.attributes == {"segment": "Mid"}


def test_at_equal_times_the_later_arrival_wins_whatever_the_zone_it_is_written_in():
    at = dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    state = evaluation_input(_event("e1", at, {"segment": "Enterprise"}), None).new_state
    same = _event("e2", at.astimezone(dt.timezone(dt.timedelta(hours=-5))), {"segment": "Mid"})
    seen = evaluation_input(same, state)
    assert seen.new_state.attributes == {"segment": "Mid"}
    assert seen.previous == {"segment": "Enterprise"}
    assert seen.new_state.times == {"segment": "2026-11-26T10:00:00.000000+00:00"}


def test_a_state_without_times_takes_every_reported_value():
    seen = evaluation_input(_event("e1", T0, {"segment": "Mid"}), AccountState({"segment": "SMB", "arr": 1}))
    assert seen.new_state.attributes == {"segment": "Mid", "arr": 1}
    assert seen.new_state.times == {"segment": "2026-11-26T00:00:00.000000+00:00"}


def test_a_late_event_does_not_claim_a_change_for_an_attribute_it_could_not_set():
    newer = _event("e2", T0, {"segment": "Enterprise"}, segment="SMB")
    state = evaluation_input(newer, None).new_state
    late = _event("e1", T0 - dt.timedelta(hours=1), {"segment": "SMB"}, segment="Trial")
    seen = evaluation_input(late, state)
    assert seen.attributes["segment"] == "Enterprise"
    engine = PlayEngine()
    engine.load([CompiledPlay("p", "ATTRIBUTE_CHANGED", Condition("segment", Op.CHANGED, "Enterprise", "Trial"))])
    assert engine.evaluate("e1", "ATTRIBUTE_CHANGED", seen.attributes, seen.previous, now=NOW) == []


# --- webhook signatures ---------------------------------------------------------------------------


def test_sign_is_the_hmac_sha256_hex_of_the_exact_bytes():
    # The well-known HMAC-SHA256 test value.
    assert (
        sign("key", b"The quick brown fox jumps over the lazy dog")
        == "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    body = encode({"a": 1})
    assert sign(SECRET, body) != sign(SECRET, body + b" ")
    assert sign(SECRET, body) != sign(SECRET + "x", body)
    assert len(sign(SECRET, b"")) == len("sha256=") + 64


def test_encode_is_compact_key_sorted_and_deterministic():
    one = {"run": "r1", "account": {"id": "a1", "attributes": {"z": 1, "a": [2, 1]}}, "name": "é"}
    other = {"name": "é", "account": {"attributes": {"a": [2, 1], "z": 1}, "id": "a1"}, "run": "r1"}
    assert encode(one) == encode(other)
    assert encode(one) == b'{"account":{"attributes":{"a":[2,1],"z":1},"id":"a1"},"name":"\\u00e9","run":"r1"}'
    assert json.loads(encode(one)) == one
