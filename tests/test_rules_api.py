"""The rules service's API contract, end to end: validation, registration with the users service,
the users event stream, dry runs, run listings, bad events, permissions and deletion."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from services.users.domain.model import UserStatus
from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import assignments_pb2, users_pb2, work_pb2
from steward.users.v1 import events_pb2 as user_events_pb2
from tests.conftest import RulesApi, bearer
from tests.errors import call_fails
from tests.plays_kit import (
    account_event,
    create_play,
    holder,
    person,
    play_message,
    publish,
    runs_of,
    team_with,
    wait_processed,
)

T = TypeVar("T")
MANUAL = assignments_pb2.WriteSource(source=assignments_pb2.ASSIGNMENT_SOURCE_MANUAL)
CSM = "roles/success_manager"
KICK_OFF = [{"create_task": {"title": "Kick-off", "user": "owner@example.com"}}]


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Polls until probe() returns something truthy (work done in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.05)


def plays_named(api: RulesApi, md) -> list[str]:
    return [p.display_name for p in api.plays.ListPlays(plays_pb2.ListPlaysRequest(), metadata=md).plays]


def play_resources(api: RulesApi, md, user) -> list[work_pb2.Resource]:
    request = work_pb2.ListResourcesRequest(owner=f"users/{user.id}", kind=work_pb2.RESOURCE_KIND_PLAY)
    return list(api.users.resources.ListResources(request, metadata=md).resources)


def get_event(api: RulesApi, md, event_id: str) -> events_pb2.AccountEvent:
    request = events_pb2.GetAccountEventRequest(name=f"accountEvents/{event_id}")
    return api.events.GetAccountEvent(request, metadata=md)


def find_event(api: RulesApi, md, event_id: str) -> events_pb2.AccountEvent | None:
    try:
        return get_event(api, md, event_id)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


def event_missing(api: RulesApi, md, event_id: str) -> bool:
    return find_event(api, md, event_id) is None


def set_manually(api: RulesApi, md, account_id: str, role: str, user) -> None:
    api.users.assignments.SetAssignment(
        assignments_pb2.SetAssignmentRequest(
            account_id=account_id, role=role, user=assignments_pb2.UserRef(user=f"users/{user.id}"), source=MANUAL
        ),
        metadata=md,
    )


def tasks_on(api: RulesApi, md, account_id: str) -> list[work_pb2.Task]:
    return list(api.users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id=account_id), metadata=md).tasks)


def get_play(api: RulesApi, md, name: str) -> plays_pb2.Play:
    return api.plays.GetPlay(plays_pb2.GetPlayRequest(name=name), metadata=md)


def stamp(moment: dt.datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(moment)
    return out


# ---- 1. CreatePlay validation ---------------------------------------------------------------------


def test_create_play_reports_every_problem_at_once_and_saves_nothing(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    team = team_with(api, admin, "CS", owner)
    no_such_team = f"teams/{uuid.uuid4()}"
    bad = play_message(
        "Everything wrong",
        [
            {"update_value": {"role": "roles/nope", "user": "ghost@example.com"}},
            {"update_value": {"role": "roles/sales_manager", "round_robin": {"team": no_such_team}}},
        ],
        owner=owner,
        team=team,
        criteria={"all": [{"field": "x", "op": "like"}, {"field": "arr", "op": "greater_than", "value": "big"}]},
        event_type=events_pb2.EVENT_TYPE_CUSTOM,
    )
    refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=bad), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "play.actions[0].update_value.role": "ROLE_UNKNOWN",
        "play.actions[0].update_value.user": "USER_UNKNOWN",
        "play.actions[1].update_value.round_robin.team": "TEAM_UNKNOWN",
        "play.trigger.criteria.all[0].op": "OPERATOR_UNKNOWN",
        "play.trigger.criteria.all[1].value": "TYPE_MISMATCH",
        "play.trigger.custom_event_type": "EVENT_TYPE_INVALID",
    }
    assert "ghost@example.com" in refused.field_violations["play.actions[0].update_value.user"]
    assert plays_named(api, admin) == []
    assert play_resources(api, admin, owner) == []


def test_a_play_may_not_name_users_the_directory_no_longer_lists(rules_api, admin):
    """Gone is the users service's word (User.status_policy), not a status compared here: deleted
    users are unknown, disabled ones are still users."""
    api = rules_api
    gone = person(api, "gone@example.com", status=UserStatus.DELETED)
    away = person(api, "away@example.com", status=UserStatus.DISABLED)
    team = team_with(api, admin, "Gone and away", away)
    actions = [
        {"update_value": {"role": CSM, "user": f"users/{gone.id}"}},
        {"update_value": {"role": CSM, "user": f"users/{away.id}"}},
    ]
    request = plays_pb2.CreatePlayRequest(play=play_message("Gone", actions, owner=gone, team=team), validate_only=True)
    refused = call_fails(api.plays.CreatePlay, request, metadata=admin)
    assert refused.violation_reasons == {
        "play.actions[0].update_value.user": "USER_UNKNOWN",
        "play.owner": "OWNER_UNKNOWN",
    }
    away_play = play_message("Away", actions[1:], owner=away, team=team)
    request = plays_pb2.CreatePlayRequest(play=away_play, validate_only=True)
    assert api.plays.CreatePlay(request, metadata=admin).display_name == "Away"


def test_create_play_checks_roles_in_criteria_and_the_origin_team(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    unknown_role = play_message("Nope holder", KICK_OFF, owner=owner, criteria={"field": "nope___tid", "op": "exists"})
    refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=unknown_role), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {"play.trigger.criteria": "ROLE_UNKNOWN"}
    # A role that exists may be named the same way.
    known = play_message(
        "CSM holder", KICK_OFF, owner=owner, criteria={"field": "success_manager___tid", "op": "exists"}
    )
    assert api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=known), metadata=admin).name.startswith("plays/")

    teamless = play_message("No team", [{"update_value": {"role": CSM, "user": "owner@example.com"}}], owner=owner)
    refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=teamless), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {"play.origin_team": "ORIGIN_TEAM_REQUIRED"}
    assert plays_named(api, admin) == ["CSM holder"]


def test_validate_only_duplicates_and_retried_requests(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    play = play_message("Kick-off", KICK_OFF, owner=owner)

    checked = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play, validate_only=True), metadata=admin)
    assert checked.display_name == "Kick-off" and checked.owner == f"users/{owner.id}"
    assert plays_named(api, admin) == []
    assert play_resources(api, admin, owner) == []

    request_id = str(uuid.uuid4())
    first = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play, request_id=request_id), metadata=admin)
    again = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play, request_id=request_id), metadata=admin)
    assert again.name == first.name and again.etag == first.etag
    assert plays_named(api, admin) == ["Kick-off"]

    taken = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=play), metadata=admin)
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "PLAY_NAME_TAKEN")
    assert taken.error_metadata == {"play": first.name}
    assert plays_named(api, admin) == ["Kick-off"]
    assert [r.id for r in play_resources(api, admin, owner)] == [first.uid]


# ---- 2. Registration as a PLAY resource, and its owner following reassignment ---------------------


def test_plays_are_registered_resources_and_follow_their_reassignment(rules_api, admin):
    api = rules_api
    owner, heir, other = (person(api, f"{n}@example.com") for n in ("owner", "heir", "other"))
    moved = create_play(api, admin, "Moved by reassignment", KICK_OFF, owner=owner)
    handed = create_play(api, admin, "Handed over", KICK_OFF, owner=owner)

    registered = {r.id: r for r in play_resources(api, admin, owner)}
    assert set(registered) == {moved.uid, handed.uid}
    resource = registered[moved.uid]
    assert resource.name == f"resources/play/{moved.uid}"
    assert resource.kind == work_pb2.RESOURCE_KIND_PLAY
    assert (resource.display_name, resource.owner) == ("Moved by reassignment", f"users/{owner.id}")

    api.users.resources.UpdateResourceOwner(
        work_pb2.UpdateResourceOwnerRequest(name=f"resources/play/{handed.uid}", owner=f"users/{other.id}"),
        metadata=admin,
    )
    api.users.users.ReassignUserResources(
        users_pb2.ReassignUserResourcesRequest(
            name=f"users/{owner.id}", plan=users_pb2.ReassignmentPlan(shared_resources_to=f"users/{heir.id}")
        ),
        metadata=admin,
    )
    eventually(lambda: get_play(api, admin, moved.name).owner == f"users/{heir.id}", "the reassigned play's owner")
    eventually(lambda: get_play(api, admin, handed.name).owner == f"users/{other.id}", "the handed play's owner")
    assert [r.id for r in play_resources(api, admin, heir)] == [moved.uid]
    assert play_resources(api, admin, owner) == []


def test_a_play_handed_back_to_an_earlier_owner_is_registered_to_them_again(rules_api, admin):
    api = rules_api
    owner, heir = person(api, "owner@example.com"), person(api, "heir@example.com")
    play = create_play(api, admin, "Back and forth", KICK_OFF, owner=owner)
    api.users.resources.UpdateResourceOwner(
        work_pb2.UpdateResourceOwnerRequest(name=f"resources/play/{play.uid}", owner=f"users/{heir.id}"),
        metadata=admin,
    )
    eventually(lambda: get_play(api, admin, play.name).owner == f"users/{heir.id}", "the play's new owner")

    back = api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(
            play=plays_pb2.Play(name=play.name, owner=f"users/{owner.id}"), update_mask=FieldMask(paths=["owner"])
        ),
        metadata=admin,
    )
    assert back.owner == f"users/{owner.id}"
    # The users service agrees: the same (play, owner, name) as at creation is a new registration.
    assert [(r.id, r.owner) for r in play_resources(api, admin, owner)] == [(play.uid, f"users/{owner.id}")]
    assert play_resources(api, admin, heir) == []
    assert get_play(api, admin, play.name).owner == f"users/{owner.id}"


# ---- 3. Create Task action ------------------------------------------------------------------------


def test_a_task_from_a_play_is_due_after_the_run_day_and_records_its_disabled_owners_activity(rules_api, admin):
    api = rules_api
    owner, yara = person(api, "owner@example.com"), person(api, "yara@example.com")
    play = create_play(
        api,
        admin,
        "Kick-off for the CSM",
        [{"create_task": {"title": "Kick-off call", "holder_of_role": CSM, "due_in_days": 5}}],
        owner=owner,
    )
    disabled = api.users.users.BulkUserAction(
        users_pb2.BulkUserActionRequest(action=users_pb2.BULK_ACTION_DISABLE, users=[f"users/{owner.id}"]),
        metadata=admin,
    )
    assert disabled.done_count == 1
    before = api.users.users.GetUser(users_pb2.GetUserRequest(name=f"users/{owner.id}"), metadata=admin)
    assert before.status == users_pb2.USER_STATUS_DISABLED and not before.HasField("last_activity_time")

    set_manually(api, admin, "acct-task", CSM, yara)
    event = account_event("acct-task")
    publish(api, admin, event)
    wait_processed(api, admin, event.event_id)

    [run] = runs_of(api, admin, play=play.name)
    assert run.outcome == plays_pb2.RUN_OUTCOME_APPLIED
    [task] = tasks_on(api, admin, "acct-task")
    assert [a.target for a in run.actions] == [task.name]
    assert (task.title, task.assignee, task.created_by) == ("Kick-off call", f"users/{yara.id}", play.name)
    run_day = run.create_time.ToDatetime(tzinfo=dt.UTC).date()
    due = dt.datetime.combine(run_day + dt.timedelta(days=5), dt.time(), tzinfo=dt.UTC)
    assert task.due_time.ToDatetime(tzinfo=dt.UTC) == due

    after = api.users.users.GetUser(users_pb2.GetUserRequest(name=f"users/{owner.id}"), metadata=admin)
    assert after.status == users_pb2.USER_STATUS_DISABLED
    assert after.HasField("last_activity_time")
    assert after.last_activity_time.ToDatetime() >= task.create_time.ToDatetime()


def test_a_task_for_a_missing_role_holder_is_skipped(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    play = create_play(api, admin, "CSM task", [{"create_task": {"title": "Call", "holder_of_role": CSM}}], owner=owner)
    event = account_event("acct-nobody")
    publish(api, admin, event)
    wait_processed(api, admin, event.event_id)
    [run] = runs_of(api, admin, play=play.name)
    assert (run.outcome, run.reason) == (plays_pb2.RUN_OUTCOME_SKIPPED, "ROLE_HOLDER_MISSING")
    assert tasks_on(api, admin, "acct-nobody") == []


# ---- 4. ASSIGNMENT_CHANGED from the users event stream ---------------------------------------------


def test_an_assignment_set_in_the_users_service_fires_assignment_changed_plays(rules_api, admin):
    api = rules_api
    owner, yara = person(api, "owner@example.com"), person(api, "yara@example.com")
    play = create_play(
        api,
        admin,
        "Welcome the new CSM",
        [{"create_task": {"title": "Meet the account", "holder_of_role": CSM}}],
        owner=owner,
        event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED,
        criteria={"field": "role", "op": "equals", "value": CSM},
    )
    set_manually(api, admin, "acct-sales", "roles/sales_manager", yara)  # another role: no run
    set_manually(api, admin, "acct-csm", CSM, yara)

    [run] = eventually(lambda: runs_of(api, admin, play=play.name), "a run of the assignment play")
    assert run.account_id == "acct-csm" and run.event_id.startswith("users.events/")
    wait_processed(api, admin, run.event_id)
    event = get_event(api, admin, run.event_id)
    assert event.type == events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED and list(event.matched_plays) == [play.name]
    [task] = tasks_on(api, admin, "acct-csm")
    assert (task.title, task.assignee, task.created_by) == ("Meet the account", f"users/{yara.id}", play.name)
    assert [r.account_id for r in runs_of(api, admin, play=play.name)] == ["acct-csm"]
    assert tasks_on(api, admin, "acct-sales") == []


def test_a_burst_of_assignment_changes_is_read_back_in_batches_and_fires_once_each(rules_api, admin):
    """600 changes in one users transaction reach the consumer together: it records them a few
    hundred per transaction, each one event with its own run, in the stream's order."""
    api = rules_api
    owner, yara, zoe = (person(api, f"{n}@example.com") for n in ("owner", "yara", "zoe"))
    play = create_play(
        api,
        admin,
        "Welcome the new CSM",
        [{"create_task": {"title": "Meet the account", "holder_of_role": CSM}}],
        owner=owner,
        event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED,
        criteria={"field": "role", "op": "equals", "value": CSM},
    )
    accounts = [f"acct-{i:03d}" for i in range(300)]
    rows = [  # each account twice: yara, then zoe, in one call
        assignments_pb2.AssignmentRow(account_id=a, role=CSM, user=assignments_pb2.UserRef(user=f"users/{u.id}"))
        for u in (yara, zoe)
        for a in accounts
    ]
    api.users.assignments.BatchSetAssignments(
        assignments_pb2.BatchSetAssignmentsRequest(rows=rows, source=MANUAL),
        metadata=admin,
    )

    def all_runs() -> list[plays_pb2.PlayRun] | None:
        found = runs_of(api, admin, play=play.name)
        return found if len(found) == 600 else None

    runs = eventually(all_runs, "600 runs", timeout=60)
    wait_processed(api, admin, *(r.event_id for r in runs))
    assert sorted(r.account_id for r in runs) == sorted(accounts * 2)
    for account in (accounts[0], accounts[-1]):
        # Both runs execute after both changes: the holder of the role is zoe for each task.
        assert [t.assignee for t in tasks_on(api, admin, account)] == [f"users/{zoe.id}"] * 2
        state = api.events.GetAccountState(events_pb2.GetAccountStateRequest(account_id=account), metadata=admin)
        assert state.attributes["success_manager___tid"] == zoe.id  # the last change is the state


