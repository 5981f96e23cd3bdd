"""Salesforce Enterprise Territory Management: who is on each account's territories, and in
which role (AccountUserTerritory2View; reader.py says how it is read at org scale)."""

from __future__ import annotations

from services.runtime.errors import Violations
from services.sync.connectors.port import Reader
from services.sync.connectors.salesforce import soql_filter
from services.sync.connectors.salesforce.connector import SalesforceConnector
from services.sync.connectors.salesforce.settings import ObjectSettings, SObjectSpec
from services.sync.connectors.salesforce_etm.reader import VIEW, EtmReader
from services.sync.domain.connection import Connection
from services.sync.domain.rows import FieldMapping
from steward.sync.v1 import jobs_pb2

SPEC = SObjectSpec(
    object=VIEW,
    readable=(
        "Id",
        "AccountId",
        "UserId",
        "User.Email",
        "User.Name",
        "RoleInTerritory2",
        "Territory2Id",
        "LastModifiedDate",
    ),
    default_fields=(
        "AccountId",
        "User.Email",
        "User.Name",
        "RoleInTerritory2",
        "Id",
        "Territory2Id",
        "LastModifiedDate",
    ),
    mappable=("AccountId", "UserId", "User.Email", "User.Name", "RoleInTerritory2", "Territory2Id", "Id"),
    default_mapping=FieldMapping(
        account_id="AccountId", user_email="User.Email", user_name="User.Name", role="RoleInTerritory2"
    ),
    role_label="ETM role",
)


class EtmConnector(SalesforceConnector):
    kind = "salesforce-etm"
    title = "Salesforce Enterprise Territory Management"
    spec = SPEC
    role_label = SPEC.role_label
    proto_field = "etm"
    message_type = jobs_pb2.EtmSettings

    def canonical(self, settings: ObjectSettings, path: str, problems: Violations) -> ObjectSettings:
        settings = super().canonical(settings, path, problems)
        parsed = settings.parsed_filter()
        # The view's own record id exists only on the view, which Salesforce lets us query only
        # for one account at a time.
        if parsed is not None and "Id" in soql_filter.fields_of(parsed) and soql_filter.accounts_pinned(parsed) is None:
            problems.add(
                f"{path}.query_filter",
                "a filter on Id (the view's record id) needs a single AccountId = '...' as well",
                "QUERY_FILTER_UNSUPPORTED",
            )
        return settings

    def reader(self, connection: Connection, settings: ObjectSettings) -> Reader:
        return EtmReader(self._client(connection), settings)
