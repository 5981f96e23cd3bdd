"""UserService over gRPC: protobuf in, domain calls, protobuf out. No business rules here."""

from __future__ import annotations

from typing import Any

import grpc

from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.runtime.etag import check_etag
from services.runtime.idempotency import run_once
from services.runtime.names import format_name, parse_name
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import timestamp, update_paths
from services.users.adapters.orm import IdempotencyRecord
from services.users.adapters.repository import list_key
from services.users.domain.model import (
    PROFILE_FIELDS,
    License,
    User,
    UserStatus,
    ensure_can_edit_profile,
    ensure_visible,
)
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import users_pb2, users_pb2_grpc

# Message constructors take enum value names, which keeps these maps readable and typed.
_STATUS = {s: f"USER_STATUS_{s.value}" for s in UserStatus}
_LICENSE = {lic: f"LICENSE_{lic.value}" for lic in License}


def user_to_proto(user: User) -> users_pb2.User:
    return users_pb2.User(
        name=format_name("users", user.id),
        uid=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        status=_STATUS[user.status],
        license=_LICENSE[user.license],
        global_admin=user.global_admin,
        manager=format_name("users", user.manager_id) if user.manager_id else "",
        alternative_emails=user.alternative_emails,
        custom_attributes=user.custom_attributes,
        signature=user.signature,
        create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time),
        last_activity_time=timestamp(user.last_activity_time),
        etag=user.etag,
    )


def _profile_value(message: users_pb2.User, path: str) -> Any:
    value = getattr(message, path)
    if path == "alternative_emails":
        return list(value)
    if path == "custom_attributes":
        return dict(value)
    return value


class UserServicer(users_pb2_grpc.UserServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    def GetUser(self, request: users_pb2.GetUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        user_id = parse_name("users", request.name)
        with UsersUnitOfWork(self._db, write=False) as uow:
            return user_to_proto(ensure_visible(uow.users.get(user_id), user_id))

    def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListUsersResponse:
        def fetch(page: PageRequest) -> list[User]:
            with UsersUnitOfWork(self._db, write=False) as uow:
                return uow.users.list_page(limit=page.limit, after=page.after, show_deleted=request.show_deleted)

        users, next_token = list_response_page(
            request.page_size, request.page_token, {"show_deleted": request.show_deleted}, 2, fetch, list_key
        )
        return users_pb2.ListUsersResponse(users=[user_to_proto(u) for u in users], next_page_token=next_token)

    def UpdateUser(self, request: users_pb2.UpdateUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        user_id = parse_name("users", request.user.name, "user.name")
        paths = update_paths(request.update_mask, PROFILE_FIELDS)
        actor = current_principal()

        def work(uow: UsersUnitOfWork) -> users_pb2.User:
            user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
            ensure_can_edit_profile(actor, user)
            check_etag(request.user.etag, user.etag)
            user.update_profile({p: _profile_value(request.user, p) for p in paths}, utcnow())
            uow.users.save(user)
            return user_to_proto(user)

        return run_once(
            lambda: UsersUnitOfWork(self._db), IdempotencyRecord, "UpdateUser", request, users_pb2.User, work
        )
