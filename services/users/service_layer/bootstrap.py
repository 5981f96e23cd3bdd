"""A fresh installation gets one global admin from configuration, on first start."""

from __future__ import annotations

import uuid

from services.runtime.db import Database, utcnow
from services.users.config import UsersConfig
from services.users.domain.model import License, User, UserStatus
from services.users.unit_of_work import UsersUnitOfWork

_NAMESPACE = uuid.UUID("6f1d3c3e-2b7a-4f51-9a53-5e0c7b1d2a40")


def bootstrap_admin_id(email: str) -> str:
    """Deterministic, so `make run` can mint the admin's token without asking the service."""
    return str(uuid.uuid5(_NAMESPACE, email.strip().lower()))


def ensure_bootstrap_admin(db: Database, config: UsersConfig) -> None:
    email = config.bootstrap_admin_email
    if not email:
        return
    with UsersUnitOfWork(db) as uow:
        if uow.users.get_live_by_email(email) is not None or uow.users.get(bootstrap_admin_id(email)) is not None:
            return
        now = utcnow()
        uow.users.add(
            User(
                id=bootstrap_admin_id(email),
                email=email,
                first_name="Steward",
                last_name="Admin",
                status=UserStatus.ACTIVE,
                license=License.PRACTITIONER,
                create_time=now,
                update_time=now,
                global_admin=True,
            )
        )
        uow.commit()
