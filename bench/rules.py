"""Benchmark: account events through the rules service with 100 active plays, beside raw
durable-rules evaluating the same events against the same compiled rules in this process.

A users service and a rules service run as their own processes, each on its own scratch
database. 100 ACTIVE plays are created through CreatePlay (criteria over segment, region, arr,
tier, industry, name, lifecycle stage; mostly update_value actions that call SetAssignment).

- end to end: BENCH_RULES_EVENTS events through PublishEvents in batches of BENCH_RULES_BATCH,
  from one client thread, until the last call returns (recorded, evaluated, runs stored);
- floor: the plays as the server holds them (ListPlays), compiled into the service's own
  PlayEngine and fed the same events with the same account-state chaining; and a bare
  durable-rules Host fed pre-built facts (assert, count, retract);
- the executor's drain of every run those events matched (BatchSetAssignments / BatchCreateTasks
  calls), from the first publish and after the last one; on PostgreSQL the same burst again with
  two rules processes on one database (each executing its partitions), and the ratio;
- latency from PublishEvent to the assignment visible in GetAccountTeam, executor idle.

    make bench
    BENCH_RULES_EVENTS=5000 BENCH_RULES_LATENCY_SAMPLES=50 .venv/bin/python -m bench.rules
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.rules
    BENCH_RULES_REPLICAS=1,2,3 ...   (default: 1 on SQLite, 1,2 on PostgreSQL)
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
from durable.engine import Host, MessageNotHandledException
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bench.grpc_calls import seed_users
from bench.harness import SECRET, backend, rules_service, scratch_databases, users_service
from services.rules import convert
from services.rules.adapters.orm import AccountEventRecord
from services.rules.domain.criteria import parse as parse_criteria
from services.rules.domain.events import AccountEvent, AccountState, evaluation_input
from services.rules.domain.model import EventType, engine_type
from services.rules.engine.compiler import Compiler, key, previous_key
from services.rules.engine.evaluator import SID, CompiledPlay, PlayEngine
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.runtime.errors import Violations
from services.users.adapters.orm import EventRecord
from steward.rules.v1 import events_pb2, events_pb2_grpc, plays_pb2, plays_pb2_grpc
from steward.users.v1 import assignments_pb2, assignments_pb2_grpc, users_pb2, users_pb2_grpc
from tests.processes import free_port

CREATED = events_pb2.EVENT_TYPE_ACCOUNT_CREATED
UPDATED = events_pb2.EVENT_TYPE_ACCOUNT_UPDATED
STAGE = events_pb2.EVENT_TYPE_LIFECYCLE_STAGE_CHANGED
CUSTOM = events_pb2.EVENT_TYPE_CUSTOM

SEGMENTS = ("Enterprise", "Mid-Market", "SMB", "Strategic", "Startup")
SEGMENT_WEIGHTS = (15, 30, 35, 5, 15)
MEDIAN_ARR = {"Enterprise": 400_000, "Mid-Market": 80_000, "SMB": 15_000, "Strategic": 1_500_000, "Startup": 8_000}
REGIONS = ("emea", "amer", "apac", "latam")
REGION_WEIGHTS = (35, 40, 15, 10)
INDUSTRIES = ("Financial Services", "Healthcare", "Retail", "Software", "Manufacturing", "Education")
STAGES = ("onboarding", "adoption", "renewal", "churn_risk")
COUNTRIES = {"emea": ("FR", "DE", "GB"), "amer": ("US", "CA"), "apac": ("JP", "AU", "SG"), "latam": ("BR", "MX")}
NAME_FIRST = ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell")
NAME_LAST = ("Systems", "Labs", "Logistics", "Foods", "Retail", "Group", "Bank", "Health", "Capital", "Energy")
NAME_LAST_WEIGHTS = (20, 15, 12, 12, 12, 12, 5, 5, 4, 3)
CUSTOM_TYPES = ("renewal.at_risk", "nps.detractor")
# Matches only play "A SMB latam" (checked against the compiled plays before it is used).
LATENCY_ATTRIBUTES = {
    "name": "Probe Works",
    "segment": "SMB",
    "region": "latam",
    "tier": "bronze",
    "arr": 5_000,
    "industry": "Retail",
    "employees": 12,
    "lifecycle_stage": "onboarding",
    "billing": {"country": "BR"},
}


def eq(name: str, value: Any) -> dict[str, Any]:
    return {"field": name, "op": "equals", "value": value}


def op(name: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": name, "op": operator, "value": value}


def set_role(role: str, user: str) -> dict[str, Any]:
    return {"update_value": {"role": f"roles/{role}", "user": user}}


def task(title: str, days: int) -> dict[str, Any]:
    return {"create_task": {"title": title, "holder_of_role": "roles/success_manager", "due_in_days": days}}


@dataclass
class People:
    owner: str
    csms: list[str]  # users/{uid}, members of the CS team
    aes: list[str]  # users/{uid}, members of the Sales team
    csm_emails: list[str]
    cs_team: str = ""
    sales_team: str = ""


@dataclass
class PlaySpec:
    name: str
    event_type: int
    criteria: dict[str, Any] | None
    actions: list[dict[str, Any]]
    team: str
    custom: str = ""


def play_specs(people: People) -> list[PlaySpec]:
    """100 plays; display names sort in the order an account's runs should apply (routing first)."""
    cs, sales, csms, aes = people.cs_team, people.sales_team, people.csms, people.aes
    specs: list[PlaySpec] = []
    # A: 20 routing plays, one per (segment, region): every new account gets a success manager.
    for i, (segment, region) in enumerate((s, r) for s in SEGMENTS for r in REGIONS):
        if segment == "Strategic":
            action: dict[str, Any] = {"update_value": {"role": "roles/success_manager", "round_robin": {"team": cs}}}
        else:  # a third by email, as authors often write them
            action = set_role("success_manager", people.csm_emails[i % 5] if i % 3 == 0 else csms[i % 5])
        criteria = {"all": [eq("segment", segment), eq("region", region)]}
        specs.append(PlaySpec(f"A {segment} {region}", CREATED, criteria, [action], cs))
    # B: 8 sales routing plays on new accounts, by region and ARR band.
    for i, region in enumerate(REGIONS):
        big = {"all": [op("region", "in", [region]), op("arr", "greater_than", 250_000)]}
        mid = {
            "all": [
                eq("region", region),
                op("arr", "greater_than", 50_000),
                op("arr", "less_than", 250_001),
                {"not": op("segment", "in", ["SMB", "Startup"])},
            ]
        }
        specs.append(PlaySpec(f"B sales {region} large", CREATED, big, [set_role("sales_manager", aes[i % 3])], sales))
        specs.append(
            PlaySpec(f"B sales {region} mid", CREATED, mid, [set_role("sales_manager", aes[(i + 1) % 3])], sales)
        )
    # C: 12 plays that open a task for the success manager (some also set the sales manager).
    needles = ("Bank", "Health", "Capital")
    for i in range(12):
        needle = needles[i % 3]
        criteria = {
            "all": [op("name", "contains", needle.lower()), eq("region", REGIONS[i % 4])]
            if i < 8
            else [op("name", "contains", needle), op("arr", "greater_than", 100_000)]
        }
        actions = [task(f"{needle} compliance review", 14)]
        if i >= 8:
            actions.insert(0, set_role("sales_manager", aes[i % 3]))
        specs.append(PlaySpec(f"C task {needle} {i:02d}", CREATED if i % 2 == 0 else UPDATED, criteria, actions, sales))
    # D: 16 growth plays on updates: ARR over a threshold in a segment, not yet gold.
    thresholds = {"Enterprise": 350_000, "Mid-Market": 70_000, "SMB": 12_000, "Startup": 7_000}
    for i, (segment, limit) in enumerate((s, t) for s, t in thresholds.items() for _ in range(4)):
        region = REGIONS[i % 4]
        criteria = {
            "all": [
                eq("segment", segment),
                eq("region", region),
                op("arr", "greater_than", limit),
                {"not": eq("tier", "gold")},
            ]
        }
        specs.append(
            PlaySpec(f"D growth {segment} {region}", UPDATED, criteria, [set_role("sales_manager", aes[i % 3])], sales)
        )
    # E: 8 tier changes, per region: silver -> gold hands the account to a senior CSM.
    for i, region in enumerate(REGIONS):
        for was, now in (("silver", "gold"), ("bronze", "silver")):
            criteria = {"all": [{"field": "tier", "op": "changed", "from": was, "to": now}, eq("region", region)]}
            user = csms[(i + (was == "silver")) % 5]
            specs.append(
                PlaySpec(f"E tier {was} to {now} {region}", UPDATED, criteria, [set_role("success_manager", user)], cs)
            )
    # F: 12 industry plays on updates: any of (industry in a region, large ARR in the industry).
    for i, industry in enumerate(INDUSTRIES * 2):
        region = REGIONS[i % 4]
        criteria = {
            "any": [
                {"all": [eq("industry", industry), eq("region", region), op("employees", "greater_than", 400)]},
                {"all": [eq("industry", industry), op("arr", "greater_than", 2_000_000 + 500_000 * i)]},
            ]
        }
        specs.append(
            PlaySpec(
                f"F industry {industry} {i:02d}", UPDATED, criteria, [set_role("success_manager", csms[i % 5])], cs
            )
        )
    # G: 4 plays on updates of gold accounts, by region, outside some billing countries.
    for i, region in enumerate(REGIONS):
        criteria = {
            "all": [
                eq("region", region),
                op("segment", "not_equals", "Strategic"),
                op("tier", "in", ["gold"]),
                {"not": op("billing.country", "in", ["US", "JP"])},
            ]
        }
        specs.append(
            PlaySpec(f"G gold {region}", UPDATED, criteria, [set_role("success_manager", csms[(i + 2) % 5])], cs)
        )
    # H: 10 lifecycle plays.
    for i in range(10):
        stage = ("renewal", "churn_risk")[i % 2]
        segment = SEGMENTS[i % 5]
        criteria = {"all": [eq("lifecycle_stage", stage), eq("segment", segment)]}
        actions = [set_role("success_manager", csms[i % 5])] if stage == "renewal" else [task("Save the account", 3)]
        specs.append(PlaySpec(f"H stage {stage} {segment}", STAGE, criteria, actions, cs))
    # I: 10 custom-event plays.
    for i in range(10):
        custom = CUSTOM_TYPES[i % 2]
        criteria = {"all": [eq("region", REGIONS[i % 4]), op("arr", "greater_than", 10_000 * (i + 1))]}
        actions = [set_role("sales_manager", aes[i % 3])] if custom == "renewal.at_risk" else [task("Call back", 2)]
        specs.append(PlaySpec(f"I custom {custom} {i:02d}", CUSTOM, criteria, actions, sales, custom))
    return specs


