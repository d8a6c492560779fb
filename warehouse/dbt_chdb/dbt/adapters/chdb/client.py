"""The chdb client behind dbt-clickhouse's ``ChClientWrapper`` interface.

Each dbt thread gets its own chdb connection (a session: ``USE`` and ``SET`` stay per connection)
to the process's one engine. Results come back as JSONCompact, which carries each column's name
and type; values are typed by those types (:mod:`dbt.adapters.chdb.types`). Per-query ``settings=``
are set on the session for that one statement and put back after it, so they apply to every
statement (SELECT, DDL, introspection) alike. ``DBT_CHDB_SQL_LOG=<file>`` logs every statement
with its time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
from dbt.adapters.chdb.credentials import ChdbCredentials
from dbt.adapters.chdb.statements import is_access_management, multi_statement_error
from dbt.adapters.chdb.types import row_converter
from dbt.adapters.clickhouse.column import ClickHouseColumn
from dbt.adapters.clickhouse.dbclient import ChClientWrapper
from dbt.adapters.clickhouse.logger import logger
from dbt.adapters.clickhouse.query import quote_identifier
from dbt_common.exceptions import DbtDatabaseError

import chdb

#: Settings dbt-clickhouse sends per session that a local engine has no use for.
_SKIPPED_SETTINGS = {"session_id"}
#: Output settings of every session: wide integers, decimals and inf/nan as JSON strings, so no
#: value goes through a float on its way to Python.
_OUTPUT_SETTINGS = {
    "output_format_json_quote_64bit_integers": 1,
    "output_format_json_quote_decimals": 1,
    "output_format_json_quote_denormals": 1,
    "output_format_json_named_tuples_as_objects": 1,
}

#: File to append one line per statement to (end time, seconds, thread, the statement's start).
_SQL_LOG = os.environ.get("DBT_CHDB_SQL_LOG")
_SQL_LOG_LOCK = threading.Lock()

NO_ACCESS_MANAGEMENT = (
    "chdb (embedded ClickHouse) has no access management: users, roles and grants do not exist "
    "there, so this statement cannot be honoured. Run it on a ClickHouse server target"
)


def _log_statement(sql: str, seconds: float) -> None:
    if _SQL_LOG:
        line = " ".join(sql.split())[:300]
        with _SQL_LOG_LOCK, open(_SQL_LOG, "a") as f:
            f.write(f"{time.time():.3f}\t{seconds:.4f}\t{threading.get_ident()}\t{line}\n")


class ChdbResult:
    """What dbt-clickhouse expects of a query result: rows, column names and column types."""

    def __init__(self, column_names: list[str], column_types: list[str], rows: list[tuple]):
        self.column_names = column_names
        self.column_types = column_types
        self.result_set = rows

    @property
    def first_item(self) -> Any:
        return self.result_set[0][0] if self.result_set and self.result_set[0] else None


class ChdbClient(ChClientWrapper):
    def _create_client(self, credentials: ChdbCredentials) -> Any:
        if not credentials.path:
            raise DbtDatabaseError("chdb profile needs 'path' (or DBT_CHDB_PATH)")
        conn = chdb.connect(str(credentials.path))
        for key, value in {**self._conn_settings, **_OUTPUT_SETTINGS}.items():
            if key in _SKIPPED_SETTINGS:
                continue
            try:
                conn.query(f"SET {key} = {_literal(value)}")
            except Exception as exc:  # as a server client does: an unknown setting is ignored, loudly
                logger.warning(f"chdb: setting {key} = {value!r} not applied: {str(exc).splitlines()[0]}")
        return conn

    # --- running statements -------------------------------------------------------------------

    def _execute(self, sql: str) -> ChdbResult:
        """One statement, refused as a server refuses it if it is several or access management."""
        message = multi_statement_error(sql)
        if message:
            raise DbtDatabaseError(message)
        if is_access_management(sql):
            raise DbtDatabaseError(f"{NO_ACCESS_MANAGEMENT}: {' '.join(sql.split())[:120]}")
        started = time.monotonic()
        try:
            res = self._client.query(sql, "JSONCompact")
        except Exception as exc:
            raise DbtDatabaseError(str(exc)) from exc
        finally:
            _log_statement(sql, time.monotonic() - started)
        raw = res.bytes() if hasattr(res, "bytes") else bytes(res)
        if not raw.strip():
            return ChdbResult([], [], [])
        doc = orjson.loads(raw)
        meta = doc.get("meta", [])
        types = [m["type"] for m in meta]
        convert = row_converter(types)
        return ChdbResult([m["name"] for m in meta], types, [convert(r) for r in doc.get("data", [])])

    @contextlib.contextmanager
    def _settings(self, settings: dict[str, Any] | None) -> Iterator[None]:
        """``settings`` on this session for one statement, the session's own values put back after."""
        settings = {k: v for k, v in (settings or {}).items() if k not in _SKIPPED_SETTINGS}
        if not settings:
            yield
            return
        names = ", ".join(_literal(str(k)) for k in settings)
        before = self._execute(f"SELECT name, value FROM system.settings WHERE name IN ({names})")
        previous = dict(before.result_set)
        unknown = set(settings) - set(previous)
        if unknown:
            raise DbtDatabaseError(f"Code: 115. DB::Exception: Unknown setting(s) {sorted(unknown)}. (UNKNOWN_SETTING)")
        self._execute("SET " + ", ".join(f"{k} = {_literal(v)}" for k, v in settings.items()))
        try:
            yield
        finally:
            self._execute("SET " + ", ".join(f"{k} = {_literal(previous[k])}" for k in settings))

    def query(self, sql: str, **kwargs: Any) -> ChdbResult:
        with self._settings(kwargs.get("settings")):
            return self._execute(sql)

    def command(self, sql: str, **kwargs: Any) -> Any:
        with self._settings(kwargs.get("settings")):
            return self._execute(sql).first_item

    def columns_in_query(self, sql: str, **kwargs: Any) -> list[ClickHouseColumn]:
        res = self.query(f"SELECT * FROM ( \n{sql.rstrip().rstrip(';')} \n) LIMIT 0", **kwargs)
        return [
            ClickHouseColumn.create(n, t) for n, t in zip(res.column_names, res.column_types, strict=True)
        ]

    def get_ch_setting(self, setting_name: str) -> tuple[Any, int] | None:
        try:
            res = self._execute(
                f"SELECT value, readonly FROM system.settings WHERE name = {_literal(setting_name)}"
            )
        except DbtDatabaseError:
            return None
        return (res.result_set[0][0], res.result_set[0][1]) if res.result_set else (None, 0)

    def close(self) -> None:
        # Connections to chdb are sessions; closing one leaves the engine to the others.
        with contextlib.suppress(Exception):
            self._client.close()

    def _set_client_database(self) -> None:
        self._execute(f"USE {quote_identifier(self.database)}")

    def _server_version(self) -> str:
        return str(self.command("SELECT version()"))


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return text if text.isdigit() else "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
