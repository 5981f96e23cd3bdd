"""Loads and stores plays."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.rules.adapters.orm import PlayRecord
from services.rules.domain.model import EventType, Play, PlayStatus, Trigger
from services.runtime.db import flush, keyset
from services.runtime.pagination import Key


def _to_domain(row: PlayRecord) -> Play:
    return Play(
        id=row.id,
        display_name=row.display_name,
        description=row.description,
        owner_id=row.owner_id,
        origin_team=row.origin_team,
        status=PlayStatus(row.status),
        trigger=Trigger(EventType(row.trigger_event_type), row.trigger_custom_event_type),
        create_time=row.create_time,
        update_time=row.update_time,
        version=row.version,
    )


class PlayRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, play_id: str) -> Play | None:
        row = self._session.get(PlayRecord, play_id)
        return None if row is None else _to_domain(row)

    def add(self, play: Play) -> None:
        row = PlayRecord(
            id=play.id,
            display_name=play.display_name,
            description=play.description,
            owner_id=play.owner_id,
            origin_team=play.origin_team,
            status=play.status.value,
            trigger_event_type=play.trigger.event_type.value,
            trigger_custom_event_type=play.trigger.custom_event_type,
            create_time=play.create_time,
            update_time=play.update_time,
        )
        self._session.add(row)
        flush(self._session)
        play.version = row.version

    def list_page(self, *, limit: int, after: Key | None, status: PlayStatus | None) -> list[Play]:
        query = select(PlayRecord)
        if status is not None:
            query = query.where(PlayRecord.status == status.value)
        query = keyset(query, (PlayRecord.display_name, PlayRecord.id), after, limit)
        return [_to_domain(row) for row in self._session.scalars(query)]


def list_key(play: Play) -> Key:
    return (play.display_name, play.id)
