"""One warehouse interface, three implementations: embedded chdb, ClickHouse server, and the service API.

Query parameters use ClickHouse's server-side syntax everywhere (``{name:Type}``), so one SQL text
runs on chdb, on a server (clickhouse-driver with ``server_side_params``) and through the
embedded service. Rows come back as tuples of Python values (datetimes are aware, UTC).

chdb binds one data path per process and lets threads each hold a connection to it, so a
:class:`ChdbWarehouse` is cheap (one connection) and not shared between threads: the service
gives each thread its own.
"""

from __future__ import annotations

import contextlib
import struct
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson

from fupin.config import Settings


class WarehouseError(RuntimeError):
    """A statement the warehouse refused or could not run; the message carries ClickHouse's reason."""


@runtime_checkable
class Warehouse(Protocol):
    database: str

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None: ...

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]: ...

    def query_dicts(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]: ...

    def query_columns(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple]]: ...

    def query_df(self, sql: str, params: dict[str, Any] | None = None): ...

    def insert(
        self, table: str, columns: list[str], rows: list[tuple], dedup_token: str | None = None
    ) -> None: ...

    def close(self) -> None: ...


def _qualified(database: str, table: str) -> str:
    return table if "." in table else f"{database}.{table}"


# ------------------------------------------------------------------------------------------------
# chdb


