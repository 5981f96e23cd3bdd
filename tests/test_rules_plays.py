"""SuccessPlays end to end: real rules and users servers, events in, account teams out."""

from __future__ import annotations

import grpc

from steward.rules.v1 import events_pb2, plays_pb2
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