def struct(values: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(values)
    return out


def make_events(count: int, accounts: int, run: str, seed: int = 6) -> list[events_pb2.AccountEvent]:
    """`count` events over `accounts` accounts, each account's first one ACCOUNT_CREATED."""
    rng = random.Random(seed)
    order = [i % accounts for i in range(count)]
    rng.shuffle(order)
    known: dict[int, dict[str, Any]] = {}
    events = []
    for n, index in enumerate(order):
        event_id, account_id = f"bench-{run}-{n}", f"001BENCH{index:06d}"
        state = known.get(index)
        previous: dict[str, Any] = {}
        custom = ""
        if state is None:
            event_type, attributes = CREATED, new_account(rng, index)
            known[index] = dict(attributes)
        else:
            roll = rng.random()
            if roll < 0.80:
                event_type = UPDATED
                attributes = {"arr": int(state["arr"] * rng.uniform(0.85, 1.45))}
                if rng.random() < 0.4:
                    attributes["employees"] = int(state["employees"] * rng.uniform(0.9, 1.3)) + 1
                if rng.random() < 0.3 and state["tier"] != "gold":
                    attributes["tier"] = "silver" if state["tier"] == "bronze" else "gold"
                    previous = {"tier": state["tier"]}
            elif roll < 0.92:
                event_type = STAGE
                stage = rng.choice([s for s in STAGES if s != state["lifecycle_stage"]])
                attributes, previous = {"lifecycle_stage": stage}, {"lifecycle_stage": state["lifecycle_stage"]}
            else:
                event_type, custom = CUSTOM, rng.choice(CUSTOM_TYPES)
                attributes = {"score": rng.randint(0, 10)}
            state.update(attributes)
        events.append(
            events_pb2.AccountEvent(
                event_id=event_id,
                account_id=account_id,
                type=event_type,
                custom_type=custom,
                attributes=struct(attributes),
                previous=struct(previous),
            )
        )
    return events


def new_account(rng: random.Random, index: int) -> dict[str, Any]:
    segment = rng.choices(SEGMENTS, SEGMENT_WEIGHTS)[0]
    region = rng.choices(REGIONS, REGION_WEIGHTS)[0]
    arr = int(MEDIAN_ARR[segment] * rng.lognormvariate(0, 0.6))
    roll = rng.random()
    tier = "gold" if arr > 250_000 and roll < 0.6 else ("silver" if roll < 0.5 else "bronze")
    return {
        "name": f"{rng.choice(NAME_FIRST)} {rng.choices(NAME_LAST, NAME_LAST_WEIGHTS)[0]} {index}",
        "segment": segment,
        "region": region,
        "tier": tier,
        "arr": arr,
        "industry": rng.choice(INDUSTRIES),
        "employees": int(arr / 150 * rng.lognormvariate(0, 0.5)) + 5,
        "lifecycle_stage": "onboarding",
        "billing": {"country": rng.choice(COUNTRIES[region])},
    }


def domain_events(messages: list[events_pb2.AccountEvent]) -> list[AccountEvent]:
    """The events as the service reads them off the wire."""
    now = dt.datetime.now(dt.UTC)
    problems = Violations()
    events = [convert.event_from_proto(m, now, f"events[{i}]", problems) for i, m in enumerate(messages)]
    problems.raise_if_any("invalid bench events")
    return events


def evaluation_inputs(events: list[AccountEvent]) -> Iterator[tuple[AccountEvent, dict[str, Any], dict[str, Any]]]:
    """(event, attributes, previous) with the account state chained from event to event."""
    states: dict[str, AccountState] = {}
    for event in events:
        seen = evaluation_input(event, states.get(event.account_id))
        states[event.account_id] = seen.new_state
        yield event, seen.attributes, seen.previous


@dataclass
class Floor:
    seconds: float
    matches: int
    actions: int
    per_play: Counter[str] = field(default_factory=Counter)


def play_engine_floor(plays: list[CompiledPlay], actions: dict[str, int], events: list[AccountEvent]) -> Floor:
    """The service's own PlayEngine: flatten, chain account state, assert, count, retract."""
    engine = PlayEngine()
    engine.load(plays)
    per_play: Counter[str] = Counter()
    started = time.perf_counter()
    for event, attributes, previous in evaluation_inputs(events):
        per_play.update(engine.evaluate(event.event_id, event.engine_type, attributes, previous))
    seconds = time.perf_counter() - started
    matches = sum(per_play.values())
    return Floor(seconds, matches, sum(actions[p] * n for p, n in per_play.items()), per_play)


def durable_floor(plays: list[CompiledPlay], actions: dict[str, int], events: list[AccountEvent]) -> Floor:
    """Bare durable-rules: the same compiled conditions in one ruleset, facts built beforehand;
    only assert_fact (actions count what they run) and retract_fact are timed."""
    compiler = Compiler()
    counts = {"matches": 0, "actions": 0}

    def counter(n: int) -> Any:
        def run(_context: Any) -> None:
            counts["matches"] += 1
            counts["actions"] += n

        return run

    rules: dict[str, Any] = {}
    for index, play in enumerate(plays):
        condition: dict[str, Any] = {"type": play.event_type}
        if play.criteria is not None:
            condition = {"$and": [condition, compiler.compile(play.criteria)]}
        rules[f"r{index}"] = {"all": [{"m": condition}], "run": counter(actions[play.play_id])}
    ruleset = f"bench_{uuid.uuid4().hex}"
    host = Host()
    host.register_rulesets({ruleset: rules})
    facts = []
    for event, attributes, previous in evaluation_inputs(events):
        fact: dict[str, Any] = {"sid": SID, "id": event.event_id, "type": event.engine_type}
        fact |= {key(k): v for k, v in attributes.items() if isinstance(v, str | int | float | bool)}
        fact |= {previous_key(k): v for k, v in previous.items() if isinstance(v, str | int | float | bool)}
        fact |= {name: predicate(fact) for name, predicate in compiler.derived.items()}
        facts.append(fact)
    return Floor(assert_and_retract(host, ruleset, facts), counts["matches"], counts["actions"])


def assert_and_retract(host: Host, ruleset: str, facts: list[dict[str, Any]]) -> float:
    """Seconds to assert each pre-built fact and retract it (a fact no rule matches is fine)."""
    started = time.perf_counter()
    for fact in facts:
        try:
            host.assert_fact(ruleset, fact)
        except MessageNotHandledException:
            pass
        finally:
            host.retract_fact(ruleset, fact)
    return time.perf_counter() - started


def server_play(message: plays_pb2.Play) -> CompiledPlay:
    """A play as the server holds it, compiled the way its catalog compiles it."""
    trigger = message.trigger
    criteria = convert.struct_dict(trigger.criteria) if trigger.HasField("criteria") else None
    return CompiledPlay(
        message.uid,
        engine_type(convert.EVENT_TYPE_FROM_PROTO[trigger.event_type], trigger.custom_event_type),
        None if criteria is None else parse_criteria(criteria),
    )


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Bench:
    def __init__(self, users_address: str, rules_address: str) -> None:
        token = mint_token(SECRET, "bench", roles=["admin"], ttl_seconds=4 * 3600)
        self.md = [("authorization", f"Bearer {token}")]
        options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        self._users = grpc.insecure_channel(users_address, options=options)
        self._rules = grpc.insecure_channel(rules_address, options=options)
        self.teams = users_pb2_grpc.TeamServiceStub(self._users)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self._users)
        self.plays = plays_pb2_grpc.PlayServiceStub(self._rules)
        self.events = events_pb2_grpc.AccountEventServiceStub(self._rules)

    def close(self) -> None:
        self._users.close()
        self._rules.close()

    def team(self, name: str, members: list[str]) -> str:
        team = self.teams.CreateTeam(
            users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name=name)), metadata=self.md
        ).name
        for user in members:
            self.teams.AddTeamMember(users_pb2.AddTeamMemberRequest(team=team, user=user), metadata=self.md)
        return team

    def create_plays(self, people: People) -> list[plays_pb2.Play]:
        for spec in play_specs(people):
            trigger = plays_pb2.Trigger(event_type=spec.event_type, custom_event_type=spec.custom)  # type: ignore[arg-type]
            if spec.criteria is not None:
                trigger.criteria.CopyFrom(struct(spec.criteria))
            play = plays_pb2.Play(
                display_name=spec.name,
                owner=people.owner,
                origin_team=spec.team,
                status=plays_pb2.PLAY_STATUS_ACTIVE,
                trigger=trigger,
                actions=[json_format.ParseDict(a, plays_pb2.Action()) for a in spec.actions],
            )
            self.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=self.md)
        reply = self.plays.ListPlays(
            plays_pb2.ListPlaysRequest(page_size=1000, status=plays_pb2.PLAY_STATUS_ACTIVE), metadata=self.md
        )
        return list(reply.plays)

    def state(self, event_id: str) -> int:
        request = events_pb2.GetAccountEventRequest(name=f"accountEvents/{event_id}")
        return int(self.events.GetAccountEvent(request, metadata=self.md).state)

    def pending_runs(self) -> bool:
        request = plays_pb2.ListPlayRunsRequest(page_size=1, outcome=plays_pb2.RUN_OUTCOME_PENDING)
        return bool(self.plays.ListPlayRuns(request, metadata=self.md).runs)

    def holder(self, account_id: str, role_key: str) -> str:
        team = self.assignments.GetAccountTeam(
            assignments_pb2.GetAccountTeamRequest(account_id=account_id), metadata=self.md
        )
        return dict(team.attributes).get(f"{role_key}___tid", "")

    def stats(self) -> Counter[str]:
        reply = self.plays.ListPlays(plays_pb2.ListPlaysRequest(page_size=1000), metadata=self.md)
        totals: Counter[str] = Counter()
        for play in reply.plays:
            for name in ("matched", "applied", "skipped", "failed", "pending"):
                totals[name] += getattr(play.stats, name)
        return totals


