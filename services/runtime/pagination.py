"""AIP-158 pagination: page_size bounds and opaque keyset page tokens.

A token carries the sort key of the last row returned plus a fingerprint of the query it
belongs to, so a token reused with different filters is refused rather than silently
returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from services.runtime.errors import Violations

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1

Key = tuple[str | int, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    size: int
    after: Key | None
    fingerprint: str

    @property
    def limit(self) -> int:
        """Rows to fetch: one more than the page, to learn whether another page follows."""
        return self.size + 1

    def next_token(self, rows: Sequence[Any], key_of: Any) -> str:
        """Token for the page after `rows`, which must have been fetched with `limit`."""
        if len(rows) <= self.size:
            return ""
        return encode_token(key_of(rows[self.size - 1]), self.fingerprint)


def list_response_page(
    page_size: int,
    page_token: str,
    filters: dict[str, object],
    key_length: int,
    fetch: Callable[[PageRequest], Sequence[T]],
    key_of: Callable[[T], Key],
) -> tuple[list[T], str]:
    """The common shape of every List method: validate, fetch one extra row, build the next token."""
    page = parse_page(page_size, page_token, fingerprint(**filters), key_length)
    rows = fetch(page)
    return list(rows[: page.size]), page.next_token(rows, key_of)


def fingerprint(**query: object) -> str:
    blob = json.dumps(query, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def encode_token(key: Key, query_fingerprint: str) -> str:
    blob = json.dumps({"v": _VERSION, "k": list(key), "q": query_fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any] | None:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("q"), str):
        return None
    key = data.get("k")
    if not isinstance(key, list) or not key or not all(isinstance(p, str | int) for p in key):
        return None
    return data


def parse_page(page_size: int, page_token: str, query_fingerprint: str, key_length: int) -> PageRequest:
    problems = Violations()
    if page_size < 0:
        problems.add("page_size", "must not be negative", "PAGE_SIZE_NEGATIVE")
    elif page_size > MAX_PAGE_SIZE:
        problems.add("page_size", f"must be at most {MAX_PAGE_SIZE}", "PAGE_SIZE_TOO_LARGE")
    after: Key | None = None
    if page_token:
        data = _decode(page_token)
        if data is None or len(data["k"]) != key_length:
            problems.add("page_token", "is not a page token issued by this service", "PAGE_TOKEN_INVALID")
        elif data["q"] != query_fingerprint:
            problems.add("page_token", "was issued for a request with other filters", "PAGE_TOKEN_MISMATCH")
        else:
            after = tuple(data["k"])
    problems.raise_if_any("invalid pagination")
    return PageRequest(size=page_size or DEFAULT_PAGE_SIZE, after=after, fingerprint=query_fingerprint)
