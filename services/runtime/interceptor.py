"""One server interceptor for every service: authentication, request ids, error mapping,
structured access logs and Prometheus metrics.

Health and reflection stay open so that Kubernetes probes and grpcurl work without a token.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple, NoReturn

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status
from sqlalchemy.exc import OperationalError

from services.runtime import metrics, request_checks, tracing
from services.runtime.auth import Principal, principal_from_metadata, reset_principal, set_principal
from services.runtime.errors import Aborted, DomainError, Unavailable
from services.runtime.grpc_errors import internal_status, status_for
from services.runtime.logging import get_logger

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
REQUEST_ID_HEADER = "x-request-id"
TRACE_ID_HEADER = "x-trace-id"

log = get_logger("steward.access")


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


class _CallState:
    """What one call has learnt about itself, for the access log line."""

    def __init__(self, method: str, metadata: tuple[tuple[str, Any], ...]) -> None:
        self.method = method
        self.started = time.perf_counter()
        self.metadata = metadata
        self.counted = False
        given = next((v for k, v in metadata if k == REQUEST_ID_HEADER), "")
        self.request_id = str(given)[:128] if given else uuid.uuid4().hex
        self.code = grpc.StatusCode.OK
        self.actor = ""
        self.error_reason = ""


# PostgreSQL's deadlock_detected and serialization_failure: the transaction lost a race and
# rolled back whole; the client should retry the call (ABORTED), not wait for a database that
# is up (UNAVAILABLE).
CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})


def database_error(error: OperationalError) -> DomainError:
    """What a client is told when the database refused the transaction."""
    if getattr(error.orig, "sqlstate", None) in CONFLICT_SQLSTATES:
        return Aborted("TRANSACTION_CONFLICT", "a concurrent call touched the same rows; retry the call")
    return Unavailable("DATABASE_UNAVAILABLE", "the database is not reachable now; retry later")


def _trailers(state: _CallState) -> tuple[tuple[str, str], ...]:
    """Every answer names its request id, and its trace id when the call is traced, so that a
    caller can find the call in logs and in the tracing backend (grpcurl -v shows trailers)."""
    ids = tracing.current_ids()
    if ids is None:
        return ((REQUEST_ID_HEADER, state.request_id),)
    return (REQUEST_ID_HEADER, state.request_id), (TRACE_ID_HEADER, ids[0])


class ServerInterceptor(grpc.ServerInterceptor):
    def __init__(self, service: str, jwt_secret: str, public_methods: frozenset[str] = frozenset()) -> None:
        self._service = service
        self._secret = jwt_secret
        # Methods whose request carries its own credential (e.g. an invitation token).
        self._public = public_methods

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method: str = details.method
        is_open = method.startswith(OPEN_PREFIXES) or method in self._public
        if handler.unary_unary:
            return handler._replace(unary_unary=self._wrap_unary(handler.unary_unary, method, is_open))
        if handler.stream_unary:
            return handler._replace(stream_unary=self._wrap_unary(handler.stream_unary, method, is_open))
        if handler.unary_stream:
            return handler._replace(unary_stream=self._wrap_stream(handler.unary_stream, method, is_open))
        return handler._replace(stream_stream=self._wrap_stream(handler.stream_stream, method, is_open))

    def _wrap_unary(self, behaviour: Callable[..., Any], method: str, is_open: bool) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            state = _CallState(method, tuple(context.invocation_metadata() or ()))
            context.set_trailing_metadata(_trailers(state))
            token = None
            try:
                token = self._authenticate(state, is_open)
                if isinstance(request, Message):  # a client stream is checked by its method
                    request_checks.check(request)
                return behaviour(request, context)
            except Exception as exc:  # every failure becomes a status, never a stack trace
                self._fail(exc, state, context)
            finally:
                self._end(state, token, is_open)

        return call

    def _wrap_stream(self, behaviour: Callable[..., Any], method: str, is_open: bool) -> Callable[..., Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            state = _CallState(method, tuple(context.invocation_metadata() or ()))
            context.set_trailing_metadata(_trailers(state))
            token = None
            try:
                token = self._authenticate(state, is_open)
                if isinstance(request, Message):
                    request_checks.check(request)
                yield from behaviour(request, context)
            except Exception as exc:
                self._fail(exc, state, context)
            finally:
                self._end(state, token, is_open)

        return call

    def _authenticate(self, state: _CallState, is_open: bool) -> Any:
        metrics.IN_FLIGHT.labels(self._service).inc()
        state.counted = True
        principal: Principal | None = None
        if not is_open:
            principal = principal_from_metadata(self._secret, state.metadata)
            state.actor = principal.subject
        return set_principal(principal)

    def _fail(self, exc: Exception, state: _CallState, context: grpc.ServicerContext) -> NoReturn:
        if isinstance(exc, OperationalError):
            exc = database_error(exc)
        if isinstance(exc, DomainError):
            status = status_for(exc, self._service)
            state.error_reason = exc.reason
        else:
            error_id = uuid.uuid4().hex
            log.error(
                "unhandled_exception", method=state.method, request_id=state.request_id, error_id=error_id, exc_info=exc
            )
            status = internal_status(error_id, self._service)
            state.error_reason = "INTERNAL"
        converted = rpc_status.to_status(status)
        state.code = converted.code
        context.abort_with_status(
            _Status(
                converted.code,
                converted.details,
                (*converted.trailing_metadata, *_trailers(state)),
            )
        )
        raise AssertionError("abort_with_status always raises")

    def _end(self, state: _CallState, token: Any, is_open: bool) -> None:
        if token is not None:
            reset_principal(token)
        duration = time.perf_counter() - state.started
        code = state.code.name
        if state.counted:
            metrics.IN_FLIGHT.labels(self._service).dec()
        metrics.REQUESTS.labels(self._service, state.method, code).inc()
        metrics.LATENCY.labels(self._service, state.method).observe(duration)
        emit = log.debug if is_open and state.code == grpc.StatusCode.OK else log.info
        emit(
            "rpc",
            method=state.method,
            code=code,
            duration_ms=round(duration * 1000, 3),
            request_id=state.request_id,
            actor=state.actor,
            reason=state.error_reason or None,
        )
