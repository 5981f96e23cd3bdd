"""Tables of the users service (SQLAlchemy 2 typed models)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ColumnElement, ForeignKey, Index, Integer, String, Text, false, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.runtime.db import UTCDateTime
from services.runtime.idempotency import IdempotencyRecordMixin
from services.users.domain.status_policy import StatusPolicy, statuses_where


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
    user_management: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    # Every UPDATE checks and bumps the version, so a concurrent writer cannot be overwritten.
    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # One listed user per email; unlisted (deleted) users keep their row (history) and free the
        # address. The predicate is status_policy's is_listed, written out: a migration fixed it
        # (test_unit_status_policy holds the two together).
        Index(
            "uq_users_live_email",
            "email_normalized",
            unique=True,
            sqlite_where=text("status != 'DELETED'"),
            postgresql_where=text("status != 'DELETED'"),
        ),
        Index("ix_users_list", "email_normalized", "id"),
    )


def user_status_where(test: Callable[[StatusPolicy], bool]) -> ColumnElement[bool]:
    """Users whose status passes `test` (status_policy), e.g. user_status_where(lambda p: p.is_listed)."""
    return UserRecord.status.in_(sorted(s.value for s in statuses_where(test)))


class TeamRecord(UsersBase):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    display_name_normalized: Mapped[str] = mapped_column(String(100), unique=True)
    manager_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class TeamMembershipRecord(UsersBase):
    __tablename__ = "team_memberships"

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20))


class InvitationRecord(UsersBase):
    __tablename__ = "invitations"

    # Only the SHA-256 of the token is stored: a database leak does not leak usable invitations.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expire_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    used_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class LicenseSeatRecord(UsersBase):
    """One row per license, locked (SELECT ... FOR UPDATE) while seats are counted and taken,
    so that two concurrent invitations cannot both take the last seat."""

    __tablename__ = "license_seats"

    license: Mapped[str] = mapped_column(String(20), primary_key=True)


class NotificationRecord(UsersBase):
    """Emails to send, written in the same transaction as the change they announce."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # A sender claims a row until this time; another sender (replica) leaves it alone meanwhile.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_notifications_due", "sent_time", "failed", "next_attempt_time"),)


class RoleRecord(UsersBase):
    __tablename__ = "roles"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(20))
    empty_value: Mapped[str] = mapped_column(String(20))
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class AssignmentRecord(UsersBase):
    """The primary key is the rule: one user per role per account, whoever writes concurrently."""

    __tablename__ = "assignments"

    account_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role_key: Mapped[str] = mapped_column(ForeignKey("roles.key"), primary_key=True, index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # The source and source_ref of the write that made the current holder.
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str] = mapped_column(String(255), default="")
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    # ListAssignments by source_ref (e.g. everything an ETM job wrote), in its account, role order.
    __table_args__ = (Index("ix_assignments_source_ref", "source_ref", "account_id", "role_key"),)


class AssignmentHistoryRecord(UsersBase):
    __tablename__ = "assignment_history"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(255))
    role_key: Mapped[str] = mapped_column(String(60))
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    previous_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str] = mapped_column(String(255), default="")
    actor: Mapped[str] = mapped_column(String(255))
    change_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_assignment_history_account", "account_id", "role_key", "change_time"),)


class TaskRecord(UsersBase):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(255), index=True)
    title: Mapped[str] = mapped_column(String(300))
    # Empty after a bulk disable or delete took the task away from its assignee.
    assignee_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(100))
    due_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    complete_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_tasks_assignee", "assignee_id", "status"),)


class ResourceRecord(UsersBase):
    __tablename__ = "resources"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(300))
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    visibility: Mapped[str] = mapped_column(String(20))
    campaign_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    senders: Mapped[list[str]] = mapped_column(JSON, default=list)
    bcc: Mapped[list[str]] = mapped_column(JSON, default=list)
    update_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class EventRecord(UsersBase):
    """The outbox of domain events. `seq` is the stream's cursor: appends are serialised (see
    EventLog.append) so that seq order is commit order and a reader never skips a late commit."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(60), index=True)
    subject: Mapped[str] = mapped_column(String(400))
    actor: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # W3C traceparent of the transaction's call (tracing on), so a consumer can link to it.
    traceparent: Mapped[str | None] = mapped_column(String(55), nullable=True)


class IdempotencyRecord(IdempotencyRecordMixin, UsersBase):
    __tablename__ = "idempotency_records"


class ScimUserRecord(UsersBase):
    """What an identity provider keeps about a user beyond Steward's own profile (SCIM)."""

    __tablename__ = "scim_users"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(254))
    # Lower-cased NFC userName: the case-insensitive uniqueness key (userName is caseExact=false).
    user_name_key: Mapped[str] = mapped_column(String(254), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
    # True while the identity provider assigns the license (the Steward extension's `license`).
    license_managed: Mapped[bool] = mapped_column(Boolean, default=False)
    # {address: {"type": work|home|other, "primary": bool}}: how the provider labelled the emails.
    email_labels: Mapped[dict[str, dict[str, Any]]] = mapped_column(JSON, default=dict)


class ScimGroupRecord(UsersBase):
    __tablename__ = "scim_groups"

    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(254), nullable=True, index=True)
