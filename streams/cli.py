"""``fupin stream`` runs a worker; ``fupin household show|explain`` ask the live ones; ``fupin
households`` and ``fupin alerts`` read what the sink landed (status documents, alert episodes).

Each running worker records its pid and web address in ``<data_dir>/stream-<worker>.json``.
A household lives on the worker that owns its partition, so the queries ask every live worker
and take the one that holds it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import click

from fupin.cli import settings_from
from fupin.config import Settings, SettingsError
from fupin.heartbeat import PidFile, beat
from fupin.stack import pid_alive

#: A stop signal ends a worker within this many seconds (`fupin down` waits 10 before SIGKILL).
STOP_GRACE = 7.0
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def live_workers(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for path in sorted(Path(settings.data_dir).glob("stream-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(info.get("pid")):
            out.append(info)
    return out


def _get(settings: Settings, url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """GET a worker's view with the CLI's credential (fupin.auth.auth_headers)."""
    from fupin.auth import auth_headers

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=auth_headers(settings)), timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return 0, {"error": str(exc)}


def _workers_or_fail(settings: Settings) -> list[dict[str, Any]]:
    workers = live_workers(settings)
    if not workers:
        raise click.ClickException(
            f"no stream worker runs (no live {Path(settings.data_dir)}/stream-*.json): start 'fupin stream'"
        )
    return workers


def query_household(settings: Settings, hid: str, explain: bool = False) -> dict[str, Any] | None:
    suffix = "/explain" if explain else ""
    for info in _workers_or_fail(settings):
        status, body = _get(settings, f"{info['url']}/household/{hid}{suffix}")
        if status == 200:
            return body
    return None


def query_open_alerts(settings: Settings) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for info in _workers_or_fail(settings):
        status, body = _get(settings, f"{info['url']}/alerts")
        if status == 200:
            rows.extend(body["open"])
    return sorted(rows, key=lambda r: (r["household_id"], r["rule"]))


def query_households(settings: Settings) -> list[dict[str, Any]]:
    docs: dict[str, dict] = {}
    for info in _workers_or_fail(settings):
        status, body = _get(settings, f"{info['url']}/households", timeout=60)
        if status == 200:
            for d in body["households"]:
                docs[d["household_id"]] = d
    return [docs[k] for k in sorted(docs)]


@click.command()
@click.option("--worker", default="1", show_default=True, help="Worker name: its data dir and state file.")
@click.option(
    "--web-port", type=int, default=0, help="Port of the live-query API on 127.0.0.1 (0: a free one)."
)
@click.option(
    "--batch",
    type=int,
    default=5000,
    show_default=True,
    help="Messages folded together at most (each stands for one partition's fetched records).",
)
@click.option("--loglevel", default="warning", show_default=True)
@click.pass_context
def stream(ctx: click.Context, worker: str, web_port: int, batch: int, loglevel: str) -> None:
    """Run a stream worker: household status and alerts. Several workers share the partitions."""
    # First, before any thread starts (threads inherit the mask): SIGTERM and SIGINT go to one
    # watcher thread only, which stops the worker within STOP_GRACE seconds whatever it is doing.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    from fupin.broker import free_port
    from fupin.stack import bootstrap

    settings = settings_from(ctx)
    try:
        servers = bootstrap(settings)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    import faust

    from fupin.compat import faust as faust_compat
    from streams.app import create_app, forget_if_broker_changed, worker_file

    if forget_if_broker_changed(settings, worker, servers):
        click.echo(
            f"stream worker {worker}: the broker is not the one this worker's table was built "
            "against (a broker loss?): local table cleared; it is rebuilt from the topics",
            err=True,
        )
    port = web_port or free_port()
    app = create_app(settings, bootstrap=servers, worker=worker, web_port=port, batch_max=batch)
    # argv: how `fupin up` starts this worker again should it die.
    pidfile = PidFile(
        worker_file(settings, worker), worker=worker, url=f"http://127.0.0.1:{port}", argv=sys.argv[1:]
    )
    health, counters, timing = app.fupin_health, app.fupin_counters, app.fupin_timing
    stopped = threading.Event()

    def write_beat() -> None:
        h = health
        pidfile.write(
            beat(h["state"], h["reason"], h["pending"], h["last_progress_at"], h["caught_up_at"], **counters),
            updated_at=h["loop_at"],  # the event loop's last turn: a frozen loop goes stale
            # Where the fold's time goes, read from this file by bench/streams.py: asking the worker's
            # web views instead would take turns of the event loop the fold is being measured on.
            timing=dict(timing),
        )

    def beat_forever() -> None:
        while not stopped.wait(1.0):
            write_beat()

    write_beat()
    click.echo(
        f"stream worker {worker}: pid {os.getpid()}, live queries on http://127.0.0.1:{port}", err=True
    )
    gc.freeze()  # what startup built lives as long as the worker: keep it out of every collection
    faust_worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)

    def on_stop_signal() -> None:
        sig = signal.sigwait(STOP_SIGNALS)
        health["state"], health["reason"] = "stopping", f"{signal.Signals(sig).name} received"
        write_beat()
        # Faust's own clean stop first; then, as after a crash (outputs are at least once, the
        # table is restored from its changelog), the process ends whatever it is waiting for.
        faust_compat.request_stop(faust_worker)
        time.sleep(STOP_GRACE)  # a daemon thread: this runs on while the interpreter waits for others
        click.echo(
            f"stream worker {worker}: not ended {STOP_GRACE:.0f} s after the signal: exiting", err=True
        )
        pidfile.remove()
        os._exit(0)

    threading.Thread(target=beat_forever, name="heartbeat", daemon=True).start()
    threading.Thread(target=on_stop_signal, name="stop-signal", daemon=True).start()
    try:
        faust_worker.execute_from_commandline()
    finally:
        stopped.set()
        pidfile.remove()


def _age(birth: str | None, at: str | None) -> int | None:
    if not birth or not at:
        return None
    b, d = date.fromisoformat(birth[:10]), date.fromisoformat(at[:10])
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


@click.group()
def household() -> None:
    """Show or explain one household's live status."""


