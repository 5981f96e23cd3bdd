"""`steward-console` / `python -m services.console serve`."""

from __future__ import annotations

import typer

from services.console.config import ConsoleConfig
from services.runtime.config import ConfigError
from services.runtime.logging import configure_logging

app = typer.Typer(add_completion=False, help="Steward web console.", no_args_is_help=False, invoke_without_command=True)


@app.callback()
def main(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@app.command()
def serve() -> None:
    """Serve the console until SIGTERM/SIGINT, then finish the requests in flight and exit 0."""
    from services.console.server import ConsoleServer

    try:
        config = ConsoleConfig.from_env()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging("console", config.log_level, config.log_format)
    raise typer.Exit(ConsoleServer(config).serve_until_signalled())


if __name__ == "__main__":
    app()
