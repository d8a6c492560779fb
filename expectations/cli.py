"""``fupin check``: run the data-quality checkpoint and print its report; exit 1 on a critical failure."""

from __future__ import annotations

import json
from typing import Any

import click

from fupin.cli import settings_from


def _run(settings) -> dict[str, Any]:
    """The checkpoint result: run by the warehouse service when it runs (it owns chdb), else here."""
    from warehouse.service import run_job

    return run_job(settings, "check")


@click.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of the report.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> None:
    """Run the data-quality checkpoint (Great Expectations) over the event store, dead letters and
    marts; write Data Docs (HTML) under <data_dir>/data_docs. Exits 1 when a critical expectation fails."""
    settings = settings_from(ctx)
    try:
        result = _run(settings)
    except click.ClickException:
        raise
    except Exception as exc:  # the warehouse refused, or is not set up: say so, no traceback
        raise click.ClickException(f"the checkpoint could not run: {exc}") from exc
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        from expectations.report import format_report

        click.echo(format_report(result))
    if not result["success"]:
        ctx.exit(1)