@dataclass
class EndToEnd:
    seconds: float
    matches: int
    call_seconds: list[float]
    drain_seconds: float  # from the first PublishEvents call until no run is pending
    # From the last PublishEvents answer (or the users service's restart, for a backlog) until
    # no run is pending.
    drain_after_seconds: float
    consumed: int = 0  # assignment changes the rules service read back from the users service
    consumed_seconds: float = 0.0  # from the first PublishEvents call until it had read them all


def assignment_events(users: Database, rules: Database) -> tuple[int, int]:
    """(assignment events the users service wrote, ASSIGNMENT_CHANGED events the rules service recorded)."""
    with users.engine.connect() as conn:
        written = conn.scalar(
            select(func.count()).where(EventRecord.type.in_(["assignment.set", "assignment.cleared"]))
        )
    with rules.engine.connect() as conn:
        recorded = conn.scalar(
            select(func.count()).where(AccountEventRecord.type == EventType.ASSIGNMENT_CHANGED.value)
        )
    return int(written or 0), int(recorded or 0)


def end_to_end(
    benches: list[Bench],
    messages: list[events_pb2.AccountEvent],
    batch: int,
    users: Database,
    rules: Database,
    before_drain: Callable[[], None] | None = None,
) -> EndToEnd:
    requests = [
        events_pb2.PublishEventsRequest(events=messages[start : start + batch])
        for start in range(0, len(messages), batch)
    ]
    matches, calls, last_matched = 0, [], ""
    started = time.perf_counter()
    bench = benches[0]
    for number, request in enumerate(requests):
        call_started = time.perf_counter()
        publisher = benches[number % len(benches)]  # each replica takes its share of the publishing
        reply = publisher.events.PublishEvents(request, metadata=publisher.md, timeout=900)
        calls.append(time.perf_counter() - call_started)
        for result in reply.results:
            if result.duplicate:
                raise AssertionError(f"{result.event_id} reported as a duplicate")
            matches += result.matched_plays
            if result.matched_plays:
                last_matched = result.event_id
    published = drain_from = time.perf_counter()
    if before_drain is not None:  # e.g. the users service starts again: the drain starts now
        before_drain()
        drain_from = time.perf_counter()
    # Runs execute in event order: when the last event that matched is processed, all are.
    deadline = published + 3600
    while last_matched and bench.state(last_matched) != events_pb2.EVENT_STATE_PROCESSED:
        if time.perf_counter() > deadline:
            raise AssertionError("the executor did not drain the runs within an hour")
        time.sleep(0.05)
    while bench.pending_runs():
        time.sleep(0.05)
    drained = time.perf_counter()
    result = EndToEnd(published - started, matches, calls, drained - started, drained - drain_from)
    # The rules service reads every assignment change back (one ingest per change): wait until
    # it has, so that the latency samples start from an idle service.
    written, recorded = assignment_events(users, rules)
    while recorded < written:
        if time.perf_counter() > deadline:
            raise AssertionError(f"the rules service read {recorded} of {written} assignment events in an hour")
        time.sleep(0.05)
        written, recorded = assignment_events(users, rules)
    result.consumed, result.consumed_seconds = recorded, time.perf_counter() - started
    return result


