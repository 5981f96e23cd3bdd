"""Delivers a play's call_webhook action: an HTTP(S) POST of a signed JSON body.

The receiver can check where it came from (HMAC-SHA256 of the exact body bytes with the play's
secret, header X-Steward-Signature: sha256=<hex>) and drop a repeated delivery (header
Idempotency-Key, the same on every retry of the same run and action). 5xx answers, timeouts and
connection errors are retried with exponential backoff; any other answer is final.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

SIGNATURE_HEADER = "X-Steward-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "Steward-Webhooks/1"


class WebhookRetryable(Exception):
    """A 5xx, a timeout or a connection error: worth another attempt."""


@dataclass(frozen=True)
class Delivery:
    status: int  # 0 when no answer came at all
    attempts: int
    detail: str

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the signature is over exactly these bytes."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class WebhookPolicy:
    attempts: int = 4
    base_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0


DEFAULT_POLICY = WebhookPolicy()


def deliver(
    url: str,
    payload: dict[str, Any],
    secret: str,
    idempotency_key: str,
    *,
    timeout_seconds: float,
    policy: WebhookPolicy = DEFAULT_POLICY,
) -> Delivery:
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, body),
        IDEMPOTENCY_HEADER: idempotency_key,
    }
    attempts = 0
    last = Delivery(0, 0, "not attempted")

    def attempt() -> Delivery:
        nonlocal attempts
        attempts += 1
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_seconds) as reply:
                return Delivery(reply.status, attempts, f"HTTP {reply.status}")
        except urllib.error.HTTPError as answer:
            delivery = Delivery(answer.code, attempts, f"HTTP {answer.code} {answer.reason}")
            if answer.code >= 500:
                raise WebhookRetryable(delivery) from answer
            return delivery
        except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as error:
            reason = getattr(error, "reason", error)
            raise WebhookRetryable(Delivery(0, attempts, f"{type(error).__name__}: {reason}")) from error

    try:
        for retry in Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential(multiplier=policy.base_backoff_seconds, max=policy.max_backoff_seconds),
            retry=retry_if_exception_type(WebhookRetryable),
            reraise=True,
        ):
            with retry:
                last = attempt()
    except WebhookRetryable as gave_up:
        last = gave_up.args[0]
    return last
