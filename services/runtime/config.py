"""Configuration from environment variables only; every name is in the README's table."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Self

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from services.runtime.sealing import Keyring, MalformedKey

DEFAULT_PORTS = {"users": 50051, "rules": 50052, "sync": 50053}
DEFAULT_METRICS_PORTS = {"users": 9451, "rules": 9452, "sync": 9453}


class ConfigError(Exception):
    """Raised at start-up; the process prints it and exits non-zero."""


# By pydantic's error type: the variable, what it must be, what it got (as the README's errors).
_EXPECTS = {"int_parsing": "an integer", "float_parsing": "a number", "bool_parsing": "true or false"}


class EnvSettings(BaseSettings):
    """Settings read by `from_environment`: each field from the prefix plus its name, or from its
    alias. Built in code (the tests) they take their arguments only, so that a variable left in a
    shell cannot change a test. A rule whose message the README gives raises ConfigError from its
    validator (pydantic passes it through); type errors are worded by _describe."""

    model_config = SettingsConfigDict(frozen=True, env_ignore_empty=True, validate_by_name=True)
    # Fields no variable sets: a clock, tuning the README does not offer, parts read another way.
    code_only: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @classmethod
    def from_environment(cls, env_prefix: str | None = None, **defaults: Any) -> Self:
        """`defaults` (those derived at run time) overridden by the variables that are set."""
        prefix = cls.model_config.get("env_prefix", "") if env_prefix is None else env_prefix
        env = EnvSettingsSource(cls, env_prefix=prefix)()
        try:
            return cls(**{**defaults, **{k: v for k, v in env.items() if k not in cls.code_only}})
        except ValidationError as exc:
            raise ConfigError(_describe(cls, prefix, exc.errors()[0])) from None


def _describe(cls: type[EnvSettings], prefix: str, error: ErrorDetails) -> str:
    name = str(error["loc"][0])
    alias = cls.model_fields[name].validation_alias if name in cls.model_fields else None
    variable = alias if isinstance(alias, str) else name if name.isupper() else prefix + name.upper()
    if error["type"] in _EXPECTS:
        return f"{variable} must be {_EXPECTS[error['type']]}, got {error['input']!r}"
    if error["type"] == "greater_than_equal":
        return f"{variable} must be at least {error.get('ctx', {})['ge']}, got {error['input']}"
    return f"{variable}: {error['msg']}, got {error['input']!r}"


def checked_jwt_secret(secret: str) -> str:
    if len(secret) < 32:
        raise ConfigError("STEWARD_JWT_SECRET must be set to at least 32 characters (HS256 wants a 256-bit key)")
    return secret


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def default_database_url(service: str) -> str:
    return f"sqlite:///{os.path.abspath(_env('STEWARD_DATA_DIR', './var'))}/{service}.db"


def database_url(service: str) -> str:
    return _env(f"STEWARD_{service.upper()}_DATABASE_URL", default_database_url(service))


class ServiceSettings(EnvSettings):
    # host, port, metrics_port and database_url are STEWARD_<SVC>_*: from_env sets the prefix.
    code_only = frozenset({"service"})

    service: str
    host: str
    port: int
    metrics_port: int
    database_url: str
    jwt_secret: str = Field(default="", validation_alias="STEWARD_JWT_SECRET")
    log_level: str = Field(default="info", validation_alias="STEWARD_LOG_LEVEL")
    log_format: str = Field(default="json", validation_alias="STEWARD_LOG_FORMAT")
    # Also auto (from_env's default): see _migrate.
    migrate_on_start: bool = Field(validation_alias="STEWARD_MIGRATE_ON_START")
    grace_seconds: float = Field(default=10.0, validation_alias="STEWARD_GRACE_SECONDS")
    drain_delay_seconds: float = Field(default=0.0, validation_alias="STEWARD_DRAIN_DELAY_SECONDS")
    health_check_interval_seconds: float = Field(default=5.0, validation_alias="STEWARD_HEALTH_CHECK_INTERVAL_SECONDS")
    max_workers: int = Field(default=16, validation_alias="STEWARD_MAX_WORKERS")
    # Servers close connections older than this (0: never), so that clients re-resolve DNS and
    # spread over replicas that started after them (with round_robin over a headless Service).
    max_connection_age_seconds: float = Field(default=0.0, validation_alias="STEWARD_MAX_CONNECTION_AGE_SECONDS")
    # Fernet keys sealing secrets at rest (runtime/sealing.py); empty: stored as given.
    secrets_keys: str = Field(default="", validation_alias="STEWARD_SECRETS_KEYS")

    @classmethod
    def from_env(cls, service: str) -> ServiceSettings:
        return cls.from_environment(
            f"STEWARD_{service.upper()}_",
            service=service,
            host=_env("STEWARD_HOST", "127.0.0.1"),
            port=DEFAULT_PORTS[service],
            metrics_port=DEFAULT_METRICS_PORTS[service],
            database_url=default_database_url(service),
            migrate_on_start="auto",
        )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: str) -> str:
        return checked_jwt_secret(secret)

    @field_validator("log_level", "log_format")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("migrate_on_start", mode="before")
    @classmethod
    def _migrate(cls, value: object, info: ValidationInfo) -> bool:
        migrate = str(value).lower()
        if migrate not in {"auto", "true", "false"}:
            raise ConfigError(f"STEWARD_MIGRATE_ON_START must be auto, true or false, got {migrate!r}")
        # Only the embedded SQLite default migrates itself; shared databases migrate
        # through `migrate` (a Kubernetes Job) so that replicas never race on DDL.
        return migrate == "true" or (migrate == "auto" and str(info.data.get("database_url")).startswith("sqlite"))

    @field_validator("secrets_keys")
    @classmethod
    def _sealing_keys(cls, text: str) -> str:
        return checked_secrets_keys(text)


def checked_secrets_keys(text: str) -> str:
    """A bad key stops the service at start, not at first use."""
    try:
        Keyring.from_text(text)
    except MalformedKey as error:
        raise ConfigError(f"STEWARD_SECRETS_KEYS: {error}") from error
    return text


def secrets_keys() -> str:
    """STEWARD_SECRETS_KEYS, checked."""
    return checked_secrets_keys(_env("STEWARD_SECRETS_KEYS", ""))


def service_address(service: str) -> str:
    """Where clients (the CLI, other services) reach a service."""
    return _env(f"STEWARD_{service.upper()}_ADDRESS", f"127.0.0.1:{DEFAULT_PORTS[service]}")


__all__ = ["ConfigError", "EnvSettings", "ServiceSettings", "service_address"]
