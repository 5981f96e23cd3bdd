"""Tables of the rules service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin
from services.runtime.leases import lease_table

# SQLite only auto-increments an INTEGER PRIMARY KEY.
SEQ = BigInteger().with_variant(Integer, "sqlite")


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
    trigger_kind: Mapped[str] = mapped_column(String(20), default="EVENT", server_default="EVENT")
    activation: Mapped[str] = mapped_column(String(20), default="NEW_ONLY", server_default="NEW_ONLY")
    webhook_secret: Mapped[str] = mapped_column(Text, default="", server_default="")
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    criteria: Mapped[Any] = mapped_column(JSON, nullable=True)
    actions: Mapped[Any] = mapped_column(JSON, default=list)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class PlayVersionRecord(RulesBase):
    """Every version of every play, as runs execute it: a run names (play, version), so an
    edit or a delete never changes what an already matched run does."""

    __tablename__ = "play_versions"

    play_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan: Mapped[Any] = mapped_column(JSON)


class PlayCatalogRecord(RulesBase):
    """One row whose version moves with every play change: each replica's engine compares it
    with what it compiled, so a change reaches every replica by the next event."""

    __tablename__ = "play_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AccountEventRecord(RulesBase):
    __tablename__ = "account_events"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200), unique=True)
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    type: Mapped[str] = mapped_column(String(40))
    custom_type: Mapped[str] = mapped_column(String(100), default="")
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    receive_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attributes: Mapped[Any] = mapped_column(JSON)
    previous: Mapped[Any] = mapped_column(JSON)
    matched_plays: Mapped[Any] = mapped_column(JSON)
    # W3C traceparent of the call that recorded the event (tracing on), else NULL.
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)


class AccountRecord(RulesBase):
    """The last known attributes of every account the service has seen."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    attributes: Mapped[Any] = mapped_column(JSON)
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # When each attribute's value occurred (ISO 8601): an older event does not roll it back.
    attribute_times: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    # When time alone may next change a time-based segment for this account (epoch seconds);
    # NULL: never. The clock pass re-evaluates only accounts whose moment has come.
    next_time_check: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)


class SegmentMemberRecord(RulesBase):
    """An account in the segment of an active segment play (ENTERS_SEGMENT / EXITS_SEGMENT)."""

    __tablename__ = "segment_members"

    play_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AccountAttributeRecord(RulesBase):
    """Every attribute name an account event has carried: what segment criteria may name."""

    __tablename__ = "account_attributes"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class RateWindowRecord(RulesBase):
    """Manual runs a caller started in the current one-minute window (RunPlay's rate limit)."""

    __tablename__ = "rate_windows"

    caller: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)


class PlayRunRecord(RulesBase):
    __tablename__ = "play_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    play_id: Mapped[str] = mapped_column(String(36))
    play_version: Mapped[int] = mapped_column(Integer)
    event_seq: Mapped[int] = mapped_column(BigInteger)
    # Order of the play among those the event matched.
    position: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(100), index=True)
    # runtime/partitions.account_slot(account_id): the run's partition is account_slot % P.
    account_slot: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(100), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    results: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    choices: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    finish_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)

    __table_args__ = (
        # The executor's queue (pending runs in event order), and an event's pending runs.
        Index("ix_play_runs_queue", "outcome", "event_seq", "position"),
        Index("ix_play_runs_play_outcome", "play_id", "outcome"),
        Index("ix_play_runs_create_time", "create_time", "id"),
        Index("ix_play_runs_event_id", "event_id"),  # an event's runs (RunPlay's retries)
    )


class ConsumerCursorRecord(RulesBase):
    """Where a consumer of another service's event stream got to, stored with its effects."""

    __tablename__ = "consumer_cursors"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(100))
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class IdempotencyRecord(IdempotencyRecordMixin, RulesBase):
    __tablename__ = "idempotency_records"


# Which replica runs the users-stream consumer and the clock (services/runtime/leases.py), and
# which replica executes the runs of which partition (services/runtime/partitions.py).
WORKER_LEASES = lease_table(RulesBase.metadata)
