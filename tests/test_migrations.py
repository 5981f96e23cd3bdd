"""Each service's Alembic history applies cleanly, rolls back, and matches its models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from services.rules.adapters.orm import RulesBase
from services.rules.app import SPEC as RULES
from services.runtime.db import Database
from services.sync.adapters.orm import SyncBase
from services.sync.app import SPEC as SYNC
from services.users.adapters.orm import UsersBase
from services.users.app import SPEC as USERS

CASES = [(USERS, UsersBase), (RULES, RulesBase), (SYNC, SyncBase)]


@pytest.mark.parametrize(("spec", "base"), CASES, ids=[s.name for s, _ in CASES])
def test_upgrade_downgrade_upgrade(databases, spec, base):
    url = databases.url(spec.name)
    db = Database(url)
    try:
        assert spec.migrations.current(db) is None
        spec.migrations.upgrade(url)
        assert spec.migrations.is_current(db)
        assert set(base.metadata.tables) <= set(inspect(db.engine).get_table_names())
        spec.migrations.downgrade(url, "base")
        assert spec.migrations.current(db) is None
        assert not set(base.metadata.tables) & set(inspect(db.engine).get_table_names())
        spec.migrations.upgrade(url)
        assert spec.migrations.is_current(db)
    finally:
        db.dispose()


@pytest.mark.parametrize(("spec", "base"), CASES, ids=[s.name for s, _ in CASES])
def test_models_and_migrations_agree(databases, spec, base):
    """A model change without a migration (or the reverse) fails here, not in production."""
    url = databases.url(spec.name)
    spec.migrations.upgrade(url)
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "version_table": spec.migrations.version_table}
            )
            diff = compare_metadata(context, base.metadata)
        assert diff == []
    finally:
        db.dispose()


def test_migrating_twice_is_a_no_op(databases):
    url = databases.url("users")
    USERS.migrations.upgrade(url)
    USERS.migrations.upgrade(url)
    db = Database(url)
    try:
        assert USERS.migrations.current(db) == USERS.migrations.head()
    finally:
        db.dispose()
