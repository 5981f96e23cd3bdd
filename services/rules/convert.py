"""Protobuf <-> rules domain. Criteria and actions travel as the authors' dict form."""

from __future__ import annotations

import datetime as dt
from typing import Any

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from services.rules.adapters.repository import StoredEvent
from services.rules.domain.events import AccountEvent, AccountState, check_event
from services.rules.domain.model import EventType, Play, PlayStatus, Trigger
from services.rules.domain.priority import Rivals
from services.rules.domain.runs import PlayRun, RunOutcome
from services.rules.domain.segments import ActivationScope, TriggerKind
from services.runtime.errors import FieldViolation, InvalidArgument, Violations
from services.runtime.names import format_name, parse_name
from services.runtime.protobuf import enum_maps, timestamp
from services.runtime.sealing import is_sealed
from steward.rules.v1 import events_pb2, plays_pb2

STATUS, STATUS_FROM_PROTO = enum_maps(PlayStatus, "PLAY_STATUS_", plays_pb2.PlayStatus)
EVENT_TYPE, EVENT_TYPE_FROM_PROTO = enum_maps(EventType, "EVENT_TYPE_", events_pb2.EventType)
OUTCOME, OUTCOME_FROM_PROTO = enum_maps(RunOutcome, "RUN_OUTCOME_", plays_pb2.RunOutcome)
KIND, KIND_FROM_PROTO = enum_maps(TriggerKind, "TRIGGER_KIND_", plays_pb2.TriggerKind)
SCOPE, SCOPE_FROM_PROTO = enum_maps(ActivationScope, "ACTIVATION_SCOPE_", plays_pb2.ActivationScope)


