"""The emulated objects: their fields, relationships, API versions and `describe` output.

Each object is a SQLite table (or, for AccountUserTerritory2View, a SQL view) whose columns carry the
Salesforce field names, so a SOQL field path maps directly onto a column or a chain of parent lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ID = "id"
REFERENCE = "reference"
STRING = "string"
PICKLIST = "picklist"
EMAIL = "email"
BOOLEAN = "boolean"
DATETIME = "datetime"

TEXT_TYPES = frozenset({ID, REFERENCE, STRING, PICKLIST, EMAIL})
_SOAP_TYPES = {
    ID: "tns:ID",
    REFERENCE: "tns:ID",
    STRING: "xsd:string",
    PICKLIST: "xsd:string",
    EMAIL: "xsd:string",
    BOOLEAN: "xsd:boolean",
    DATETIME: "xsd:dateTime",
}

# The versions this emulator answers for: /services/data/ lists them all.
MIN_VERSION = 31.0
LATEST_VERSION = 66.0
VIEW_MIN_VERSION = 42.0


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    nillable: bool = True
    relationship: str | None = None  # relationshipName of a reference field: `User` for UserId
    reference_to: str | None = None  # the parent object of a reference field
    min_version: float = 0.0
    length: int = 0

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES


@dataclass(frozen=True)
class SObject:
    name: str
    label: str
    key_prefix: str
    fields: tuple[Field, ...]
    min_version: float = MIN_VERSION
    createable: bool = True
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    _by_relationship: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for item in self.fields:
            self._by_name[item.name.lower()] = item
            if item.relationship:
                self._by_relationship[item.relationship.lower()] = item

    def field(self, name: str, version: float) -> Field | None:
        found = self._by_name.get(name.lower())
        return found if found is not None and version >= found.min_version else None

    def relationship(self, name: str, version: float) -> Field | None:
        found = self._by_relationship.get(name.lower())
        return found if found is not None and version >= found.min_version else None

    def fields_for(self, version: float) -> list[Field]:
        return [item for item in self.fields if version >= item.min_version]


def _id(label: str) -> Field:
    return Field("Id", ID, label, nillable=False, length=18)


def _ref(name: str, label: str, relationship: str, to: str, nillable: bool = False) -> Field:
    return Field(name, REFERENCE, label, nillable=nillable, relationship=relationship, reference_to=to, length=18)


def _text(name: str, label: str, type_: str = STRING, length: int = 80, nillable: bool = True, **kw: Any) -> Field:
    return Field(name, type_, label, nillable=nillable, length=length, **kw)


_MODIFIED = Field("LastModifiedDate", DATETIME, "Last Modified Date", nillable=False)

OBJECTS: dict[str, SObject] = {
    item.name.lower(): item
    for item in (
        SObject(
            "Account",
            "Account",
            "001",
            (_id("Account ID"), _text("Name", "Account Name", length=255, nillable=False), _MODIFIED),
            min_version=20.0,
        ),
        SObject(
            "User",
            "User",
            "005",
            (
                _id("User ID"),
                _text("Username", "Username", length=80, nillable=False),
                _text("FirstName", "First Name", length=40),
                _text("LastName", "Last Name", length=80, nillable=False),
                _text("Name", "Full Name", length=121, nillable=False),
                _text("Email", "Email", EMAIL, length=128, nillable=False),
                Field("IsActive", BOOLEAN, "Active", nillable=False),
                _MODIFIED,
            ),
            min_version=20.0,
        ),
        SObject(
            "Territory2Model",
            "Territory Model",
            "0MA",
            (
                _id("Territory Model ID"),
                _text("Name", "Label", length=80, nillable=False),
                _text("DeveloperName", "Territory Model Name", length=80, nillable=False),
                _text("State", "State", PICKLIST, length=40, nillable=False),
                _MODIFIED,
            ),
        ),
        SObject(
            "Territory2",
            "Territory",
            "0MI",
            (
                _id("Territory ID"),
                _text("Name", "Territory Label", length=80, nillable=False),
                _text("DeveloperName", "Developer Name", length=80, nillable=False),
                _ref("Territory2ModelId", "Territory Model ID", "Territory2Model", "Territory2Model"),
                _MODIFIED,
            ),
        ),
        SObject(
            "ObjectTerritory2Association",
            "Object Territory Association",
            "0R0",
            (
                _id("Object Territory Association ID"),
                _ref("ObjectId", "Object ID", "Object", "Account"),
                _ref("Territory2Id", "Territory ID", "Territory2", "Territory2"),
                _text("AssociationCause", "Association Cause", PICKLIST, length=40, nillable=False),
                _MODIFIED,
            ),
        ),
        SObject(
            "UserTerritory2Association",
            "User Territory Association",
            "0R1",
            (
                _id("User Territory Association ID"),
                _ref("UserId", "User ID", "User", "User"),
                _ref("Territory2Id", "Territory ID", "Territory2", "Territory2"),
                _text("RoleInTerritory2", "Role in Territory", PICKLIST, length=255, min_version=32.0),
                Field("IsActive", BOOLEAN, "Active", nillable=False),
                _MODIFIED,
            ),
        ),
        SObject(
            "AccountTeamMember",
            "Account Team Member",
            "01M",
            (
                _id("Account Team Member ID"),
                _ref("AccountId", "Account ID", "Account", "Account"),
                _ref("UserId", "User ID", "User", "User"),
                _text("TeamMemberRole", "Team Role", PICKLIST, length=40),
                _text("AccountAccessLevel", "Account Access", PICKLIST, length=40, nillable=False),
                _MODIFIED,
            ),
        ),
        SObject(
            "AccountUserTerritory2View",
            "Account User Territory2 View",
            "0Xv",
            (
                _id("Account User Territory2 View ID"),
                _ref("AccountId", "Account ID", "Account", "Account", nillable=True),
                _ref("UserId", "User ID", "User", "User", nillable=True),
                _text("RoleInTerritory2", "Role in Territory", PICKLIST, length=255),
                _ref("Territory2Id", "Territory ID", "Territory2", "Territory2", nillable=True),
                Field("LastModifiedDate", DATETIME, "Modified Date"),
            ),
            min_version=VIEW_MIN_VERSION,
            createable=False,
        ),
    )
}

VIEW = "AccountUserTerritory2View"


def lookup(name: str, version: float) -> SObject | None:
    found = OBJECTS.get(name.lower())
    return found if found is not None and version >= found.min_version else None


def supported_versions() -> list[float]:
    return [float(number) for number in range(int(MIN_VERSION), int(LATEST_VERSION) + 1)]


def release_label(version: float) -> str:
    """The release name of an API version: 60.0 is Spring '24, 61.0 Summer '24, 62.0 Winter '25."""
    index = int(version) - 60
    season = ("Spring", "Summer", "Winter")[index % 3]
    year = 24 + index // 3 + (1 if season == "Winter" else 0)
    return f"{season} '{year:02d}"


