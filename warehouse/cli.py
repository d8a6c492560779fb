"""Commands: ``fupin warehouse migrate|serve|query``, ``fupin sink``, ``fupin rebuild``."""

from __future__ import annotations

import signal
import sys
import threading
import time

import click

from fupin.cli import settings_from


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def warehouse() -> None:
    """Warehouse administration: migrations, the embedded service, queries."""


@warehouse.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the DDL migrations not yet applied (idempotent: running it again changes nothing)."""
    from warehouse.client import WarehouseError, connect
    from warehouse.migrate import migrate as run_migrate
    from warehouse.service import run_job

    settings = settings_from(ctx)
    try:
        from fupin.stack import service_url

        if service_url(settings):
            ran = run_job(settings, "migrate")["applied"]
        else:
            wh = connect(settings)
            try:
                ran = run_migrate(wh)
            finally:
                wh.close()
    except WarehouseError as exc:
        raise _fail(exc) from exc
    if ran:
        click.echo(f"applied {len(ran)} migration(s) to {settings.clickhouse_database}: {', '.join(ran)}")
    else:
        click.echo(f"{settings.clickhouse_database}: schema up to date")


@warehouse.command()
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "tsv", "json"]), default="table")
@click.pass_context
def query(ctx: click.Context, sql: str, fmt: str) -> None:
    """Run one read-only query (through the service when it runs) and print the result."""
    import orjson

    from warehouse.client import WarehouseError, open_reader

    settings = settings_from(ctx)
    try:
        wh = open_reader(settings)
        try:
            columns, rows = wh.query_columns(sql)
        finally:
            wh.close()
    except (WarehouseError, ValueError) as exc:
        raise _fail(exc) from exc
    if fmt == "json":
        click.echo(orjson.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str).decode())
    elif fmt == "tsv":
        click.echo("\t".join(columns))
        for r in rows:
            click.echo("\t".join("" if v is None else str(v) for v in r))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns)
        for r in rows:
            table.add_row(*("NULL" if v is None else str(v) for v in r))
        Console().print(table)


@warehouse.command()
@click.option("--no-sink", is_flag=True, help="Serve the API without consuming the topics.")
@click.pass_context
def serve(ctx: click.Context, no_sink: bool) -> None:
    """Own the embedded warehouse: migrations, reference data, the sink, and the local API."""
    from warehouse.service import serve as run_serve

    run_serve(settings_from(ctx), sink=not no_sink)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@click.command()
@click.option("--batch-size", default=20_000, show_default=True, help="Messages per insert batch at most.")
@click.option("--batch-seconds", default=1.0, show_default=True, help="Seconds a batch waits at most.")
@click.option("--every", default=2.0, show_default=True, help="Seconds between progress lines.")
@click.option(
    "--stop-when-idle",
    type=float,
    default=None,
    help="Drain mode: stop cleanly after this many seconds without a message.",
)
@click.pass_context
def sink(
    ctx: click.Context,
    batch_size: int,
    batch_seconds: float,
    every: float,
    stop_when_idle: float | None,
) -> None:
    """Land every topic's events in the warehouse, with a progress display (Ctrl-C stops cleanly)."""
    from fupin.auth import auth_headers
    from fupin.config import SettingsError
    from fupin.stack import bootstrap, service_url
    from warehouse.client import WarehouseError, connect, http_get_json
    from warehouse.migrate import migrate as run_migrate
    from warehouse.sink import Sink

    settings = settings_from(ctx)
    stop = threading.Event()
    _stop_on_signals(stop)
    url = service_url(settings)
    if url:
        click.echo(f"the warehouse service at {url} runs the sink; showing its progress (Ctrl-C to leave)")
        while not stop.is_set():
            try:
                health = http_get_json(url + "/health", headers=auth_headers(settings))
            except WarehouseError as exc:
                raise _fail(exc) from exc
            _print_progress(health.get("sink") or {})
            stop.wait(every)
        return
    try:
        servers = bootstrap(settings)
        wh = connect(settings)
    except (SettingsError, WarehouseError) as exc:
        raise _fail(exc) from exc
    try:
        run_migrate(wh)
        s = Sink(
            wh,
            settings,
            servers,
            batch_size=batch_size,
            batch_seconds=batch_seconds,
            idle_exit=stop_when_idle,
        )
        s.stop_event = stop
        thread = threading.Thread(target=s.run, name="sink", daemon=True)
        thread.start()
        click.echo(f"sink: reading {servers} into {settings.clickhouse_database} (group {s.group_id})")
        while thread.is_alive():
            thread.join(every)
            _print_progress(s.progress.as_dict())
        if s.progress.last_error:
            click.echo(f"sink: stopped with an unwritten batch: {s.progress.last_error}", err=True)
            sys.exit(1)
    finally:
        wh.close()


