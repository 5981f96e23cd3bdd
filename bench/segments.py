"""Benchmark: segment plays (ENTERS_SEGMENT / EXITS_SEGMENT) on account state, beside the
service's own PlayEngine and bare durable-rules doing the same work in this process.

A users service and a rules service run as their own processes, each on its own scratch
database. One seed event carries every attribute name (segment criteria may only name
attributes some event has carried), then 50 ACTIVE segment plays go in through CreatePlay, each
with one create_task action: 40 over segment, region, arr, tier, industry and employees (equals,
in, greater_than, less_than, not, all, any) and 10 time-based ones (within_next_days,
within_last_days, older_than_days over renewal_date and last_activity_date); 25 ENTERS_SEGMENT
and 25 EXITS_SEGMENT.

- load: BENCH_SEGMENTS_ACCOUNTS ACCOUNT_CREATED events through PublishEvents in calls of 1,000;
- end to end: BENCH_SEGMENTS_UPDATES ATTRIBUTE_CHANGED events (one or two attributes of a random
  account) in calls of BENCH_SEGMENTS_BATCH, from one client thread, until the last call returns
  (recorded, evaluated, memberships and runs stored);
- floors, measured first: the plays in the service's own PlayCatalog fed the same events with
  the same state chaining and membership diff (ingest.segment_runs), no database and no gRPC;
  and a bare durable-rules Host fed the updated account states as pre-built facts;
- activation: CreatePlay of one more segment play, which learns its segment over every account,
  with one PublishEvent sent during it;
- the clock: with the rules service stopped, segments.time_pass runs in this process on its
  database a day later (the accounts whose dates reached a window since they were scheduled),
  again at that moment (nothing is due: what most periodic passes cost), 30 days after that, and
  once more with every account made due (as right after the upgrade that added the schedule: a
  full pass); beside it, the 10 time-based plays' PlayEngine over every account's state in
  memory. The flips of the scheduled passes must equal the full in-memory pass's.

The executor is kept out of the way: the bench holds the workers' lease (as another replica
would), so runs stay pending and the service's clock does not run (BENCH_SEGMENTS_EXECUTOR=on
leaves the lease to the service, whose executor then applies runs while events are published).
The bench fails unless the service and the floors agree on every run, membership, account state
and time-pass flip. Floors are medians of BENCH_SEGMENTS_REPEATS (3); the rest runs once.

    make bench
    BENCH_SEGMENTS_ACCOUNTS=20000 BENCH_SEGMENTS_UPDATES=5000 .venv/bin/python -m bench.segments
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.segments
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from sqlalchemy import func, select, text, update

from bench.grpc_calls import seed_users
from bench.harness import backend, rules_service, scratch_databases, users_service
from bench.rules import (
    INDUSTRIES,
    MEDIAN_ARR,
    REGIONS,
    SEGMENTS,
    Bench,
    assert_and_retract,
    domain_events,
    new_account,
    struct,
)
from bench.sync_etm import cpu_seconds
from services.rules.adapters.orm import WORKER_LEASES, AccountRecord, PlayRunRecord, SegmentMemberRecord
from services.rules.app import MIGRATIONS
from services.rules.domain.events import AccountEvent, AccountState, evaluation_input
from services.rules.domain.model import SEGMENT_FACT
from services.rules.engine.compiler import NOW_KEY, Compiler, key
from services.rules.engine.evaluator import SID, SynchronousHost
from services.rules.service_layer.ingest import Memberships, PlayCatalog, compiled, evaluate, segment_runs
from services.rules.service_layer.segments import PassResult, time_pass
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database
from services.runtime.leases import WorkerLease
from steward.rules.v1 import events_pb2, plays_pb2

CREATED = events_pb2.EVENT_TYPE_ACCOUNT_CREATED
CHANGED = events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED
ENTERS, EXITS = plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT, plays_pb2.TRIGGER_KIND_EXITS_SEGMENT
TIERS = ("bronze", "silver", "gold")
LOAD_BATCH = 1000
DAY = dt.timedelta(days=1)
# Every attribute a criterion names, carried once before the plays are created; its values
# (no segment, no dates) put the seed account in no segment the criteria define as "in".
SEED_ATTRIBUTES: dict[str, Any] = {
    "name": "Seed",
    "segment": "none",
    "region": "none",
    "tier": "none",
    "arr": 0,
    "industry": "none",
    "employees": 0,
    "lifecycle_stage": "none",
    "billing": {"country": "none"},
    "renewal_date": "none",
    "last_activity_date": "none",
}


def eq(name: str, value: Any) -> dict[str, Any]:
    return {"field": name, "op": "equals", "value": value}


def op(name: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": name, "op": operator, "value": value}


@dataclass(frozen=True)
class SegmentSpec:
    name: str
    kind: int
    criteria: dict[str, Any]


def segment_specs() -> list[SegmentSpec]:
    """40 segments over attributes, in five shapes; even ones ENTERS_SEGMENT, odd ones EXITS."""
    specs = []
    for i in range(40):
        j, shape = divmod(i, 5)
        segment, other = SEGMENTS[j % 5], SEGMENTS[(j + 2) % 5]
        industry, industry_2 = INDUSTRIES[j % 6], INDUSTRIES[(j + 1) % 6]
        region, region_2 = REGIONS[j % 4], REGIONS[(j + 1) % 4]
        median = MEDIAN_ARR[segment]
        criteria: dict[str, Any]
        if shape == 0:  # a segment in two regions above its median ARR
            criteria = {
                "all": [
                    eq("segment", segment),
                    op("region", "in", [region, region_2]),
                    op("arr", "greater_than", median),
                ]
            }
        elif shape == 1:  # a tier in a region, outside two industries
            criteria = {
                "all": [
                    eq("tier", ("gold", "silver")[j % 2]),
                    eq("region", region),
                    {"not": op("industry", "in", [industry, industry_2])},
                ]
            }
        elif shape == 2:  # large in an industry, or very large anywhere
            criteria = {
                "any": [
                    {"all": [eq("industry", industry), op("employees", "greater_than", 500 * (1 + j % 3))]},
                    op("arr", "greater_than", 1_500_000 + 250_000 * j),
                ]
            }
        elif shape == 3:  # small accounts of two segments that are not bronze
            criteria = {
                "all": [
                    op("segment", "in", [segment, other]),
                    op("arr", "less_than", int(median * 0.8)),
                    {"not": eq("tier", "bronze")},
                ]
            }
        else:  # an industry in a segment, above 70% of its median ARR
            criteria = {
                "all": [
                    eq("industry", industry),
                    eq("segment", SEGMENTS[(j + 1) % 5]),
                    op("arr", "greater_than", int(MEDIAN_ARR[SEGMENTS[(j + 1) % 5]] * 0.7)),
                ]
            }
        kind = ENTERS if i % 2 == 0 else EXITS
        specs.append(SegmentSpec(f"S{i:02d} {'enters' if kind == ENTERS else 'exits'} shape {shape}", kind, criteria))
    return specs


def timed_specs() -> list[SegmentSpec]:
    """10 time-based segments over renewal_date and last_activity_date (5 ENTERS, 5 EXITS)."""
    renewal, activity = "renewal_date", "last_activity_date"
    return [
        SegmentSpec("T0 renewal in 30 days", ENTERS, op(renewal, "within_next_days", 30)),
        SegmentSpec(
            "T1 enterprise renewal in 90 days",
            ENTERS,
            {"all": [op(renewal, "within_next_days", 90), eq("segment", "Enterprise")]},
        ),
        SegmentSpec("T2 leaves the 60-day renewal window", EXITS, op(renewal, "within_next_days", 60)),
        SegmentSpec("T3 renewal lapsed in the last 30 days", ENTERS, op(renewal, "within_last_days", 30)),
        SegmentSpec("T4 no activity for 30 days", ENTERS, op(activity, "older_than_days", 30)),
        SegmentSpec(
            "T5 gold and quiet for 90 days, no longer",
            EXITS,
            {"all": [op(activity, "older_than_days", 90), eq("tier", "gold")]},
        ),
        SegmentSpec("T6 active in the last 14 days, no longer", EXITS, op(activity, "within_last_days", 14)),
        SegmentSpec(
            "T7 renewing in 120 days and quiet for 60",
            ENTERS,
            {"all": [op(renewal, "within_next_days", 120), op(activity, "older_than_days", 60)]},
        ),
        SegmentSpec("T8 quiet for 180 days, no longer", EXITS, op(activity, "older_than_days", 180)),
        SegmentSpec(
            "T9 renewal in 14 days or strategic in 180, no longer",
            EXITS,
            {
                "any": [
                    op(renewal, "within_next_days", 14),
                    {"all": [eq("segment", "Strategic"), op(renewal, "within_next_days", 180)]},
                ]
            },
        ),
    ]


# Created after the others, once every account is loaded: what activating a segment costs.
ACTIVATION_PROBE = SegmentSpec(
    "U activation probe",
    ENTERS,
    {"all": [eq("segment", "Enterprise"), op("arr", "greater_than", 500_000), {"not": eq("tier", "bronze")}]},
)


def account(rng: random.Random, index: int, today: dt.date) -> dict[str, Any]:
    attributes = new_account(rng, index)
    attributes["renewal_date"] = (today + dt.timedelta(days=rng.randint(-400, 400))).isoformat()
    attributes["last_activity_date"] = (today - dt.timedelta(days=rng.randint(0, 400))).isoformat()
    return attributes


def account_id(index: int) -> str:
    return f"001SEG{index:07d}"


def make_load(
    accounts: int, today: dt.date, seed: int = 10
) -> tuple[list[events_pb2.AccountEvent], list[dict[str, Any]]]:
    rng = random.Random(seed)
    created = [account(rng, i, today) for i in range(accounts)]
    messages = [
        events_pb2.AccountEvent(
            event_id=f"load-{i}", account_id=account_id(i), type=CREATED, attributes=struct(attributes)
        )
        for i, attributes in enumerate(created)
    ]
    return messages, created


def make_updates(
    count: int, created: list[dict[str, Any]], today: dt.date, seed: int = 11
) -> list[events_pb2.AccountEvent]:
    """One or two attributes of a random account: mostly ARR, then tier, employees, activity
    today, and now and then a reclassified segment, industry or region."""
    rng = random.Random(seed)
    known = [dict(a) for a in created]
    names = ("arr", "tier", "employees", "last_activity_date", "segment", "industry", "region")
    weights = (45, 20, 10, 10, 5, 5, 5)
    messages = []
    for n in range(count):
        index = rng.randrange(len(known))
        state = known[index]
        chosen = {rng.choices(names, weights)[0]}
        if rng.random() < 0.4:
            chosen.add(rng.choices(names, weights)[0])
        attributes: dict[str, Any] = {}
        for name in chosen:
            if name == "arr":
                attributes["arr"] = max(1, int(state["arr"] * rng.uniform(0.8, 1.3)))
            elif name == "tier":
                step = TIERS.index(state["tier"]) + rng.choice((-1, 1))
                attributes["tier"] = TIERS[min(2, max(0, step))]
            elif name == "employees":
                attributes["employees"] = int(state["employees"] * rng.uniform(0.9, 1.2)) + 1
            elif name == "last_activity_date":
                attributes["last_activity_date"] = today.isoformat()
            elif name == "segment":
                attributes["segment"] = rng.choice([s for s in SEGMENTS if s != state["segment"]])
            elif name == "industry":
                attributes["industry"] = rng.choice([i for i in INDUSTRIES if i != state["industry"]])
            else:
                attributes["region"] = rng.choice([r for r in REGIONS if r != state["region"]])
        state.update(attributes)
        messages.append(
            events_pb2.AccountEvent(
                event_id=f"update-{n}", account_id=account_id(index), type=CHANGED, attributes=struct(attributes)
            )
        )
    return messages


# --- the services ---


def hold_workers_lease(db: Database) -> WorkerLease:
    """Takes the rules service's workers' lease for this process, so that the service's
    executor, users-stream consumer and clock stand by as in a replica that does not hold it."""
    lease = WorkerLease(db, WORKER_LEASES, "rules.workers", ttl_seconds=12 * 3600, holder="bench.segments")
    if not lease.try_hold():
        raise AssertionError("the workers' lease is held by someone else")
    return lease


class Blocked(threading.Thread):
    """One PublishEvent sent a moment into an activation: how long ingest waits for it."""

    DELAY = 1.0

    def __init__(self, bench: Bench, account: str) -> None:
        super().__init__(daemon=True)
        self.bench, self.account, self.seconds = bench, account, float("nan")

    def run(self) -> None:
        time.sleep(self.DELAY)
        event = events_pb2.AccountEvent(
            event_id="during-activation", account_id=self.account, type=CHANGED, attributes=struct({"employees": 7})
        )
        started = time.perf_counter()
        self.bench.events.PublishEvent(events_pb2.PublishEventRequest(event=event), metadata=self.bench.md, timeout=900)
        self.seconds = time.perf_counter() - started


def create_plays(bench: Bench, specs: Sequence[SegmentSpec], owner: str, email: str) -> list[tuple[float, Any]]:
    """(seconds of the CreatePlay call, the play) per spec."""
    created = []
    for spec in specs:
        trigger = plays_pb2.Trigger(kind=spec.kind)  # type: ignore[arg-type]
        trigger.criteria.CopyFrom(struct(spec.criteria))
        play = plays_pb2.Play(
            display_name=spec.name,
            owner=owner,
            status=plays_pb2.PLAY_STATUS_ACTIVE,
            trigger=trigger,
            actions=[json_format.ParseDict({"create_task": {"title": spec.name, "user": email}}, plays_pb2.Action())],
        )
        started = time.perf_counter()
        reply = bench.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=bench.md, timeout=900)
        created.append((time.perf_counter() - started, reply))
    return created


@dataclass
class Published:
    seconds: float
    matched: int
    calls: list[float]
    cpu: dict[str, float]


def publish_all(
    bench: Bench, messages: Sequence[events_pb2.AccountEvent], batch: int, pids: dict[str, int]
) -> Published:
    requests = [
        events_pb2.PublishEventsRequest(events=messages[start : start + batch])
        for start in range(0, len(messages), batch)
    ]
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    matched, calls = 0, []
    started = time.perf_counter()
    for request in requests:
        call_started = time.perf_counter()
        reply = bench.events.PublishEvents(request, metadata=bench.md, timeout=900)
        calls.append(time.perf_counter() - call_started)
        for result in reply.results:
            if result.duplicate:
                raise AssertionError(f"{result.event_id} reported as a duplicate")
            matched += result.matched_plays
    seconds = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    return Published(seconds, matched, calls, cpu)


# --- what the service stored ---


def analyze(db: Database) -> None:
    """PostgreSQL: fresh planner statistics after the load, as autovacuum would gather them (it is
    off on the bench's server). Without them segment_members is read through its primary key
    (play_id first) and every members_of() scans all memberships of the plays it names."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            for table in ("accounts", "segment_members", "account_events", "play_runs"):
                conn.execute(text(f"ANALYZE {table}"))


def stored_runs(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(PlayRunRecord)) or 0)


