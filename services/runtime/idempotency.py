"""request_id (AIP-155): a retried mutation returns the first answer and writes nothing twice.

The record is written in the same transaction as the change it describes, so either both
exist or neither does. Two concurrent calls with one request_id race on the primary key:
the loser's transaction rolls back whole and it answers with the winner's response.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf.message import Message
from sqlalchemy import LargeBinary, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from services.runtime.db import UnitOfWork, UTCDateTime, utcnow
from services.runtime.errors import DomainError, FieldViolation, InvalidArgument
from services.runtime.names import validate_request_id

R = TypeVar("R", bound=Message)


class IdempotencyRecordMixin:
    """Columns of a service's `idempotency_records` table (each service owns its own)."""

    method: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_digest: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    create_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())


U = TypeVar("U", bound=UnitOfWork)


def request_digest(request: Message) -> str:
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def _replay(record: IdempotencyRecordMixin, digest: str, response_type: type[R]) -> R:
    if record.request_digest != digest:
        raise InvalidArgument(
            "REQUEST_ID_REUSED",
            "request_id was already used for a different request",
            field_violations=[FieldViolation("request_id", "already used with other fields", "REQUEST_ID_REUSED")],
        )
    return response_type.FromString(record.response)


def recorded_answer(
    uow: UnitOfWork,
    record_type: type[IdempotencyRecordMixin],
    method: str,
    request: Message,
    response_type: type[R],
) -> R | None:
    """What run_once would answer from its record for `request`, without running anything: the
    recorded response, REQUEST_ID_REUSED for other content under its request_id, or None when
    that request_id is unused (or absent). Reads only: a validate_only call leaves the id free."""
    request_id: str = getattr(request, "request_id", "")
    validate_request_id(request_id)
    if not request_id:
        return None
    earlier = uow.session.get(record_type, (method, request_id))
    return None if earlier is None else _replay(earlier, request_digest(request), response_type)


def run_once(
    uow_factory: Callable[[], U],
    record_type: type[IdempotencyRecordMixin],
    method: str,
    request: Message,
    response_type: type[R],
    work: Callable[[U], R],
) -> R:
    """Run `work` in one committed unit of work, at most once per request.request_id."""
    request_id: str = getattr(request, "request_id", "")
    validate_request_id(request_id)
    digest = request_digest(request)
    failure: Exception
    with uow_factory() as uow:
        if request_id:
            earlier = uow.session.get(record_type, (method, request_id))
            if earlier is not None:
                return _replay(earlier, digest, response_type)
        try:
            response = work(uow)
            if request_id:
                # The mixin has no constructor of its own; the concrete declarative class does.
                uow.session.add(
                    cast(Any, record_type)(
                        method=method,
                        request_id=request_id,
                        request_digest=digest,
                        response=response.SerializeToString(),
                        create_time=utcnow(),
                    )
                )
            uow.commit()
            return response
        except (IntegrityError, DomainError) as exc:
            if not request_id:
                raise
            failure = exc
    # A concurrent call with the same request_id may have won while we waited for a lock (we then
    # saw its changes: a moved etag, a duplicate key). If so, the retry answers as the winner did.
    with uow_factory() as uow:
        winner = uow.session.get(record_type, (method, request_id))
        if winner is None:
            raise failure
        return _replay(winner, digest, response_type)