def household_at(settings: Settings, household_id: str, day: str) -> dict[str, Any] | None:
    """The household's status document at the end of DAY: its stored events with occurred_at on or
    before that day, folded in valid-time order by the same rule book as the stream workers."""
    import orjson

    from streams.alerts import Thresholds
    from streams.guarantees import load_lines
    from streams.household import document, fold
    from warehouse.client import open_reader
    from warehouse.rebuild import envelope_bytes

    reader = open_reader(settings)
    try:
        rows = reader.query_dicts(
            "SELECT event_id, event_type, schema_version, department, source_system, household_id, person_id, "
            "region_code, occurred_at, recorded_at, occurred_at_text, recorded_at_text, payload "
            f"FROM {settings.clickhouse_database}.events_latest WHERE household_id = {{h:String}} "
            "AND toDate(occurred_at) <= toDate({d:String}) ORDER BY occurred_at, recorded_at, event_id",
            {"h": household_id, "d": day},
        )
    finally:
        reader.close()
    if not rows:
        return None
    lines = load_lines(settings.reference_path)
    states, _ = fold([orjson.loads(envelope_bytes(r)) for r in rows], lines,
                     Thresholds(settings.medical_burden_share, settings.medical_burden_amount))  # fmt: skip
    return document(states[household_id], lines, f"{day}T23:59:59.999Z")


