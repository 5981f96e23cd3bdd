"""Reads Account Team Members: the standard Salesforce model of who works on an account, and in
which team role.

Unlike the ETM view, AccountTeamMember may be queried at org scale: one SOQL query, with the
admin's filter, ordered by AccountId so that rows come account by account (a run writes each
account as soon as the next begins), followed page by page through nextRecordsUrl. An
incremental read adds `LastModifiedDate >= watermark`. A member removed from a team is deleted
in Salesforce, so it simply stops being returned: a full run sees it as stale (removals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from services.sync.connectors.salesforce import soql_filter
from services.sync.connectors.salesforce.client import SalesforceClient
from services.sync.connectors.salesforce.settings import ObjectSettings

OBJECT = "AccountTeamMember"


def since_filter(watermark: dt.datetime) -> soql_filter.Comparison:
    """Rows modified at or after the watermark's second: SOQL literals and Salesforce stamps have
    whole seconds, so `>` would miss a change made in the second of the last run's newest row."""
    return soql_filter.Comparison("LastModifiedDate", ">=", watermark.astimezone(dt.UTC).replace(microsecond=0))


class AccountTeamReader:
    def __init__(self, client: SalesforceClient, settings: ObjectSettings) -> None:
        self._client = client
        self._settings = settings
        self.queries: list[str] = []

    def _filter(self, since: dt.datetime | None) -> soql_filter.Filter | None:
        base = self._settings.parsed_filter()
        return base if since is None else soql_filter.and_filter(base, since_filter(since))

    def groups_accounts(self, since: dt.datetime | None) -> bool:
        # Any read is ordered by AccountId; only a mapping from another field breaks the grouping.
        return self._settings.mapping.account_id == "AccountId"

    def rows(self, since: dt.datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        fields = list(self._settings.fields)
        order = "AccountId" if "AccountId" in fields else fields[0]
        if "Id" not in fields:
            fields.append("Id")  # the tiebreak that makes the order total, across pages
        soql = f"SELECT {', '.join(fields)} FROM {OBJECT}"
        where = self._filter(since)
        if where is not None:
            soql += f" WHERE {soql_filter.render(where)}"
        soql += f" ORDER BY {order}, Id"
        if limit is not None:
            soql += f" LIMIT {limit}"
        self.queries.append(soql)
        for page in self._client.query(soql):
            yield from page
