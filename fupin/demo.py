"""`fupin demo`: the whole platform end to end on the embedded stack.

The demo drives the platform only through its public commands (each a subprocess), as an
operator would: so it proves the commands, not internals, work together.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from fupin.build import dbt_dir
from fupin.cli import settings_from
from fupin.stack import read_state, service_url

#: Used only when the operator set no key: the demo's data is synthetic.
DEMO_PSEUDONYM_KEY = "fupin-demo-key-synthetic-data-only"


def _fupin(*args: str, env: dict[str, str], check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fupin.cli", *args]
    click.secho(f"$ fupin {' '.join(args)}", fg="cyan")
    proc = subprocess.run(cmd, env=env, text=True, capture_output=capture)
    if check and proc.returncode != 0:
        if capture:
            click.echo(proc.stdout + proc.stderr, err=True)
        raise click.ClickException(f"'fupin {' '.join(args)}' failed with exit code {proc.returncode}")
    return proc


_PROGRESS_SQL = """
SELECT
    (SELECT count() FROM events_latest) AS events,
    (SELECT uniqExact(household_id) FROM events_latest) AS households,
    (SELECT uniqExact(household_id) FROM household_status_history) AS with_status,
    (SELECT count() FROM household_status_history) AS status_versions,
    (SELECT count() FROM alerts) AS alert_messages,
    (SELECT count() FROM dead_letters) AS dead_letters
"""


def _wait_until_settled(settings, expected_events: int, timeout: float) -> None:
    """Wait until the sink holds every accepted event and every household has a live status."""
    from warehouse.client import open_reader

    deadline = time.monotonic() + timeout
    last: tuple | None = None
    stable_since = time.monotonic()
    while True:
        reader = open_reader(settings)
        try:
            events, households, with_status, versions, alerts, dead = reader.query(_PROGRESS_SQL)[0]
        finally:
            reader.close()
        click.echo(
            f"  warehouse: {events:,}/{expected_events:,} events, {with_status:,}/{households:,} households "
            f"with a live status ({versions:,} versions), {alerts:,} alert messages, {dead:,} dead letters"
        )
        current = (events, with_status, versions, alerts)
        if current != last:
            last, stable_since = current, time.monotonic()
        elif events >= expected_events and with_status >= households and time.monotonic() - stable_since > 10:
            return
        if time.monotonic() > deadline:
            raise click.ClickException(
                f"the pipeline did not settle within {timeout:.0f}s ({events} of {expected_events} events landed)"
            )
        time.sleep(5)


#: The department file whose free text gets raw identifiers typed in, and its columns (simulator).
PLANT_FILE = "civil_affairs/assistance.csv"
PLANT_EVERY = 5  # every fifth 低保退出 row


def plant_identifiers(path: Path) -> int:
    """Type raw IDs, names and phones into the 低保 termination reason (终止原因) of some rows.

    As a clerk might: the resident ID, name and phone of the row's own applicant, and an old
    15-digit ID. The producer must refuse these rows (naming the column) and the rejects file
    must keep them redacted; the privacy scan at the end proves nothing reached the platform.
    """
    import csv

    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    planted = 0
    terminations = [r for r in body if len(r) == len(header) and r[col["业务类型"]] == "低保退出"]
    for n, row in enumerate(terminations[::PLANT_EVERY]):
        rid, name, phone = row[col["身份证号"]], row[col["姓名"]], row[col["联系电话"]]
        texts = (f"户主{name}（身份证{rid}）死亡", f"{name} 已迁出，联系电话{phone}", f"{name}旧证{rid[:6]}{rid[8:17]}已注销")
        row[col["终止原因"]] = texts[n % len(texts)]
        planted += 1
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *body])
    return planted


def _privacy_scan(env: dict[str, str], county: Path) -> None:
    """Run the privacy scan over topics, warehouse and files; the department's own input files,
    which hold raw IDs by nature, are not the platform's and are left out (their rejects are not)."""
    manifest = json.loads((county / "manifest.json").read_text())
    excluded = [str((county / e["file"]).resolve()) for e in manifest["files"]]
    args = ["privacy", "scan"]
    for path in excluded:
        args += ["--exclude", path]
    proc = _fupin(*args, env=env, check=False, capture=True)
    lines = proc.stdout.strip().splitlines()
    click.echo("\n".join(lines[-20:]))
    if proc.returncode != 0:
        raise click.ClickException(f"the privacy scan found raw identifiers or could not read everything: {lines[-1:]}")


def _report_missed_thresholds(env: dict[str, str], reference_date: str) -> None:
    """Name every threshold of indicators.md (census and assessment) the county misses at the date."""
    click.secho(f"\nThresholds missed at {reference_date}:", bold=True)
    missed = 0
    for family in ("census", "assessment"):
        proc = _fupin("indicators", "--family", family, "--level", "county", "--date", reference_date,
                      "--format", "json", env=env, capture=True)
        rows = json.loads(proc.stdout)
        rows = rows.get("rows", rows) if isinstance(rows, dict) else rows
        for row in rows:
            for column, value in row.items():
                if column.endswith("_within_threshold") and value in (0, False):
                    indicator = column.removesuffix("_within_threshold")
                    shown = row.get(indicator, row.get(f"{indicator}_persons", row.get(f"{indicator}_households", "")))
                    click.echo(f"  {family}, county {row['region_code']}: {indicator} = {shown}")
                    missed += 1
    if not missed:
        click.echo("  none")


