"""What no storage can hold, refused at the door: NUL characters and unpaired surrogates (neither
is storable in PostgreSQL text or encodable as UTF-8), paths that are not UTF-8, and JSON nested
deeper than any SCIM resource is (a recursion bomb for every parser after this one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scim2_models import InvalidSyntaxException, InvalidValueException

UNSTORABLE = "strings must not contain NUL characters or unpaired surrogates"
# A SCIM resource nests a few levels (a PATCH value: operations, value, a complex attribute, its
# sub-attribute); anything far deeper is refused before a recursive parser or validator meets it.
MAX_DEPTH = 32
TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"


def storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(document: Any) -> bool:
    """Every string storable; a loop, not recursion, so that depth costs no stack."""
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidSyntaxException(detail=TOO_DEEP)
        if isinstance(value, str):
            if not storable(value):
                return False
        elif isinstance(value, dict):
            for key, item in value.items():
                if not storable(key):
                    return False
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
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
    except RecursionError:  # deeper than the interpreter's recursion limit
        raise InvalidSyntaxException(detail=TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError):
        return
    if not _walk(document):
        raise InvalidValueException(detail=UNSTORABLE)
