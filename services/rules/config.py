"""Settings of the rules service beyond the shared ones, from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.runtime.config import env_float, service_address


@dataclass(frozen=True)
class RulesConfig:
    # Where the users service listens (STEWARD_USERS_ADDRESS).
    users_address: str = "127.0.0.1:50051"
    # Per call to the users service; transient failures are retried within a run attempt.
    users_deadline_seconds: float = 5.0
    # A run waiting for the users service is retried after this, doubling up to the cap.
    run_retry_base_seconds: float = 0.5
    run_retry_max_seconds: float = 30.0
    # Consume the users service's event stream (assignment changes, play owner changes).
    consume_users_events: bool = True
    # The executor and the consumer run in one replica at a time, the holder of a lease of this
    # length (renewed every third of it): a replica that dies is replaced after at most this.
    lease_seconds: float = 15.0

    @classmethod
    def from_env(cls) -> RulesConfig:
        return cls(
            users_address=service_address("users"),
            users_deadline_seconds=env_float("STEWARD_RULES_USERS_DEADLINE_SECONDS", 5.0),
            run_retry_base_seconds=env_float("STEWARD_RULES_RUN_RETRY_BASE_SECONDS", 0.5),
            run_retry_max_seconds=env_float("STEWARD_RULES_RUN_RETRY_MAX_SECONDS", 30.0),
            consume_users_events=(os.environ.get("STEWARD_RULES_CONSUME_USERS_EVENTS") or "true").lower() != "false",
            lease_seconds=env_float("STEWARD_RULES_LEASE_SECONDS", 15.0),
        )
