"""Domain errors as SCIM errors (RFC 7644 §3.12): the same refusals as over gRPC, in SCIM's words."""

from __future__ import annotations

from scim2_models import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    MutabilityException,
    NotFoundException,
    PreconditionFailedException,
    SCIMException,
    UnauthorizedException,
    UniquenessException,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from services.runtime.errors import DomainError, ErrorKind
from services.runtime.interceptor import database_error

# Changing what the installation does not let change is a `mutability` error, not a conflict.
_MUTABILITY = frozenset({"EMAIL_IMMUTABLE"})


class Unavailable(SCIMException):
    status = 503


def scim_error(error: DomainError) -> SCIMException:
    detail = f"{error.reason}: {error.message}"
    if error.reason in _MUTABILITY:
        return MutabilityException(detail=detail)
    by_kind: dict[ErrorKind, type[SCIMException]] = {
        ErrorKind.INVALID_ARGUMENT: InvalidValueException,
        ErrorKind.NOT_FOUND: NotFoundException,
        ErrorKind.ALREADY_EXISTS: UniquenessException,
        # A lifecycle rule, a license rule, a global admin, seats: the request conflicts with the
        # resource's state (RFC 7644 §3.12 409); the detail names the rule.
        ErrorKind.FAILED_PRECONDITION: ConflictException,
        ErrorKind.RESOURCE_EXHAUSTED: ConflictException,
        ErrorKind.ABORTED: PreconditionFailedException,
        ErrorKind.PERMISSION_DENIED: ForbiddenException,
        ErrorKind.UNAUTHENTICATED: UnauthorizedException,
        ErrorKind.UNAVAILABLE: Unavailable,
    }
    return by_kind.get(error.kind, ConflictException)(detail=detail)


def storage_error(error: Exception) -> SCIMException | None:
    """The SCIM error for what the storage raised, or None for a bug (a 500, logged)."""
    if isinstance(error, DomainError):
        return scim_error(error)
    if isinstance(error, IntegrityError):  # a concurrent request took the same unique value
        return UniquenessException(detail="a concurrent request took the same unique value; read and retry")
    if isinstance(error, OperationalError):
        return scim_error(database_error(error))
    return None
