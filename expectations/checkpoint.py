"""The data-quality checkpoint: every suite over the warehouse, Data Docs, and a plain report.

Runs in the process that owns the warehouse (chdb has one owner): the warehouse service calls
:func:`run_checkpoint_job`. Each dataset's query result is snapshotted to Parquet so that one
Great Expectations checkpoint validates them all in a single run (a pandas DataFrame asset takes
its frame from the run's batch parameters, which a checkpoint shares between all validations).
The context is ephemeral (fast to start, nothing to keep in sync on disk) with one filesystem
Data Docs site under ``<data_dir>/data_docs``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from expectations.suites import CRITICAL, WARNING, Dataset

log = logging.getLogger(__name__)

#: Column added to every frame so that a failure names the rows it concerns.
ROW_KEY = "row_key"
SAMPLE_SIZE = 10
SITE = "fupin"
EVENT_STORE_TABLES = ("events", "events_latest", "reference_regions", "dead_letters")


@dataclass
class Plan:
    datasets: list[Dataset] = field(default_factory=list)
    #: Suites not run, with the reason (a mart not built yet).
    skipped: list[dict[str, str]] = field(default_factory=list)


def data_docs_dir(settings) -> Path:
    return Path(settings.data_dir) / "data_docs"


def _tables(warehouse) -> dict[str, dict[str, str]]:
    rows = warehouse.query(
        f"SELECT table, name, type FROM system.columns WHERE database = '{warehouse.database}' ORDER BY table, position"
    )
    tables: dict[str, dict[str, str]] = {}
    for table, name, ch_type in rows:
        tables.setdefault(table, {})[name] = ch_type
    return tables


def plan(warehouse, settings) -> Plan:
    """The datasets to validate in this warehouse; a missing event store table is an error."""
    from expectations.suites import dead_letters, event_store, marts

    tables = _tables(warehouse)
    missing = [t for t in EVENT_STORE_TABLES if t not in tables]
    if missing:
        raise RuntimeError(
            f"the warehouse database '{warehouse.database}' has no {', '.join(missing)}: "
            "run 'fupin warehouse migrate' first"
        )
    result = Plan()
    result.datasets.append(event_store.build(warehouse.database))
    result.datasets.append(dead_letters.build(warehouse.database, settings.deadletter_max_share))
    for mart in (*marts.MARTS, marts.MISMATCHES):
        if mart not in tables:
            reason = f"mart '{mart}' not built yet (run 'fupin build')"
            result.skipped.append({"suite": marts.suite_name(mart), "reason": reason})
        elif mart == marts.MISMATCHES:
            result.datasets.append(marts.build_mismatches(warehouse.database))
        else:
            result.datasets.append(marts.build(warehouse.database, mart, tables[mart]))
    return result


def _with_row_key(frame, index_columns: list[str]):
    """The frame with ``row_key``: its index columns joined (null for a summary without an index)."""
    if not index_columns:
        return frame.assign(**{ROW_KEY: None})
    key = frame[index_columns[0]].astype("string").fillna("∅")
    for col in index_columns[1:]:
        key = key + " " + frame[col].astype("string").fillna("∅")
    return frame.assign(**{ROW_KEY: key})


def _quiet_gx() -> None:
    """GX's INFO chatter and progress bars would bury the report."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)


