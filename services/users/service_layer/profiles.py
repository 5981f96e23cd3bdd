"""UpdateUser: profile, license, manager and permissions, each path with its own rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from services.runtime.errors import FieldViolation, InvalidArgument
from services.runtime.etag import check_etag
from services.users.config import UsersConfig
from services.users.domain.events import user_event
from services.users.domain.model import PROFILE_FIELDS, User, ensure_visible, user_not_found
from services.users.domain.permissions import Actor, ensure_can_update
from services.users.domain.status_policy import policy_of
from services.users.domain.teams import ensure_no_manager_cycle
from services.users.service_layer.lifecycle import change_license
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork

ADMIN_FIELDS = frozenset({"license", "manager_id", "user_management", "global_admin", "email"})
UPDATABLE = PROFILE_FIELDS | ADMIN_FIELDS


def update_user(
    uow: UsersUnitOfWork,
    config: UsersConfig,
    actor: Actor,
    user_id: str,
    etag: str,
    changes: dict[str, Any],
    now: dt.datetime,
) -> User:
    user = ensure_visible(uow.users.get(user_id, for_update=True), user_id)
    ensure_can_update(actor, user, changes)
    check_etag(etag, user.etag)
    user.ensure_editable()
    profile = {k: v for k, v in changes.items() if k in PROFILE_FIELDS}
    if profile:
        user.update_profile(profile, now)
    if "email" in changes and changes["email"] != user.email:
        _ensure_email_free(uow, user, changes["email"])
        user.change_email(changes["email"], config.uuid_mode)
    if "manager_id" in changes:
        _set_manager(uow, user, changes["manager_id"])
    for flag in ("user_management", "global_admin"):
        if flag in changes:
            setattr(user, flag, bool(changes[flag]))
    if "license" in changes and changes["license"] is not user.license:
        change_license(uow, config, SeatLedger(uow, config.licenses), user, changes["license"], now)
    user.update_time = now
    uow.users.save(user)
    uow.events.append(user_event("updated", user.id, actor.subject, fields=sorted(changes)), now)
    return user


def _ensure_email_free(uow: UsersUnitOfWork, user: User, email: str) -> None:
    other = uow.users.get_live_by_email(email)
    if other is not None and other.id != user.id:
        raise InvalidArgument(
            "EMAIL_ALREADY_REGISTERED",
            f"{email} already belongs to another user",
            field_violations=[FieldViolation("user.email", "already registered", "EMAIL_ALREADY_REGISTERED")],
        )


def _set_manager(uow: UsersUnitOfWork, user: User, manager_id: str | None) -> None:
    if manager_id is not None:
        manager = uow.users.get(manager_id)
        if manager is None or not policy_of(manager.status).is_listed:
            raise user_not_found(manager_id)
        ensure_no_manager_cycle(user.id, manager_id, uow.users.manager_of)
    user.manager_id = manager_id
