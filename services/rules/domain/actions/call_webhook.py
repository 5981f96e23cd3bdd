"""call_webhook: a signed POST to a URL about the run (delivered by adapters/webhook.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.rules.domain.actions.choices import Reference
from services.runtime.errors import Violations

KEY = "call_webhook"
DEFAULT_WEBHOOK_TIMEOUT = 10
MAX_WEBHOOK_TIMEOUT = 30
MAX_URL = 2000


@dataclass(frozen=True)
class CallWebhook:
    url: str
    timeout_seconds: int = DEFAULT_WEBHOOK_TIMEOUT


def parse(body: dict[str, Any], path: str, problems: Violations) -> CallWebhook | None:
    url, timeout = body.get("url"), body.get("timeout_seconds", 0)
    ok = True
    try:
        parts = urlsplit(url) if isinstance(url, str) and not any(c.isspace() for c in url) else None
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or len(str(url)) > MAX_URL:
        problems.add(
            f"{path}.url", f"an http:// or https:// URL with a host, at most {MAX_URL} characters", "URL_INVALID"
        )
        ok = False
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= MAX_WEBHOOK_TIMEOUT:
        problems.add(
            f"{path}.timeout_seconds",
            f"0 (default {DEFAULT_WEBHOOK_TIMEOUT}) to {MAX_WEBHOOK_TIMEOUT}",
            "TIMEOUT_INVALID",
        )
        ok = False
    if not ok:
        return None
    return CallWebhook(str(url), int(timeout) or DEFAULT_WEBHOOK_TIMEOUT)


def describe(action: CallWebhook) -> str:
    return f"call webhook {action.url}"


def to_dict(action: CallWebhook) -> dict[str, Any]:
    # The default timeout is written out: the stored form does not depend on the default later.
    return {KEY: {"url": action.url, "timeout_seconds": action.timeout_seconds}}


def references(action: CallWebhook, path: str) -> list[Reference]:
    return []  # a URL is not the users service's to check
