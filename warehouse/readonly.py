"""The one read-only query function: every read path (the service's query API, ``open_reader``,
dashboards, the BI endpoint) goes through :class:`ReadOnlyWarehouse`.

What the engine enforces, measured on chdb 4.4 (ClickHouse 26.9):

- a connection whose session holds ``readonly=1`` refuses every write, DDL, ``SYSTEM``, the
  table functions that reach outside (``file``, ``url``, ``s3``, ``remote``, ``executable``,
  ``mysql``, …), ``SET`` and every ``SETTINGS`` clause, and the client cannot lift it
  (``SET readonly=0`` is itself refused); the per-query limits are set on the session before it;
- but it still lets through ``KILL QUERY``, ``INTO OUTFILE`` (it wrote a file), ``USE``, the
  scalar function ``file()`` (it read /etc/hostname), chdb's ``Python()`` table function (it
  reads objects of the calling process), and every database, ``system.*`` included; and chdb
  runs several statements sent as one text.

So before running a statement the engine itself analyses it, never a regex over the SQL:

1. ``formatQuerySingleLine`` (the statement passed as a parameter) parses it as exactly one
   statement and gives its canonical text; that text, and only it, is analysed and run;
2. ``EXPLAIN AST``: the statement must be a bare ``SELECT`` (root ``SelectWithUnionQuery`` with
   no ``INTO OUTFILE``, ``FORMAT`` or ``SETTINGS`` part), read no table function and call no
   function that reaches outside (checked here already, because the analyzer of
   step 3 folds constant calls: ``file('/etc/passwd')`` would be read, though never returned);
3. ``EXPLAIN QUERY TREE run_passes = 0`` (the tree before any analysis pass, nothing evaluated):
   every table named, in ``FROM``, ``JOIN`` or ``IN``, is a CTE or lies in the platform's database
   and the role may read it, and no identifier names another database;
4. ``EXPLAIN QUERY TREE`` (the analyzer, after resolving CTEs, subqueries, ``IN`` and folded
   constants): every table it reads lies in the platform's database and the caller's role may
   read it (:func:`fupin.auth.may_read`), and no function that reaches outside is called.

A ClickHouse server is read on a user whose profile holds ``readonly=2`` with constraints that
pin the limits (docker/clickhouse/users.d/); the same analysis runs there too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fupin.auth import OPERATOR, may_read
from warehouse.client import ChdbWarehouse, WarehouseError, _RowQueries, param_text

#: The statement kinds a reader may run (root of the engine's AST).
READ_STATEMENTS = frozenset({"SelectWithUnionQuery"})
#: Tables every SELECT may name implicitly (``SELECT 1`` reads system.one).
IMPLICIT_TABLES = frozenset({"system.one"})
#: The catalog a BI client reads to list what it may query (the ClickHouse HTTP interface, and
#: only there): a session opened with ``catalog=True`` may read these, and the engine itself
#: filters their rows (``additional_table_filters``, set before ``readonly``) to the platform's
#: database and the tables the role may read.
CATALOG_TABLES = frozenset(
    {"system.settings", "system.databases", "system.tables", "system.columns", "system.functions"}
)
#: Scalar functions that read files, other databases' metadata, dictionaries or server state.
DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "hasColumnInTable",
        "joinGet",
        "joinGetOrNull",
        "getServerSetting",
        "getMergeTreeSetting",
        "getMacro",
        "getClientHTTPHeader",
        "filesystemAvailable",
        "filesystemCapacity",
        "filesystemUnreserved",
        "catboostEvaluate",
        "generateSerialID",
        "sleep",
        "sleepEachRow",
    }
)
DENIED_PREFIXES = ("dict",)
_DENIED_LOWER = frozenset(f.lower() for f in DENIED_FUNCTIONS)


def _denied(function: str) -> bool:
    name = function.lower()
    return name in _DENIED_LOWER or name.startswith(DENIED_PREFIXES)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-query limits of a read-only session (set before ``readonly``, so they stay)."""

    max_execution_time: int = 300
    max_rows_to_read: int = 2_000_000_000
    max_result_rows: int = 10_000_000
    max_result_bytes: int = 4_000_000_000
    #: The engine does not count a result built without reading a table (``arrayJoin(range(n))``)
    #: against max_result_rows; memory and time still bound it.
    max_memory_usage: int = 8_000_000_000

    def set_statement(self) -> str:
        return (
            f"SET max_execution_time={self.max_execution_time}, max_rows_to_read={self.max_rows_to_read}, "
            f"max_result_rows={self.max_result_rows}, max_result_bytes={self.max_result_bytes}, "
            f"max_memory_usage={self.max_memory_usage}, "
            "result_overflow_mode='throw', read_overflow_mode='throw', timeout_overflow_mode='throw'"
        )


