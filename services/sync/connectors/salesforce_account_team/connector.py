"""Salesforce Account Team Members (AccountTeamMember: AccountId, UserId, TeamMemberRole): the
standard model of account ownership in orgs that do not use Enterprise Territory Management."""

from __future__ import annotations

from services.sync.connectors.port import Reader
from services.sync.connectors.salesforce.connector import SalesforceConnector
from services.sync.connectors.salesforce.settings import ObjectSettings, SObjectSpec
from services.sync.connectors.salesforce_account_team.reader import OBJECT, AccountTeamReader
from services.sync.domain.connection import Connection
from services.sync.domain.rows import FieldMapping
from steward.sync.v1 import jobs_pb2

SPEC = SObjectSpec(
    object=OBJECT,
    readable=(
        "Id",
        "AccountId",
        "UserId",
        "User.Email",
        "User.Name",
        "TeamMemberRole",
        "AccountAccessLevel",
        "LastModifiedDate",
    ),
    default_fields=("AccountId", "User.Email", "User.Name", "TeamMemberRole", "Id", "UserId", "LastModifiedDate"),
    mappable=("AccountId", "UserId", "User.Email", "User.Name", "TeamMemberRole", "Id"),
    default_mapping=FieldMapping(
        account_id="AccountId", user_email="User.Email", user_name="User.Name", role="TeamMemberRole"
    ),
    role_label="team role",
)


class AccountTeamConnector(SalesforceConnector):
    kind = "salesforce-account-team"
    title = "Salesforce Account Team Members"
    spec = SPEC
    role_label = SPEC.role_label
    proto_field = "account_team"
    message_type = jobs_pb2.AccountTeamSettings

    def reader(self, connection: Connection, settings: ObjectSettings) -> Reader:
        return AccountTeamReader(self._client(connection), settings)
