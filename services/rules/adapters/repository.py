"""Loads and stores plays, account events and state, play runs and stream cursors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from services.rules.adapters.orm import (
    AccountAttributeRecord,
    AccountEventRecord,
    AccountRecord,
    ConsumerCursorRecord,
    PlayCatalogRecord,
    PlayRecord,
    PlayRunRecord,
    PlayVersionRecord,
    RateWindowRecord,
    SegmentMemberRecord,
)
from services.rules.domain.events import AccountEvent, AccountState
from services.rules.domain.model import EventType, Play, PlayStatus, Trigger
from services.rules.domain.runs import ActionResult, PlayRun, RunOutcome
from services.rules.domain.segments import ActivationScope, TriggerKind
from services.runtime import tracing
from services.runtime.db import flush, insert_of, keyset, table_of
from services.runtime.pagination import Key
from services.runtime.partitions import account_slot
from services.runtime.sealing import Keyring, is_sealed

# Every writer of events and account state takes it (PostgreSQL): the engine compares and
# updates account state, which must not interleave between two transactions.
_INGEST_LOCK = 0x52554C4553  # "RULES"


def _play(row: PlayRecord) -> Play:
    return Play(
        id=row.id,
        display_name=row.display_name,
        description=row.description,
        owner_id=row.owner_id,
        origin_team=row.origin_team,
        status=PlayStatus(row.status),
        trigger=Trigger(
            EventType(row.trigger_event_type) if row.trigger_event_type else None,
            row.trigger_custom_event_type,
            row.criteria,
            TriggerKind(row.trigger_kind or TriggerKind.EVENT.value),
            ActivationScope(row.activation or ActivationScope.NEW_ONLY.value),
        ),
        actions=list(row.actions or []),
        create_time=row.create_time,
        update_time=row.update_time,
        version=row.version,
        webhook_secret=row.webhook_secret or "",
        priority=row.priority or 0,
    )


def _copy_into(row: PlayRecord, play: Play, keyring: Keyring) -> None:
    row.display_name = play.display_name
    row.description = play.description
    row.owner_id = play.owner_id
    row.origin_team = play.origin_team
    row.status = play.status.value
    row.trigger_event_type = play.trigger.event_type.value if play.trigger.event_type else ""
    row.trigger_custom_event_type = play.trigger.custom_event_type
    row.trigger_kind = play.trigger.kind.value
    row.activation = play.trigger.activation.value
    # A play read from the database carries its key as stored (sealed: only the executor opens
    # it); a key set through the API arrives in the clear and is sealed here.
    secret = play.webhook_secret
    row.webhook_secret = secret if is_sealed(secret) else keyring.seal(secret)
    row.criteria = play.trigger.criteria
    row.actions = play.actions
    row.priority = play.priority
    row.update_time = play.update_time


class PlayRepository:
    def __init__(self, session: Session, keyring: Keyring) -> None:
        self._session = session
        self._keyring = keyring

    def get(self, play_id: str, *, for_update: bool = False) -> Play | None:
        row = self._session.get(PlayRecord, play_id, with_for_update=for_update)
        return None if row is None else _play(row)

    def get_by_display_name(self, display_name: str) -> Play | None:
        row = self._session.scalars(select(PlayRecord).where(PlayRecord.display_name == display_name)).first()
        return None if row is None else _play(row)

    def add(self, play: Play) -> None:
        row = PlayRecord(id=play.id, create_time=play.create_time)
        _copy_into(row, play, self._keyring)
        self._session.add(row)
        flush(self._session)
        play.version = row.version
        self._changed(play)

    def save(self, play: Play) -> None:
        row = self._session.get(PlayRecord, play.id)
        assert row is not None, "save() follows get()"
        _copy_into(row, play, self._keyring)
        flush(self._session)
        play.version = row.version
        self._changed(play)

    def delete(self, play_id: str) -> None:
        row = self._session.get(PlayRecord, play_id)
        if row is not None:
            self._session.delete(row)
            flush(self._session)
            self._catalog_changed()

    def _changed(self, play: Play) -> None:
        self._session.add(PlayVersionRecord(play_id=play.id, version=play.version, plan=play.plan()))
        flush(self._session)
        self._catalog_changed()

    def plans(self, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], dict[str, Any]]:
        wanted = set(keys)
        if not wanted:
            return {}
        query = select(PlayVersionRecord).where(PlayVersionRecord.play_id.in_({k[0] for k in wanted}))
        rows = self._session.scalars(query)
        return {(r.play_id, r.version): dict(r.plan) for r in rows if (r.play_id, r.version) in wanted}

    def _catalog_changed(self) -> None:
        self._session.execute(update(PlayCatalogRecord).values(version=PlayCatalogRecord.version + 1))

    def webhook_secret(self, play_id: str) -> str:
        """In the clear (FailedPrecondition SECRET_KEY_UNKNOWN when no key opens it)."""
        stored = self._session.scalar(select(PlayRecord.webhook_secret).where(PlayRecord.id == play_id))
        return self._keyring.open(str(stored or ""))

    def reseal_all(self) -> int:
        """Every webhook key sealed again with the first key (rotation), or for the first time.
        The plays' versions do not move: they did not change."""
        table = table_of(PlayRecord)
        query = select(table.c.id, table.c.webhook_secret).where(table.c.webhook_secret != "")
        rows = self._session.execute(query).all()
        for row in rows:
            resealed = self._keyring.reseal(row.webhook_secret)
            self._session.execute(update(table).where(table.c.id == row.id).values(webhook_secret=resealed))
        return len(rows)

    def catalog_version(self) -> int:
        return int(self._session.scalar(select(PlayCatalogRecord.version)) or 0)

    def active(self) -> list[Play]:
        query = select(PlayRecord).where(PlayRecord.status == PlayStatus.ACTIVE.value)
        return [_play(row) for row in self._session.scalars(query.order_by(PlayRecord.display_name))]

    def list_page(
        self, *, limit: int, after: Key | None, status: PlayStatus | None, display_name: str = ""
    ) -> list[Play]:
        query = select(PlayRecord)
        if status is not None:
            query = query.where(PlayRecord.status == status.value)
        if display_name:
            query = query.where(PlayRecord.display_name == display_name)
        query = keyset(query, (PlayRecord.display_name, PlayRecord.id), after, limit)
        return [_play(row) for row in self._session.scalars(query)]

    def stats(self, play_ids: Sequence[str]) -> dict[str, dict[RunOutcome, int]]:
        counts: dict[str, dict[RunOutcome, int]] = {pid: {} for pid in play_ids}
        if not play_ids:
            return counts
        query = (
            select(PlayRunRecord.play_id, PlayRunRecord.outcome, func.count())
            .where(PlayRunRecord.play_id.in_(list(play_ids)))
            .group_by(PlayRunRecord.play_id, PlayRunRecord.outcome)
        )
        for play_id, outcome, count in self._session.execute(query):
            counts[play_id][RunOutcome(outcome)] = int(count)
        return counts

    def set_owner(self, play_id: str, owner_id: str, now: dt.datetime) -> bool:
        row = self._session.get(PlayRecord, play_id)
        if row is None or row.owner_id == owner_id:
            return False
        row.owner_id, row.update_time = owner_id, now
        flush(self._session)
        self._changed(_play(row))
        return True