def latency(bench: Bench, samples: int, expected: str, run: str, warmup: int = 10) -> tuple[list[float], list[float]]:
    """PublishEvent of a new account matching one update_value play -> the holder visible in
    GetAccountTeam; the executor is idle before each sample. Returns (visible, publish call)."""
    visible, publish_calls = [], []
    for i in range(warmup + samples):
        event = events_pb2.AccountEvent(
            event_id=f"latency-{run}-{i}",
            account_id=f"001LAT{run}{i:05d}",
            type=CREATED,
            attributes=struct({**LATENCY_ATTRIBUTES, "name": f"Probe Works {i}"}),
        )
        started = time.perf_counter()
        reply = bench.events.PublishEvent(events_pb2.PublishEventRequest(event=event), metadata=bench.md)
        published = time.perf_counter()
        if reply.result.matched_plays != 1:
            raise AssertionError(f"the latency event matched {reply.result.matched_plays} plays, not 1")
        while bench.holder(event.account_id, "success_manager") != expected:
            if time.perf_counter() - started > 30:
                raise AssertionError(f"{event.account_id} never got {expected}")
            time.sleep(0.001)
        seen = time.perf_counter()
        if i >= warmup:
            visible.append(seen - started)
            publish_calls.append(published - started)
        while bench.state(event.event_id) != events_pb2.EVENT_STATE_PROCESSED:
            time.sleep(0.005)
        time.sleep(0.05)  # the users event of this assignment is consumed; everything idle again
    return visible, publish_calls


