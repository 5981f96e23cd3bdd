"""SCIM over real HTTP for the tests: the users service's SCIM port, and raw requests (identity
providers' dialects are sent byte for byte as they send them)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from services.runtime.auth import mint_token
from services.users.config import ScimSettings, UsersConfig
from services.users.domain.model import UserStatus
from tests.conftest import JWT_SECRET

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
STEWARD = "urn:steward:scim:schemas:extension:steward:2.0:User"


def scim_token(subject: str = "service:okta", scopes: tuple[str, ...] = ("users.scim",), **kwargs: Any) -> str:
    return mint_token(JWT_SECRET, subject, scopes=scopes, **kwargs)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def scim_type(self) -> str | None:
        return self.body.get("scimType") if isinstance(self.body, dict) else None

    @property
    def detail(self) -> str:
        return str(self.body.get("detail", "")) if isinstance(self.body, dict) else ""


@dataclass
class Scim:
    port: int
    token: str = ""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/scim/v2"

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, **headers: str) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Content-Type": "application/scim+json", "Accept": "application/scim+json"}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        sent |= {k.replace("_", "-"): v for k, v in headers.items()}
        payload = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        try:
            connection.request(method, f"/scim/v2{path}", body=payload, headers=sent)
            response = connection.getresponse()
            data = response.read()
            parsed = json.loads(data) if data else None
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, parsed)
        finally:
            connection.close()

    def as_(self, token: str) -> Scim:
        return replace(self, token=token)

    def find_users(self, expression: str, **params: int) -> Reply:
        query = "&".join([f"filter={quote(expression)}", *(f"{k}={v}" for k, v in params.items())])
        return self.request("GET", f"/Users?{query}")

    def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        reply = self.request("POST", "/Users", user_body(user_name, **attributes))
        assert reply.status == 201, reply.body
        return reply.body

    def patch(self, path: str, *operations: dict[str, Any]) -> Reply:
        return self.request("PATCH", path, {"schemas": [PATCH_OP], "Operations": list(operations)})


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    """An Okta-shaped user: userName and the work email are the same address."""
    body: dict[str, Any] = {
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
    }
    return body | attributes


def scim_of(api: Any) -> Scim:
    """The SCIM endpoint of a users service started by the users_api fixture."""
    (server,) = [w for w in api.running.runtime.workers if type(w).__name__ == "ScimServer"]
    return Scim(server.port, scim_token())


def scim_config(base: UsersConfig | None = None, **scim: Any) -> UsersConfig:
    settings = ScimSettings(port=0, create_status=scim.pop("create_status", UserStatus.ACTIVE), **scim)
    return (base or UsersConfig()).model_copy(update={"scim": settings})
