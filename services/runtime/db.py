"""Engines, sessions and the unit-of-work base shared by every service.

SQLite (the embedded default) gets WAL, foreign keys and a busy timeout; write units of
work open with BEGIN IMMEDIATE so that two writers queue up instead of one failing with
SQLITE_BUSY_SNAPSHOT half-way through. Any other SQLAlchemy URL (PostgreSQL) is used as is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy import DateTime, Engine, Select, Table, create_engine, event, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from services.runtime.errors import Aborted
from services.runtime.sealing import Keyring

SQLITE_BUSY_TIMEOUT_MS = 30_000


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Base of the ORM models; each service subclasses it for its own metadata."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=10,
        max_overflow=10,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("steward_write") else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """One service's database: an engine plus session factories for reads and writes."""

    def __init__(self, url: str, keyring: Keyring | None = None) -> None:
        self.url = url
        # Seals the secrets this service keeps for outside systems (runtime/sealing.py).
        self.keyring = keyring or Keyring()
        self.engine = make_engine(url)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = sessionmaker(self.engine.execution_options(steward_write=True), expire_on_commit=False)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


class UnitOfWork:
    """One transaction: commit() makes every change visible at once, leaving without it undoes all."""

    def __init__(self, db: Database, *, write: bool = True) -> None:
        self._factory = db.write_sessions if write else db.read_sessions
        self.keyring = db.keyring
        self.session: Session

    def __enter__(self) -> Self:
        self.session = self._factory()
        self.session.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.session.in_transaction():
                self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        try:
            self.session.commit()
        except StaleDataError as exc:
            raise _concurrent_change() from exc


def flush(session: Session) -> None:
    """Flush, turning a lost optimistic-concurrency race (version_id_col) into ABORTED."""
    try:
        session.flush()
    except StaleDataError as exc:
        raise _concurrent_change() from exc


def _concurrent_change() -> Aborted:
    return Aborted("CONCURRENT_MODIFICATION", "the resource changed concurrently; read it again and retry")


def keyset(
    query: Select[Any], columns: tuple[Any, ...], after: tuple[Any, ...] | None, limit: int, descending: bool = False
) -> Select[Any]:
    """Seek-method pagination: rows strictly after `after` in `columns` order (no OFFSET scans)."""
    if after is not None:
        bound = tuple_(*after)
        query = query.where(tuple_(*columns) < bound if descending else tuple_(*columns) > bound)
    return query.order_by(*(c.desc() if descending else c for c in columns)).limit(limit)


def insert_of(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT in the session's dialect: both have `on_conflict_do_nothing`, which the
    generic one lacks."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def table_of(model: type[Base] | Any) -> Table:
    """A model's Core table: bulk statements on it skip the ORM's per-row bookkeeping (~10 us a row)."""
    return cast(Table, model.__table__)