@dataclass
class Burst:
    replicas: int
    e2e: EndToEnd
    totals: Counter[str]
    per_replica: list[float]  # runs each rules replica finished
    floors: tuple[Floor, Floor] | None = None
    latency: tuple[list[float], list[float]] | None = None


def burst(
    replicas: int, count: int, batch: int, accounts: int, samples: int, floors: bool, backlog: bool = False
) -> Burst:
    """A users service and `replicas` rules processes on one rules database; the events are
    published to the replicas in turn; each replica executes the runs of its partitions.

    backlog: the users service is stopped while the events are published (their runs wait) and
    started again before the drain is timed: the executors' own throughput, not the publisher's."""
    run = uuid.uuid4().hex[:8]
    users_port = free_port()
    with scratch_databases("users", "rules") as (users_url, rules_url), ExitStack() as stack:
        users = stack.enter_context(ExitStack())  # closed first when the users service is stopped
        users_address = users.enter_context(users_service(users_url, users_port))[1]
        ports = [free_port() for _ in range(replicas)]
        # A backlog's runs retry quickly once the users service is back (the default waits up to 30 s).
        retry = {"STEWARD_RULES_RUN_RETRY_MAX_SECONDS": "0.2"} if backlog else {}
        addresses = [
            stack.enter_context(rules_service(rules_url, users_address, STEWARD_RULES_METRICS_PORT=str(port), **retry))[
                1
            ]
            for port in ports
        ]
        db = Database(users_url)
        ids = [f"users/{i}" for i in seed_users(db, 9)]
        db.dispose()
        benches = [Bench(users_address, address) for address in addresses]
        bench = benches[0]
        wait_until_shared(ports)
        people = People(ids[0], ids[1:6], ids[6:9], [f"user{i:06d}@example.com" for i in range(1, 6)])
        people.cs_team = bench.team("Customer Success", [people.owner, *people.csms])
        people.sales_team = bench.team("Sales", [people.owner, *people.aes])
        served = bench.create_plays(people)
        assert len(served) == 100, len(served)
        plays = [server_play(p) for p in served]
        action_counts = {p.uid: len(p.actions) for p in served}
        messages = make_events(count, accounts, run)
        events = domain_events(messages)
        measured = None
        if floors:
            measured = (play_engine_floor(plays, action_counts, events), durable_floor(plays, action_counts, events))
        users_db, rules_db = Database(users_url), Database(rules_url)
        restart = None
        if backlog:
            users.close()

            def restart() -> None:
                stack.enter_context(users_service(users_url, users_port))

        e2e = end_to_end(benches, messages, batch, users_db, rules_db, restart)
        users_db.dispose()
        rules_db.dispose()
        totals = bench.stats()
        finished = [metric_sum(port, "steward_rules_runs_finished_total") for port in ports]
        latencies = latency(bench, samples, latency_user(plays, served, ids), run) if samples else None
        for each in benches:
            each.close()
    return Burst(replicas, e2e, totals, finished, measured, latencies)


