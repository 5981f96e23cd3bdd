"""AccountEventService over gRPC: events in, recorded and evaluated before the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import grpc

from services.rules import convert
from services.rules.domain.events import MAX_ACCOUNT_ID, check_event
from services.rules.domain.permissions import ensure_can_publish
from services.rules.service_layer.directory import caller_of
from services.rules.service_layer.ingest import PlayCatalog, Published, publish
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.runtime.errors import NotFound, Violations
from steward.rules.v1 import events_pb2, events_pb2_grpc

MAX_BATCH = 1000


def _result(published: Published) -> events_pb2.PublishResult:
    return events_pb2.PublishResult(
        event_id=published.event_id, duplicate=published.duplicate, matched_plays=published.matched_plays
    )


class AccountEventServicer(events_pb2_grpc.AccountEventServiceServicer):
    def __init__(
        self,
        db: Database,
        catalog: PlayCatalog,
        on_recorded: Callable[[], None],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._catalog = catalog
        self._on_recorded = on_recorded
        self._clock = clock

    def _publish(self, messages: list[events_pb2.AccountEvent], path: str) -> list[Published]:
        ensure_can_publish(caller_of(current_principal()))
        now = self._clock()
        problems = Violations()
        events = []
        for index, message in enumerate(messages):
            where = path.format(index)
            event = convert.event_from_proto(message, now, where, problems)
            # An unspecified or unknown type is reported by itself, not also as a custom_type problem.
            check_event(event, where, problems, known_type=message.type in convert.EVENT_TYPE_FROM_PROTO)
            events.append(event)
        problems.raise_if_any("invalid events; none was recorded")
        return publish(lambda: RulesUnitOfWork(self._db), self._catalog, events, now, self._on_recorded)

    def PublishEvent(
        self, request: events_pb2.PublishEventRequest, context: grpc.ServicerContext
    ) -> events_pb2.PublishEventResponse:
        [published] = self._publish([request.event], "event")
        return events_pb2.PublishEventResponse(result=_result(published))

    def PublishEvents(
        self, request: events_pb2.PublishEventsRequest, context: grpc.ServicerContext
    ) -> events_pb2.PublishEventsResponse:
        if not 1 <= len(request.events) <= MAX_BATCH:
            raise convert.bad_argument("events", f"1 to {MAX_BATCH} events", "BATCH_SIZE_INVALID")
        published = self._publish(list(request.events), "events[{}]")
        return events_pb2.PublishEventsResponse(results=[_result(p) for p in published])

    def GetAccountEvent(
        self, request: events_pb2.GetAccountEventRequest, context: grpc.ServicerContext
    ) -> events_pb2.AccountEvent:
        event_id = request.name.removeprefix("accountEvents/")
        if not request.name.startswith("accountEvents/") or not event_id:
            raise convert.bad_argument("name", "must look like 'accountEvents/<event_id>'", "RESOURCE_NAME_INVALID")
        with RulesUnitOfWork(self._db, write=False) as uow:
            stored = uow.events.get(event_id)
            if stored is None:
                raise NotFound("EVENT_NOT_FOUND", f"no event {request.name}", metadata={"event": request.name})
            pending = uow.runs.pending_for_event(stored.seq)
        return convert.event_to_proto(stored, pending)

    def GetAccountState(
        self, request: events_pb2.GetAccountStateRequest, context: grpc.ServicerContext
    ) -> events_pb2.AccountState:
        account_id = request.account_id
        if not 1 <= len(account_id) <= MAX_ACCOUNT_ID:
            raise convert.bad_argument("account_id", f"1 to {MAX_ACCOUNT_ID} characters", "ACCOUNT_ID_INVALID")
        with RulesUnitOfWork(self._db, write=False) as uow:
            self._catalog.refresh(uow)
            state = uow.accounts.states([account_id]).get(account_id)
            if state is None:
                raise NotFound(
                    "ACCOUNT_NOT_FOUND", f"no event has named account {account_id}", metadata={"account_id": account_id}
                )
            segments = uow.segments.members_of([account_id], self._catalog.segment_ids)[account_id]
        return convert.account_state_to_proto(account_id, state, sorted(segments))
