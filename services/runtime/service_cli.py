"""The command line every service shares: `serve` (default) and `migrate`."""

from __future__ import annotations

import os
import sys

import typer

from services.runtime.config import ConfigError, ServiceSettings, database_url
from services.runtime.logging import configure_logging
from services.runtime.server import ServiceRuntime, ServiceSpec


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
        except ConfigError as exc:
            typer.echo(f"configuration error: {exc}", err=True)
            raise typer.Exit(2) from exc
        configure_logging(spec.name, settings.log_level, settings.log_format)
        raise typer.Exit(ServiceRuntime(spec, settings).serve_until_signalled())

    @app.command()
    def migrate(revision: str = typer.Argument("head", help="Target revision.")) -> None:
        """Upgrade this service's database schema (the Kubernetes migration Job runs this)."""
        configure_logging(spec.name, os.environ.get("STEWARD_LOG_LEVEL", "info"))
        spec.migrations.upgrade(database_url(spec.name), revision)
        typer.echo(
            f"{spec.name}: database at {spec.migrations.head() if revision == 'head' else revision}", file=sys.stderr
        )

    return app
