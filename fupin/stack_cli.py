"""`fupin up`, `fupin status`, `fupin down`: the embedded stack's lifecycle from the command line.

The work is in :mod:`fupin.stack`; this module only turns settings into calls and results into
words (or JSON for scripts). In server mode docker compose owns the processes, so `up` and
`down` only say so, and `status` checks the configured Kafka and ClickHouse server.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from fupin import stack
from fupin.cli import settings_from
from fupin.heartbeat import read_json

SERVER_NOTE = (
    "server mode (FUPIN_MODE=server): Kafka, ClickHouse and the platform's services are managed by "
    "docker compose; see docs/server-mode.md ('docker compose up -d' / 'docker compose down')"
)


@click.command()
@click.option(
    "--no-warehouse", is_flag=True, help="Start only the broker and the topics, not the warehouse service."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the warehouse service to answer.",
)
@click.pass_context
def up(ctx: click.Context, no_warehouse: bool, timeout: float) -> None:
    """Start the embedded stack: broker on loopback, the platform's topics, the warehouse service."""
    settings = settings_from(ctx)
    if settings.mode == "server":
        click.echo(SERVER_NOTE)
        _ensure_server_topics(settings)
        return
    with stack.stack_lock(settings):
        running = stack.read_state(settings)
        if running and stack.process_matches(running["broker"]["pid"], stack.BROKER_MARK):
            # The broker runs: start whatever else is missing or dead, leave what runs.
            broker = running["broker"]
            try:
                healed = stack.heal_stack(settings, warehouse=not no_warehouse, timeout=timeout)
            except stack.StackError as exc:
                raise click.ClickException(str(exc)) from exc
            if not healed:
                click.echo(
                    f"already running: broker pid {broker['pid']} on {broker['bootstrap']} (nothing started)"
                )
                return
            click.echo(f"running: broker pid {broker['pid']} on {broker['bootstrap']} (left running)")
            for line in healed:
                click.echo(line)
            return
        # A stack.json whose broker is gone: clear what is left of it (a warehouse still holding chdb,
        # workers reading from the lost broker), then start it all again, the workers too.
        workers = [info for path in stack.worker_files(settings) if (info := read_json(path))]
        for line in stack.stop_stack(settings):
            click.echo(f"cleaned up a stale stack: {line}")
        try:
            state = stack.start_stack(settings, warehouse=not no_warehouse, timeout=timeout)
        except stack.StackError as exc:
            raise click.ClickException(
                f"{exc}\nnothing was left running; 'fupin up --no-warehouse' starts the broker and topics alone"
            ) from exc
        restarted = []
        for info in workers:
            try:
                restarted.append(stack.start_worker(settings, info))
            except stack.StackError as exc:
                click.echo(f"stream worker {info.get('worker')}: not restarted: {exc}", err=True)
    broker = state["broker"]
    click.echo(f"broker: pid {broker['pid']} on {broker['bootstrap']} (log {broker['log']})")
    click.echo(f"topics: {len(state['topics'])} with {state['partitions']} partition(s) each")
    wh = state["warehouse"]
    if wh:
        click.echo(f"warehouse service: pid {wh['pid']} at {wh['url']} (log {wh['log']})")
    else:
        click.echo("warehouse service: not started (--no-warehouse)")
    if state.get("dashboard"):
        click.echo(f"dashboard: pid {state['dashboard']['pid']} at {_dashboard_login(settings)}")
    for w in restarted:
        click.echo(f"stream worker {w['worker']}: pid {w['pid']} started again (log {w['log']})")
    if state.get("gateway"):
        click.echo(f"gateway: pid {state['gateway']['pid']} at {state['gateway']['url']} (log {state['gateway']['log']})")
    click.echo(f"state: {stack.stack_file(settings)}")
    if settings.broker_bootstrap:
        click.echo(
            f"note: FUPIN_BROKER_BOOTSTRAP={settings.broker_bootstrap} is set, so other commands "
            "will use that broker, not this one"
        )


def _dashboard_login(settings) -> str:
    from warehouse.dashboard.server import login_url

    return login_url(settings) or "(not answering yet)"


def _ensure_server_topics(settings) -> None:
    """Server mode: create the platform's topics on the configured Kafka (idempotent).

    This is what the compose file's one-shot `topics` service runs; processes stay compose's job.
    """
    from fupin.broker import create_topics
    from fupin.topics import all_topics

    bootstrap_servers = settings.require("broker_bootstrap")
    try:
        created = create_topics(bootstrap_servers, all_topics(settings), settings.topic_partitions)
    except Exception as exc:  # kafka-python raises many kinds; all mean "Kafka not usable"
        raise click.ClickException(
            f"could not create the topics on Kafka at {bootstrap_servers}: {exc}"
        ) from exc
    click.echo(
        f"topics on {bootstrap_servers}: {len(created)} created, "
        f"{len(all_topics(settings)) - len(created)} already there"
    )


