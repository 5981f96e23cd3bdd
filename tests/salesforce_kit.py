"""What the sync tests against the Salesforce stand-in share: the service's settings for it, and
a connection to it through the public API."""

from __future__ import annotations

from services.sync.config import SyncConfig
from steward.sync.v1 import connections_pb2, connections_pb2_grpc
from tools.salesforce_standin import Emulator


def standin_config(users_address: str) -> SyncConfig:
    """No scheduler unless asked; retries fast enough for fault tests."""
    return SyncConfig(
        users_address=users_address,
        scheduler_poll_seconds=3600,
        salesforce_attempts=6,
        salesforce_max_backoff_seconds=0.05,
    )


def create_connection(
    stub: connections_pb2_grpc.ConnectionServiceStub, salesforce: Emulator, md, display_name: str
) -> connections_pb2.Connection:
    return stub.CreateConnection(
        connections_pb2.CreateConnectionRequest(
            connection=connections_pb2.Connection(
                display_name=display_name,
                instance_url=salesforce.url,
                api_version="62.0",
                oauth=connections_pb2.OAuthSettings(
                    grant=connections_pb2.O_AUTH_GRANT_CLIENT_CREDENTIALS,
                    client_id=salesforce.client_id,
                    client_secret=salesforce.client_secret,
                ),
            )
        ),
        metadata=md,
    )
