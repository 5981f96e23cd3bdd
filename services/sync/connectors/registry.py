"""The connectors a sync service knows, by kind; the runner, jobs and scheduler go through it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

from services.runtime.errors import FailedPrecondition
from services.sync.config import SyncConfig
from services.sync.connectors.port import Connector, RowSettings
from services.sync.connectors.salesforce.client import SalesforceClient, SalesforceRetry
from services.sync.connectors.salesforce_account_team.connector import AccountTeamConnector
from services.sync.connectors.salesforce_etm.connector import EtmConnector
from services.sync.domain.model import Job, reads_connection


class Connectors:
    def __init__(self, connectors: Iterable[Connector]) -> None:
        self._by_kind = {c.kind: c for c in connectors}

    def __iter__(self) -> Iterator[Connector]:
        return iter(self._by_kind.values())

    def find(self, kind: str) -> Connector | None:
        return self._by_kind.get(kind)

    def get(self, kind: str) -> Connector:
        """The connector of a stored job: one this replica lacks (a job written by a newer
        version, during a rolling update) cannot run here."""
        connector = self._by_kind.get(kind)
        if connector is None:
            raise FailedPrecondition(
                "CONNECTOR_UNKNOWN",
                f"this sync service has no connector {kind!r}",
                metadata={"connector": kind},
            )
        return connector

    def by_proto_field(self, field: str) -> Connector | None:
        return next((c for c in self._by_kind.values() if c.proto_field == field), None)

    def settings_of(self, job: Job) -> tuple[Connector, RowSettings, str]:
        """(connector, typed settings, connection id) of a job that reads through a connector."""
        kind, raw, connection_id = reads_connection(job)
        connector = self.get(kind)
        settings: RowSettings = connector.settings_from_json(raw)
        return connector, settings, connection_id


def standard(config: SyncConfig | None = None) -> Connectors:
    """The connectors Steward ships, their Salesforce calls retried as `config` says."""
    config = config or SyncConfig()
    retry = SalesforceRetry(attempts=config.salesforce_attempts, max_backoff=config.salesforce_max_backoff_seconds)
    client = partial(SalesforceClient, retry=retry)
    return Connectors([EtmConnector(client), AccountTeamConnector(client)])