def _cursor_of_play_assignment(api: RulesApi, md, play_name: str) -> str:
    request = user_events_pb2.WatchEventsRequest(types=["assignment.set"])
    stream = api.users.events.WatchEvents(request, metadata=md, timeout=15)
    for event in stream:
        data: dict[str, Any] = dict(event.data)
        if data.get("source") == "PLAY" and data.get("source_ref") == play_name:
            stream.cancel()
            return str(event.cursor)
    raise AssertionError("the play's assignment never reached the users event stream")


def test_a_play_does_not_fire_on_the_assignment_it_made_itself(rules_api, admin):
    api = rules_api
    owner, yara, zoe = (person(api, f"{n}@example.com") for n in ("owner", "yara", "zoe"))
    team = team_with(api, admin, "Sales", owner, zoe)
    # Fires on a change of either role, and itself changes one of them: a loop without the guard.
    play = create_play(
        api,
        admin,
        "Sales follows CSM",
        [{"update_value": {"role": "roles/sales_manager", "user": "zoe@example.com"}}],
        owner=owner,
        team=team,
        event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED,
        criteria={"field": "role", "op": "in", "value": [CSM, "roles/sales_manager"]},
    )
    set_manually(api, admin, "acct-loop", CSM, yara)

    [run] = eventually(lambda: runs_of(api, admin, play=play.name), "the play's run on the manual change")
    wait_processed(api, admin, run.event_id)
    assert get_play(api, admin, play.name).stats.applied == 1
    assert holder(api, admin, "acct-loop", "sales_manager") == f"users/{zoe.id}"

    # The change the play made comes back through the stream, is recorded, and matches nothing.
    own_id = f"users.events/{_cursor_of_play_assignment(api, admin, play.name)}"
    own = eventually(lambda: find_event(api, admin, own_id), own_id)
    assert own.type == events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED and own.account_id == "acct-loop"
    assert list(own.matched_plays) == [] and own.state == events_pb2.EVENT_STATE_PROCESSED
    assert [r.event_id for r in runs_of(api, admin, play=play.name)] == [run.event_id]