def list_key(play: Play) -> Key:
    return (play.display_name, play.id)


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: AccountEvent
    receive_time: dt.datetime
    matched_plays: list[str]


def _stored_event(row: AccountEventRecord) -> StoredEvent:
    event = AccountEvent(
        row.event_id,
        row.account_id,
        EventType(row.type),
        row.custom_type,
        row.occurred_at,
        dict(row.attributes),
        dict(row.previous),
    )
    return StoredEvent(row.seq, event, row.receive_time, list(row.matched_plays))


class EventRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def lock_for_ingest(self) -> None:
        if self._session.get_bind().dialect.name == "postgresql":
            self._session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INGEST_LOCK})

    def last_seq(self) -> int:
        return int(self._session.scalar(select(func.max(AccountEventRecord.seq))) or 0)

    def accounts_after(self, seq: int) -> set[str]:
        """The accounts of the events recorded after event `seq`."""
        query = select(AccountEventRecord.account_id).where(AccountEventRecord.seq > seq).distinct()
        return set(self._session.connection().scalars(query))

    def known_ids(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        query = select(AccountEventRecord.event_id).where(AccountEventRecord.event_id.in_(ids))
        return set(self._session.connection().scalars(query))

    def add_all(self, events: Sequence[AccountEvent], matched: Sequence[list[str]], now: dt.datetime) -> list[int]:
        """Stores events in order and returns their sequence numbers."""
        traceparent = tracing.current_traceparent() or None
        if not events:
            return []
        self._session.execute(
            insert(table_of(AccountEventRecord)),
            [
                {
                    "event_id": e.event_id,
                    "account_id": e.account_id,
                    "type": e.type.value,
                    "custom_type": e.custom_type,
                    "occurred_at": e.occurred_at,
                    "receive_time": now,
                    "attributes": e.attributes,
                    "previous": e.previous,
                    "matched_plays": plays,
                    "traceparent": traceparent,
                }
                for e, plays in zip(events, matched, strict=True)
            ],
        )
        query = select(AccountEventRecord.event_id, AccountEventRecord.seq).where(
            AccountEventRecord.event_id.in_([e.event_id for e in events])
        )
        seqs = {event_id: seq for event_id, seq in self._session.connection().execute(query)}
        return [seqs[e.event_id] for e in events]

    def get(self, event_id: str) -> StoredEvent | None:
        row = self._session.scalars(select(AccountEventRecord).where(AccountEventRecord.event_id == event_id)).first()
        return None if row is None else _stored_event(row)


_STATE_COLUMNS = (
    AccountRecord.account_id,
    AccountRecord.attributes,
    AccountRecord.attribute_times,
    AccountRecord.update_time,
    AccountRecord.next_time_check,
)


def _account_states(rows: Iterable[Any]) -> dict[str, AccountState]:
    return {
        r.account_id: AccountState(dict(r.attributes), dict(r.attribute_times or {}), r.update_time, r.next_time_check)
        for r in rows
    }


class AccountRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def states(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        query = select(*_STATE_COLUMNS).where(AccountRecord.account_id.in_(list(set(account_ids))))
        return _account_states(self._session.connection().execute(query))

    def page(self, after: str, limit: int) -> dict[str, AccountState]:
        """Accounts in id order after `after`: passes over every account go a page at a time."""
        query = select(*_STATE_COLUMNS).where(AccountRecord.account_id > after).order_by(AccountRecord.account_id)
        return _account_states(self._session.connection().execute(query.limit(limit)))

    def due(self, after: str, now: float, limit: int) -> dict[str, AccountState]:
        """Like page(), only the accounts whose next time check has come."""
        query = (
            select(*_STATE_COLUMNS)
            .where(AccountRecord.next_time_check <= now, AccountRecord.account_id > after)
            .order_by(AccountRecord.account_id)
        )
        return _account_states(self._session.connection().execute(query.limit(limit)))

    def schedule(self, checks: dict[str, float | None]) -> None:
        """Sets when each account's time-based segments are next checked."""
        if checks:
            table = table_of(AccountRecord)
            statement = (
                update(table).where(table.c.account_id == bindparam("key")).values(next_time_check=bindparam("at"))
            )
            self._session.connection().execute(statement, [{"key": a, "at": at} for a, at in checks.items()])

    def check_all_by(self, moment: float) -> None:
        """Every account is due a time check by this moment (a time-based play was activated)."""
        table = table_of(AccountRecord)
        due_later = or_(table.c.next_time_check.is_(None), table.c.next_time_check > moment)
        self._session.execute(update(table).where(due_later).values(next_time_check=moment))

    def save(self, states: dict[str, AccountState], existing: set[str], now: dt.datetime) -> None:
        table = table_of(AccountRecord)
        new = [
            {
                "account_id": a,
                "attributes": s.attributes,
                "attribute_times": s.times,
                "update_time": now,
                "next_time_check": s.next_time_check,
            }
            for a, s in states.items()
            if a not in existing
        ]
        if new:
            self._session.execute(insert(table), new)
        changed = [
            {"key": a, "state": states[a].attributes, "times": states[a].times, "check": states[a].next_time_check}
            for a in existing & states.keys()
        ]
        if changed:
            statement = (
                update(table)
                .where(table.c.account_id == bindparam("key"))
                .values(
                    attributes=bindparam("state"),
                    attribute_times=bindparam("times"),
                    update_time=now,
                    next_time_check=bindparam("check"),
                )
            )
            self._session.connection().execute(statement, changed)


class SegmentRepository:
    """Which accounts are in which active segment play's segment."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def members_of(self, account_ids: Iterable[str], play_ids: Iterable[str] | None = None) -> dict[str, set[str]]:
        accounts = list(set(account_ids))
        found: dict[str, set[str]] = {a: set() for a in accounts}
        if not accounts:
            return found
        query = select(SegmentMemberRecord.account_id, SegmentMemberRecord.play_id).where(
            SegmentMemberRecord.account_id.in_(accounts)
        )
        if play_ids is not None:
            query = query.where(SegmentMemberRecord.play_id.in_(list(play_ids)))
        for account_id, play_id in self._session.connection().execute(query):
            found[account_id].add(play_id)
        return found

    def apply(self, entered: Sequence[tuple[str, str]], left: Sequence[tuple[str, str]], now: dt.datetime) -> None:
        """(play_id, account_id) pairs that entered and that left."""
        table = table_of(SegmentMemberRecord)
        if entered:
            self._session.execute(insert(table), [{"play_id": p, "account_id": a, "since": now} for p, a in entered])
        if left:
            self._session.connection().execute(
                delete(table).where(table.c.play_id == bindparam("p"), table.c.account_id == bindparam("a")),
                [{"p": p, "a": a} for p, a in left],
            )

    def clear(self, play_id: str) -> None:
        self._session.execute(delete(table_of(SegmentMemberRecord)).where(SegmentMemberRecord.play_id == play_id))

    def count(self, play_id: str) -> int:
        query = select(func.count()).where(SegmentMemberRecord.play_id == play_id)
        return int(self._session.scalar(query) or 0)


class AttributeRepository:
    """The names account events have carried (what segment criteria may refer to)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def known(self, names: Iterable[str]) -> set[str]:
        wanted = list(set(names))
        if not wanted:
            return set()
        query = select(AccountAttributeRecord.name).where(AccountAttributeRecord.name.in_(wanted))
        return set(self._session.scalars(query))

    def add(self, names: Iterable[str], now: dt.datetime) -> None:
        """Adds names not stored yet (the caller holds the ingest lock: no racing insert)."""
        new = set(names)
        if new:
            self._session.execute(
                insert(table_of(AccountAttributeRecord)), [{"name": n, "first_seen": now} for n in sorted(new)]
            )


class RateWindowRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def take(self, caller: str, window_start: dt.datetime, limit: int) -> bool:
        """Counts one call of the caller in the window starting at window_start; False (and not
        counted) when the caller has made `limit` calls in it already. The row is locked until
        commit, so concurrent calls of one caller count one after the other."""
        first = (
            insert_of(self._session, table_of(RateWindowRecord))
            .values(caller=caller, window_start=window_start, count=0)
            .on_conflict_do_nothing(index_elements=["caller"])
        )
        self._session.execute(first)  # a caller's first call: two at once must not both insert
        row = self._session.get(RateWindowRecord, caller, with_for_update=True, populate_existing=True)
        assert row is not None
        if row.window_start != window_start:
            row.window_start, row.count = window_start, 0
        if row.count >= limit:
            return False
        row.count += 1
        flush(self._session)
        return True


def _run(row: Any, plan: dict[str, Any]) -> PlayRun:
    return PlayRun(
        id=row.id,
        play_id=row.play_id,
        play_version=row.play_version,
        event_seq=row.event_seq,
        event_id=row.event_id,
        account_id=row.account_id,
        plan=plan,
        create_time=row.create_time,
        outcome=RunOutcome(row.outcome),
        reason=row.reason,
        description=row.description,
        results=[
            ActionResult(r["index"], RunOutcome(r["outcome"]), r["reason"], r["description"], r["target"])
            for r in row.results or []
        ],
        choices=dict(row.choices or {}),
        attempts=row.attempts,
        next_attempt_time=row.next_attempt_time,
        finish_time=row.finish_time,
        traceparent=row.traceparent or "",
    )


def _results(run: PlayRun) -> list[dict[str, Any]]:
    return [
        {
            "index": r.index,
            "outcome": r.outcome.value,
            "reason": r.reason,
            "description": r.description,
            "target": r.target,
        }
        for r in run.results
    ]


@dataclass(frozen=True)
class RunFilter:
    play_id: str = ""
    account_id: str = ""
    outcome: RunOutcome | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


class RunRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add_all(self, runs: Sequence[tuple[PlayRun, int]]) -> None:
        """(run, position among the event's matches), in the trace of the call recording them."""
        if not runs:
            return
        traceparent = tracing.current_traceparent() or None
        self._session.execute(
            insert(table_of(PlayRunRecord)),
            [
                {
                    "id": run.id,
                    "play_id": run.play_id,
                    "play_version": run.play_version,
                    "event_seq": run.event_seq,
                    "position": position,
                    "event_id": run.event_id,
                    "account_id": run.account_id,
                    "account_slot": account_slot(run.account_id),
                    "outcome": run.outcome.value,
                    "reason": "",
                    "description": "",
                    "results": _results(run) if run.results else None,  # settled at evaluation
                    "choices": None,
                    "attempts": 0,
                    "next_attempt_time": None,
                    "create_time": run.create_time,
                    "finish_time": None,
                    "traceparent": traceparent,
                }
                for run, position in runs
            ],
        )

    def next_pending(self, limit: int, partitions: Collection[int] = (), count: int = 1) -> list[PlayRun]:
        """The oldest pending runs in event order; with `partitions`, only of those of `count`."""
        table = table_of(PlayRunRecord)
        query = select(table).where(table.c.outcome == RunOutcome.PENDING.value)
        if partitions and len(partitions) < count:
            query = query.where((table.c.account_slot % count).in_(sorted(partitions)))
        query = query.order_by(table.c.event_seq, table.c.position).limit(limit)
        return self._with_plans(list(self._session.connection().execute(query)))

    def save_all(self, runs: Sequence[PlayRun]) -> None:
        """Each run's progress, in one executemany."""
        if not runs:
            return
        table = table_of(PlayRunRecord)
        statement = (
            update(table)
            .where(table.c.id == bindparam("run_id"))
            .values(
                outcome=bindparam("outcome"),
                reason=bindparam("reason"),
                description=bindparam("description"),
                results=bindparam("results"),
                choices=bindparam("choices"),
                attempts=bindparam("attempts"),
                next_attempt_time=bindparam("next_attempt_time"),
                finish_time=bindparam("finish_time"),
            )
        )
        self._session.connection().execute(
            statement,
            [
                {
                    "run_id": run.id,
                    "outcome": run.outcome.value,
                    "reason": run.reason,
                    "description": run.description,
                    "results": _results(run),
                    "choices": run.choices,
                    "attempts": run.attempts,
                    "next_attempt_time": run.next_attempt_time,
                    "finish_time": run.finish_time,
                }
                for run in runs
            ],
        )

    def _with_plans(self, rows: Sequence[Any]) -> list[PlayRun]:
        plans = PlayRepository(self._session, Keyring()).plans((r.play_id, r.play_version) for r in rows)  # no secrets
        return [_run(row, plans.get((row.play_id, row.play_version), {})) for row in rows]

    def for_event(self, event_id: str) -> list[PlayRun]:
        query = select(PlayRunRecord).where(PlayRunRecord.event_id == event_id).order_by(PlayRunRecord.position)
        return self._with_plans(list(self._session.scalars(query)))

    def pending_for_event(self, event_seq: int) -> int:
        query = select(func.count()).where(
            PlayRunRecord.event_seq == event_seq, PlayRunRecord.outcome == RunOutcome.PENDING.value
        )
        return int(self._session.scalar(query) or 0)

    def list_page(self, *, limit: int, after: Key | None, where: RunFilter) -> list[PlayRun]:
        query = select(PlayRunRecord)
        if where.play_id:
            query = query.where(PlayRunRecord.play_id == where.play_id)
        if where.account_id:
            query = query.where(PlayRunRecord.account_id == where.account_id)
        if where.outcome is not None:
            query = query.where(PlayRunRecord.outcome == where.outcome.value)
        if where.start_time is not None:
            query = query.where(PlayRunRecord.create_time >= where.start_time)
        if where.end_time is not None:
            query = query.where(PlayRunRecord.create_time < where.end_time)
        bound = None if after is None else (dt.datetime.fromisoformat(str(after[0])), after[1])
        query = keyset(query, (PlayRunRecord.create_time, PlayRunRecord.id), bound, limit, descending=True)
        return [_run(row, {}) for row in self._session.scalars(query)]


def run_key(run: PlayRun) -> Key:
    return (run.create_time.isoformat(), run.id)


class CursorRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, name: str) -> str:
        row = self._session.get(ConsumerCursorRecord, name)
        return "" if row is None else row.cursor

    def set(self, name: str, cursor: str, now: dt.datetime) -> None:
        row = self._session.get(ConsumerCursorRecord, name)
        if row is None:
            self._session.add(ConsumerCursorRecord(name=name, cursor=cursor, update_time=now))
        else:
            row.cursor, row.update_time = cursor, now
        self._session.flush()
