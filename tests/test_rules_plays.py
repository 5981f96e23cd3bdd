"""SuccessPlays end to end: real rules and users servers, events in, account teams out."""

from __future__ import annotations

import grpc

from steward.rules.v1 import plays_pb2
from tests.errors import call_fails
from tests.plays_kit import (
    account_event,
    create_play,
    holder,
    person,
    publish,
    runs_of,
    team_with,
    wait_processed,
)

ENTERPRISE = {"field": "segment", "op": "equals", "value": "Enterprise"}


def test_an_account_created_in_the_segment_gets_its_success_manager(rules_api, admin):
    api = rules_api
    owner, yara = person(api, "owner@example.com"), person(api, "yara@example.com")
    team = team_with(api, admin, "CS", owner, yara)
    play = create_play(
        api,
        admin,
        "Enterprise CSM",
        [{"update_value": {"role": "roles/success_manager", "user": "yara@example.com"}}],
        owner=owner,
        team=team,
        criteria=ENTERPRISE,
    )
    inside, outside = account_event("acct-1", {"segment": "Enterprise"}), account_event("acct-2", {"segment": "SMB"})
    results = publish(api, admin, inside, outside)
    assert [(r.duplicate, r.matched_plays) for r in results] == [(False, 1), (False, 0)]
    wait_processed(api, admin, inside.event_id, outside.event_id)
    assert holder(api, admin, "acct-1") == f"users/{yara.id}"
    assert holder(api, admin, "acct-2") == ""
    [run] = runs_of(api, admin, play=play.name)
    assert run.outcome == plays_pb2.RUN_OUTCOME_APPLIED and run.account_id == "acct-1"
    assert [a.target for a in run.actions] == [f"users/{yara.id}"]
    stats = api.plays.GetPlay(plays_pb2.GetPlayRequest(name=play.name), metadata=admin).stats
    assert (stats.matched, stats.applied, stats.skipped, stats.failed, stats.pending) == (1, 1, 0, 0, 0)


def test_a_user_outside_the_origin_team_is_skipped_with_the_reason(rules_api, admin):
    api = rules_api
    owner, stranger = person(api, "owner@example.com"), person(api, "stranger@example.com")
    team = team_with(api, admin, "CS", owner)
    play = create_play(
        api,
        admin,
        "Assign a stranger",
        [{"update_value": {"role": "roles/success_manager", "user": f"users/{stranger.id}"}}],
        owner=owner,
        team=team,
    )
    event = account_event("acct-9")
    publish(api, admin, event)
    wait_processed(api, admin, event.event_id)
    [run] = runs_of(api, admin, play=play.name)
    assert run.outcome == plays_pb2.RUN_OUTCOME_SKIPPED
    assert run.reason == "NOT_IN_PLAY_TEAM" and run.actions[0].reason == "NOT_IN_PLAY_TEAM"
    assert "team" in run.description
    assert holder(api, admin, "acct-9") == ""
    skipped = runs_of(api, admin, outcome=plays_pb2.RUN_OUTCOME_SKIPPED)
    assert [r.name for r in skipped] == [run.name]
    assert runs_of(api, admin, outcome=plays_pb2.RUN_OUTCOME_APPLIED) == []


def test_a_redelivered_event_id_is_processed_once(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    team = team_with(api, admin, "CS", owner)
    play = create_play(
        api, admin, "Kick-off task", [{"create_task": {"title": "Kick-off", "user": "owner@example.com"}}], owner=owner
    )
    event = account_event("acct-5", event_id="crm-42")
    first = publish(api, admin, event, event)  # twice in one batch
    again = publish(api, admin, account_event("acct-5", {"segment": "other"}, event_id="crm-42"))
    assert [(r.duplicate, r.matched_plays) for r in first] == [(False, 1), (True, 0)]
    assert [(r.duplicate, r.matched_plays) for r in again] == [(True, 0)]
    wait_processed(api, admin, "crm-42")
    assert len(runs_of(api, admin, play=play.name)) == 1
    from steward.users.v1 import work_pb2

    tasks = api.users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id="acct-5"), metadata=admin).tasks
    assert [(t.title, t.created_by) for t in tasks] == [("Kick-off", play.name)]
    assert team  # the owner's team exists; tasks need no origin team


def test_editing_a_play_changes_the_outcome_of_the_next_event(rules_api, admin):
    api = rules_api
    owner, ann, ben = (person(api, f"{n}@example.com") for n in ("owner", "ann", "ben"))
    team = team_with(api, admin, "CS", owner, ann, ben)
    play = create_play(
        api,
        admin,
        "CSM",
        [{"update_value": {"role": "roles/success_manager", "user": "ann@example.com"}}],
        owner=owner,
        team=team,
    )
    first = account_event("acct-a")
    publish(api, admin, first)
    changed = plays_pb2.Play(
        name=play.name,
        etag=play.etag,
        actions=[
            plays_pb2.Action(
                update_value=plays_pb2.UpdateValueAction(role="roles/success_manager", user="ben@example.com")
            )
        ],
    )
    from google.protobuf.field_mask_pb2 import FieldMask

    updated = api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(play=changed, update_mask=FieldMask(paths=["actions"])), metadata=admin
    )
    assert updated.version == play.version + 1 and updated.etag != play.etag
    second = account_event("acct-b")
    publish(api, admin, second)
    wait_processed(api, admin, first.event_id, second.event_id)
    assert holder(api, admin, "acct-a") == f"users/{ann.id}"
    assert holder(api, admin, "acct-b") == f"users/{ben.id}"
    versions = {r.account_id: r.play_version for r in runs_of(api, admin, play=play.name)}
    assert versions == {"acct-a": play.version, "acct-b": updated.version}
    stale = call_fails(
        api.plays.UpdatePlay,
        plays_pb2.UpdatePlayRequest(play=changed, update_mask=FieldMask(paths=["actions"])),
        metadata=admin,
    )
    assert stale.code == grpc.StatusCode.ABORTED and stale.reason == "ETAG_MISMATCH"
    paused = plays_pb2.Play(name=play.name, status=plays_pb2.PLAY_STATUS_PAUSED)
    api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(play=paused, update_mask=FieldMask(paths=["status"])), metadata=admin
    )
    [result] = publish(api, admin, account_event("acct-c"))
    assert result.matched_plays == 0


def test_round_robin_spreads_300_accounts_evenly_over_3_users(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    reps = [person(api, f"rep{i}@example.com") for i in range(3)]
    team = team_with(api, admin, "Sales", owner, *reps)
    create_play(
        api,
        admin,
        "Spread sales",
        [
            {
                "update_value": {
                    "role": "roles/sales_manager",
                    "round_robin": {"users": [f"rep{i}@example.com" for i in range(3)]},
                }
            }
        ],
        owner=owner,
        team=team,
    )
    events = [account_event(f"acct-{i:03d}") for i in range(300)]
    for start in range(0, 300, 100):
        publish(api, admin, *events[start : start + 100])
    wait_processed(api, admin, *(e.event_id for e in events), timeout=120)
    from steward.users.v1 import assignments_pb2

    counts = api.users.assignments.CountAssignments(
        assignments_pb2.CountAssignmentsRequest(role="roles/sales_manager", users=[f"users/{r.id}" for r in reps]),
        metadata=admin,
    ).counts
    assert [c.accounts for c in counts] == [100, 100, 100]
    holders = {holder(api, admin, e.account_id, "sales_manager") for e in events[:6]}
    assert holders == {f"users/{r.id}" for r in reps}
