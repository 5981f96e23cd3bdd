"""What every benchmark needs: a scratch database of the chosen kind and the services on it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.processes import Process, rules_process, users_process
from tests.scratch_db import create_schema, drop_schemas

SECRET = "bench-secret-" + "b" * 32


def backend() -> str:
    return "PostgreSQL" if os.environ.get("STEWARD_BENCH_DATABASE_URL") else "SQLite"


@contextmanager
def scratch_databases(*labels: str) -> Iterator[list[str]]:
    """One empty database per label: SQLite files, or PostgreSQL schemas dropped afterwards."""
    postgres = os.environ.get("STEWARD_BENCH_DATABASE_URL", "")
    schemas: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = []
        for label in labels:
            if postgres:
                schema, url = create_schema(postgres, f"bench_{label}")
                schemas.append(schema)
                urls.append(url)
            else:
                urls.append(f"sqlite:///{tmp}/{label}.db")
        try:
            yield urls
        finally:
            drop_schemas(postgres, schemas)


@contextmanager
def users_service(url: str, port: int = 0) -> Iterator[tuple[Process, str]]:
    server, address = users_process(url, SECRET, port, STEWARD_LOG_LEVEL="warning")
    try:
        yield server, address
    finally:
        server.popen.terminate()
        server.finish(timeout=60)
        server.close()


@contextmanager
def rules_service(url: str, users_address: str, **env: str) -> Iterator[tuple[Process, str]]:
    """A rules service process; `env`: more settings (STEWARD_RULES_...)."""
    server, address = rules_process(url, SECRET, users_address, STEWARD_LOG_LEVEL="warning", **env)
    try:
        yield server, address
    finally:
        server.popen.terminate()
        server.finish(timeout=120)  # draining after a large load takes a while
        server.close()