def wait_until_shared(ports: list[int]) -> None:
    """Until the replicas hold every partition between them, evenly (a keeper round or two)."""
    deadline = time.monotonic() + 60
    while True:
        owned = [metric_sum(port, "steward_partition_owned") for port in ports]
        if sum(owned) == 16 and max(owned) - min(owned) <= 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the partitions were never shared: {owned}")
        time.sleep(0.1)


def metric_sum(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def latency_user(plays: list[CompiledPlay], served: list[plays_pb2.Play], ids: list[str]) -> str:
    """The user the latency event's one matching play sets (checked: exactly one play matches)."""
    probe = PlayEngine()
    probe.load(plays)
    probe_event = events_pb2.AccountEvent(
        event_id="p", account_id="p", type=CREATED, attributes=struct(LATENCY_ATTRIBUTES)
    )
    [(event, attributes, previous)] = evaluation_inputs(domain_events([probe_event]))
    [latency_play_id] = probe.evaluate("p", event.engine_type, attributes, previous)
    [latency_play] = [p for p in served if p.uid == latency_play_id]
    expected = latency_play.actions[0].update_value.user
    if "@" in expected:
        expected = ids[int(expected.removeprefix("user").split("@")[0])]
    return expected


def main() -> int:
    count = int(os.environ.get("BENCH_RULES_EVENTS", "20000"))
    batch = int(os.environ.get("BENCH_RULES_BATCH", "500"))
    accounts = int(os.environ.get("BENCH_RULES_ACCOUNTS", "5000"))
    samples = int(os.environ.get("BENCH_RULES_LATENCY_SAMPLES", "200"))
    # Two replicas share one database: PostgreSQL's case (SQLite serialises writers anyway).
    default_replicas = "1,2" if backend() == "PostgreSQL" else "1"
    replica_counts = [int(n) for n in os.environ.get("BENCH_RULES_REPLICAS", default_replicas).split(",")]
    bursts = [burst(n, count, batch, accounts, samples if n == 1 else 0, floors=n == 1) for n in replica_counts]
    backlogs = [burst(n, count, batch, accounts, 0, floors=False, backlog=True) for n in replica_counts]
    one = bursts[0]
    assert one.floors is not None and one.latency is not None, "the first burst runs one replica"
    engine_floor, bare_floor = one.floors
    e2e, totals = one.e2e, one.totals
    visible, publish_calls = one.latency

    ok = e2e.matches == engine_floor.matches == bare_floor.matches == totals["matched"]
    rate = count / e2e.seconds
    engine_rate, bare_rate = count / engine_floor.seconds, count / bare_floor.seconds
    print(f"\n### rules service, 100 active plays, {count:,} events, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"{accounts:,} accounts; {e2e.matches:,} matches = {e2e.matches / count:.2f} plays per event "
        f"({engine_floor.actions:,} actions); PublishEvents in calls of {batch:,} from one thread.\n"
    )
    rows = [
        ("bare durable-rules: assert, count, retract (facts built beforehand)", bare_rate, bare_floor.seconds),
        ("PlayEngine in process: flatten, chain account state, evaluate (floor)", engine_rate, engine_floor.seconds),
        ("PublishEvents end to end: recorded, evaluated, runs stored", rate, e2e.seconds),
    ]
    print("| path | events/s | total s | ÷ PlayEngine | ÷ bare durable-rules |")
    print("|---|---:|---:|---:|---:|")
    for label, value, seconds in rows:
        print(f"| {label} | {value:,.0f} | {seconds:.2f} | {value / engine_rate:.2f} | {value / bare_rate:.2f} |")
    call_p50, call_max = statistics.median(e2e.call_seconds), max(e2e.call_seconds)
    print(f"\nPublishEvents call of {batch:,} events: p50 {call_p50 * 1000:,.0f} ms, max {call_max * 1000:,.0f} ms.\n")
    print(
        "| background work, from the first PublishEvents call | rules replicas | count | done after s "
        "| per s | last one after the last publish, s | runs per replica |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for each in bursts:
        print(
            f"| executor: runs applied against the users service ({each.totals['applied']:,} applied, "
            f"{each.totals['skipped']:,} skipped, {each.totals['failed']:,} failed) | {each.replicas} "
            f"| {each.totals['matched']:,} | {each.e2e.drain_seconds:.1f} "
            f"| {each.totals['matched'] / each.e2e.drain_seconds:,.0f} | {each.e2e.drain_after_seconds:.1f} "
            f"| {' / '.join(f'{n:,.0f}' for n in each.per_replica)} |"
        )
        print(
            f"| consumer: assignment changes read back as ASSIGNMENT_CHANGED events | {each.replicas} "
            f"| {each.e2e.consumed:,} | {each.e2e.consumed_seconds:.1f} "
            f"| {each.e2e.consumed / each.e2e.consumed_seconds:,.0f} | | |"
        )
    if len(bursts) > 1:
        base = one.totals["matched"] / one.e2e.drain_seconds
        for each in bursts[1:]:
            mine = each.totals["matched"] / each.e2e.drain_seconds
            print(f"\n{each.replicas} replicas apply {mine / base:.2f}x the runs per second of one.")
    print(
        "\nA backlog: the same events published while the users service is down, then the drain "
        "timed from its restart (the executors' throughput, not the publisher's):\n"
    )
    print("| rules replicas | runs | drained in s | runs/s | ÷ one replica | runs per replica |")
    print("|---:|---:|---:|---:|---:|---|")
    base_backlog = backlogs[0].totals["matched"] / backlogs[0].e2e.drain_after_seconds
    for each in backlogs:
        mine = each.totals["matched"] / each.e2e.drain_after_seconds
        print(
            f"| {each.replicas} | {each.totals['matched']:,} | {each.e2e.drain_after_seconds:.1f} | {mine:,.0f} "
            f"| {mine / base_backlog:.2f} | {' / '.join(f'{n:,.0f}' for n in each.per_replica)} |"
        )
    print(f"\n{samples:,} single events after that, executor idle before each:\n")
    print("| operation | p50 ms | p99 ms |")
    print("|---|---:|---:|")
    for label, values in (
        ("PublishEvent (1 match)", publish_calls),
        ("PublishEvent → assignment visible in GetAccountTeam", visible),
    ):
        print(f"| {label} | {statistics.median(values) * 1000:.1f} | {percentile(values, 0.99) * 1000:.1f} |")
    print(
        f"\nmatches: PublishEvents {e2e.matches:,}, PlayEngine {engine_floor.matches:,}, "
        f"bare durable-rules {bare_floor.matches:,}, play stats {totals['matched']:,}"
    )
    if not ok or any(b.totals["matched"] != totals["matched"] for b in (*bursts, *backlogs)):
        print("MISMATCH: the service and the floor disagree on the matches", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
