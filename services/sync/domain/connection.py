"""A connection to a CRM org's API: where it is, which API version, how to get an OAuth 2.0
token (client credentials or a JWT bearer assertion). Connectors read through it (connectors/).
Secrets are write-only: the domain keeps them, the API never shows them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from services.runtime.errors import NotFound, Violations
from services.runtime.etag import make_etag

MIN_API_VERSION = 42.0  # the oldest version every connector can read with
API_VERSION = re.compile(r"^\d{2}\.0$")
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class OAuthGrant(StrEnum):
    CLIENT_CREDENTIALS = "CLIENT_CREDENTIALS"
    JWT_BEARER = "JWT_BEARER"


@dataclass
class Connection:
    id: str
    display_name: str
    instance_url: str
    api_version: str
    grant: OAuthGrant
    client_id: str
    create_time: dt.datetime
    update_time: dt.datetime
    token_url: str = ""
    username: str = ""
    client_secret: str = ""
    private_key: str = ""
    version: int = 1

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)

    @property
    def name(self) -> str:
        return f"connections/{self.id}"


def _check_url(url: str, field: str, problems: Violations) -> None:
    parts = urlsplit(url)
    # Plain http only to this machine (a local stand-in); tokens never travel in clear otherwise.
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK)
    if not secure or not parts.hostname or parts.query or parts.fragment:
        problems.add(field, "an https:// URL without query or fragment", "URL_INVALID")


def check_connection(connection: Connection, path: str = "connection") -> Violations:
    problems = Violations()
    if not connection.display_name.strip() or len(connection.display_name) > 200:
        problems.add(f"{path}.display_name", "1 to 200 characters", "DISPLAY_NAME_INVALID")
    _check_url(connection.instance_url, f"{path}.instance_url", problems)
    if connection.token_url:
        _check_url(connection.token_url, f"{path}.oauth.token_url", problems)
    if not API_VERSION.match(connection.api_version) or float(connection.api_version) < MIN_API_VERSION:
        problems.add(f"{path}.api_version", f"NN.0, at least {MIN_API_VERSION}", "API_VERSION_INVALID")
    if not connection.client_id.strip():
        problems.add(f"{path}.oauth.client_id", "required", "REQUIRED")
    if connection.grant is OAuthGrant.CLIENT_CREDENTIALS and not connection.client_secret:
        problems.add(f"{path}.oauth.client_secret", "required with client credentials", "REQUIRED")
    if connection.grant is OAuthGrant.JWT_BEARER:
        if not connection.username.strip():
            problems.add(f"{path}.oauth.username", "required with the JWT bearer grant", "REQUIRED")
        if not connection.private_key:
            problems.add(f"{path}.oauth.private_key", "required with the JWT bearer grant", "REQUIRED")
    return problems


def connection_not_found(connection_id: str) -> NotFound:
    return NotFound(
        "CONNECTION_NOT_FOUND",
        f"no connection connections/{connection_id}",
        metadata={"connection": f"connections/{connection_id}"},
    )
