"""The settings of a job reading one Salesforce object, shared by the Salesforce connectors.

object        the object read (one per connector: AccountUserTerritory2View, AccountTeamMember)
fields        what is read (mapping and filtering)
query filter  the admin's SOQL WHERE clause, kept in canonical form (soql_filter)
mapping       Salesforce field -> account id, user email, user name, role value
role values   Salesforce role value -> Steward role ("CSM" -> roles/success_manager)
removals      REPORT (count what Salesforce stopped returning) or MIRROR (clear it after a full run)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from google.protobuf.message import Message

from services.runtime.errors import Violations
from services.runtime.protobuf import enum_maps
from services.sync.connectors.salesforce import soql_filter
from services.sync.domain.model import Removals
from services.sync.domain.rows import FieldMapping
from steward.sync.v1 import jobs_pb2

REMOVALS, REMOVALS_FROM_PROTO = enum_maps(Removals, "REMOVALS_", jobs_pb2.Removals)
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class SObjectSpec:
    """What a connector may read of its object."""

    object: str
    readable: tuple[str, ...]  # may be read and filtered on, in canonical order
    default_fields: tuple[str, ...]
    mappable: tuple[str, ...]
    default_mapping: FieldMapping
    role_label: str  # what the object calls a role value, for people: "ETM role"


@dataclass(frozen=True)
class ObjectSettings:
    object: str
    fields: tuple[str, ...]
    mapping: FieldMapping
    query_filter: str = ""  # canonical SOQL, or empty
    role_values: dict[str, str] = field(default_factory=dict)
    removals: Removals = Removals.REPORT

    def parsed_filter(self) -> soql_filter.Filter | None:
        return soql_filter.parse(self.query_filter) if self.query_filter else None


def canonical(spec: SObjectSpec, settings: ObjectSettings, path: str, problems: Violations) -> ObjectSettings:
    """Every problem of the settings; fields and filter come back in canonical form."""
    if settings.object != spec.object:
        problems.add(f"{path}.object", f"only {spec.object} is supported", "OBJECT_UNSUPPORTED")
    canonical_fields: list[str] = []
    for index, name in enumerate(settings.fields):
        match = next((k for k in spec.readable if k.lower() == name.strip().lower()), None)
        if match is None:
            problems.add(f"{path}.fields[{index}]", f"one of {', '.join(spec.readable)}", "FIELD_UNKNOWN")
        elif match not in canonical_fields:
            canonical_fields.append(match)
    for role, mapped in settings.mapping.fields().items():
        if mapped not in spec.mappable:
            problems.add(f"{path}.mapping.{role}", f"one of {', '.join(spec.mappable)}", "FIELD_UNKNOWN")
        elif mapped not in canonical_fields:
            problems.add(f"{path}.mapping.{role}", f"{mapped} must be among the job's fields", "FIELD_NOT_READ")
    for value, role in settings.role_values.items():
        if not value.strip():
            problems.add(f"{path}.role_values", f"an {spec.role_label} value may not be empty", "ROLE_VALUE_INVALID")
        if not role.startswith("roles/") or len(role) <= len("roles/"):
            problems.add(f"{path}.role_values[{value}]", "a role name, roles/{key}", "ROLE_INVALID")
    if not settings.role_values:
        problems.add(
            f"{path}.role_values", f"map at least one {spec.role_label} to a Steward role", "ROLE_VALUES_EMPTY"
        )
    query_filter = ""
    if settings.query_filter.strip():
        try:
            query_filter = soql_filter.render(soql_filter.parse(settings.query_filter, spec.readable))
        except soql_filter.FilterError as error:
            problems.add(f"{path}.query_filter", error.message, "QUERY_FILTER_INVALID")
    return replace(settings, fields=tuple(canonical_fields), query_filter=query_filter)


def to_json(settings: ObjectSettings) -> dict[str, Any]:
    return {
        "object": settings.object,
        "fields": list(settings.fields),
        "query_filter": settings.query_filter,
        "mapping": settings.mapping.fields(),
        "role_values": dict(settings.role_values),
        "removals": settings.removals.value,
    }


def from_json(raw: Mapping[str, Any]) -> ObjectSettings:
    return ObjectSettings(
        object=raw["object"],
        fields=tuple(raw["fields"]),
        query_filter=raw["query_filter"],
        mapping=FieldMapping(**raw["mapping"]),
        role_values=dict(raw["role_values"]),
        removals=Removals(raw["removals"]),
    )


def to_proto(settings: ObjectSettings, message_type: type[M]) -> M:
    """EtmSettings and AccountTeamSettings share their fields (and numbers)."""
    return message_type(
        object=settings.object,
        fields=list(settings.fields),
        query_filter=settings.query_filter,
        mapping=jobs_pb2.FieldMapping(**settings.mapping.fields()),
        role_values=dict(settings.role_values),
        removals=REMOVALS[settings.removals],
    )


def from_proto(spec: SObjectSpec, m: Any) -> ObjectSettings:
    """Empty fields take the object's defaults; a role written without "roles/" gets it."""
    defaults = spec.default_mapping
    mapping = FieldMapping(
        account_id=m.mapping.account_id.strip() or defaults.account_id,
        user_email=m.mapping.user_email.strip() or defaults.user_email,
        user_name=m.mapping.user_name.strip() or defaults.user_name,
        role=m.mapping.role.strip() or defaults.role,
    )
    return ObjectSettings(
        object=m.object.strip() or spec.object,
        fields=tuple(m.fields) or spec.default_fields,
        query_filter=m.query_filter,
        mapping=mapping,
        role_values={k.strip(): (v if v.startswith("roles/") else f"roles/{v}") for k, v in m.role_values.items()},
        removals=REMOVALS_FROM_PROTO.get(m.removals, Removals.REPORT),
    )
