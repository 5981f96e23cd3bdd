"""Settings of the console, from STEWARD_* environment variables (README "Console")."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.config import ConfigError, EnvSettings, checked_jwt_secret, service_address

DEFAULT_CONSOLE_PORT = 8080


class SmtpOut(EnvSettings):
    """Where sign-in links are sent: the same STEWARD_SMTP_* as the users service's emails."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_SMTP_")

    host: str = ""
    port: int = 25
    sender: str = Field(default="Steward <no-reply@steward.local>", validation_alias="STEWARD_SMTP_FROM")


class ConsoleConfig(EnvSettings):
    """STEWARD_CONSOLE_<FIELD> unless a field names its variable."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_CONSOLE_", str_strip_whitespace=True)
    code_only = frozenset({"smtp", "users_address", "rules_address", "sync_address"})

    host: str = "127.0.0.1"
    port: int = DEFAULT_CONSOLE_PORT
    public_url: str = "http://localhost:8080"
    # STEWARD_<SERVICE>_ADDRESS, as every client of the services reads them.
    users_address: str = "127.0.0.1:50051"
    rules_address: str = "127.0.0.1:50052"
    sync_address: str = "127.0.0.1:50053"
    jwt_secret: str = Field(default="", validation_alias="STEWARD_JWT_SECRET")
    # Unset: derived from STEWARD_JWT_SECRET (see session_key), so one secret is enough in dev.
    session_secret: str = ""
    session_idle_minutes: float = 30.0
    session_max_hours: float = 12.0
    signin_link_minutes: float = 15.0
    # Per-request tokens to the services live this long: enough for one page's calls.
    call_token_seconds: int = 60
    threads: int = 8
    log_level: str = Field(default="info", validation_alias="STEWARD_LOG_LEVEL")
    log_format: str = Field(default="json", validation_alias="STEWARD_LOG_FORMAT")
    grace_seconds: float = Field(default=10.0, validation_alias="STEWARD_GRACE_SECONDS")
    smtp: SmtpOut = Field(default_factory=SmtpOut)
    # OIDC sign-in through the company's identity provider: on when the issuer is set.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = Field(default="", repr=False)
    # What the sign-in button says: "Sign in with <name>".
    oidc_name: str = "single sign-on"
    # The one-time email link; unset: on without OIDC (development), off with it (see email_links_on).
    email_links: bool | None = None

    @classmethod
    def from_env(cls) -> ConsoleConfig:
        # STEWARD_HOST (0.0.0.0 in containers) as for the services, unless STEWARD_CONSOLE_HOST is set.
        host = os.environ.get("STEWARD_HOST") or "127.0.0.1"
        return cls.from_environment(
            host=host,
            users_address=service_address("users"),
            rules_address=service_address("rules"),
            sync_address=service_address("sync"),
            smtp=SmtpOut.from_environment(),
        )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: str) -> str:
        return checked_jwt_secret(secret)

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ConfigError(f"STEWARD_CONSOLE_PUBLIC_URL must be an http(s) URL, got {url!r}")
        return url.rstrip("/")

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer_url(cls, issuer: str) -> str:
        if not issuer:
            return issuer
        parts = urlsplit(issuer)
        # Plain http only on this machine (the stand-in): elsewhere the tokens would cross a network in clear.
        local = parts.hostname in {"localhost", "127.0.0.1", "::1"}
        if not parts.netloc or (parts.scheme != "https" and not (parts.scheme == "http" and local)):
            raise ConfigError(f"STEWARD_CONSOLE_OIDC_ISSUER must be an https URL, got {issuer!r}")
        return issuer.rstrip("/")

    @model_validator(mode="after")
    def _oidc_complete(self) -> ConsoleConfig:
        if self.oidc_issuer:
            for name in ("client_id", "client_secret"):
                if not getattr(self, f"oidc_{name}"):
                    raise ConfigError(
                        f"STEWARD_CONSOLE_OIDC_{name.upper()} must be set with STEWARD_CONSOLE_OIDC_ISSUER"
                    )
        return self

    @property
    def oidc_on(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def oidc_discovery_url(self) -> str:
        return f"{self.oidc_issuer}/.well-known/openid-configuration"

    @property
    def email_links_on(self) -> bool:
        """Development's sign-in; with an identity provider it is off unless asked for, so that
        whoever reads a person's mailbox cannot get past the provider's own checks (MFA)."""
        return (not self.oidc_on) if self.email_links is None else self.email_links

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def session_key(self) -> str:
        """A key of its own, so that a session cookie is never also a valid bearer token's key."""
        if self.session_secret:
            return self.session_secret
        return hashlib.sha256(b"steward-console-session:" + self.jwt_secret.encode()).hexdigest()
