"""scim2-server's storage port over Steward's unit of work: each SCIM operation (a read, or a
read-modify-write for PUT and PATCH) is one transaction, and every write is a domain operation of
service_layer/provisioning.py."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from scim2_models import (
    InvalidFilterException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimProvider,
    SearchRequest,
)
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import func, select

from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.users.adapters.orm import ScimGroupRecord, ScimUserRecord, TeamRecord, UserRecord, user_status_where
from services.users.config import UsersConfig
from services.users.domain.permissions import Actor, ensure_can_read
from services.users.domain.status_policy import policy_of
from services.users.scim import filters
from services.users.scim.errors import storage_error
from services.users.scim.resources import (
    group_external_id,
    group_members,
    group_resource,
    provisioned,
    user_resource,
)
from services.users.scim.schemas import MAX_RESULTS
from services.users.service_layer import provisioning
from services.users.service_layer.actors import resolve_actor
from services.users.unit_of_work import UsersUnitOfWork

T = TypeVar("T")
MAX_OFFSET = 2**31


def _version(resource: dict[str, Any]) -> str:
    return str(resource["meta"]["version"])


def _wants_members(parameters: ResponseParameters[Any] | None) -> bool:
    """Whether a response keeps a group's members: Entra ID reads groups with
    excludedAttributes=members, and a big team's members are not worth loading for nothing."""
    if parameters is None:
        return True
    names = {str(p).lower().rsplit(":", 1)[-1].split(".")[0] for p in parameters.excluded_attributes or []}
    if "members" in names:
        return False
    kept = {str(p).lower().rsplit(":", 1)[-1].split(".")[0] for p in parameters.attributes or []}
    return not kept or "members" in kept


