"""Settings of the rules service beyond the shared ones, from environment variables."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

from services.runtime.config import env_float, env_int, service_address
from services.runtime.db import utcnow


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
    # Leases of this length: the users-stream consumer and the clock run in one replica at a
    # time (renewed every third of it), and each partition of runs is executed by one replica
    # (renewed every fifth): a replica that dies is replaced once its leases expire.
    lease_seconds: float = 15.0
    # Runs are partitioned by account (a hash modulo this) over the live replicas; the same on
    # every replica. More partitions than replicas you will ever run, so each gets a share.
    run_partitions: int = 16
    # Runs per executor batch (actions go out in one call per kind and stage).
    executor_batch: int = 500
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
        return cls(
            users_address=service_address("users"),
            users_deadline_seconds=env_float("STEWARD_RULES_USERS_DEADLINE_SECONDS", 5.0),
            run_retry_base_seconds=env_float("STEWARD_RULES_RUN_RETRY_BASE_SECONDS", 0.5),
            run_retry_max_seconds=env_float("STEWARD_RULES_RUN_RETRY_MAX_SECONDS", 30.0),
            consume_users_events=(os.environ.get("STEWARD_RULES_CONSUME_USERS_EVENTS") or "true").lower() != "false",
            lease_seconds=env_float("STEWARD_RULES_LEASE_SECONDS", 15.0),
            run_partitions=env_int("STEWARD_RULES_PARTITIONS", 16, minimum=1),
            executor_batch=env_int("STEWARD_RULES_EXECUTOR_BATCH", 500, minimum=1),
            time_pass_seconds=env_float("STEWARD_RULES_TIME_PASS_SECONDS", 60.0),
            manual_runs_per_minute=int(env_float("STEWARD_RULES_MANUAL_RUNS_PER_MINUTE", 100)),
            webhook_attempts=int(env_float("STEWARD_RULES_WEBHOOK_ATTEMPTS", 4)),
            webhook_backoff_seconds=env_float("STEWARD_RULES_WEBHOOK_BACKOFF_SECONDS", 0.5),
        )