def stored_members(db: Database, play_ids: frozenset[str]) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {}
    with db.engine.connect() as conn:
        query = select(SegmentMemberRecord.account_id, SegmentMemberRecord.play_id)
        for account, play in conn.execute(query):
            if play in play_ids:
                members.setdefault(account, set()).add(play)
    return members


def stored_attributes(db: Database) -> dict[str, dict[str, Any]]:
    with db.engine.connect() as conn:
        return {a: dict(s) for a, s in conn.execute(select(AccountRecord.account_id, AccountRecord.attributes))}


def catalog_of(db: Database) -> PlayCatalog:
    catalog = PlayCatalog()
    with RulesUnitOfWork(db, write=False) as uow:
        catalog.refresh(uow)
    return catalog


def nonempty(members: dict[str, set[str]], play_ids: frozenset[str]) -> dict[str, set[str]]:
    return {a: p & play_ids for a, p in members.items() if p & play_ids}


# --- floors ---


@dataclass
class Floor:
    seconds: float
    runs: int
    states: dict[str, AccountState] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)


def floor_ingest(
    catalog: PlayCatalog,
    events: Sequence[AccountEvent],
    states: dict[str, AccountState],
    members: dict[str, set[str]],
    now: dt.datetime,
) -> Floor:
    """What ingest does per event, minus the database and gRPC: chain the account state,
    evaluate the event plays (none here) and the segment plays, diff the memberships, pick the
    plays that fire."""
    states = dict(states)  # evaluation_input builds new states: the caller's stay as they were
    memberships = Memberships({a: set(p) for a, p in members.items()})
    runs = 0
    started = time.perf_counter()
    for event in events:  # the service's own per-event step (ingest.evaluate), without the database
        states[event.account_id], matched = evaluate(catalog, memberships, event, states.get(event.account_id), now)
        runs += len(matched)
    seconds = time.perf_counter() - started
    return Floor(seconds, runs, states, nonempty(memberships.now, catalog.segment_ids))


