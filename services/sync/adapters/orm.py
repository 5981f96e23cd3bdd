"""Tables of the sync service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin


class SyncBase(DeclarativeBase):
    pass


class ConnectionRecord(SyncBase):
    __tablename__ = "connections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    instance_url: Mapped[str] = mapped_column(String(500))
    api_version: Mapped[str] = mapped_column(String(10))
    grant: Mapped[str] = mapped_column(String(40))
    token_url: Mapped[str] = mapped_column(String(500), default="")
    client_id: Mapped[str] = mapped_column(String(500))
    username: Mapped[str] = mapped_column(String(200), default="")
    # Write-only through the API; readable only by this service (sealed at rest).
    client_secret: Mapped[str] = mapped_column(Text, default="")
    private_key: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


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
    # Written for ETM jobs only, for replicas of the release before connectors (migration 0003).
    etm: Mapped[Any] = mapped_column(JSON, nullable=True)
    connector: Mapped[str] = mapped_column(String(60), default="")
    settings: Mapped[Any] = mapped_column(JSON, nullable=True)
    run_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    watermark: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_id: Mapped[str] = mapped_column(String(36), default="")
    # The run lease: one run per job at a time, across replicas; an expired lease (a crashed
    # replica) may be taken over.
    lease_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __mapper_args__ = {"version_id_col": version}


class RunRecord(SyncBase):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(36))
    mode: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    started_by: Mapped[str] = mapped_column(String(200))
    counts: Mapped[Any] = mapped_column(JSON)
    queries: Mapped[Any] = mapped_column(JSON)
    watermark_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    watermark_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    start_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error_code: Mapped[str] = mapped_column(String(100), default="")
    error_message: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_runs_job_start", "job_id", "start_time", "id"),)


class RunErrorRecord(SyncBase):
    __tablename__ = "run_errors"

    run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    row: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), default="")
    user_email: Mapped[str] = mapped_column(String(320), default="")
    user_name: Mapped[str] = mapped_column(String(200), default="")
    role_value: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(100), default="")
    reason: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")


class IdempotencyRecord(IdempotencyRecordMixin, SyncBase):
    __tablename__ = "idempotency_records"
