"""Every server exposes grpc.health.v1 and reflection, without a token."""

from __future__ import annotations

import time

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
    USERS.migrations.upgrade(running.runtime.settings.database_url)
    # The readiness watchdog notices the migration without a restart.
    assert _wait_for(running.channel, SERVING) == SERVING


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