def floor_pass(
    catalog: PlayCatalog, states: dict[str, AccountState], members: dict[str, set[str]], now: dt.datetime
) -> tuple[Floor, PassResult]:
    """A time pass in memory: every account through the time-based plays' engine, diffed."""
    memberships = Memberships({a: members.get(a, set()) & catalog.timed_ids for a in states})
    runs = 0
    started = time.perf_counter()
    for account_id_, state in states.items():
        runs += len(
            segment_runs(catalog, catalog.timed, catalog.timed_ids, memberships, account_id_, state, now, account_id_)
        )
    seconds = time.perf_counter() - started
    entered = sum(len(p - memberships.before[a]) for a, p in memberships.now.items())
    left = sum(len(memberships.before[a] - p) for a, p in memberships.now.items())
    after = Floor(seconds, runs, members=nonempty(memberships.now, catalog.timed_ids))
    return after, PassResult(len(states), entered, left, runs)


def durable_floor(catalog: PlayCatalog, views: Sequence[dict[str, Any]], now: float) -> tuple[float, int]:
    """Bare durable-rules: the segment plays' conditions in one ruleset, the account states as
    facts built beforehand; only assert_fact (the actions count) and retract_fact are timed."""
    compiler = Compiler()
    counts = {"matches": 0}

    def count(_context: Any) -> None:
        counts["matches"] += 1

    rules: dict[str, Any] = {}
    for index, play_id in enumerate(sorted(catalog.segment_ids)):
        play = compiled(catalog.plays[play_id])
        assert play.criteria is not None
        condition = {"$and": [{"type": SEGMENT_FACT}, compiler.compile(play.criteria)]}
        rules[f"r{index}"] = {"all": [{"m": condition}], "run": count}
    ruleset = f"bench_segments_{os.getpid()}_{time.perf_counter_ns()}"
    host = SynchronousHost()  # the service's kind: no dispatch threads competing for the cores
    host.register_rulesets({ruleset: rules})
    facts = []
    for n, view in enumerate(views):
        fact: dict[str, Any] = {"sid": SID, "id": f"f{n}", "type": SEGMENT_FACT, NOW_KEY: now}
        fact |= {key(k): v for k, v in view.items() if isinstance(v, str | int | float | bool)}
        fact |= {name: predicate(fact) for name, predicate in compiler.derived.items()}
        facts.append(fact)
    return assert_and_retract(host, ruleset, facts), counts["matches"]


