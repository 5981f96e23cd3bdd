"""Tables of the rules service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin


class RulesBase(DeclarativeBase):
    pass


class PlayRecord(RulesBase):
    __tablename__ = "plays"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Authors apply plays from files by name, so a name names one play.
    display_name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[str] = mapped_column(String(36), index=True)
    origin_team: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    trigger_event_type: Mapped[str] = mapped_column(String(40))
    trigger_custom_event_type: Mapped[str] = mapped_column(String(200), default="")
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class IdempotencyRecord(IdempotencyRecordMixin, RulesBase):
    __tablename__ = "idempotency_records"
