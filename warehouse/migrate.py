"""Versioned, idempotent DDL migrations: ``warehouse/migrations/NNNN_name.sql``, applied in order.

Every statement is ``CREATE … IF NOT EXISTS`` (or otherwise safe to repeat), so a migration cut
short by a crash is simply applied again; ``schema_migrations`` records what finished. The same
files run on chdb and on ClickHouse server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from warehouse.client import Warehouse, WarehouseError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]

    def statements(self, database: str) -> list[str]:
        return split_statements(self.text.replace("{database}", database))


def split_statements(sql: str) -> list[str]:
    """Statements of a migration file: ``;`` at the end of a line ends one; ``--`` comments go."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    statements, current = [], []
    for line in lines:
        current.append(line)
        if line.rstrip().endswith(";"):
            statements.append("\n".join(current).strip().rstrip(";").strip())
            current = []
    tail = "\n".join(current).strip()
    if tail:
        statements.append(tail)
    return [s for s in statements if s]


def migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise WarehouseError(f"{path}: a migration is named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"{directory}: two migrations share a version number")
    return found


def applied(warehouse: Warehouse) -> dict[int, str]:
    """Recorded migrations: version → checksum."""
    rows = warehouse.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {warehouse.database}.schema_migrations GROUP BY version"
    )
    return {int(v): c for v, c in rows}


def migrate(warehouse: Warehouse, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the migrations not yet recorded; returns their file names (empty when up to date)."""
    db = warehouse.database
    warehouse.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
    warehouse.execute(
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
        "checksum String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"
    )
    done = applied(warehouse)
    ran = []
    for m in migrations(directory):
        if m.version in done:
            continue
        for statement in m.statements(db):
            try:
                warehouse.execute(statement)
            except WarehouseError as exc:
                raise WarehouseError(f"migration {m.path.name} failed: {exc}") from exc
        warehouse.insert(
            "schema_migrations",
            ["version", "name", "checksum", "applied_at"],
            [(m.version, m.name, m.checksum, datetime.now(UTC))],
        )
        ran.append(m.path.name)
    return ran


def schema_snapshot(warehouse: Warehouse) -> list[tuple]:
    """Every table and view of the database with its full definition: to compare two states."""
    return warehouse.query(
        "SELECT name, engine, create_table_query FROM system.tables WHERE database = {db:String} ORDER BY name",
        {"db": warehouse.database},
    )
