"""ClickHouse's HTTP interface on the embedded warehouse service, for BI tools (Superset, Grafana, Metabase).

A BI driver (clickhouse-connect, Superset's; Grafana's and Metabase's speak the same protocol)
sends ``POST /?database=…&default_format=…&session_id=…&<setting>=…`` with the statement in the
body (or ``query=`` in the URL), and ``GET /ping``. Every statement runs through
:mod:`warehouse.readonly` for the role of the caller's token, on a *catalog* session: it may also
read ``system.settings``, ``system.databases``, ``system.tables`` and ``system.columns``, whose
rows the engine filters to the platform's database and the tables the role may read (a dashboard
token sees the marts only). The token is the password (HTTP basic, ``X-ClickHouse-Key`` or
``password=``) or a bearer header; the user name is not checked.

Settings a client sends are not applied (a read-only session takes no ``SET``): the limits are the
service's. ``FORMAT x`` at the end of a statement, or ``default_format``, picks the output format
(Native, RowBinaryWithNamesAndTypes, JSON, TabSeparated, …: the engine writes it); the clause is
taken off before the statement is checked. ``SHOW DATABASES``, ``SHOW TABLES`` and ``DESCRIBE
TABLE t``, which drivers send to list what there is, become the equivalent catalog SELECT.
"""

from __future__ import annotations

import base64
import gzip
import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fupin import auth
from warehouse.client import WarehouseError
from warehouse.readonly import ReadOnlyRefused, ReadOnlyWarehouse

#: What the HTTP interface answers as the server's version (the embedded engine's is asked of it).
DISPLAY_NAME = "fupin-embedded"
#: URL parameters that are the protocol's, not settings.
PROTOCOL_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "compress",
        "decompress",
        "wait_end_of_query",
        "buffer_size",
        "quota_key",
    }
)
_FORMAT = re.compile(r"\s+FORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)
_SHOW_DATABASES = re.compile(r"^\s*SHOW\s+DATABASES\s*;?\s*$", re.IGNORECASE)
_SHOW_TABLES = re.compile(r"^\s*SHOW\s+TABLES(?:\s+(?:FROM|IN)\s+`?(\w+)`?)?\s*;?\s*$", re.IGNORECASE)
_DESCRIBE = re.compile(
    r"^\s*(?:DESCRIBE|DESC)\s+(?:TABLE\s+)?(?:`?(\w+)`?\.)?`?(\w+)`?\s*;?\s*$", re.IGNORECASE
)
_EXISTS = re.compile(r"^\s*EXISTS\s+(?:TABLE\s+)?(?:`?(\w+)`?\.)?`?(\w+)`?\s*;?\s*$", re.IGNORECASE)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]


def _error(status: int, code: int, message: str) -> Reply:
    text = f"Code: {code}. DB::Exception: {message}. (fupin)\n".encode()
    return Reply(
        status, text, {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(code)}
    )


def credential(headers: Any, params: dict[str, str]) -> str | None:
    """The token a client sent: as the password (basic, X-ClickHouse-Key, password=) or a bearer."""
    header = headers.get("Authorization") or ""
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:].strip()).decode().partition(":")[2] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return headers.get("X-ClickHouse-Key") or params.get("password") or None


def statement(sql: str, database: str) -> str:
    """The SELECT a driver's listing statement stands for; any other statement as it is."""
    q = _quote
    if _SHOW_DATABASES.match(sql):
        return "SELECT name FROM system.databases ORDER BY name"
    if m := _SHOW_TABLES.match(sql):
        return f"SELECT name FROM system.tables WHERE database = {q(m.group(1) or database)} ORDER BY name"
    if m := _DESCRIBE.match(sql):
        return (
            "SELECT name, type, default_kind AS default_type, default_expression, comment, "
            "compression_codec AS codec_expression, '' AS ttl_expression FROM system.columns "
            f"WHERE database = {q(m.group(1) or database)} AND table = {q(m.group(2))} ORDER BY position"
        )
    if m := _EXISTS.match(sql):
        return (
            "SELECT toUInt8(count() > 0) AS result FROM system.tables "
            f"WHERE database = {q(m.group(1) or database)} AND name = {q(m.group(2))}"
        )
    return sql


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def answer(service: Any, method: str, path: str, headers: Any, body: bytes) -> Reply:
    """One request of the ClickHouse HTTP interface, answered by the service's engine."""
    url = urlsplit(path)
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    if url.path.rstrip("/") == "/ping":
        return Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
    try:
        caller = auth.authorize(service.settings, f"Bearer {credential(headers, params) or ''}", READERS)
    except auth.AuthError as exc:
        return _error(exc.status, 516 if exc.status == 401 else 497, str(exc))
    if (headers.get("Content-Encoding") or "").lower() == "gzip":
        body = gzip.decompress(body)
    sql = (
        (params.get("query") or "")
        + ("\n" if params.get("query") and body else "")
        + body.decode("utf-8", "replace")
    )
    if not sql.strip():
        return Reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
    database = service.settings.clickhouse_database
    asked = params.get("database") or database
    if asked not in (database, "default"):
        return _error(403, 81, f"database {asked} is not served here; the platform's database is {database}")
    fmt = params.get("default_format") or "TabSeparated"
    if m := _FORMAT.search(sql):
        fmt, sql = m.group(1), sql[: m.start()]
    query_params = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
    try:
        wh = ReadOnlyWarehouse.chdb(service.path, database, caller.role, service.limits, catalog=True)
    except WarehouseError as exc:
        return _error(500, 1002, str(exc))
    try:
        data = wh.query_bytes(statement(sql.strip().rstrip(";"), database), query_params or None, fmt)
    except ReadOnlyRefused as exc:
        return _error(403, 164, str(exc))
    except WarehouseError as exc:
        return _error(
            400 if "Syntax error" in str(exc) else 500, 62 if "Syntax error" in str(exc) else 1001, str(exc)
        )
    finally:
        wh.close()
    return Reply(
        200,
        data,
        {
            "Content-Type": "application/octet-stream"
            if fmt in ("Native", "RowBinaryWithNamesAndTypes", "Arrow", "Parquet")
            else "text/plain; charset=UTF-8",
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": DISPLAY_NAME,
            "X-ClickHouse-Query-Id": params.get("query_id") or str(uuid.uuid4()),
            "X-ClickHouse-Database": database,
            "X-ClickHouse-Summary": '{"read_rows":"0","read_bytes":"0","written_rows":"0","written_bytes":"0","total_rows_to_read":"0","result_rows":"0","result_bytes":"0"}',
        },
    )


#: The roles that may read through this interface (each what fupin.auth.may_read allows it).
READERS = (auth.OPERATOR, auth.ANALYST, auth.DASHBOARD)
