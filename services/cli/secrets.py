"""Where the CLI finds the JWT secret: the environment, else the dev secret `make run` keeps in ./var."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

DEV_SECRET_FILE = Path(os.environ.get("STEWARD_DATA_DIR", "./var")) / "dev-jwt-secret"


def jwt_secret(create: bool = False) -> str | None:
    from_env = os.environ.get("STEWARD_JWT_SECRET")
    if from_env:
        return from_env
    if DEV_SECRET_FILE.exists():
        return DEV_SECRET_FILE.read_text().strip()
    if not create:
        return None
    DEV_SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    DEV_SECRET_FILE.write_text(value + "\n")
    DEV_SECRET_FILE.chmod(0o600)
    return value
