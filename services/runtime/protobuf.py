"""Small protobuf <-> Python conversions shared by the servicers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.errors import FieldViolation, InvalidArgument

E = TypeVar("E")
M = TypeVar("M", bound=Message)
D = TypeVar("D", bound=Enum)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:  # read as local time, as astimezone does
        value = value.astimezone(dt.UTC)
    # Integer arithmetic rather than Timestamp.FromDatetime (~4x slower): a list or batch
    # response converts thousands of these.
    delta = value - _EPOCH
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1000)


def update_paths(mask: FieldMask, allowed: frozenset[str], field: str = "update_mask") -> list[str]:
    """The mask's paths, checked against what may be updated; "*" means all of `allowed`."""
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument(
            "UPDATE_MASK_REQUIRED",
            f"{field} must name the fields to update",
            field_violations=[FieldViolation(field, "must not be empty", "UPDATE_MASK_REQUIRED")],
        )
    if paths == ["*"]:
        return sorted(allowed)
    unknown = [p for p in paths if p not in allowed]
    if unknown:
        raise InvalidArgument(
            "UPDATE_MASK_INVALID",
            f"{field} names fields that cannot be updated here: {', '.join(unknown)}",
            field_violations=[
                FieldViolation(
                    f"{field}.paths",
                    f"'{p}' cannot be updated; allowed: {', '.join(sorted(allowed))}",
                    "FIELD_NOT_UPDATABLE",
                )
                for p in unknown
            ],
        )
    return list(dict.fromkeys(paths))


def enum_filter(value: int, from_proto: Mapping[int, E], field: str) -> E | None:
    """An optional enum filter: 0 (unspecified) means no filter; a number we do not know is refused,
    because treating it as 'no filter' would hide a client's bug behind a wrong answer."""
    if value == 0:
        return None
    if value not in from_proto:
        raise InvalidArgument(
            "ENUM_VALUE_INVALID",
            f"{field} has no value {value}",
            field_violations=[FieldViolation(field, f"unknown value {value}", "ENUM_VALUE_INVALID")],
        )
    return from_proto[value]


def enum_maps(values: Iterable[D], prefix: str, proto_enum: Any) -> tuple[dict[D, str], dict[int, D]]:
    """Domain enum <-> proto enum by the naming convention PREFIX_VALUE: value names (which message
    constructors accept) and numbers back to domain values. A domain value missing from the
    contract fails at import, not on the first call that meets it."""
    names = {value: f"{prefix}{value.value}" for value in values}
    return names, {proto_enum.Value(name): value for value, name in names.items()}


def merge_masked(stored: M, given: M, paths: Iterable[str]) -> M:
    """The stored resource with the masked top-level fields taken from the request (AIP-134):
    a masked field the request leaves unset is cleared; the rest stays as stored."""
    for path in paths:
        stored.ClearField(path)
        descriptor = stored.DESCRIPTOR.fields_by_name[path]
        if descriptor.is_repeated:
            getattr(stored, path).extend(getattr(given, path))
        elif descriptor.message_type is not None:
            if given.HasField(path):
                getattr(stored, path).CopyFrom(getattr(given, path))
        else:
            setattr(stored, path, getattr(given, path))
    return stored