def _print_progress(p: dict) -> None:
    offsets = p.get("committed") or {}
    last = ", ".join(f"{k}={v}" for k, v in sorted(offsets.items())[-4:])
    rows = p.get("rows") or {}
    state = (
        "PAUSED (" + str(p.get("paused_reason") or p.get("last_error")) + ")"
        if p.get("paused")
        else "running"
    )
    click.echo(
        f"sink: {state} messages={p.get('messages', 0)} rows/s={p.get('rows_per_second', 0)} "
        f"batches={p.get('batches', 0)} events={rows.get('events', 0)} "
        f"status={rows.get('household_status_history', 0)} alerts={rows.get('alerts', 0)} "
        f"dead_letters={rows.get('dead_letters', 0)} last offsets: {last or '-'}",
        err=False,
    )
    sys.stdout.flush()


@click.command()
@click.option("--check", is_flag=True, help="Compare statuses and episodes with a fold of the event store.")
@click.option("--since", default=None, help="With --check: the rebuild start (default: the latest rebuild).")
@click.option("--sample", default=10, show_default=True, help="With --check: differences to show.")
@click.pass_context
def rebuild(ctx: click.Context, check: bool, since: str | None, sample: int) -> None:
    """Replay the event store into fresh topics (after a broker loss); --check compares statuses.

    After a broker loss: stop the stream workers and clear their state (it was built from topics
    that are gone), 'fupin up', 'fupin rebuild', start the workers, then 'fupin rebuild --check'.
    """
    import orjson

    from fupin.config import SettingsError
    from warehouse.client import WarehouseError
    from warehouse.service import run_job

    settings = settings_from(ctx)
    if not check and _live_stream_workers(settings):
        click.echo(
            "warning: stream workers are running; a worker whose tables survived the broker loss treats "
            "the replay as duplicates. For a rebuild, stop them and clear their state first.",
            err=True,
        )
    try:
        if check:
            result = run_job(settings, "rebuild-check", since=since, sample=sample)
        else:
            from fupin.progress import follow_job, job_log

            t0 = time.monotonic()
            result = follow_job(lambda: run_job(settings, "rebuild"), job_log(settings.data_dir, "rebuild"), "rebuild")
            result["seconds"] = round(time.monotonic() - t0, 1)
    except (WarehouseError, SettingsError) as exc:
        raise _fail(exc) from exc
    if not check:
        click.echo(
            f"rebuild {result['run_id']}: replayed {result['events']} events of {result['households']} "
            f"households into the department topics ({result['topics']} topics created) in "
            f"{result['seconds']}s; {result['ghosts_retracted']} alert episodes the fold does not produce "
            "retracted; run the stream workers, then 'fupin rebuild --check'"
        )
        return
    click.echo(
        f"rebuild check (since {result['since']}): {result['compared']} households compared, "
        f"{result['differences']} differ, {result['missing']} not rebuilt yet; "
        f"{result['episodes']} alert episodes ({result['open_episodes']} open) compared, "
        f"{result['episode_differences']} differ"
    )
    for d in result["sample"]:
        click.echo("  " + orjson.dumps(d, default=str).decode())
    if result["differences"] or result["missing"] or result["episode_differences"]:
        sys.exit(1)


def _live_stream_workers(settings) -> list[int]:
    """Pids of stream workers that recorded themselves in <data_dir>/stream-*.json and still run."""
    import json
    from pathlib import Path

    from fupin.stack import pid_alive

    pids = []
    for path in Path(settings.data_dir).glob("stream-*.json"):
        try:
            pid = json.loads(path.read_text()).get("pid")
        except (OSError, ValueError):
            continue
        if pid_alive(pid):
            pids.append(pid)
    return pids
