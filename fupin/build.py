"""dbt builds of the indicator marts and the ``fupin build`` / ``fupin indicators`` commands.

dbt runs in-process (``dbtRunner``). In embedded mode it must run in the process that owns chdb
(the warehouse service calls :func:`run_build_job` there); the chdb adapter opens its own
sessions on the same data path. The profile is written from the platform settings, so dbt
targets the same warehouse as every other component.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from fupin import PROJECT_ROOT
from fupin.cli import settings_from
from fupin.config import Settings

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
FAMILIES = ("census", "assessment", "consistency")
LEVELS = ("province", "city", "county", "township", "village")
#: Tells the dbt project whether its code changed since the last passing build ("1") or not ("0").
CODE_CHANGED_ENV = "FUPIN_DBT_CODE_CHANGED"
#: Node results dbt reports as progress lines.
_PROGRESS_EVENTS = {"LogModelResult", "LogTestResult", "LogSeedResult", "LogStartLine", "LogFreshnessResult"}


def dbt_dir(settings: Settings) -> Path:
    """Per-database dbt state (profile, target, logs): tests on one data dir do not collide."""
    return Path(settings.data_dir).resolve() / "dbt" / settings.clickhouse_database


def write_profile(settings: Settings) -> Path:
    """profiles.yml for the settings' mode: chdb on the data path, or ClickHouse server (native)."""
    directory = dbt_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    if settings.mode == "embedded":
        output = {
            "type": "chdb",
            "path": str(Path(settings.chdb_data_path).resolve()),
            "schema": settings.clickhouse_database,
            "threads": 4,
        }
    else:
        output = {
            "type": "clickhouse",
            "driver": "native",
            "host": settings.clickhouse_host,
            "port": settings.clickhouse_port,
            "user": settings.clickhouse_user,
            "password": settings.clickhouse_password,
            "schema": settings.clickhouse_database,
            "threads": 2,
        }
    profile = {"fupin": {"target": settings.mode, "outputs": {settings.mode: output}}}
    (directory / "profiles.yml").write_text(json.dumps(profile, indent=2))  # JSON is YAML
    return directory


