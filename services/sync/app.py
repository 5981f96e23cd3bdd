"""Wires the sync service into the shared runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.migrations import MigrationSet
from services.runtime.server import BackgroundWorker, ServiceSpec
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.config import SyncConfig
from services.sync.connectors import registry
from services.sync.service_layer.runner import JobRunner
from services.sync.service_layer.scheduler import Scheduler
from services.sync.servicer import ConnectionServicer, JobServicer
from services.sync.unit_of_work import SyncUnitOfWork
from services.sync.upload_servicer import UploadServicer
from steward.sync.v1 import (
    connections_pb2,
    connections_pb2_grpc,
    jobs_pb2,
    jobs_pb2_grpc,
    uploads_pb2,
    uploads_pb2_grpc,
)

MIGRATIONS = MigrationSet("sync", Path(__file__).parent / "migrations")


def build_spec(config: SyncConfig | None = None, connectors: registry.Connectors | None = None) -> ServiceSpec:
    """The sync service; `connectors` replaces the standard ones (connectors/registry.py)."""

    def register(server: grpc.Server, db: Database, settings: ServiceSettings) -> Sequence[BackgroundWorker]:
        current = config if config is not None else SyncConfig.from_env()
        users = SyncUsersClient(current.users_address, settings.jwt_secret)
        known = connectors or registry.standard(current)
        runner = JobRunner(db, users, known, lease_seconds=current.run_lease_seconds)
        connections_pb2_grpc.add_ConnectionServiceServicer_to_server(ConnectionServicer(db, users, known), server)
        jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(db, users, known, runner), server)
        uploads = UploadServicer(db, users, lease_seconds=current.run_lease_seconds)
        uploads_pb2_grpc.add_UploadServiceServicer_to_server(uploads, server)
        return [Scheduler(db, runner, poll_seconds=current.scheduler_poll_seconds), users]

    return ServiceSpec(
        name="sync",
        grpc_services=(
            connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"].full_name,
            jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
            uploads_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name,
        ),
        migrations=MIGRATIONS,
        register=register,
        reseal=reseal,
    )


def reseal(db: Database) -> int:
    with SyncUnitOfWork(db) as uow:
        count = uow.connections.reseal_all()
        uow.commit()
    return count


SPEC = build_spec()
