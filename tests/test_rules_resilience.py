"""Nothing is lost and nothing applied twice when the users service or the rules service stops."""

from __future__ import annotations

import time
from typing import Any

from services.rules.app import build_spec as rules_spec
from services.users.app import build_spec as users_spec
from services.users.config import UsersConfig
from steward.rules.v1 import plays_pb2
from steward.users.v1 import users_pb2_grpc, work_pb2
from tests.conftest import RulesApi, UsersApi, rules_config, settings_for, start_service, stop_service
from tests.plays_kit import (
    account_event,
    create_play,
    history_by_account,
    holder,
    person,
    publish,
    runs_of,
    tasks_by_account,
    team_with,
    wait_processed,
)
from tests.processes import free_port


def _users(settings) -> UsersApi:
    running = start_service(users_spec(UsersConfig()), settings)
    return UsersApi(
        running, users_pb2_grpc.UserServiceStub(running.channel), users_pb2_grpc.TeamServiceStub(running.channel)
    )


def _rules(settings, users: UsersApi) -> RulesApi:
    return RulesApi(start_service(rules_spec(rules_config(users.running.address)), settings), users)


def test_runs_wait_for_the_users_service_and_apply_exactly_once_across_restarts(databases, admin):
    users_settings = settings_for("users", databases.url("users"), port=free_port())
    rules_settings = settings_for("rules", databases.url("rules"), port=free_port())
    users = _users(users_settings)
    rules = _rules(rules_settings, users)
    started: list[Any] = [users, rules]
    try:
        owner, yara = person(rules, "owner@example.com"), person(rules, "yara@example.com")
        team = team_with(rules, admin, "CS", owner, yara)
        play = create_play(
            rules,
            admin,
            "CSM and kick-off",
            [
                {"update_value": {"role": "roles/success_manager", "user": "yara@example.com"}},
                {"create_task": {"title": "Kick-off", "holder_of_role": "roles/success_manager", "due_in_days": 3}},
            ],
            owner=owner,
            team=team,
        )
        stop_service(users.running)  # the users service goes away; events keep coming
        started.remove(users)
        # At batch scale: thousands of runs wait, then go out in batches of the executor's size.
        events = [account_event(f"acct-{i}") for i in range(2000)]
        results = [r for start in range(0, 1000, 500) for r in publish(rules, admin, *events[start : start + 500])]
        assert len(results) == 1000 and all(r.matched_plays == 1 for r in results)
        deadline = time.monotonic() + 10
        while not any(r.attempts for r in runs_of(rules, admin, play=play.name)):
            assert time.monotonic() < deadline, "runs were never attempted"
            time.sleep(0.05)
        stop_service(rules.running)  # and the rules service restarts while runs are pending
        started.remove(rules)
        rules = _rules(rules_settings, users)
        started.append(rules)
        for start in range(1000, 2000, 500):
            publish(rules, admin, *events[start : start + 500])
        waiting = runs_of(rules, admin, play=play.name)
        assert len(waiting) == 2000 and all(r.outcome == plays_pb2.RUN_OUTCOME_PENDING for r in waiting)
        assert {r.reason for r in waiting if r.attempts} == {"UNAVAILABLE"}, "a waiting run says why"

        users = _users(users_settings)  # back, on the same address and database
        started.append(users)
        rules.users = users
        wait_processed(rules, admin, *(e.event_id for e in events), timeout=120)
        runs = runs_of(rules, admin, play=play.name)
        assert [(r.outcome, r.reason) for r in runs] == [(plays_pb2.RUN_OUTCOME_APPLIED, "")] * 2000
        accounts = [e.account_id for e in events]
        history = history_by_account(rules, admin)
        assert {a: history.get(a) for a in accounts} == {key: [f"users/{yara.id}"] for key in accounts}
        assert tasks_by_account(rules, admin, f"users/{yara.id}") == dict.fromkeys(accounts, 1)
        sample = users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id=accounts[-1]), metadata=admin).tasks
        assert [(t.title, t.assignee) for t in sample] == [("Kick-off", f"users/{yara.id}")]
        assert holder(rules, admin, accounts[0]) == f"users/{yara.id}"
    finally:
        for service in started:
            stop_service(service.running)
