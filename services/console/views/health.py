"""Probes: alive (the process answers) and ready (the users service answers SERVING)."""

from __future__ import annotations

from flask import Blueprint

from services.console.app import console

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[str, int, dict[str, str]]:
    return "ok\n", 200, {"Content-Type": "text/plain"}


@blueprint.get("/readyz")
def readyz() -> tuple[str, int, dict[str, str]]:
    if console().gateway.serving():
        return "ok\n", 200, {"Content-Type": "text/plain"}
    return "users service not serving\n", 503, {"Content-Type": "text/plain"}
