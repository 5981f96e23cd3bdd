"""The command line every service shares: `serve` (default) and `migrate`."""

from __future__ import annotations

import os
import time

import typer

from services.runtime import tracing
from services.runtime.config import ConfigError, ServiceSettings, database_url, secrets_keys
from services.runtime.db import Database
from services.runtime.logging import configure_logging, get_logger
from services.runtime.migrations import SchemaState
from services.runtime.sealing import Keyring
from services.runtime.server import ServiceRuntime, ServiceSpec

log = get_logger("steward.runtime.cli")


def make_service_cli(spec: ServiceSpec) -> typer.Typer:
    app = typer.Typer(
        add_completion=False, help=f"Steward {spec.name} service.", no_args_is_help=False, invoke_without_command=True
    )

    @app.callback()
    def main(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            ctx.invoke(serve)

    @app.command()
    def serve() -> None:
        """Serve gRPC until SIGTERM/SIGINT, then drain and exit 0."""
        try:
            settings = ServiceSettings.from_env(spec.name)
            tracing.configure(spec.name)  # OTEL_*: a bad value stops the start here, plainly
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        configure_logging(spec.name, settings.log_level, settings.log_format)
        try:
            code = ServiceRuntime(spec, settings).serve_until_signalled()
        except ConfigError as exc:  # a service's own settings, read as it starts
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        raise typer.Exit(code)

    @app.command()
    def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
        """Upgrade this service's database schema (the Kubernetes migration Job runs this)."""
        configure_logging(spec.name, os.environ.get("STEWARD_LOG_LEVEL", "info"))
        url = database_url(spec.name)
        db = Database(url)
        try:
            if spec.migrations.schema_state(db) is SchemaState.AHEAD:
                # Rolling back to this build: the newer schema stays (migrations are expand/
                # contract), so there is nothing to do and the Job must not fail.
                typer.echo(f"{spec.name}: schema is ahead of this build; nothing to do", err=True)
                return
            spec.migrations.upgrade(url, revision)
            current = spec.migrations.current(db)
        finally:
            db.dispose()
        wanted = spec.migrations.head() if revision == "head" else revision
        if current != wanted:  # alembic's upgrade to an older revision silently does nothing
            typer.echo(f"{spec.name}: database at {current}, not {wanted}: migrate only upgrades", err=True)
            raise typer.Exit(1)
        typer.echo(f"{spec.name}: database at {current}", err=True)

    @app.command("reseal-secrets")
    def reseal_secrets() -> None:
        """Seal every stored secret again with the first key of STEWARD_SECRETS_KEYS: after a
        new key was put first (and the pods rolled), so that the old key can be dropped."""
        configure_logging(spec.name, os.environ.get("STEWARD_LOG_LEVEL", "info"))
        if spec.reseal is None:
            typer.echo(f"{spec.name}: keeps no secrets", err=True)
            return
        try:
            keys = secrets_keys()
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if not keys:
            typer.echo("STEWARD_SECRETS_KEYS is not set: nothing to seal with", err=True)
            raise typer.Exit(2)
        db = Database(database_url(spec.name), Keyring.from_text(keys))
        try:
            count = spec.reseal(db)
        finally:
            db.dispose()
        typer.echo(f"{spec.name}: {count} record(s) sealed with the first key", err=True)

    @app.command("await-schema")
    def await_schema(
        timeout: float = typer.Option(600.0, help="Seconds to wait before giving up (exit 1)."),
        interval: float = typer.Option(2.0, help="Seconds between checks."),
    ) -> None:
        """Wait until the database schema is at this build's head or newer (an init container
        runs this, so that new pods start only after the migration Job)."""
        configure_logging(spec.name, os.environ.get("STEWARD_LOG_LEVEL", "info"))
        db = Database(database_url(spec.name))
        deadline = time.monotonic() + timeout
        try:
            while True:
                state: SchemaState | None = None
                try:
                    state = spec.migrations.schema_state(db)
                    detail = f"schema {state.value}"
                except Exception as exc:  # not reachable yet: that is what waiting is for
                    detail = f"{type(exc).__name__}: {exc}"
                if state is not None and state is not SchemaState.BEHIND:
                    typer.echo(f"{spec.name}: {detail} (this build: {spec.migrations.head()})", err=True)
                    return
                if time.monotonic() >= deadline:
                    typer.echo(f"{spec.name}: gave up after {timeout:g}s: {detail}", err=True)
                    raise typer.Exit(1)
                log.info("awaiting_schema", detail=detail, head=spec.migrations.head())
                time.sleep(interval)
        finally:
            db.dispose()

    return app
