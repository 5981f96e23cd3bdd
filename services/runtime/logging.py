"""structlog set-up: one JSON object per line on stdout, the same on every service."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from services.runtime import tracing


def configure_logging(service: str, level: str = "info", fmt: str = "json") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            # Every line names its service, whichever thread wrote it (context vars are per thread).
            lambda _logger, _name, event: {"service": service, **event},
            _trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # No fixed file: each logger writes to whatever sys.stdout is when it is made (tests capture it).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (alembic, grpc) go to stderr, plainly.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)


def _trace_ids(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """trace_id and span_id on every line written inside a span (tracing on)."""
    ids = tracing.current_ids()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
    return event


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)
