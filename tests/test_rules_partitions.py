"""Partitions of runs leased over live replicas (services/runtime/partitions.py), on the real
database with a clock the test moves: shares, joins, deaths, fencing, and a change of P.

Run against SQLite and, with STEWARD_TEST_DATABASE_URL, PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from services.rules.adapters.orm import WORKER_LEASES
from services.rules.app import MIGRATIONS
from services.runtime.db import Database
from services.runtime.leases import LeaseLost
from services.runtime.partitions import PartitionLeases


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
