"""The Salesforce emulator over real HTTP (urllib): OAuth, SOQL, paging, describe, the view's rules, faults."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.processes import ROOT
from tools.salesforce_standin import Emulator, Org, generate

V = "v60.0"
UTC = dt.UTC


# ---- HTTP helpers ---------------------------------------------------------------------------------


class Reply:
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def error_code(self) -> str:
        return str(self.body[0]["errorCode"])

    @property
    def message(self) -> str:
        return str(self.body[0]["message"])


def request(
    url: str, *, token: str | None = None, form: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> Reply:
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    if data is not None:
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=all_headers), timeout=30) as reply:
            return Reply(reply.status, json.loads(reply.read()), reply.headers)
    except urllib.error.HTTPError as error:
        return Reply(error.code, json.loads(error.read()), error.headers)


def admin(emulator: Emulator, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode() if method != "GET" else None
    http_request = urllib.request.Request(emulator.url + "/__emulator" + path, data=data, method=method)
    with urllib.request.urlopen(http_request, timeout=30) as reply:
        return json.loads(reply.read())


class Client:
    """The few calls a connector makes, with a client_credentials token."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.token = self.new_token()

    def new_token(self) -> str:
        reply = request(
            self.emulator.token_url,
            form={
                "grant_type": "client_credentials",
                "client_id": self.emulator.client_id,
                "client_secret": self.emulator.client_secret,
            },
        )
        assert reply.status == 200, reply.body
        return str(reply.body["access_token"])

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return request(self.emulator.url + path, token=self.token, headers=headers)

    def query(self, soql: str, version: str = V, batch_size: int | None = None) -> Reply:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else None
        return self.get(f"/services/data/{version}/query?" + urllib.parse.urlencode({"q": soql}), headers)

    def query_all_pages(self, soql: str, batch_size: int | None = None) -> tuple[list[dict[str, Any]], list[Reply]]:
        reply = self.query(soql, batch_size=batch_size)
        assert reply.status == 200, reply.body
        replies = [reply]
        records = list(reply.body["records"])
        while not reply.body["done"]:
            reply = self.get(reply.body["nextRecordsUrl"])
            assert reply.status == 200, reply.body
            replies.append(reply)
            records.extend(reply.body["records"])
        return records, replies

    def ids(self, soql: str) -> set[str]:
        records, _ = self.query_all_pages(soql)
        return {record["Id"] for record in records}


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def org() -> Org:
    """Big enough for paging past 2000 rows; shared, so tests that change data build their own."""
    org = Org()
    summary = generate(org, accounts=2500, users=120, territories=40, seed=11)
    assert summary.object_associations > 2000
    return org


@pytest.fixture(scope="module")
def module_emulator(org: Org) -> Iterator[Emulator]:
    with Emulator(org) as emulator:
        yield emulator


@pytest.fixture
def emulator(module_emulator: Emulator) -> Iterator[Emulator]:
    module_emulator.clear_faults()
    module_emulator.reset_counts()
    yield module_emulator
    module_emulator.clear_faults()
    module_emulator.set_latency(0)


@pytest.fixture
def client(emulator: Emulator) -> Client:
    return Client(emulator)


@pytest.fixture
def small() -> Iterator[tuple[Org, Emulator, Client]]:
    """A private org for tests that change data."""
    org = Org()
    generate(org, accounts=40, users=20, territories=6, seed=5)
    with Emulator(org) as emulator:
        yield org, emulator, Client(emulator)


