"""The event outbox: appended in the writer's transaction, read back in commit order."""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from services.runtime import tracing
from services.runtime.db import table_of
from services.users.adapters.orm import EventRecord
from services.users.domain.events import DomainEvent

# On PostgreSQL a sequence value is taken at INSERT but becomes visible at COMMIT, so a reader
# could see seq 11 before seq 10 commits and move its cursor past 10 forever. Appenders therefore
# take this transaction-scoped lock before their first event: events commit one transaction at a
# time, in seq order. (SQLite writers are serialised by BEGIN IMMEDIATE already.)
_APPEND_LOCK = zlib.crc32(b"steward.users.events")
_LOCKED = "steward_event_lock_held"


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    type: str
    subject: str
    actor: str
    data: dict[str, Any]
    create_time: dt.datetime
    traceparent: str = ""


class EventLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, event: DomainEvent, now: dt.datetime) -> None:
        self._serialise_appends()
        self._session.add(
            EventRecord(
                type=event.type,
                subject=event.subject,
                actor=event.actor,
                data=event.data,
                create_time=now,
                traceparent=tracing.current_traceparent() or None,
            )
        )

    def append_all(self, events: Sequence[DomainEvent], now: dt.datetime) -> None:
        """One executemany: a reassignment may append 100,000 events."""
        if events:
            self._serialise_appends()
            traceparent = tracing.current_traceparent() or None
            self._session.execute(
                insert(table_of(EventRecord)),
                [
                    {
                        "type": e.type,
                        "subject": e.subject,
                        "actor": e.actor,
                        "data": e.data,
                        "create_time": now,
                        "traceparent": traceparent,
                    }
                    for e in events
                ],
            )

    def append_select(self, rows: Any) -> None:
        """Append the events a SELECT yields (type, subject, actor, data, create_time), in its order."""
        self._serialise_appends()
        traceparent = tracing.current_traceparent()
        before = self._session.scalar(select(func.max(EventRecord.seq))) if traceparent else None
        self._session.execute(
            insert(table_of(EventRecord)).from_select(["type", "subject", "actor", "data", "create_time"], rows)
        )
        if traceparent:  # appends are serialised: every row past `before` is this transaction's
            self._session.execute(
                update(EventRecord).where(EventRecord.seq > (before or 0)).values(traceparent=traceparent)
            )

    def _serialise_appends(self) -> None:
        if self._session.info.get(_LOCKED):
            return
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _APPEND_LOCK})
        self._session.info[_LOCKED] = True

    def after(self, seq: int, types: Sequence[str], limit: int) -> list[StoredEvent]:
        query = select(EventRecord).where(EventRecord.seq > seq)
        if types:
            query = query.where(EventRecord.type.in_(list(types)))
        rows = self._session.scalars(query.order_by(EventRecord.seq).limit(limit))
        return [
            StoredEvent(r.seq, r.type, r.subject, r.actor, dict(r.data), r.create_time, r.traceparent or "")
            for r in rows
        ]
