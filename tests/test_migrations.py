"""Each service's Alembic history applies cleanly, rolls back, and matches its models."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from services.rules.adapters.orm import RulesBase
from services.rules.app import SPEC as RULES
from services.runtime.db import Database
from services.sync.adapters.orm import SyncBase
from services.sync.app import SPEC as SYNC
from services.sync.domain.model import JobType
from services.sync.unit_of_work import SyncUnitOfWork
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


def test_an_etm_job_saved_before_connectors_reads_as_a_salesforce_etm_job(databases):
    """Migration 0003 (expand): the settings move to jobs.settings, and the row keeps what the
    release before reads (type ETM_ACCOUNT_ASSIGNMENT, jobs.etm) while it may still run."""
    url = databases.url("sync")
    SYNC.migrations.upgrade(url, "0002")
    settings = {
        "object": "AccountUserTerritory2View",
        "fields": ["AccountId", "User.Email", "User.Name", "RoleInTerritory2", "LastModifiedDate"],
        "query_filter": "RoleInTerritory2 = 'CSM'",
        "mapping": {
            "account_id": "AccountId",
            "user_email": "User.Email",
            "user_name": "User.Name",
            "role": "RoleInTerritory2",
        },
        "role_values": {"CSM": "roles/success_manager"},
        "removals": "MIRROR",
    }
    db = Database(url)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO jobs (id, display_name, type, state, connection_id, schedule, create_time,"
                    " update_time, version, etm, last_run_id)"
                    " VALUES ('j1', 'Nightly', 'ETM_ACCOUNT_ASSIGNMENT', 'ACTIVE', 'c1', '', :t, :t, 1, :etm, '')"
                ),
                {"t": "2026-01-01 00:00:00", "etm": json.dumps(settings)},
            )
        SYNC.migrations.upgrade(url)
        with SyncUnitOfWork(db) as uow:
            job = uow.jobs.get("j1")
            assert job is not None
            assert (job.type, job.connector, job.settings) == (JobType.CONNECTOR, "salesforce-etm", settings)
            job.display_name = "Nightly ETM"
            uow.jobs.put(job)
            uow.commit()
        with db.engine.connect() as conn:
            row = conn.execute(text("SELECT type, etm, settings FROM jobs WHERE id = 'j1'")).one()
        stored_etm = row.etm if isinstance(row.etm, dict) else json.loads(row.etm)
        assert (row.type, stored_etm) == ("ETM_ACCOUNT_ASSIGNMENT", settings)
    finally:
        db.dispose()
