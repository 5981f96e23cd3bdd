"""The `steward` command line: health, tokens, migrations and the local dev runner."""

from __future__ import annotations

import importlib
import json
import os

import typer
from rich.console import Console
from rich.table import Table

from services.cli.assignments_cmd import assign, assignments, events_app, roles_app, team, unassign
from services.cli.client import DEV_ADMIN_EMAIL
from services.cli.health_probe import probe
from services.cli.plays_cmd import accounts_app, plays_app
from services.cli.secrets import jwt_secret
from services.cli.sync_cmd import sync_app
from services.cli.users_cmd import teams_app, users_app
from services.runtime.auth import mint_token
from services.runtime.config import database_url, service_address
from services.users.service_layer.bootstrap import bootstrap_admin_id

SERVICES = ("users", "rules", "sync")
app = typer.Typer(add_completion=False, no_args_is_help=True, help="Steward: who owns which customer account.")
app.add_typer(users_app, name="users")
app.add_typer(teams_app, name="teams")
app.add_typer(roles_app, name="roles")
app.add_typer(events_app, name="events")
app.add_typer(plays_app, name="plays")
app.add_typer(accounts_app, name="accounts")
app.add_typer(sync_app, name="sync")
app.command()(assign)
app.command()(unassign)
app.command()(team)
app.command()(assignments)
console = Console()


@app.command()
def health(
    service: list[str] = typer.Option(list(SERVICES), "--service", "-s", help="Service(s) to check."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    timeout: float = typer.Option(2.0, help="Seconds to wait for each service."),
) -> None:
    """Show each service's gRPC health (exit 1 unless all are SERVING)."""
    results = {name: probe(service_address(name), timeout) for name in service}
    if as_json:
        print(json.dumps({n: {"address": service_address(n), "status": s} for n, s in results.items()}))
    else:
        table = Table("service", "address", "status")
        for name, status in results.items():
            colour = "green" if status == "SERVING" else "red"
            table.add_row(name, service_address(name), f"[{colour}]{status}[/{colour}]")
        console.print(table)
    if any(s != "SERVING" for s in results.values()):
        raise typer.Exit(1)


@app.command()
def token(
    subject: str = typer.Option(
        "", "--sub", help="User id, or service:<name> for a service account. Default: the bootstrap admin."
    ),
    role: list[str] = typer.Option([], "--role", help="Role claim(s) of a service account, e.g. admin."),
    scope: list[str] = typer.Option([], "--scope", help="Scope claim(s); repeat for several."),
    ttl: int = typer.Option(3600, help="Lifetime in seconds."),
) -> None:
    """Mint a bearer token signed with STEWARD_JWT_SECRET (or the dev secret in ./var)."""
    secret = jwt_secret()
    if not secret:
        console.print("[red]set STEWARD_JWT_SECRET (or run `make run` once to create a dev secret)[/red]")
        raise typer.Exit(2)
    if not subject:
        subject = bootstrap_admin_id(os.environ.get("STEWARD_BOOTSTRAP_ADMIN_EMAIL") or DEV_ADMIN_EMAIL)
    print(mint_token(secret, subject, roles=role, scopes=scope, ttl_seconds=ttl))


@app.command()
def migrate(service: list[str] = typer.Argument(None, help="Services to migrate (default: all).")) -> None:
    """Upgrade each service's database to the newest schema."""
    for name in service or SERVICES:
        spec = importlib.import_module(f"services.{name}.app").SPEC
        spec.migrations.upgrade(database_url(name))
        console.print(f"{name}: at {spec.migrations.head()}")


@app.command()
def dev() -> None:
    """Run users, rules and sync together on their default ports (what `make run` does)."""
    from services.cli.dev import run_all

    raise typer.Exit(run_all())


if __name__ == "__main__":
    app()