@click.command()
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait after SIGTERM before SIGKILL.",
)
@click.pass_context
def down(ctx: click.Context, timeout: float) -> None:
    """Stop every process of the stack: stream workers, warehouse service, broker (state and pid files)."""
    settings = settings_from(ctx)
    if settings.mode == "server":
        click.echo(SERVER_NOTE)
        return
    with stack.stack_lock(settings):
        stopped = stack.stop_stack(settings, timeout=timeout)
    if not stopped:
        click.echo("nothing to stop: no embedded stack runs")
        return
    for line in stopped:
        click.echo(line)


_LANDED_SQL = """
SELECT
    (SELECT count() FROM {db}.events_latest) AS events,
    (SELECT uniqExact(household_id) FROM {db}.events_latest) AS households,
    (SELECT uniqExact(household_id) FROM {db}.household_status_latest) AS with_status,
    (SELECT count() FROM {db}.dead_letters_latest) AS dead_letters,
    (SELECT count() FROM {db}.alerts FINAL) AS alert_episodes
"""


def published_here(settings) -> int:
    """Events this data directory's producers delivered to the running broker (their ledgers)."""
    from fupin.topics import input_topics
    from producers.importers import ledger_for

    return sum(len(ledger_for(settings, topic).ids) for topic in input_topics(settings))


def consumer_lag(settings) -> dict[str, Any]:
    """Each consumer group's lag from what the warehouse landed (the broker's end offsets are wrong).

    The sink's group: events published from here and not landed yet. The stream workers' group:
    households with landed events and no live status yet. Counts are deduplicated (latest views).
    """
    from warehouse.client import WarehouseError, open_reader

    try:
        reader = open_reader(settings)
        try:
            ((events, households, with_status, dead, episodes),) = reader.query(
                _LANDED_SQL.format(db=settings.clickhouse_database)
            )
        finally:
            reader.close()
    except (WarehouseError, OSError) as exc:
        return {"error": str(exc).splitlines()[0][:200]}
    published = published_here(settings)
    return {
        "events_landed": events,
        "dead_letters": dead,
        "alert_episodes": episodes,
        "published_here": published,
        "sink_lag_events": max(0, published - events),
        "households_with_events": households,
        "households_with_status": with_status,
        "stream_lag_households": max(0, households - with_status),
    }


def _render_lag(lag: dict[str, Any]) -> list[str]:
    if "error" in lag:
        return [f"consumer lag: unknown ({lag['error']})"]
    return [
        "consumer lag (from the warehouse's landed counts, deduplicated):",
        f"  sink            {lag['sink_lag_events']:,} events not landed "
        f"({lag['events_landed']:,} landed of {lag['published_here']:,} published from here; "
        f"{lag['dead_letters']:,} dead letters)",
        f"  stream workers  {lag['stream_lag_households']:,} households without a live status "
        f"({lag['households_with_status']:,} of {lag['households_with_events']:,})",
    ]


def _wait_caught_up(settings, timeout: float) -> dict[str, Any]:
    """Poll the lag until both groups are caught up and the counts stay still for 10 s."""
    from fupin.progress import stages

    deadline = time.monotonic() + timeout
    last, still_since = None, time.monotonic()
    with stages("catching up") as bar:
        while True:
            lag = consumer_lag(settings)
            if "error" not in lag:
                bar.stage(
                    f"sink lag {lag['sink_lag_events']:,} events, stream lag "
                    f"{lag['stream_lag_households']:,} households"
                )
                # the alert episodes too: they land beside the statuses, and 'fupin alerts' reads them
                now = (
                    lag["events_landed"],
                    lag["households_with_status"],
                    lag["dead_letters"],
                    lag["alert_episodes"],
                )
                if now != last:
                    last, still_since = now, time.monotonic()
                elif (
                    lag["sink_lag_events"] == 0
                    and lag["stream_lag_households"] == 0
                    and time.monotonic() - still_since >= 10
                ):
                    return lag
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"not caught up within {timeout:.0f}s: {json.dumps(lag)}; 'fupin status' says which "
                    "process is behind"
                )
            time.sleep(3)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=None,
    help="First wait up to this many seconds until the sink and the stream workers have caught up.",
)
@click.pass_context
def status(ctx: click.Context, as_json: bool, wait_s: float | None) -> None:
    """Report the broker, the topics, the warehouse, each process and each consumer group's lag;
    exit 1 when something is stuck."""
    settings = settings_from(ctx)
    if wait_s is not None and settings.mode == "embedded":
        _wait_caught_up(settings, wait_s)
    report = stack.server_status(settings) if settings.mode == "server" else stack.embedded_status(settings)
    if report.get("warehouse") and report["mode"] == "embedded":
        report["lag"] = lag = consumer_lag(settings)
        if "error" not in lag:
            # what landed, deduplicated (latest views): a redelivered copy is one event, not two
            for c in report.get("components") or []:
                if c["component"] == "sink" and c.get("landed"):
                    c["landed"].update(events=lag["events_landed"], dead_letters=lag["dead_letters"])
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(_render(report))
    if not report["running"]:
        ctx.exit(1)


