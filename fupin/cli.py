"""The one command line: ``fupin``.

Each component defines its own commands next to its code; this module only registers them,
importing a component when its command runs, so that ``fupin --help`` stays fast and a
command never pays for Faust, dbt or Great Expectations unless it uses them.
"""

from __future__ import annotations

import importlib
import sys

import click

from fupin.config import SettingsError, load_settings

#: name -> ("module:attribute", short help). One row per top-level command or group.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("fupin.stack_cli:up", "Start the embedded stack: broker, topics, warehouse service."),
    "down": ("fupin.stack_cli:down", "Stop what 'fupin up' started."),
    "status": ("fupin.stack_cli:status", "Report the broker, topics and warehouse."),
    "demo": ("fupin.demo:demo", "Run the whole platform end to end on the embedded stack."),
    "publish": ("producers.cli:publish", "Publish a department's file (CSV, JSONL, XLSX) to its topic."),
    "gateway": ("producers.gateway.cli:gateway", "HTTP gateway: departments POST events; tokens."),
    "simulate": ("producers.cli:simulate", "Write (or publish) a synthetic county's department files."),
    "reference": ("producers.cli:reference", "Reference data: regions, population, lines."),
    "stream": ("streams.cli:stream", "Run a stream worker: household status and alerts."),
    "household": ("streams.cli:household", "Show or explain one household's live status."),
    "households": ("streams.cli:households", "List households by region, status and monitoring."),
    "alerts": ("streams.cli:alerts", "List alert episodes: open, resolved or all."),
    "warehouse": ("warehouse.cli:warehouse", "Warehouse administration (migrations, service, queries)."),
    "sink": ("warehouse.cli:sink", "Land every topic's events in the warehouse."),
    "rebuild": ("warehouse.cli:rebuild", "Replay the event store into fresh topics; --check compares."),
    "build": ("fupin.build:build", "dbt build, then the data-quality checkpoint."),
    "docs": ("fupin.docs_cli:docs", "Serve the dbt docs and the Data Docs on loopback, offline."),
    "check": ("expectations.cli:check", "Run the data-quality checkpoint (Great Expectations)."),
    "indicators": ("fupin.build:indicators", "Print census, assessment or consistency indicators."),
    "token": ("fupin.token_cli:token", "Create, list and revoke access tokens of the platform's roles."),
    "dashboard": ("warehouse.dashboard.cli:dashboard", "Serve the provincial dashboard in the browser."),
    "privacy": ("fupin.scan:privacy_cli", "Privacy: scan topics, warehouse, logs and files for raw identifiers."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, short = COMMANDS[cmd_name]
        if ctx.resilient_parsing or "--help" in sys.argv[1:2]:
            # Listing commands: show the short help without importing the component.
            return click.Command(cmd_name, help=short, short_help=short)
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fupin")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Fupin (扶贫): household status, risk alerts and poverty indicators from department events."""
    ctx.ensure_object(dict)


def settings_from(ctx: click.Context):
    """The settings for a command, loaded once per invocation; a bad setting ends the command cleanly."""
    obj = ctx.ensure_object(dict)
    if "settings" not in obj:
        try:
            obj["settings"] = load_settings()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    return obj["settings"]


def main() -> None:
    cli(prog_name="fupin")


if __name__ == "__main__":
    main()
