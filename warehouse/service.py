"""The embedded warehouse's one owner: chdb, the sink, jobs and a loopback HTTP API in one process.

chdb lets one process open a data path, so everything that touches the embedded warehouse while
ingestion runs happens here: the sink in a thread, queries and jobs (dbt build, checkpoint,
reference load, rebuild) in request threads, each with its own connection to the same engine.
Readers never stop the sink; a long job only shares the engine's cores with it.

API (JSON): ``GET /health``; ClickHouse's HTTP interface at ``/`` and ``/ping`` for BI tools
(:mod:`warehouse.clickhouse_http`, read-only for the token's role); ``POST /query`` {"sql", "params"} → {"columns", "types", "rows"}
(one SELECT, run by :mod:`warehouse.readonly` for the caller's role); ``POST /jobs/<name>``
{params} → the job's result. Every request carries a token (``Authorization: Bearer``,
:mod:`fupin.auth`): without one 401, with a role that may not 403. At start the service issues
the local operator credential (``<data_dir>/operator.token``) that the CLI sends.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson

from fupin import auth
from fupin.config import Settings, SettingsError
from fupin.heartbeat import PidFile, State, beat
from fupin.stack import service_file, service_url
from warehouse.client import (
    ChdbWarehouse,
    Warehouse,
    WarehouseError,
    connect,
    http_post_json,
)
from warehouse.readonly import Limits, ReadOnlyRefused, ReadOnlyWarehouse

log = logging.getLogger("fupin.warehouse")

#: Job name → "module:function" with signature fn(warehouse, settings, **params) -> dict.
JOBS: dict[str, str] = {
    "build": "fupin.build:run_build_job",
    "check": "expectations.checkpoint:run_checkpoint_job",
    "load-reference": "warehouse.reference:load_reference_job",
    "migrate": "warehouse.service:migrate_job",
    "privacy-scan": "fupin.scan:warehouse_scan_job",
    "rebuild": "warehouse.rebuild:rebuild_job",
    "rebuild-check": "warehouse.rebuild:check_job",
}


def job_function(name: str):
    if name not in JOBS:
        raise WarehouseError(f"no job named {name!r}; jobs: {', '.join(sorted(JOBS))}")
    module, attr = JOBS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def migrate_job(warehouse: Warehouse, settings: Settings, **params: Any) -> dict:
    from warehouse.migrate import migrate

    return {"applied": migrate(warehouse)}


def run_job(settings: Settings, name: str, **params: Any) -> dict:
    """Run a job in the service when one runs (embedded), else here on a fresh connection."""
    url = service_url(settings)
    if url:
        body = {**params, "_database": settings.clickhouse_database}
        return http_post_json(f"{url}/jobs/{name}", body, timeout=3600.0, headers=auth.auth_headers(settings))
    fn = job_function(name)
    wh = connect(settings)
    try:
        return fn(wh, settings, **params)
    finally:
        wh.close()


def _type_name(arrow_type) -> str:
    """What a remote reader needs to restore a value from JSON: date-times and dates; else as is."""
    import pyarrow as pa

    if pa.types.is_timestamp(arrow_type):
        return "DateTime64"
    if pa.types.is_date(arrow_type):
        return "Date"
    return str(arrow_type)


class Service:
    """The owner: holds settings, the sink thread and the HTTP server."""

    def __init__(self, settings: Settings, sink: bool = True) -> None:
        self.settings = settings
        self.path = settings.chdb_data_path
        self.want_sink = sink
        self.sink = None
        self.sink_thread: threading.Thread | None = None
        self.sink_note: str | None = None
        self.started_at = datetime.now(UTC)
        self.httpd: ThreadingHTTPServer | None = None
        self._job_locks: dict[str, threading.Lock] = {n: threading.Lock() for n in JOBS}
        self._main: ChdbWarehouse | None = None
        self.pidfile: PidFile | None = None
        self._stopping = threading.Event()
        self.limits = Limits()

    def warehouse(self, database: str | None = None) -> ChdbWarehouse:
        """A connection of this thread's own to the engine this process owns."""
        return ChdbWarehouse(self.path, database or self.settings.clickhouse_database)

    def settings_for(self, database: str | None) -> Settings:
        if database and database != self.settings.clickhouse_database:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
                raise ValueError(f"bad database name {database!r}")
            return self.settings.with_(clickhouse_database=database)
        return self.settings

    # -- start and stop ------------------------------------------------------------------------
    def start(self) -> str:
        from warehouse.migrate import migrate

        auth.issue_local_token(self.settings)
        self._main = self.warehouse()
        applied = migrate(self._main)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        try:
            result = job_function("load-reference")(self._main, self.settings)
            log.info("reference data: %s", result)
        except Exception as exc:  # reference data can be loaded later; the service still serves
            log.warning("reference data not loaded: %s", exc)
        if self.want_sink:
            self._start_sink()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.settings.service_port), _handler(self))
        self.httpd.daemon_threads = True
        url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, name="http", daemon=True).start()
        self.pidfile = PidFile(service_file(self.settings), url=url, started=self.started_at.isoformat())
        self._beat()
        threading.Thread(target=self._beat_forever, name="heartbeat", daemon=True).start()
        log.info(
            "warehouse service at %s (chdb %s, database %s)",
            url,
            self.path,
            self.settings.clickhouse_database,
        )
        return url

    def _start_sink(self) -> None:
        from fupin.stack import bootstrap
        from warehouse.sink import Sink

        try:
            servers = bootstrap(self.settings)
        except SettingsError as exc:
            self.sink_note = f"sink not running: {exc}"
            log.warning(self.sink_note)
            return
        self.sink = Sink(self.warehouse(), self.settings, servers, stop_timeout=4.0)
        self.sink_thread = threading.Thread(target=self._run_sink, name="sink", daemon=True)
        self.sink_thread.start()

    def _run_sink(self) -> None:
        while not self.sink.stop_event.is_set():
            try:
                self.sink_note = None
                self.sink.run()
            except Exception as exc:  # the broker went away, say: keep the service, retry
                self.sink_note = f"sink restarting after: {exc}"
                log.exception("sink failed; restarting in 5 s")
                self.sink.stop_event.wait(5.0)

    def sink_heartbeat(self) -> dict[str, Any] | None:
        """The sink thread's state (None when this service runs without one)."""
        if not self.want_sink:
            return None
        if self.sink is None or self.sink_note:
            return beat("paused", self.sink_note or "sink not started")
        return self.sink.heartbeat()

    def _beat(self, state: State = "running", reason: str | None = None) -> None:
        if self.pidfile is not None:
            self.pidfile.write(beat(state, reason), sink=self.sink_heartbeat())

    def _beat_forever(self) -> None:
        while not self._stopping.wait(1.0):
            self._beat()

    def stop(self) -> None:
        """Clean shutdown, bounded: stop serving, flush and commit the sink, close chdb, remove the record.

        The sink gets a few seconds to write what it holds (the rest is read again next time), so
        the service ends within 10 s of SIGTERM.
        """
        self._stopping.set()
        self._beat("stopping", "SIGTERM: flushing the sink")
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        if self.sink:
            self.sink.stop_event.set()
        if self.sink_thread:
            self.sink_thread.join(8)
        # A writer still inside chdb keeps its connection: the process ends around it.
        if self.sink and not self.sink_thread.is_alive() and self.sink.writers_done():
            self.sink.warehouse.close()
        if self._main:
            self._main.close()
        if self.pidfile is not None:
            self.pidfile.remove()

    # -- requests ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        wh = self.warehouse()
        try:
            counts = dict(
                wh.query(
                    "SELECT table, sum(rows) FROM system.parts WHERE database = {db:String} AND active "
                    "GROUP BY table ORDER BY table",
                    {"db": self.settings.clickhouse_database},
                )
            )
        finally:
            wh.close()
        return {
            "status": "ok",
            "pid": os.getpid(),
            "database": self.settings.clickhouse_database,
            "chdb_path": str(self.path),
            "started_at": self.started_at.isoformat(),
            "rows": counts,
            "sink": self.sink.progress.as_dict() if self.sink else None,
            "sink_note": self.sink_note,
        }

    def query(self, body: dict[str, Any], role: str = auth.OPERATOR) -> dict[str, Any]:
        sql = body.get("sql")
        if not isinstance(sql, str):
            raise ValueError('POST /query wants {"sql": "SELECT …"}')
        params = body.get("params") or None
        if params is not None and not isinstance(params, dict):
            raise ValueError('"params" must be an object of query parameters')
        database = body.get("_database") or self.settings.clickhouse_database
        if database != self.settings.clickhouse_database:
            raise ReadOnlyRefused(
                f"read-only: this service serves the database {self.settings.clickhouse_database} only"
            )
        wh = ReadOnlyWarehouse.chdb(self.path, database, role, self.limits)
        try:
            columns, types, rows = wh.query_typed(sql, params)
        finally:
            wh.close()
        return {"columns": columns, "types": [_type_name(t) for t in types], "rows": rows}

    def job(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        fn = job_function(name)
        settings = self.settings_for(body.pop("_database", None))
        wh = self.warehouse(settings.clickhouse_database)
        try:
            with self._job_locks.setdefault(name, threading.Lock()):
                return fn(wh, settings, **body)
        finally:
            wh.close()


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Path):
        return str(value)
    return str(value)


