"""OpenTelemetry traces, configured by the standard OTEL_* variables only.

OTEL_TRACES_EXPORTER: none (the default: nothing is instrumented, nothing costs), otlp (through
OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf, the default, or grpc, to OTEL_EXPORTER_OTLP_ENDPOINT),
console, or several comma-separated. The SDK itself reads OTEL_TRACES_SAMPLER(_ARG),
OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME and OTEL_BSP_*; service.name defaults to
steward-<service>.

gRPC calls are traced by opentelemetry-instrumentation-grpc's interceptors (servers and clients).
The asynchronous hops, which no instrumentation sees, carry a W3C `traceparent` string: stored
with an event or a run when it is written, and continued (as parent) or linked where the work
it causes is done later.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import client_interceptor, intercept_channel, server_interceptor
from opentelemetry.instrumentation.grpc.filters import any_of, method_name, negate, service_prefix
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from services.runtime.config import ConfigError

_PROPAGATOR = TraceContextTextMapPropagator()
# Probes and reflection are not worth a span each.
_TRACED = negate(service_prefix("grpc."))
# Nor is the users event stream the rules consumer holds open for hours: its batches are spans
# of their own, linked to each event's trace. (The client interceptor would also hide the
# stream's cancel() behind a generator.)
_TRACED_CALLS = negate(any_of(service_prefix("grpc."), method_name("WatchEvents")))
# A batch of runs from many traces links to each of them, up to this many.
MAX_LINKS = 128

_provider: TracerProvider | None = None


def configure(service: str) -> bool:
    """Install the process's tracer provider from the environment, once; True when tracing is on.
    A provider installed already (a test's, or another service's in the same process) is kept."""
    global _provider
    if _provider is not None:
        return True
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    exporters = [_exporter(name) for name in names if name != "none"]
    if not exporters:
        return False
    attributes: dict[str, str] = {}
    given = {pair.split("=")[0].strip() for pair in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name" not in given:
        attributes["service.name"] = f"steward-{service}"
    provider = TracerProvider(resource=Resource.create(attributes))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    return True


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER: {name!r} is not one of none, otlp, console")
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    ).strip() or "http/protobuf"
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of http/protobuf, grpc")


def install(provider: TracerProvider | None) -> None:
    """The provider every span of this process goes to (None: tracing off). Tests install theirs."""
    global _provider
    _provider = provider


def shutdown() -> None:
    """Export what is buffered (on SIGTERM, before the process exits)."""
    if _provider is not None:
        _provider.force_flush()


def enabled() -> bool:
    return _provider is not None


def tracer(name: str) -> trace.Tracer:
    return _provider.get_tracer(name) if _provider is not None else trace.NoOpTracer()


def server_interceptors() -> list[grpc.ServerInterceptor]:
    return [server_interceptor(tracer_provider=_provider, filter_=_TRACED)] if _provider is not None else []


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    if _provider is None:
        return channel
    return intercept_channel(channel, client_interceptor(tracer_provider=_provider, filter_=_TRACED_CALLS))


def current_traceparent() -> str:
    """The W3C traceparent of the span in progress, or "" (tracing off, or no span)."""
    if _provider is None or not trace.get_current_span().get_span_context().is_valid:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the span in progress, for logs and trailers."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _span_context(traceparent: str) -> trace.SpanContext | None:
    if not traceparent:
        return None
    context = trace.get_current_span(_PROPAGATOR.extract({"traceparent": traceparent})).get_span_context()
    return context if context.is_valid else None


@contextmanager
def span(name: str, traceparents: Iterable[str] = (), *, link: bool = False, **attributes: Any) -> Iterator[trace.Span]:
    """A span for work that an earlier, stored context caused: the child of that context when
    there is one (unless `link`), else a new trace linking to each of them (a batch from many
    traces, or a consumer reading another service's stream)."""
    if _provider is None:
        yield trace.INVALID_SPAN
        return
    contexts = {c.trace_id: c for c in filter(None, map(_span_context, traceparents))}
    parent = None
    links: Sequence[Link] = ()
    if len(contexts) == 1 and not link:
        parent = trace.set_span_in_context(trace.NonRecordingSpan(next(iter(contexts.values()))))
    elif contexts:
        links = [Link(c) for c in list(contexts.values())[:MAX_LINKS]]
    with tracer("steward").start_as_current_span(
        name, context=parent, links=links, kind=SpanKind.INTERNAL, attributes=attributes
    ) as current:
        yield current


def attach(traceparent: str) -> object | None:
    """Make a stored context current in this thread (a run started by a call, done on a thread of
    its own); detach() the returned token when done."""
    context = _span_context(traceparent)
    if context is None:
        return None
    return otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(context)))


def detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]
