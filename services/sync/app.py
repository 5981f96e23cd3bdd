"""Wires the sync service into the shared runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.migrations import MigrationSet
from services.runtime.server import BackgroundWorker, ServiceSpec
from services.sync.servicer import JobServicer
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc

MIGRATIONS = MigrationSet("sync", Path(__file__).parent / "migrations")


def register(server: grpc.Server, db: Database, settings: ServiceSettings) -> Sequence[BackgroundWorker]:
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(db), server)
    return ()


SPEC = ServiceSpec(
    name="sync",
    grpc_services=(jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,),
    migrations=MIGRATIONS,
    register=register,
)
