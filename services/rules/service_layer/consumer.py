"""Consumes the users service's event stream: assignment changes become ASSIGNMENT_CHANGED
account events (evaluated like published ones), and a PLAY resource handed to another owner
(reassignment) changes the play's owner. Each event is handled in one transaction together
with the stored cursor, so a restart resumes exactly after the last event handled.

One replica consumes at a time, the holder of the workers' lease; the cursor is saved under
its fence, so a replica that lost the lease cannot move the cursor or record an event twice."""

from __future__ import annotations

import datetime as dt
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
from services.runtime.db import Database, utcnow
from services.runtime.leases import LeaseLost, WorkerLease
from services.runtime.logging import get_logger
from steward.users.v1 import events_pb2

log = get_logger("steward.rules.consumer")
CURSOR = "users.events"
TYPES = ("assignment.set", "assignment.cleared", "resource.owner_changed")
PLAY_RESOURCE = "resources/play/"


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
                for event in self._stream:
                    if self._stop.is_set() or not self._lease.held:
                        break
                    self.handle(event)
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

    def handle(self, event: events_pb2.Event) -> None:
        data = MessageToDict(event.data) if event.HasField("data") else {}
        now = self._clock()
        recorded = False
        with RulesUnitOfWork(self._db) as uow:
            self._lease.fence(uow.session)
            if event.type.startswith("assignment.") and data.get("account_id"):
                occurred = event.create_time.ToDatetime(tzinfo=dt.UTC) if event.HasField("create_time") else now
                published = ingest(uow, self._catalog, [assignment_event(event.cursor, occurred, data)], now)
                recorded = any(p.matched_plays for p in published)
            elif event.type == "resource.owner_changed" and str(data.get("resource", "")).startswith(PLAY_RESOURCE):
                play_id = str(data["resource"]).removeprefix(PLAY_RESOURCE)
                uow.plays.set_owner(play_id, str(data.get("owner", "")).removeprefix("users/"), now)
            uow.cursors.set(CURSOR, event.cursor, now)
            uow.commit()
        metrics.USERS_EVENTS_CONSUMED.inc()
        if recorded:
            self._on_recorded()