class ChdbWarehouse:
    """Embedded ClickHouse through one chdb connection (this process owns the data path)."""

    def __init__(self, path: str | Path, database: str = "fupin", read_only: bool = False) -> None:
        """``read_only``: the database must exist (a reader creates nothing); see warehouse.readonly."""
        import chdb

        self.path = str(path)
        self.database = database
        Path(self.path).mkdir(parents=True, exist_ok=True)
        try:
            self._conn = chdb.connect(self.path)
        except Exception as exc:  # chdb raises RuntimeError/ChdbError with the engine's message
            raise WarehouseError(
                f"cannot open the embedded warehouse at {self.path}: {exc} "
                "(another process may hold it: is 'fupin warehouse serve' running?)"
            ) from exc
        self._lock = threading.Lock()
        self._types: dict[str, list[tuple[str, str]]] = {}
        # Unqualified names resolve in our database, as on a server client opened on it.
        if not read_only:
            self.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        try:
            self.execute(f"USE {database}")
        except WarehouseError:
            self.close()
            raise

    # -- reading ------------------------------------------------------------------------------
    def _run(self, sql: str, fmt: str, params: dict[str, Any] | None) -> Any:
        with self._lock:
            try:
                return self._conn.query(sql, fmt, params=params or None)
            except Exception as exc:
                raise WarehouseError(str(exc).strip()) from exc

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._run(sql, "CSV", params)

    def query_format(self, sql: str, params: dict[str, Any] | None, fmt: str) -> bytes:
        """The result in one of the engine's output formats (``JSONEachRow``, ``CSVWithNames``, ...)."""
        return self._run(sql, fmt, params).bytes()

    def _table(self, sql: str, params: dict[str, Any] | None):
        return self._run(sql, "arrowtable", params)

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return self.query_columns(sql, params)[1]

    def query_columns(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        table = self._table(sql, params)
        rows = list(zip(*map(_pylist, table.columns), strict=True)) if table.num_columns else []
        return list(table.column_names), rows

    def query_typed(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list, list[tuple]]:
        """Column names, their Arrow types, rows."""
        table = self._table(sql, params)
        rows = list(zip(*map(_pylist, table.columns), strict=True)) if table.num_columns else []
        return list(table.column_names), list(table.schema.types), rows

    def query_dicts(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        names, rows = self.query_columns(sql, params)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def query_df(self, sql: str, params: dict[str, Any] | None = None):
        return self._run(sql, "dataframe", params)

    # -- writing ------------------------------------------------------------------------------
    def insert(
        self, table: str, columns: list[str], rows: list[tuple], dedup_token: str | None = None
    ) -> None:
        """Insert rows in one block; a repeated ``dedup_token`` on the same table inserts nothing.

        Text rows go as JSONCompactEachRow (fast, orjson); a batch holding raw bytes (dead
        letters keep the original bytes, which need not be UTF-8) goes as RowBinary.
        """
        if not rows:
            return
        target = _qualified(self.database, table)
        settings = "SETTINGS date_time_input_format='best_effort'"
        if dedup_token:
            settings += f", insert_deduplication_token='{_escape(dedup_token)}'"
        head = f"INSERT INTO {target} ({', '.join(columns)}) {settings}"
        if any(isinstance(v, bytes | bytearray) for row in rows for v in row):
            fmt, data = "RowBinary", self._row_binary(target, columns, rows)
        else:
            fmt, data = "JSONCompactEachRow", b"\n".join(map(_dumps, rows))
        with self._lock:
            try:
                with self._conn.send_insert(head, fmt) as ins:
                    ins.append(data)
                    ins.finish()
            except Exception as exc:
                raise WarehouseError(f"insert into {target} failed: {str(exc).strip()}") from exc

    def insert_json_lines(self, table: str, columns: list[str], data: bytes, dedup_token: str | None) -> None:
        """Insert pre-serialised JSONCompactEachRow lines (the sink's fast path).

        A JSON object in a String column is read as its text, byte for byte.
        """
        target = _qualified(self.database, table)
        settings = (
            "SETTINGS date_time_input_format='best_effort', input_format_json_read_objects_as_strings=1"
        )
        if dedup_token:
            settings += f", insert_deduplication_token='{_escape(dedup_token)}'"
        with self._lock:
            try:
                with self._conn.send_insert(
                    f"INSERT INTO {target} ({', '.join(columns)}) {settings}", "JSONCompactEachRow"
                ) as ins:
                    ins.append(data)
                    ins.finish()
            except Exception as exc:
                raise WarehouseError(f"insert into {target} failed: {str(exc).strip()}") from exc

    def query_batch(self, sql: str, sink_batch: Any) -> Any:
        """Run ``sql`` reading ``sink_batch`` (a pyarrow table) as ``Python(sink_batch)``; an Arrow table.

        chdb finds the object by its name in the calling frames, so the parameter's name is the
        name the SQL uses. The engine reads it without holding the GIL.
        """
        return self._run(sql, "arrowtable", None)

    def _column_types(self, target: str) -> dict[str, str]:
        if target not in self._types:
            db, _, name = target.partition(".")
            self._types[target] = self.query(
                "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                {"db": db, "t": name},
            )
        return dict(self._types[target])

    def _row_binary(self, target: str, columns: list[str], rows: list[tuple]) -> bytes:
        types = self._column_types(target)
        try:
            encoders = [_encoder(types[c]) for c in columns]
        except KeyError as exc:
            raise WarehouseError(f"insert into {target}: no column {exc}") from None
        out = bytearray()
        for row in rows:
            for enc, value in zip(encoders, row, strict=True):
                enc(out, value)
        return bytes(out)

    def connect_again(self) -> ChdbWarehouse:
        """Another connection to this process's engine: its statements run beside this one's."""
        return ChdbWarehouse(self.path, self.database)

    def close(self) -> None:
        with self._lock, contextlib.suppress(Exception):  # closing twice is harmless
            self._conn.close()


def _pylist(column) -> list:
    """Python values of an Arrow column; a String holding non-UTF-8 bytes (a dead letter) stays bytes."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        import pyarrow as pa

        values = column.cast(pa.binary()).to_pylist()
        out = []
        for v in values:
            try:
                out.append(v.decode() if v is not None else None)
            except UnicodeDecodeError:
                out.append(v)
        return out


def param_text(text: str) -> str:
    """A String query parameter's value as the engine reads it (escaped format: backslash, tab,
    newline), so that any text, a regular expression or a statement, arrives as it is."""
    return (
        text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace("\0", "\\0")
    )


def string_param(warehouse: Any, text: str) -> str:
    """``text`` as a String parameter for this warehouse: chdb reads the escaped format; the
    server driver escapes parameters itself."""
    inner = getattr(warehouse, "inner", warehouse)
    return param_text(text) if isinstance(inner, ChdbWarehouse) else text


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"cannot store {type(value).__name__}")


def _dumps(row: Sequence[Any]) -> bytes:
    return orjson.dumps(row, default=_default)


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, datetime | date):
        return value.isoformat().encode()
    return str(value).encode("utf-8")


def _encoder(ch_type: str):
    """A RowBinary writer for one ClickHouse column type (the scalar types our tables use)."""
    if ch_type.startswith("Nullable("):
        inner = _encoder(ch_type[9:-1])

        def nullable(out: bytearray, value: Any) -> None:
            if value is None:
                out.append(1)
            else:
                out.append(0)
                inner(out, value)

        return nullable
    if ch_type.startswith("LowCardinality("):
        return _encoder(ch_type[15:-1])
    if ch_type == "String":

        def string(out: bytearray, value: Any) -> None:
            data = _as_bytes("" if value is None else value)
            _varint(out, len(data))
            out += data

        return string
    if ch_type.startswith("DateTime64("):
        scale = int(ch_type[11:].split(",")[0].rstrip(")"))

        def dt64(out: bytearray, value: Any) -> None:
            if isinstance(value, str):
                from fupin.timeutil import parse_instant

                value = parse_instant(value)
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            micros = int(value.timestamp()) * 1_000_000 + value.microsecond
            out += struct.pack("<q", micros * 10**scale // 1_000_000)

        return dt64
    ints = {
        "UInt8": "<B",
        "UInt16": "<H",
        "UInt32": "<I",
        "UInt64": "<Q",
        "Int8": "<b",
        "Int16": "<h",
        "Int32": "<i",
        "Int64": "<q",
        "Float32": "<f",
        "Float64": "<d",
        "Bool": "<B",
    }
    if ch_type in ints:
        fmt = ints[ch_type]
        conv = float if fmt in ("<f", "<d") else int

        def number(out: bytearray, value: Any) -> None:
            out += struct.pack(fmt, conv(value))

        return number
    if ch_type == "Date":

        def day(out: bytearray, value: Any) -> None:
            if isinstance(value, str):
                value = date.fromisoformat(value[:10])
            out += struct.pack("<H", (value - date(1970, 1, 1)).days)

        return day
    raise WarehouseError(f"RowBinary insert does not support column type {ch_type}")


# ------------------------------------------------------------------------------------------------
# ClickHouse server


class _RowQueries:
    """query, query_dicts and query_df for clients whose one primitive is query_columns."""

    def query_columns(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        raise NotImplementedError

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return self.query_columns(sql, params)[1]

    def query_dicts(self, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
        names, rows = self.query_columns(sql, params)
        return [dict(zip(names, r, strict=True)) for r in rows]

    def query_df(self, sql: str, params: dict[str, Any] | None = None):
        import pandas as pd

        names, rows = self.query_columns(sql, params)
        return pd.DataFrame.from_records(rows, columns=names)


class ServerWarehouse(_RowQueries):
    """ClickHouse server through clickhouse-driver (native protocol), server-side parameters."""

    def __init__(self, settings: Settings, create_database: bool = True) -> None:
        from clickhouse_driver import Client

        self.database = settings.clickhouse_database
        options = {
            "host": settings.clickhouse_host,
            "port": settings.clickhouse_port,
            "user": settings.clickhouse_user,
            "password": settings.clickhouse_password,
            "settings": {"server_side_params": True, "use_numpy": False},
        }
        self._lock = threading.Lock()
        if create_database:
            # The database must exist before a client can be opened on it (migrations create the rest).
            self._client = Client(**options)
            self.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            self._client.disconnect()
        self._client = Client(database=self.database, **options)

    def _call(self, fn, *args, **kwargs):
        with self._lock:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                raise WarehouseError(
                    str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                ) from exc

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        self._call(self._client.execute, sql, params or None)

    def query_columns(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        rows, cols = self._call(self._client.execute, sql, params or None, with_column_types=True)
        return [c[0] for c in cols], [tuple(_aware(v) for v in r) for r in rows]

    def insert(
        self, table: str, columns: list[str], rows: list[tuple], dedup_token: str | None = None
    ) -> None:
        if not rows:
            return
        settings: dict[str, Any] = {"insert_deduplicate": 1}
        if dedup_token:
            settings["insert_deduplication_token"] = dedup_token
        target = _qualified(self.database, table)
        self._call(
            self._client.execute,
            f"INSERT INTO {target} ({', '.join(columns)}) VALUES",
            [tuple(_naive_for_driver(v) for v in r) for r in rows],
            settings=settings,
        )

    def close(self) -> None:
        self._client.disconnect()


def _aware(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _naive_for_driver(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] in "T ":
        # ISO date-times as text (how the sink hands them to chdb): the driver wants datetimes.
        try:
            from fupin.timeutil import parse_instant

            return parse_instant(value)
        except ValueError:
            return value
    return value


# ------------------------------------------------------------------------------------------------
# The embedded service's read API


class RemoteWarehouse(_RowQueries):
    """Read-only client of a running warehouse service (embedded mode): query methods only."""

    def __init__(
        self, url: str, database: str = "fupin", timeout: float = 300.0, headers: dict[str, str] | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.timeout = timeout
        self.headers = headers or {}

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return http_post_json(self.url + path, body, self.timeout, self.headers)

    def query_columns(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        result = self._post("/query", {"sql": sql, "params": params or {}, "_database": self.database})
        types = result.get("types") or [""] * len(result["columns"])
        convert = [_from_json(t) for t in types]
        rows = [tuple(c(v) for c, v in zip(convert, row, strict=True)) for row in result["rows"]]
        return result["columns"], rows

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        raise WarehouseError(
            "the warehouse service API is read-only: run writes as a job (POST /jobs/<name>)"
        )

    def insert(
        self, table: str, columns: list[str], rows: list[tuple], dedup_token: str | None = None
    ) -> None:
        raise WarehouseError("the warehouse service API is read-only: the sink and jobs write")

    def close(self) -> None:
        pass


def _from_json(ch_type: str):
    if "DateTime" in ch_type:
        from fupin.timeutil import parse_instant

        return lambda v: None if v is None else parse_instant(v)
    if ch_type.removeprefix("Nullable(").startswith("Date"):
        return lambda v: None if v is None else date.fromisoformat(v)
    return lambda v: v


def http_get_json(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as resp:
            return orjson.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WarehouseError(f"the warehouse service at {url} does not answer: {exc}") from exc


def http_post_json(
    url: str, body: dict[str, Any], timeout: float = 300.0, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """POST JSON and return the JSON answer; a service error becomes WarehouseError with its reason."""
    req = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            reason = orjson.loads(exc.read()).get("error", str(exc))
        except ValueError:
            reason = str(exc)
        raise WarehouseError(reason) from None
    except (urllib.error.URLError, OSError) as exc:
        raise WarehouseError(f"the warehouse service at {url} does not answer: {exc}") from exc


# ------------------------------------------------------------------------------------------------
# Choosing one


def connect(settings: Settings) -> Warehouse:
    """Embedded mode: chdb on ``settings.chdb_data_path`` (this process becomes an owner); server: the driver."""
    if settings.mode == "embedded":
        return ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    return ServerWarehouse(settings)


def open_reader(settings: Settings, role: str = "operator") -> Warehouse:
    """A read-only reader (warehouse.readonly) that does not fight the owner.

    Embedded: the running service's API when there is one (with the local operator credential,
    or ``FUPIN_TOKEN``), else a read-only chdb session of this process. Server: the read-only
    user (``clickhouse_reader_user``) when configured, else the configured user, and the same
    checks of every statement.
    """
    from fupin.auth import auth_headers
    from fupin.stack import service_url
    from warehouse.readonly import ReadOnlyWarehouse

    if settings.mode == "embedded":
        url = service_url(settings)
        if url:
            return RemoteWarehouse(url, settings.clickhouse_database, headers=auth_headers(settings))
        return ReadOnlyWarehouse.chdb(settings.chdb_data_path, settings.clickhouse_database, role)
    if settings.clickhouse_reader_user:
        settings = settings.with_(
            clickhouse_user=settings.clickhouse_reader_user,
            clickhouse_password=settings.clickhouse_reader_password or "",
        )
    return ReadOnlyWarehouse(ServerWarehouse(settings, create_database=False), role)
