"""Errors the domain raises, free of gRPC: the servicer layer maps them to status codes.

Each error names a machine-readable `reason` (UPPER_SNAKE, stable across releases) that
clients can switch on, and a human message that may change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ErrorKind(Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAVAILABLE = "UNAVAILABLE"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str
    reason: str = ""


@dataclass(frozen=True)
class PreconditionViolation:
    type: str
    subject: str
    description: str


class DomainError(Exception):
    kind: ErrorKind = ErrorKind.FAILED_PRECONDITION

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        metadata: dict[str, str] | None = None,
        field_violations: list[FieldViolation] | None = None,
        precondition_violations: list[PreconditionViolation] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = dict(metadata or {})
        self.field_violations = list(field_violations or [])
        self.precondition_violations = list(precondition_violations or [])
        self.retry_after_seconds = retry_after_seconds


class InvalidArgument(DomainError):
    kind = ErrorKind.INVALID_ARGUMENT


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class AlreadyExists(DomainError):
    kind = ErrorKind.ALREADY_EXISTS


class FailedPrecondition(DomainError):
    kind = ErrorKind.FAILED_PRECONDITION


class Aborted(DomainError):
    """A concurrent change won: the caller should re-read and retry."""

    kind = ErrorKind.ABORTED


class ResourceExhausted(DomainError):
    kind = ErrorKind.RESOURCE_EXHAUSTED


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED


class Unavailable(DomainError):
    """A dependency (the database, another service) cannot be reached; safe to retry."""

    kind = ErrorKind.UNAVAILABLE


@dataclass
class Violations:
    """Collects every problem in a request so the caller sees all of them at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, field_path: str, description: str, reason: str = "") -> None:
        self.items.append(FieldViolation(field_path, description, reason))

    def raise_if_any(self, message: str = "the request has invalid fields") -> None:
        if self.items:
            fields = ", ".join(v.field for v in self.items)
            raise InvalidArgument("INVALID_REQUEST", f"{message}: {fields}", field_violations=self.items)
