"""Alembic, driven from code: one migration folder and version table per service."""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, MetaData, text

from services.runtime.db import Database, make_engine


class SchemaState(enum.Enum):
    CURRENT = "current"
    BEHIND = "behind"  # a migration of this build has not run yet: do not serve
    AHEAD = "ahead"  # a newer build migrated already (rolling update): serve on


@dataclass(frozen=True)
class MigrationSet:
    service: str
    directory: Path

    @property
    def version_table(self) -> str:
        # A table per service, so services may share one database (as tests on PostgreSQL do).
        return f"alembic_version_{self.service}"

    def config(self, url: str) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(self.directory))
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        cfg.attributes["version_table"] = self.version_table
        return cfg

    def upgrade(self, url: str, revision: str = "head") -> None:
        command.upgrade(self.config(url), revision)

    def downgrade(self, url: str, revision: str) -> None:
        command.downgrade(self.config(url), revision)

    def head(self) -> str | None:
        return ScriptDirectory.from_config(self.config("sqlite://")).get_current_head()

    def current(self, db: Database) -> str | None:
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return ctx.get_current_revision()

    def schema_state(self, db: Database) -> SchemaState:
        """Where the database's schema stands against this build's migrations.

        A revision this build does not know is taken as newer: during a rolling update the
        migration Job upgrades the schema while old pods still serve, and migrations are
        written expand/contract so that old code keeps working on the newer schema."""
        revision = self.current(db)
        if revision == self.head():
            return SchemaState.CURRENT
        if revision is None:
            return SchemaState.BEHIND
        script = ScriptDirectory.from_config(self.config("sqlite://"))
        try:
            known = script.get_revision(revision) is not None
        except CommandError:  # alembic's "can't locate revision"
            known = False
        return SchemaState.BEHIND if known else SchemaState.AHEAD

    def is_current(self, db: Database) -> bool:
        """Good enough to serve: at this build's head or newer."""
        return self.schema_state(db) is not SchemaState.BEHIND


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's alembic env.py (online mode only: we always have a database)."""
    from alembic import context

    config = context.config
    version_table = config.attributes.get("version_table", "alembic_version")
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            _migrate(connection, target_metadata, version_table)
    finally:
        engine.dispose()


def _migrate(connection: Connection, target_metadata: MetaData, version_table: str) -> None:
    from alembic import context

    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two `migrate` runs at once (say, overlapping deploys) take turns instead of racing.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(version_table.encode())})
        context.run_migrations()
