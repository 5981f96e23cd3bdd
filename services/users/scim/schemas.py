"""What Steward's SCIM endpoint serves: the attributes it keeps, and what it supports.

Every attribute declared here round-trips: what a client writes is what it reads back. Attributes
an identity provider sends that are not declared (title, phoneNumbers, addresses...) are dropped,
not refused, because Okta's and Entra ID's default mappings send them (ScimPolicy.unknown=ignore).

Choices that differ from RFC 7643's reference schemas, and why:
- emails is required: Steward identifies people by email (the login, notifications, CRM mapping).
  The primary email (else the first) is the user's login email.
- displayName is read-only: derived from name.givenName and name.familyName.
- Group displayName is unique (team names are), members are users only (no nested teams).
- active is required: every Steward user has a status, so it cannot be "unassigned".
- license (Steward extension) is the license the identity provider assigns. Unassigned, it is left
  to Steward admins (a new user gets STEWARD_SCIM_DEFAULT_LICENSE). Its canonical values are the
  paid licenses, between which a provider may move a user at any time; VIEWER is accepted, but a
  PRACTITIONER or CONTRIBUTOR never becomes a VIEWER (the gRPC rule: delete and invite again).
  currentLicense (returned on request) says what the user holds. globalAdmin is read-only:
  granting it is a Steward admin's decision, never a provisioning side effect.
"""

from __future__ import annotations

from typing import Any

from scim2_models import ResourceType, Schema, ScimPolicy, ScimProvider, ServiceProviderConfig

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STEWARD_USER = "urn:steward:scim:schemas:extension:steward:2.0:User"
# The licenses a provider may move a user between at any time (a user leaves VIEWER, never returns).
PAID_LICENSES = ["PRACTITIONER", "CONTRIBUTOR"]
MAX_RESULTS = 500


def _attribute(name: str, description: str, kind: str = "string", **characteristics: Any) -> dict[str, Any]:
    attribute = {
        "name": name,
        "type": kind,
        "multiValued": False,
        "description": description,
        "required": False,
        "mutability": "readWrite",
        "returned": "default",
    }
    if kind in ("string", "reference"):
        attribute |= {"caseExact": False, "uniqueness": "none"}
    return attribute | characteristics


def _user_schema() -> dict[str, Any]:
    return {
        "id": CORE_USER,
        "name": "User",
        "description": "A Steward user",
        "attributes": [
            _attribute(
                "userName",
                "The sign-in name the identity provider knows the user by, unique (case-insensitive).",
                required=True,
                uniqueness="server",
            ),
            _attribute(
                "name",
                "The user's name.",
                "complex",
                subAttributes=[
                    _attribute("givenName", "First name."),
                    _attribute("familyName", "Last name."),
                ],
            ),
            _attribute("displayName", "First and last name, or the email.", mutability="readOnly"),
            _attribute(
                "active",
                "Whether the user may use Steward (false: DISABLED); every user has a status.",
                "boolean",
                required=True,
            ),
            _attribute(
                "emails",
                "The user's addresses; the primary one (else the first) is the login email.",
                "complex",
                multiValued=True,
                required=True,
                subAttributes=[
                    _attribute("value", "An email address.", required=True),
                    _attribute("type", "work, home or other.", canonicalValues=["work", "home", "other"]),
                    _attribute("primary", "The login email.", "boolean"),
                ],
            ),
        ],
    }


def _enterprise_schema() -> dict[str, Any]:
    return {
        "id": ENTERPRISE_USER,
        "name": "EnterpriseUser",
        "description": "Enterprise user: the manager, which is Steward's employee hierarchy",
        "attributes": [
            _attribute(
                "manager",
                "The user's manager, a Steward user.",
                "complex",
                subAttributes=[
                    _attribute("value", "The manager's id.", caseExact=True),
                    _attribute("$ref", "The manager's URI.", "reference", referenceTypes=["User"], caseExact=True),
                ],
            )
        ],
    }


def _steward_schema() -> dict[str, Any]:
    return {
        "id": STEWARD_USER,
        "name": "StewardUser",
        "description": "Steward's license and permissions",
        "attributes": [
            _attribute(
                "license",
                "The paid license the identity provider assigns: PRACTITIONER or CONTRIBUTOR (VIEWER is "
                "accepted for viewers; seats are counted, and a PRACTITIONER or CONTRIBUTOR never becomes "
                "a VIEWER). Unassigned: new users get the default license, and Steward admins manage it.",
                canonicalValues=PAID_LICENSES,
            ),
            _attribute(
                "currentLicense",
                "The license the user holds, whoever assigned it.",
                mutability="readOnly",
                returned="request",
            ),
            _attribute(
                "globalAdmin",
                "Whether the user is a global admin.",
                "boolean",
                mutability="readOnly",
                returned="request",
            ),
        ],
    }


def _group_schema() -> dict[str, Any]:
    return {
        "id": CORE_GROUP,
        "name": "Group",
        "description": "A Steward team",
        "attributes": [
            _attribute("displayName", "The team's name, unique.", required=True, uniqueness="server"),
            _attribute(
                "members",
                "The team's members (users).",
                "complex",
                multiValued=True,
                subAttributes=[
                    _attribute("value", "The member's id.", caseExact=True, mutability="immutable"),
                    _attribute(
                        "$ref", "The member's URI.", "reference", referenceTypes=["User"], mutability="immutable"
                    ),
                    _attribute("type", "Always User.", canonicalValues=["User"], mutability="immutable"),
                ],
            ),
        ],
    }


def _resource_types() -> list[dict[str, Any]]:
    return [
        {
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "Steward users",
            "schema": CORE_USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE_USER, "required": False},
                {"schema": STEWARD_USER, "required": False},
            ],
        },
        {"id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Steward teams", "schema": CORE_GROUP},
    ]


def _config() -> dict[str, Any]:
    return {
        "documentationUri": "https://github.com/steward/steward/blob/main/docs/scim.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A Steward JWT with the users.scim scope: steward token --sub service:okta "
                "--scope users.scim",
                "specUri": "https://datatracker.ietf.org/doc/html/rfc6750",
                "primary": True,
            }
        ],
    }


# Identity providers send attributes beyond these schemas, capitalised PATCH ops, "False" as a
# string, `remove` with a value, and filtered paths to entries that do not exist yet (Entra ID).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def provider() -> ScimProvider:
    schemas = [
        Schema.model_validate(s) for s in (_user_schema(), _enterprise_schema(), _steward_schema(), _group_schema())
    ]
    types = [ResourceType.model_validate(t) for t in _resource_types()]
    return ScimProvider.from_discovery(
        schemas, types, config=ServiceProviderConfig.model_validate(_config()), policy=POLICY
    )