class ReadOnlyRefused(WarehouseError):
    """A statement the read-only path refuses; the message says why, never the data."""


def _engine_refusal(exc: WarehouseError) -> WarehouseError:
    """The engine's own read-only refusal (code 164, READONLY) as a ReadOnlyRefused; else as is."""
    text = str(exc)
    if "(READONLY)" in text or "Code: 164." in text:
        return ReadOnlyRefused(f"read-only: the engine refused it: {text}")
    return exc


_TABLE = re.compile(r"^\s*TABLE id: \d+,.*?table_name: ([^,\s]+)")
_FUNCTION = re.compile(r"^\s*FUNCTION id: \d+, function_name: ([^,\s]+)")
#: ``… identifier: d.t`` (``, final: 1`` after it when the query reads the table FINAL).
_IDENTIFIER = re.compile(r"^IDENTIFIER id: \d+,.*?identifier: (.+?)(?:, final: \d+)?$")
_CTE = re.compile(r"cte_name: ([^,\s]+)")
#: Where an identifier names a table in the engine's unresolved query tree.
_TABLE_PLACES = ("JOIN TREE", "LEFT TABLE EXPRESSION", "RIGHT TABLE EXPRESSION")
#: Functions whose second argument may name a table (``x IN t``).
_IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn", "globalNotNullIn"}
)
#: Databases a reader never reaches, when the connection cannot list the others.
_KNOWN_DATABASES = frozenset({"system", "information_schema", "INFORMATION_SCHEMA", "default"})


@dataclass
class _Node:
    label: str
    children: list[_Node]


def _tree(lines: list[str]) -> list[_Node]:
    """The engine's indented EXPLAIN text as a tree of labels."""
    roots: list[_Node] = []
    stack: list[tuple[int, _Node]] = []
    for line in lines:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        node = _Node(line.strip(), [])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        (stack[-1][1].children if stack else roots).append(node)
        stack.append((depth, node))
    return roots


def _check_unresolved(
    lines: list[str],
    database: str,
    role: str,
    others: frozenset[str],
    allowed: frozenset[str] = IMPLICIT_TABLES,
) -> None:
    """The tables the statement names, from the engine's query tree before any analysis pass.

    The analysis (``EXPLAIN QUERY TREE``) evaluates constant scalar subqueries, and an error it
    raises may quote a value (``CAST((SELECT secret …) AS Enum8(…))`` says "Unknown element
    'secret'"): so every table is checked here first, where nothing has been evaluated.
    """
    ctes = {m.group(1) for line in lines if (m := _CTE.search(line))}

    def table(name: str) -> None:
        if name in ctes or name in allowed:
            return
        db, _, table_name = name.rpartition(".")
        if (db or database) != database:
            raise ReadOnlyRefused(f"read-only: {name} is outside the database {database}")
        if not may_read(role, table_name):
            raise ReadOnlyRefused(f"read-only: role {role} may not read {database}.{table_name}")

    def walk(node: _Node, place: str) -> None:
        if m := _IDENTIFIER.match(node.label):
            name = m.group(1).strip()
            if name not in allowed and name.split(".", 1)[0] in others:
                raise ReadOnlyRefused(f"read-only: {name} is outside the database {database}")
            if place == "table":
                table(name)
        fn = _FUNCTION.match(node.label)
        for child in node.children:
            if fn and fn.group(1) in _IN_FUNCTIONS and child.label == "ARGUMENTS":
                for arg in child.children:  # the LIST of the arguments
                    for i, item in enumerate(arg.children):
                        walk(item, "table" if i == 1 else "")
                continue
            walk(child, "table" if node.label in _TABLE_PLACES else "")

    for root in _tree(lines):
        walk(root, "")


