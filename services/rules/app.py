"""Wires the rules service into the shared runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.rules.adapters.orm import WORKER_LEASES
from services.rules.adapters.users_client import UsersClient
from services.rules.adapters.webhook import WebhookPolicy
from services.rules.config import RulesConfig
from services.rules.event_servicer import AccountEventServicer
from services.rules.service_layer.clock import SegmentClock
from services.rules.service_layer.consumer import UsersEventConsumer
from services.rules.service_layer.executor import RunExecutor
from services.rules.service_layer.ingest import PlayCatalog
from services.rules.servicer import PlayServicer
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.leases import WorkerLease
from services.runtime.migrations import MigrationSet
from services.runtime.partitions import PartitionLeases
from services.runtime.server import BackgroundWorker, ServiceSpec
from services.runtime.service_client import RetryPolicy
from steward.rules.v1 import events_pb2, events_pb2_grpc, plays_pb2, plays_pb2_grpc

MIGRATIONS = MigrationSet("rules", Path(__file__).parent / "migrations")


def build_spec(config: RulesConfig | None = None) -> ServiceSpec:
    def register(server: grpc.Server, db: Database, settings: ServiceSettings) -> Sequence[BackgroundWorker]:
        current = config if config is not None else RulesConfig.from_env()
        directory = UsersClient(
            current.users_address, settings.jwt_secret, RetryPolicy(deadline_seconds=current.users_deadline_seconds)
        )
        catalog = PlayCatalog()
        # The consumer and the clock run once per replica set (the lease says where); runs are
        # executed by whichever replica holds their account's partition.
        lease = WorkerLease(db, WORKER_LEASES, "rules.workers", ttl_seconds=current.lease_seconds)
        partitions = PartitionLeases(
            db, WORKER_LEASES, "rules.runs", current.run_partitions, ttl_seconds=current.lease_seconds
        )
        executor = RunExecutor(
            db,
            directory,
            partitions,
            batch=current.executor_batch,
            base_backoff_seconds=current.run_retry_base_seconds,
            max_backoff_seconds=current.run_retry_max_seconds,
            webhook_policy=WebhookPolicy(
                attempts=current.webhook_attempts, base_backoff_seconds=current.webhook_backoff_seconds
            ),
        )
        plays = PlayServicer(
            db,
            directory,
            catalog,
            executor.wake,
            clock=current.clock,
            manual_runs_per_minute=current.manual_runs_per_minute,
        )
        plays_pb2_grpc.add_PlayServiceServicer_to_server(plays, server)
        events_pb2_grpc.add_AccountEventServiceServicer_to_server(
            AccountEventServicer(db, catalog, executor.wake, current.clock), server
        )
        clock = SegmentClock(
            db, catalog, lease, executor.wake, every_seconds=current.time_pass_seconds, clock=current.clock
        )
        workers: list[BackgroundWorker] = [executor, clock]
        if current.consume_users_events:
            workers.append(UsersEventConsumer(db, directory, catalog, executor.wake, lease, clock=current.clock))
        # Stopped in this order: the leases are released once their workers are done.
        return [*workers, lease, partitions, directory]

    return ServiceSpec(
        name="rules",
        grpc_services=(
            plays_pb2.DESCRIPTOR.services_by_name["PlayService"].full_name,
            events_pb2.DESCRIPTOR.services_by_name["AccountEventService"].full_name,
        ),
        migrations=MIGRATIONS,
        register=register,
        reseal=reseal,
    )


def reseal(db: Database) -> int:
    with RulesUnitOfWork(db) as uow:
        count = uow.plays.reseal_all()
        uow.commit()
    return count


SPEC = build_spec()
