"""Bearer JWTs guard every steward.* method; health and reflection stay open."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.auth import mint_token
from services.users.app import SPEC as USERS
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.conftest import JWT_SECRET, bearer
from tests.errors import call_fails


@pytest.fixture
def users(serve):
    running = serve(USERS)
    return users_pb2_grpc.UserServiceStub(running.channel), running


def test_no_token_is_unauthenticated(users):
    stub, _ = users
    failure = call_fails(stub.ListUsers, users_pb2.ListUsersRequest())
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "TOKEN_MISSING"


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {mint_token('another-secret-of-the-same-length-0123456789', 'mallory', roles=['admin'])}",
        "Bearer not.a.jwt",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
    ids=["forged-signature", "garbage", "wrong-scheme", "empty"],
)
def test_bad_tokens_are_unauthenticated(users, header):
    stub, _ = users
    failure = call_fails(stub.ListUsers, users_pb2.ListUsersRequest(), metadata=[("authorization", header)])
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason in {"TOKEN_INVALID", "TOKEN_MISSING"}


def test_expired_token_is_unauthenticated(users):
    stub, _ = users
    stale = mint_token(JWT_SECRET, "admin", roles=["admin"], ttl_seconds=60, now=time.time() - 3600)
    failure = call_fails(stub.ListUsers, users_pb2.ListUsersRequest(), metadata=[("authorization", f"Bearer {stale}")])
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "TOKEN_EXPIRED"


def test_token_with_another_algorithm_is_refused(users):
    # "alg: none" and friends must never be accepted, whatever the claims say.
    stub, _ = users
    unsigned = jwt.encode(
        {"sub": "admin", "iss": "steward", "iat": int(time.time()), "exp": int(time.time()) + 60, "roles": ["admin"]},
        key="",  # "none" takes no key
        algorithm="none",
    )
    failure = call_fails(
        stub.ListUsers, users_pb2.ListUsersRequest(), metadata=[("authorization", f"Bearer {unsigned}")]
    )
    assert failure.code == grpc.StatusCode.UNAUTHENTICATED


def test_valid_token_is_accepted(users):
    stub, _ = users
    reply = stub.ListUsers(
        users_pb2.ListUsersRequest(), metadata=bearer("service:reports", roles=(), scopes=["users.read"])
    )
    assert list(reply.users) == []


def test_health_needs_no_token(users):
    _, running = users
    reply = health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
