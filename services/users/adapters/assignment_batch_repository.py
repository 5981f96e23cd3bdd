"""A batch of assignment writes as a handful of set statements, whatever its size.

    claim   INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING  the free slots, in key order
    holders SELECT ... JOIN ... ORDER BY key FOR UPDATE              the taken ones, locked
    (on SQLite, whose writers are serialised, the holders are read first and the rest inserted)
    apply   UPDATE ... FROM, DELETE ... IN                           the slots whose holder moved
    record  INSERT ... SELECT (history), INSERT ... SELECT (events)  one row each per change

The batch's rows reach the database as one JSON parameter (runtime/set_sql.JsonRows). A batch
written by one writer stamps its source and source_ref as constants of the statement; a batch whose
rows name writers of their own (`sources`, SlotChange.source) carries them as two more columns of
its rows, so it is still the same handful of statements.

Why no deadlock between two batches on PostgreSQL: the claim inserts and the lock takes rows in
(account, role) order, and a claim waits only for another transaction's uncommitted insert of the
same key, which that transaction made in the same order. Rows another batch inserted and has not
committed are invisible to the lock's snapshot, so it never waits for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from services.runtime.db import insert_of, table_of
from services.runtime.set_sql import JsonRows, json_object, text_value, time_value
from services.users.adapters.event_log import EventLog
from services.users.adapters.orm import AssignmentHistoryRecord, AssignmentRecord
from services.users.domain.assignment_batch import Slot, SlotChange
from services.users.domain.assignments import ATTRIBUTE_SUFFIX, Assignment, Source, WriteSource

_ASSIGNMENTS = table_of(AssignmentRecord)
_HISTORY = table_of(AssignmentHistoryRecord)


class AssignmentBatchRepository:
    def __init__(self, session: Session, events: EventLog) -> None:
        self._session = session
        self._events = events
        self._dialect = session.get_bind().dialect.name

    def _rows(self, rows: Sequence[Sequence[object]]) -> JsonRows:
        return JsonRows(rows, self._dialect)

    def _stamp(self, write: WriteSource, now: dt.datetime) -> tuple[Any, Any, Any]:
        return text_value(write.source.value), text_value(write.source_ref), time_value(now, self._dialect)

    def _row_stamp(self, batch: JsonRows, first: int, now: dt.datetime) -> tuple[Any, Any, Any]:
        """The source and source_ref carried by each row (columns `first` and `first + 1`)."""
        return batch.text(first), batch.text(first + 1), time_value(now, self._dialect)

    def take(
        self,
        slots: set[Slot],
        claims: Mapping[Slot, str],
        write: WriteSource,
        now: dt.datetime,
        sources: Mapping[Slot, WriteSource] | None = None,
    ) -> tuple[set[Slot], dict[Slot, str]]:
        """Every slot of a batch, either claimed (it was free: it now holds its claim's user) or
        locked with its holder's user. Returns (claimed slots, holders of the others). `sources`:
        the writer of each claim that is not `write`, when the batch's rows name their own."""
        if self._dialect != "postgresql":
            # SQLite writers are serialised (BEGIN IMMEDIATE): a slot free now stays free until
            # this transaction ends, so the free ones are inserted without RETURNING (fetching
            # 10,000 returned keys was a tenth of a batch's time).
            holders = {slot: held.user_id for slot, held in self.holders(sorted(slots), lock=False).items()}
            free = {slot: user for slot, user in claims.items() if slot not in holders}
            self.claim(free, write, now, returning=False, sources=sources)
            return set(free), holders
        claimed = self.claim(claims, write, now, sources=sources)
        holders = {}
        pending = slots - claimed
        while pending:
            found = self.holders(sorted(pending))
            holders |= {slot: held.user_id for slot, held in found.items()}
            # A slot the claim found taken may have been freed by its holder's transaction since:
            # claim it again (a clear-only slot that is free stays free: nothing to lock).
            freed = {slot: claims[slot] for slot in pending - found.keys() if slot in claims}
            pending = set(freed) - (newly := self.claim(freed, write, now, sources=sources))
            claimed |= newly
        return claimed, holders

    def claim(
        self,
        claims: Mapping[Slot, str],
        write: WriteSource,
        now: dt.datetime,
        *,
        returning: bool = True,
        sources: Mapping[Slot, WriteSource] | None = None,
    ) -> set[Slot]:
        """Give each free slot its user, written by `write` (or its writer in `sources`); the slots
        this statement created (with `returning`). A taken slot is left as it is, without waiting
        for its holder's lock (ON CONFLICT DO NOTHING)."""
        if not claims:
            return set()
        if sources is None:
            batch = self._rows([[a, r, u] for (a, r), u in claims.items()])
            stamp = self._stamp(write, now)
        else:
            stamp_of = _Stamps(write)
            batch = self._rows([[a, r, u, *stamp_of(sources.get((a, r)))] for (a, r), u in claims.items()])
            stamp = self._row_stamp(batch, 3, now)
        rows = (
            select(batch.text(0), batch.text(1), batch.text(2), *stamp)
            # WHERE: SQLite would read "ON CONFLICT" after a bare FROM as a join constraint.
            .where(batch.text(0).is_not(None))
        )
        if self._dialect == "postgresql":  # lock order; SQLite writers are serialised anyway
            rows = rows.order_by(batch.text(0), batch.text(1))
        statement = (
            insert_of(self._session, _ASSIGNMENTS)
            .from_select(["account_id", "role_key", "user_id", "source", "source_ref", "update_time"], rows)
            .on_conflict_do_nothing()
        )
        if not returning:
            self._session.execute(statement)
            return set()
        returned = statement.returning(_ASSIGNMENTS.c.account_id, _ASSIGNMENTS.c.role_key)
        return {(a, r) for a, r in self._session.execute(returned).all()}

    def holders(self, slots: Iterable[Slot], *, lock: bool = True) -> dict[Slot, Assignment]:
        """The holders of these slots, locked for update in key order (unless not `lock`, for a
        read); free slots are absent."""
        keys = [[a, r] for a, r in slots]
        if not keys:
            return {}
        batch, a = self._rows(keys), _ASSIGNMENTS.c
        query = (
            select(a.account_id, a.role_key, a.user_id, a.source, a.source_ref, a.update_time)
            .join_from(_ASSIGNMENTS, batch.table, and_(a.account_id == batch.text(0), a.role_key == batch.text(1)))
            .order_by(a.account_id, a.role_key)
        )
        if lock:
            query = query.with_for_update(of=_ASSIGNMENTS)
        return {
            (row.account_id, row.role_key): Assignment(
                row.account_id, row.role_key, row.user_id, Source(row.source), row.source_ref, row.update_time
            )
            for row in self._session.execute(query).all()
        }

    def apply(
        self,
        holders: Mapping[Slot, str | None],
        write: WriteSource,
        now: dt.datetime,
        sources: Mapping[Slot, WriteSource] | None = None,
    ) -> None:
        """Make `holders` the slots' users (None: empty the slot), written by `write` (or their
        writer in `sources`) at `now`. Every slot named exists and is locked by this transaction."""
        c = _ASSIGNMENTS.c
        emptied = [[a, r] for (a, r), u in holders.items() if u is None]
        if sources is None:
            moved = [[a, r, u] for (a, r), u in holders.items() if u is not None]
        else:
            stamp_of = _Stamps(write)
            moved = [[a, r, u, *stamp_of(sources.get((a, r)))] for (a, r), u in holders.items() if u is not None]
        if moved:
            batch = self._rows(moved)
            source, source_ref, update_time = (
                self._stamp(write, now) if sources is None else self._row_stamp(batch, 3, now)
            )
            self._session.execute(
                update(_ASSIGNMENTS)
                .values(user_id=batch.text(2), source=source, source_ref=source_ref, update_time=update_time)
                .where(c.account_id == batch.text(0), c.role_key == batch.text(1))
                .execution_options(synchronize_session=False)
            )
        if emptied:
            batch = self._rows(emptied)
            self._session.execute(
                delete(_ASSIGNMENTS)
                .where(tuple_(c.account_id, c.role_key).in_(select(batch.text(0), batch.text(1))))
                .execution_options(synchronize_session=False)
            )

    def record(self, changes: Sequence[SlotChange], write: WriteSource, actor: str, now: dt.datetime) -> None:
        """A history row and an outbox event per change, in the order of `changes`, each with its
        change's writer (SlotChange.source, else `write`)."""
        if not changes:
            return
        if all(c.source is None for c in changes):
            batch = self._rows(
                [[c.slot[0], c.slot[1], c.user_id, c.previous_user_id, i] for i, c in enumerate(changes)]
            )
            source, source_ref, change_time = self._stamp(write, now)
        else:
            stamp_of = _Stamps(write)
            batch = self._rows(
                [
                    [c.slot[0], c.slot[1], c.user_id, c.previous_user_id, i, *stamp_of(c.source)]
                    for i, c in enumerate(changes)
                ]
            )
            source, source_ref, change_time = self._row_stamp(batch, 5, now)
        account, role, user, previous, order = (
            batch.text(0),
            batch.text(1),
            batch.text(2),
            batch.text(3),
            batch.integer(4),
        )
        columns = ["account_id", "role_key", "user_id", "previous_user_id", "source", "source_ref", "actor"]
        self._session.execute(
            insert(_HISTORY).from_select(
                [*columns, "change_time"],
                select(account, role, user, previous, source, source_ref, text_value(actor), change_time).order_by(
                    order
                ),
            )
        )

        def name(user_id: Any) -> Any:
            return case((user_id.is_(None), text_value("")), else_=text_value("users/") + user_id)

        data = json_object(self._dialect)(
            text_value("account_id"),
            account,
            text_value("role"),
            text_value("roles/") + role,
            text_value("user"),
            name(user),
            text_value("previous_user"),
            name(previous),
            text_value("source"),
            source,
            text_value("source_ref"),
            source_ref,
            text_value("attribute"),
            role + text_value(ATTRIBUTE_SUFFIX),
        )
        kind = case((user.is_(None), text_value("assignment.cleared")), else_=text_value("assignment.set"))
        subject = text_value("accounts/") + account + text_value("/roles/") + role
        self._events.append_select(select(kind, subject, text_value(actor), data, change_time).order_by(order))


class _Stamps:
    """(source, source_ref) of a row: its own writer's, else the batch's; worked out once per writer
    (a batch of 10,000 rows names a few, and an enum's .value costs a microsecond)."""

    def __init__(self, write: WriteSource) -> None:
        self._write = write
        self._known: dict[int, tuple[str, str]] = {}

    def __call__(self, own: WriteSource | None) -> tuple[str, str]:
        writer = own or self._write
        stamp = self._known.get(id(writer))  # the writers outlive the call: their ids are stable
        if stamp is None:
            stamp = self._known[id(writer)] = (writer.source.value, writer.source_ref)
        return stamp
