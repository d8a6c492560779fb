"""The chdb client behind dbt-clickhouse's ``ChClientWrapper`` interface.

Each dbt thread gets its own chdb connection (a session: ``USE`` and ``SET`` stay per connection)
to the process's one engine. Results come back as JSONCompact, which carries the column names and
types that dbt-clickhouse needs. ``FUPIN_DBT_SQL_LOG=<file>`` logs every statement with its time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

import orjson
from dbt.adapters.chdb.credentials import ChdbCredentials
from dbt.adapters.clickhouse.column import ClickHouseColumn
from dbt.adapters.clickhouse.dbclient import ChClientWrapper
from dbt.adapters.clickhouse.query import quote_identifier
from dbt_common.exceptions import DbtDatabaseError

import chdb

# Settings dbt-clickhouse sends per session that a local engine does not know or need.
_SKIPPED_SETTINGS = {"session_id"}
_JSON_SETTINGS = (
    " SETTINGS output_format_json_quote_64bit_integers = 0, output_format_json_quote_decimals = 0,"
    " output_format_json_quote_denormals = 1"
)


#: File to append one line per statement to (end time, seconds, thread, the statement's start):
#: where a build's time goes (dbt_project/README.md).
_SQL_LOG = os.environ.get("FUPIN_DBT_SQL_LOG")
_SQL_LOG_LOCK = threading.Lock()


def _log_statement(sql: str, seconds: float) -> None:
    if _SQL_LOG:
        line = " ".join(sql.split())[:300]
        with _SQL_LOG_LOCK, open(_SQL_LOG, "a") as f:
            f.write(f"{time.time():.3f}\t{seconds:.4f}\t{threading.get_ident()}\t{line}\n")


class ChdbResult:
    """What dbt-clickhouse expects of a query result: rows and column names (and types)."""

    def __init__(self, column_names: list[str], column_types: list[str], rows: list[tuple]):
        self.column_names = column_names
        self.column_types = column_types
        self.result_set = rows


class ChdbClient(ChClientWrapper):
    def _create_client(self, credentials: ChdbCredentials) -> Any:
        if not credentials.path:
            raise DbtDatabaseError("chdb profile needs 'path' (or FUPIN_CHDB_PATH)")
        conn = chdb.connect(str(credentials.path))
        for key, value in self._conn_settings.items():
            if key in _SKIPPED_SETTINGS:
                continue
            # A setting this engine lacks is harmless.
            with contextlib.suppress(Exception):
                conn.query(f"SET {key} = {_literal(value)}")
        return conn

    def _run(self, sql: str, fmt: str) -> Any:
        started = time.monotonic()
        try:
            return self._client.query(sql, fmt)
        except Exception as exc:
            raise DbtDatabaseError(str(exc)) from exc
        finally:
            _log_statement(sql, time.monotonic() - started)

    def _json(self, sql: str) -> ChdbResult:
        text = sql.rstrip().rstrip(";")
        started = time.monotonic()
        try:
            res = self._client.query(text + _JSON_SETTINGS, "JSONCompact")
            _log_statement(text, time.monotonic() - started)
        except Exception as exc:
            _log_statement("(failed with SETTINGS, run again without) " + text, time.monotonic() - started)
            msg = str(exc)
            if "SETTINGS" not in msg and "Syntax error" not in msg:
                raise DbtDatabaseError(msg) from exc
            # Statements that take no trailing SETTINGS (SHOW ..., some DDL): plain run.
            res = self._run(text, "JSONCompact")
        raw = res.bytes() if hasattr(res, "bytes") else bytes(res)
        if not raw.strip():
            return ChdbResult([], [], [])
        doc = orjson.loads(raw)
        meta = doc.get("meta", [])
        rows = [tuple(r) for r in doc.get("data", [])]
        return ChdbResult([m["name"] for m in meta], [m["type"] for m in meta], rows)

    def query(self, sql: str, **kwargs: Any) -> ChdbResult:
        return self._json(sql)

    def command(self, sql: str, **kwargs: Any) -> Any:
        res = self._run(sql, "JSONCompact")
        raw = res.bytes()
        if not raw.strip():
            return None
        data = orjson.loads(raw).get("data", [])
        return data[0][0] if data and data[0] else None

    def columns_in_query(self, sql: str, **kwargs: Any) -> list[ClickHouseColumn]:
        res = self._json(f"SELECT * FROM ( \n{sql} \n) LIMIT 0")
        return [
            ClickHouseColumn.create(n, t) for n, t in zip(res.column_names, res.column_types, strict=True)
        ]

    def get_ch_setting(self, setting_name: str) -> tuple[Any, int] | None:
        try:
            res = self._json(f"SELECT value, readonly FROM system.settings WHERE name = '{setting_name}'")
        except DbtDatabaseError:
            return None
        return (res.result_set[0][0], res.result_set[0][1]) if res.result_set else (None, 0)

    def close(self) -> None:
        # Connections to chdb are sessions; closing one leaves the engine to the others.
        with contextlib.suppress(Exception):
            self._client.close()

    def _set_client_database(self) -> None:
        self._run(f"USE {quote_identifier(self.database)}", "CSV")

    def _server_version(self) -> str:
        return str(self.command("SELECT version()"))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return text if text.isdigit() else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