@click.command()
@click.option("--households", default=60000, show_default=True, help="Rural households in the simulated county.")
@click.option("--seed", default=7, show_default=True)
@click.option("--from", "year_from", default=2016, show_default=True)
@click.option("--to", "year_to", default=2021, show_default=True)
@click.option("--bad-share", default=0.002, show_default=True, help="Share of bad input mixed in.")
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait for the pipeline to settle.")
@click.option("--workers", default=2, show_default=True, help="Stream workers sharing the partitions.")
@click.option("--keep-running", "--keep", "keep_running", is_flag=True,
              help="Leave the stack (and the dashboard) running at the end, until 'fupin down'.")
@click.pass_context
def demo(ctx: click.Context, households: int, seed: int, year_from: int, year_to: int, bad_share: float,
         timeout: float, workers: int, keep_running: bool) -> None:
    """Start the stack, simulate a county, import, stream, sink, build, check, report, stop."""
    settings = settings_from(ctx)
    env = dict(os.environ)
    if not env.get("FUPIN_PSEUDONYM_KEY"):
        env["FUPIN_PSEUDONYM_KEY"] = DEMO_PSEUDONYM_KEY
        click.secho("No FUPIN_PSEUDONYM_KEY set: using the demo key (synthetic data only).", fg="yellow")
    data_dir = Path(settings.data_dir)
    county = data_dir / "demo" / "county"
    started_here = read_state(settings) is None
    stream_workers: list[subprocess.Popen] = []
    docs_url: str | None = None
    t0 = time.monotonic()
    try:
        _fupin("up", env=env)
        url = service_url(settings)
        if url is None:
            raise click.ClickException("the warehouse service did not start (see fupin status)")
        _fupin("simulate", "--households", str(households), "--from", str(year_from), "--to", str(year_to),
               "--seed", str(seed), "--bad-share", str(bad_share), "--out", str(county), env=env)
        planted = plant_identifiers(county / PLANT_FILE)
        click.echo(f"  planted raw IDs, names and phones in {planted} 终止原因 cells of {PLANT_FILE}")
        _fupin("reference", "load", str(county / "reference"), env=env)
        for n in range(workers):
            log = open(data_dir / "demo" / f"stream-{n}.log", "w")  # noqa: SIM115 - handed to the child
            stream_workers.append(subprocess.Popen([sys.executable, "-m", "fupin.cli", "stream"], env=env,
                                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        accepted = 0
        manifest = json.loads((county / "manifest.json").read_text())
        for entry in manifest["files"]:
            proc = _fupin("publish", "--department", entry["department"], "--file", str(county / entry["file"]),
                          "--json", "--allow-rejects", "0.05", env=env, capture=True)
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            accepted += int(summary["accepted_distinct"])
            click.echo(f"  {entry['department']}: {summary['accepted']:,} accepted, {summary['rejected']:,} rejected")
        click.echo(f"Published {accepted:,} events; waiting for streams and sink …")
        _wait_until_settled(settings, accepted, timeout)
        reference_date = f"{year_to}-12-31"
        _fupin("build", "--date", reference_date, env=env, check=False)
        for family in ("census", "assessment"):
            _fupin("indicators", "--family", family, "--level", "county", "--date", reference_date,
                   "--format", "table", env=env)
        _report_missed_thresholds(env, reference_date)
        click.secho("\nPrivacy scan (topics, warehouse, logs, files):", bold=True)
        _privacy_scan(env, county)
        click.echo(f"\nDemo finished in {time.monotonic() - t0:.0f}s.")
        click.echo(f"dbt docs file:   {dbt_dir(settings) / 'target' / 'static_index.html'} (opens from disk)")
        click.echo(f"Data Docs file:  {(data_dir / 'data_docs' / 'index.html').resolve()} (offline: local styles)")
        if keep_running:
            from fupin.stack import StackError, start_docs

            try:
                docs_url = start_docs(settings)["url"]
            except StackError as exc:
                click.echo(f"  'fupin docs' did not start: {exc}", err=True)
    finally:
        for worker in stream_workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in stream_workers:
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        if started_here and not keep_running:
            _fupin("down", env=env, check=False)
    if keep_running:
        from warehouse.dashboard.server import login_url

        for line in closing_lines(docs_url, login_url(settings)):
            click.secho(line, bold=not line.startswith(" "))
    else:
        click.echo("'fupin docs' serves both documents on http://127.0.0.1:8580/ (they need no stack)")


def closing_lines(docs_url: str | None, dashboard_url: str | None) -> list[str]:
    """The demo's last words with --keep: where the documents and the dashboard answer now."""
    docs = (
        [f"  dbt docs:   {docs_url}/dbt/", f"  Data Docs:  {docs_url}/data-docs/"]
        if docs_url
        else ["  docs:       not served (run 'fupin docs')"]
    )
    dashboard = dashboard_url or "not running (see 'fupin status')"
    return ["", "Left running until 'fupin down':", *docs, f"  dashboard:  {dashboard}"]
