"""Ask a service for its grpc.health.v1 status, as a probe or an operator would."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def probe(address: str, timeout: float = 1.0) -> str:
    """SERVING, NOT_SERVING, ... or 'UNREACHABLE (<code>)'."""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
    except grpc.RpcError as exc:
        return f"UNREACHABLE ({exc.code().name})"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def is_serving(address: str, timeout: float = 1.0) -> bool:
    return probe(address, timeout) == "SERVING"
