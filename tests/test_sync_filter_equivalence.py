"""The admin's filter means the same to Salesforce (the stand-in, which evaluates SOQL in its own
SQL translation) and to Steward's parser (which filters the org-scale join itself): generated
filters over one account's view rows select the same rows both ways."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.sync.connectors.salesforce.client import flatten_record
from services.sync.connectors.salesforce.soql_filter import (
    COMPARISON_OPS,
    And,
    Comparison,
    Filter,
    InList,
    Like,
    Not,
    Or,
    evaluate,
    render,
)
from tools.salesforce_standin import Emulator, Org

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
FIELDS = "Id, AccountId, UserId, User.Email, User.Name, RoleInTerritory2, Territory2Id, LastModifiedDate"


class Stand:
    """One account in four territories with users of every kind of value, behind the stand-in."""

    def __init__(self) -> None:
        self.org = Org(clock=lambda: T0)
        model = self.org.add_model("FY26", "Active", at=T0)
        territories = [self.org.add_territory(f"T{i}", model, at=T0) for i in range(4)]
        self.account = self.org.add_account("Acme", at=T0)
        roles = ["CSM", "Account Executive", None, "csm", "Sales Manager"]
        people = [
            ("ann@acme.io", "Ann Lee"),
            ("Bob@Acme.io", "bob o'hara"),
            ("cat@beta.io", "Cat 100%"),
            ("dan_x@acme.io", "Dan"),
        ]
        users = [self.org.add_user(email, name) for email, name in people]
        for index, territory in enumerate(territories):
            self.org.assign_account(self.account, territory, at=T0)
            for offset, user in enumerate(users):
                if (index + offset) % 3:
                    day = T0 + dt.timedelta(days=index + offset)
                    self.org.add_user_to_territory(user, territory, roles[(index + offset) % len(roles)], at=day)
        self.emulator = Emulator(self.org).start()
        self.token = self.emulator.issue_token()
        self.rows = self.query(None)
        values: dict[str, set[Any]] = {}
        for row in self.rows:
            for name, value in row.items():
                values.setdefault(name, set()).add(value)
        self.values = {k: sorted(v, key=lambda x: (x is None, str(x))) for k, v in values.items()}

    def query(self, where: Filter | None) -> list[dict[str, Any]]:
        pinned: Filter = Comparison("AccountId", "=", self.account)
        condition = pinned if where is None else And((pinned, where))
        soql = f"SELECT {FIELDS} FROM AccountUserTerritory2View WHERE {render(condition)}"
        url = f"{self.emulator.url}/services/data/v62.0/query?{urllib.parse.urlencode({'q': soql})}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise AssertionError(f"Salesforce refused {soql!r}: {error.read().decode()}") from None
        assert payload["done"], "one page is plenty here"
        return [flatten_record(r) for r in payload["records"]]


@pytest.fixture(scope="module")
def stand():
    built = Stand()
    yield built
    built.emulator.stop()


TEXT = ["User.Email", "User.Name", "RoleInTerritory2", "Territory2Id", "UserId", "Id"]
IDS = {"Territory2Id", "UserId", "Id"}


def leaves(stand: Stand) -> st.SearchStrategy[Filter]:
    def value(field: str) -> st.SearchStrategy[Any]:
        known = [v for v in stand.values.get(field, []) if v is not None]
        if field == "LastModifiedDate":
            return st.sampled_from(known) | st.just(T0 + dt.timedelta(days=2, hours=1))
        if field in IDS:  # Salesforce ids: 15 or 18 characters; the 18-character form ignores case
            return st.sampled_from(known) | st.sampled_from(known).map(str.lower) | st.just("0015g00000ZZZZZAAA")
        return st.sampled_from(known) | st.sampled_from(["", "zzz", "CSM "]) | st.sampled_from(known).map(str.upper)

    text_field = st.sampled_from(["User.Email", "User.Name", "RoleInTerritory2"])  # LIKE takes text only
    any_field = st.sampled_from([*TEXT, "LastModifiedDate"])
    comparison = any_field.flatmap(
        lambda f: st.tuples(st.sampled_from(COMPARISON_OPS[:2] if f in IDS else COMPARISON_OPS), value(f)).map(
            lambda pair: Comparison(f, pair[0], pair[1])
        )
    )
    nulls = st.tuples(any_field, st.sampled_from(COMPARISON_OPS[:2])).map(lambda p: Comparison(p[0], p[1], None))
    in_list = any_field.flatmap(
        lambda f: st.tuples(st.lists(value(f), min_size=1, max_size=3), st.booleans()).map(
            lambda p: InList(f, tuple(p[0]), p[1])
        )
    )
    like = text_field.flatmap(
        lambda f: (
            value(f)
            .map(lambda v: str(v).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"))
            .flatmap(
                lambda escaped: st.sampled_from(
                    [f"{escaped[:3]}%", f"%{escaped[-3:]}", escaped, "%", f"_{escaped[1:]}"]
                )
            )
            .map(lambda pattern: Like(f, pattern))
        )
    )
    return comparison | nulls | in_list | like


def filters(stand: Stand) -> st.SearchStrategy[Filter]:
    return st.recursive(
        leaves(stand),
        lambda children: (
            st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs)))
            | st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
            | children.map(Not)
        ),
        max_leaves=6,
    )


def test_the_stand_has_rows_of_every_kind(stand):
    assert len(stand.rows) >= 8
    assert None in stand.values["RoleInTerritory2"]
    assert len({r["Territory2Id"] for r in stand.rows}) == 4


# derandomize: CI must not turn red on a new random draw; explore with random seeds locally.
@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_generated_filters_select_the_same_rows_in_salesforce_and_in_steward(stand, data):
    where = data.draw(filters(stand))
    remote = sorted(r["Id"] for r in stand.query(where))
    local = sorted(r["Id"] for r in stand.rows if evaluate(where, r))
    assert remote == local, render(where)
