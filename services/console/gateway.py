"""The console's only way to the data: the three services' gRPC contracts, called as the
signed-in user with a token minted for the one request (so the services' permission rules apply),
or, for sign-in look-ups only, as the console's own service account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import grpc

from services.runtime.auth import mint_token
from steward.rules.v1 import events_pb2_grpc, plays_pb2_grpc
from steward.sync.v1 import connections_pb2_grpc, jobs_pb2_grpc, uploads_pb2_grpc
from steward.users.v1 import assignments_pb2_grpc, users_pb2_grpc

T = TypeVar("T")
CONSOLE_SUBJECT = "service:console"
# Reads the directory to find who asked for a sign-in link; nothing else.
CONSOLE_SCOPES = ("users.read",)
DEADLINE_SECONDS = 10.0


def _channel(address: str) -> grpc.Channel:
    return grpc.insecure_channel(
        address, options=[("grpc.initial_reconnect_backoff_ms", 200), ("grpc.max_reconnect_backoff_ms", 2000)]
    )


class Gateway:
    def __init__(
        self, users_address: str, rules_address: str, sync_address: str, jwt_secret: str, token_seconds: int
    ) -> None:
        self._secret, self._ttl = jwt_secret, token_seconds
        self.channel = _channel(users_address)
        self.users = users_pb2_grpc.UserServiceStub(self.channel)
        self.teams = users_pb2_grpc.TeamServiceStub(self.channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self.channel)
        self._rules_channel = _channel(rules_address)
        self.plays = plays_pb2_grpc.PlayServiceStub(self._rules_channel)
        self.account_events = events_pb2_grpc.AccountEventServiceStub(self._rules_channel)
        self._sync_channel = _channel(sync_address)
        self.connections = connections_pb2_grpc.ConnectionServiceStub(self._sync_channel)
        self.jobs = jobs_pb2_grpc.JobServiceStub(self._sync_channel)
        self.uploads = uploads_pb2_grpc.UploadServiceStub(self._sync_channel)

    def close(self) -> None:
        for channel in (self.channel, self._rules_channel, self._sync_channel):
            channel.close()

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