def _jwt(claims: dict[str, Any], alg: str = "RS256") -> str:
    def encode(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()

    signing_input = f"{encode({'alg': alg, 'typ': 'JWT'})}.{encode(claims)}"
    signature = hmac.new(b"not-verified", signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def _parse(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z")


# ---- OAuth ----------------------------------------------------------------------------------------


def test_client_credentials_grant_returns_a_bearer_token_for_the_instance(emulator: Emulator):
    reply = request(
        emulator.token_url,
        form={
            "grant_type": "client_credentials",
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert reply.status == 200
    body = reply.body
    assert set(body) >= {"access_token", "instance_url", "token_type", "issued_at", "signature", "id"}
    assert body["token_type"] == "Bearer" and body["instance_url"] == emulator.url
    expected = hmac.new(
        emulator.client_secret.encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(body["signature"]) == expected
    assert request(f"{emulator.url}/services/data/{V}/limits", token=body["access_token"]).status == 200


def test_jwt_bearer_grant_checks_the_claims_not_the_signature(emulator: Emulator):
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    good = {
        "iss": emulator.client_id,
        "sub": emulator.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
    }
    for alg in ("RS256", "HS256"):
        reply = request(emulator.token_url, form={"grant_type": grant, "assertion": _jwt(good, alg)})
        assert reply.status == 200, reply.body
        assert reply.body["token_type"] == "Bearer"
    problems = [
        ({**good, "iss": "someone-else"}, "invalid_client"),
        ({**good, "sub": "nobody@example.com"}, "invalid_grant"),
        ({**good, "aud": "https://evil.example"}, "invalid_grant"),
        ({**good, "exp": int(time.time()) - 10}, "invalid_grant"),
        ({key: value for key, value in good.items() if key != "exp"}, "invalid_grant"),
    ]
    for claims, error in problems:
        reply = request(emulator.token_url, form={"grant_type": grant, "assertion": _jwt(claims)})
        assert (reply.status, reply.body["error"]) == (400, error), claims
        assert reply.body["error_description"]
    reply = request(emulator.token_url, form={"grant_type": grant, "assertion": "not-a-jwt"})
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


def test_wrong_client_credentials_and_unknown_grants_are_refused(emulator: Emulator):
    for form in (
        {"grant_type": "client_credentials", "client_id": emulator.client_id, "client_secret": "wrong"},
        {"grant_type": "client_credentials", "client_id": "other", "client_secret": emulator.client_secret},
    ):
        reply = request(emulator.token_url, form=form)
        assert reply.status == 400
        assert reply.body == {"error": "invalid_client", "error_description": "invalid client credentials"}
    reply = request(emulator.token_url, form={"grant_type": "password", "username": "u", "password": "p"})
    assert (reply.status, reply.body["error"]) == (400, "unsupported_grant_type")


def test_api_calls_need_a_valid_token(emulator: Emulator):
    for token in (None, "00Dxx!forged"):
        reply = request(f"{emulator.url}/services/data/{V}/query?q=SELECT+Id+FROM+User", token=token)
        assert (reply.status, reply.error_code) == (401, "INVALID_SESSION_ID")
        assert reply.headers["WWW-Authenticate"] == "Token"


# ---- versions and describe ------------------------------------------------------------------------


def test_versions_are_listed_without_a_token(emulator: Emulator):
    reply = request(f"{emulator.url}/services/data/")
    assert reply.status == 200
    versions = {item["version"]: item for item in reply.body}
    assert {"42.0", "60.0", "62.0"} <= set(versions)
    assert versions["60.0"] == {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"}
    assert versions["62.0"]["label"] == "Winter '25" and versions["42.0"]["label"] == "Spring '18"


def test_describe_lists_fields_types_and_relationships(client: Client):
    reply = client.get(f"/services/data/{V}/sobjects/AccountUserTerritory2View/describe")
    assert reply.status == 200
    assert reply.body["name"] == "AccountUserTerritory2View"
    fields = {item["name"]: item for item in reply.body["fields"]}
    assert set(fields) == {"Id", "AccountId", "UserId", "RoleInTerritory2", "Territory2Id", "LastModifiedDate"}
    assert (fields["UserId"]["type"], fields["UserId"]["relationshipName"], fields["UserId"]["referenceTo"]) == (
        "reference",
        "User",
        ["User"],
    )
    assert fields["RoleInTerritory2"]["type"] == "picklist"
    assert {"CSM", "Account Executive", "Sales Manager"} <= {
        value["value"] for value in fields["RoleInTerritory2"]["picklistValues"]
    }
    assert fields["LastModifiedDate"]["type"] == "datetime"
    assert all(item["filterable"] for item in fields.values())

    reply = client.get(f"/services/data/{V}/sobjects/UserTerritory2Association/describe")
    fields = {item["name"]: item for item in reply.body["fields"]}
    assert fields["IsActive"]["type"] == "boolean"
    assert fields["Territory2Id"]["relationshipName"] == "Territory2"

    reply = client.get(f"/services/data/{V}/sobjects/Territory2/describe")
    fields = {item["name"]: item for item in reply.body["fields"]}
    assert fields["Territory2ModelId"]["relationshipName"] == "Territory2Model"

    names = {item["name"] for item in client.get(f"/services/data/{V}/sobjects").body["sobjects"]}
    assert {"AccountUserTerritory2View", "ObjectTerritory2Association", "UserTerritory2Association"} <= names

    reply = client.get(f"/services/data/{V}/sobjects/NoSuchThing/describe")
    assert (reply.status, reply.error_code) == (404, "NOT_FOUND")


def test_the_view_does_not_exist_before_api_42(client: Client, org: Org):
    account = org.accounts_with_rows()[0][0]
    reply = client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{account}'", version="v41.0")
    assert (reply.status, reply.error_code) == (400, "INVALID_TYPE")
    assert "sObject type 'AccountUserTerritory2View' is not supported" in reply.message
    reply = client.get("/services/data/v41.0/sobjects/AccountUserTerritory2View/describe")
    assert (reply.status, reply.error_code) == (404, "NOT_FOUND")
    assert (
        client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{account}'", "v42.0").status == 200
    )
    assert client.get("/services/data/v20.0/").status == 404


# ---- the view -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    [
        "",
        " WHERE RoleInTerritory2 = 'CSM'",
        " WHERE AccountId IN ('{a}', '{b}')",
        " WHERE AccountId = '{a}' OR AccountId = '{b}'",
        " WHERE AccountId != '{a}'",
        " WHERE NOT AccountId = '{a}'",
        " WHERE LastModifiedDate > 2025-01-01T00:00:00Z",
    ],
)
def test_the_view_requires_a_filter_on_one_account(client: Client, org: Org, where: str):
    (a, _), (b, _) = org.accounts_with_rows()[:2]
    reply = client.query(
        "SELECT Id, AccountId, User.Email, User.Name, RoleInTerritory2 FROM AccountUserTerritory2View"
        + where.format(a=a, b=b)
    )
    assert (reply.status, reply.error_code) == (400, "MALFORMED_QUERY")
    assert reply.message == (
        "Implementation restriction: AccountUserTerritory2View requires a filter by a single AccountId "
        "using the equals operator"
    )


def test_the_view_for_one_account_returns_exactly_its_rows(client: Client, org: Org):
    account, count = org.accounts_with_rows()[0]
    expected = org.view_rows(account)
    assert len(expected) == count > 3
    reply = client.query(
        "SELECT Id, AccountId, User.Email, User.Name, RoleInTerritory2, Territory2Id, LastModifiedDate "
        f"FROM AccountUserTerritory2View WHERE AccountId = '{account}' AND LastModifiedDate > 2000-01-01T00:00:00Z"
    )
    assert reply.status == 200 and reply.body["done"] and reply.body["totalSize"] == count
    assert "nextRecordsUrl" not in reply.body
    records = reply.body["records"]
    first = records[0]
    assert first["attributes"]["type"] == "AccountUserTerritory2View"
    assert first["User"]["attributes"]["type"] == "User" and set(first["User"]) == {"attributes", "Email", "Name"}
    got = {
        (r["Id"], r["AccountId"], r["User"]["Email"], r["User"]["Name"], r["RoleInTerritory2"], r["LastModifiedDate"])
        for r in records
    }
    assert got == {
        (r["Id"], r["AccountId"], r["Email"], r["Name"], r["RoleInTerritory2"], r["LastModifiedDate"]) for r in expected
    }
    # A 15-character id and a lower-cased 18-character id name the same account, as in Salesforce.
    for spelled in (account[:15], account.lower()):
        reply = client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{spelled}'")
        assert {r["Id"] for r in reply.body["records"]} == {r["Id"] for r in expected}


def test_the_view_filters_and_ids_are_checked(client: Client, org: Org):
    account = org.accounts_with_rows()[0][0]
    rows = org.view_rows(account)
    reply = client.query(
        f"SELECT Id, RoleInTerritory2 FROM AccountUserTerritory2View WHERE AccountId = '{account}' "
        "AND (RoleInTerritory2 = 'csm' OR RoleInTerritory2 = null) ORDER BY RoleInTerritory2 DESC, Id"
    )
    assert reply.status == 200
    assert {r["Id"] for r in reply.body["records"]} == {r["Id"] for r in rows if r["RoleInTerritory2"] in ("CSM", None)}
    roles = [r["RoleInTerritory2"] for r in reply.body["records"]]
    assert roles == sorted([role for role in roles if role]) + [None] * roles.count(None)  # DESC: nulls last

    reply = client.query("SELECT Id FROM AccountUserTerritory2View WHERE AccountId = 'x'")
    assert (reply.status, reply.error_code) == (400, "INVALID_QUERY_FILTER_OPERATOR")
    assert reply.message.endswith("invalid ID field: x")


def test_planning_and_inactive_associations_never_reach_the_view(org: Org):
    planning = org.model_id("Planning")
    planning_territories = set(org.territory_ids(planning))
    assert planning_territories
    placeholders = ",".join("?" * len(planning_territories))
    assert org.rows(
        f'SELECT COUNT(*) AS n FROM "ObjectTerritory2Association" WHERE "Territory2Id" IN ({placeholders})',
        sorted(planning_territories),
    )[0]["n"]
    assert not {row["Territory2Id"] for row in org.view_rows()} & planning_territories
    inactive = org.rows('SELECT "UserId", "Territory2Id" FROM "UserTerritory2Association" WHERE "IsActive" = 0')
    assert inactive
    assert not {(r["UserId"], r["Territory2Id"]) for r in inactive} & {
        (r["UserId"], r["Territory2Id"]) for r in org.view_rows()
    }


def test_org_scale_queries_rebuild_the_view(client: Client, org: Org, emulator: Emulator):
    accounts, _ = client.query_all_pages(
        "SELECT Id, ObjectId, Territory2Id, LastModifiedDate FROM ObjectTerritory2Association "
        "WHERE Territory2.Territory2Model.State = 'Active'"
    )
    users, _ = client.query_all_pages(
        "SELECT Id, UserId, User.Email, User.Name, RoleInTerritory2, Territory2Id, LastModifiedDate "
        "FROM UserTerritory2Association WHERE Territory2.Territory2Model.State = 'Active' AND IsActive = true"
    )
    by_territory: dict[str, list[dict[str, Any]]] = {}
    for row in users:
        by_territory.setdefault(row["Territory2Id"], []).append(row)
    rebuilt = {
        (a["ObjectId"], u["UserId"], u["RoleInTerritory2"])
        for a in accounts
        for u in by_territory.get(a["Territory2Id"], [])
    }
    assert rebuilt == org.assignments()
    assert len(rebuilt) > 5000
    # ...and the same as asking the view account by account (for a sample: one query per account is slow).
    sample = [account for account, _ in org.accounts_with_rows()[::97]]
    for account in sample:
        reply = client.query(
            f"SELECT UserId, RoleInTerritory2 FROM AccountUserTerritory2View WHERE AccountId = '{account}'"
        )
        assert {(account, r["UserId"], r["RoleInTerritory2"]) for r in reply.body["records"]} == {
            row for row in rebuilt if row[0] == account
        }
    assert emulator.count("query", sobject="AccountUserTerritory2View") == len(sample)
    assert emulator.count("query", sobject="ObjectTerritory2Association") == 1
    # Without IsActive = true the join would claim assignments the view does not have.
    everyone, _ = client.query_all_pages(
        "SELECT UserId, Territory2Id, RoleInTerritory2 FROM UserTerritory2Association "
        "WHERE Territory2.Territory2Model.State = 'Active'"
    )
    assert len(everyone) > len(users)


# ---- paging ---------------------------------------------------------------------------------------


def test_paging_returns_every_row_once(client: Client, org: Org):
    total = org.count("ObjectTerritory2Association")
    assert total > 2000
    records, replies = client.query_all_pages("SELECT Id, ObjectId FROM ObjectTerritory2Association")
    assert [len(reply.body["records"]) for reply in replies][:-1] == [2000] * (len(replies) - 1)
    assert all(reply.body["totalSize"] == total for reply in replies)
    assert [reply.body["done"] for reply in replies] == [False] * (len(replies) - 1) + [True]
    assert re.fullmatch(r"/services/data/v60\.0/query/01g[0-9A-Za-z]{15}-2000", replies[0].body["nextRecordsUrl"])
    ids = [record["Id"] for record in records]
    assert len(ids) == len(set(ids)) == total
    assert ids == sorted(ids, key=str.lower)  # without ORDER BY the emulator returns Id order


def test_batch_size_header_limit_and_repeated_pages(client: Client, org: Org):
    records, replies = client.query_all_pages(
        "SELECT Id FROM ObjectTerritory2Association ORDER BY Id LIMIT 1100", batch_size=500
    )
    assert [len(reply.body["records"]) for reply in replies] == [500, 500, 100]
    assert replies[0].body["totalSize"] == 1100
    assert len({record["Id"] for record in records}) == 1100
    # batchSize is clamped to 200..2000, as Salesforce does.
    assert len(client.query("SELECT Id FROM ObjectTerritory2Association", batch_size=10).body["records"]) == 200
    # A page can be fetched again (a client retrying after a lost answer gets the same rows).
    first = client.query("SELECT Id FROM ObjectTerritory2Association", batch_size=300)
    url = first.body["nextRecordsUrl"]
    assert client.get(url).body["records"] == client.get(url).body["records"]
    bogus = url.rsplit("-", 1)[0] + "-301"
    assert (client.get(bogus).status, client.get(bogus).error_code) == (400, "INVALID_QUERY_LOCATOR")
    reply = client.get(f"/services/data/{V}/query/01g5g0000000000AAA-2000")
    assert (reply.status, reply.error_code) == (400, "INVALID_QUERY_LOCATOR")


@pytest.mark.parametrize(
    "order",
    [
        "RoleInTerritory2",
        "RoleInTerritory2 DESC",
        "RoleInTerritory2 NULLS LAST, User.Email DESC",
        "User.Email, RoleInTerritory2 DESC NULLS FIRST",
        "LastModifiedDate DESC",
    ],
)
def test_keyset_pages_follow_order_by_with_nulls(client: Client, org: Org, order: str):
    soql = f"SELECT Id, RoleInTerritory2, User.Email, LastModifiedDate FROM UserTerritory2Association ORDER BY {order}"
    one_page = client.query(soql).body["records"]
    assert len(one_page) == org.count("UserTerritory2Association") > 200
    records, replies = client.query_all_pages(soql, batch_size=200)
    assert len(replies) > 1
    assert [record["Id"] for record in records] == [record["Id"] for record in one_page]
    first = order.split(",")[0].split()
    values = [record[first[0]] if "." not in first[0] else record["User"]["Email"] for record in one_page]
    descending = "DESC" in first
    nulls_last = "NULLS LAST" in order.split(",")[0] or (descending and "NULLS FIRST" not in order.split(",")[0])
    present = [value.lower() for value in values if value is not None]
    assert present == sorted(present, reverse=descending)
    nulls = [index for index, value in enumerate(values) if value is None]
    if nulls:
        assert nulls == (list(range(len(values) - len(nulls), len(values))) if nulls_last else list(range(len(nulls))))


# ---- SOQL -----------------------------------------------------------------------------------------


def _where_cases(org: Org) -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    stamps = sorted(
        row["LastModifiedDate"] for row in org.rows('SELECT "LastModifiedDate" FROM "UserTerritory2Association"')
    )
    middle = _parse(stamps[len(stamps) // 2])
    z = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
    plus2 = middle.astimezone(dt.timezone(dt.timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    email = org.rows('SELECT "Email" FROM "User" ORDER BY "Id" LIMIT 1')[0]["Email"]
    return [
        ("RoleInTerritory2 = 'CSM'", lambda r: r["RoleInTerritory2"] == "CSM"),
        ("RoleInTerritory2 = 'csm'", lambda r: r["RoleInTerritory2"] == "CSM"),
        ("RoleInTerritory2 != 'CSM'", lambda r: r["RoleInTerritory2"] != "CSM"),  # nulls included, as in SOQL
        ("RoleInTerritory2 <> 'CSM'", lambda r: r["RoleInTerritory2"] != "CSM"),
        ("RoleInTerritory2 = null", lambda r: r["RoleInTerritory2"] is None),
        ("RoleInTerritory2 != null", lambda r: r["RoleInTerritory2"] is not None),
        ("RoleInTerritory2 IN ('CSM', 'Sales Manager')", lambda r: r["RoleInTerritory2"] in ("CSM", "Sales Manager")),
        ("RoleInTerritory2 IN ('CSM', null)", lambda r: r["RoleInTerritory2"] in ("CSM", None)),
        (
            "RoleInTerritory2 NOT IN ('CSM', 'Sales Manager')",
            lambda r: r["RoleInTerritory2"] not in ("CSM", "Sales Manager"),
        ),
        ("RoleInTerritory2 NOT IN ('CSM', null)", lambda r: r["RoleInTerritory2"] not in ("CSM", None)),
        ("RoleInTerritory2 LIKE '%manager'", lambda r: (r["RoleInTerritory2"] or "").endswith("Manager")),
        ("RoleInTerritory2 LIKE 'c_m'", lambda r: r["RoleInTerritory2"] == "CSM"),
        ("NOT RoleInTerritory2 LIKE 'Account%'", lambda r: not (r["RoleInTerritory2"] or "-").startswith("Account")),
        ("User.Email LIKE '%.chen%'", lambda r: ".chen" in r["Email"]),
        (f"User.Email = '{email.upper()}'", lambda r: r["Email"] == email),
        ("IsActive = false", lambda r: r["IsActive"] == 0),
        ("IsActive != true", lambda r: r["IsActive"] == 0),
        (
            "NOT (RoleInTerritory2 = 'CSM' OR IsActive = false)",
            lambda r: not (r["RoleInTerritory2"] == "CSM" or r["IsActive"] == 0),
        ),
        (
            "(RoleInTerritory2 = 'CSM' OR RoleInTerritory2 = null) AND NOT IsActive = false",
            lambda r: r["RoleInTerritory2"] in ("CSM", None) and r["IsActive"] == 1,
        ),
        (f"LastModifiedDate > {z}", lambda r: _parse(r["LastModifiedDate"]) > middle),
        (f"LastModifiedDate > {plus2}", lambda r: _parse(r["LastModifiedDate"]) > middle),
        (f"LastModifiedDate >= {z}", lambda r: _parse(r["LastModifiedDate"]) >= middle),
        (
            f"LastModifiedDate <= {middle.strftime('%Y-%m-%dT%H:%M:%S.000Z')}",
            lambda r: _parse(r["LastModifiedDate"]) <= middle,
        ),
        (f"LastModifiedDate = {z}", lambda r: _parse(r["LastModifiedDate"]) == middle),
        (
            f"Territory2.Territory2Model.State = 'Active' AND LastModifiedDate < {z}",
            lambda r: r["State"] == "Active" and _parse(r["LastModifiedDate"]) < middle,
        ),
        ("Territory2.Territory2Model.State IN ('Planning', 'Archived')", lambda r: r["State"] != "Active"),
    ]


def test_where_operators(client: Client, org: Org):
    rows = org.rows(
        'SELECT a."Id", a."RoleInTerritory2", a."IsActive", a."LastModifiedDate", u."Email", m."State" '
        'FROM "UserTerritory2Association" a JOIN "User" u ON u."Id" = a."UserId" '
        'JOIN "Territory2" t ON t."Id" = a."Territory2Id" JOIN "Territory2Model" m ON m."Id" = t."Territory2ModelId"'
    )
    for where, predicate in _where_cases(org):
        expected = {row["Id"] for row in rows if predicate(row)}
        got = client.ids(f"SELECT Id FROM UserTerritory2Association WHERE {where}")
        assert got == expected, where
        assert 0 < len(expected) < len(rows) or where.startswith("User.Email ="), where


def test_string_escapes_and_like_escapes(small: tuple[Org, Emulator, Client]):
    org, _, client = small
    names = ["Dana O'Brien", "Back\\Slash", "100% Sure", "Under_Score", "Plain Name"]
    ids = {name: org.add_user(f"user{index}@escapes.example", name) for index, name in enumerate(names)}
    cases = {
        "Name = 'Dana O\\'Brien'": {"Dana O'Brien"},
        "Name = 'Back\\\\Slash'": {"Back\\Slash"},
        "Name LIKE '%\\%%'": {"100% Sure"},
        "Name LIKE '%\\_%'": {"Under_Score"},
        "Name LIKE 'back\\\\%'": {"Back\\Slash"},
        "Email LIKE '%@escapes.example' AND Name LIKE '%a%'": {"Dana O'Brien", "Back\\Slash", "Plain Name"},
    }
    for where, expected in cases.items():
        assert client.ids(f"SELECT Id FROM User WHERE {where}") == {ids[name] for name in expected}, where
    reply = client.query("SELECT Id FROM User WHERE Name = 'bad \\q escape'")
    assert (reply.status, reply.error_code) == (400, "MALFORMED_QUERY")


def test_date_literals_and_date_type_checks(small: tuple[Org, Emulator, Client]):
    org, _, client = small
    now = dt.datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
    org.clock = lambda: now  # TODAY and LAST_N_DAYS are relative to the org's clock
    user = org.add_user("today@example.com")
    org.add_user_to_territory(user, org.territory_ids()[0], "CSM")
    recent = client.ids("SELECT Id FROM UserTerritory2Association WHERE LastModifiedDate = LAST_N_DAYS:1")
    today = client.ids("SELECT Id FROM UserTerritory2Association WHERE LastModifiedDate = TODAY")
    assert len(recent) == len(today) == 1
    assert client.ids("SELECT Id FROM UserTerritory2Association WHERE LastModifiedDate > TODAY") == set()
    for where in ("LastModifiedDate > 2025-01-01", "LastModifiedDate > '2025-01-01T00:00:00Z'"):
        reply = client.query(f"SELECT Id FROM UserTerritory2Association WHERE {where}")
        assert (reply.status, reply.error_code) == (400, "INVALID_FIELD")
        assert "must be of type dateTime and should not be enclosed in quotes" in reply.message
    reply = client.query("SELECT Id FROM UserTerritory2Association WHERE IsActive = 'true'")
    assert (reply.status, reply.error_code) == (400, "INVALID_FIELD")


def test_count_and_limit(client: Client, org: Org):
    reply = client.query("SELECT COUNT() FROM UserTerritory2Association WHERE IsActive = true")
    expected = org.rows('SELECT COUNT(*) AS n FROM "UserTerritory2Association" WHERE "IsActive" = 1')[0]["n"]
    assert reply.body == {"totalSize": expected, "done": True, "records": []}
    reply = client.query("SELECT Id FROM User LIMIT 5")
    assert reply.body["totalSize"] == 5 and len(reply.body["records"]) == 5 and reply.body["done"]


@pytest.mark.parametrize(
    ("soql", "code", "fragment"),
    [
        ("SELECT Id, Foo FROM User", "INVALID_FIELD", "No such column 'Foo' on entity 'User'"),
        ("SELECT Id FROM User WHERE Bogus = 'x'", "INVALID_FIELD", "No such column 'Bogus' on entity 'User'"),
        ("SELECT Id, User.Phone FROM UserTerritory2Association", "INVALID_FIELD", "No such column 'Phone'"),
        (
            "SELECT Id, Owner.Name FROM UserTerritory2Association",
            "INVALID_FIELD",
            "Didn't understand relationship 'Owner'",
        ),
        ("SELECT Id FROM NoSuchObject", "INVALID_TYPE", "sObject type 'NoSuchObject' is not supported"),
        ("SELECT Id FROM User WHERE Email = 5", "INVALID_FIELD", "must be of type string and should be enclosed"),
        ("SELECT Id FROM User WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        ("SELECT Id FROM User WHERE Email == 'x'", "MALFORMED_QUERY", "unexpected token: '='"),
        (
            "SELECT Id FROM User WHERE Name = 'a' AND Email = 'b' OR IsActive = true",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        ("SELECT Id FROM User WHERE Name = 'unterminated", "MALFORMED_QUERY", "unterminated string"),
        ("SELECT Id, Id FROM User", "MALFORMED_QUERY", "duplicate field selected: Id"),
        ("SELECT FROM User", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
        ("SELECT Id FROM User LIMIT x", "MALFORMED_QUERY", "unexpected token: 'x'"),
        ("SELECT Id FROM User WHERE Id = '005'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: 005"),
    ],
)
def test_query_errors_name_the_problem(client: Client, soql: str, code: str, fragment: str):
    reply = client.query(soql)
    assert reply.status == 400
    assert reply.error_code == code
    assert fragment in reply.message
    if code in ("INVALID_FIELD", "MALFORMED_QUERY") and "duplicate" not in fragment:
        assert "ERROR at Row:1:Column:" in reply.message


def test_missing_query_and_unknown_resources(client: Client):
    reply = client.get(f"/services/data/{V}/query")
    assert (reply.status, reply.error_code) == (400, "MALFORMED_QUERY")
    reply = client.get(f"/services/data/{V}/nothing/here")
    assert (reply.status, reply.error_code) == (404, "NOT_FOUND")


# ---- faults ---------------------------------------------------------------------------------------


def test_expired_tokens_answer_401_until_a_new_token(client: Client, emulator: Emulator):
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    emulator.expire_tokens()
    reply = client.query("SELECT Id FROM User LIMIT 1")
    assert (reply.status, reply.error_code) == (401, "INVALID_SESSION_ID")
    assert reply.message == "Session expired or invalid"
    client.token = client.new_token()
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    admin(emulator, "POST", "/expire-tokens")
    assert client.query("SELECT Id FROM User LIMIT 1").status == 401


def test_token_time_to_live(org: Org):
    with Emulator(org, token_ttl=0.3) as emulator:
        client = Client(emulator)
        assert client.query("SELECT Id FROM User LIMIT 1").status == 200
        time.sleep(0.4)
        assert client.query("SELECT Id FROM User LIMIT 1").status == 401


def test_429_with_retry_after_then_success(client: Client, emulator: Emulator):
    emulator.fail_next("429", retry_after=3)
    reply = client.query("SELECT Id FROM User LIMIT 1")
    assert reply.status == 429
    assert reply.headers["Retry-After"] == "3"
    assert reply.error_code == "TOO_MANY_REQUESTS"
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    admin(emulator, "POST", "/faults", {"kind": "429", "count": 2, "retry_after": 7})
    assert [client.query("SELECT Id FROM User LIMIT 1").status for _ in range(3)] == [429, 429, 200]


def test_503_for_the_next_requests(client: Client, emulator: Emulator):
    emulator.fail_next("503", count=2)
    replies = [client.query("SELECT Id FROM User LIMIT 1") for _ in range(3)]
    assert [reply.status for reply in replies] == [503, 503, 200]
    assert replies[0].error_code == "SERVER_UNAVAILABLE"


def test_503_in_the_middle_of_paging_then_the_page_again(client: Client, emulator: Emulator, org: Org):
    first = client.query("SELECT Id FROM ObjectTerritory2Association")
    emulator.fail_next("503", scope="query")
    assert client.get(first.body["nextRecordsUrl"]).status == 503
    records, _ = client.query_all_pages("SELECT Id FROM ObjectTerritory2Association")
    second = client.get(first.body["nextRecordsUrl"])
    assert second.status == 200 and second.body["records"] == records[2000:4000]


def test_request_limit_exceeded(client: Client, emulator: Emulator, org: Org):
    emulator.fail_next("REQUEST_LIMIT_EXCEEDED")
    reply = client.query("SELECT Id FROM User LIMIT 1")
    assert (reply.status, reply.error_code, reply.message) == (
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
    )
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    with Emulator(org, daily_api_limit=3) as limited:
        limited_client = Client(limited)
        replies = [limited_client.query("SELECT Id FROM User LIMIT 1") for _ in range(4)]
        assert [reply.status for reply in replies] == [200, 200, 200, 403]
        assert replies[2].headers["Sforce-Limit-Info"] == "api-usage=3/3"
        assert replies[3].error_code == "REQUEST_LIMIT_EXCEEDED"


def test_fault_scopes_and_disconnects(client: Client, emulator: Emulator):
    emulator.fail_next("503", scope="token")
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    with pytest.raises(AssertionError):
        client.new_token()
    emulator.fail_next("disconnect")
    with pytest.raises((http.client.RemoteDisconnected, urllib.error.URLError, ConnectionError)):
        client.query("SELECT Id FROM User LIMIT 1")
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200
    emulator.fail_next("401")
    assert client.query("SELECT Id FROM User LIMIT 1").status == 401
    assert client.query("SELECT Id FROM User LIMIT 1").status == 200


def test_latency(client: Client, emulator: Emulator):
    emulator.set_latency(0.2)
    started = time.monotonic()
    client.query("SELECT Id FROM User LIMIT 1")
    assert time.monotonic() - started >= 0.2


def test_request_counts(client: Client, emulator: Emulator, org: Org):
    account = org.accounts_with_rows()[0][0]
    client.query_all_pages("SELECT Id FROM ObjectTerritory2Association")
    client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{account}'")
    client.get(f"/services/data/{V}/sobjects/User/describe")
    assert emulator.count("token") == 1
    assert emulator.count("query") == 2
    assert emulator.count("query_more") == -(-org.count("ObjectTerritory2Association") // 2000) - 1
    assert emulator.count("query", sobject="AccountUserTerritory2View") == 1
    assert emulator.count("describe") == 1
    assert emulator.counts_by_path()[f"/services/data/{V}/query"] == 2
    assert emulator.requests[1].soql == "SELECT Id FROM ObjectTerritory2Association"
    remote = admin(emulator, "GET", "/requests")
    assert remote["by_kind"]["query"] == 2 and remote["by_path"]["/services/oauth2/token"] == 1
    admin(emulator, "DELETE", "/requests")
    assert emulator.count() == 0


# ---- data changes ---------------------------------------------------------------------------------


def test_changes_show_in_the_view_with_their_dates(small: tuple[Org, Emulator, Client]):
    org, _, client = small
    account, _ = org.accounts_with_rows()[0]
    row = org.view_rows(account)[0]
    user, territory = row["UserId"], row["Territory2Id"]
    soql = (
        "SELECT Id, UserId, RoleInTerritory2, LastModifiedDate, User.Email FROM AccountUserTerritory2View "
        f"WHERE AccountId = '{account}'"
    )

    def mine() -> dict[str, Any]:
        (record,) = [r for r in client.query(soql).body["records"] if r["Id"] == row["Id"]]
        return record

    at = dt.datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
    org.set_role(user, territory, "Renewals Manager", at=at)
    assert (mine()["RoleInTerritory2"], mine()["LastModifiedDate"]) == (
        "Renewals Manager",
        "2030-05-01T12:00:00.000+0000",
    )
    since = client.ids(f"{soql} AND LastModifiedDate > 2030-01-01T00:00:00Z")
    assert since == {row["Id"]}
    describe = client.get(f"/services/data/{V}/sobjects/AccountUserTerritory2View/describe").body
    roles = next(f for f in describe["fields"] if f["name"] == "RoleInTerritory2")["picklistValues"]
    assert "Renewals Manager" in {value["value"] for value in roles}

    org.update_user(user, email="moved@new.example", at=dt.datetime(2031, 1, 1, tzinfo=UTC))
    assert mine()["User"]["Email"] == "moved@new.example"
    assert mine()["LastModifiedDate"] == "2030-05-01T12:00:00.000+0000"  # a user change does not touch the view

    org.set_user_association_active(user, territory, False)
    assert row["Id"] not in {r["Id"] for r in client.query(soql).body["records"]}
    org.set_user_association_active(user, territory, True)
    org.remove_user_from_territory(user, territory)
    assert row["Id"] not in {r["Id"] for r in client.query(soql).body["records"]}
    org.add_user_to_territory(user, territory, "CSM")
    assert (user, "CSM") in {(r["UserId"], r["RoleInTerritory2"]) for r in client.query(soql).body["records"]}

    new_account = org.add_account("Fresh Account Inc.")
    assert (
        client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{new_account}'").body["records"]
        == []
    )
    org.assign_account(new_account, territory)
    assert (
        client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{new_account}'").body["totalSize"]
        > 0
    )
    org.unassign_account(new_account, territory)
    assert (
        client.query(f"SELECT Id FROM AccountUserTerritory2View WHERE AccountId = '{new_account}'").body["totalSize"]
        == 0
    )


def test_activating_the_planning_model_replaces_the_view(small: tuple[Org, Emulator, Client]):
    org, emulator, _ = small
    active, planning = org.model_id("Active"), org.model_id("Planning")
    assert active and planning
    before = org.assignments()
    admin(emulator, "POST", "/org/set_model_state", {"model_id": planning, "state": "Active"})
    assert org.model_id("Active") == planning and org.model_id("Archived") is not None
    after = org.assignments()
    assert after and after != before
    territories = set(org.territory_ids(planning))
    assert {row["Territory2Id"] for row in org.view_rows()} <= territories


def test_admin_endpoints_reach_the_org(small: tuple[Org, Emulator, Client]):
    org, emulator, _ = small
    info = admin(emulator, "GET", "/")
    assert info["client_id"] == emulator.client_id and info["objects"]["Account"] == org.count("Account")
    user = admin(emulator, "POST", "/org/add_user", {"email": "remote@example.com", "name": "Remote Person"})["result"]
    assert org.rows('SELECT "Name" FROM "User" WHERE "Id" = ?', [user]) == [{"Name": "Remote Person"}]
    with pytest.raises(urllib.error.HTTPError):
        admin(emulator, "POST", "/org/connection", {})


# ---- command line ---------------------------------------------------------------------------------


def test_command_line_serves_a_generated_org():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.salesforce_standin",
            "--port",
            "0",
            "--rows",
            "3000",
            "--seed",
            "4",
            "--json",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert 2500 < info["view_rows"] < 3500
        reply = request(
            info["token_url"],
            form={
                "grant_type": "client_credentials",
                "client_id": info["client_id"],
                "client_secret": info["client_secret"],
            },
        )
        assert reply.status == 200 and reply.body["instance_url"] == info["url"]
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_overlong_query_urls_are_refused(client: Client, org: Org):
    ids = org.account_ids()[:1000]
    reply = client.query("SELECT Id FROM Account WHERE Id IN ('" + "', '".join(ids) + "')")
    assert (reply.status, reply.error_code) == (414, "URI_TOO_LONG")
    reply = client.query("SELECT Id FROM Account WHERE Id IN ('" + "', '".join(ids[:300]) + "')")
    assert reply.status == 200 and reply.body["totalSize"] == 300
