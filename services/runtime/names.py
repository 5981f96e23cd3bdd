"""AIP-122 resource names such as "users/{uuid}"."""

from __future__ import annotations

import uuid

from services.runtime.errors import FieldViolation, InvalidArgument


def format_name(collection: str, uid: str) -> str:
    return f"{collection}/{uid}"


def _as_uuid(text: str) -> str | None:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return str(parsed) if str(parsed) == text.lower() else None


def parse_name(collection: str, name: str, field: str = "name") -> str:
    """Return the UUID in `{collection}/{uuid}`; a malformed name is INVALID_ARGUMENT, never NOT_FOUND."""
    prefix = f"{collection}/"
    uid = _as_uuid(name[len(prefix) :]) if name.startswith(prefix) else None
    if uid is None:
        shown = repr(name) if name else "nothing"
        raise InvalidArgument(
            "RESOURCE_NAME_INVALID",
            f"{field} must look like '{collection}/<uuid>', got {shown}",
            field_violations=[FieldViolation(field, f"must look like '{collection}/<uuid>'", "RESOURCE_NAME_INVALID")],
        )
    return uid


def validate_request_id(request_id: str, field: str = "request_id") -> None:
    """AIP-155: a request_id, when given, is a UUID."""
    if request_id and _as_uuid(request_id) is None:
        raise InvalidArgument(
            "REQUEST_ID_INVALID",
            f"{field} must be a UUID",
            field_violations=[FieldViolation(field, "must be a UUID", "REQUEST_ID_INVALID")],
        )