def check_statement(
    run,
    sql: str,
    params: dict[str, Any] | None,
    database: str,
    role: str,
    quote=param_text,
    allowed: frozenset[str] = IMPLICIT_TABLES,
) -> str:
    """The canonical text of ``sql`` if ``role`` may run it read-only; else ReadOnlyRefused.

    ``run(sql, params) -> list[str]`` runs a statement on the read-only connection and gives the
    first column of its rows (the engine's parse and analysis); ``quote`` makes a text a String
    parameter for that connection; ``allowed``: the tables outside the database it may read
    (system.one; the catalog on a catalog session).
    """
    if not isinstance(sql, str) or not sql.strip():
        raise ReadOnlyRefused("read-only: an empty statement")
    try:
        canonical = run("SELECT formatQuerySingleLine({q:String})", {"q": quote(sql)})[0]
    except WarehouseError as exc:
        raise ReadOnlyRefused(f"read-only: not one statement the engine can parse: {exc}") from None
    ast = run(f"EXPLAIN AST {canonical}", params)
    root = ast[0].split(" ", 1)[0] if ast else ""
    if root not in READ_STATEMENTS:
        raise ReadOnlyRefused(f"read-only: only SELECT statements are accepted, not {root or 'this'}")
    if not ast[0].endswith("(children 1)"):
        raise ReadOnlyRefused("read-only: INTO OUTFILE, FORMAT and SETTINGS are not accepted")
    for i, line in enumerate(ast):
        node = line.strip().split(" ", 1)[0]
        if node == "Set":
            raise ReadOnlyRefused("read-only: SETTINGS are not accepted")
        if node == "TableExpression" and i + 1 < len(ast) and ast[i + 1].strip().startswith("Function "):
            name = ast[i + 1].strip().split(" ")[1]
            raise ReadOnlyRefused(f"read-only: table function {name}() is not accepted")
        if node == "Function" and _denied(name := line.strip().split(" ")[1]):
            # Before the analysis too: the analyzer folds constant calls (it would read the file).
            raise ReadOnlyRefused(f"read-only: function {name}() is not accepted")
    try:
        others = frozenset(run("SELECT name FROM system.databases", None)) - {database}
    except WarehouseError:  # a server reader without a grant on system.*: the engine's grants rule there
        others = _KNOWN_DATABASES - {database}
    _check_unresolved(
        run(f"EXPLAIN QUERY TREE run_passes = 0 {canonical}", params), database, role, others, allowed
    )
    for line in run(f"EXPLAIN QUERY TREE {canonical}", params):
        if line.lstrip().startswith("TABLE_FUNCTION"):
            raise ReadOnlyRefused("read-only: table functions are not accepted")
        if m := _TABLE.match(line):
            table = m.group(1)
            if table in allowed:
                continue
            db, _, name = table.partition(".")
            if db != database:
                raise ReadOnlyRefused(f"read-only: {table} is outside the database {database}")
            if not may_read(role, name):
                raise ReadOnlyRefused(f"read-only: role {role} may not read {table}")
        elif m := _FUNCTION.match(line):
            fn = m.group(1)
            if _denied(fn):
                raise ReadOnlyRefused(f"read-only: function {fn}() is not accepted")
    return canonical


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _catalog_filters(conn: ChdbWarehouse, database: str, role: str) -> str:
    """The session setting that makes the engine show a role only its own part of the catalog."""
    names = [
        str(r[0])
        for r in conn.query("SELECT name FROM system.tables WHERE database = {db:String}", {"db": database})
    ]
    readable = ", ".join(_quoted(n) for n in names if may_read(role, n)) or "''"
    tables = f"database = {_quoted(database)} AND name IN ({readable})"
    columns = f"database = {_quoted(database)} AND table IN ({readable})"
    filters = {
        "system.databases": f"name = {_quoted(database)}",
        "system.tables": tables,
        "system.columns": columns,
    }
    body = ", ".join(f"{_quoted(k)}: {_quoted(v)}" for k, v in filters.items())
    return f"SET additional_table_filters = {{{body}}}"


