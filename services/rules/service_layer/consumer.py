"""Consumes the users service's event stream: assignment changes become ASSIGNMENT_CHANGED
account events (evaluated like published ones), and a PLAY resource handed to another owner
(reassignment) changes the play's owner. What the stream has delivered, up to BATCH events, is
handled in one transaction together with the stored cursor (as PublishEvents stores a batch),
so a restart resumes exactly after the last event handled and a burst costs a few transactions.

One replica consumes at a time, the holder of the workers' lease; the cursor is saved under
its fence, so a replica that lost the lease cannot move the cursor or record an event twice.
A reader thread drains the stream into a bounded queue while the previous batch is recorded."""

from __future__ import annotations

import contextlib
import datetime as dt
import queue
import threading
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from services.rules import metrics
from services.rules.adapters.users_client import UsersClient
from services.rules.domain.events import ROLE_SUFFIX, AccountEvent
from services.rules.domain.model import EventType
from services.rules.service_layer.ingest import PlayCatalog, ingest
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime import tracing
from services.runtime.db import Database, utcnow
from services.runtime.leases import LeaseLost, WorkerLease
from services.runtime.logging import get_logger
from steward.users.v1 import events_pb2

log = get_logger("steward.rules.consumer")
CURSOR = "users.events"
TYPES = ("assignment.set", "assignment.cleared", "resource.owner_changed")
PLAY_RESOURCE = "resources/play/"
BATCH = 500  # events per transaction, at most


def assignment_event(cursor: str, occurred_at: dt.datetime, data: dict[str, Any]) -> AccountEvent:
    role_key = str(data.get("role", "")).removeprefix("roles/")
    user = str(data.get("user", ""))
    attributes = {name: str(data.get(name, "")) for name in ("role", "user", "previous_user", "source", "source_ref")}
    attributes[f"{role_key}{ROLE_SUFFIX}"] = user.removeprefix("users/")
    return AccountEvent(
        event_id=f"users.events/{cursor}",
        account_id=str(data.get("account_id", "")),
        type=EventType.ASSIGNMENT_CHANGED,
        custom_type="",
        occurred_at=occurred_at,
        attributes=attributes,
    )


class UsersEventConsumer:
    def __init__(
        self,
        db: Database,
        directory: UsersClient,
        catalog: PlayCatalog,
        on_recorded: Callable[[], None],
        lease: WorkerLease,
        *,
        reconnect_seconds: float = 1.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._directory = directory
        self._catalog = catalog
        self._on_recorded = on_recorded
        self._lease = lease
        lease.on_lost(self._cancel_stream)
        self._reconnect = reconnect_seconds
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: Any = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rules-users-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._cancel_stream()
        if self._thread is not None:
            self._thread.join(timeout)

    def _cancel_stream(self) -> None:
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._lease.wait_held(self._reconnect):
                continue  # another replica consumes
            try:
                with RulesUnitOfWork(self._db, write=False) as uow:
                    cursor = uow.cursors.get(CURSOR)
                self._stream = self._directory.watch(cursor, TYPES)
                self._consume(self._stream)
            except LeaseLost:
                log.info("consumer_standing_by", reason="another replica took the lease")
            except grpc.RpcError as error:  # the users service is away, restarting or rebalancing
                if not self._stop.is_set() and self._lease.held:
                    # Servers end connections past their max age on purpose: resume quietly.
                    quiet = error.code() == grpc.StatusCode.UNAVAILABLE
                    (log.info if quiet else log.warning)("users_stream_interrupted", code=error.code().name)
            except Exception as error:
                if not self._stop.is_set() and self._lease.held:
                    log.warning("users_stream_interrupted", error=str(error))
            finally:
                self._stream = None
            self._stop.wait(self._reconnect)

    def _consume(self, stream: Any) -> None:
        delivered: queue.Queue[Any] = queue.Queue(maxsize=2 * BATCH)
        reader = threading.Thread(target=_read, args=(stream, delivered), name="rules-users-events-reader", daemon=True)
        reader.start()
        try:
            while not self._stop.is_set() and self._lease.held:
                batch = _take(delivered, BATCH, self._reconnect)
                events = [e for e in batch if isinstance(e, events_pb2.Event)]
                if events:
                    self.handle(*events)
                if len(events) < len(batch):  # the stream ended: its error, or None
                    ended = batch[-1]
                    if isinstance(ended, BaseException):
                        raise ended
                    return
        finally:
            stream.cancel()
            while reader.is_alive():  # unblock its last put, and let it end
                with contextlib.suppress(queue.Empty):
                    delivered.get_nowait()
                reader.join(0.01)

    def handle(self, *events: events_pb2.Event) -> None:
        """Records the events in order, and the cursor after the last, in one transaction."""
        now = self._clock()
        recorded = False
        with (
            tracing.span("rules.consume_users_events", [e.traceparent for e in events], link=True, events=len(events)),
            RulesUnitOfWork(self._db) as uow,
        ):
            self._lease.fence(uow.session)
            changes: list[AccountEvent] = []
            for event in events:
                data = MessageToDict(event.data) if event.HasField("data") else {}
                if event.type.startswith("assignment.") and data.get("account_id"):
                    occurred = event.create_time.ToDatetime(tzinfo=dt.UTC) if event.HasField("create_time") else now
                    changes.append(assignment_event(event.cursor, occurred, data))
                elif event.type == "resource.owner_changed" and str(data.get("resource", "")).startswith(PLAY_RESOURCE):
                    # Runs of the changes before it keep the owner they matched with.
                    recorded |= self._ingest(uow, changes, now)
                    changes = []
                    play_id = str(data["resource"]).removeprefix(PLAY_RESOURCE)
                    uow.plays.set_owner(play_id, str(data.get("owner", "")).removeprefix("users/"), now)
            recorded |= self._ingest(uow, changes, now)
            uow.cursors.set(CURSOR, events[-1].cursor, now)
            uow.commit()
        metrics.USERS_EVENTS_CONSUMED.inc(len(events))
        if recorded:
            self._on_recorded()

    def _ingest(self, uow: RulesUnitOfWork, changes: list[AccountEvent], now: dt.datetime) -> bool:
        """True when a change matched a play (the executor has runs to apply)."""
        return bool(changes) and any(p.matched_plays for p in ingest(uow, self._catalog, changes, now))


def _read(stream: Any, delivered: queue.Queue[Any]) -> None:
    """Moves the stream's events into the queue, then what ended it (an error, or None)."""
    try:
        for event in stream:
            delivered.put(event)
        delivered.put(None)
    except BaseException as error:  # grpc.RpcError when cancelled or broken: the loop decides
        delivered.put(error)


def _take(delivered: queue.Queue[Any], limit: int, wait_seconds: float) -> list[Any]:
    """What has been delivered, up to `limit` items, waiting up to `wait_seconds` for the first;
    stops after an item that ends the stream (None or an error)."""
    try:
        first = delivered.get(timeout=wait_seconds)
    except queue.Empty:
        return []
    batch = [first]
    while isinstance(batch[-1], events_pb2.Event) and len(batch) < limit:
        try:
            batch.append(delivered.get_nowait())
        except queue.Empty:
            break
    return batch
