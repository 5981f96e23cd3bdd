"""Partitions of runs leased over live replicas (services/runtime/partitions.py): on the real
database with a clock the test moves (shares, joins, deaths, fencing, a change of P), and end to
end (per-account order inside batches; a replica killed mid-burst loses and doubles nothing).

Run against SQLite and, with STEWARD_TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator

import pytest

from services.rules.adapters.orm import WORKER_LEASES
from services.rules.app import MIGRATIONS
from services.runtime.db import Database
from services.runtime.leases import LeaseLost
from services.runtime.partitions import PartitionLeases
from steward.rules.v1 import events_pb2, plays_pb2
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
from tests.test_multi_replica import RulesReplica, eventually, start_rules_replica


class Cluster:
    def __init__(self, url: str) -> None:
        self.url = url
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self.dbs: list[Database] = []

    def replica(self, name: str, partitions: int = 16) -> PartitionLeases:
        db = Database(self.url)
        self.dbs.append(db)
        return PartitionLeases(
            db, WORKER_LEASES, "rules.runs", partitions, ttl_seconds=10, holder=name, clock=lambda: self.now
        )

    def tick(self, *replicas: PartitionLeases, seconds: float = 2, rounds: int = 2) -> None:
        """Keeper steps of every replica, `rounds` times (a joiner needs the holder to release)."""
        for _ in range(rounds):
            self.now += dt.timedelta(seconds=seconds)
            for replica in replicas:
                replica.rebalance()


@pytest.fixture
def cluster(databases) -> Iterator[Cluster]:
    url = databases.url("rules")
    MIGRATIONS.upgrade(url)
    made = Cluster(url)
    yield made
    for db in made.dbs:
        db.dispose()


def test_a_lone_replica_holds_every_partition_and_a_joiner_gets_half(cluster):
    one = cluster.replica("a")
    cluster.tick(one, rounds=1)
    assert one.owned == frozenset(range(16))
    two = cluster.replica("b")
    cluster.tick(one, two)
    assert one.owned.isdisjoint(two.owned) and len(one.owned) == len(two.owned) == 8
    three = cluster.replica("c")
    cluster.tick(one, two, three, rounds=3)  # b releases a's new share only after a has looked
    shares = [len(r.owned) for r in (one, two, three)]
    assert sum(shares) == 16 and max(shares) - min(shares) <= 1
    assert not (one.owned & two.owned) and not (two.owned & three.owned) and not (one.owned & three.owned)


def test_a_partition_is_never_held_twice_while_views_differ(cluster):
    one, two = cluster.replica("a"), cluster.replica("b")
    cluster.tick(one, rounds=1)
    two.rebalance()  # b joins and wants half, but a has not released yet
    assert two.owned == frozenset()
    one.rebalance()  # a sees b and releases b's share
    assert len(one.owned) == 8
    two.rebalance()
    assert two.owned == frozenset(range(16)) - one.owned


def test_a_dead_replicas_partitions_are_taken_once_its_leases_expire(cluster):
    one, two = cluster.replica("a"), cluster.replica("b")
    cluster.tick(one, two)
    lost = two.owned
    # b dies (no release): until its leases expire a keeps to its share...
    cluster.tick(one, seconds=4, rounds=2)
    assert one.owned.isdisjoint(lost)
    cluster.now += dt.timedelta(seconds=3)  # ...10 s after b's last renewal, they are free
    one.rebalance()
    assert one.owned == frozenset(range(16))


def test_a_graceful_stop_hands_over_at_once(cluster):
    one, two = cluster.replica("a"), cluster.replica("b")
    cluster.tick(one, two)
    two.release_all()
    assert two.owned == frozenset()
    cluster.tick(one, seconds=0.1, rounds=1)
    assert one.owned == frozenset(range(16))


def test_the_fence_refuses_a_replica_whose_partition_was_taken_over(cluster):
    one, two = cluster.replica("a"), cluster.replica("b")
    cluster.tick(one, rounds=1)
    with cluster.dbs[0].write_sessions() as session, session.begin():
        one.fence(session, {0, 5})  # held: renewed
    cluster.now += dt.timedelta(seconds=11)  # a stalls past its expiry; b takes everything
    two.rebalance()
    assert two.owned == frozenset(range(16))
    with pytest.raises(LeaseLost), cluster.dbs[0].write_sessions() as session, session.begin():
        one.fence(session, {0})
    assert 0 not in one.owned


def test_replicas_with_another_partition_count_stand_by_until_the_old_ones_stop(cluster):
    old = cluster.replica("old", partitions=16)
    cluster.tick(old, rounds=1)
    new = cluster.replica("new", partitions=32)
    cluster.tick(old, new)
    assert new.owned == frozenset() and old.owned == frozenset(range(16))
    old.release_all()
    cluster.tick(new, seconds=0.1, rounds=1)
    assert new.owned == frozenset(range(32))


# --- the executor over partitions, end to end ---------------------------------------------


def _hint_plays(api, md, team: str, owner, ana, ben) -> None:
    for hint, user in (("a", ana), ("b", ben)):
        create_play(
            api,
            md,
            f"Hint {hint}",
            [{"update_value": {"role": "roles/success_manager", "user": f"users/{user.id}"}}],
            owner=owner,
            team=team,
            criteria={"field": "hint", "op": "equals", "value": hint},
            event_type=events_pb2.EVENT_TYPE_ACCOUNT_UPDATED,
        )


def test_many_events_per_account_in_one_batch_end_on_the_last_events_holder(rules_api, admin):
    owner, ana, ben = (person(rules_api, f"{n}@example.com") for n in ("owner", "ana", "ben"))
    team = team_with(rules_api, admin, "CS", owner, ana, ben)
    _hint_plays(rules_api, admin, team, owner, ana, ben)
    rng = random.Random(16)
    accounts = [f"acct-{i:02d}" for i in range(40)]
    sequence = [rng.choice(accounts) for _ in range(600)]  # ~15 events per account, interleaved
    events = [
        account_event(a, {"hint": rng.choice("ab")}, event_type=events_pb2.EVENT_TYPE_ACCOUNT_UPDATED) for a in sequence
    ]
    for start in range(0, len(events), 200):  # many runs of one account land in one executor batch
        publish(rules_api, admin, *events[start : start + 200])
    wait_processed(rules_api, admin, *(e.event_id for e in events), timeout=120)

    users = {"a": f"users/{ana.id}", "b": f"users/{ben.id}"}
    history = history_by_account(rules_api, admin)
    for account in accounts:
        hints = [str(e.attributes["hint"]) for e in events if e.account_id == account]
        expected = [users[h] for k, h in enumerate(hints) if k == 0 or h != hints[k - 1]]  # a repeat changes nothing
        assert history.get(account, []) == expected, account
        assert holder(rules_api, admin, account) == users[hints[-1]]


def _replica_owned(replica: RulesReplica) -> float:
    return replica.metric("steward_partition_owned")


def test_a_replica_killed_mid_burst_loses_and_doubles_nothing(databases, users_api, admin):
    users = users_api()
    url = databases.url("rules")
    replicas = [start_rules_replica(url, users)]
    replicas.append(start_rules_replica(url, users))
    try:
        one, two = replicas
        eventually(lambda: [_replica_owned(r) for r in replicas] == [8, 8], "the partitions are shared")
        owner, *csms = (person(one.api, f"{n}@example.com") for n in ("owner", "ana", "ben", "cy"))
        team = team_with(one.api, admin, "CS", owner, *csms)
        play = create_play(
            one.api,
            admin,
            "Round robin and kick-off",
            [
                {"update_value": {"role": "roles/success_manager", "round_robin": {"team": team}}},
                {"create_task": {"title": "Kick-off", "holder_of_role": "roles/success_manager"}},
            ],
            owner=owner,
            team=team,
        )
        events = [account_event(f"acct-{i:04d}") for i in range(1500)]
        for start in range(0, len(events), 100):
            publish(replicas[start // 100 % 2].api, admin, *events[start : start + 100])
        eventually(lambda: sum(r.metric("steward_rules_runs_finished") for r in replicas) >= 300, "runs started")
        one.process.popen.kill()  # kill -9, mid-burst: no release, leases left to expire
        killed = time.monotonic()
        eventually(lambda: _replica_owned(two) == 16, "the survivor holds every partition", seconds=30)
        takeover = time.monotonic() - killed
        print(f"the survivor held every partition {takeover:.2f} s after the kill")
        wait_processed(two.api, admin, *(e.event_id for e in events), timeout=180)

        runs = runs_of(two.api, admin, play=play.name)
        assert len(runs) == 1500 and {r.outcome for r in runs} == {plays_pb2.RUN_OUTCOME_APPLIED}
        history = history_by_account(two.api, admin)
        tasks: dict[str, int] = {}
        for csm in (owner, *csms):  # the owner is in the team too
            for account, count in tasks_by_account(two.api, admin, f"users/{csm.id}").items():
                tasks[account] = tasks.get(account, 0) + count
        accounts = [e.account_id for e in events]
        assert {a: len(history.get(a, [])) for a in accounts} == dict.fromkeys(accounts, 1), "one change per run"
        assert {a: tasks.get(a, 0) for a in accounts} == dict.fromkeys(accounts, 1), "one task per run"
        # 2 s leases, keepers every 0.4 s: the survivor takes over within one lease and two keeper
        # rounds of the kill, plus the time to read /metrics.
        assert takeover < 2 + 2 * 0.4 + 1.5, f"took {takeover:.1f} s"
    finally:
        for replica in replicas:
            replica.close()