class ReadOnlyWarehouse(_RowQueries):
    """A read-only session on the warehouse for one role: query methods only, each statement checked.

    Embedded: two chdb connections with ``readonly=1`` on their sessions, one for the engine's
    analysis and one, with the per-query limits, for the statement (the analysis's own output must
    not count against the caller's result limit). Server: a
    :class:`~warehouse.client.ServerWarehouse` opened on a read-only user (its profile pins
    ``readonly`` and the limits).
    """

    def __init__(
        self,
        inner: Any,
        role: str = OPERATOR,
        analysis: Any = None,
        allowed: frozenset[str] = IMPLICIT_TABLES,
    ) -> None:
        self.inner = inner
        self.analysis = analysis or inner
        self.database = inner.database
        self.role = role
        self.allowed = allowed

    @classmethod
    def chdb(
        cls,
        path: Any,
        database: str,
        role: str = OPERATOR,
        limits: Limits | None = None,
        catalog: bool = False,
    ) -> ReadOnlyWarehouse:
        """``catalog``: the session may also read :data:`CATALOG_TABLES`, rows filtered by the engine."""
        limits = limits or Limits()
        opened: list[ChdbWarehouse] = []
        try:
            for setup in (limits.set_statement(), f"SET max_execution_time={limits.max_execution_time}"):
                conn = ChdbWarehouse(path, database, read_only=True)
                opened.append(conn)
                conn.execute(setup)
                if catalog:
                    conn.execute(_catalog_filters(conn, database, role))
                conn.execute("SET readonly=1")
        except WarehouseError:
            for conn in opened:
                conn.close()
            raise
        return cls(
            opened[0],
            role,
            analysis=opened[1],
            allowed=CATALOG_TABLES | IMPLICIT_TABLES if catalog else IMPLICIT_TABLES,
        )

    def _lines(self, sql: str, params: dict[str, Any] | None) -> list[str]:
        return [str(r[0]) for r in self._call("query_columns", sql, params, self.analysis)[1]]

    def _call(self, method: str, sql: str, params: dict[str, Any] | None, conn: Any = None) -> Any:
        try:
            return getattr(conn or self.inner, method)(sql, params)
        except ReadOnlyRefused:
            raise
        except WarehouseError as exc:
            raise _engine_refusal(exc) from None

    def check(self, sql: str, params: dict[str, Any] | None = None) -> str:
        quote = param_text if isinstance(self.inner, ChdbWarehouse) else str
        return check_statement(self._lines, sql, params, self.database, self.role, quote, self.allowed)

    def query_typed(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list, list[tuple]]:
        return self._call("query_typed", self.check(sql, params), params)

    def query_columns(self, sql: str, params: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        return self._call("query_columns", self.check(sql, params), params)

    def query_bytes(self, sql: str, params: dict[str, Any] | None, fmt: str) -> bytes:
        """The checked statement's result in one of the engine's output formats (embedded only)."""
        canonical = self.check(sql, params)
        try:
            return self.inner.query_format(canonical, params, fmt)
        except WarehouseError as exc:
            raise _engine_refusal(exc) from None

    def query_df(self, sql: str, params: dict[str, Any] | None = None):
        if isinstance(self.inner, ChdbWarehouse):
            return self._call("query_df", self.check(sql, params), params)
        return super().query_df(sql, params)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> None:
        raise ReadOnlyRefused("read-only: this reader runs SELECT statements only; writes run as jobs")

    def insert(
        self, table: str, columns: list[str], rows: list[tuple], dedup_token: str | None = None
    ) -> None:
        raise ReadOnlyRefused("read-only: this reader runs SELECT statements only; the sink and jobs write")

    def close(self) -> None:
        self.inner.close()
        if self.analysis is not self.inner:
            self.analysis.close()
