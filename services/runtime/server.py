"""The gRPC server every Steward service runs: health, reflection, auth, logs, metrics,
migrations on start (SQLite default) and a graceful drain on SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime import metrics, tracing
from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.interceptor import ServerInterceptor
from services.runtime.logging import get_logger
from services.runtime.migrations import MigrationSet
from services.runtime.sealing import Keyring

log = get_logger("steward.server")
LIVENESS = "liveness"

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def serve_until_signalled(start: Callable[[], object], stop: Callable[[], object]) -> int:
    """start(), then stop() on SIGTERM or SIGINT (graceful: the caller drains); exit code 0."""
    stop_requested = threading.Event()

    def _request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal", signal=signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    start()
    # Wake up now and then: a signal delivered to another thread (gRPC's own, say) only runs
    # its Python handler once the main thread executes bytecode again.
    while not stop_requested.wait(0.5):
        pass
    stop()
    return 0


@dataclass(frozen=True)
class ServiceSpec:
    """What makes a service itself; everything else is the shared runtime."""

    name: str
    grpc_services: tuple[str, ...]
    migrations: MigrationSet
    register: Callable[[grpc.Server, Database, ServiceSettings], Sequence[BackgroundWorker]]
    on_ready: Callable[[Database, ServiceSettings], None] | None = None
    # Full method names ("/pkg.Service/Method") callable without a bearer token.
    public_methods: frozenset[str] = frozenset()
    # Seals every secret the service stores with the first key (runtime/sealing.py); the count.
    reseal: Callable[[Database], int] | None = None


class BackgroundWorker(Protocol):
    """Work a service does besides answering calls (e.g. sending queued emails)."""

    def start(self) -> None: ...

    def stop(self, timeout: float) -> None: ...


class ServiceRuntime:
    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.db = Database(settings.database_url, Keyring.from_text(settings.secrets_keys))
        self.health = health.HealthServicer()
        self.port = 0
        self.metrics_port: int | None = None
        self._server: grpc.Server | None = None
        self._draining = threading.Event()
        self._ready_hook_done = False
        self._workers: list[BackgroundWorker] = []

    @property
    def workers(self) -> Sequence[BackgroundWorker]:
        return tuple(self._workers)

    def start(self) -> None:
        if self.settings.migrate_on_start:
            self.spec.migrations.upgrade(self.settings.database_url)
            log.info("migrated", revision=self.spec.migrations.head())
        tracing.configure(self.spec.name)
        server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=self.settings.max_workers, thread_name_prefix=f"{self.spec.name}-rpc"
            ),
            # The trace's span first, so that the call's logs, trailers and events carry it.
            interceptors=[
                *tracing.server_interceptors(),
                ServerInterceptor(self.spec.name, self.settings.jwt_secret, self.spec.public_methods),
            ],
            options=self._server_options(),
        )
        self._workers = list(self.spec.register(server, self.db, self.settings))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        # For liveness probes: SERVING while the process runs, whatever the database does, so
        # that a database outage makes pods unready (no traffic) but does not restart them all.
        self.health.set(LIVENESS, SERVING)
        reflection.enable_server_reflection(
            (*self.spec.grpc_services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        self.port = server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise RuntimeError(f"cannot bind {self.settings.host}:{self.settings.port}")
        self._server = server
        self._check_readiness()
        server.start()
        self.metrics_port = metrics.serve_metrics(self.settings.host, self.settings.metrics_port)
        threading.Thread(target=self._watch_readiness, name=f"{self.spec.name}-health", daemon=True).start()
        try:
            for worker in self._workers:
                worker.start()
        except Exception:  # e.g. a port taken: stop what did start rather than leave it running
            self.stop(grace=0)
            raise
        log.info(
            "serving",
            address=f"{self.settings.host}:{self.port}",
            metrics_port=self.metrics_port,
            database=self.db.engine.url.render_as_string(hide_password=True),
            secrets_sealed=self.db.keyring.seals,
        )

    def _server_options(self) -> list[tuple[str, int]]:
        # Without so_reuseport=0 a second process could bind the same port and steal half the calls.
        options = [("grpc.so_reuseport", 0)]
        age = self.settings.max_connection_age_seconds
        if age > 0:
            # In-flight calls (and open streams, which their clients resume) get the grace period.
            options += [
                ("grpc.max_connection_age_ms", int(age * 1000)),
                ("grpc.max_connection_age_grace_ms", int(self.settings.grace_seconds * 1000)),
            ]
        return options

    def _set_health(self, status: int) -> None:
        for name in ("", *self.spec.grpc_services):
            self.health.set(name, status)
        metrics.SERVING.labels(self.spec.name).set(1 if status == SERVING else 0)

    def _check_readiness(self) -> None:
        """SERVING only while the database answers and its schema is at this build's head."""
        if self._draining.is_set():
            return
        try:
            self.db.ping()
            ready = self.spec.migrations.is_current(self.db)
            reason = "" if ready else "database schema is not at the expected migration"
            if ready and not self._ready_hook_done and self.spec.on_ready is not None:
                self.spec.on_ready(self.db, self.settings)
            self._ready_hook_done = self._ready_hook_done or ready
        except Exception as exc:  # an unreachable database is a health state, not a crash
            ready, reason = False, f"database unreachable or start-up hook failed: {type(exc).__name__}: {exc}"
        if not self._draining.is_set():
            self._set_health(SERVING if ready else NOT_SERVING)
        if not ready:
            log.warning("not_ready", reason=reason)

    def _watch_readiness(self) -> None:
        while not self._draining.wait(self.settings.health_check_interval_seconds):
            self._check_readiness()

    def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING, wait for the load balancer to notice, then finish in-flight calls."""
        if self._server is None or self._draining.is_set():
            return
        self._draining.set()
        self.health.enter_graceful_shutdown()
        metrics.SERVING.labels(self.spec.name).set(0)
        log.info("draining", delay_seconds=self.settings.drain_delay_seconds)
        if self.settings.drain_delay_seconds > 0:
            threading.Event().wait(self.settings.drain_delay_seconds)
        grace = self.settings.grace_seconds if grace is None else grace
        stopped = self._server.stop(grace)  # no new calls from here on; in-flight ones go on
        for worker in self._workers:  # ends open streams too, instead of waiting out the grace period
            worker.stop(timeout=grace)
        stopped.wait()
        self.db.dispose()
        tracing.shutdown()
        log.info("stopped")

    def serve_until_signalled(self) -> int:
        return serve_until_signalled(self.start, self.stop)
