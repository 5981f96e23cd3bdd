"""Work split into P partitions, each leased by one live replica: throughput grows with replicas.

Where runtime/leases.py gives one replica all of a kind of work, this shares it. Rows of the
same `worker_leases` table say who is alive and who holds what:

    {name}.m{P}/{holder}      one per live replica of P partitions: its heartbeat
    {name}.p{P}/{p}           partition p of P, leased by one replica at a time

Every few seconds each replica's keeper, in one transaction (serialised by an advisory lock on
PostgreSQL; SQLite serialises writers anyway): renews its heartbeat; reads the live members,
sorted; computes its share, the partitions p with p % members == its rank; releases what it
holds beyond its share; takes what it should hold and is free or expired. Every replica
computes the same map from the same rows, so a joining replica gets its share within a keeper
interval or two (the previous holder releases first), and a dead one's partitions are taken
once its leases expire (ttl). While views differ for an instant a partition is simply idle:
a lease is never held twice.

Holding is not enough to record (a replica paused past its expiry would not know it lost):
each transaction that records a partition's work calls `fence()` with the partitions it
touched, which renews them only if still held and otherwise raises LeaseLost, so the
transaction rolls back and the new holder repeats the work (idempotently, by request ids).

P is a deployment constant (the same on every replica). Replicas started with another P stand
by while a replica with a different P holds a partition, so two partitionings never run at
once: changing P is a rolling update in which the new replicas take over as the old ones stop.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections.abc import Callable, Iterable

from prometheus_client import Gauge
from sqlalchemy import Table, and_, delete, or_, select, text, update
from sqlalchemy.orm import Session

from services.runtime.db import Database, insert_of, utcnow
from services.runtime.leases import RELEASED, LeaseLost, default_holder
from services.runtime.logging import get_logger

log = get_logger("steward.runtime.partitions")
OWNED = Gauge(
    "steward_partition_owned",
    "1 for each partition this replica holds (lease, partition); the sum over replicas should be P.",
    ["lease", "partition"],
)
MEMBERS = Gauge(
    "steward_partition_members", "Live replicas sharing the partitions, as this replica sees them.", ["lease"]
)
# Enough distinct slots that any P up to a few hundred splits them evenly.
SLOTS = 1 << 16


def account_slot(key: str) -> int:
    """A stable hash of the key (the same in every process, unlike hash()): partition = slot % P."""
    return zlib.crc32(key.encode()) % SLOTS


def share(partitions: int, members: list[str], me: str) -> frozenset[int]:
    """The partitions `me` should hold among the sorted live members: p % len(members) == rank."""
    if me not in members:
        return frozenset()
    rank, count = members.index(me), len(members)
    return frozenset(p for p in range(partitions) if p % count == rank)


class PartitionLeases:
    """A background worker of the runtime: start it after the workers that use it."""

    def __init__(
        self,
        db: Database,
        table: Table,
        name: str,
        partitions: int,
        *,
        ttl_seconds: float = 15.0,
        holder: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if partitions < 1:
            raise ValueError("at least one partition")
        self._db = db
        self._table = table
        self.name = name
        self.count = partitions
        self.holder = holder or default_holder()
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._clock = clock
        self._owned: frozenset[int] = frozenset()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self._lock_key = zlib.crc32(f"partitions:{name}".encode())

    # --- for the workers ---

    @property
    def owned(self) -> frozenset[int]:
        return self._owned

    def partition_of(self, key: str) -> int:
        """The partition a key's work belongs to (queries compute the same from the stored slot)."""
        return account_slot(key) % self.count

    def wait_owned(self, timeout: float) -> bool:
        """True once this replica holds at least one partition; False after `timeout`."""
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._owned), timeout)

    def on_change(self, callback: Callable[[], None]) -> None:
        """Called (from the keeper thread) after the owned set changed, e.g. to wake a worker."""
        self._listeners.append(callback)

    def fence(self, session: Session, partitions: Iterable[int]) -> None:
        """Inside the caller's write transaction: renew these partitions if this replica still
        holds them all, else raise LeaseLost so that the transaction records nothing."""
        fenced = set(partitions)
        names = sorted(self._partition_name(p) for p in fenced)
        if not names:
            return
        now = self._clock()
        table = self._table
        result = session.execute(
            update(table)
            .where(and_(table.c.name.in_(names), table.c.holder == self.holder, table.c.expire_time >= now))
            .values(expire_time=now + self._ttl)
        )
        if result.rowcount != len(names):  # type: ignore[attr-defined]
            self._set_owned(self._owned - fenced)
            raise LeaseLost(f"{self.name}: {len(names) - result.rowcount} of {len(names)} partitions")  # type: ignore[attr-defined]

    # --- the keeper ---

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep, name=f"partitions-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.release_all()

    def _keep(self) -> None:
        # Five times per ttl: a joining replica waits a fifth of it, a lease misses four renewals
        # before it expires.
        interval = self._ttl.total_seconds() / 5
        while not self._stop.is_set():
            try:
                self.rebalance()
            except Exception:  # the database is away: what is held expires on its own
                log.exception("partition_keeper_failed", lease=self.name)
            self._stop.wait(interval)

    def _partition_name(self, partition: int) -> str:
        return f"{self.name}.p{self.count}/{partition}"

    def _member_name(self, holder: str) -> str:
        return f"{self.name}.m{self.count}/{holder}"

    def rebalance(self) -> frozenset[int]:
        """One keeper step (public for tests): heartbeat, then release and take to match the share."""
        now = self._clock()
        until = now + self._ttl
        table = self._table
        with self._db.write_sessions() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._lock_key})
            self._hold(session, [self._member_name(self.holder)], now, until)
            rows = session.execute(
                select(table.c.name, table.c.holder).where(
                    table.c.name.like(f"{self.name}.%"), table.c.expire_time >= now
                )
            ).all()
            # Members with another P neither count here nor get a share: see the module docstring.
            member_prefix, mine_prefix = self._member_name(""), self._partition_name(0)[:-1]
            members = sorted(r.name.removeprefix(member_prefix) for r in rows if r.name.startswith(member_prefix))
            foreign = [
                r.name for r in rows if r.name.startswith(f"{self.name}.p") and not r.name.startswith(mine_prefix)
            ]
            wanted = frozenset() if foreign else share(self.count, members, self.holder)
            if foreign and not self._owned:
                log.warning("partitions_standing_by", lease=self.name, count=self.count, other=foreign[0])
            held = {
                int(r.name.removeprefix(mine_prefix))
                for r in rows
                if r.name.startswith(mine_prefix) and r.holder == self.holder
            }
            surplus = held - wanted
            if surplus:
                session.execute(
                    update(table)
                    .where(
                        and_(
                            table.c.name.in_([self._partition_name(p) for p in surplus]), table.c.holder == self.holder
                        )
                    )
                    .values(expire_time=RELEASED)
                )
            owned = self._hold(session, [self._partition_name(p) for p in sorted(wanted)], now, until)
            # Heartbeats of replicas long gone (each process start is a new holder).
            session.execute(
                delete(table).where(
                    table.c.name.like(f"{self.name}.m%"), table.c.expire_time < now - dt.timedelta(hours=1)
                )
            )
        MEMBERS.labels(self.name).set(len(members))
        self._set_owned(frozenset(int(n.removeprefix(mine_prefix)) for n in owned))
        return self._owned

    def _hold(self, session: Session, names: list[str], now: dt.datetime, until: dt.datetime) -> set[str]:
        """Renews or takes the named leases that are ours, free or expired; the ones now held."""
        if not names:
            return set()
        table = self._table
        session.execute(
            update(table)
            .where(and_(table.c.name.in_(names), or_(table.c.holder == self.holder, table.c.expire_time < now)))
            .values(holder=self.holder, expire_time=until, acquire_time=now)
        )
        session.execute(
            insert_of(session, table)
            .values([{"name": n, "holder": self.holder, "acquire_time": now, "expire_time": until} for n in names])
            .on_conflict_do_nothing(index_elements=["name"])
        )
        query = select(table.c.name).where(and_(table.c.name.in_(names), table.c.holder == self.holder))
        return set(session.scalars(query))

    def release_all(self) -> None:
        """Let the other replicas take over now instead of after the expiry."""
        table = self._table
        try:
            with self._db.write_sessions() as session, session.begin():
                session.execute(
                    update(table)
                    .where(and_(table.c.name.like(f"{self.name}.%"), table.c.holder == self.holder))
                    .values(expire_time=RELEASED)
                )
        except Exception:  # they expire on their own
            log.exception("partition_release_failed", lease=self.name)
        self._set_owned(frozenset())
        log.info("partitions_released", lease=self.name, holder=self.holder)

    def _set_owned(self, owned: frozenset[int]) -> None:
        with self._changed:
            before, self._owned = self._owned, owned
            self._changed.notify_all()
        if owned == before:
            return
        for p in before - owned:
            OWNED.labels(self.name, str(p)).set(0)
        for p in owned - before:
            OWNED.labels(self.name, str(p)).set(1)
        log.info("partitions_changed", lease=self.name, holder=self.holder, owned=sorted(owned), count=self.count)
        for listener in self._listeners:
            listener()
