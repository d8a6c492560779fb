"""``fupin dashboard``: run the dashboard in the foreground (``fupin up`` starts it detached)."""

from __future__ import annotations

import click

from fupin.cli import settings_from
from fupin.config import SettingsError


@click.command("dashboard")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    help="Port on loopback (default: setting dashboard_port, 0 = free).",
)
@click.pass_context
def dashboard(ctx: click.Context, port: int | None) -> None:
    """Serve the provincial dashboard (reads the marts read-only; needs a token to open)."""
    from warehouse.dashboard.server import serve

    settings = settings_from(ctx)
    if port is not None:
        settings = settings.with_(dashboard_port=port)
    try:
        serve(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
