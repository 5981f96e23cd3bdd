"""Configuration from environment variables only; every name is in the README's table."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.runtime.sealing import Keyring, MalformedKey

DEFAULT_PORTS = {"users": 50051, "rules": 50052, "sync": 50053}
DEFAULT_METRICS_PORTS = {"users": 9451, "rules": 9452, "sync": 9453}


class ConfigError(Exception):
    """Raised at start-up; the process prints it and exits non-zero."""


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _int(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _int(name, default)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def default_database_url(service: str) -> str:
    return f"sqlite:///{os.path.abspath(_env('STEWARD_DATA_DIR', './var'))}/{service}.db"


def database_url(service: str) -> str:
    return _env(f"STEWARD_{service.upper()}_DATABASE_URL", default_database_url(service))


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    host: str
    port: int
    metrics_port: int
    database_url: str
    jwt_secret: str
    log_level: str
    log_format: str
    migrate_on_start: bool
    grace_seconds: float
    drain_delay_seconds: float
    health_check_interval_seconds: float
    max_workers: int
    # Servers close connections older than this (0: never), so that clients re-resolve DNS and
    # spread over replicas that started after them (with round_robin over a headless Service).
    max_connection_age_seconds: float = 0.0
    # Fernet keys sealing secrets at rest (runtime/sealing.py); empty: stored as given.
    secrets_keys: str = ""

    @classmethod
    def from_env(cls, service: str) -> ServiceSettings:
        prefix = f"STEWARD_{service.upper()}_"
        url = database_url(service)
        secret = os.environ.get("STEWARD_JWT_SECRET", "")
        if len(secret) < 32:
            raise ConfigError("STEWARD_JWT_SECRET must be set to at least 32 characters (HS256 wants a 256-bit key)")
        migrate = _env("STEWARD_MIGRATE_ON_START", "auto").lower()
        if migrate not in {"auto", "true", "false"}:
            raise ConfigError(f"STEWARD_MIGRATE_ON_START must be auto, true or false, got {migrate!r}")
        return cls(
            service=service,
            host=_env(prefix + "HOST", _env("STEWARD_HOST", "127.0.0.1")),
            port=_int(prefix + "PORT", DEFAULT_PORTS[service]),
            metrics_port=_int(prefix + "METRICS_PORT", DEFAULT_METRICS_PORTS[service]),
            database_url=url,
            jwt_secret=secret,
            log_level=_env("STEWARD_LOG_LEVEL", "info").lower(),
            log_format=_env("STEWARD_LOG_FORMAT", "json").lower(),
            # Only the embedded SQLite default migrates itself; shared databases migrate
            # through `migrate` (a Kubernetes Job) so that replicas never race on DDL.
            migrate_on_start=migrate == "true" or (migrate == "auto" and url.startswith("sqlite")),
            grace_seconds=env_float("STEWARD_GRACE_SECONDS", 10.0),
            drain_delay_seconds=env_float("STEWARD_DRAIN_DELAY_SECONDS", 0.0),
            health_check_interval_seconds=env_float("STEWARD_HEALTH_CHECK_INTERVAL_SECONDS", 5.0),
            max_workers=_int("STEWARD_MAX_WORKERS", 16),
            max_connection_age_seconds=env_float("STEWARD_MAX_CONNECTION_AGE_SECONDS", 0.0),
            secrets_keys=secrets_keys(),
        )


def secrets_keys() -> str:
    """STEWARD_SECRETS_KEYS, checked: a bad key stops the service at start, not at first use."""
    text = _env("STEWARD_SECRETS_KEYS", "")
    try:
        Keyring.from_text(text)
    except MalformedKey as error:
        raise ConfigError(f"STEWARD_SECRETS_KEYS: {error}") from error
    return text


def service_address(service: str) -> str:
    """Where clients (the CLI, other services) reach a service."""
    return _env(f"STEWARD_{service.upper()}_ADDRESS", f"127.0.0.1:{DEFAULT_PORTS[service]}")


__all__ = ["ConfigError", "ServiceSettings", "service_address"]