@household.command()
@click.argument("household_id")
@click.option("--date", "day", help="Evaluate the household at this date (YYYY-MM-DD) from the event store.")
@click.option("--json", "as_json", is_flag=True, help="The status document as JSON.")
@click.pass_context
def show(ctx: click.Context, household_id: str, day: str | None, as_json: bool) -> None:
    """The live status document of HOUSEHOLD_ID (or, with --date, its status at that date)."""
    settings = settings_from(ctx)
    if day:
        from datetime import date

        try:
            day = date.fromisoformat(day).isoformat()
        except ValueError as exc:
            raise click.BadParameter(f"--date is YYYY-MM-DD ({exc})") from exc
        doc = household_at(settings, household_id, day)
        if doc is None:
            raise click.ClickException(f"household {household_id} has no event on or before {day} in the event store")
    else:
        doc = query_household(settings, household_id)
    if doc is None:
        raise click.ClickException(f"household {household_id} is not known to any running worker")
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    mon = doc["monitoring"]
    click.echo(f"household {doc['household_id']}  version {doc['version']}  region {doc['region_code']}")
    click.echo(f"status      {doc['status']}")
    click.echo(f"monitoring  {mon['category'] or '-'} ({mon['risk_state'] or 'never enrolled'})")
    inc = doc["income"]
    click.echo(
        f"income      {inc['per_capita'] if inc['per_capita'] is not None else '-'} per person ({inc['year'] or '-'})"
    )
    click.echo("guarantees  " + ", ".join(f"{k} {v}" for k, v in doc["guarantees"].items()))
    click.echo(f"alerts      {', '.join(doc['open_alerts']) or 'none open'}")
    click.echo(f"members     {doc['living_members']} living")
    for m in doc["members"]:
        age = _age(m["birth_date"], doc["last_occurred_at"])
        click.echo(
            f"  {m['person_id']}  {m['relation'] or '?':<10} {m['sex'] or '?'}  age {age if age is not None else '?'}"
            f"  {m['labour_capacity'] or '-':<7} {'living' if m['living'] else 'left'}"
        )
    click.echo(f"as of       {doc['last_occurred_at']} (event {doc['last_event_id']})")


