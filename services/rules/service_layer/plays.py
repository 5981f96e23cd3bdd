"""Creating, changing and deleting plays: validated whole, registered with the users service
as resources of kind PLAY (so reassignment moves them), saved in one transaction."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable

from services.rules.adapters.users_client import UsersCallError, UsersClient
from services.rules.domain import criteria as play_criteria
from services.rules.domain.events import ROLE_SUFFIX
from services.rules.domain.model import Play, check_definition, play_not_found
from services.rules.domain.permissions import Caller, author_by_token, ensure_can_author
from services.rules.domain.segments import BUILT_IN_ATTRIBUTES
from services.rules.service_layer.directory import check_references, is_directory_admin, users_unreachable
from services.rules.service_layer.segments import on_play_change, survey
from services.rules.unit_of_work import RulesUnitOfWork
from services.runtime.errors import AlreadyExists, Violations
from services.runtime.etag import check_etag

UPDATABLE = frozenset(
    {
        "display_name",
        "description",
        "owner",
        "origin_team",
        "status",
        "trigger",
        "actions",
        "webhook_secret",
        "priority",
    }
)
REGISTRATION = uuid.UUID("0d6f3c55-1a5e-4d0b-a8f2-6b8d9e1c7a44")


def ensure_author(directory: UsersClient, caller: Caller) -> None:
    if not author_by_token(caller):
        ensure_can_author(caller, is_directory_admin(directory, caller))


def validate(
    directory: UsersClient,
    play: Play,
    shape: Violations | None = None,
    uow_factory: Callable[..., RulesUnitOfWork] | None = None,
) -> None:
    """Raises INVALID_ARGUMENT listing every problem of the play: its shape (from the request),
    its definition, its references and (segment plays) the attributes its criteria name."""
    problems = check_definition(play)
    problems.items[:0] = shape.items if shape else []
    check_references(directory, play, problems)
    if uow_factory is not None:
        _check_attributes(uow_factory, play, problems)
    problems.raise_if_any("the play is invalid")


def _check_attributes(uow_factory: Callable[..., RulesUnitOfWork], play: Play, problems: Violations) -> None:
    """A segment over an attribute no account has ever had is a typo far more often than a
    plan: every field must be one an event carried (roles are checked as references)."""
    if not play.kind.is_segment or play.trigger.criteria is None:
        return
    criterion = play_criteria.parse(play.trigger.criteria, "criteria", Violations())
    fields = {f for f in play_criteria.fields_of(criterion) if not f.endswith(ROLE_SUFFIX)} if criterion else set()
    fields -= BUILT_IN_ATTRIBUTES
    with uow_factory() as uow:
        known = uow.attributes.known(fields)
    for field in sorted(fields - known):
        problems.add(
            "play.trigger.criteria", f"no account event has carried the attribute {field!r}", "ATTRIBUTE_UNKNOWN"
        )


def _name_taken(uow: RulesUnitOfWork, play: Play) -> None:
    other = uow.plays.get_by_display_name(play.display_name)
    if other is not None and other.id != play.id:
        raise AlreadyExists(
            "PLAY_NAME_TAKEN",
            f"another play is named {play.display_name!r}",
            metadata={"play": other.name},
        )


def _register(directory: UsersClient, play: Play) -> None:
    """Idempotent (create or replace, with a request id per version), so a retried or
    repeated registration is harmless; it runs before the commit so that a saved play is
    always a registered one."""
    # The version is part of it: handing a play back to an earlier owner (after a reassignment
    # moved it) is a new registration, not a replay of the first one.
    request_id = str(uuid.uuid5(REGISTRATION, f"{play.id}/{play.version}/{play.owner_id}/{play.display_name}"))
    try:
        directory.register_play(play.id, play.display_name, f"users/{play.owner_id}", request_id)
    except UsersCallError as error:
        raise users_unreachable(error) from error


def create_play(
    uow_factory: Callable[..., RulesUnitOfWork],
    directory: UsersClient,
    caller: Caller,
    play: Play,
    validate_only: bool,
    request_id: str = "",
    shape: Violations | None = None,
) -> Play:
    """With a request_id the play's id derives from it: a retry finds the play it created."""
    ensure_author(directory, caller)
    if not play.owner_id and caller.user_id:
        play.owner_id = caller.user_id
    if request_id:
        play.id = str(uuid.uuid5(REGISTRATION, f"create/{request_id}"))
        with uow_factory() as uow:
            earlier = uow.plays.get(play.id)
        if earlier is not None:
            return earlier
    validate(directory, play, shape, uow_factory)
    with uow_factory() as uow:
        _name_taken(uow, play)
    if validate_only:
        return play
    _register(directory, play)
    learned = survey(uow_factory, None, play, play.update_time)
    with uow_factory() as uow:
        _name_taken(uow, play)
        uow.plays.add(play)
        on_play_change(uow, None, play, play.update_time, learned)
        uow.commit()
    return play


def update_play(
    uow_factory: Callable[..., RulesUnitOfWork],
    directory: UsersClient,
    caller: Caller,
    changes: Play,
    paths: list[str],
    etag: str,
    validate_only: bool,
    now: dt.datetime,
    shape: Violations | None = None,
) -> Play:
    ensure_author(directory, caller)
    with uow_factory() as uow:
        current = uow.plays.get(changes.id)
    if current is None:
        raise play_not_found(changes.id)
    check_etag(etag, current.etag)
    fields = {p: getattr(changes, p) for p in paths if p not in ("owner", "trigger")}
    if "owner" in paths:
        fields["owner_id"] = changes.owner_id
    if "trigger" in paths:
        fields["trigger"] = changes.trigger
    updated = dataclasses.replace(current, **fields, update_time=now)
    validate(directory, updated, shape, uow_factory)
    with uow_factory() as uow:
        _name_taken(uow, updated)
    if validate_only:
        return updated
    _register(directory, updated)  # also restores a registration a failed delete removed
    learned = survey(uow_factory, current, updated, now)
    with uow_factory() as uow:
        latest = uow.plays.get(changes.id, for_update=True)
        if latest is None:
            raise play_not_found(changes.id)
        check_etag(current.etag, latest.etag)  # changed while we validated: the caller retries
        _name_taken(uow, updated)
        uow.plays.save(updated)
        on_play_change(uow, latest, updated, now, learned)
        uow.commit()
    return updated


def delete_play(
    uow_factory: Callable[..., RulesUnitOfWork], directory: UsersClient, caller: Caller, play_id: str, etag: str
) -> None:
    """The PLAY resource goes first: a play that outlived it would be re-registered by its next
    update, while a resource that outlived its play would keep its owner from being disabled."""
    ensure_author(directory, caller)
    with uow_factory() as uow:
        play = uow.plays.get(play_id)
    if play is None:
        raise play_not_found(play_id)
    check_etag(etag, play.etag)
    try:
        directory.unregister_play(play_id, str(uuid.uuid5(REGISTRATION, f"delete/{play_id}/{play.version}")))
    except UsersCallError as error:
        raise users_unreachable(error) from error
    with uow_factory() as uow:
        latest = uow.plays.get(play_id, for_update=True)
        if latest is None:
            raise play_not_found(play_id)
        check_etag(play.etag, latest.etag)
        uow.plays.delete(play_id)
        on_play_change(uow, latest, None, latest.update_time)
        uow.commit()
