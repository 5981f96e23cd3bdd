"""The HTTP side: a Salesforce-compatible REST API over an `Org`, with fault injection and request counts.

POST /services/oauth2/token                      client_credentials or jwt-bearer grant
GET  /services/data/                             API versions (no token needed)
GET  /services/data/vNN.N/                       resources of a version
GET  /services/data/vNN.N/limits                 DailyApiRequests
GET  /services/data/vNN.N/sobjects               describeGlobal
GET  /services/data/vNN.N/sobjects/<Obj>/describe
GET  /services/data/vNN.N/query?q=<SOQL>         first page (Sforce-Query-Options: batchSize=200..2000)
GET  /services/data/vNN.N/queryAll?q=<SOQL>      the same (the emulator keeps no deleted records)
GET  /services/data/vNN.N/query/<locator>-<n>    the page starting at row n (nextRecordsUrl)
/__emulator/...                                  test controls, see `_admin`
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tools.salesforce_standin import schema
from tools.salesforce_standin.ids import make_id
from tools.salesforce_standin.org import Org
from tools.salesforce_standin.query import Plan, compile_query
from tools.salesforce_standin.soql import SoqlError

DEFAULT_CLIENT_ID = "3MVG9steward.emulator.connected.app"
DEFAULT_CLIENT_SECRET = "steward-emulator-secret"
DEFAULT_USERNAME = "integration@steward.example"
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
CURSOR_IDLE_SECONDS = 15 * 60  # Salesforce drops a query locator after 15 minutes without a fetch
MAX_CURSORS = 10_000

FAULT_KINDS = ("429", "503", "REQUEST_LIMIT_EXCEEDED", "401", "500", "disconnect")
FAULT_SCOPES = ("api", "query", "token", "any")

_VERSION_PATH = re.compile(r"^/services/data/v(\d{2})\.(\d)(/.*)?$")
_MORE_PATH = re.compile(r"^/query/(01g[0-9A-Za-z]{15})-(\d+)$")
_DESCRIBE_PATH = re.compile(r"^/sobjects/([A-Za-z0-9_]+)/describe/?$")
_BATCH_SIZE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)

# The org's API methods callable from another process through POST /__emulator/org/<method>.
ADMIN_ORG_METHODS = frozenset(
    {
        "add_account",
        "add_user",
        "update_user",
        "add_model",
        "set_model_state",
        "add_territory",
        "assign_account",
        "unassign_account",
        "add_user_to_territory",
        "remove_user_from_territory",
        "set_role",
        "add_team_member",
        "set_team_role",
        "remove_team_member",
        "set_user_association_active",
        "touch_user_association",
        "account_ids",
        "user_ids",
        "territory_ids",
        "model_id",
        "view_rows",
        "accounts_with_rows",
        "count",
    }
)


@dataclass
class Fault:
    kind: str
    remaining: int
    retry_after: int | None = None
    scope: str = "api"


@dataclass
class RequestRecord:
    """One request the emulator received (admin calls under /__emulator/ excluded)."""

    method: str
    path: str
    kind: str  # token, versions, resources, limits, describe_global, describe, query, query_more, unknown
    status: int = 0
    soql: str | None = None
    sobject: str | None = None
    fault: str | None = None


@dataclass
class _Cursor:
    plan: Plan
    total: int
    batch_size: int
    positions: dict[int, list[Any] | None] = field(default_factory=dict)  # row number -> key of the row before
    used: float = field(default_factory=time.monotonic)


class ApiError(Exception):
    """An error answered as Salesforce does: a JSON list of {message, errorCode}."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: Any = [{"message": message, "errorCode": code}]
        self.headers = headers or {}


class OAuthError(ApiError):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(status, error, description)
        self.body = {"error": error, "error_description": description}


