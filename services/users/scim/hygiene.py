"""What no storage can hold, refused at the door: NUL characters and unpaired surrogates (neither
is storable in PostgreSQL text or encodable as UTF-8), and paths that are not UTF-8."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scim2_models import InvalidValueException

UNSTORABLE = "strings must not contain NUL characters or unpaired surrogates"


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(value: Any) -> bool:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(_walk(k) and _walk(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_walk(v) for v in value)
    return True


def check_request(path: str, query: Mapping[str, str], body: bytes) -> None:
    """Raises 400 invalidValue for a path, query value or JSON string that cannot be stored. A
    body that is not JSON is left to the protocol's own 400 invalidSyntax."""
    if not all(storable(s) for s in (path, *query.keys(), *query.values())):
        raise InvalidValueException(detail=UNSTORABLE)
    if not body:
        return
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return
    if not _walk(document):
        raise InvalidValueException(detail=UNSTORABLE)
