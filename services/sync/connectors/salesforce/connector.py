"""What the Salesforce connectors share: a connection is a Salesforce org, the settings are those
of one object (settings.py), TestConnection gets a token and describes that object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.message import Message

from services.runtime.errors import Violations
from services.sync.connectors.port import Reader
from services.sync.connectors.salesforce import settings as object_settings
from services.sync.connectors.salesforce.client import SalesforceClient
from services.sync.connectors.salesforce.settings import ObjectSettings, SObjectSpec
from services.sync.domain.connection import Connection

ClientFactory = Callable[[Connection], SalesforceClient]


class SalesforceConnector:
    system = "SALESFORCE"
    modified_field = "LastModifiedDate"
    spec: SObjectSpec
    kind: str
    title: str
    role_label: str
    proto_field: str | None
    message_type: type[Message]

    def __init__(self, client: ClientFactory = SalesforceClient) -> None:
        self._client = client

    def default_settings(self, **changes: Any) -> ObjectSettings:
        return ObjectSettings(
            object=self.spec.object, fields=self.spec.default_fields, mapping=self.spec.default_mapping, **changes
        )

    def canonical(self, settings: ObjectSettings, path: str, problems: Violations) -> ObjectSettings:
        return object_settings.canonical(self.spec, settings, path, problems)

    def settings_to_json(self, settings: ObjectSettings) -> dict[str, Any]:
        return object_settings.to_json(settings)

    def settings_from_json(self, raw: Mapping[str, Any]) -> ObjectSettings:
        return object_settings.from_json(raw)

    def settings_to_proto(self, settings: ObjectSettings) -> Message:
        return object_settings.to_proto(settings, self.message_type)

    def settings_from_proto(self, message: Any) -> ObjectSettings:
        return object_settings.from_proto(self.spec, message)

    def reader(self, connection: Connection, settings: ObjectSettings) -> Reader:
        raise NotImplementedError

    def authenticate(self, connection: Connection) -> None:
        self._client(connection).refresh_token()

    def check(self, connection: Connection) -> None:
        self._client(connection).check(self.spec.object)
