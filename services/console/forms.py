"""Checks every form field goes through before a call: trimmed, bounded, and in words when wrong."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")


def clean_text(value: str | None, limit: int) -> str:
    """Trimmed and cut at `limit` characters (the caller compares with its own maximum)."""
    return (value or "").strip()[:limit]


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value)) and len(value) <= 320


def split_emails(text: str) -> list[str]:
    """Addresses typed one per line or separated by commas, semicolons or spaces."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


def safe_next(value: str | None) -> str:
    """Only a path of this console: an open redirect would make the sign-in link a phishing tool."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def positive_int(value: str | None, default: int, maximum: int) -> int:
    try:
        number = int(value or default)
    except ValueError:
        return default
    return min(max(number, 1), maximum)
