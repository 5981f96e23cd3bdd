"""Every server exposes grpc.health.v1 and reflection, without a token."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.rules.app import SPEC as RULES
from services.sync.app import SPEC as SYNC
from services.users.app import SPEC as USERS

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
EXPECTED = {
    "users": "steward.users.v1.UserService",
    "rules": "steward.rules.v1.PlayService",
    "sync": "steward.sync.v1.JobService",
}


def _health(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def test_all_three_services_report_serving(serve):
    for spec in (USERS, RULES, SYNC):
        running = serve(spec)
        assert _health(running.channel) == SERVING
        assert _health(running.channel, EXPECTED[spec.name]) == SERVING


def test_unknown_health_service_is_not_found(serve):
    running = serve(USERS)
    with pytest.raises(grpc.RpcError) as err:
        _health(running.channel, "steward.nope.v1.Nothing")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_steward_services(serve):
    for spec in (USERS, RULES, SYNC):
        running = serve(spec)
        stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=EXPECTED[spec.name]),
        ]
        listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
        names = {s.name for s in listed.list_services_response.service}
        assert EXPECTED[spec.name] in names
        assert "grpc.health.v1.Health" in names
        # grpcurl needs the file descriptors, not just names.
        assert described.file_descriptor_response.file_descriptor_proto, described


def _wait_for(channel: grpc.Channel, status: int, seconds: float = 10) -> int:
    deadline = time.monotonic() + seconds
    current = _health(channel)
    while current != status and time.monotonic() < deadline:
        time.sleep(0.05)
        current = _health(channel)
    return current


def test_not_serving_until_the_schema_is_migrated(serve):
    running = serve(USERS, migrate_on_start=False)
    assert _health(running.channel) == NOT_SERVING
    # Not ready, yet alive: a liveness probe must not restart a pod for its database's sake.
    assert _health(running.channel, "liveness") == SERVING
    USERS.migrations.upgrade(running.runtime.settings.database_url)
    # The readiness watchdog notices the migration without a restart.
    assert _wait_for(running.channel, SERVING) == SERVING


def _stamp(database_url: str, revision: str) -> None:
    """Set the users schema's recorded revision, as another build's migration would."""
    from sqlalchemy import text

    from services.runtime.db import Database

    db = Database(database_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text(f"UPDATE {USERS.migrations.version_table} SET version_num = :r"), {"r": revision})
    finally:
        db.dispose()


def test_a_newer_schema_keeps_serving_and_an_older_one_does_not(serve):
    """Rolling update: the migration Job moves the schema ahead while old pods still serve."""
    running = serve(USERS)
    url = running.runtime.settings.database_url
    assert _health(running.channel) == SERVING
    _stamp(url, "9999_from_a_newer_build")  # a revision this build does not know: newer
    time.sleep(0.5)  # several readiness checks
    assert _health(running.channel) == SERVING
    _stamp(url, "0001")  # a revision this build knows and has migrated past: behind
    assert _wait_for(running.channel, NOT_SERVING) == NOT_SERVING


def _await_schema(database_url: str, timeout: str) -> subprocess.CompletedProcess[str]:
    return _users_cli(database_url, "await-schema", "--timeout", timeout, "--interval", "0.1")


def _users_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "steward-users"  # the console script the pods run
    return subprocess.run(
        [str(script), *args],
        env={**os.environ, "STEWARD_USERS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_await_schema_waits_for_the_migration_then_lets_the_pod_start(databases):
    url = databases.url("users")
    waited = _await_schema(url, "0.5")  # nothing migrated yet
    assert waited.returncode == 1 and "gave up after 0.5s: schema behind" in waited.stderr
    USERS.migrations.upgrade(url)
    done = _await_schema(url, "5")
    assert done.returncode == 0 and "schema current" in done.stderr
    _stamp(url, "9999_from_a_newer_build")
    ahead = _await_schema(url, "5")
    assert ahead.returncode == 0 and "schema ahead" in ahead.stderr


def test_draining_server_reports_not_serving_and_refuses_new_calls(serve):
    running = serve(USERS, drain_delay_seconds=0.5)
    watch = health_pb2_grpc.HealthStub(running.channel).Watch(health_pb2.HealthCheckRequest(), timeout=10)
    assert next(watch).status == SERVING
    import threading

    stopper = threading.Thread(target=running.runtime.stop)
    stopper.start()
    # During the drain delay the server still answers, and says it is going away.
    assert next(watch).status == NOT_SERVING
    stopper.join()
    with pytest.raises(grpc.RpcError) as err:
        _health(running.channel)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_connections_older_than_the_max_age_are_closed_and_clients_reconnect(serve):
    """So that clients re-resolve and spread over replicas started after them."""
    running = serve(USERS, max_connection_age_seconds=0.3, grace_seconds=0.2)
    states: list[grpc.ChannelConnectivity] = []
    running.channel.subscribe(states.append, try_to_connect=True)
    assert _health(running.channel) == SERVING
    deadline = time.monotonic() + 30
    # Past age + grace the server sends GOAWAY and closes the connection; the channel connects
    # again by itself (a second READY) and keeps answering.
    while states.count(grpc.ChannelConnectivity.READY) < 2:
        assert time.monotonic() < deadline, f"never reconnected: {states}"
        assert _health(running.channel) == SERVING
        time.sleep(0.1)
    assert _health(running.channel) == SERVING


def test_migrate_leaves_a_newer_schema_alone_and_refuses_to_go_back(databases):
    """Rolling back re-runs the older build's migration Job: it must succeed and change nothing."""
    url = databases.url("users")
    assert _users_cli(url, "migrate").returncode == 0
    back = _users_cli(url, "migrate", "0003")  # alembic would silently do nothing
    assert back.returncode == 1 and "migrate only upgrades" in back.stderr
    _stamp(url, "9999_from_a_newer_build")
    ahead = _users_cli(url, "migrate")
    assert ahead.returncode == 0 and "ahead of this build" in ahead.stderr