def _render(report: dict[str, Any]) -> str:
    lines = [f"mode: {report['mode']}"]
    broker = report.get("broker")
    if broker is None:
        lines.append(f"not running: {report['problem']}")
        return "\n".join(lines)
    if report["mode"] == "embedded":
        alive = "alive" if broker["alive"] else "gone"
        answers = "answers" if broker["answers"] else "does not answer"
        lines.append(f"broker: pid {broker['pid']} {alive}, {answers} on {broker['bootstrap']}")
        lines.append(f"started at: {report.get('started_at')}")
    else:
        lines.append(f"kafka: {broker['bootstrap']} {'answers' if broker['answers'] else 'does not answer'}")
    topics = report.get("topics") or []
    lines.append(f"topics: {len(topics)}")
    lines.extend(f"  {t['name']}  partitions={t['partitions']}" for t in topics)
    if report.get("missing_topics"):
        lines.append(f"missing topics: {', '.join(report['missing_topics'])}")
    wh = report.get("warehouse")
    if report["mode"] == "server":
        where = f"{wh['host']}:{wh['port']} database {wh['database']}"
        if "error" in wh:
            lines.append(f"clickhouse: {where}: {wh['error']}")
        else:
            lines.append(f"clickhouse: {where}, version {wh['version']}")
            lines.extend(f"  {name}  rows={rows}" for name, rows in wh["tables"].items())
    elif wh is None:
        lines.append("warehouse service: not started (--no-warehouse)")
    elif not wh["alive"]:
        lines.append(f"warehouse service: pid {wh['pid']} gone")
    elif "error" in wh:
        lines.append(f"warehouse service: pid {wh['pid']} at {wh['url']} does not answer: {wh['error']}")
    else:
        lines.append(f"warehouse service: pid {wh['pid']} at {wh['url']}")
        lines.extend(_render_health(wh["health"]))
    if report.get("dashboard_url"):
        lines.append(f"dashboard: {report['dashboard_url']}")
    components = report.get("components") or []
    if components:
        lines.append("components:")
        lines.extend(_render_component(c) for c in components)
    if report.get("gateway_url"):
        lines.append(f"gateway: {report['gateway_url']}")
    if report.get("lag"):
        lines.extend(_render_lag(report["lag"]))
    lines.append("running" if report["running"] else f"not running properly: {report['problem']}")
    return "\n".join(lines)


def _render_component(c: dict[str, Any]) -> str:
    """One line a process: its state (with the reason), then what it has done."""
    line = f"  {c['component']:<24} {c['state']}" + (f": {c['reason']}" if c.get("reason") else "")
    line += f"  pid {c['pid']}"
    if c.get("pending"):
        line += f"  pending={c['pending']}"
    if c.get("last_progress_at"):
        line += f"  last progress {max(0.0, time.time() - c['last_progress_at']):.0f} s ago"
    counts = {**(c.get("counts") or {}), **{f"landed_{k}": v for k, v in (c.get("landed") or {}).items()}}
    if counts:
        line += "  " + " ".join(f"{k}={v}" for k, v in counts.items() if v is not None)
    return line


def _render_health(health: Any) -> list[str]:
    """The service's /health document, one line per section (its shape belongs to the service)."""
    if not isinstance(health, dict):
        return [f"  health: {json.dumps(health, default=str)}"]

    def flat(value: Any) -> str:
        return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)

    scalars = {k: v for k, v in health.items() if not isinstance(v, dict)}
    lines = ["  health: " + " ".join(f"{k}={flat(v)}" for k, v in scalars.items())]
    for key, value in health.items():
        if isinstance(value, dict):
            lines.append(f"  {key}: " + " ".join(f"{k}={flat(v)}" for k, v in value.items()))
    return lines
