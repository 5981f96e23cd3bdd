"""Tables of the users service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin


class UsersBase(DeclarativeBase):
    pass


class UserRecord(UsersBase):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    # Lower-cased email: the sort key of ListUsers and the case-insensitive uniqueness key.
    email_normalized: Mapped[str] = mapped_column(String(254))
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    status: Mapped[str] = mapped_column(String(20))
    license: Mapped[str] = mapped_column(String(20))
    global_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    alternative_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    custom_attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    signature: Mapped[str] = mapped_column(Text, default="")
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_activity_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    # Every UPDATE checks and bumps the version, so a concurrent writer cannot be overwritten.
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # One live user per email; deleted users keep their row (history) and free the address.
        Index(
            "uq_users_live_email",
            "email_normalized",
            unique=True,
            sqlite_where=text("status != 'DELETED'"),
            postgresql_where=text("status != 'DELETED'"),
        ),
        Index("ix_users_list", "email_normalized", "id"),
    )


class IdempotencyRecord(IdempotencyRecordMixin, UsersBase):
    __tablename__ = "idempotency_records"
