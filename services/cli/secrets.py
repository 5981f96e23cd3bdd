"""Where the CLI finds the JWT secret, and what `make run` seals stored secrets with: the
environment, else dev values `make run` keeps in ./var (created on first use, mode 0600)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from services.runtime.sealing import new_key

DATA_DIR = Path(os.environ.get("STEWARD_DATA_DIR", "./var"))
DEV_SECRET_FILE = DATA_DIR / "dev-jwt-secret"
DEV_SEALING_KEYS_FILE = DATA_DIR / "dev-secrets-keys"


def jwt_secret(create: bool = False) -> str | None:
    return _from_env_or_file("STEWARD_JWT_SECRET", DEV_SECRET_FILE, lambda: secrets.token_urlsafe(32), create)


def sealing_keys(create: bool = False) -> str | None:
    """STEWARD_SECRETS_KEYS for `make run`: so that even the embedded default keeps Salesforce
    credentials and webhook keys sealed in ./var's databases."""
    return _from_env_or_file("STEWARD_SECRETS_KEYS", DEV_SEALING_KEYS_FILE, new_key, create)


def _from_env_or_file(variable: str, path: Path, make: Callable[[], str], create: bool) -> str | None:
    from_env = os.environ.get(variable)
    if from_env:
        return from_env
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
