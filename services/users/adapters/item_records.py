"""Idempotency records of the items of a batch (a BatchSetAssignments row, a BatchCreateTasks
item), each under its own request_id, in the `idempotency_records` table that single calls use.

A batch of N keyed items costs two statements, whatever N: one SELECT of the records its ids
already have (the ids travel as one JSON parameter, runtime/set_sql.JsonRows), and one INSERT
(executemany) of the new ones, in the batch's own transaction, so an item's record exists exactly
when its effect does. Two concurrent batches applying one item race on the primary key: the loser
fails with ABORTED, its whole transaction rolls back, and its retry answers from the winner's record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.runtime.db import table_of
from services.runtime.errors import Aborted
from services.runtime.set_sql import JsonRows
from services.users.adapters.orm import IdempotencyRecord

_RECORDS = table_of(IdempotencyRecord)


class ItemRecord(NamedTuple):
    request_id: str
    # runtime.idempotency.request_digest of the item: the same id with other content is refused.
    request_digest: str
    # The item's serialized answer (an AssignmentRowOutcome, a Task).
    response: bytes


class ItemRecords:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._dialect = session.get_bind().dialect.name

    def find(self, method: str, request_ids: Sequence[str]) -> dict[str, ItemRecord]:
        """The records of `method` that these request ids have, by request id (one SELECT)."""
        if not request_ids:
            return {}
        ids = JsonRows([[i] for i in request_ids], self._dialect, "ids")
        c = _RECORDS.c
        # IN, not a join: SQLite would read the records of `method` and scan the ids for each.
        query = select(c.request_id, c.request_digest, c.response).where(
            c.method == method, c.request_id.in_(select(ids.text(0)))
        )
        return {
            row.request_id: ItemRecord(row.request_id, row.request_digest, bytes(row.response))
            for row in self._session.execute(query).all()
        }

    def add(self, method: str, records: Sequence[ItemRecord], now: dt.datetime) -> None:
        """Store new records (one INSERT, executemany). A request id another transaction recorded
        meanwhile is ABORTED: the caller retries and is answered from that record. Inserted in
        request id order, so two batches sharing ids wait for each other rather than deadlock."""
        if not records:
            return
        records = sorted(records)
        try:
            self._session.execute(
                insert(_RECORDS),
                [
                    {
                        "method": method,
                        "request_id": r.request_id,
                        "request_digest": r.request_digest,
                        "response": r.response,
                        "create_time": now,
                    }
                    for r in records
                ],
            )
        except IntegrityError as conflict:
            raise Aborted(
                "REQUEST_ID_CONCURRENT",
                "another call applied one of these request ids at the same time; retry to get its answer",
            ) from conflict