#: Roles that may POST /query (each reads what fupin.auth.may_read allows it).
READER_ROLES = (auth.OPERATOR, auth.ANALYST, auth.DASHBOARD)


def _clickhouse_error(exc: Exception):
    from warehouse.clickhouse_http import _error

    return _error(500, 1001, f"{type(exc).__name__}: {exc}")


def _handler(service: Service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("%s " + fmt, self.address_string(), *args)

        def _send(self, code: int, doc: Any) -> None:
            data = orjson.dumps(doc, default=_default, option=orjson.OPT_NON_STR_KEYS)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if not length:
                return {}
            doc = orjson.loads(self.rfile.read(length))
            if not isinstance(doc, dict):
                raise ValueError("the request body must be a JSON object")
            return doc

        def _authorize(self, roles: tuple[str, ...] | None) -> auth.TokenRecord:
            return auth.authorize(service.settings, self.headers.get("Authorization"), roles)

        def _clickhouse(self, method: str) -> bool:
            """ClickHouse's HTTP interface at ``/`` and ``/ping`` (warehouse.clickhouse_http), for BI tools."""
            if not (self.path == "/" or self.path.startswith(("/?", "/ping"))):
                return False
            from warehouse.clickhouse_http import answer

            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                reply = answer(service, method, self.path, self.headers, body)
            except Exception as exc:  # the protocol's error form, never a dropped connection
                log.exception("ClickHouse HTTP request failed")
                reply = _clickhouse_error(exc)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            return True

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self._clickhouse("GET"):
                return
            try:
                self._authorize(None)
                if self.path.rstrip("/") == "/health":
                    self._send(200, service.health())
                else:
                    self._send(404, {"error": f"no such resource {self.path}; try /health"})
            except auth.AuthError as exc:
                self._send(exc.status, {"error": str(exc)})
            except Exception as exc:
                self._send(500, {"error": str(exc)})

        def do_POST(self) -> None:  # noqa: N802
            if self._clickhouse("POST"):
                return
            try:
                if self.path.rstrip("/") == "/query":
                    caller = self._authorize(READER_ROLES)
                    self._send(200, service.query(self._body(), caller.role))
                elif self.path.startswith("/jobs/"):
                    self._authorize((auth.OPERATOR,))
                    self._send(200, service.job(self.path[len("/jobs/") :].strip("/"), self._body()))
                else:
                    self._authorize(None)
                    self._send(404, {"error": f"no such resource {self.path}"})
            except auth.AuthError as exc:
                self._send(exc.status, {"error": str(exc)})
            except ReadOnlyRefused as exc:
                self._send(403, {"error": str(exc)})
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})
            except WarehouseError as exc:
                self._send(422, {"error": str(exc)})
            except Exception as exc:
                log.exception("request %s failed", self.path)
                self._send(500, {"error": f"{type(exc).__name__}: {exc}"})

    return Handler


def serve(settings: Settings, sink: bool = True) -> None:
    """Run the service until SIGTERM or SIGINT; then shut down cleanly."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.mode != "embedded":
        raise SettingsError("the warehouse service owns embedded chdb: it runs in embedded mode only")
    other = service_url(settings)
    if other:
        raise SettingsError(f"a warehouse service already runs at {other} ({service_file(settings)})")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    service = Service(settings, sink=sink)
    try:
        service.start()
        while not stop.wait(1.0):
            pass
    finally:
        t0 = time.monotonic()
        service.stop()
        log.info("warehouse service stopped cleanly in %.1f s", time.monotonic() - t0)
