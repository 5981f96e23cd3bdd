"""Plays on account state: segments entered and left (by events and as time passes), activation
scope, manual runs and their rate limit, webhooks, tasks on the parent account, loops.

Real rules and users servers on loopback; a clock the tests set (RulesConfig.clock)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.server
import json
import random
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.rules.app import build_spec
from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import work_pb2
from tests.conftest import RulesApi, rules_config, stop_service
from tests.errors import call_fails
from tests.plays_kit import account_event, create_play, person, play_message, publish, runs_of, wait_processed

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
ENTERS, EXITS, MANUAL = (
    plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT,
    plays_pb2.TRIGGER_KIND_EXITS_SEGMENT,
    plays_pb2.TRIGGER_KIND_MANUAL,
)
ENTERPRISE = {"field": "segment", "op": "equals", "value": "Enterprise"}
RENEWING = {"field": "renewal_date", "op": "within_next_days", "value": 30}


class Clock:
    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def segment_api(rules_stack, clock) -> RulesApi:
    return rules_stack(clock=clock, time_pass_seconds=0.05, webhook_backoff_seconds=0.05)


def task_action(title: str, email: str = "csm@example.com", **extra: Any) -> dict[str, Any]:
    return {"create_task": {"title": title, "user": email, **extra}}


def eventually(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def runs_for(api: RulesApi, md, play: plays_pb2.Play, account: str = "") -> list[plays_pb2.PlayRun]:
    return runs_of(api, md, play=play.name, **({"account_id": account} if account else {}))


def settle(api: RulesApi, md, play: plays_pb2.Play, count: int, account: str = "") -> list[plays_pb2.PlayRun]:
    """Until the play has `count` runs and the executor has carried them out, then a while longer to
    see that no more come."""

    def arrived() -> bool:
        runs = runs_for(api, md, play, account)
        return len(runs) >= count and all(run.outcome != plays_pb2.RUN_OUTCOME_PENDING for run in runs)

    eventually(arrived, f"{count} finished runs of {play.display_name}")
    time.sleep(0.4)  # several clock passes and executor rounds
    runs = runs_for(api, md, play, account)
    assert len(runs) == count, f"{play.display_name}: {len(runs)} runs, expected {count}"
    return runs


def update(api: RulesApi, md, account: str, attributes: dict[str, Any], **kwargs: Any) -> str:
    event = account_event(account, attributes, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED, **kwargs)
    publish(api, md, event)
    return event.event_id


def segment_play(api: RulesApi, md, name: str, kind: Any, criteria: dict[str, Any], **kwargs: Any) -> plays_pb2.Play:
    return create_play(api, md, name, [task_action(name)], criteria=criteria, kind=kind, owner=csm(api), **kwargs)


def csm(api: RulesApi) -> Any:
    """The user tasks go to, and who owns the plays (created on first use)."""
    from sqlalchemy import select

    from services.users.adapters.orm import UserRecord
    from tests.seed import add_user

    with api.users.db.read_sessions() as session:
        found = session.scalars(select(UserRecord).where(UserRecord.email == "csm@example.com")).first()
    return found if found is not None else add_user(api.users.db, "csm@example.com")


def state(api: RulesApi, md, account: str) -> events_pb2.AccountState:
    return api.events.GetAccountState(events_pb2.GetAccountStateRequest(account_id=account), metadata=md)


def test_enter_fires_once_stays_quiet_inside_exit_fires_and_reentry_fires_again(segment_api, admin):
    api = segment_api
    csm(api)
    update(api, admin, "seed", {"segment": "SMB", "arr": 1})  # the attributes exist before plays name them
    enters = segment_play(api, admin, "Became enterprise", ENTERS, ENTERPRISE)
    exits = segment_play(api, admin, "Left enterprise", EXITS, ENTERPRISE)

    update(api, admin, "acct-1", {"segment": "Enterprise"})
    [entered] = settle(api, admin, enters, 1)
    assert entered.account_id == "acct-1" and entered.outcome == plays_pb2.RUN_OUTCOME_APPLIED
    assert sorted(state(api, admin, "acct-1").segments) == sorted([enters.name, exits.name])

    update(api, admin, "acct-1", {"arr": 500})  # still inside: nothing fires
    update(api, admin, "acct-1", {"segment": "Enterprise"})
    settle(api, admin, enters, 1)
    assert runs_for(api, admin, exits) == []

    update(api, admin, "acct-1", {"segment": "SMB"})
    settle(api, admin, exits, 1)
    assert state(api, admin, "acct-1").segments == []
    update(api, admin, "acct-1", {"segment": "Enterprise"})  # back in: enters again
    settle(api, admin, enters, 2)
    settle(api, admin, exits, 1)


def test_an_older_event_arriving_late_does_not_flip_membership(segment_api, clock, admin):
    api = segment_api
    csm(api)
    update(api, admin, "seed", {"segment": "SMB"})
    exits = segment_play(api, admin, "Left enterprise", EXITS, ENTERPRISE)
    enters = segment_play(api, admin, "Became enterprise", ENTERS, ENTERPRISE)
    update(api, admin, "acct-1", {"segment": "Enterprise"})
    settle(api, admin, enters, 1)
    stale = account_event("acct-1", {"segment": "SMB"}, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED)
    stale.occurred_at.FromDatetime(clock.now - dt.timedelta(days=1))  # happened before what we know
    publish(api, admin, stale)
    wait_processed(api, admin, stale.event_id)
    assert dict(state(api, admin, "acct-1").attributes)["segment"] == "Enterprise"
    settle(api, admin, exits, 0)
    assert state(api, admin, "acct-1").segments == sorted([enters.name, exits.name])


def test_a_time_based_segment_follows_the_clock_and_catches_up_after_an_outage_once(
    serve, users_api, databases, clock, admin
):
    users = users_api()
    url = databases.url("rules_clock")
    config = rules_config(users.running.address, clock=clock, time_pass_seconds=0.05)
    api = RulesApi(serve(build_spec(config), database_url=url), users)
    csm(api)
    update(api, admin, "a", {"renewal_date": "2026-03-01"})
    update(api, admin, "b", {"renewal_date": "2026-04-15"})
    update(api, admin, "c", {"renewal_date": "2027-01-01"})
    renewing = segment_play(api, admin, "Renewal in 30 days", ENTERS, RENEWING)
    renewed = segment_play(api, admin, "Renewal passed", EXITS, RENEWING)
    settle(api, admin, renewing, 0)

    clock.now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)  # a is 28 days away: enters with no event
    [run] = settle(api, admin, renewing, 1)
    assert run.account_id == "a" and run.event_id.startswith("clock/")
    clock.now = dt.datetime(2026, 2, 10, tzinfo=dt.UTC)  # still inside
    settle(api, admin, renewing, 1)

    stop_service(api.running)  # the rules service is down while time moves on
    clock.now = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)  # a's date has passed; b is 26 days away
    api = RulesApi(serve(build_spec(config), database_url=url), users)
    runs = settle(api, admin, renewing, 2)
    assert sorted(r.account_id for r in runs) == ["a", "b"]
    [left] = settle(api, admin, renewed, 1)
    assert left.account_id == "a"
    clock.advance(minutes=5)  # later passes fire nothing more
    settle(api, admin, renewing, 2)
    settle(api, admin, renewed, 1)


def _counter(running: Any, name: str) -> float:
    """A counter's value on the service's /metrics (counters are per process: tests take deltas)."""
    url = f"http://127.0.0.1:{running.runtime.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.split("{")[0].split(" ")[0] == name)


def _check_time(api: RulesApi, md, account: str) -> dt.datetime | None:
    found = state(api, md, account)
    return found.next_time_check.ToDatetime(dt.UTC) if found.HasField("next_time_check") else None


def test_the_clock_looks_only_at_accounts_whose_dates_reach_a_window(serve, users_api, clock, admin):
    users = users_api()
    config = rules_config(users.running.address, clock=clock, time_pass_seconds=0.05)
    api = RulesApi(serve(build_spec(config), metrics_port=0), users)
    csm(api)
    update(api, admin, "a", {"renewal_date": "2026-03-01"})
    update(api, admin, "far", {"renewal_date": "2027-01-01"})
    update(api, admin, "undated", {"segment": "SMB"})
    assert _check_time(api, admin, "a") is None  # no time-based play yet: time changes nothing
    running = api.running
    looked_at = _counter(running, "steward_rules_time_pass_accounts_total")
    renewing = segment_play(api, admin, "Renewal in 30 days", ENTERS, RENEWING)

    # The activation makes every account due once; that pass schedules each: 30 days before its
    # date (just after: criteria.SETTLE_SECONDS), or never.
    settle_ms = dt.timedelta(milliseconds=1)
    opens = dt.datetime(2026, 1, 30, tzinfo=dt.UTC) + settle_ms
    eventually(lambda: _check_time(api, admin, "a") == opens, "a is scheduled when its window opens")
    assert _check_time(api, admin, "far") == dt.datetime(2026, 12, 2, tzinfo=dt.UTC) + settle_ms
    assert _check_time(api, admin, "undated") is None
    looked_at += 3  # that pass looked at all three accounts
    eventually(lambda: _counter(running, "steward_rules_time_pass_accounts_total") == looked_at, "the pass counted")

    passes = _counter(running, "steward_rules_time_pass_seconds_count")
    eventually(lambda: _counter(running, "steward_rules_time_pass_seconds_count") >= passes + 5, "five passes")
    assert _counter(running, "steward_rules_time_pass_accounts_total") == looked_at  # nothing was due

    clock.now = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    [run] = settle(api, admin, renewing, 1)
    assert run.account_id == "a"
    assert _counter(running, "steward_rules_time_pass_accounts_total") == looked_at + 1  # a alone
    # Inside the window now: the next moment is when the date itself has passed.
    assert _check_time(api, admin, "a") == dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + settle_ms

    # An event moves the date: the check moves with it, with no pass over the other accounts.
    update(api, admin, "far", {"renewal_date": "2026-02-20"})
    assert _check_time(api, admin, "far") == dt.datetime(2026, 2, 20, tzinfo=dt.UTC) + settle_ms
    settle(api, admin, renewing, 2)  # far entered with its event, not with the clock
    assert _counter(running, "steward_rules_time_pass_accounts_total") == looked_at + 1


def test_events_published_during_an_activation_leave_every_membership_right(segment_api, admin):
    """The activation surveys the accounts without holding up events, then re-evaluates in its
    transaction the accounts that had events meanwhile: none is left with a stale membership."""
    api = segment_api
    csm(api)
    accounts = [f"acct-{n:04d}" for n in range(1500)]
    for start in range(0, len(accounts), 500):
        publish(api, admin, *(account_event(a, {"segment": "SMB"}) for a in accounts[start : start + 500]))
    stop, touched, calls = threading.Event(), set[str](), list[tuple[float, float]]()
    rng = random.Random(7)

    def publisher() -> None:
        while not stop.is_set():
            batch = [(a, rng.choice(["Enterprise", "SMB"])) for a in rng.sample(accounts, 25)]
            started = time.monotonic()
            update_events = [
                account_event(a, {"segment": v}, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED) for a, v in batch
            ]
            publish(api, admin, *update_events)
            calls.append((started, time.monotonic()))
            touched.update(a for a, _ in batch)

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        time.sleep(0.2)
        began = time.monotonic()
        play = segment_play(api, admin, "Became enterprise", ENTERS, ENTERPRISE)
        ended = time.monotonic()
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert any(began < done and start < ended for start, done in calls), "no event was published during it"
    checked = sorted(touched) + accounts[::50]
    wrong = []
    for account in checked:
        found = state(api, admin, account)
        inside = dict(found.attributes)["segment"] == "Enterprise"
        if inside != (play.name in found.segments):
            wrong.append(account)
    assert wrong == [], f"{len(wrong)} of {len(checked)} accounts have the wrong membership"


def test_activation_runs_for_existing_members_only_when_asked(segment_api, admin):
    api = segment_api
    csm(api)
    for account in ("e1", "e2"):
        update(api, admin, account, {"segment": "Enterprise"})
    update(api, admin, "s1", {"segment": "SMB"})
    new_only = segment_play(api, admin, "New only", ENTERS, ENTERPRISE)
    existing = segment_play(
        api, admin, "Existing too", ENTERS, ENTERPRISE, activation=plays_pb2.ACTIVATION_SCOPE_EXISTING_AND_NEW
    )
    assert sorted(r.account_id for r in settle(api, admin, existing, 2)) == ["e1", "e2"]
    settle(api, admin, new_only, 0)
    update(api, admin, "s1", {"segment": "Enterprise"})
    assert [r.account_id for r in settle(api, admin, new_only, 1)] == ["s1"]
    settle(api, admin, existing, 3)

    # Paused, then active again with "new only": accounts that entered meanwhile do not run.
    paused = _set_status(api, admin, new_only, plays_pb2.PLAY_STATUS_PAUSED)
    update(api, admin, "s2", {"segment": "Enterprise"})
    _set_status(api, admin, paused, plays_pb2.PLAY_STATUS_ACTIVE)
    settle(api, admin, new_only, 1)
    assert set(state(api, admin, "s2").segments) == {new_only.name, existing.name}


def _set_status(api: RulesApi, md, play: plays_pb2.Play, status: Any) -> plays_pb2.Play:
    change = plays_pb2.Play(name=play.name, status=status)
    return api.plays.UpdatePlay(
        plays_pb2.UpdatePlayRequest(play=change, update_mask={"paths": ["status"]}), metadata=md
    )


def _run_play(api: RulesApi, md, play: plays_pb2.Play, account: str, request_id: str = "") -> plays_pb2.PlayRun:
    request = plays_pb2.RunPlayRequest(name=play.name, account_id=account, request_id=request_id or str(uuid.uuid4()))
    return api.plays.RunPlay(request, metadata=md)


def test_manual_runs_are_idempotent_and_limited_per_caller(rules_stack, clock, admin):
    api = rules_stack(clock=clock, manual_runs_per_minute=3)
    csm(api)
    play = create_play(api, admin, "Escalate", [task_action("Escalation call")], kind=MANUAL, owner=csm(api))
    request_id = str(uuid.uuid4())
    first = _run_play(api, admin, play, "acct-1", request_id)
    assert _run_play(api, admin, play, "acct-1", request_id).name == first.name  # a retry: the same run
    _run_play(api, admin, play, "acct-2")
    _run_play(api, admin, play, "acct-3")
    clock.advance(seconds=20)
    try:
        _run_play(api, admin, play, "acct-4")
        raise AssertionError("the fourth run in a minute must be refused")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        retry = _detail(error, error_details_pb2.RetryInfo)
        assert 0 < retry.retry_delay.ToTimedelta().total_seconds() <= 40
    clock.advance(minutes=1)
    _run_play(api, admin, play, "acct-4")
    settle(api, admin, play, 4)
    tasks = api.users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id="acct-1"), metadata=admin).tasks
    assert [t.title for t in tasks] == ["Escalation call"]


def _detail(error: grpc.RpcError, kind: Any) -> Any:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    raise AssertionError(f"no {kind.DESCRIPTOR.name} in the error details")


def test_bad_manual_runs_and_bad_plays_get_clear_errors(segment_api, admin):
    api = segment_api
    csm(api)
    update(api, admin, "seed", {"segment": "SMB"})
    event_play = create_play(api, admin, "On create", [task_action("Welcome")], owner=csm(api))
    unknown = plays_pb2.Play(name=f"plays/{uuid.uuid4()}")
    missing = call_fails(
        api.plays.RunPlay,
        plays_pb2.RunPlayRequest(name=unknown.name, account_id="a", request_id=str(uuid.uuid4())),
        metadata=admin,
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "PLAY_NOT_FOUND")
    not_manual = call_fails(
        api.plays.RunPlay,
        plays_pb2.RunPlayRequest(name=event_play.name, account_id="a", request_id=str(uuid.uuid4())),
        metadata=admin,
    )
    assert (not_manual.code, not_manual.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PLAY_NOT_MANUAL")
    no_request = call_fails(api.plays.RunPlay, plays_pb2.RunPlayRequest(name=event_play.name), metadata=admin)
    assert no_request.violation_reasons == {"account_id": "ACCOUNT_ID_INVALID", "request_id": "REQUEST_ID_REQUIRED"}

    bad = play_message(
        "Bad",
        [{"call_webhook": {"url": "ftp://example.com/hook"}}],
        kind=ENTERS,
        criteria={"all": [ENTERPRISE, {"field": "segmnet", "op": "equals", "value": "X"}]},
        owner=csm(api),
    )
    refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=bad), metadata=admin)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.violation_reasons == {
        "play.actions[0].call_webhook.url": "URL_INVALID",
        "play.webhook_secret": "WEBHOOK_SECRET_REQUIRED",
        "play.trigger.criteria": "ATTRIBUTE_UNKNOWN",
    }
    assert "segmnet" in refused.field_violations["play.trigger.criteria"]
    no_criteria = play_message("No segment", [task_action("x")], kind=ENTERS, owner=csm(api))
    empty = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=no_criteria), metadata=admin)
    assert empty.violation_reasons == {"play.trigger.criteria": "CRITERIA_REQUIRED"}


class Receiver:
    """A real HTTP endpoint: fails the first `failures` deliveries with 503, then accepts."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.deliveries: list[tuple[int, dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if len(receiver.deliveries) < receiver.failures else 200
                receiver.deliveries.append((status, dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/steward"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_webhook_failing_twice_is_delivered_once_signed_with_one_idempotency_key(segment_api, admin):
    api = segment_api
    receiver = Receiver(failures=2)
    secret = "s" * 40
    try:
        update(api, admin, "seed", {"segment": "SMB"})
        play = create_play(
            api,
            admin,
            "Tell the CRM",
            [{"call_webhook": {"url": receiver.url, "timeout_seconds": 5}}],
            kind=ENTERS,
            criteria=ENTERPRISE,
            webhook_secret=secret,
            owner=csm(api),
        )
        assert play.has_webhook_secret and not play.webhook_secret  # write-only
        update(api, admin, "acct-1", {"segment": "Enterprise", "arr": 10})
        [run] = settle(api, admin, play, 1)
        assert run.outcome == plays_pb2.RUN_OUTCOME_APPLIED, run
        assert [status for status, _, _ in receiver.deliveries] == [503, 503, 200]
        keys = {headers["Idempotency-Key"] for _, headers, _ in receiver.deliveries}
        assert len(keys) == 1
        _, headers, body = receiver.deliveries[-1]
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Steward-Signature"], expected)
        payload = json.loads(body)
        assert payload["run"] == run.name and payload["account_id"] == "acct-1"
        assert payload["attributes"]["segment"] == "Enterprise"
    finally:
        receiver.close()


def test_a_webhook_that_keeps_failing_fails_the_run_with_its_reason(segment_api, admin):
    api = segment_api
    receiver = Receiver(failures=100)
    try:
        update(api, admin, "seed", {"segment": "SMB"})
        play = create_play(
            api,
            admin,
            "Unreachable CRM",
            [{"call_webhook": {"url": receiver.url}}],
            kind=MANUAL,
            webhook_secret="k" * 32,
            owner=csm(api),
        )
        _run_play(api, admin, play, "acct-1")
        [run] = settle(api, admin, play, 1)
        assert (run.outcome, run.actions[0].reason) == (plays_pb2.RUN_OUTCOME_FAILED, "WEBHOOK_UNREACHABLE")
        assert len(receiver.deliveries) == 4  # the configured attempts, no more
    finally:
        receiver.close()


def test_a_task_can_go_to_the_parent_account(segment_api, admin):
    api = segment_api
    csm(api)
    update(api, admin, "child", {"parent_account_id": "parent", "segment": "SMB"})
    assert state(api, admin, "child").parent_account_id == "parent"
    play = create_play(
        api,
        admin,
        "Tell the parent",
        [task_action("Child needs help", on_parent_account=True)],
        kind=MANUAL,
        owner=csm(api),
    )
    orphan_actions = [task_action("x", on_parent_account=True)]
    orphan_play = create_play(api, admin, "Orphan", orphan_actions, kind=MANUAL, owner=csm(api))
    _run_play(api, admin, play, "child")
    _run_play(api, admin, orphan_play, "no-parent")
    settle(api, admin, play, 1)
    [orphan] = settle(api, admin, orphan_play, 1)
    tasks = api.users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id="parent"), metadata=admin).tasks
    assert [t.title for t in tasks] == ["Child needs help"]
    assert api.users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id="child"), metadata=admin).tasks == []
    assert (orphan.outcome, orphan.actions[0].reason) == (plays_pb2.RUN_OUTCOME_SKIPPED, "NO_PARENT_ACCOUNT")


