"""Work that must happen once per replica set, whatever the number of replicas.

A service's background work that is not safe to run twice at the same time (the rules
executor, the consumer of the users event stream) runs only in the replica that holds a
lease: a row per lease name in the service's own database, with the holder and an expiry.
A keeper thread takes the lease when it is free or expired and renews it while it is held;
a replica that stops gracefully releases it, so another takes over at once, and one that dies
lets it expire after `ttl`.

A lease alone is not enough: a replica paused past its expiry (GC, a slow call, a frozen VM)
would wake up still believing it holds it. So every transaction that records the work's
effects also calls `fence()`, which renews the lease in that same transaction only if this
replica still holds it, and otherwise raises LeaseLost: the transaction rolls back and the
work is left to the new holder. The database decides, so there is no window where two
replicas both commit. Replica clocks are compared through the expiry, so they must agree to
well within `ttl` (NTP does that).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import uuid
from collections.abc import Callable

from prometheus_client import Counter, Gauge
from sqlalchemy import Column, MetaData, String, Table, and_, case, or_, select, update
from sqlalchemy.orm import Session

from services.runtime.db import Database, UTCDateTime, insert_of, utcnow
from services.runtime.logging import get_logger

log = get_logger("steward.runtime.leases")
HELD = Gauge("steward_worker_lease_held", "1 while this replica holds the lease and runs its work.", ["lease"])
ACQUIRED = Counter("steward_worker_lease_acquired_total", "Times this replica took the lease.", ["lease"])
LOST = Counter("steward_worker_lease_lost_total", "Times this replica found its lease taken by another one.", ["lease"])
# An expiry in the past frees the lease at once for the next replica.
RELEASED = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def lease_table(metadata: MetaData) -> Table:
    """The leases table, defined on a service's own metadata (each service migrates its own)."""
    return Table(
        "worker_leases",
        metadata,
        Column("name", String(100), primary_key=True),
        Column("holder", String(200), nullable=False),
        Column("acquire_time", UTCDateTime(), nullable=False),
        Column("expire_time", UTCDateTime(), nullable=False),
    )


class LeaseLost(Exception):
    """This replica no longer holds the lease; what it was about to record is not recorded."""


def default_holder() -> str:
    # The pod name (hostname on Kubernetes) says which replica; the pid and a nonce tell two
    # processes of one host apart, and a restarted process from its dead predecessor.
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class WorkerLease:
    """A background worker of the runtime: start it after the workers it guards, so that it
    stops (and releases) after them."""

    def __init__(
        self,
        db: Database,
        table: Table,
        name: str,
        *,
        ttl_seconds: float = 15.0,
        holder: str | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._table = table
        self.name = name
        self.holder = holder or default_holder()
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self._clock = clock
        self._held = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_lost: list[Callable[[], None]] = []
        self._held_until = RELEASED

    # --- for the guarded workers ---

    @property
    def held(self) -> bool:
        return self._held.is_set()

    def wait_held(self, timeout: float) -> bool:
        """True once this replica holds the lease; False after `timeout` (look again later)."""
        return self._held.wait(timeout)

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Called (from the keeper thread) when the lease turns out to be someone else's: a
        worker blocked on a stream, say, should let go of it."""
        self._on_lost.append(callback)

    def fence(self, session: Session) -> None:
        """Inside the caller's write transaction: renew the lease if this replica still holds
        it, else raise LeaseLost so that the transaction records nothing."""
        now = self._clock()
        table = self._table
        result = session.execute(
            update(table)
            .where(and_(table.c.name == self.name, table.c.holder == self.holder, table.c.expire_time >= now))
            .values(expire_time=now + self._ttl)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            self._lost()
            raise LeaseLost(self.name)

    # --- the keeper ---

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._keep, name=f"lease-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._held.is_set():
            self.release()

    def _keep(self) -> None:
        # Renewing three times per ttl leaves two chances to fail before the lease expires.
        interval = self._ttl.total_seconds() / 3
        while not self._stop.is_set():
            try:
                self.try_hold()
            except Exception:  # the database is away: whoever holds it keeps it until it expires
                log.exception("lease_keeper_failed", lease=self.name)
                if self._held.is_set() and self._clock() >= self._held_until:
                    self._lost()
            self._stop.wait(interval)

    def try_hold(self) -> bool:
        """Take the lease if it is free or expired, renew it if it is ours; one transaction."""
        now = self._clock()
        until = now + self._ttl
        table = self._table
        with self._db.write_sessions() as session, session.begin():
            result = session.execute(
                update(table)
                .where(and_(table.c.name == self.name, or_(table.c.holder == self.holder, table.c.expire_time < now)))
                # Taking over, rather than renewing, restarts acquire_time (SET reads the old row).
                .values(
                    holder=self.holder,
                    expire_time=until,
                    acquire_time=case((table.c.holder == self.holder, table.c.acquire_time), else_=now),
                )
            )
            mine = result.rowcount == 1 or self._insert_first(session, now, until)  # type: ignore[attr-defined]
        if mine:
            self._held_until = until
            if not self._held.is_set():
                self._held.set()
                HELD.labels(self.name).set(1)
                ACQUIRED.labels(self.name).inc()
                log.info("lease_acquired", lease=self.name, holder=self.holder)
        elif self._held.is_set():
            self._lost()
        return mine

    def _insert_first(self, session: Session, now: dt.datetime, until: dt.datetime) -> bool:
        """The very first holder creates the row; of two at once, one insert wins."""
        statement = (
            insert_of(session, self._table)
            .values(name=self.name, holder=self.holder, acquire_time=now, expire_time=until)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(self._table.c.name)  # rowcount of this INSERT is -1 through psycopg
        )
        return session.execute(statement).first() is not None

    def release(self) -> None:
        """Let another replica take over now instead of after the expiry."""
        table = self._table
        try:
            with self._db.write_sessions() as session, session.begin():
                session.execute(
                    update(table)
                    .where(and_(table.c.name == self.name, table.c.holder == self.holder))
                    .values(expire_time=RELEASED)
                )
        except Exception:  # it expires on its own
            log.exception("lease_release_failed", lease=self.name)
        self._held.clear()
        HELD.labels(self.name).set(0)
        log.info("lease_released", lease=self.name, holder=self.holder)

    def _lost(self) -> None:
        if not self._held.is_set():
            return
        self._held.clear()
        HELD.labels(self.name).set(0)
        LOST.labels(self.name).inc()
        log.warning("lease_lost", lease=self.name, holder=self.holder)
        for callback in self._on_lost:
            callback()

    def current_holder(self) -> str | None:
        """Who holds the lease now (None when free): for tests and operators."""
        now = self._clock()
        table = self._table
        with self._db.read_sessions() as session:
            row = session.execute(select(table.c.holder, table.c.expire_time).where(table.c.name == self.name)).first()
        return row.holder if row is not None and row.expire_time >= now else None