def _project_config(docs: Path):
    """In-memory stores, no progress bars, no analytics, and one Data Docs site in ``docs``
    (the default ephemeral context would also create a temporary docs site on every run)."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites={SITE: site},
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )


def run_checkpoint(warehouse, settings, data_docs: Path | None = None, progress=None) -> dict[str, Any]:
    """Validate every suite, write Data Docs, and return the report (JSON-ready).

    ``progress`` is told each stage (a table read, the validation, the Data Docs)."""
    say = progress or (lambda _line: None)
    todo = plan(warehouse, settings)
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    _quiet_gx()
    docs = Path(data_docs or data_docs_dir(settings)).resolve()
    docs.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="ephemeral", project_config=_project_config(docs))
    source = context.data_sources.add_pandas("warehouse")
    tables: dict[str, str] = {}
    unreadable: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fupin-check-") as snapshots:
        validations = []
        for n, ds in enumerate(todo.datasets, start=1):
            say(f"reading {ds.table} for suite {ds.suite} ({n} of {len(todo.datasets)})")
            path = Path(snapshots) / f"{ds.suite}.parquet"
            try:
                frame = _with_row_key(warehouse.query_df(ds.sql), ds.index_columns)
                frame.to_parquet(path, index=False)
            except Exception as exc:  # one unreadable table must not hide the other suites' results
                log.exception("data-quality suite %s: cannot read %s", ds.suite, ds.table)
                unreadable.append(_unreadable(ds, exc))
                continue
            asset = source.add_parquet_asset(ds.suite, path=path)
            batch = asset.add_batch_definition_whole_dataframe("all")
            suite = context.suites.add(
                gx.ExpectationSuite(name=ds.suite, expectations=ds.expectations, meta={"table": ds.table})
            )
            validations.append(
                context.validation_definitions.add(
                    gx.ValidationDefinition(name=ds.suite, data=batch, suite=suite)
                )
            )
            tables[ds.suite] = ds.table
        if not validations:
            return _report(unreadable, [], {}, todo.skipped, None)
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="fupin",
                validation_definitions=validations,
                actions=[UpdateDataDocsAction(name="data_docs", site_names=[SITE])],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": SAMPLE_SIZE,
                    "unexpected_index_column_names": [ROW_KEY],
                },
            )
        )
        say(f"validating {len(validations)} suites and writing the Data Docs")
        result = checkpoint.run()
    from expectations.offline import make_offline

    make_offline(docs)  # the site must open offline: no CDN styles or scripts
    report = summarise(result, tables, todo.skipped, docs / "index.html")
    return _report(
        [*unreadable, *report["critical_failures"]],
        report["warnings"],
        report["suites"],
        report["skipped"],
        report["data_docs"],
    )


def _unreadable(ds: Dataset, exc: Exception) -> dict[str, Any]:
    return {
        "suite": ds.suite,
        "table": ds.table,
        "severity": CRITICAL,
        "expectation": "read the table",
        "rule": "the table can be read",
        "column": "",
        "observed": None,
        "unexpected_count": None,
        "unexpected_percent": None,
        "element_count": None,
        "sample": [],
        "rows": [],
        "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
    }


def _report(
    critical: list, warnings: list, suites: dict, skipped: list, data_docs: str | None
) -> dict[str, Any]:
    return {
        "success": not critical,
        "critical_failures": critical,
        "warnings": warnings,
        "suites": suites,
        "skipped": skipped,
        "data_docs": data_docs,
    }


def summarise(result, tables: dict[str, str], skipped: list[dict[str, str]], index: Path) -> dict[str, Any]:
    """The checkpoint result as a report: failures by severity, each with what was seen."""
    critical: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    suites: dict[str, dict[str, Any]] = {}
    for suite_result in result.run_results.values():
        suite = suite_result.suite_name
        evaluated = len(suite_result.results)
        failed = 0
        for er in suite_result.results:
            if er.success:
                continue
            failed += 1
            item = _failure(suite, tables.get(suite, ""), er)
            (critical if item["severity"] == CRITICAL else warnings).append(item)
        suites[suite] = {
            "table": tables.get(suite, ""),
            "evaluated": evaluated,
            "failed": failed,
            "success": bool(suite_result.success),
        }
    return _report(critical, warnings, suites, skipped, str(index))


def _failure(suite: str, table: str, er) -> dict[str, Any]:
    config = er.expectation_config
    kwargs = dict(config.kwargs)
    severity = str(getattr(config, "severity", None) or (config.meta or {}).get("severity") or CRITICAL)
    severity = severity.split(".")[-1].lower()
    res = er.result or {}
    column = (
        kwargs.get("column") or kwargs.get("column_list") or [kwargs.get("column_A"), kwargs.get("column_B")]
    )
    if isinstance(column, list):
        column = ", ".join(str(c) for c in column if c)
    exception = (er.exception_info or {}) if isinstance(er.exception_info, dict) else {}
    if exception and "raised_exception" not in exception:
        # One entry per metric: keep the first message.
        exception = next(iter(exception.values()), {})
    item = {
        "suite": suite,
        "table": table,
        "severity": severity if severity in (CRITICAL, WARNING) else CRITICAL,
        "expectation": config.type,
        "rule": (config.meta or {}).get("rule", ""),
        "column": column,
        "observed": _plain(res.get("observed_value")),
        "unexpected_count": _plain(res.get("unexpected_count")),
        "unexpected_percent": _plain(res.get("unexpected_percent")),
        "element_count": _plain(res.get("element_count")),
        "sample": [_plain(v) for v in (res.get("partial_unexpected_list") or [])][:SAMPLE_SIZE],
        "rows": [
            r
            for r in (
                _plain(v.get(ROW_KEY) if isinstance(v, dict) else v)
                for v in (res.get("partial_unexpected_index_list") or [])
            )
            if r is not None
        ][:SAMPLE_SIZE],
    }
    if exception.get("raised_exception"):
        item["error"] = str(exception.get("exception_message", "")).strip().splitlines()[0:1]
        item["error"] = item["error"][0] if item["error"] else "the expectation raised an error"
    return item


def _plain(value: Any) -> Any:
    """A JSON-ready value (the report crosses the warehouse service's HTTP API)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    return str(value)


def last_result_file(settings) -> Path:
    """The last checkpoint's report (the dashboard's data-health page reads it)."""
    return Path(settings.data_dir) / "checkpoint" / "last.json"


def run_checkpoint_job(warehouse, settings, **params: Any) -> dict[str, Any]:
    """The ``check`` job of the warehouse service: run the checkpoint in the process owning chdb."""
    from datetime import UTC

    from fupin.heartbeat import write_json
    from fupin.progress import JobLog

    docs = params.get("data_docs")
    log = JobLog(settings.data_dir, "check")  # `fupin build` shows these lines while it waits
    try:
        report = run_checkpoint(warehouse, settings, Path(docs) if docs else None, progress=log.say)
    finally:
        log.close()
    path = last_result_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {**report, "finished_at": datetime.now(UTC).isoformat(timespec="seconds")})
    return report
