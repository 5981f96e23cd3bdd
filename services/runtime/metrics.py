"""Prometheus metrics for every gRPC call, served over HTTP on a port of each service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

REQUESTS = Counter(
    "steward_grpc_requests_total",
    "gRPC calls handled, by method and status code.",
    ["service", "method", "code"],
)
LATENCY = Histogram(
    "steward_grpc_request_duration_seconds",
    "gRPC call duration in seconds, by method.",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge("steward_grpc_in_flight", "gRPC calls being handled now.", ["service"])
SERVING = Gauge("steward_serving", "1 while the health service reports SERVING.", ["service"])


def serve_metrics(host: str, port: int) -> int | None:
    """Start the /metrics endpoint; port 0 picks a free one. Returns the bound port, or None if off."""
    if port < 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)
