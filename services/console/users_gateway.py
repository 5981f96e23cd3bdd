"""The console's only way to the data: the users service's gRPC contract, called as the
signed-in user with a token minted for the one request (so the service's permission rules apply),
or, for sign-in look-ups only, as the console's own service account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from services.runtime.auth import mint_token
from steward.users.v1 import users_pb2_grpc

T = TypeVar("T")
CONSOLE_SUBJECT = "service:console"
# Reads the directory to find who asked for a sign-in link; nothing else.
CONSOLE_SCOPES = ("users.read",)
DEADLINE_SECONDS = 10.0


class UsersGateway:
    def __init__(self, address: str, jwt_secret: str, token_seconds: int) -> None:
        self._secret, self._ttl = jwt_secret, token_seconds
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]
        )
        self.users = users_pb2_grpc.UserServiceStub(self.channel)
        self.teams = users_pb2_grpc.TeamServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def as_user(self, user_id: str, method: Callable[..., T], request: Any) -> T:
        token = mint_token(self._secret, user_id, ttl_seconds=self._ttl)
        return method(request, metadata=[("authorization", f"Bearer {token}")], timeout=DEADLINE_SECONDS)

    def as_console(self, method: Callable[..., T], request: Any) -> T:
        token = mint_token(self._secret, CONSOLE_SUBJECT, scopes=CONSOLE_SCOPES, ttl_seconds=self._ttl)
        return method(request, metadata=[("authorization", f"Bearer {token}")], timeout=DEADLINE_SECONDS)

    def anonymous(self, method: Callable[..., T], request: Any) -> T:
        """AcceptInvitation: the invitation token is the credential."""
        return method(request, timeout=DEADLINE_SECONDS)

    def serving(self) -> bool:
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        try:
            reply = health_pb2_grpc.HealthStub(self.channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