def project_fingerprint() -> str:
    """Hash of the dbt project's code (models, macros, seeds, tests, config) and the chdb adapter's macros."""
    digest = hashlib.sha256()
    roots = [DBT_PROJECT / d for d in ("models", "macros", "seeds", "tests")]
    roots += [DBT_PROJECT / "dbt_project.yml", PROJECT_ROOT / "warehouse" / "dbt_chdb" / "dbt" / "include"]
    for root in roots:
        files = [root] if root.is_file() else sorted(f for f in root.rglob("*") if f.is_file())
        for f in files:
            if f.suffix in (".sql", ".yml", ".yaml", ".csv"):
                digest.update(str(f.relative_to(PROJECT_ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def dbt_vars(
    as_of_date: str | date | None = None,
    cutoff: str | datetime | None = None,
    series_months: int | None = None,
    period_start: str | date | None = None,
) -> dict[str, Any]:
    """The dbt vars of a build, validated: a bad date is a clear error, not a SQL failure."""
    out: dict[str, Any] = {}
    if as_of_date:
        out["as_of_date"] = date.fromisoformat(str(as_of_date)[:10]).isoformat()
    if cutoff:
        from fupin.timeutil import parse_instant

        out["cutoff"] = parse_instant(
            str(cutoff) if not isinstance(cutoff, datetime) else cutoff.isoformat()
        ).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if series_months is not None:
        out["series_months"] = int(series_months)
    if period_start:
        out["period_start"] = date.fromisoformat(str(period_start)[:10]).isoformat()
    return out


def run_dbt(settings: Settings, args: list[str], progress: Callable[[str], None] | None = None) -> Any:
    """One dbt command in this process against the settings' warehouse; returns dbt's result."""
    from dbt.cli.main import dbtRunner

    directory = write_profile(settings)
    callbacks = []
    if progress is not None:

        def on_event(event: Any) -> None:
            if event.info.name in _PROGRESS_EVENTS:
                progress(event.info.msg)

        callbacks.append(on_event)
    full = [
        *args,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(directory),
        "--target-path",
        str(directory / "target"),
        "--log-path",
        str(directory / "logs"),
        "--quiet",  # progress comes through the callback, not dbt's own console log
        "--no-send-anonymous-usage-stats",
    ]
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    return dbtRunner(callbacks=callbacks).invoke(full)


def run_build_job(
    warehouse: Any,
    settings: Settings,
    *,
    as_of_date: str | None = None,
    cutoff: str | None = None,
    series_months: int | None = None,
    period_start: str | None = None,
    full_refresh: bool = False,
    docs: bool = False,
    select: str | None = None,
    progress: Callable[[str], None] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """``dbt build`` (seeds, models, tests) for a census at D with optional cut-off T.

    Runs where chdb is owned (the service passes its ``warehouse``; dbt opens its own sessions on
    the same path). Returns a JSON-able summary: success, per-node results, timings, docs path.
    """
    variables = dbt_vars(as_of_date, cutoff, series_months, period_start)
    log = None
    if progress is None:  # run by the service: the CLI that asked follows the nodes in this file
        log = progress_log(settings).open("w", encoding="utf-8")

        def progress(msg: str) -> None:
            log.write(msg.replace("\n", " ") + "\n")
            log.flush()

    try:
        return _build(settings, variables, full_refresh, docs, select, progress)
    finally:
        if log is not None:
            log.write(DONE_LINE + "\n")
            log.close()


def progress_log(settings: Settings) -> Path:
    """Where a build run by the service writes one line per dbt node (read by ``fupin build``)."""
    path = dbt_dir(settings) / "build-progress.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


#: The last line of a build's progress log.
DONE_LINE = "-- build finished --"


def _build(
    settings: Settings,
    variables: dict[str, Any],
    full_refresh: bool,
    docs: bool,
    select: str | None,
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    # Unit tests check the code on fixed inputs: they run when the project's code changed since the
    # last passing build of this database (and on full refreshes), not on every incremental build.
    # Seeds are part of that code: unchanged, the loaded seed tables stay (their tests still run).
    # The same condition makes the village figures and monthly marts recompute every date, not only
    # the changed ones, and the scoped data tests check whole tables.
    fingerprint = project_fingerprint()
    marker = dbt_dir(settings) / "code_fingerprint"
    code_unchanged = not full_refresh and marker.exists() and marker.read_text() == fingerprint
    args = ["build", "--vars", json.dumps(variables)]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    if code_unchanged:
        # manifest.json is the same as after the last build with this code: writing it again and
        # run_results.json (the summary below has them) costs about half a second of this process
        args += ["--exclude-resource-type", "unit_test", "seed", "--no-write-json"]
    started = time.monotonic()
    # An environment variable, not a dbt var: vars that differ between builds make dbt parse the
    # whole project again (seconds); the project reads it at run time (macro code_changed).
    previous = os.environ.get(CODE_CHANGED_ENV)
    os.environ[CODE_CHANGED_ENV] = "0" if code_unchanged else "1"
    try:
        res = run_dbt(settings, args, progress)
    finally:
        if previous is None:
            os.environ.pop(CODE_CHANGED_ENV, None)
        else:
            os.environ[CODE_CHANGED_ENV] = previous
    elapsed = time.monotonic() - started
    nodes = []
    for r in getattr(res.result, "results", None) or []:
        nodes.append(
            {
                "name": r.node.name,
                "type": str(r.node.resource_type),
                "status": str(r.status),
                "seconds": round(float(r.execution_time or 0.0), 3),
                "message": r.message,
                "failures": r.failures,
            }
        )
    failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
    summary: dict[str, Any] = {
        "success": bool(res.success) and not failed,
        "vars": variables,
        "unit_tests": "skipped (code unchanged since the last passing build)" if code_unchanged else "run",
        "seconds": round(elapsed, 3),
        "nodes": nodes,
        "failed": failed,
        "error": str(res.exception) if res.exception else None,
    }
    if summary["success"] and not select and not code_unchanged:
        marker.write_text(fingerprint)
    if docs and summary["success"]:
        docs_res = run_dbt(settings, ["docs", "generate", "--static", "--vars", json.dumps(variables)], progress)
        index = dbt_dir(settings) / "target" / "index.html"
        summary["docs"] = str(index) if docs_res.success and index.exists() else None
    return summary


# ------------------------------------------------------------------------------------------------
# Reading the marts


def mart_for(family: str, monthly: bool = False) -> str:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}")
    return f"{family}_monthly" if monthly and family != "consistency" else family


def read_indicators(
    reader: Any,
    database: str,
    family: str,
    level: str,
    region: str | None,
    as_of_date: str | None,
    cutoff: str | None,
    period_start: str | None = None,
) -> tuple[list[str], list[tuple]]:
    """Rows of a mart for (level, region prefix, D, T); D defaults to the latest built date.

    The assessment mart keeps a build per assessment period too: the default period's rows
    (period_start null) unless ``period_start`` names another; the other marts do not depend on it.
    """
    table = f"{database}.{mart_for(family)}"
    params: dict[str, Any] = {"level": level}
    where = ["level = {level:String}"] if level != "all" else ["1"]
    if family == "assessment":
        if period_start:
            where.append("period_start = toDate({period:String})")
            params["period"] = period_start
        else:
            where.append("period_start IS NULL")
    if region:
        where.append("startsWith(region_code, {region:String})")
        params["region"] = region
    if cutoff:
        where.append("cutoff = parseDateTime64BestEffort({cutoff:String}, 3, 'UTC')")
        params["cutoff"] = cutoff
    else:
        where.append("cutoff IS NULL")
    if as_of_date:
        where.append("reference_date = toDate({d:String})")
        params["d"] = as_of_date
    else:
        where.append(
            f"reference_date = (SELECT max(reference_date) FROM {table} WHERE {' AND '.join(where)})"
        )
    sql = (
        f"SELECT * EXCEPT (build_key, built_at) FROM {table} WHERE {' AND '.join(where)} "
        "ORDER BY length(region_code), region_code"
    )
    return reader.query_columns(sql, params)


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return round(value, 6)
    return value


def format_rows(names: list[str], rows: list[tuple], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(
            [{n: _cell(v) for n, v in zip(names, r, strict=True)} for r in rows], ensure_ascii=False, indent=2
        )
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(names)
        w.writerows([[_cell(v) for v in r] for r in rows])
        return buf.getvalue()
    # table: one block per region, indicator per line, so wide marts stay readable
    blocks = []
    for r in rows:
        row = dict(zip(names, r, strict=True))
        head = f"{row.get('region_code')} ({row.get('level')}) at {_cell(row.get('reference_date'))}"
        width = max(len(n) for n in names)
        lines = [head, "-" * len(head)]
        lines += [
            f"{n:<{width}}  {'' if v is None else _cell(v)}"
            for n, v in row.items()
            if n not in ("region_code", "level", "reference_date")
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "(no rows)"


# ------------------------------------------------------------------------------------------------
# Commands


def _owner_is_here(settings: Settings) -> bool:
    """Whether this process may open the warehouse itself (no embedded service owns chdb)."""
    from fupin.stack import service_url

    return settings.mode != "embedded" or service_url(settings) is None


def _run_job(settings: Settings, name: str, **params: Any) -> dict[str, Any]:
    from warehouse.service import run_job

    return run_job(settings, name, **params)


def latest_occurred(settings: Settings, verbose: bool = False) -> str:
    """The latest valid date in the event store (the default D of a build), or a one-sentence error."""
    from warehouse.client import WarehouseError, open_reader

    try:
        reader = open_reader(settings)
        try:
            ((latest, events),) = reader.query(
                f"SELECT toString(toDate(max(occurred_at))), count() FROM {settings.clickhouse_database}.events"
            )
        finally:
            reader.close()
    except WarehouseError as exc:
        if verbose:
            click.echo(f"raw error: {exc}", err=True)
        raise click.ClickException(warehouse_sentence(str(exc), "reading the event store")) from exc
    if not events:
        raise click.ClickException(
            "the event store holds no events yet: publish the departments' files ('fupin publish') with the "
            "stack running ('fupin up'), let the sink land them ('fupin status'), then run 'fupin build'"
        )
    return str(latest)


def warehouse_sentence(raw: str, what: str) -> str:
    """One sentence for a dbt or chdb error: what failed and what to run; the raw text is for --verbose."""
    import re

    missing = re.search(
        r"Unknown table expression identifier '([^']+)'|Table (\S+) does(?:n't| not) exist|Database (\S+) does(?:n't| not) exist",
        raw,
    )
    if missing:
        thing = f"database {missing.group(3)}" if missing.group(3) else f"table {missing.group(1) or missing.group(2)}"
        return (f"{what} failed: the warehouse has no {thing} (a fresh data directory?): run 'fupin up' "
                "(it creates the tables) and publish events, then try again; --verbose shows the raw error")
    if "Connection refused" in raw or "ConnectionRefused" in raw:
        return f"{what} failed: the warehouse service does not answer: run 'fupin status', then 'fupin up'"
    if "MEMORY_LIMIT" in raw or "TIMEOUT" in raw.upper():
        return f"{what} failed: the warehouse ran out of memory or time: try again when the machine is quieter"
    first = raw.strip().splitlines()[0][:160] if raw.strip() else "unknown error"
    return f"{what} failed ({first}); run it again with --verbose for the full error"


def failure_sentences(result: dict[str, Any]) -> list[str]:
    """What failed in a build summary, one sentence a node (raw messages are --verbose's)."""
    out = []
    for node in result.get("failed", []):
        kind = "test" if "test" in node["type"] else node["type"].rsplit(".", 1)[-1]
        if node["status"] == "fail":
            out.append(f"dbt {kind} {node['name']} found {node.get('failures') or 'some'} failing row(s): "
                       "the data breaks that rule; 'dbt test --select' it in dbt_project/ to see them")
        else:
            out.append(warehouse_sentence(node.get("message") or "", f"dbt {kind} {node['name']}"))
    if result.get("error") and not out:
        out.append(warehouse_sentence(result["error"], "dbt build"))
    return out


def _follow_service_build(settings: Settings, job: dict[str, Any]) -> dict[str, Any]:
    """Run the build in the service and show its nodes as they finish (from the job's progress log)."""
    import re

    from fupin.progress import follow_job

    state: dict[str, Any] = {"total": None}

    def on_line(line: str, bar: Any) -> None:
        m = re.match(r"\s*(\d+) of (\d+) (\S+)", line)
        if not m or m.group(3) == "START":
            return
        if state["total"] is None:
            state["total"] = int(m.group(2))
            bar.stage("dbt nodes", total=state["total"])
        bar.advance()
        if not bar.interactive:
            click.echo(f"  {line.strip()}", err=True)

    return follow_job(lambda: _run_job(settings, "build", docs=True, **job), progress_log(settings), "build",
                      on_line)  # fmt: skip


@click.command("build")
@click.option("--date", "as_of_date", help="Reference date D (YYYY-MM-DD); default the latest occurred_at in the event store.")
@click.option("--cutoff", help="Cut-off T: only events recorded at or before it count.")
@click.option("--full-refresh", is_flag=True, help="Rebuild incremental models from scratch.")
@click.option("--no-check", is_flag=True, help="Skip the data-quality checkpoint.")
@click.option("--verbose", "-v", is_flag=True, help="Show dbt's and the warehouse's raw errors.")
@click.pass_context
def build(
    ctx: click.Context, as_of_date: str | None, cutoff: str | None, full_refresh: bool, no_check: bool,
    verbose: bool,
) -> None:
    """dbt build (seeds, models, tests, docs), then the data-quality checkpoint."""
    settings = settings_from(ctx)
    if not as_of_date:
        as_of_date = latest_occurred(settings, verbose)
        click.echo(f"no --date given: D = {as_of_date}, the latest occurred_at in the event store")
    try:
        params = dbt_vars(as_of_date, cutoff)
    except ValueError as exc:
        raise click.ClickException(f"bad --date or --cutoff: {exc}") from exc
    click.echo(f"dbt build {json.dumps(params)} ...")
    job = {
        "as_of_date": params.get("as_of_date"),
        "cutoff": params.get("cutoff"),
        "full_refresh": full_refresh,
    }
    try:
        if _owner_is_here(settings):
            # no warehouse service owns chdb (or server mode): build here and show dbt's progress live
            from warehouse.client import connect

            wh = connect(settings)
            try:
                result = run_build_job(wh, settings, docs=True, progress=lambda m: click.echo(f"  {m}", err=True),
                                       **job)  # fmt: skip
            finally:
                wh.close()
        else:
            result = _follow_service_build(settings, job)
    except Exception as exc:  # the service or the engine refused: one sentence, the rest behind --verbose
        if verbose:
            click.echo(f"raw error: {exc}", err=True)
        raise click.ClickException(warehouse_sentence(str(exc), "dbt build")) from exc
    click.echo(
        f"dbt build {'passed' if result.get('success') else 'FAILED'} in {result.get('seconds', 0):.1f}s"
        f" ({len(result.get('nodes', []))} nodes)"
    )
    if result.get("docs"):
        click.echo(f"dbt docs: {result['docs']} ('fupin docs' serves them)")
    if not result.get("success"):
        for sentence in failure_sentences(result):
            click.echo(f"  {sentence}", err=True)
        if verbose:
            for node in result.get("failed", []):
                click.echo(f"  raw: {node['name']}: {node['message']}", err=True)
            if result.get("error"):
                click.echo(f"  raw: {result['error']}", err=True)
        ctx.exit(1)
    if no_check:
        return
    click.echo("data-quality checkpoint (Great Expectations) ...")
    started = time.monotonic()
    from fupin.progress import follow_job, job_log

    try:
        check = follow_job(lambda: _run_job(settings, "check"), job_log(settings.data_dir, "check"), "checkpoint")
    except Exception as exc:
        if verbose:
            click.echo(f"raw error: {exc}", err=True)
        raise click.ClickException(warehouse_sentence(str(exc), "the data-quality checkpoint")) from exc
    ok = bool(check.get("success"))
    for failure in check.get("critical_failures", [])[:20]:
        click.echo(f"  critical: {json.dumps(failure, default=str, ensure_ascii=False)[:300]}", err=True)
    click.echo(
        f"checkpoint {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s"
        + (f"; data docs: {check['data_docs']}" if check.get("data_docs") else "")
    )
    if not ok:
        ctx.exit(1)


def period_of(month_from: str, month_to: str) -> tuple[str, str]:
    """(period_start, D) of an assessment period given as months YYYY-MM: D is the last day of --to."""
    import calendar

    try:
        y0, m0 = (int(x) for x in month_from.split("-")[:2])
        y1, m1 = (int(x) for x in month_to.split("-")[:2])
        start, end = date(y0, m0, 1), date(y1, m1, calendar.monthrange(y1, m1)[1])
    except ValueError as exc:
        raise click.BadParameter(f"months are YYYY-MM ({exc})") from exc
    if start > end:
        raise click.BadParameter("--from is after --to")
    return start.isoformat(), end.isoformat()


#: Per-cadre loads from the accumulating mart (int_cadre_loads holds only the latest build's dates).
_CADRES_SQL = """
SELECT cadre_id, cadre_households, village_count, over_limit, cadre_households_max
FROM {db}.cadre_loads
WHERE reference_date = {{d:Date}} AND {cutoff}
  AND (empty({{region:String}}) OR arrayExists(v -> startsWith(v, {{region:String}}), villages))
ORDER BY cadre_households DESC, cadre_id
"""


@click.command("indicators")
@click.option("--family", type=click.Choice(FAMILIES), default="assessment", show_default=True)
@click.option("--level", type=click.Choice((*LEVELS, "all")), required=True, help="A region level, or all of them.")
@click.option("--region", help="Region code (a prefix at the level): only that region and below it.")
@click.option("--date", "as_of_date", help="Reference date D (YYYY-MM-DD); default the latest built.")
@click.option("--from", "month_from", help="First month of an assessment period (YYYY-MM); needs --to.")
@click.option("--to", "month_to", help="Last month of the period (YYYY-MM): D is its last day.")
@click.option("--cutoff", help="Cut-off T of a frozen census.")
@click.option("--cadres", is_flag=True, help="Also list each cadre's load (households held) at D; over 5 is flagged.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.pass_context
def indicators(
    ctx: click.Context,
    family: str,
    level: str,
    region: str | None,
    as_of_date: str | None,
    month_from: str | None,
    month_to: str | None,
    cutoff: str | None,
    cadres: bool,
    fmt: str,
) -> None:
    """Print a family's indicators for a level (or all levels), region, date or assessment period."""
    from warehouse.client import WarehouseError, open_reader

    settings = settings_from(ctx)
    period_start = None
    if month_from or month_to:
        if not (month_from and month_to) or as_of_date:
            raise click.UsageError("an assessment period needs both --from and --to (and no --date)")
        period_start, as_of_date = period_of(month_from, month_to)
        if period_start == f"{as_of_date[:4]}-01-01":
            period_start = None  # the year to D: the default period, which every build has
    try:
        params = dbt_vars(as_of_date, cutoff, period_start=period_start)
    except ValueError as exc:
        raise click.ClickException(f"bad --date or --cutoff: {exc}") from exc
    d, t = params.get("as_of_date"), params.get("cutoff")

    def read() -> tuple[list[str], list[tuple]]:
        reader = open_reader(settings)
        try:
            return read_indicators(reader, settings.clickhouse_database, family, level, region, d, t, period_start)
        finally:
            reader.close()

    try:
        names, rows = read()  # a build already made for D, T (and the period) is read, not redone
    except WarehouseError:
        names, rows = [], []  # marts not built yet
    if not rows and (d or t or not names):
        what = f"the period {month_from}..{month_to}" if month_from else f"D={d or 'the latest'}"
        click.echo(f"building the marts for {what} T={t or 'none'} ...", err=True)
        try:
            result = _run_job(settings, "build", as_of_date=d, cutoff=t, period_start=period_start)
        except Exception as exc:
            raise click.ClickException(warehouse_sentence(str(exc), "dbt build")) from exc
        if not result.get("success"):
            raise click.ClickException(" ".join(failure_sentences(result)) or "dbt build failed")
        try:
            names, rows = read()
        except WarehouseError as exc:
            raise click.ClickException(warehouse_sentence(str(exc), "reading the marts")) from exc
    click.echo(format_rows(names, rows, fmt))
    if cadres and rows:
        day = _cell(dict(zip(names, rows[0], strict=True))["reference_date"])
        cut = "cutoff = parseDateTime64BestEffort({t:String}, 3, 'UTC')" if t else "cutoff IS NULL"
        reader = open_reader(settings)
        try:
            cnames, crows = reader.query_columns(_CADRES_SQL.format(db=settings.clickhouse_database, cutoff=cut),
                                                 {"d": day, "region": region or "", "t": t or ""})  # fmt: skip
        except WarehouseError as exc:
            raise click.ClickException(warehouse_sentence(str(exc), "reading the cadre loads")) from exc
        finally:
            reader.close()
        over = sum(1 for r in crows if r[3])
        limit = crows[0][4] if crows else 5
        if not crows and dict(zip(names, rows[0], strict=True)).get("cadres_active"):
            click.echo(f"the marts at {day} were built before per-cadre loads were kept: "
                       f"'fupin build --date {day}' stores them", err=True)  # fmt: skip
        click.echo(f"\ncadre loads at {day}: {len(crows)} cadres, {over} over {limit} households")
        if fmt == "table":
            click.echo("\n".join(f"  {c:<24} {n:>3} households in {v} village(s){f'  OVER {m}' if o else ''}"
                                  for c, n, v, o, m in crows))  # fmt: skip
        else:
            click.echo(format_rows(cnames, crows, fmt))
    if not rows:
        sys.exit(1)
