"""Settings of the users service beyond the shared ones, from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.runtime.config import ConfigError
from services.users.domain.licenses import LicensePolicy, parse_limits
from services.users.domain.model import License, UserStatus


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 25
    sender: str = "Steward <no-reply@steward.local>"
    poll_seconds: float = 1.0
    max_attempts: int = 10
    # First retry delay; it doubles per attempt up to an hour.
    retry_base_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


DEFAULT_SCIM_PORT = 50061


@dataclass(frozen=True)
class ScimSettings:
    # The HTTP port of SCIM 2.0 (0: any free port; -1: off, the default of configs built in code).
    port: int = -1
    # What a user created over SCIM starts as: CREATED (invited by email) or ACTIVE (SSO).
    create_status: UserStatus = UserStatus.CREATED
    # Email of who inherits a deprovisioned user's work when their manager cannot.
    deprovision_heir: str = ""
    # The license of a user created without the Steward extension's license.
    default_license: License = License.VIEWER
    threads: int = 8

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ScimSettings:
        status = env.get("STEWARD_SCIM_CREATE_STATUS", "created").strip().lower()
        if status not in {"created", "active"}:
            raise ConfigError(f"STEWARD_SCIM_CREATE_STATUS must be created or active, got {status!r}")
        license = env.get("STEWARD_SCIM_DEFAULT_LICENSE", "VIEWER").strip().upper()
        if license not in License.__members__:
            raise ConfigError(f"STEWARD_SCIM_DEFAULT_LICENSE must be one of {', '.join(License)}, got {license!r}")
        try:
            port = int(env.get("STEWARD_USERS_SCIM_PORT") or DEFAULT_SCIM_PORT)
            threads = int(env.get("STEWARD_SCIM_THREADS") or cls.threads)
        except ValueError as exc:
            raise ConfigError(f"STEWARD_USERS_SCIM_PORT and STEWARD_SCIM_THREADS must be integers: {exc}") from exc
        return cls(
            port=port,
            create_status=UserStatus.ACTIVE if status == "active" else UserStatus.CREATED,
            deprovision_heir=env.get("STEWARD_SCIM_DEPROVISION_HEIR", "").strip(),
            default_license=License(license),
            threads=max(1, threads),
        )


@dataclass(frozen=True)
class UsersConfig:
    licenses: LicensePolicy = field(default_factory=LicensePolicy)
    # UUID mode: emails may change while the user keeps their id.
    uuid_mode: bool = False
    invitation_ttl_hours: float = 7 * 24
    accept_url_template: str = "http://localhost:8080/accept-invitation?token={token}"
    bootstrap_admin_email: str = ""
    # Managers and direct reports; team management is reassigned only when it is on.
    employee_hierarchy: bool = True
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    scim: ScimSettings = field(default_factory=ScimSettings)

    @classmethod
    def from_env(cls) -> UsersConfig:
        env = os.environ
        try:
            limits = parse_limits(env.get("STEWARD_LICENSE_LIMITS", ""))
        except ValueError as exc:
            raise ConfigError(f"STEWARD_LICENSE_LIMITS must look like PRACTITIONER=50,VIEWER=200: {exc}") from exc
        exempt = frozenset(
            d.strip().lower() for d in env.get("STEWARD_LICENSE_EXEMPT_DOMAINS", "").split(",") if d.strip()
        )
        template = env.get("STEWARD_ACCEPT_URL_TEMPLATE") or cls.accept_url_template
        if "{token}" not in template:
            raise ConfigError("STEWARD_ACCEPT_URL_TEMPLATE must contain {token}")
        try:
            return cls(
                licenses=LicensePolicy(limits, exempt),
                uuid_mode=env.get("STEWARD_USERS_UUID_MODE", "false").lower() == "true",
                invitation_ttl_hours=float(env.get("STEWARD_INVITATION_TTL_HOURS", 7 * 24)),
                accept_url_template=template,
                bootstrap_admin_email=env.get("STEWARD_BOOTSTRAP_ADMIN_EMAIL", "").strip(),
                employee_hierarchy=env.get("STEWARD_EMPLOYEE_HIERARCHY", "true").lower() != "false",
                smtp=SmtpSettings(
                    host=env.get("STEWARD_SMTP_HOST", ""),
                    port=int(env.get("STEWARD_SMTP_PORT", "25")),
                    sender=env.get("STEWARD_SMTP_FROM") or SmtpSettings.sender,
                    poll_seconds=float(env.get("STEWARD_SMTP_POLL_SECONDS", "1")),
                ),
                scim=ScimSettings.from_env(env),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid users configuration: {exc}") from exc