def test_a_play_that_changes_its_own_segment_is_flagged_and_runs_once_per_change(segment_api, admin):
    api = segment_api
    owner, yara = person(api, "owner@example.com"), person(api, "yara@example.com")
    from tests.plays_kit import team_with

    team = team_with(api, admin, "CS", owner, yara)
    update(api, admin, "seed", {"segment": "SMB"})
    unowned = {"all": [ENTERPRISE, {"not": {"field": "success_manager___tid", "op": "exists"}}]}
    draft = play_message(
        "Give enterprise accounts a CSM",
        [{"update_value": {"role": "roles/success_manager", "user": "yara@example.com"}}],
        kind=ENTERS,
        criteria=unowned,
        owner=owner,
        team=team,
    )
    checked = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=draft, validate_only=True), metadata=admin)
    assert [(w.field, w.reason) for w in checked.warnings] == [("play.actions[0]", "PLAY_MAY_LOOP")]
    play = api.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=draft), metadata=admin)
    update(api, admin, "acct-1", {"segment": "Enterprise"})
    [run] = settle(api, admin, play, 1)
    assert run.outcome == plays_pb2.RUN_OUTCOME_APPLIED
    # The assignment comes back through the users stream: the account leaves the segment.
    eventually(lambda: play.name not in state(api, admin, "acct-1").segments, "the account left the segment")
    settle(api, admin, play, 1)


def test_a_dry_run_of_a_segment_play_matches_events_that_cross_its_boundary(segment_api, admin):
    api = segment_api
    update(api, admin, "inside", {"segment": "Enterprise"})
    update(api, admin, "outside", {"segment": "SMB"})
    enters = segment_play(api, admin, "Became enterprise", ENTERS, ENTERPRISE)
    events = [
        account_event("outside", {"segment": "Enterprise"}, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED),
        account_event("inside", {"arr": 9}, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED),
        account_event("new", {"segment": "Enterprise"}),
    ]
    reply = api.plays.TestPlay(plays_pb2.TestPlayRequest(name=enters.name, events=events), metadata=admin)
    assert [[m.play for m in r.matches] for r in reply.results] == [[enters.name], [], [enters.name]]
    assert runs_for(api, admin, enters) == []  # nothing was recorded
    assert dict(state(api, admin, "outside").attributes)["segment"] == "SMB"
