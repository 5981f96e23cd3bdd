"""Wires the users service into the shared runtime."""

from __future__ import annotations

from pathlib import Path

import grpc

from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.migrations import MigrationSet
from services.runtime.server import ServiceSpec
from services.users.servicer import UserServicer
from steward.users.v1 import users_pb2, users_pb2_grpc

MIGRATIONS = MigrationSet("users", Path(__file__).parent / "migrations")


def register(server: grpc.Server, db: Database, settings: ServiceSettings) -> None:
    users_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(db), server)


SPEC = ServiceSpec(
    name="users",
    grpc_services=(users_pb2.DESCRIPTOR.services_by_name["UserService"].full_name,),
    migrations=MIGRATIONS,
    register=register,
)
