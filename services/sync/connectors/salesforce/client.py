"""Salesforce over its REST API: OAuth 2.0 tokens (client credentials or JWT bearer), SOQL
queries followed through nextRecordsUrl, and the failures that matter.

    401 INVALID_SESSION_ID   the token expired: get a new one, once, and repeat the call
    429, 503, 5xx, network   transient: retried with backoff, honouring Retry-After
    403 REQUEST_LIMIT_EXCEEDED, 400 MALFORMED_QUERY / INVALID_FIELD, bad credentials
                             permanent: the run fails with Salesforce's error code
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import jwt
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from services.runtime import tracing
from services.sync.connectors.port import ConnectorError
from services.sync.domain.connection import Connection, OAuthGrant

PAGE_SIZE = 2000


def token_endpoint(connection: Connection) -> str:
    return connection.token_url or f"{connection.instance_url.rstrip('/')}/services/oauth2/token"


class SalesforceError(ConnectorError):
    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__("SALESFORCE", status, code, message, retry_after)


@dataclass(frozen=True)
class SalesforceRetry:
    attempts: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    timeout_seconds: float = 60.0


def _wait(policy: SalesforceRetry) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        backoff = min(policy.initial_backoff * 2 ** (state.attempt_number - 1), policy.max_backoff)
        if isinstance(error, SalesforceError) and error.retry_after is not None:
            return min(max(error.retry_after, backoff), policy.max_backoff)
        return backoff

    return wait


def _error(status: int, body: bytes, headers: Any) -> SalesforceError:
    retry_after = None
    if headers is not None and headers.get("Retry-After"):
        try:
            retry_after = float(headers.get("Retry-After"))
        except ValueError:
            retry_after = None
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        payload = None
    if isinstance(payload, list) and payload and isinstance(payload[0], dict):
        return SalesforceError(
            status, str(payload[0].get("errorCode", status)), str(payload[0].get("message", "")), retry_after
        )
    if isinstance(payload, dict) and "error" in payload:  # OAuth errors
        return SalesforceError(status, str(payload["error"]), str(payload.get("error_description", "")), retry_after)
    return SalesforceError(status, f"HTTP_{status}", body[:200].decode(errors="replace"), retry_after)


def parse_datetime(value: str) -> dt.datetime:
    """2025-01-01T00:00:00.000+0000 (Salesforce JSON) or ISO 8601 with Z / ±hh:mm."""
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = text[:-2] + ":" + text[-2:]
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def flatten_record(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"User": {"attributes": ..., "Email": "a@x"}} -> {"User.Email": "a@x"}; dates parsed."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        if isinstance(value, dict):
            flat |= flatten_record(value, f"{prefix}{key}.")
        elif key == "LastModifiedDate" and isinstance(value, str):
            flat[f"{prefix}{key}"] = parse_datetime(value)
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class SalesforceClient:
    def __init__(self, connection: Connection, retry: SalesforceRetry | None = None) -> None:
        self._connection = connection
        self._retry = retry or SalesforceRetry()
        self._token = ""
        self._instance = connection.instance_url.rstrip("/")
        self._lock = threading.Lock()
        self.requests = 0

    # --- HTTP ---

    def _send(self, request: urllib.request.Request) -> Any:
        self.requests += 1
        try:
            with (
                tracing.span("salesforce.request", method=request.get_method()),
                urllib.request.urlopen(request, timeout=self._retry.timeout_seconds) as response,
            ):
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _error(error.code, error.read(), error.headers) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise SalesforceError(0, "UNREACHABLE", str(getattr(error, "reason", error))) from None

    def _retrying(self, action: Callable[[], Any]) -> Any:
        retrying = Retrying(
            stop=stop_after_attempt(self._retry.attempts),
            wait=_wait(self._retry),
            retry=retry_if_exception(lambda e: isinstance(e, SalesforceError) and e.transient),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return action()
        raise AssertionError("unreachable: tenacity reraises")

    # --- OAuth ---

    def _assertion(self) -> str:
        c = self._connection
        claims = {
            "iss": c.client_id,
            "sub": c.username,
            "aud": urllib.parse.urlsplit(token_endpoint(c))._replace(path="", query="").geturl(),
            "exp": int(time.time()) + 180,
        }
        algorithm = "RS256" if "BEGIN" in c.private_key else "HS256"
        return jwt.encode(claims, c.private_key, algorithm=algorithm)

    def refresh_token(self) -> str:
        c = self._connection
        if c.grant is OAuthGrant.JWT_BEARER:
            form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self._assertion()}
        else:
            form = {"grant_type": "client_credentials", "client_id": c.client_id, "client_secret": c.client_secret}
        request = urllib.request.Request(
            token_endpoint(c),
            data=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        payload = self._retrying(lambda: self._send(request))
        with self._lock:
            self._token = str(payload["access_token"])
            self._instance = str(payload.get("instance_url") or self._instance).rstrip("/")
        return self._token

    def _get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """GET with the token; an expired token is replaced once and the call repeated."""
        if not self._token:
            self.refresh_token()
        for renewed in (False, True):
            request = urllib.request.Request(
                self._instance + path,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json", **(headers or {})},
            )
            try:
                return self._retrying(partial(self._send, request))
            except SalesforceError as error:
                if error.status != 401 or renewed:
                    raise
                self.refresh_token()
        raise AssertionError("unreachable")

    # --- API ---

    def query(self, soql: str, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Pages of flattened records, following nextRecordsUrl to the end."""
        version = self._connection.api_version
        path = f"/services/data/v{version}/query?{urllib.parse.urlencode({'q': soql})}"
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"}
        while path:
            payload = self._get(path, headers)
            yield [flatten_record(r) for r in payload.get("records", [])]
            path = "" if payload.get("done", True) else str(payload.get("nextRecordsUrl", ""))

    def check(self, sobject: str) -> None:
        """A token, then the object's describe: may this user read it (what TestConnection runs)?"""
        self.refresh_token()
        self._get(f"/services/data/v{self._connection.api_version}/sobjects/{sobject}/describe")
