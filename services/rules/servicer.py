"""PlayService over gRPC: protobuf in, domain calls, protobuf out."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import grpc
from google.protobuf.empty_pb2 import Empty

from services.rules import convert
from services.rules.adapters.repository import RunFilter, list_key, run_key
from services.rules.adapters.users_client import UsersClient
from services.rules.domain.events import MAX_ACCOUNT_ID
from services.rules.domain.model import Play, play_not_found
from services.rules.domain.permissions import ensure_can_run_manually
from services.rules.domain.priority import Rivals
from services.rules.domain.runs import PlayRun
from services.rules.service_layer import plays as play_cases
from services.rules.service_layer.directory import caller_of
from services.rules.service_layer.dry_run import dry_run
from services.rules.service_layer.ingest import PlayCatalog
from services.rules.service_layer.plays import UPDATABLE, validate
from services.rules.service_layer.segments import run_manually
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.runtime.errors import InvalidArgument, Violations
from services.runtime.names import format_name, parse_name, validate_request_id
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import enum_filter, merge_masked, update_paths
from steward.rules.v1 import plays_pb2, plays_pb2_grpc

MAX_TEST_EVENTS = 1000


class PlayServicer(plays_pb2_grpc.PlayServiceServicer):
    def __init__(
        self,
        db: Database,
        directory: UsersClient,
        catalog: PlayCatalog,
        on_recorded: Callable[[], None],
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        manual_runs_per_minute: int = 100,
    ) -> None:
        self._db = db
        self._directory = directory
        self._catalog = catalog
        self._on_recorded = on_recorded
        self._clock = clock
        self._per_minute = manual_runs_per_minute

    def _uow(self, write: bool = True) -> RulesUnitOfWork:
        return RulesUnitOfWork(self._db, write=write)

    def _reply(self, play: Play, with_stats: bool = True) -> plays_pb2.Play:
        with self._uow(write=False) as uow:
            stats = uow.plays.stats([play.id])[play.id] if with_stats else None
            rivals = Rivals(uow.plays.active())  # for the PLAYS_COMPETE warning
        return convert.play_to_proto(play, stats, rivals)

    def CreatePlay(self, request: plays_pb2.CreatePlayRequest, context: grpc.ServicerContext) -> plays_pb2.Play:
        validate_request_id(request.request_id)
        now = self._clock()
        play, shape = convert.play_from_proto(request.play, str(uuid.uuid4()), now)
        caller = caller_of(current_principal())
        saved = play_cases.create_play(
            self._uow, self._directory, caller, play, request.validate_only, request.request_id, shape
        )
        return self._reply(saved, with_stats=not request.validate_only)

    def GetPlay(self, request: plays_pb2.GetPlayRequest, context: grpc.ServicerContext) -> plays_pb2.Play:
        play_id = parse_name("plays", request.name)
        with self._uow(write=False) as uow:
            play = uow.plays.get(play_id)
        if play is None:
            raise play_not_found(play_id)
        return self._reply(play)

    def ListPlays(
        self, request: plays_pb2.ListPlaysRequest, context: grpc.ServicerContext
    ) -> plays_pb2.ListPlaysResponse:
        status = enum_filter(request.status, convert.STATUS_FROM_PROTO, "status")

        def fetch(page: PageRequest) -> list[Play]:
            with self._uow(write=False) as uow:
                return uow.plays.list_page(
                    limit=page.limit, after=page.after, status=status, display_name=request.display_name
                )

        filters = {"status": request.status, "display_name": request.display_name}
        plays, next_token = list_response_page(request.page_size, request.page_token, filters, 2, fetch, list_key)
        with self._uow(write=False) as uow:
            stats = uow.plays.stats([p.id for p in plays])
            rivals = Rivals(uow.plays.active())
        return plays_pb2.ListPlaysResponse(
            plays=[convert.play_to_proto(p, stats[p.id], rivals) for p in plays], next_page_token=next_token
        )

    def UpdatePlay(self, request: plays_pb2.UpdatePlayRequest, context: grpc.ServicerContext) -> plays_pb2.Play:
        validate_request_id(request.request_id)
        play_id = parse_name("plays", request.play.name, "play.name")
        paths = update_paths(request.update_mask, UPDATABLE)
        with self._uow(write=False) as uow:
            current = uow.plays.get(play_id)
        if current is None:
            raise play_not_found(play_id)
        # The masked fields from the request over the rest of the play as it is.
        merged = merge_masked(convert.play_to_proto(current), request.play, paths)
        changes, shape = convert.play_from_proto(merged, play_id, self._clock())
        caller = caller_of(current_principal())
        updated = play_cases.update_play(
            self._uow,
            self._directory,
            caller,
            changes,
            paths,
            request.play.etag,
            request.validate_only,
            self._clock(),
            shape,
        )
        return self._reply(updated, with_stats=not request.validate_only)

    def DeletePlay(self, request: plays_pb2.DeletePlayRequest, context: grpc.ServicerContext) -> Empty:
        validate_request_id(request.request_id)
        play_id = parse_name("plays", request.name)
        play_cases.delete_play(self._uow, self._directory, caller_of(current_principal()), play_id, request.etag)
        return Empty()

    def TestPlay(self, request: plays_pb2.TestPlayRequest, context: grpc.ServicerContext) -> plays_pb2.TestPlayResponse:
        problems = Violations()
        if not 1 <= len(request.events) <= MAX_TEST_EVENTS:
            problems.add("events", f"1 to {MAX_TEST_EVENTS} events", "EVENTS_INVALID")
        events = [
            convert.event_from_proto(e, self._clock(), f"events[{i}]", problems, published=False)
            for i, e in enumerate(request.events)
        ]
        problems.raise_if_any("the test events are invalid")
        subject = request.WhichOneof("subject")
        if subject == "play":
            play, shape = convert.play_from_proto(request.play, request.play.uid or str(uuid.uuid4()), self._clock())
            validate(self._directory, play, shape, lambda: self._uow(write=False))
            plays = [play]
        else:
            with self._uow(write=False) as uow:
                if subject == "name":
                    play_id = parse_name("plays", request.name)
                    found = uow.plays.get(play_id)
                    if found is None:
                        raise play_not_found(play_id)
                    plays = [found]
                else:
                    plays = uow.plays.active()
        matches = dry_run(lambda: self._uow(write=False), plays, events)
        return plays_pb2.TestPlayResponse(
            results=[
                plays_pb2.EventMatches(
                    index=i,
                    event_id=event.event_id,
                    matches=[
                        plays_pb2.PlayMatch(
                            play=m.play.name,
                            display_name=m.play.display_name,
                            actions=[
                                plays_pb2.PlannedAction(
                                    index=j, description=a.description, skipped_reason=a.skipped_reason, winner=a.winner
                                )
                                for j, a in enumerate(m.actions)
                            ],
                        )
                        for m in found_matches
                    ],
                )
                for i, (event, found_matches) in enumerate(zip(events, matches, strict=True))
            ]
        )

    def ListPlayRuns(
        self, request: plays_pb2.ListPlayRunsRequest, context: grpc.ServicerContext
    ) -> plays_pb2.ListPlayRunsResponse:
        where = RunFilter(
            play_id=parse_name("plays", request.play, "play") if request.play else "",
            account_id=request.account_id,
            outcome=enum_filter(request.outcome, convert.OUTCOME_FROM_PROTO, "outcome"),
            start_time=request.start_time.ToDatetime(tzinfo=convert.dt.UTC) if request.HasField("start_time") else None,
            end_time=request.end_time.ToDatetime(tzinfo=convert.dt.UTC) if request.HasField("end_time") else None,
        )

        def fetch(page: PageRequest) -> list[PlayRun]:
            with self._uow(write=False) as uow:
                return uow.runs.list_page(limit=page.limit, after=page.after, where=where)

        filters = {
            "play": request.play,
            "account_id": request.account_id,
            "outcome": request.outcome,
            "start": request.start_time.ToJsonString() if request.HasField("start_time") else "",
            "end": request.end_time.ToJsonString() if request.HasField("end_time") else "",
        }
        runs, next_token = list_response_page(request.page_size, request.page_token, filters, 2, fetch, run_key)
        return plays_pb2.ListPlayRunsResponse(runs=[convert.run_to_proto(r) for r in runs], next_page_token=next_token)

    def RunPlay(self, request: plays_pb2.RunPlayRequest, context: grpc.ServicerContext) -> plays_pb2.PlayRun:
        problems = Violations()
        play_id = ""
        try:
            play_id = parse_name("plays", request.name)
        except InvalidArgument as error:
            problems.items += error.field_violations
        if not 1 <= len(request.account_id) <= MAX_ACCOUNT_ID or request.account_id.strip() != request.account_id:
            problems.add("account_id", f"1 to {MAX_ACCOUNT_ID} characters, no surrounding spaces", "ACCOUNT_ID_INVALID")
        if not request.request_id:
            problems.add("request_id", "required: a retry with the same id returns the same run", "REQUEST_ID_REQUIRED")
        else:
            try:
                validate_request_id(request.request_id)
            except InvalidArgument as error:
                problems.items += error.field_violations
        problems.raise_if_any("invalid RunPlay request")
        caller = caller_of(current_principal())
        ensure_can_run_manually(caller)
        with self._uow() as uow:
            run, started = run_manually(
                uow,
                self._catalog,
                play_id,
                request.account_id,
                request.request_id,
                caller.subject,
                self._clock(),
                self._per_minute,
            )
            uow.commit()
        if started:
            self._on_recorded()
        return convert.run_to_proto(run)


__all__ = ["PlayServicer", "format_name"]
