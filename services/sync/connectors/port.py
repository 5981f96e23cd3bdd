"""What the runner, jobs and scheduler need of a connector, and nothing more.

A connector reads account-team rows from an outside system through a connection:

  settings      its own, checked (and put in canonical form) when a job is saved, stored as JSON
                and carried over gRPC in the Job's `settings` oneof (`proto_field`)
  reader        rows(since, limit): dicts keyed by the source's field names, each row once.
                since=None reads everything the job's filter selects (a full run); a time reads
                the rows modified at or after it (an incremental run). A row's modification
                time is under `modified_field`, as an aware datetime: the newest one a
                successful run saw becomes the job's watermark, so a source without one cannot
                run incrementally (readers then read everything).
                groups_accounts(since): True when rows arrive account by account, so that a
                run may write an account as soon as the next begins (memory bounded by one
                account); False makes the run settle everything first.
                queries: what was sent, for the run's record (Run.queries).
  check         TestConnection: credentials and access to the object read.
  errors        a ConnectorError (transient or not, with the system's code); the runner records
                f"{system}_{code}" and the watermark does not move.

Removals are the runner's, not the connector's: a full run that succeeds knows every pair the
source still returns, so what the job wrote before and the source no longer returns is stale
(REPORT counts it, MIRROR clears it). An incremental run never removes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from google.protobuf.message import Message

from services.runtime.errors import Violations
from services.sync.domain.connection import Connection
from services.sync.domain.model import Removals
from services.sync.domain.rows import AccountRow, FieldMapping, map_row


class ConnectorError(Exception):
    """The source system refused or could not be reached. `status` 0 is a network failure."""

    def __init__(self, system: str, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.system, self.status, self.code, self.message, self.retry_after = system, status, code, message, retry_after

    @property
    def transient(self) -> bool:
        return self.status in (0, 429, 500, 502, 503, 504)


class RowSettings(Protocol):
    """What every connector's settings hold, beside their own fields."""

    @property
    def mapping(self) -> FieldMapping: ...

    @property
    def role_values(self) -> Mapping[str, str]: ...

    @property
    def removals(self) -> Removals: ...


class Reader(Protocol):
    queries: list[str]

    def rows(self, since: dt.datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]: ...

    def groups_accounts(self, since: dt.datetime | None) -> bool: ...


class Connector(Protocol):
    @property
    def kind(self) -> str:
        """What a job names: "salesforce-etm"."""
        ...

    @property
    def title(self) -> str:
        """For people: "Salesforce Enterprise Territory Management"."""
        ...

    @property
    def system(self) -> str:
        """ "SALESFORCE": prefixes the error codes of failed runs."""
        ...

    @property
    def role_label(self) -> str:
        """What a role value is called in row problems: "ETM role"."""
        ...

    @property
    def modified_field(self) -> str: ...

    @property
    def proto_field(self) -> str | None:
        """The Job field (of its `settings` oneof) carrying the settings over gRPC; None: none."""
        ...

    def canonical(self, settings: Any, path: str, problems: Violations) -> Any:
        """Every problem of the settings added to `problems`; the settings in canonical form."""
        ...

    def settings_to_json(self, settings: Any) -> dict[str, Any]: ...

    def settings_from_json(self, raw: Mapping[str, Any]) -> Any: ...

    def settings_to_proto(self, settings: Any) -> Message: ...

    def settings_from_proto(self, message: Any) -> Any: ...

    def reader(self, connection: Connection, settings: Any) -> Reader: ...

    def authenticate(self, connection: Connection) -> None:
        """The connection's credentials work (ConnectorError otherwise)."""
        ...

    def check(self, connection: Connection) -> None:
        """The connector's object may be read (ConnectorError otherwise)."""
        ...


def mapped(
    connector: Connector, index: int, source: dict[str, Any], settings: RowSettings, *, keep_source: bool = True
) -> AccountRow:
    """One source row mapped with the job's settings."""
    return map_row(
        index,
        source,
        settings.mapping,
        settings.role_values,
        modified_field=connector.modified_field,
        role_label=connector.role_label,
        keep_source=keep_source,
    )
