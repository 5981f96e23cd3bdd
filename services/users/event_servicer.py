"""EventService: the outbox as a resumable, live server stream."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from google.protobuf import struct_pb2

from services.runtime.auth import current_principal
from services.runtime.db import Database
from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.protobuf import timestamp
from services.users.adapters.event_log import StoredEvent
from services.users.domain.permissions import ensure_can_watch_events
from services.users.service_layer.actors import resolve_actor
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import events_pb2, events_pb2_grpc

BATCH = 500


def parse_cursor(cursor: str) -> int:
    if cursor == "":
        return 0
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidArgument(
            "CURSOR_INVALID",
            "after_cursor must be a cursor this stream returned",
            field_violations=[FieldViolation("after_cursor", "not a cursor of this stream", "CURSOR_INVALID")],
        )
    return int(cursor)


def event_to_proto(event: StoredEvent) -> events_pb2.Event:
    data = struct_pb2.Struct()
    data.update(event.data)
    return events_pb2.Event(
        cursor=str(event.seq),
        type=event.type,
        subject=event.subject,
        actor=event.actor,
        create_time=timestamp(event.create_time),
        data=data,
        traceparent=event.traceparent,
    )


class EventServicer(events_pb2_grpc.EventServiceServicer):
    """Also a background worker of the runtime: on shutdown it ends every open stream, so that
    draining does not wait out the grace period for watchers that never finish on their own."""

    def __init__(self, db: Database, poll_seconds: float = 0.1) -> None:
        self._db = db
        self._poll = poll_seconds
        self._stopping = threading.Event()

    def start(self) -> None:
        self._stopping.clear()

    def stop(self, timeout: float) -> None:
        self._stopping.set()

    def WatchEvents(
        self, request: events_pb2.WatchEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[events_pb2.Event]:
        cursor = parse_cursor(request.after_cursor)
        types = list(request.types)
        with UsersUnitOfWork(self._db, write=False) as uow:
            ensure_can_watch_events(resolve_actor(uow, current_principal()))
        while context.is_active() and not self._stopping.is_set():
            with UsersUnitOfWork(self._db, write=False) as uow:
                batch = uow.events.after(cursor, types, BATCH)
            for event in batch:
                yield event_to_proto(event)
                cursor = event.seq
            if len(batch) < BATCH:
                self._stopping.wait(self._poll)
