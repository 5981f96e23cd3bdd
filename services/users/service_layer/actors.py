"""Who is calling: a directory user (permissions from the directory) or a service account."""

from __future__ import annotations

import uuid

from services.runtime.auth import Principal
from services.runtime.errors import Unauthenticated
from services.users.domain.permissions import Actor
from services.users.unit_of_work import UsersUnitOfWork


def _is_uuid(text: str) -> bool:
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


def resolve_actor(uow: UsersUnitOfWork, principal: Principal) -> Actor:
    if not _is_uuid(principal.subject):
        return Actor.for_service(principal.subject, principal.scopes, principal.roles)
    user = uow.users.get(principal.subject)
    if user is None:
        raise Unauthenticated("TOKEN_SUBJECT_UNKNOWN", "the token names a user that does not exist")
    return Actor.for_user(user)
