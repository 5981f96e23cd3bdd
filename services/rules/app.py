"""Wires the rules service into the shared runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.rules.servicer import PlayServicer
from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.migrations import MigrationSet
from services.runtime.server import BackgroundWorker, ServiceSpec
from steward.rules.v1 import plays_pb2, plays_pb2_grpc

MIGRATIONS = MigrationSet("rules", Path(__file__).parent / "migrations")


def register(server: grpc.Server, db: Database, settings: ServiceSettings) -> Sequence[BackgroundWorker]:
    plays_pb2_grpc.add_PlayServiceServicer_to_server(PlayServicer(db), server)
    return ()


SPEC = ServiceSpec(
    name="rules",
    grpc_services=(plays_pb2.DESCRIPTOR.services_by_name["PlayService"].full_name,),
    migrations=MIGRATIONS,
    register=register,
)
