"""SIGTERM lets in-flight calls finish, refuses new ones, and exits 0 (a real process, real signal)."""

from __future__ import annotations

import signal
import sqlite3
import urllib.request
from contextlib import contextmanager

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.runtime.db import Database
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import JWT_SECRET, bearer
from tests.processes import free_port, python_module, users_process
from tests.seed import add_user


@contextmanager
def row_locked(url: str, user_id: str):
    """Hold a write lock on the user's row from outside the service, so its update has to wait."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        lite = sqlite3.connect(str(parsed.database), isolation_level=None)
        lite.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            lite.execute("ROLLBACK")
            lite.close()
        return
    engine = create_engine(url)
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": user_id})
        try:
            yield
        finally:
            transaction.rollback()
    engine.dispose()


def _in_flight(metrics_port: int) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
    line = next(line for line in body.splitlines() if line.startswith('steward_grpc_in_flight{service="users"}'))
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.slow
def test_sigterm_during_a_slow_call_lets_it_finish(databases):
    url = databases.url("users")
    metrics_port = free_port()
    process, address = users_process(
        url, JWT_SECRET, STEWARD_USERS_METRICS_PORT=str(metrics_port), STEWARD_GRACE_SECONDS="30"
    )
    try:
        db = Database(url)
        ada = add_user(db, "ada@example.com")
        channel = grpc.insecure_channel(address)
        stub = users_pb2_grpc.UserServiceStub(channel)
        request = users_pb2.UpdateUserRequest(
            user=users_pb2.User(name=f"users/{ada.id}", first_name="Finished"),
            update_mask=FieldMask(paths=["first_name"]),
        )
        with row_locked(url, ada.id):
            slow_call = stub.UpdateUser.future(request, metadata=bearer(), timeout=60)
            process.wait_for(lambda: _in_flight(metrics_port) == 1, what="the call to be in flight")
            process.popen.send_signal(signal.SIGTERM)
            process.wait_for(lambda: any('"draining"' in line for line in process.stdout), what="draining")
            assert process.popen.poll() is None, "the server quit with a call still running"
            assert not slow_call.done()
            # A new call now is refused: the server no longer accepts work.
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListUsers(users_pb2.ListUsersRequest(), metadata=bearer(), timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert slow_call.result(timeout=30).first_name == "Finished"
        assert process.popen.wait(timeout=30) == 0
        assert any('"stopped"' in line for line in process.stdout)
        channel.close()
        with UsersUnitOfWork(db, write=False) as uow:
            stored = uow.users.get(ada.id)
        assert stored is not None and stored.first_name == "Finished"
        db.dispose()
    finally:
        process.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("service", "variable", "value", "message"),
    [
        ("users", "STEWARD_JWT_SECRET", "", "STEWARD_JWT_SECRET must be set to at least 32 characters"),
        # Read as the service starts, after the shared settings.
        (
            "users",
            "STEWARD_SCIM_CREATE_STATUS",
            "sso",
            "STEWARD_SCIM_CREATE_STATUS must be created or active, got 'sso'",
        ),
        ("rules", "STEWARD_RULES_PARTITIONS", "0", "STEWARD_RULES_PARTITIONS must be at least 1, got 0"),
        (
            "sync",
            "STEWARD_SYNC_SALESFORCE_ATTEMPTS",
            "x",
            "STEWARD_SYNC_SALESFORCE_ATTEMPTS must be an integer, got 'x'",
        ),
    ],
)
def test_a_bad_setting_fails_fast_with_a_clear_message(tmp_path, service, variable, value, message):
    prefix = f"STEWARD_{service.upper()}_"
    env = {"STEWARD_JWT_SECRET": JWT_SECRET, "STEWARD_DATA_DIR": str(tmp_path), variable: value}
    process = python_module(
        f"services.{service}", "serve", env={**env, prefix + "PORT": str(free_port()), prefix + "METRICS_PORT": "-1"}
    )
    try:
        assert process.finish(timeout=30) == 2
        process.wait_for(
            lambda: any(f"configuration error: {message}" in line for line in process.stderr), what="message"
        )
        assert not any("Traceback" in line for line in process.stderr)
    finally:
        process.close()
