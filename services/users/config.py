"""Settings of the users service beyond the shared ones, from environment variables."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.runtime.config import ConfigError, EnvSettings
from services.users.domain.licenses import LicensePolicy, parse_limits
from services.users.domain.model import License, UserStatus


class SmtpSettings(EnvSettings):
    """STEWARD_SMTP_<FIELD> unless a field names its variable."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_SMTP_")
    code_only = frozenset({"max_attempts", "retry_base_seconds"})

    host: str = ""
    port: int = 25
    sender: str = Field(default="Steward <no-reply@steward.local>", validation_alias="STEWARD_SMTP_FROM")
    poll_seconds: float = 1.0
    max_attempts: int = 10
    # First retry delay; it doubles per attempt up to an hour.
    retry_base_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


DEFAULT_SCIM_PORT = 50061


class ScimSettings(EnvSettings):
    """STEWARD_SCIM_<FIELD> unless a field names its variable."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_SCIM_", str_strip_whitespace=True)

    # The HTTP port of SCIM 2.0 (0: any free port; -1: off, the default of configs built in code).
    port: int = Field(default=-1, validation_alias="STEWARD_USERS_SCIM_PORT")
    # What a user created over SCIM starts as: CREATED (invited by email) or ACTIVE (SSO).
    create_status: UserStatus = UserStatus.CREATED
    # Email of who inherits a deprovisioned user's work when their manager cannot.
    deprovision_heir: str = ""
    # The license of a user created without the Steward extension's license.
    default_license: License = License.VIEWER
    threads: int = 8

    @classmethod
    def from_env(cls) -> ScimSettings:
        return cls.from_environment(port=DEFAULT_SCIM_PORT)

    @field_validator("create_status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> Any:
        status = str(value).strip().lower()
        if status not in {"created", "active"}:
            raise ConfigError(f"STEWARD_SCIM_CREATE_STATUS must be created or active, got {status!r}")
        return status.upper()

    @field_validator("default_license", mode="before")
    @classmethod
    def _license(cls, value: Any) -> Any:
        license = str(value).strip().upper()
        if license not in License.__members__:
            raise ConfigError(f"STEWARD_SCIM_DEFAULT_LICENSE must be one of {', '.join(License)}, got {license!r}")
        return license

    @field_validator("threads")
    @classmethod
    def _at_least_one(cls, threads: int) -> int:
        return max(1, threads)


class UsersConfig(EnvSettings):
    """STEWARD_<FIELD> unless a field names its variable; licenses from two (see from_env)."""

    model_config = SettingsConfigDict(env_prefix="STEWARD_", str_strip_whitespace=True, arbitrary_types_allowed=True)
    code_only = frozenset({"licenses", "smtp", "scim"})

    licenses: LicensePolicy = Field(default_factory=LicensePolicy)
    # UUID mode: emails may change while the user keeps their id.
    uuid_mode: bool = Field(default=False, validation_alias="STEWARD_USERS_UUID_MODE")
    invitation_ttl_hours: float = 7 * 24
    accept_url_template: str = "http://localhost:8080/accept-invitation?token={token}"
    bootstrap_admin_email: str = ""
    # Managers and direct reports; team management is reassigned only when it is on.
    employee_hierarchy: bool = True
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    scim: ScimSettings = Field(default_factory=ScimSettings)

    @classmethod
    def from_env(cls) -> UsersConfig:
        try:
            limits = parse_limits(os.environ.get("STEWARD_LICENSE_LIMITS", ""))
        except ValueError as exc:
            raise ConfigError(f"STEWARD_LICENSE_LIMITS must look like PRACTITIONER=50,VIEWER=200: {exc}") from exc
        domains = os.environ.get("STEWARD_LICENSE_EXEMPT_DOMAINS", "").split(",")
        exempt = frozenset(d.strip().lower() for d in domains if d.strip())
        return cls.from_environment(
            licenses=LicensePolicy(limits, exempt), smtp=SmtpSettings.from_environment(), scim=ScimSettings.from_env()
        )

    @field_validator("accept_url_template")
    @classmethod
    def _has_token(cls, template: str) -> str:
        if "{token}" not in template:
            raise ConfigError("STEWARD_ACCEPT_URL_TEMPLATE must contain {token}")
        return template