@household.command()
@click.argument("household_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def explain(ctx: click.Context, household_id: str, as_json: bool) -> None:
    """Each flag and guarantee of HOUSEHOLD_ID with the event that set it."""
    settings = settings_from(ctx)
    body = query_household(settings, household_id, explain=True)
    if body is None:
        raise click.ClickException(f"household {household_id} is not known to any running worker")
    if as_json:
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    st = body["status"]
    click.echo(f"household {household_id}")
    click.echo(f"status {st['value']}  ({st['invalid']} invalid transition(s))")
    for t in st["transitions"]:
        click.echo(
            f"  {t['occurred_at']}  {t['transition']:<22} {'applied' if t['applied'] else 'NOT applied'}"
            f"  event {t['event_id']}"
        )
    r = body["region_code"]
    click.echo(f"region {r['value']}  event {r['event_id']}")
    m = body["monitoring"]
    click.echo(
        f"monitoring {m['category'] or '-'} open={m['open']}  enrolled by {m['enrolled_event_id'] or '-'}"
        f"  eliminated by {m['eliminated_event_id'] or '-'}"
    )
    i = body["income"]
    click.echo(f"income {i['value']} ({i['year']})  event {i['event_id'] or '-'}")
    for g, v in body["guarantees"].items():
        click.echo(f"guarantee {g:<10} {v['value']:<11} event {v['event_id'] or '-'}")
    for rule, a in body["alerts"].items():
        click.echo(f"alert {rule:<32} raised by {a['raised_event_id']} at {a['raised_occurred_at']}")


#: `fupin alerts --state`: which episode states each choice lists (domain.md, alert episodes).
ALERT_STATES: dict[str, tuple[str, ...]] = {
    "open": ("raised",),
    "resolved": ("resolved",),
    "all": ("raised", "resolved"),
}

_EPISODES_SQL = """
SELECT household_id, region_code, rule, if(a.state = 'raised', 'open', a.state) AS state, alert_id,
       start_event_id, start_occurred_at, end_event_id, end_occurred_at, detail
FROM {db}.alerts AS a FINAL
WHERE a.state IN ({states}) AND startsWith(a.region_code, {{region:String}})
ORDER BY household_id, rule, start_occurred_at, alert_id
"""


def alert_episodes(settings: Settings, state: str, region: str = "") -> list[dict[str, Any]]:
    """The landed alert episodes in STATE (open, resolved, all), each at its latest revision.

    Read from the warehouse, not the workers: only the episode table knows resolved episodes, and
    FINAL makes the latest revision win, so an episode a late event retracted is listed nowhere.
    """
    from warehouse.client import WarehouseError, open_reader

    reader = open_reader(settings)
    try:
        # the states are this module's constants (a click.Choice picks the entry), not user text
        states = ", ".join(f"'{s}'" for s in ALERT_STATES[state])
        rows = reader.query_dicts(_EPISODES_SQL.format(db=settings.clickhouse_database, states=states),
                                  {"region": region})  # fmt: skip
    except WarehouseError as exc:
        raise click.ClickException(f"reading the alert episodes failed: {str(exc).splitlines()[0][:200]}; "
                                   "is the stack up ('fupin status')?") from exc  # fmt: skip
    finally:
        reader.close()
    for r in rows:
        for key in ("start_occurred_at", "end_occurred_at"):
            if r[key] is not None and not isinstance(r[key], str):
                r[key] = r[key].isoformat()
    return rows


@click.command()
@click.option(
    "--state",
    type=click.Choice(tuple(ALERT_STATES)),
    default=None,
    help="open (default): episodes whose condition still holds; resolved: those that ended; all: both. "
    "Retracted episodes (a late event showed they never existed) are never listed.",
)
@click.option("--open", "only_open", is_flag=True, help="Same as --state open (kept for old scripts).")
@click.option(
    "--region",
    default="",
    help="Region code prefix (2, 4, 6, 9 or 12 digits) of the household when the alert was raised.",
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def alerts(ctx: click.Context, state: str | None, only_open: bool, region: str, as_json: bool) -> None:
    """List risk-alert episodes (one per household, rule and starting event) as the warehouse holds them.

    The sink lands each episode's latest revision from the stream workers within seconds."""
    if only_open and state not in (None, "open"):
        raise click.UsageError(f"--open contradicts --state {state}")
    state = state or "open"
    rows = alert_episodes(settings_from(ctx), state, region)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        line = f"{r['household_id']:<14} {r['region_code']}  {r['rule']:<32} {r['state']:<8} since {r['start_occurred_at']}"
        if r["end_occurred_at"]:
            line += f"  until {r['end_occurred_at']}"
        click.echo(f"{line}  ({r['start_event_id']})")
    kind = "" if state == "all" else f"{state} "
    click.echo(f"{len(rows)} {kind}alert(s)" + (" (retracted episodes not listed)" if state == "all" else ""),
               err=not sys.stdout.isatty())  # fmt: skip


@click.command("households")
@click.option("--region", default="", help="Region code prefix (2, 4, 6, 9 or 12 digits).")
@click.option("--status", "status_", type=click.Choice(["non_registered", "poor", "exited", "returned"]),
              help="Base status.")  # fmt: skip
@click.option("--monitoring", type=click.Choice(["open", "eliminated"]), help="Monitoring objects only.")
@click.option("--limit", default=200, show_default=True, help="At most this many rows (0: all).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def households(ctx: click.Context, region: str, status_: str | None, monitoring: str | None, limit: int,
               as_json: bool) -> None:
    """List households by region and status: the latest status document each (deduplicated)."""
    from warehouse.client import WarehouseError, open_reader

    settings = settings_from(ctx)
    sql = (
        "SELECT household_id, region_code, status, "
        "JSONExtractString(document, 'monitoring', 'category') AS monitoring_category, "
        "JSONExtractString(document, 'monitoring', 'risk_state') AS monitoring_state, "
        "JSONLength(document, 'open_alerts') AS open_alerts, "
        "JSONExtractInt(document, 'living_members') AS living_members "
        f"FROM {settings.clickhouse_database}.household_status_latest "
        "WHERE startsWith(region_code, {region:String}) "
        "AND (empty({status:String}) OR status = {status:String}) "
        "AND (empty({mon:String}) OR monitoring_state = {mon:String}) "
        "ORDER BY household_id" + (f" LIMIT {int(limit)}" if limit else "")
    )
    reader = open_reader(settings)
    try:
        rows = reader.query_dicts(sql, {"region": region, "status": status_ or "", "mon": monitoring or ""})
    except WarehouseError as exc:
        raise click.ClickException(f"reading the households failed: {str(exc).splitlines()[0][:200]}; "
                                   "is the stack up ('fupin status')?") from exc  # fmt: skip
    finally:
        reader.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        mon = f"{r['monitoring_category']} ({r['monitoring_state']})" if r["monitoring_category"] else "-"
        click.echo(f"{r['household_id']:<14} {r['region_code']}  {r['status']:<15} {r['living_members']:>2} members  "
                   f"monitoring {mon:<28} {r['open_alerts']} open alert(s)")  # fmt: skip
    click.echo(f"{len(rows)} household(s)" + (" (limit reached: --limit 0 lists all)" if limit and len(rows) == limit else ""),
               err=not sys.stdout.isatty())  # fmt: skip
