"""Settings of the sync service beyond the shared ones, from environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from services.runtime.config import env_float, service_address


@dataclass(frozen=True)
class SyncConfig:
    # Where the sync service reaches the users service (STEWARD_USERS_ADDRESS).
    users_address: str = "127.0.0.1:50051"
    # How long a run may go without progress before another replica may take the job over.
    run_lease_seconds: float = 60.0
    # How often due jobs are looked for.
    scheduler_poll_seconds: float = 30.0
    # Salesforce: attempts and the longest wait between them (429 Retry-After is honoured).
    salesforce_attempts: int = 8
    salesforce_max_backoff_seconds: float = 30.0

    @classmethod
    def from_env(cls) -> SyncConfig:
        return cls(
            users_address=service_address("users"),
            run_lease_seconds=env_float("STEWARD_SYNC_RUN_LEASE_SECONDS", 60.0),
            scheduler_poll_seconds=env_float("STEWARD_SYNC_SCHEDULER_POLL_SECONDS", 30.0),
            salesforce_attempts=int(env_float("STEWARD_SYNC_SALESFORCE_ATTEMPTS", 8)),
            salesforce_max_backoff_seconds=env_float("STEWARD_SYNC_SALESFORCE_MAX_BACKOFF_SECONDS", 30.0),
        )
