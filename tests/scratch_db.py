"""Throw-away PostgreSQL schemas, so tests and benchmarks share one database and leave nothing behind."""

from __future__ import annotations

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def create_schema(base_url: str, label: str) -> tuple[str, str]:
    """Create an empty schema; returns (its name, a URL whose connections all work inside it)."""
    schema = f"t_{uuid.uuid4().hex[:12]}_{label}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, url.render_as_string(hide_password=False)


def drop_schemas(base_url: str, schemas: list[str]) -> None:
    if not schemas:
        return
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for schema in schemas:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