def every_account_due(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(AccountRecord).values(next_time_check=0))


def total_accounts(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(AccountRecord)) or 0)


def timed_pass(db: Database, catalog: PlayCatalog, now: dt.datetime) -> tuple[float, PassResult]:
    started = time.perf_counter()
    result = time_pass(lambda: RulesUnitOfWork(db), catalog, now)
    return time.perf_counter() - started, result


def progress(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {what}", file=sys.stderr, flush=True)


def process_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def cpu_text(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items())


def check(ok: bool, what: str, problems: list[str]) -> None:
    if not ok:
        problems.append(what)


def main() -> int:
    accounts = int(os.environ.get("BENCH_SEGMENTS_ACCOUNTS", "100000"))
    count = int(os.environ.get("BENCH_SEGMENTS_UPDATES", "20000"))
    batch = int(os.environ.get("BENCH_SEGMENTS_BATCH", "500"))
    repeats = int(os.environ.get("BENCH_SEGMENTS_REPEATS", "3"))
    executor = os.environ.get("BENCH_SEGMENTS_EXECUTOR", "off").lower() == "on"
    started_at = dt.datetime.now(dt.UTC)
    today = started_at.date()
    problems: list[str] = []
    load_messages, created = make_load(accounts, today)
    update_messages = make_updates(count, created, today)
    seed = events_pb2.AccountEvent(
        event_id="seed", account_id="000SEED", type=CREATED, attributes=struct(SEED_ATTRIBUTES)
    )
    [seed_event] = domain_events([seed])
    load_events, update_events = domain_events(load_messages), domain_events(update_messages)

    with ExitStack() as stack:
        users_url, rules_url = stack.enter_context(scratch_databases("users", "rules"))
        users, users_address = stack.enter_context(users_service(users_url))
        db = Database(users_url)
        owner_id, *_ = seed_users(db, 2)
        db.dispose()
        owner, email = f"users/{owner_id}", "user000001@example.com"
        MIGRATIONS.upgrade(rules_url)
        rules_db = Database(rules_url)
        stack.callback(rules_db.dispose)
        lease = None if executor else hold_workers_lease(rules_db)
        service = stack.enter_context(ExitStack())  # closed early, before the time passes
        rules, rules_address = service.enter_context(
            rules_service(rules_url, users_address, STEWARD_RULES_TIME_PASS_SECONDS="3600")
        )
        bench = Bench(users_address, rules_address)
        bench.events.PublishEvent(events_pb2.PublishEventRequest(event=seed), metadata=bench.md)
        stack.callback(bench.close)
        create_plays(bench, [*segment_specs(), *timed_specs()], owner, email)
        pids = {"rules": rules.popen.pid, "users": users.popen.pid}
        catalog = catalog_of(rules_db)
        assert len(catalog.segment_ids) == 50 and len(catalog.timed_ids) == 10, len(catalog.segment_ids)

        # Floors first, in this process, while the services are idle.
        progress("floors")
        idle_before, floors_started = {n: cpu_seconds(p) for n, p in pids.items()}, time.perf_counter()
        now = dt.datetime.now(dt.UTC)
        seed_state = evaluation_input(seed_event, None).new_state
        start_members = nonempty(stored_members(rules_db, catalog.segment_ids), catalog.segment_ids)
        loaded = floor_ingest(catalog, load_events, {"000SEED": seed_state}, start_members, now)
        update_floors = [
            floor_ingest(catalog, update_events, loaded.states, loaded.members, now) for _ in range(repeats)
        ]
        update_seconds, updated = statistics.median(f.seconds for f in update_floors), update_floors[0]
        views, engine_matches = [], 0
        chained = dict(loaded.states)
        for event in update_events:
            chained[event.account_id] = evaluation_input(event, chained.get(event.account_id)).new_state
            views.append(chained[event.account_id].view(event.account_id))
            engine_matches += len(catalog.segments.evaluate(event.event_id, SEGMENT_FACT, views[-1], None))
        bare_runs = [durable_floor(catalog, views, now.timestamp()) for _ in range(repeats)]
        bare_seconds, bare_matches = statistics.median(s for s, _ in bare_runs), bare_runs[0][1]
        check(bare_matches == engine_matches, f"bare durable-rules {bare_matches} vs {engine_matches}", problems)
        floors_wall = time.perf_counter() - floors_started
        idle_cpu = {n: (cpu_seconds(p) - idle_before[n]) / floors_wall for n, p in pids.items()}

        # End to end.
        progress("end to end")
        load = publish_all(bench, load_messages, LOAD_BATCH, pids)
        load_runs = stored_runs(rules_db)
        analyze(rules_db)
        e2e = publish_all(bench, update_messages, batch, pids)
        all_runs = stored_runs(rules_db)
        members = nonempty(stored_members(rules_db, catalog.segment_ids), catalog.segment_ids)
        check(load.matched == loaded.runs == load_runs, f"load: {load.matched} runs, floor {loaded.runs}", problems)
        check(e2e.matched == updated.runs == all_runs - load_runs, f"updates: {e2e.matched}/{updated.runs}", problems)
        check(members == updated.members, "segment memberships differ from the floor's", problems)
        attributes = stored_attributes(rules_db)
        expected_attributes = {a: s.attributes for a, s in updated.states.items()}
        check(attributes == expected_attributes, "account states differ from the floor's", problems)

        # One more segment play: CreatePlay learns its segment over every account (activation).
        progress("activation")
        blocked = Blocked(bench, account_id(0))
        blocked.start()
        [(activation_seconds, _)] = create_plays(bench, [ACTIVATION_PROBE], owner, email)
        blocked.join()
        threads = process_threads(rules.popen.pid)
        service.close()  # nothing else writes from here on

        # The clock: time_pass in this process, on the service's database.
        progress("time passes")
        catalog = catalog_of(rules_db)
        before = stored_members(rules_db, catalog.timed_ids)
        moment = dt.datetime.now(dt.UTC) + DAY
        pass_rows = []
        # The floor of the repeated pass is the first one's: the same evaluations, no flips to write.
        floors = [floor_pass(catalog, updated.states, before, moment) for _ in range(repeats)]
        day_floor, (after, expected) = statistics.median(f.seconds for f, _ in floors), floors[0]
        month_after, month_expected = floor_pass(catalog, updated.states, after.members, moment + 30 * DAY)
        month_floor = month_after.seconds
        nothing = PassResult(expected.accounts, 0, 0, 0)
        for label, at, floor_seconds, wanted in (
            ("a day later (the accounts due)", moment, day_floor, expected),
            ("again at that moment (none due)", moment, day_floor, nothing),
            ("30 days after that (the accounts due)", moment + 30 * DAY, month_floor, month_expected),
            ("every account due (full pass, nothing flips)", moment + 30 * DAY, day_floor, nothing),
        ):
            if label.startswith("every"):
                every_account_due(rules_db)
            seconds, result = timed_pass(rules_db, catalog, at)
            flips, wanted_flips = (result.entered, result.left, result.runs), (wanted.entered, wanted.left, wanted.runs)
            check(flips == wanted_flips, f"time pass {label}: {result}, floor {wanted}", problems)
            pass_rows.append((label, seconds, result, floor_seconds))
        check(pass_rows[-1][2].accounts == total_accounts(rules_db), "the full pass skipped accounts", problems)
        before = month_after.members
        after_passes = nonempty(stored_members(rules_db, catalog.timed_ids), catalog.timed_ids)
        check(after_passes == before, "time-based memberships differ from the floor's after the passes", problems)
        if lease is not None:
            lease.release()

    total = accounts + 1  # and the seed account
    report(
        Report(
            accounts=accounts,
            count=count,
            batch=batch,
            repeats=repeats,
            executor=executor,
            total=total,
            load=load,
            e2e=e2e,
            loaded=loaded,
            update_seconds=update_seconds,
            updated=updated,
            bare_seconds=bare_seconds,
            load_runs=load_runs,
            all_runs=all_runs,
            members=members,
            activation_seconds=activation_seconds,
            blocked_seconds=blocked.seconds,
            pass_rows=pass_rows,
            idle_cpu=idle_cpu,
            threads=threads,
        )
    )
    print(
        f"\nmatches: bare durable-rules {bare_matches:,} = PlayEngine {engine_matches:,} memberships over the "
        f"updated states; runs stored {all_runs:,} (load {load_runs:,} + updates {all_runs - load_runs:,}) "
        f"= floor {loaded.runs + updated.runs:,}"
    )
    for problem in problems:
        print(f"MISMATCH: {problem}", file=sys.stderr)
    if problems and dt.datetime.now(dt.UTC).date() != today:
        print("(the run crossed midnight UTC: relative dates moved between the floor and the service)", file=sys.stderr)
    return 1 if problems else 0


@dataclass
class Report:
    accounts: int
    count: int
    batch: int
    repeats: int
    executor: bool
    total: int
    load: Published
    e2e: Published
    loaded: Floor
    update_seconds: float
    updated: Floor
    bare_seconds: float
    load_runs: int
    all_runs: int
    members: dict[str, set[str]]
    activation_seconds: float
    blocked_seconds: float  # a PublishEvent sent during the activation
    pass_rows: list[tuple[str, float, PassResult, float]]
    idle_cpu: dict[str, float]  # CPU share of each service while the floors ran (they are idle)
    threads: int  # of the rules service, before it stopped


def report(r: Report) -> None:
    print(
        f"\n### segment plays, 50 active over {r.accounts:,} accounts, {r.count:,} updates, {backend()} — "
        f"{dt.date.today().isoformat()}\n"
    )
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Executor "
        f"{'on' if r.executor else 'off (the bench holds the workers lease)'}; floors: median of {r.repeats}.\n"
    )
    in_segments = sum(len(m) for m in r.members.values()) / r.total
    update_runs = r.all_runs - r.load_runs
    print(
        f"After the updates an account is in {in_segments:.2f} of the 50 segments on average; the load fired "
        f"{r.load_runs:,} runs ({r.load_runs / r.accounts:.2f} per account), the updates {update_runs:,} "
        f"({update_runs / r.count:.3f} per update).\n"
    )
    rate, floor_rate, bare_rate = r.count / r.e2e.seconds, r.count / r.update_seconds, r.count / r.bare_seconds
    load_rate, load_floor_rate = r.accounts / r.load.seconds, r.accounts / r.loaded.seconds
    print("| path | events/s | total s | ÷ PlayEngine floor | ÷ bare durable-rules |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ("bare durable-rules: assert, count, retract (facts built beforehand)", bare_rate, r.bare_seconds),
        ("PlayEngine in process: chain state, evaluate, diff memberships (floor)", floor_rate, r.update_seconds),
        (f"**PublishEvents end to end: updates**, calls of {r.batch:,}", rate, r.e2e.seconds),
    ]
    for label, value, seconds in rows:
        print(f"| {label} | {value:,.0f} | {seconds:.2f} | {value / floor_rate:.2f} | {value / bare_rate:.2f} |")
    print(
        f"| load floor: the same path for {r.accounts:,} ACCOUNT_CREATED | {load_floor_rate:,.0f} "
        f"| {r.loaded.seconds:.2f} | | |"
    )
    print(
        f"| **PublishEvents end to end: load**, calls of {LOAD_BATCH:,} | {load_rate:,.0f} | {r.load.seconds:.2f} "
        f"| {load_rate / load_floor_rate:.2f} of the load floor | |"
    )
    print(
        f"\nPublishEvents call p50: load {statistics.median(r.load.calls) * 1000:,.0f} ms, updates "
        f"{statistics.median(r.e2e.calls) * 1000:,.0f} ms (max {max(r.e2e.calls) * 1000:,.0f}). CPU seconds: "
        f"updates {cpu_text(r.e2e.cpu)}; load {cpu_text(r.load.cpu)}. While the floors ran, the idle services "
        f"used {', '.join(f'{n} {share:.0%}' for n, share in r.idle_cpu.items())} of a core; the rules service had "
        f"{r.threads} threads at the end."
    )
    print(
        f"\nCreatePlay of one more segment play, activated over {r.total:,} accounts: {r.activation_seconds:.2f} s; "
        + (
            f"a PublishEvent sent {Blocked.DELAY} s into it returned {r.blocked_seconds:.2f} s later.\n"
            if r.activation_seconds > Blocked.DELAY
            else "(shorter than the delay of the PublishEvent sent during it).\n"
        )
    )
    print(
        f"| time pass, 10 time-based plays, {r.total:,} accounts | s | accounts looked at | accounts/s | entered "
        "| left | runs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, seconds, result, _ in r.pass_rows:
        print(
            f"| segments.time_pass {label} | {seconds:.3f} | {result.accounts:,} | {result.accounts / seconds:,.0f} "
            f"| {result.entered:,} | {result.left:,} | {result.runs:,} |"
        )
    floor = r.pass_rows[0][3]
    print(
        "| floor: the 10 plays' PlayEngine over every account's state in memory, diffed (a day later) "
        f"| {floor:.2f} | {r.total:,} | {r.total / floor:,.0f} | | | |"
    )
    full = r.pass_rows[-1][1]
    print(
        f"\nFull pass ÷ in-memory floor: {floor / full:.2f}. The scheduled pass a day later took "
        f"{r.pass_rows[0][1] / full:.3f} of the full pass; one with nothing due {r.pass_rows[1][1] * 1000:,.1f} ms."
    )


if __name__ == "__main__":
    sys.exit(main())