# ---- 5. "changed from X to Y" ---------------------------------------------------------------------


def test_changed_criteria_compare_with_the_accounts_last_known_state_or_the_events_previous(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    play = create_play(
        api,
        admin,
        "Adoption begins",
        KICK_OFF,
        owner=owner,
        event_type=events_pb2.EVENT_TYPE_LIFECYCLE_STAGE_CHANGED,
        criteria={"field": "stage", "op": "changed", "from": "onboarding", "to": "adoption"},
    )
    updated, stage = events_pb2.EVENT_TYPE_ACCOUNT_UPDATED, events_pb2.EVENT_TYPE_LIFECYCLE_STAGE_CHANGED

    def matched(*events: events_pb2.AccountEvent) -> list[int]:
        return [r.matched_plays for r in publish(api, admin, *events)]

    # Known state, one call per event.
    first = account_event("acct-1", {"stage": "onboarding"}, event_type=updated)
    second = account_event("acct-1", {"stage": "adoption"}, event_type=stage)
    assert matched(first) == [0]
    assert matched(second) == [1]
    assert matched(account_event("acct-1", {"stage": "adoption"}, event_type=stage)) == [0]  # already adoption
    # In one batch the second event sees the state the first one left.
    batch = [
        account_event("acct-2", {"stage": "onboarding"}, event_type=updated),
        account_event("acct-2", {"stage": "adoption"}, event_type=stage),
    ]
    assert matched(*batch) == [0, 1]
    # Nothing known before: no "from".
    assert matched(account_event("acct-3", {"stage": "adoption"}, event_type=stage)) == [0]
    # What the publisher says it was counts, and wins over what was known.
    explicit = account_event("acct-4", {"stage": "adoption"}, event_type=stage, previous={"stage": "onboarding"})
    assert matched(explicit) == [1]
    assert matched(account_event("acct-5", {"stage": "trial"}, event_type=updated)) == [0]
    overriding = account_event("acct-5", {"stage": "adoption"}, event_type=stage, previous={"stage": "onboarding"})
    assert matched(overriding) == [1]

    wait_processed(api, admin, second.event_id, batch[1].event_id, explicit.event_id, overriding.event_id)
    assert list(get_event(api, admin, second.event_id).matched_plays) == [play.name]
    assert list(get_event(api, admin, first.event_id).matched_plays) == []
    runs = runs_of(api, admin, play=play.name)
    assert sorted(r.event_id for r in runs) == sorted(e.event_id for e in (second, batch[1], explicit, overriding))


# ---- 6. TestPlay (dry run) ------------------------------------------------------------------------


def test_test_play_dry_runs_inline_saved_and_active_plays_and_changes_nothing(rules_api, admin):
    api = rules_api
    owner, yara = person(api, "owner@example.com"), person(api, "yara@example.com")
    team = team_with(api, admin, "CS", owner, yara)
    active = create_play(
        api,
        admin,
        "Enterprise CSM",
        [{"update_value": {"role": CSM, "user": "yara@example.com"}}],
        owner=owner,
        team=team,
        criteria={"field": "segment", "op": "equals", "value": "Enterprise"},
    )
    draft = create_play(
        api,
        admin,
        "Draft kick-off",
        [{"create_task": {"title": "Kick-off", "user": "owner@example.com", "due_in_days": 2}}],
        owner=owner,
        status=plays_pb2.PLAY_STATUS_DRAFT,
    )
    events = [account_event("acct-big", {"segment": "Enterprise"}), account_event("acct-small", {"segment": "SMB"})]

    def dry(**subject: Any) -> list[list[tuple[str, str, list[str]]]]:
        reply = api.plays.TestPlay(plays_pb2.TestPlayRequest(events=events, **subject), metadata=admin)
        assert [(r.index, r.event_id) for r in reply.results] == [(i, e.event_id) for i, e in enumerate(events)]
        return [
            [(m.play, m.display_name, [a.description for a in m.actions]) for m in r.matches] for r in reply.results
        ]

    set_csm = f"set {CSM} to yara@example.com"
    assert dry() == [[(active.name, "Enterprise CSM", [set_csm])], []]
    kick_off = "create task 'Kick-off' for owner@example.com, due in 2 days"
    assert dry(name=draft.name) == [[(draft.name, "Draft kick-off", [kick_off])]] * 2
    inline = play_message(
        "Unsaved SMB",
        [{"update_value": {"role": CSM, "user": f"users/{yara.id}"}}],
        owner=owner,
        team=team,
        criteria={"field": "segment", "op": "equals", "value": "SMB"},
    )
    [[], [(name, display_name, descriptions)]] = dry(play=inline)
    assert name.startswith("plays/") and display_name == "Unsaved SMB"
    assert descriptions == [f"set {CSM} to users/{yara.id}"]
    assert plays_named(api, admin) == ["Draft kick-off", "Enterprise CSM"]

    # Nothing happened: no event recorded, no run, no assignment, no task.
    for event in events:
        assert event_missing(api, admin, event.event_id)
        assert holder(api, admin, event.account_id) == ""
        assert tasks_on(api, admin, event.account_id) == []
    assert runs_of(api, admin) == []
    # The events are still new to the service: publishing them records and matches them once.
    assert [(r.duplicate, r.matched_plays) for r in publish(api, admin, *events)] == [(False, 1), (False, 0)]

    invalid = play_message(
        "Broken", [{"update_value": {"role": "roles/nope", "user": "yara@example.com"}}], owner=owner
    )
    refused = call_fails(api.plays.TestPlay, plays_pb2.TestPlayRequest(play=invalid, events=events), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "play.actions[0].update_value.role": "ROLE_UNKNOWN",
        "play.origin_team": "ORIGIN_TEAM_REQUIRED",
    }


# ---- 7. ListPlayRuns ------------------------------------------------------------------------------


def test_list_play_runs_filters_and_pages_newest_first(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    applies = create_play(api, admin, "Applies", KICK_OFF, owner=owner)
    skips = create_play(api, admin, "Skips", [{"create_task": {"title": "x", "holder_of_role": CSM}}], owner=owner)
    early = [account_event("acct-1"), account_event("acct-2")]
    publish(api, admin, *early)
    wait_processed(api, admin, *(e.event_id for e in early))
    late = account_event("acct-1")
    publish(api, admin, late)
    wait_processed(api, admin, late.event_id)

    every = runs_of(api, admin)
    assert len(every) == 6
    times = [r.create_time.ToDatetime(tzinfo=dt.UTC) for r in every]
    assert times == sorted(times, reverse=True)
    assert {r.event_id for r in every[:2]} == {late.event_id}
    late_time, early_time = times[0], times[-1]
    assert late_time > early_time

    def names(**filters: Any) -> set[str]:
        return {r.name for r in runs_of(api, admin, **filters)}

    def where(test: Callable[[plays_pb2.PlayRun], bool]) -> set[str]:
        return {r.name for r in every if test(r)}

    assert len(where(lambda r: r.play == applies.name)) == 3 and len(where(lambda r: r.account_id == "acct-2")) == 2
    assert names(play=applies.name) == where(lambda r: r.play == applies.name)
    assert names(account_id="acct-2") == where(lambda r: r.account_id == "acct-2")
    assert names(outcome=plays_pb2.RUN_OUTCOME_SKIPPED) == where(lambda r: r.play == skips.name)
    assert names(outcome=plays_pb2.RUN_OUTCOME_APPLIED) == where(lambda r: r.play == applies.name)
    assert names(outcome=plays_pb2.RUN_OUTCOME_FAILED) == set()
    both = where(lambda r: r.play == skips.name and r.account_id == "acct-1")
    assert len(both) == 2 and names(play=skips.name, account_id="acct-1") == both
    # [start_time, end_time) on create_time.
    assert names(start_time=stamp(late_time)) == where(lambda r: r.event_id == late.event_id)
    assert names(end_time=stamp(late_time)) == where(lambda r: r.event_id != late.event_id)
    assert names(start_time=stamp(early_time), end_time=stamp(early_time)) == set()
    assert names(start_time=stamp(early_time), end_time=stamp(late_time + dt.timedelta(microseconds=1))) == where(
        lambda r: True
    )

    pages, token = [], ""
    while True:
        reply = api.plays.ListPlayRuns(plays_pb2.ListPlayRunsRequest(page_size=1, page_token=token), metadata=admin)
        assert len(reply.runs) == 1
        pages.append(reply.runs[0].name)
        token = reply.next_page_token
        if not token:
            break
    assert pages == [r.name for r in every]

    first = api.plays.ListPlayRuns(plays_pb2.ListPlayRunsRequest(page_size=1), metadata=admin)
    for other in (
        {"play": applies.name},
        {"account_id": "acct-1"},
        {"outcome": plays_pb2.RUN_OUTCOME_APPLIED},
        {"start_time": stamp(early_time)},
    ):
        reused = call_fails(
            api.plays.ListPlayRuns,
            plays_pb2.ListPlayRunsRequest(page_size=1, page_token=first.next_page_token, **other),
            metadata=admin,
        )
        assert reused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert reused.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}


# ---- 8. PublishEvents bad input -------------------------------------------------------------------


def test_one_bad_event_refuses_the_whole_batch(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    create_play(api, admin, "Kick-off", KICK_OFF, owner=owner)
    good_first, good_last = account_event("acct-ok-1"), account_event("acct-ok-2")
    batch = [
        good_first,
        account_event(""),
        account_event("acct-x", event_type=events_pb2.EVENT_TYPE_UNSPECIFIED),
        account_event("acct-x", custom="renewal.signed"),
        account_event("acct-x", event_id="e" * 201),
        account_event("acct-x", event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED),
        good_last,
    ]
    refused = call_fails(api.events.PublishEvents, events_pb2.PublishEventsRequest(events=batch), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "events[1].account_id": "ACCOUNT_ID_INVALID",
        "events[2].type": "EVENT_TYPE_REQUIRED",
        "events[3].custom_type": "EVENT_TYPE_INVALID",
        "events[4].event_id": "EVENT_ID_INVALID",
        "events[5].type": "EVENT_TYPE_RESERVED",
    }
    for event in (good_first, good_last):
        assert event_missing(api, admin, event.event_id)
    assert runs_of(api, admin) == []

    single = call_fails(
        api.events.PublishEvent, events_pb2.PublishEventRequest(event=account_event("")), metadata=admin
    )
    assert single.violation_reasons == {"event.account_id": "ACCOUNT_ID_INVALID"}

    for size in (0, 1001):
        events = [account_event(f"acct-{i}") for i in range(size)]
        wrong_size = call_fails(
            api.events.PublishEvents, events_pb2.PublishEventsRequest(events=events), metadata=admin
        )
        assert wrong_size.code == grpc.StatusCode.INVALID_ARGUMENT
        assert wrong_size.violation_reasons == {"events": "BATCH_SIZE_INVALID"}
    assert runs_of(api, admin) == []


def test_an_event_that_matches_no_play_is_recorded_and_processed(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    create_play(
        api,
        admin,
        "Enterprise only",
        KICK_OFF,
        owner=owner,
        criteria={"field": "segment", "op": "equals", "value": "E"},
    )
    event = account_event(
        "acct-plain",
        {"segment": "SMB", "billing": {"country": "FR"}},
        event_type=events_pb2.EVENT_TYPE_CUSTOM,
        custom="renewal.signed",
    )
    [result] = publish(api, admin, event)
    assert (result.event_id, result.duplicate, result.matched_plays) == (event.event_id, False, 0)
    stored = get_event(api, admin, event.event_id)
    assert stored.state == events_pb2.EVENT_STATE_PROCESSED and list(stored.matched_plays) == []
    assert (stored.account_id, stored.type, stored.custom_type) == (
        "acct-plain",
        events_pb2.EVENT_TYPE_CUSTOM,
        "renewal.signed",
    )
    assert stored.attributes["segment"] == "SMB" and stored.HasField("receive_time")
    assert runs_of(api, admin) == []


# ---- 9. Permissions -------------------------------------------------------------------------------


def test_who_may_author_plays_and_publish_events(rules_api, admin):
    api = rules_api
    boss = person(api, "boss@example.com", global_admin=True)
    former = person(api, "former@example.com", global_admin=True, status=UserStatus.DISABLED)
    worker = person(api, "worker@example.com")
    task = [{"create_task": {"title": "Kick-off", "user": "worker@example.com"}}]
    bare = bearer("svc:x", roles=())
    publisher = bearer("svc:x", roles=(), scopes=["events.publish"])

    def create(md, name: str, owner=worker) -> plays_pb2.Play:
        return api.plays.CreatePlay(
            plays_pb2.CreatePlayRequest(play=play_message(name, task, owner=owner)), metadata=md
        )

    def denied(md, name: str) -> None:
        failed = call_fails(
            api.plays.CreatePlay,
            plays_pb2.CreatePlayRequest(play=play_message(name, task, owner=worker)),
            metadata=md,
        )
        assert (failed.code, failed.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED"), name

    denied(bare, "by a bare service account")
    denied(publisher, "by a publisher")
    denied(bearer(worker.id, roles=()), "by a practitioner")
    denied(bearer(former.id, roles=()), "by a disabled admin")
    event = account_event("acct-perm")
    refused = call_fails(api.events.PublishEvents, events_pb2.PublishEventsRequest(events=[event]), metadata=bare)
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert event_missing(api, admin, event.event_id)
    assert plays_named(api, admin) == []

    mine = api.plays.CreatePlay(
        plays_pb2.CreatePlayRequest(play=play_message("By the boss", task)), metadata=bearer(boss.id, roles=())
    )
    assert mine.owner == f"users/{boss.id}"
    assert [r.id for r in play_resources(api, admin, boss)] == [mine.uid]
    assert create(bearer("svc:x", roles=(), scopes=["plays.write"]), "By a writer").owner == f"users/{worker.id}"

    [result] = publish(api, publisher, event)
    assert (result.duplicate, result.matched_plays) == (False, 2)
    for reader in (bare, publisher, bearer(worker.id, roles=())):
        assert plays_named(api, reader) == ["By a writer", "By the boss"]
        assert get_event(api, reader, event.event_id).account_id == "acct-perm"


# ---- 10. DeletePlay -------------------------------------------------------------------------------


def test_a_deleted_play_stops_matching_and_keeps_its_runs(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    doomed = create_play(api, admin, "Doomed", KICK_OFF, owner=owner)
    kept = create_play(
        api, admin, "Kept", [{"create_task": {"title": "Other", "user": "owner@example.com"}}], owner=owner
    )
    before = account_event("acct-before")
    assert [r.matched_plays for r in publish(api, admin, before)] == [2]
    wait_processed(api, admin, before.event_id)
    [past] = runs_of(api, admin, play=doomed.name)

    edited = api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(
            play=plays_pb2.Play(name=doomed.name, description="about to go"),
            update_mask=FieldMask(paths=["description"]),
        ),
        metadata=admin,
    )
    stale = call_fails(
        api.plays.DeletePlay, plays_pb2.DeletePlayRequest(name=doomed.name, etag=doomed.etag), metadata=admin
    )
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert plays_named(api, admin) == ["Doomed", "Kept"]
    assert [r.id for r in play_resources(api, admin, owner)] == sorted([doomed.uid, kept.uid])
    api.plays.DeletePlay(plays_pb2.DeletePlayRequest(name=doomed.name, etag=edited.etag), metadata=admin)
    assert [r.id for r in play_resources(api, admin, owner)] == [kept.uid]  # the owner can be disabled freely

    assert plays_named(api, admin) == ["Kept"]
    gone = call_fails(api.plays.GetPlay, plays_pb2.GetPlayRequest(name=doomed.name), metadata=admin)
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "PLAY_NOT_FOUND")
    after = account_event("acct-after")
    assert [r.matched_plays for r in publish(api, admin, after)] == [1]
    wait_processed(api, admin, after.event_id)
    assert list(get_event(api, admin, after.event_id).matched_plays) == [kept.name]
    assert [r.name for r in runs_of(api, admin, play=doomed.name)] == [past.name]
    assert past.outcome == plays_pb2.RUN_OUTCOME_APPLIED and past.account_id == "acct-before"
    assert {r.account_id for r in runs_of(api, admin)} == {"acct-before", "acct-after"}
    assert [t.created_by for t in tasks_on(api, admin, "acct-after")] == [kept.name]
    again = call_fails(api.plays.DeletePlay, plays_pb2.DeletePlayRequest(name=doomed.name), metadata=admin)
    assert again.code == grpc.StatusCode.NOT_FOUND


def test_a_missing_event_type_is_listed_with_the_plays_other_problems(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    bad = play_message(
        "No type",
        [{"update_value": {"role": "roles/nope", "user": "owner@example.com"}}],
        owner=owner,
        event_type=events_pb2.EVENT_TYPE_UNSPECIFIED,
    )
    refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=bad), metadata=admin)
    assert refused.violation_reasons == {
        "play.trigger.event_type": "EVENT_TYPE_REQUIRED",
        "play.actions[0].update_value.role": "ROLE_UNKNOWN",
        "play.origin_team": "ORIGIN_TEAM_REQUIRED",
    }


def test_assignment_changed_plays_can_be_dry_run(rules_api, admin):
    api = rules_api
    owner = person(api, "owner@example.com")
    create_play(
        api,
        admin,
        "New CSM follow-up",
        [{"create_task": {"title": "Meet your account", "holder_of_role": "roles/success_manager"}}],
        owner=owner,
        event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED,
        criteria={"field": "role", "op": "equals", "value": "roles/success_manager"},
    )
    change = account_event(
        "acct-dry", {"role": "roles/success_manager"}, event_type=events_pb2.EVENT_TYPE_ASSIGNMENT_CHANGED
    )
    reply = api.plays.TestPlay(plays_pb2.TestPlayRequest(events=[change]), metadata=admin)
    [result] = reply.results
    assert [m.display_name for m in result.matches] == ["New CSM follow-up"]
    refused = call_fails(api.events.PublishEvents, events_pb2.PublishEventsRequest(events=[change]), metadata=admin)
    assert refused.violation_reasons == {"events[0].type": "EVENT_TYPE_RESERVED"}
    blank = call_fails(
        api.plays.TestPlay,
        plays_pb2.TestPlayRequest(events=[account_event("", {})]),
        metadata=admin,
    )
    assert blank.violation_reasons == {"events[0].account_id": "ACCOUNT_ID_INVALID"}
