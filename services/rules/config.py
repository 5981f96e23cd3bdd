"""Settings of the rules service beyond the shared ones, from environment variables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.runtime.config import EnvSettings
from services.runtime.db import utcnow


class RulesConfig(EnvSettings):
    """STEWARD_RULES_<FIELD> unless a field names its variable."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_RULES_")
    code_only = frozenset({"clock"})

    # Where the users service listens.
    users_address: str = Field(default="127.0.0.1:50051", validation_alias="STEWARD_USERS_ADDRESS")
    # Per call to the users service; transient failures are retried within a run attempt.
    users_deadline_seconds: float = 5.0
    # A run waiting for the users service is retried after this, doubling up to the cap.
    run_retry_base_seconds: float = 0.5
    run_retry_max_seconds: float = 30.0
    # Consume the users service's event stream (assignment changes, play owner changes).
    consume_users_events: bool = True
    # Leases of this length: the users-stream consumer and the clock run in one replica at a
    # time (renewed every third of it), and each partition of runs is executed by one replica
    # (renewed every fifth): a replica that dies is replaced once its leases expire.
    lease_seconds: float = 15.0
    # Runs are partitioned by account (a hash modulo this) over the live replicas; the same on
    # every replica. More partitions than replicas you will ever run, so each gets a share.
    run_partitions: int = Field(default=16, ge=1, validation_alias="STEWARD_RULES_PARTITIONS")
    # Runs per executor batch (actions go out in one call per kind and stage).
    executor_batch: int = Field(default=500, ge=1)
    # How often the holder of the lease re-evaluates time-based segment plays for every account.
    time_pass_seconds: float = 60.0
    # RunPlay calls per caller per minute.
    manual_runs_per_minute: int = 100
    # call_webhook: attempts per delivery and their backoff.
    webhook_attempts: int = 4
    webhook_backoff_seconds: float = 0.5
    # What time it is (tests set their own; relative-date criteria are judged against it).
    clock: Callable[[], dt.datetime] = utcnow

    @classmethod
    def from_env(cls) -> RulesConfig:
        return cls.from_environment()
