"""Tables of the sync service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin


class SyncBase(DeclarativeBase):
    pass


class JobRecord(SyncBase):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(20))
    connection_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    schedule: Mapped[str] = mapped_column(String(100), default="")
    last_run_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class IdempotencyRecord(IdempotencyRecordMixin, SyncBase):
    __tablename__ = "idempotency_records"