class StewardStorage(ScimStorage):
    def __init__(self, db: Database, config: UsersConfig, provider: ScimProvider) -> None:
        self._db = db
        self._config = config
        self._provider = provider
        self._local = threading.local()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def operation(self) -> Iterator[None]:
        """One transaction for the whole operation: PATCH reads and writes under it."""
        with UsersUnitOfWork(self._db) as uow:
            self._local.uow = uow
            try:
                yield
                uow.commit()
            finally:
                self._local.uow = None

    def _run(self, work: Callable[[UsersUnitOfWork, Actor], T]) -> T:
        try:
            current = getattr(self._local, "uow", None)
            if current is not None:
                return work(current, resolve_actor(current, current_principal()))
            with UsersUnitOfWork(self._db) as uow:
                result = work(uow, resolve_actor(uow, current_principal()))
                uow.commit()
                return result
        except Exception as error:
            scim = storage_error(error)
            if scim is None:
                raise
            raise scim from error

    def _model(self, resource_type: ResourceType, payload: dict[str, Any]) -> Resource[Any]:
        model = self._provider.model_for(resource_type)
        assert model is not None
        return model.model_validate(payload)  # type: ignore[return-value]

    # -- reads -------------------------------------------------------------------------------

    def _user(self, uow: UsersUnitOfWork, user_id: str) -> dict[str, Any]:
        user = uow.users.get(user_id)
        if user is None or not policy_of(user.status).is_listed:
            raise NotFoundException(detail=f"User {user_id!r} not found")
        return user_resource(user, uow.scim.identity(user))

    def _group(self, uow: UsersUnitOfWork, team_id: str, members: bool = True) -> dict[str, Any]:
        team = uow.teams.get(team_id)
        if team is None:
            raise NotFoundException(detail=f"Group {team_id!r} not found")
        external = uow.scim.group_external_ids([team.id]).get(team.id)
        return group_resource(team, external, uow.teams.member_ids(team.id) if members else [])

    def _read(
        self, resource_type: ResourceType, uow: UsersUnitOfWork, resource_id: str, members: bool = True
    ) -> dict[str, Any]:
        if resource_type.name == "User":
            return self._user(uow, resource_id)
        return self._group(uow, resource_id, members)

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        def work(uow: UsersUnitOfWork, actor: Actor) -> dict[str, Any]:
            ensure_can_read(actor)
            return self._read(resource_type, uow, resource_id, _wants_members(response_parameters))

        return self._model(resource_type, self._run(work))

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """Users and groups in a stable order (email or name, then id), paged by startIndex; a
        search at the root lists users, then groups."""
        node = search_request.filter.ast if search_request.filter is not None else None
        # Past any table's end, and within every database's integer range.
        start = min(search_request.start_index_0 or 0, MAX_OFFSET)
        count = MAX_RESULTS if search_request.count is None else search_request.count

        def work(uow: UsersUnitOfWork, actor: Actor) -> tuple[int, list[tuple[ResourceType, dict[str, Any]]]]:
            ensure_can_read(actor)
            total, found = 0, list[tuple[ResourceType, dict[str, Any]]]()
            for resource_type in resource_types:
                matched, ids = self._matching(uow, resource_type, node, max(0, start - total), count - len(found))
                total += matched
                members = _wants_members(search_request)
                found += [(resource_type, self._read(resource_type, uow, i, members)) for i in ids]
            return total, found

        total, found = self._run(work)
        return SearchPage(total, [self._model(kind, payload) for kind, payload in found])

    def _matching(
        self, uow: UsersUnitOfWork, resource_type: ResourceType, node: Any, offset: int, limit: int
    ) -> tuple[int, list[str]]:
        if resource_type.name == "User":
            visitor: filters.UserFilter | filters.GroupFilter = filters.UserFilter()
            base = select(UserRecord.id).outerjoin(ScimUserRecord, ScimUserRecord.user_id == UserRecord.id)
            base = base.where(user_status_where(lambda p: p.is_listed))
            order: tuple[Any, ...] = (UserRecord.email_normalized, UserRecord.id)
        else:
            visitor = filters.GroupFilter()
            base = select(TeamRecord.id).outerjoin(ScimGroupRecord, ScimGroupRecord.team_id == TeamRecord.id)
            order = (TeamRecord.display_name_normalized, TeamRecord.id)
        try:
            query = base.where(filters.where(visitor, node))
        except InvalidFilterException:
            if node is not None and len(self._provider.resource_types) > 1 and resource_type.name == "Group":
                return 0, []  # an attribute groups do not have matches none of them (RFC 7644 §3.4.2.1)
            raise
        ids = list(uow.session.scalars(query.order_by(*order).offset(offset).limit(limit))) if limit > 0 else []
        if offset == 0 and len(ids) < limit:
            return len(ids), ids  # the whole result is on this page: no count query
        return int(uow.session.scalar(select(func.count()).select_from(query.subquery())) or 0), ids

    # -- writes ------------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        payload = resource.model_dump()
        now = utcnow()

        def work(uow: UsersUnitOfWork, actor: Actor) -> dict[str, Any]:
            if resource_type.name == "User":
                user = provisioning.create_user(uow, self._config, actor, provisioned(payload), now)
                return self._user(uow, user.id)
            team = provisioning.create_group(
                uow,
                actor,
                str(payload.get("displayName") or ""),
                group_external_id(payload),
                group_members(payload),
                now,
            )
            return self._group(uow, team.id)

        return self._model(resource_type, self._run(work))

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        payload = resource.model_dump()
        resource_id = str(payload["id"])
        now = utcnow()

        def work(uow: UsersUnitOfWork, actor: Actor) -> dict[str, Any]:
            self._expect(resource_type, uow, resource_id, expected_version)
            if resource_type.name == "User":
                provisioning.replace_user(uow, self._config, actor, resource_id, provisioned(payload), now)
                return self._user(uow, resource_id)
            provisioning.replace_group(
                uow,
                actor,
                resource_id,
                str(payload.get("displayName") or ""),
                group_external_id(payload),
                group_members(payload),
                now,
            )
            return self._group(uow, resource_id)

        return self._model(resource_type, self._run(work))

    def _expect(self, resource_type: ResourceType, uow: UsersUnitOfWork, resource_id: str, version: str | None) -> None:
        if version is not None and _version(self._read(resource_type, uow, resource_id)) != version:
            raise PreconditionFailedException(detail="the resource changed since it was read; read it and retry")

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        now = utcnow()

        def work(uow: UsersUnitOfWork, actor: Actor) -> None:
            self._expect(resource_type, uow, resource_id, expected_version)
            if resource_type.name == "User":
                provisioning.delete_user(uow, self._config, actor, resource_id, now)
            else:
                provisioning.delete_group(uow, actor, resource_id)

        self._run(work)
