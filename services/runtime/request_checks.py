"""What no request may carry, whatever the RPC: checked once, at the boundary, for every servicer
(the server interceptor calls `check` before the method runs).

- Timestamps within 0001-01-01 .. 9999-12-31 (what Python's datetime and both databases hold)
  and nanos within a second; Durations within ±10,000 years (the protobuf bounds).
- Structs (criteria, attributes) at most MAX_STRUCT_DEPTH deep and MAX_STRUCT_VALUES values.
- No NUL character in a string: PostgreSQL text cannot store it. Strings walked for that (or
  inside a Struct) are also held to MAX_STRING characters; every string is bounded anyway by the
  4 MiB message limit, and names, titles and ids by their method's own checks.

Anything else is the method's own validation (names, enums, ranges of its fields). The result is
INVALID_ARGUMENT with a field violation per problem, its path as `events[3].occurred_at`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.runtime.errors import FieldViolation, InvalidArgument

MIN_SECONDS = -62_135_596_800  # 0001-01-01T00:00:00Z
MAX_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z
MAX_DURATION_SECONDS = 315_576_000_000
MAX_STRUCT_DEPTH = 16  # levels of objects and lists; protobuf itself stops near 33 (100 messages)
MAX_STRUCT_VALUES = 100_000
MAX_STRING = 1 << 20
MAX_VIOLATIONS = 20  # enough to fix a request; a flood of them helps nobody

_TIMESTAMP = "google.protobuf.Timestamp"
_DURATION = "google.protobuf.Duration"
_STRUCT_TYPES = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})
_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


class _Found:
    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []
        self.struct_values = 0
        self.strings = True  # whether strings may be at fault (see check)

    def add(self, path: str, description: str, reason: str) -> None:
        if len(self.violations) < MAX_VIOLATIONS:
            self.violations.append(FieldViolation(path, description, reason))

    @property
    def full(self) -> bool:
        return len(self.violations) >= MAX_VIOLATIONS


def check(request: Message) -> None:
    """Raises InvalidArgument naming every problem of the kinds above (up to MAX_VIOLATIONS)."""
    found = _Found()
    # Fast path: proto3 does not encode zero scalars and varints never end in a zero byte, so a
    # request whose encoding has no 0x00 byte has no NUL in any string; then only the well-known
    # types need a look (a batch of 10,000 assignment rows: ~3 ms instead of 38). Their lengths
    # are then bounded by the server's 4 MiB message limit and each method's own limits.
    found.strings = b"\x00" in request.SerializeToString()
    _message(request, "", found)
    if found.violations:
        first = found.violations[0]
        raise InvalidArgument(
            "REQUEST_INVALID",
            f"{len(found.violations)} field(s) out of range, first {first.field}: {first.description}",
            field_violations=found.violations,
        )


def _string(value: str, path: str, found: _Found) -> None:
    if len(value) > MAX_STRING:
        found.add(path, f"at most {MAX_STRING:,} characters", "STRING_TOO_LONG")
    elif "\x00" in value:
        found.add(path, "must not contain the NUL character", "STRING_HAS_NUL")


class _Plan(NamedTuple):
    """The fields of a message type worth looking at, read once per type."""

    strings: tuple[str, ...]
    repeated_strings: tuple[str, ...]
    messages: tuple[str, ...]
    repeated_messages: tuple[str, ...]
    maps: tuple[Any, ...]  # FieldDescriptor (upb or pure Python)
    # Whether a Timestamp, Duration or Struct can be found inside (else only strings matter).
    well_known: bool


_PLANS: dict[str, _Plan] = {}


def _plan(message: Message) -> _Plan:
    descriptor = message.DESCRIPTOR
    plan = _PLANS.get(descriptor.full_name)
    if plan is None:
        fields = descriptor.fields
        plan = _PLANS[descriptor.full_name] = _Plan(
            tuple(f.name for f in fields if f.type == _STRING and not f.is_repeated),
            tuple(f.name for f in fields if f.type == _STRING and f.is_repeated),
            tuple(f.name for f in fields if f.type == _MESSAGE and not f.is_repeated),
            tuple(f.name for f in fields if f.type == _MESSAGE and f.is_repeated and not _is_map(f)),
            tuple(f for f in fields if _is_map(f)),
            _holds_well_known(descriptor, set()),
        )
    return plan


def _holds_well_known(descriptor: Any, seen: set[str]) -> bool:
    if descriptor.full_name in (_TIMESTAMP, _DURATION) or descriptor.full_name in _STRUCT_TYPES:
        return True
    seen.add(descriptor.full_name)
    return any(
        f.type == _MESSAGE and f.message_type.full_name not in seen and _holds_well_known(f.message_type, seen)
        for f in descriptor.fields
    )


def _message(message: Message, prefix: str, found: _Found) -> None:
    name = message.DESCRIPTOR.full_name
    if name == _TIMESTAMP:
        _timestamp(message, prefix, found)
        return
    if name == _DURATION:
        _duration(message, prefix, found)
        return
    if name in _STRUCT_TYPES:
        _struct(message, prefix, found, 0)
        return
    plan = _plan(message)
    if not found.strings and not plan.well_known:
        return
    dot = f"{prefix}." if prefix else ""
    for field in plan.strings if found.strings else ():
        value = getattr(message, field)
        if value and (len(value) > MAX_STRING or "\x00" in value):
            _string(value, dot + field, found)
    for field in plan.repeated_strings if found.strings else ():
        for index, item in enumerate(getattr(message, field)):
            _string(item, f"{dot}{field}[{index}]", found)
    for field in plan.messages:
        if message.HasField(field):
            _message(getattr(message, field), dot + field, found)
    for field in plan.repeated_messages:
        for index, item in enumerate(getattr(message, field)):
            if found.full:
                return
            _message(item, f"{dot}{field}[{index}]", found)
    for map_field in plan.maps:
        _map(map_field, getattr(message, map_field.name), dot + map_field.name, found)


def _is_map(field: Any) -> bool:
    entry = field.message_type
    return entry is not None and entry.GetOptions().map_entry


def _map(field: Any, value: Any, path: str, found: _Found) -> None:
    entry = field.message_type
    assert entry is not None, "a map field has an entry type"
    value_field = entry.fields_by_name["value"]
    for key, item in value.items():
        where = f"{path}[{key!r}]"
        if isinstance(key, str):
            _string(key, where, found)
        if value_field.type == _MESSAGE:
            _message(item, where, found)
        elif value_field.type == _STRING:
            _string(item, where, found)


def _timestamp(message: Message, path: str, found: _Found) -> None:
    seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        found.add(path, "a time between 0001-01-01 and 9999-12-31 (UTC)", "TIMESTAMP_OUT_OF_RANGE")
    elif not 0 <= nanos <= 999_999_999:
        found.add(path, "nanos between 0 and 999,999,999", "TIMESTAMP_OUT_OF_RANGE")


def _duration(message: Message, path: str, found: _Found) -> None:
    seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
    if not -MAX_DURATION_SECONDS <= seconds <= MAX_DURATION_SECONDS or not -999_999_999 <= nanos <= 999_999_999:
        found.add(path, "a duration within ±10,000 years", "DURATION_OUT_OF_RANGE")
    elif (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        found.add(path, "seconds and nanos of the same sign", "DURATION_OUT_OF_RANGE")


def _struct(message: Message, path: str, found: _Found, depth: int) -> None:
    """A Struct, Value or ListValue: depth and size bounded, strings (keys too) checked."""
    if depth > MAX_STRUCT_DEPTH:
        found.add(path, f"nested at most {MAX_STRUCT_DEPTH} deep", "STRUCT_TOO_DEEP")
        return
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Struct":
        for key, value in message.fields.items():  # type: ignore[attr-defined]
            _string(key, f"{path}.{key}", found)
            _struct(value, f"{path}.{key}", found, depth + 1)
    elif name == "google.protobuf.ListValue":
        for index, value in enumerate(message.values):  # type: ignore[attr-defined]
            _struct(value, f"{path}[{index}]", found, depth + 1)
    else:  # Value
        found.struct_values += 1
        if found.struct_values == MAX_STRUCT_VALUES + 1:
            found.add(path, f"at most {MAX_STRUCT_VALUES:,} values in all", "STRUCT_TOO_LARGE")
        kind = message.WhichOneof("kind")
        if kind == "string_value":
            _string(message.string_value, path, found)  # type: ignore[attr-defined]
        elif kind == "struct_value":
            _struct(message.struct_value, path, found, depth)  # type: ignore[attr-defined]
        elif kind == "list_value":
            _struct(message.list_value, path, found, depth)  # type: ignore[attr-defined]
        elif kind == "number_value" and not math.isfinite(message.number_value):  # type: ignore[attr-defined]
            found.add(path, "a finite number (JSON has no NaN or infinity)", "NUMBER_INVALID")