def whole_numbers(value: Any) -> Any:
    """Struct numbers are doubles; 3.0 is the 3 the author wrote (and shows back as 3)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def struct_dict(message: Struct) -> dict[str, Any]:
    return whole_numbers(json_format.MessageToDict(message))


def to_struct(value: dict[str, Any]) -> Struct:
    out = Struct()
    out.update(value)
    return out


def play_to_proto(
    play: Play, stats: dict[RunOutcome, int] | None = None, rivals: Rivals | None = None
) -> plays_pb2.Play:
    """`rivals`: the active plays, for the PLAYS_COMPETE warning."""
    segment = play.kind.is_segment
    trigger = plays_pb2.Trigger(
        kind=KIND[play.kind],
        event_type=EVENT_TYPE[play.trigger.event_type] if play.trigger.event_type else "EVENT_TYPE_UNSPECIFIED",
        custom_event_type=play.trigger.custom_event_type,
        activation=SCOPE[play.trigger.activation] if segment else "ACTIVATION_SCOPE_UNSPECIFIED",
    )
    if play.trigger.criteria is not None:
        trigger.criteria.CopyFrom(to_struct(play.trigger.criteria))
    message = plays_pb2.Play(
        name=play.name,
        uid=play.id,
        display_name=play.display_name,
        description=play.description,
        owner=format_name("users", play.owner_id) if play.owner_id else "",
        origin_team=play.origin_team,
        status=STATUS[play.status],
        trigger=trigger,
        version=play.version,
        create_time=timestamp(play.create_time),
        update_time=timestamp(play.update_time),
        etag=play.etag,
        actions=[json_format.ParseDict(a, plays_pb2.Action()) for a in play.actions],
        has_webhook_secret=bool(play.webhook_secret),
        warnings=[
            plays_pb2.PlayWarning(field=w.field, reason=w.reason, description=w.description)
            for w in [*play.warnings(), *(rivals.competing(play) if rivals is not None else [])]
        ],
        priority=play.priority,
    )
    if stats is not None:
        pending = stats.get(RunOutcome.PENDING, 0)
        applied, skipped, failed = (
            stats.get(o, 0) for o in (RunOutcome.APPLIED, RunOutcome.SKIPPED, RunOutcome.FAILED)
        )
        message.stats.CopyFrom(
            plays_pb2.PlayStats(
                matched=pending + applied + skipped + failed,
                applied=applied,
                skipped=skipped,
                failed=failed,
                pending=pending,
            )
        )
    return message


def play_from_proto(
    message: plays_pb2.Play, play_id: str, now: dt.datetime, path: str = "play"
) -> tuple[Play, Violations]:
    """The play, and the problems of its shape (names, enums), to be reported together with the
    definition's (domain) and the references' (users service)."""
    problems = Violations()
    owner = ""
    if message.owner:
        try:
            owner = parse_name("users", message.owner, f"{path}.owner")
        except InvalidArgument as error:
            problems.items += error.field_violations
    status = PlayStatus.DRAFT
    if message.status:
        if message.status not in STATUS_FROM_PROTO:
            problems.add(f"{path}.status", f"unknown value {message.status}", "ENUM_VALUE_INVALID")
        else:
            status = STATUS_FROM_PROTO[message.status]
    kind = TriggerKind.EVENT
    if message.trigger.kind:
        if message.trigger.kind not in KIND_FROM_PROTO:
            problems.add(f"{path}.trigger.kind", f"unknown value {message.trigger.kind}", "ENUM_VALUE_INVALID")
        else:
            kind = KIND_FROM_PROTO[message.trigger.kind]
    scope = ActivationScope.NEW_ONLY
    if message.trigger.activation:
        if message.trigger.activation not in SCOPE_FROM_PROTO:
            problems.add(
                f"{path}.trigger.activation", f"unknown value {message.trigger.activation}", "ENUM_VALUE_INVALID"
            )
        elif not kind.is_segment:
            problems.add(f"{path}.trigger.activation", "only for segment plays", "ACTIVATION_INVALID")
        else:
            scope = SCOPE_FROM_PROTO[message.trigger.activation]
    event_type = EVENT_TYPE_FROM_PROTO.get(message.trigger.event_type)
    if message.trigger.event_type and event_type is None:
        problems.add(f"{path}.trigger.event_type", "one of the EVENT_TYPE_ values", "EVENT_TYPE_INVALID")
    criteria = struct_dict(message.trigger.criteria) if message.trigger.HasField("criteria") else None
    if is_sealed(message.webhook_secret):  # would be taken for a key already sealed at rest
        problems.add(f"{path}.webhook_secret", "may not start with 'fernet:'", "WEBHOOK_SECRET_INVALID")
    play = Play(
        id=play_id,
        display_name=message.display_name.strip(),
        description=message.description,
        owner_id=owner,
        origin_team=message.origin_team.strip(),
        status=status,
        trigger=Trigger(event_type, message.trigger.custom_event_type.strip(), criteria, kind, scope),
        actions=[json_format.MessageToDict(a, preserving_proto_field_name=True) for a in message.actions],
        create_time=now,
        update_time=now,
        webhook_secret=message.webhook_secret,
        priority=message.priority,
    )
    return play, problems


def run_to_proto(run: PlayRun) -> plays_pb2.PlayRun:
    return plays_pb2.PlayRun(
        name=f"plays/{run.play_id}/runs/{run.id}",
        play=format_name("plays", run.play_id),
        play_version=run.play_version,
        event_id=run.event_id,
        account_id=run.account_id,
        outcome=OUTCOME[run.outcome],
        reason=run.reason,
        description=run.description,
        actions=[
            plays_pb2.ActionResult(
                index=r.index, outcome=OUTCOME[r.outcome], reason=r.reason, description=r.description, target=r.target
            )
            for r in run.results
        ],
        attempts=run.attempts,
        create_time=timestamp(run.create_time),
        finish_time=timestamp(run.finish_time),
    )


def event_from_proto(
    message: events_pb2.AccountEvent,
    now: dt.datetime,
    path: str,
    problems: Violations,
    *,
    published: bool = True,
) -> AccountEvent:
    """A published event needs an id and may not claim to be an assignment change (those come
    from the users service); a dry run's events may be anything an event can be."""
    event_type = EVENT_TYPE_FROM_PROTO.get(message.type)
    if event_type is None:
        problems.add(f"{path}.type", "required: one of the EVENT_TYPE_ values", "EVENT_TYPE_REQUIRED")
    elif event_type is EventType.ASSIGNMENT_CHANGED and published:
        problems.add(f"{path}.type", "assignment changes come from the users service itself", "EVENT_TYPE_RESERVED")
    occurred = message.occurred_at.ToDatetime(tzinfo=dt.UTC) if message.HasField("occurred_at") else now
    event = AccountEvent(
        event_id=message.event_id,
        account_id=message.account_id,
        type=event_type or EventType.CUSTOM,
        custom_type=message.custom_type,
        occurred_at=occurred,
        attributes=struct_dict(message.attributes),
        previous=struct_dict(message.previous),
    )
    check_event(event, path, problems, need_id=published, known_type=event_type is not None)
    return event


def event_to_proto(stored: StoredEvent, pending_runs: int) -> events_pb2.AccountEvent:
    event = stored.event
    message = events_pb2.AccountEvent(
        name=f"accountEvents/{event.event_id}",
        event_id=event.event_id,
        account_id=event.account_id,
        type=EVENT_TYPE[event.type],
        custom_type=event.custom_type,
        occurred_at=timestamp(event.occurred_at),
        attributes=to_struct(event.attributes),
        previous=to_struct(event.previous),
        state=events_pb2.EVENT_STATE_RECORDED if pending_runs else events_pb2.EVENT_STATE_PROCESSED,
        matched_plays=[format_name("plays", p) for p in stored.matched_plays],
        receive_time=timestamp(stored.receive_time),
    )
    return message


def bad_argument(field: str, description: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        reason, f"{field}: {description}", field_violations=[FieldViolation(field, description, reason)]
    )


def account_state_to_proto(account_id: str, state: AccountState, segments: list[str]) -> events_pb2.AccountState:
    return events_pb2.AccountState(
        account_id=account_id,
        attributes=to_struct(state.attributes),
        parent_account_id=str(state.attributes.get("parent_account_id", "") or ""),
        segments=[format_name("plays", p) for p in segments],
        update_time=timestamp(state.update_time),
        next_time_check=timestamp(
            None if state.next_time_check is None else dt.datetime.fromtimestamp(state.next_time_check, dt.UTC)
        ),
    )
