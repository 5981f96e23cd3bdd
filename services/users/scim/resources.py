"""Steward users and teams as SCIM resources, and SCIM resources as what a provider wants: the
translation both ways, with no database and no HTTP."""

from __future__ import annotations

import datetime as dt
from typing import Any

from scim2_models import InvalidValueException

from services.users.adapters.scim_repository import ScimIdentity
from services.users.domain.model import License, User, normalize_email
from services.users.domain.provisioning import ProvisionedUser
from services.users.domain.status_policy import policy_of
from services.users.domain.teams import Team
from services.users.scim.schemas import CORE_GROUP, CORE_USER, ENTERPRISE_USER, STEWARD_USER

# userName and externalId columns hold this many characters.
MAX_IDENTIFIER = 254


def _meta(kind: str, created: dt.datetime, modified: dt.datetime, version: int) -> dict[str, Any]:
    return {
        "resourceType": kind,
        "created": created.isoformat(),
        "lastModified": modified.isoformat(),
        "version": f'W/"{version}"',
    }


def user_resource(user: User, identity: ScimIdentity) -> dict[str, Any]:
    labels = identity.email_labels
    emails = [_email(address, labels) for address in (user.email, *user.alternative_emails)]
    name = {k: v for k, v in (("givenName", user.first_name), ("familyName", user.last_name)) if v}
    steward: dict[str, Any] = {"currentLicense": user.license.value, "globalAdmin": user.global_admin}
    if identity.license_managed:
        steward["license"] = user.license.value
    resource: dict[str, Any] = {
        "schemas": [CORE_USER, ENTERPRISE_USER, STEWARD_USER],
        "id": user.id,
        "userName": identity.user_name,
        "displayName": f"{user.first_name} {user.last_name}".strip() or user.email,
        "active": policy_of(user.status).enabled,
        "emails": emails,
        STEWARD_USER: steward,
        "meta": _meta("User", user.create_time, user.update_time, user.version),
    }
    if identity.external_id is not None:
        resource["externalId"] = identity.external_id
    if name:
        resource["name"] = name
    if user.manager_id:
        resource[ENTERPRISE_USER] = {"manager": {"value": user.manager_id, "$ref": f"Users/{user.manager_id}"}}
    return resource


def _email(address: str, labels: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """An address with the labels the provider gave it (none for addresses it did not send)."""
    return {"value": address, **labels.get(normalize_email(address), {})}


def provisioned(resource: dict[str, Any]) -> ProvisionedUser:
    """What the provider says, checked: the login email is the primary email, else the first."""
    user_name = str(resource.get("userName") or "").strip()
    if not user_name:
        raise InvalidValueException(detail="userName is required")
    _fits("userName", user_name)
    _fits("externalId", resource.get("externalId"))
    entries = [e for e in resource.get("emails") or [] if str(e.get("value") or "").strip()]
    if not entries:
        raise InvalidValueException(detail="Steward needs an email address: give emails (the primary one is the login)")
    login = next((e for e in entries if e.get("primary")), entries[0])
    email = str(login["value"]).strip()
    alternatives: list[str] = []
    for entry in entries:
        address = normalize_email(str(entry["value"]))
        if address != normalize_email(email) and address not in alternatives:
            alternatives.append(address)
    labels = {
        normalize_email(str(e["value"])): {k: e[k] for k in ("type", "primary") if e.get(k) is not None}
        for e in entries
    }
    name = resource.get("name") or {}
    manager = (resource.get(ENTERPRISE_USER) or {}).get("manager") or {}
    steward = resource.get(STEWARD_USER) or {}
    return ProvisionedUser(
        user_name=user_name,
        email=email,
        alternative_emails=tuple(alternatives),
        email_labels=labels,
        first_name=str(name.get("givenName") or ""),
        last_name=str(name.get("familyName") or ""),
        active=resource.get("active"),
        external_id=resource.get("externalId"),
        license=_license(steward.get("license")),
        manager_id=manager.get("value") or None,
    )


def _fits(name: str, value: Any, limit: int = MAX_IDENTIFIER) -> None:
    if value is not None and len(str(value)) > limit:
        raise InvalidValueException(detail=f"{name} has at most {limit} characters")


def group_external_id(resource: dict[str, Any]) -> str | None:
    external_id = resource.get("externalId")
    _fits("externalId", external_id)
    return external_id


def _license(value: Any) -> License | None:
    if value is None:
        return None
    wanted = str(value).strip().upper()
    if wanted not in License.__members__:
        raise InvalidValueException(detail=f"license must be one of {', '.join(License)}, got {value!r}")
    return License(wanted)


def group_resource(team: Team, external_id: str | None, member_ids: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [CORE_GROUP],
        "id": team.id,
        "displayName": team.display_name,
        "meta": _meta("Group", team.create_time, team.update_time, team.version),
    }
    if external_id is not None:
        resource["externalId"] = external_id
    if member_ids:
        resource["members"] = [{"value": m, "$ref": f"Users/{m}", "type": "User"} for m in member_ids]
    return resource


def group_members(resource: dict[str, Any]) -> list[str]:
    members = resource.get("members") or []
    ids = [str(m.get("value") or "") for m in members]
    if not all(ids):
        raise InvalidValueException(detail="every member needs a value (the user's id)")
    for member in ids:
        _fits("members.value", member, 36)
    return ids
