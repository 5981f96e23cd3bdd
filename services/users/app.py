"""Wires the users service into the shared runtime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from services.runtime.config import ServiceSettings
from services.runtime.db import Database
from services.runtime.migrations import MigrationSet
from services.runtime.server import BackgroundWorker, ServiceSpec
from services.users.adapters.email_sender import EmailSender
from services.users.assignment_servicer import AssignmentServicer, ResourceServicer, TaskServicer
from services.users.config import UsersConfig
from services.users.event_servicer import EventServicer
from services.users.scim.server import ScimServer
from services.users.service_layer.bootstrap import ensure_bootstrap_admin
from services.users.servicer import TeamServicer, UserServicer
from steward.users.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    events_pb2,
    events_pb2_grpc,
    users_pb2,
    users_pb2_grpc,
    work_pb2,
    work_pb2_grpc,
)

MIGRATIONS = MigrationSet("users", Path(__file__).parent / "migrations")
_SERVICES = users_pb2.DESCRIPTOR.services_by_name


def build_spec(config: UsersConfig | None = None) -> ServiceSpec:
    """The users service; configuration from the environment unless given (tests give their own)."""

    def settings() -> UsersConfig:
        return config if config is not None else UsersConfig.from_env()

    def register(server: grpc.Server, db: Database, service_settings: ServiceSettings) -> Sequence[BackgroundWorker]:
        current = settings()
        users_pb2_grpc.add_UserServiceServicer_to_server(UserServicer(db, current), server)
        users_pb2_grpc.add_TeamServiceServicer_to_server(TeamServicer(db, current), server)
        assignments_pb2_grpc.add_AssignmentServiceServicer_to_server(AssignmentServicer(db, current), server)
        work_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(db, current), server)
        work_pb2_grpc.add_ResourceServiceServicer_to_server(ResourceServicer(db, current), server)
        events = EventServicer(db)
        events_pb2_grpc.add_EventServiceServicer_to_server(events, server)
        workers: list[BackgroundWorker] = [EmailSender(db, current.smtp), events]
        if current.scim.port >= 0:
            workers.append(ScimServer(db, current, service_settings.host, service_settings.jwt_secret))
        return workers

    return ServiceSpec(
        name="users",
        grpc_services=(
            _SERVICES["UserService"].full_name,
            _SERVICES["TeamService"].full_name,
            assignments_pb2.DESCRIPTOR.services_by_name["AssignmentService"].full_name,
            work_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
            work_pb2.DESCRIPTOR.services_by_name["ResourceService"].full_name,
            events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
        ),
        migrations=MIGRATIONS,
        register=register,
        on_ready=lambda db, _: ensure_bootstrap_admin(db, settings()),
        public_methods=frozenset({f"/{_SERVICES['UserService'].full_name}/AcceptInvitation"}),
    )


SPEC = build_spec()
