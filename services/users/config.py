"""Settings of the users service beyond the shared ones, from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.runtime.config import ConfigError
from services.users.domain.licenses import LicensePolicy, parse_limits


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
            )
        except ValueError as exc:
            raise ConfigError(f"invalid users configuration: {exc}") from exc