def describe(sobject: SObject, version: float, picklists: dict[str, list[str]]) -> dict[str, Any]:
    """The `sobjects/<name>/describe` body (the subset of keys a connector reads, plus the usual flags)."""
    base = f"/services/data/v{version:.1f}/sobjects/{sobject.name}"
    return {
        "name": sobject.name,
        "label": sobject.label,
        "labelPlural": sobject.label + "s",
        "keyPrefix": sobject.key_prefix,
        "custom": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": False,
        "createable": sobject.createable,
        "updateable": sobject.createable,
        "deletable": sobject.createable,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        "childRelationships": [],
        "fields": [_describe_field(item, picklists.get(item.name, [])) for item in sobject.fields_for(version)],
    }


def _describe_field(item: Field, picklist: list[str]) -> dict[str, Any]:
    return {
        "name": item.name,
        "label": item.label,
        "type": item.type,
        "soapType": _SOAP_TYPES[item.type],
        "length": item.length,
        "nillable": item.nillable,
        "filterable": True,
        "sortable": True,
        "groupable": item.type != DATETIME,
        "idLookup": item.type == ID,
        "custom": False,
        "calculated": False,
        "relationshipName": item.relationship,
        "referenceTo": [item.reference_to] if item.reference_to else [],
        "picklistValues": [
            {"active": True, "defaultValue": False, "label": value, "value": value, "validFor": None}
            for value in picklist
        ]
        if item.type == PICKLIST
        else [],
    }
