"""The shared runtime, seen from outside: opaque INTERNAL errors, JSON access logs, Prometheus metrics."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import grpc

from services.runtime.migrations import MigrationSet
from services.runtime.server import ServiceSpec
from services.users.app import SPEC as USERS
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import bearer
from tests.errors import call_fails


def _exploding_service(server: grpc.Server, db, settings):
    def explode(request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("secret internals: password=hunter2")

    handler = grpc.method_handlers_generic_handler(
        "test.Boom", {"Explode": grpc.unary_unary_rpc_method_handler(explode)}
    )
    server.add_generic_rpc_handlers((handler,))
    return ()


# A service with the users schema (so it is healthy) and one method that always fails unexpectedly.
BOOM = ServiceSpec(
    name="users",
    grpc_services=("test.Boom",),
    migrations=MigrationSet("users", Path(USERS.migrations.directory)),
    register=_exploding_service,
)


def _log_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_unexpected_exception_is_internal_with_an_error_id_that_is_logged(serve, capsys):
    running = serve(BOOM)
    explode = running.channel.unary_unary("/test.Boom/Explode")
    failure = call_fails(explode, b"", metadata=bearer())
    assert failure.code == grpc.StatusCode.INTERNAL
    assert failure.reason == "INTERNAL"
    error_id = failure.error_metadata["error_id"]
    assert error_id in failure.message
    assert "hunter2" not in failure.message and "Traceback" not in failure.message
    logged = [entry for entry in _log_lines(capsys.readouterr().out) if entry.get("error_id") == error_id]
    assert logged and "hunter2" in logged[0]["exception"]  # the operator sees what the client does not


def test_every_call_is_logged_with_method_code_duration_request_id_and_actor(serve, capsys):
    running = serve(USERS)
    stub = users_pb2_grpc.UserServiceStub(running.channel)
    _, call = stub.ListUsers.with_call(
        users_pb2.ListUsersRequest(), metadata=[*bearer("auditor-1"), ("x-request-id", "req-abc")]
    )
    assert ("x-request-id", "req-abc") in tuple(call.trailing_metadata())  # echoed for client-side correlation
    call_fails(stub.GetUser, users_pb2.GetUserRequest(name="bad"), metadata=bearer("auditor-1"))
    lines = [e for e in _log_lines(capsys.readouterr().out) if e.get("event") == "rpc"]
    ok = next(e for e in lines if e["request_id"] == "req-abc")
    assert ok["method"] == "/steward.users.v1.UserService/ListUsers"
    assert ok["code"] == "OK" and ok["actor"] == "auditor-1" and ok["duration_ms"] >= 0
    bad = next(e for e in lines if e["method"].endswith("/GetUser"))
    assert bad["code"] == "INVALID_ARGUMENT" and bad["reason"] == "RESOURCE_NAME_INVALID"


def test_metrics_count_calls_by_method_and_code(serve):
    running = serve(USERS, metrics_port=0)
    stub = users_pb2_grpc.UserServiceStub(running.channel)
    for _ in range(3):
        stub.ListUsers(users_pb2.ListUsersRequest(), metadata=bearer())
    call_fails(stub.ListUsers, users_pb2.ListUsersRequest())
    body = urllib.request.urlopen(f"http://127.0.0.1:{running.runtime.metrics_port}/metrics", timeout=5).read().decode()
    method = "/steward.users.v1.UserService/ListUsers"
    counts = {
        line.split('code="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("steward_grpc_requests_total{") and f'method="{method}"' in line
    }
    # Counters are process-wide, so other tests may have added to them: at least ours are there.
    assert counts["OK"] >= 3 and counts["UNAUTHENTICATED"] >= 1
    assert "steward_grpc_request_duration_seconds_bucket" in body
    assert 'steward_serving{service="users"} 1.0' in body
