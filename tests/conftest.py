"""Shared fixtures: real databases (SQLite, and PostgreSQL when STEWARD_TEST_DATABASE_URL is set)
and real gRPC servers of the services on ephemeral loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from services.runtime.auth import mint_token
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging
from services.runtime.server import ServiceRuntime, ServiceSpec
from tests.scratch_db import create_schema, drop_schemas

JWT_SECRET = "test-secret-" + "x" * 32
POSTGRES_URL = os.environ.get("STEWARD_TEST_DATABASE_URL", "")

configure_logging("tests", "info", "json")
# Services built from the environment (app.SPEC) in this process serve no SCIM port unless a
# test asks: two of them would both want 50061. Tests that need SCIM configure it (port 0).
os.environ.setdefault("STEWARD_USERS_SCIM_PORT", "-1")


def _backends() -> list[object]:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)] if POSTGRES_URL else ["sqlite"]


@dataclass
class DatabaseFactory:
    """Hands out empty databases: SQLite files under tmp_path, or fresh PostgreSQL schemas."""

    backend: str
    tmp_path: Path
    schemas: list[str]

    def url(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / name}.db"
        schema, url = create_schema(POSTGRES_URL, name)
        self.schemas.append(schema)
        return url

    def drop_all(self) -> None:
        drop_schemas(POSTGRES_URL, self.schemas)


@pytest.fixture(params=_backends())
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(request.param, tmp_path, [])
    yield factory
    factory.drop_all()


def settings_for(service: str, database_url: str, **overrides: object) -> ServiceSettings:
    base = ServiceSettings(
        service=service,
        host="127.0.0.1",
        port=0,
        metrics_port=-1,
        database_url=database_url,
        jwt_secret=JWT_SECRET,
        log_level="info",
        log_format="json",
        migrate_on_start=True,
        grace_seconds=5.0,
        drain_delay_seconds=0.0,
        health_check_interval_seconds=0.2,
        max_workers=8,
    )
    return base.model_copy(update=overrides)


@dataclass
class RunningService:
    runtime: ServiceRuntime
    channel: grpc.Channel

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.runtime.port}"

    @property
    def db(self):  # the service's own database, for seeding rows the API cannot create yet
        return self.runtime.db


def start_service(spec: ServiceSpec, settings: ServiceSettings) -> RunningService:
    runtime = ServiceRuntime(spec, settings)
    runtime.start()
    return RunningService(runtime, grpc.insecure_channel(f"127.0.0.1:{runtime.port}"))


def stop_service(service: RunningService) -> None:
    service.channel.close()
    service.runtime.stop(grace=1)


@pytest.fixture
def serve(databases: DatabaseFactory) -> Iterator[object]:
    """serve(spec, **settings) starts a real server of that service on its own empty database."""
    started: list[RunningService] = []

    def _serve(spec: ServiceSpec, **overrides: object) -> RunningService:
        """database_url among the overrides: a second database of that service (e.g. two directories)."""
        url = str(overrides.pop("database_url", "") or databases.url(spec.name))
        service = start_service(spec, settings_for(spec.name, url, **overrides))
        started.append(service)
        return service

    yield _serve
    for service in started:
        stop_service(service)


def fuzz_settings(examples: int) -> Any:
    """Hypothesis settings of the fuzz tests: the same requests on every run (CI time stays
    predictable), no deadline or example database, against a live service."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


def bearer(
    subject: str = "admin-tests", roles: tuple[str, ...] = ("admin",), **kwargs: object
) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {mint_token(JWT_SECRET, subject, roles=roles, **kwargs)}")]  # type: ignore[arg-type]


@pytest.fixture
def admin() -> list[tuple[str, str]]:
    return bearer()


@pytest.fixture
def smtp():
    from tests.processes import free_port
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink(free_port()).start()
    yield sink
    sink.stop()


@pytest.fixture
def users_api(serve, smtp):
    """serve the users service with a config (defaults: no limits, emails to the test SMTP sink)."""
    from services.users.app import build_spec
    from services.users.config import SmtpSettings, UsersConfig
    from steward.users.v1 import users_pb2_grpc

    def _start(config: UsersConfig | None = None, **overrides: object) -> UsersApi:
        base = config or UsersConfig()
        config = base.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=smtp.port, poll_seconds=0.05)})
        running = serve(build_spec(config), **overrides)
        return UsersApi(
            running, users_pb2_grpc.UserServiceStub(running.channel), users_pb2_grpc.TeamServiceStub(running.channel)
        )

    return _start


@dataclass
class UsersApi:
    running: RunningService
    users: Any
    teams: Any

    @property
    def db(self):
        return self.running.db

    @property
    def assignments(self):
        from steward.users.v1 import assignments_pb2_grpc

        return assignments_pb2_grpc.AssignmentServiceStub(self.running.channel)

    @property
    def tasks(self):
        from steward.users.v1 import work_pb2_grpc

        return work_pb2_grpc.TaskServiceStub(self.running.channel)

    @property
    def resources(self):
        from steward.users.v1 import work_pb2_grpc

        return work_pb2_grpc.ResourceServiceStub(self.running.channel)

    @property
    def events(self):
        from steward.users.v1 import events_pb2_grpc

        return events_pb2_grpc.EventServiceStub(self.running.channel)


@dataclass
class RulesApi:
    """A rules service wired to a real users service (both on loopback, each on its own database)."""

    running: RunningService
    users: UsersApi

    @property
    def address(self) -> str:
        return self.running.address

    @property
    def users_address(self) -> str:
        return self.users.running.address

    @property
    def db(self):
        return self.running.db

    @property
    def plays(self):
        from steward.rules.v1 import plays_pb2_grpc

        return plays_pb2_grpc.PlayServiceStub(self.running.channel)

    @property
    def events(self):
        from steward.rules.v1 import events_pb2_grpc

        return events_pb2_grpc.AccountEventServiceStub(self.running.channel)


def rules_config(users_address: str, **overrides: object):
    from services.rules.config import RulesConfig

    # Short backoffs: tests wait for runs that retry while the users service is away.
    base = RulesConfig(users_address=users_address, run_retry_base_seconds=0.05, run_retry_max_seconds=0.5)
    return base.model_copy(update=overrides)


@pytest.fixture
def rules_stack(serve, users_api):
    """rules_stack(users=None, **config) -> RulesApi; starts a users service unless given one."""
    from services.rules.app import build_spec

    def _start(users: UsersApi | None = None, **config: object) -> RulesApi:
        users = users or users_api()
        return RulesApi(serve(build_spec(rules_config(users.running.address, **config))), users)

    return _start


@pytest.fixture
def rules_api(rules_stack) -> RulesApi:
    return rules_stack()


# The console's browser fixtures (tests/test_console_*.py): here, so that every module sees them.
from tests.console_kit import browser, page, stack  # noqa: E402, F401
