"""Pieces of set-based statements that read the same on SQLite and PostgreSQL.

A batch of thousands of rows is written with a few statements, not one round trip per row: the
rows travel as one JSON parameter, read as a table (`JsonRows`), and INSERT ... SELECT, UPDATE
... FROM and DELETE ... IN work on it inside the database.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, Text, func, literal, literal_column
from sqlalchemy import cast as cast_
from sqlalchemy.sql.elements import ColumnElement

from services.runtime.db import UTCDateTime


def text_value(value: str) -> Any:
    # Typed parameters: PostgreSQL cannot infer the type of a bare parameter in a SELECT list.
    return cast_(literal(value), Text)


def time_value(value: dt.datetime, dialect: str) -> Any:
    stamp = literal(value, UTCDateTime())
    # SQLite would CAST to a number (NUMERIC affinity); it keeps the bound string as it is.
    return cast_(stamp, DateTime(timezone=True)) if dialect == "postgresql" else stamp


def json_object(dialect: str) -> Any:
    """The SQL function building a JSON object from alternating keys and values."""
    return func.json_build_object if dialect == "postgresql" else func.json_object


class JsonRows:
    """Rows given as one JSON array of arrays, read as a table with one `value` per row:
    json_each on SQLite, json_array_elements on PostgreSQL. Column i of a row is `text(i)`
    (NULL for a JSON null), or `integer(i)`."""

    def __init__(self, rows: Sequence[Sequence[object]], dialect: str, name: str = "batch") -> None:
        payload = literal(json.dumps(rows, separators=(",", ":")), Text)
        source = func.json_array_elements(cast_(payload, JSON)) if dialect == "postgresql" else func.json_each(payload)
        self.table = source.table_valued("value").alias(name)

    def text(self, index: int) -> ColumnElement[str]:
        return self.table.c.value.op("->>", return_type=Text)(literal_column(str(index)))

    def integer(self, index: int) -> ColumnElement[int]:
        return cast_(self.text(index), Integer)
