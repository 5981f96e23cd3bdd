"""Competing plays: runs of one event that would set the same role are settled by priority when
the event is evaluated, so each account gets one history change and the losing play never writes."""

from __future__ import annotations

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from services.rules.domain.priority import OVERRIDDEN
from steward.rules.v1 import plays_pb2
from tests.plays_kit import (
    account_event,
    create_play,
    history_by_account,
    person,
    publish,
    runs_of,
    tasks_by_account,
    team_with,
    wait_processed,
)

SM = "roles/success_manager"


def _set_priority(api, md, play: plays_pb2.Play, priority: int) -> plays_pb2.Play:
    update = plays_pb2.UpdatePlayRequest(
        play=plays_pb2.Play(name=play.name, etag=play.etag, priority=priority),
        update_mask=FieldMask(paths=["priority"]),
    )
    return api.plays.UpdatePlay(update, metadata=md)


def _competitors(api, md, first_priority: int, second_priority: int):
    """Two active plays on new accounts: the first created sets yara (and opens a task), the
    second sets zoe."""
    owner, yara, zoe = (person(api, f"{n}@example.com") for n in ("owner", "yara", "zoe"))
    team = team_with(api, md, "CS", owner, yara, zoe)
    first = create_play(
        api,
        md,
        "Yara for every new account",
        [
            {"update_value": {"role": SM, "user": f"users/{yara.id}"}},
            {"create_task": {"title": "Say hello", "user": f"users/{owner.id}"}},
        ],
        owner=owner,
        team=team,
    )
    second = create_play(
        api,
        md,
        "Zoe for every new account",
        [{"update_value": {"role": SM, "user": f"users/{zoe.id}"}}],
        owner=owner,
        team=team,
    )
    return (
        owner,
        yara,
        zoe,
        _set_priority(api, md, first, first_priority),
        _set_priority(api, md, second, second_priority),
    )


def test_the_higher_priority_play_sets_the_role_and_the_other_is_skipped_naming_it(rules_api, admin):
    api = rules_api
    owner, _, zoe, low, high = _competitors(api, admin, 1, 5)
    assert (low.priority, high.priority) == (1, 5)
    assert not [w for w in high.warnings if w.reason == "PLAYS_COMPETE"], "different priorities: decided"
    events = [account_event(f"acct-{i:03d}") for i in range(200)]
    for start in range(0, 200, 100):
        publish(api, admin, *events[start : start + 100])
    wait_processed(api, admin, *(e.event_id for e in events), timeout=60)

    accounts = [e.account_id for e in events]
    history = history_by_account(api, admin)
    assert {a: history.get(a) for a in accounts} == {a: [f"users/{zoe.id}"] for a in accounts}, "one change each"
    losing = runs_of(api, admin, play=low.name)
    assert len(losing) == 200
    for run in losing:
        assert run.outcome == plays_pb2.RUN_OUTCOME_SKIPPED and run.reason == OVERRIDDEN
        overridden, task = run.actions
        assert (overridden.outcome, overridden.reason, overridden.target) == (
            plays_pb2.RUN_OUTCOME_SKIPPED,
            OVERRIDDEN,
            high.name,
        )
        assert task.outcome == plays_pb2.RUN_OUTCOME_APPLIED, "the loser's other actions still run"
    assert tasks_by_account(api, admin, f"users/{owner.id}") == dict.fromkeys(accounts, 1)
    assert {r.outcome for r in runs_of(api, admin, play=high.name)} == {plays_pb2.RUN_OUTCOME_APPLIED}

    # A dry run shows the same decision.
    tested = api.plays.TestPlay(plays_pb2.TestPlayRequest(events=[account_event("acct-dry")]), metadata=admin)
    [matches] = tested.results
    planned = {m.play: m.actions[0] for m in matches.matches}
    assert (planned[low.name].skipped_reason, planned[low.name].winner) == (OVERRIDDEN, high.name)
    assert planned[high.name].skipped_reason == ""


def test_equal_priorities_warn_and_the_play_created_first_wins(rules_api, admin):
    api = rules_api
    _, yara, _, first, second = _competitors(api, admin, 0, 0)
    for play in (first, api.plays.GetPlay(plays_pb2.GetPlayRequest(name=second.name), metadata=admin)):
        [warning] = [w for w in play.warnings if w.reason == "PLAYS_COMPETE"]
        assert warning.field == "play.priority" and first.name in warning.description
    events = [account_event(f"acct-{i}") for i in range(20)]
    publish(api, admin, *events)
    wait_processed(api, admin, *(e.event_id for e in events))
    history = history_by_account(api, admin)
    assert {e.account_id: history.get(e.account_id) for e in events} == {
        e.account_id: [f"users/{yara.id}"] for e in events
    }
    assert {r.reason for r in runs_of(api, admin, play=second.name)} == {OVERRIDDEN}


def test_priority_is_validated_like_any_field_and_kept_through_updates(rules_api, admin):
    api = rules_api
    _, _, _, first, _ = _competitors(api, admin, -3, 2)
    assert api.plays.GetPlay(plays_pb2.GetPlayRequest(name=first.name), metadata=admin).priority == -3
    try:
        api.plays.UpdatePlay(
            plays_pb2.UpdatePlayRequest(
                play=plays_pb2.Play(name=first.name, etag="stale"), update_mask=FieldMask(paths=["priority"])
            ),
            metadata=admin,
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ABORTED
    else:
        raise AssertionError("a stale etag must be refused")