class Emulator:
    """A Salesforce stand-in on a loopback port. `Emulator(org).start()` … `.stop()`, or use it as a context."""

    def __init__(
        self,
        org: Org | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        username: str = DEFAULT_USERNAME,
        token_ttl: float | None = None,
        daily_api_limit: int = 5_000_000,
        max_uri_length: int = 16_384,
    ) -> None:
        self.org = org or Org()
        self.host = host
        self.port = port
        self.client_id = client_id
        self.client_secret = client_secret
        self.username = username
        self.token_ttl = token_ttl
        self.daily_api_limit = daily_api_limit
        self.max_uri_length = max_uri_length
        self.integration_user_id = make_id("005", 1_000_000_000)
        self._lock = threading.Lock()
        self._tokens: dict[str, float | None] = {}  # token -> monotonic expiry
        self._faults: list[Fault] = []
        self._latency = 0.0
        self._requests: list[RequestRecord] = []
        self._api_calls = 0
        self._cursors: dict[str, _Cursor] = {}
        self._cursor_sequence = 5_000_000_000
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----

    def start(self) -> Self:
        server = ThreadingHTTPServer((self.host, self.port), _Handler)
        server.daemon_threads = True
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, name="salesforce-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/services/oauth2/token"

    # ---- tokens ----

    def issue_token(self) -> str:
        """A valid access token without the OAuth round trip (for tests of other parts)."""
        token = f"{self.org.org_id[:15]}!AQ{secrets.token_urlsafe(60)}"
        with self._lock:
            self._tokens[token] = None if self.token_ttl is None else time.monotonic() + self.token_ttl
        return token

    def expire_tokens(self) -> None:
        """Every token issued so far is rejected from now on: 401 INVALID_SESSION_ID."""
        with self._lock:
            self._tokens.clear()

    def _token_valid(self, token: str) -> bool:
        with self._lock:
            if token not in self._tokens:
                return False
            expiry = self._tokens[token]
            if expiry is not None and time.monotonic() >= expiry:
                del self._tokens[token]
                return False
            return True

    # ---- faults ----

    def fail_next(self, kind: str, count: int = 1, *, retry_after: int | None = None, scope: str = "api") -> None:
        """The next `count` matching requests fail instead of being answered.

        kind: "429" (Too Many Requests, with Retry-After: retry_after or 1), "503" (Server Unavailable, with
        Retry-After when retry_after is given), "REQUEST_LIMIT_EXCEEDED" (403), "401" (INVALID_SESSION_ID
        without expiring tokens), "500" (UNKNOWN_EXCEPTION), "disconnect" (the connection closes unanswered).
        scope: "api" (/services/data/...), "query" (query and nextRecordsUrl pages), "token" (the token
        endpoint) or "any". Faults queue in order; each request consumes at most one.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if scope not in FAULT_SCOPES:
            raise ValueError(f"scope must be one of {FAULT_SCOPES}")
        if kind == "429" and retry_after is None:
            retry_after = 1
        with self._lock:
            self._faults.append(Fault(kind, count, retry_after, scope))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return [dataclasses.replace(fault) for fault in self._faults]

    def set_latency(self, seconds: float) -> None:
        """Every API request waits this long before being answered."""
        self._latency = seconds

    def _take_fault(self, kind: str) -> Fault | None:
        scope_of_request = {
            "token": {"token", "any"},
            "query": {"query", "api", "any"},
            "query_more": {"query", "api", "any"},
        }.get(kind, {"api", "any"})
        with self._lock:
            for fault in self._faults:
                if fault.scope in scope_of_request:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # ---- request counts ----

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def count(self, kind: str | None = None, *, path_prefix: str | None = None, sobject: str | None = None) -> int:
        """Requests received (faulted ones included), by kind ("query", "query_more", "token", ...), path or object."""
        return sum(
            1
            for record in self.requests
            if (kind is None or record.kind == kind)
            and (path_prefix is None or record.path.startswith(path_prefix))
            and (sobject is None or (record.sobject or "").lower() == sobject.lower())
        )

    def counts_by_path(self) -> dict[str, int]:
        return dict(Counter(record.path for record in self.requests))

    def counts_by_kind(self) -> dict[str, int]:
        return dict(Counter(record.kind for record in self.requests))

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()

    # ---- request handling (called from the handler threads) ----

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            if form.get("client_id") != self.client_id or not hmac.compare_digest(
                form.get("client_secret", ""), self.client_secret
            ):
                raise OAuthError("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            self._check_assertion(form.get("assertion", ""))
        elif not grant:
            raise OAuthError("invalid_request", "grant type not supported")
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        issued_at = str(int(time.time() * 1000))
        identity = f"{self.url}/id/{self.org.org_id}/{self.integration_user_id}"
        signature = hmac.new(self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        return {
            "access_token": self.issue_token(),
            "instance_url": self.url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(signature).decode(),
            "scope": "api",
        }

    def _check_assertion(self, assertion: str) -> None:
        """A JWT whose claims name this connected app and user; the signature is not verified."""
        parts = assertion.split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
        except (ValueError, binascii.Error) as error:
            raise OAuthError("invalid_grant", "invalid assertion") from error
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") not in ("RS256", "HS256"):
            raise OAuthError("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.client_id:
            raise OAuthError("invalid_client", "invalid client credentials")
        if claims.get("aud") not in (*LOGIN_AUDIENCES, self.url, self.url + "/"):
            raise OAuthError("invalid_grant", "audience is invalid")
        if claims.get("sub") != self.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        expiry = claims.get("exp")
        if not isinstance(expiry, int | float) or expiry < time.time():
            raise OAuthError("invalid_grant", "expired authorization code")

    def _authenticate(self, header: str) -> None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self._token_valid(token.strip()):
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid", {"WWW-Authenticate": "Token"})

    def _count_api_call(self) -> str:
        with self._lock:
            self._api_calls += 1
            calls = self._api_calls
        if calls > self.daily_api_limit:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        return f"api-usage={calls}/{self.daily_api_limit}"

    def _query(self, version: float, soql: str, batch_size: int, record: RequestRecord) -> dict[str, Any]:
        try:
            plan = compile_query(soql, version, self.org.clock())
        except SoqlError as error:
            raise ApiError(400, error.code, error.message(soql)) from error
        record.sobject = plan.sobject.name
        with self.org.lock:
            total = plan.total(self.org.connection)
            if plan.count:
                return {"totalSize": total, "done": True, "records": []}
            cursor = _Cursor(plan, total, batch_size, {0: None})
            return self._page(cursor, None, 0, version)

    def _query_more(self, version: float, locator: str, position: int, batch_size: int | None) -> dict[str, Any]:
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or position not in cursor.positions:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        with self.org.lock:
            return self._page(cursor, locator, position, version, batch_size)

    def _page(
        self, cursor: _Cursor, locator: str | None, position: int, version: float, batch_size: int | None = None
    ) -> dict[str, Any]:
        size = batch_size or cursor.batch_size
        limit = cursor.plan.limit
        if limit is not None:
            size = max(0, min(size, limit - position))
        records, last, more = (
            cursor.plan.page(self.org.connection, cursor.positions[position], size) if size else ([], None, False)
        )
        end = position + len(records)
        if limit is not None and end >= limit:
            more = False
        body: dict[str, Any] = {"totalSize": cursor.total, "done": not more, "records": records}
        if more:
            if locator is None:
                locator = self._new_cursor(cursor)
            cursor.positions[end] = last
            cursor.used = time.monotonic()
            body["nextRecordsUrl"] = f"/services/data/v{version:.1f}/query/{locator}-{end}"
        return body

    def _new_cursor(self, cursor: _Cursor) -> str:
        now = time.monotonic()
        with self._lock:
            for locator, existing in list(self._cursors.items()):
                if now - existing.used > CURSOR_IDLE_SECONDS:
                    del self._cursors[locator]
            while len(self._cursors) >= MAX_CURSORS:
                del self._cursors[next(iter(self._cursors))]
            self._cursor_sequence += 1
            locator = make_id("01g", self._cursor_sequence)
            self._cursors[locator] = cursor
        return locator

    def _versions(self) -> list[dict[str, str]]:
        return [
            {
                "label": schema.release_label(version),
                "url": f"/services/data/v{version:.1f}",
                "version": f"{version:.1f}",
            }
            for version in schema.supported_versions()
        ]

    def _describe_global(self, version: float) -> dict[str, Any]:
        objects = [item for item in schema.OBJECTS.values() if version >= item.min_version]
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                {
                    "name": item.name,
                    "label": item.label,
                    "keyPrefix": item.key_prefix,
                    "queryable": True,
                    "custom": False,
                    "urls": {
                        "sobject": f"/services/data/v{version:.1f}/sobjects/{item.name}",
                        "describe": f"/services/data/v{version:.1f}/sobjects/{item.name}/describe",
                    },
                }
                for item in objects
            ],
        }

    def _api(self, method: str, path: str, params: dict[str, list[str]], headers: Any, record: RequestRecord) -> Any:
        match = _VERSION_PATH.match(path)
        if match is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        version = float(f"{match.group(1)}.{match.group(2)}")
        rest = (match.group(3) or "/").rstrip("/") or "/"
        record.kind = _kind_of(rest)
        if version not in schema.supported_versions():
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if method != "GET":
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD")
        self._authenticate(headers.get("Authorization", ""))
        if rest == "/":
            base = f"/services/data/v{version:.1f}"
            return {name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits")}
        if rest == "/limits":
            with self._lock:
                used = self._api_calls
            return {"DailyApiRequests": {"Max": self.daily_api_limit, "Remaining": max(0, self.daily_api_limit - used)}}
        if rest == "/sobjects":
            return self._describe_global(version)
        describe = _DESCRIBE_PATH.match(rest)
        if describe:
            sobject = schema.lookup(describe.group(1), version)
            if sobject is None:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            record.sobject = sobject.name
            picklists = {
                "RoleInTerritory2": list(self.org.role_values),
                "TeamMemberRole": list(self.org.team_roles),
                "AccountAccessLevel": ["Read", "Edit", "All"],
            }
            return schema.describe(sobject, version, picklists)
        batch_size = _batch_size(headers.get("Sforce-Query-Options", ""))
        if rest in ("/query", "/queryAll"):
            soql = (params.get("q") or [""])[0]
            record.soql = soql
            if not soql.strip():
                raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
            return self._query(version, soql, batch_size or DEFAULT_BATCH_SIZE, record)
        more = _MORE_PATH.match(rest)
        if more:
            return self._query_more(version, more.group(1), int(more.group(2)), batch_size)
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    # ---- admin ----

    def _admin(self, method: str, path: str, params: dict[str, list[str]], body: Any) -> Any:
        """Test controls for other processes (no token needed, never faulted, not counted).

        GET    /__emulator/                      url, credentials, object counts, pending faults
        POST   /__emulator/faults                {"kind": "429", "count": 1, "retry_after": 2, "scope": "api"}
        DELETE /__emulator/faults
        POST   /__emulator/expire-tokens
        POST   /__emulator/latency               {"seconds": 0.2}
        GET    /__emulator/requests              {"by_path": {...}, "by_kind": {...}, "requests": [...]}
        DELETE /__emulator/requests
        POST   /__emulator/org/<method>          keyword arguments of an Org method (ADMIN_ORG_METHODS)
        """
        route = path[len("/__emulator") :].rstrip("/")
        if route == "" and method == "GET":
            return self.info()
        if route == "/faults" and method == "POST":
            self.fail_next(
                str(body.get("kind", "")),
                int(body.get("count", 1)),
                retry_after=body.get("retry_after"),
                scope=str(body.get("scope", "api")),
            )
            return {"faults": [dataclasses.asdict(fault) for fault in self.pending_faults()]}
        if route == "/faults" and method == "DELETE":
            self.clear_faults()
            return {"faults": []}
        if route == "/expire-tokens" and method == "POST":
            self.expire_tokens()
            return {"expired": True}
        if route == "/latency" and method == "POST":
            self.set_latency(float(body.get("seconds", 0)))
            return {"seconds": self._latency}
        if route == "/requests" and method == "GET":
            return {
                "by_path": self.counts_by_path(),
                "by_kind": self.counts_by_kind(),
                "requests": [dataclasses.asdict(record) for record in self.requests],
            }
        if route == "/requests" and method == "DELETE":
            self.reset_counts()
            return {"requests": []}
        if route.startswith("/org/") and method == "POST":
            name = route[len("/org/") :]
            if name not in ADMIN_ORG_METHODS:
                raise ApiError(404, "NOT_FOUND", f"no org method {name}")
            result = getattr(self.org, name)(**body)
            return {"result": sorted(result) if isinstance(result, set) else result}
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "username": self.username,
            "org_id": self.org.org_id,
            "latest_version": f"{schema.LATEST_VERSION:.1f}",
            "objects": {name: self.org.count(name) for name in (item.name for item in schema.OBJECTS.values())},
            "faults": [dataclasses.asdict(fault) for fault in self.pending_faults()],
        }


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _batch_size(header: str) -> int | None:
    match = _BATCH_SIZE.search(header)
    if match is None:
        return None
    return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, int(match.group(1))))


def _kind_of(rest: str) -> str:
    if rest == "/":
        return "resources"
    if rest in ("/query", "/queryAll"):
        return "query"
    if _MORE_PATH.match(rest):
        return "query_more"
    if _DESCRIBE_PATH.match(rest):
        return "describe"
    return {"/limits": "limits", "/sobjects": "describe_global"}.get(rest, "unknown")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator/1.0"

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _handle(self, method: str) -> None:
        emulator = self.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path, params = split.path, parse_qs(split.query, keep_blank_values=True)
        if path.startswith("/__emulator"):
            try:
                body = json.loads(raw or b"{}")
                self._send(200, emulator._admin(method, path, params, body if isinstance(body, dict) else {}))
            except ApiError as error:
                self._send(error.status, error.body, error.headers)
            except (ValueError, TypeError, KeyError) as error:
                self._send(400, [{"message": str(error), "errorCode": "INVALID_REQUEST"}])
            return
        record = RequestRecord(method, path, "token" if path.rstrip("/") == "/services/oauth2/token" else "unknown")
        if path.rstrip("/") in ("/services/data", ""):
            record.kind = "versions"
        elif path.startswith("/services/data/"):
            match = _VERSION_PATH.match(path)
            record.kind = _kind_of(((match.group(3) or "/").rstrip("/") or "/") if match else "")
        emulator._record(record)
        if emulator._latency:
            time.sleep(emulator._latency)
        fault = emulator._take_fault(record.kind) if record.kind != "versions" else None
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "disconnect":
                record.status = 0
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(2)
                return
            failure = _fault_error(fault)
            record.status = failure.status
            self._send(failure.status, failure.body, failure.headers)
            return
        extra: dict[str, str] = {}
        try:
            if len(self.path) > emulator.max_uri_length:
                raise ApiError(414, "URI_TOO_LONG", f"The request URI is longer than {emulator.max_uri_length} bytes")
            if record.kind == "token":
                if method != "POST":
                    raise ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST")
                form = {key: values[0] for key, values in parse_qs(raw.decode("utf-8", "replace")).items()}
                body = emulator._token(form)
            elif record.kind == "versions":
                body = emulator._versions()
            else:
                if path.startswith("/services/data/v"):
                    extra["Sforce-Limit-Info"] = emulator._count_api_call()
                body = emulator._api(method, path, params, self.headers, record)
            status = 200
        except ApiError as error:
            status, body = error.status, error.body
            extra.update(error.headers)
        except Exception as error:  # an emulator bug: answer like Salesforce's UNKNOWN_EXCEPTION, keep serving
            status, body = 500, [{"message": f"emulator error: {error!r}", "errorCode": "UNKNOWN_EXCEPTION"}]
        record.status = status
        self._send(status, body, extra)

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _fault_error(fault: Fault) -> ApiError:
    retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.kind == "429":
        return ApiError(429, "TOO_MANY_REQUESTS", f"Too many requests. Retry after {fault.retry_after} seconds.", retry)
    if fault.kind == "503":
        return ApiError(503, "SERVER_UNAVAILABLE", "Server is temporarily unavailable. Please try again later.", retry)
    if fault.kind == "REQUEST_LIMIT_EXCEEDED":
        return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    if fault.kind == "401":
        return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid", {"WWW-Authenticate": "Token"})
    return ApiError(
        500,
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1)",
    )
