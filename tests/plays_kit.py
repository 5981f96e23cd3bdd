"""Building blocks for rules-service tests: people and teams in the users service, plays and
events through the rules API, and waiting for runs to finish."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from google.protobuf.struct_pb2 import Struct

from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import assignments_pb2, users_pb2, work_pb2
from tests.conftest import RulesApi
from tests.seed import add_user

_ids = itertools.count()


def struct(values: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(values)
    return out


def team_with(api: RulesApi, md, name: str, *users) -> str:
    team = api.users.teams.CreateTeam(
        users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name=name)), metadata=md
    ).name
    for user in users:
        api.users.teams.AddTeamMember(users_pb2.AddTeamMemberRequest(team=team, user=f"users/{user.id}"), metadata=md)
    return team


def person(api: RulesApi, email: str, **fields):
    return add_user(api.users.db, email, **fields)


def play_message(
    name: str,
    actions: list[dict[str, Any]],
    *,
    owner=None,
    team: str = "",
    criteria: dict[str, Any] | None = None,
    event_type: Any = events_pb2.EVENT_TYPE_ACCOUNT_CREATED,
    status: Any = plays_pb2.PLAY_STATUS_ACTIVE,
    custom: str = "",
    kind: Any = plays_pb2.TRIGGER_KIND_UNSPECIFIED,
    activation: Any = plays_pb2.ACTIVATION_SCOPE_UNSPECIFIED,
    webhook_secret: str = "",
) -> plays_pb2.Play:
    from google.protobuf import json_format

    if kind not in (plays_pb2.TRIGGER_KIND_UNSPECIFIED, plays_pb2.TRIGGER_KIND_EVENT):
        event_type = events_pb2.EVENT_TYPE_UNSPECIFIED  # segment and manual plays name no event type
    trigger = plays_pb2.Trigger(event_type=event_type, custom_event_type=custom, kind=kind, activation=activation)
    if criteria is not None:
        trigger.criteria.CopyFrom(struct(criteria))
    return plays_pb2.Play(
        display_name=name,
        owner=f"users/{owner.id}" if owner is not None else "",
        origin_team=team,
        status=status,
        trigger=trigger,
        actions=[json_format.ParseDict(a, plays_pb2.Action()) for a in actions],
        webhook_secret=webhook_secret,
    )


def create_play(api: RulesApi, md, *args, **kwargs) -> plays_pb2.Play:
    return api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play_message(*args, **kwargs)), metadata=md)


def account_event(
    account_id: str,
    attributes: dict[str, Any] | None = None,
    *,
    event_type: Any = events_pb2.EVENT_TYPE_ACCOUNT_CREATED,
    event_id: str = "",
    previous: dict[str, Any] | None = None,
    custom: str = "",
) -> events_pb2.AccountEvent:
    return events_pb2.AccountEvent(
        event_id=event_id or f"evt-{next(_ids)}-{uuid.uuid4().hex[:8]}",
        account_id=account_id,
        type=event_type,
        custom_type=custom,
        attributes=struct(attributes or {}),
        previous=struct(previous or {}),
    )


def publish(api: RulesApi, md, *events: events_pb2.AccountEvent) -> list[events_pb2.PublishResult]:
    return list(api.events.PublishEvents(events_pb2.PublishEventsRequest(events=list(events)), metadata=md).results)


def wait_processed(api: RulesApi, md, *event_ids: str, timeout: float = 30.0) -> None:
    """Until every event's runs have finished (the executor runs in the background)."""
    deadline = time.monotonic() + timeout
    pending = list(event_ids)
    while pending:
        name = f"accountEvents/{pending[0]}"
        state = api.events.GetAccountEvent(events_pb2.GetAccountEventRequest(name=name), metadata=md).state
        if state == events_pb2.EVENT_STATE_PROCESSED:
            pending.pop(0)
            continue
        assert time.monotonic() < deadline, f"{name} still not processed after {timeout}s"
        time.sleep(0.02)


def runs_of(api: RulesApi, md, **filters) -> list[plays_pb2.PlayRun]:
    runs, token = [], ""
    while True:
        reply = api.plays.ListPlayRuns(
            plays_pb2.ListPlayRunsRequest(page_token=token, page_size=1000, **filters), metadata=md
        )
        runs += list(reply.runs)
        token = reply.next_page_token
        if not token:
            return runs


def holder(api: RulesApi, md, account_id: str, role_key: str = "success_manager") -> str:
    team = api.users.assignments.GetAccountTeam(
        assignments_pb2.GetAccountTeamRequest(account_id=account_id), metadata=md
    )
    return dict(team.attributes).get(f"{role_key}___tid", "")


def history_by_account(api: RulesApi, md, role: str = "roles/success_manager") -> dict[str, list[str]]:
    """account -> the users the role went to, oldest first, from the whole assignment history."""
    changes: list[assignments_pb2.AssignmentChange] = []
    token = ""
    while True:
        request = assignments_pb2.ListAssignmentHistoryRequest(page_size=1000, page_token=token, role=role)
        reply = api.users.assignments.ListAssignmentHistory(request, metadata=md)
        changes += reply.changes
        token = reply.next_page_token
        if not token:
            break
    by_account: dict[str, list[str]] = {}
    for change in reversed(changes):  # the history lists newest first
        by_account.setdefault(change.account_id, []).append(change.user)
    return by_account


def tasks_by_account(api: RulesApi, md, assignee: str) -> dict[str, int]:
    """account -> how many tasks the assignee has on it."""
    counts: dict[str, int] = {}
    token = ""
    while True:
        request = work_pb2.ListTasksRequest(page_size=1000, page_token=token, assignee=assignee)
        reply = api.users.tasks.ListTasks(request, metadata=md)
        for task in reply.tasks:
            counts[task.account_id] = counts.get(task.account_id, 0) + 1
        token = reply.next_page_token
        if not token:
            return counts
