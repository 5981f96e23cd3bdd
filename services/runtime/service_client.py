"""Calling another Steward service: a service token minted from the shared secret, a deadline
per call, and retries with exponential backoff for transient failures. Failures come back as
ServiceCallError carrying the status code and the callee's ErrorInfo reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from services.runtime import tracing
from services.runtime.auth import mint_token

TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
T = TypeVar("T")


class ServiceCallError(Exception):
    def __init__(self, code: grpc.StatusCode, reason: str, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code, self.reason, self.message = code, reason, message

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT


def translate(error: grpc.RpcError) -> ServiceCallError:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    reason = ""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    message = error.details() if callable(getattr(error, "details", None)) else str(error)
    return ServiceCallError(code, reason or code.name, message or code.name)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    deadline_seconds: float = 5.0


class ServiceClient:
    """One channel to a service, as `subject` with `scopes`."""

    def __init__(
        self, address: str, jwt_secret: str, subject: str, scopes: Sequence[str], retry: RetryPolicy | None = None
    ) -> None:
        self.address = address
        self._secret = jwt_secret
        self._subject, self._scopes = subject, tuple(scopes)
        self._retry = retry or RetryPolicy()
        # round_robin spreads calls over every address the name resolves to: with
        # "dns:///<headless service>:<port>" that is every replica, not one per client.
        # Reconnect backoff capped at 2 s (gRPC's default grows to 120 s): after an outage of the
        # service, callers reach it again within seconds of its return, not minutes.
        self.channel = tracing.traced_channel(
            grpc.insecure_channel(
                address,
                options=[
                    ("grpc.lb_policy_name", "round_robin"),
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 2000),
                ],
            )
        )
        self._token_lock = threading.Lock()
        self._token, self._token_expiry = "", 0.0

    def close(self) -> None:
        self.channel.close()

    # As a BackgroundWorker: listed after the workers that use it, it closes the channel once
    # they have stopped.
    def start(self) -> None:
        pass

    def stop(self, timeout: float) -> None:
        self.close()

    def metadata(self) -> list[tuple[str, str]]:
        with self._token_lock:
            if time.time() > self._token_expiry - 300:
                self._token = mint_token(self._secret, self._subject, scopes=self._scopes, ttl_seconds=3600)
                self._token_expiry = time.time() + 3600
            return [("authorization", f"Bearer {self._token}")]

    def call(self, method: Callable[..., T], request: Any, *, deadline: float | None = None) -> T:
        """One unary call; transient failures are retried with exponential backoff."""
        policy = self._retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff),
            retry=retry_if_exception(lambda e: isinstance(e, ServiceCallError) and e.transient),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                try:
                    return method(request, metadata=self.metadata(), timeout=deadline or policy.deadline_seconds)
                except grpc.RpcError as error:
                    raise translate(error) from None
        raise AssertionError("unreachable: tenacity reraises")
