"""Reads ETM account assignments from Salesforce: the view for one account, a join at org scale.

Salesforce refuses any query on AccountUserTerritory2View without a filter on one AccountId,
so a whole-org sync cannot be a query on the view. The view's rows are, for each account
associated with a territory of the *Active* model, every user associated with that territory:

    AccountUserTerritory2View(AccountId, UserId, RoleInTerritory2, Territory2Id, ...)
      = ObjectTerritory2Association(ObjectId, Territory2Id)          -- account in territory
        JOIN UserTerritory2Association(UserId, Territory2Id, RoleInTerritory2, IsActive = true)
        ON Territory2Id, both restricted to Territory2.Territory2Model.State = 'Active'
      with LastModifiedDate = the later of the two associations' dates

So a filter that pins one AccountId queries the view directly (what Salesforce supports), and
anything else reads the two association objects, each in a few 2,000-row pages, joins them here
by territory (user associations are few: users x territories; account associations stream
through page by page), and applies the admin's filter to the joined rows with the same SOQL
semantics (soql_filter.evaluate). An incremental read keeps every user association (to know
which territories changed) and reads only the account associations modified after the watermark
plus those of territories whose user associations changed: still a handful of queries.
`Id` (the view's own record id) exists only on the view, so a filter on Id needs a pinned account.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from services.sync.connectors.salesforce import soql_filter
from services.sync.connectors.salesforce.client import SalesforceClient
from services.sync.connectors.salesforce.settings import ObjectSettings

VIEW = "AccountUserTerritory2View"

ACTIVE_MODEL = "Territory2.Territory2Model.State = 'Active'"
USER_FIELDS = "Id, UserId, User.Email, User.Name, RoleInTerritory2, Territory2Id, LastModifiedDate"
ACCOUNT_FIELDS = "Id, ObjectId, Territory2Id, LastModifiedDate"
IN_CHUNK = 200  # territory ids per IN (...) list, well under SOQL's length limits


def _quote(value: str) -> str:
    return soql_filter.render(soql_filter.Comparison("Territory2Id", "=", value)).split("= ", 1)[1]


def _since(watermark: dt.datetime) -> soql_filter.Comparison:
    """Rows modified at or after the watermark's second. SOQL literals have whole seconds and
    Salesforce stamps whole seconds, so a change made in the same second as the newest row of
    the last run would be missed by `>`; `>=` re-reads that second's rows, which are applied
    again as unchanged."""
    return soql_filter.Comparison("LastModifiedDate", ">=", watermark.astimezone(dt.UTC).replace(microsecond=0))


class EtmReader:
    def __init__(self, client: SalesforceClient, settings: ObjectSettings) -> None:
        self._client = client
        self._settings = settings
        self.queries: list[str] = []

    def effective_filter(self, since: dt.datetime | None) -> soql_filter.Filter | None:
        base = self._settings.parsed_filter()
        if since is None:
            return base
        return soql_filter.and_filter(base, _since(since))

    def groups_accounts(self, since: dt.datetime | None) -> bool:
        """Do rows(since) come account by account (all of one mapped account before the next)? A
        full read of the join does: its one account-association query is ordered by ObjectId, so
        a runner can write an account's settled rows as soon as the next account begins."""
        return (
            since is None
            and not soql_filter.accounts_pinned(self.effective_filter(since))
            and self._settings.mapping.account_id == "AccountId"
        )

    def rows(self, since: dt.datetime | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
        """View-shaped rows (flattened: "User.Email"), each once; account by account when
        groups_accounts(since)."""
        where = self.effective_filter(since)
        pinned = soql_filter.accounts_pinned(where)
        source = self._view(where, limit) if pinned else self._joined(where, since)
        for produced, row in enumerate(source, start=1):
            yield row
            if limit is not None and produced >= limit:
                return

    def _query(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        self.queries.append(soql)
        return self._client.query(soql)

    def _view(self, where: soql_filter.Filter | None, limit: int | None) -> Iterator[dict[str, Any]]:
        fields = ", ".join(self._settings.fields)
        soql = f"SELECT {fields} FROM {VIEW}"
        if where is not None:
            soql += f" WHERE {soql_filter.render(where)}"
        if limit is not None:
            soql += f" LIMIT {limit}"
        for page in self._query(soql):
            yield from page

    def _joined(self, where: soql_filter.Filter | None, since: dt.datetime | None) -> Iterator[dict[str, Any]]:
        by_territory: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for page in self._query(
            f"SELECT {USER_FIELDS} FROM UserTerritory2Association WHERE IsActive = true AND {ACTIVE_MODEL}"
        ):
            for association in page:
                by_territory[association["Territory2Id"]].append(association)
        every = f"SELECT {ACCOUNT_FIELDS} FROM ObjectTerritory2Association WHERE {ACTIVE_MODEL}"
        account_queries = [f"{every} ORDER BY ObjectId"]
        if since is not None:
            floor = _since(since)
            account_queries = [f"{every} AND {soql_filter.render(floor)}"]
            changed = sorted(
                t for t, users in by_territory.items() if any(u["LastModifiedDate"] >= floor.value for u in users)
            )
            for start in range(0, len(changed), IN_CHUNK):
                ids = ", ".join(_quote(t) for t in changed[start : start + IN_CHUNK])
                account_queries.append(
                    f"SELECT {ACCOUNT_FIELDS} FROM ObjectTerritory2Association "
                    f"WHERE {ACTIVE_MODEL} AND Territory2Id IN ({ids})"
                )
        seen: set[str] = set()
        for soql in account_queries:
            for page in self._query(soql):
                for association in page:
                    if association["Id"] in seen:
                        continue
                    seen.add(association["Id"])
                    for user in by_territory.get(association["Territory2Id"], ()):
                        row = {
                            "Id": "",
                            "AccountId": association["ObjectId"],
                            "UserId": user["UserId"],
                            "User.Email": user.get("User.Email"),
                            "User.Name": user.get("User.Name"),
                            "RoleInTerritory2": user.get("RoleInTerritory2"),
                            "Territory2Id": association["Territory2Id"],
                            "LastModifiedDate": max(association["LastModifiedDate"], user["LastModifiedDate"]),
                        }
                        if where is None or soql_filter.evaluate(where, row):
                            yield row
