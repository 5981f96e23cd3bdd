"""PlayService over gRPC: protobuf in, domain calls, protobuf out."""

from __future__ import annotations

import grpc

from services.rules.adapters.repository import list_key
from services.rules.domain.model import EventType, Play, PlayStatus, play_not_found
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.db import Database
from services.runtime.names import format_name, parse_name
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import enum_filter, enum_maps, timestamp
from steward.rules.v1 import plays_pb2, plays_pb2_grpc

_STATUS, _STATUS_FROM_PROTO = enum_maps(PlayStatus, "PLAY_STATUS_", plays_pb2.PlayStatus)
_EVENT = enum_maps(EventType, "EVENT_TYPE_", plays_pb2.EventType)[0]


def play_to_proto(play: Play) -> plays_pb2.Play:
    return plays_pb2.Play(
        name=format_name("plays", play.id),
        uid=play.id,
        display_name=play.display_name,
        description=play.description,
        owner=format_name("users", play.owner_id),
        origin_team=play.origin_team,
        status=_STATUS[play.status],
        trigger=plays_pb2.Trigger(
            event_type=_EVENT[play.trigger.event_type], custom_event_type=play.trigger.custom_event_type
        ),
        version=play.version,
        create_time=timestamp(play.create_time),
        update_time=timestamp(play.update_time),
        etag=play.etag,
    )


class PlayServicer(plays_pb2_grpc.PlayServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    def GetPlay(self, request: plays_pb2.GetPlayRequest, context: grpc.ServicerContext) -> plays_pb2.Play:
        play_id = parse_name("plays", request.name)
        with RulesUnitOfWork(self._db, write=False) as uow:
            play = uow.plays.get(play_id)
        if play is None:
            raise play_not_found(play_id)
        return play_to_proto(play)

    def ListPlays(
        self, request: plays_pb2.ListPlaysRequest, context: grpc.ServicerContext
    ) -> plays_pb2.ListPlaysResponse:
        status = enum_filter(request.status, _STATUS_FROM_PROTO, "status")

        def fetch(page: PageRequest) -> list[Play]:
            with RulesUnitOfWork(self._db, write=False) as uow:
                return uow.plays.list_page(limit=page.limit, after=page.after, status=status)

        plays, next_token = list_response_page(
            request.page_size, request.page_token, {"status": request.status}, 2, fetch, list_key
        )
        return plays_pb2.ListPlaysResponse(plays=[play_to_proto(p) for p in plays], next_page_token=next_token)
