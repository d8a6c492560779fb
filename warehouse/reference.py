"""Reference tables from ``settings.reference_path`` (regions.csv, population.csv, lines.csv).

The producers validate the files before they get there (``fupin reference load``); this job only
converts the columns to the tables' types and replaces each table's contents.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fupin.config import Settings
from warehouse.client import Warehouse, WarehouseError


def _opt(conv: Callable[[str], Any]) -> Callable[[str | None], Any]:
    return lambda v: None if v is None or v.strip() == "" else conv(v.strip())


def _text(v: str | None) -> str:
    return (v or "").strip()


#: table → (file, [(column, converter)])
TABLES: dict[str, tuple[str, list[tuple[str, Callable[[Any], Any]]]]] = {
    "reference_regions": (
        "regions.csv",
        [
            ("region_code", _text),
            ("name", _text),
            ("level", _text),
            ("parent_code", _opt(str)),
            ("is_poor_county", lambda v: 1 if str(v).strip().lower() in ("1", "true", "yes") else 0),
            ("zone", _text),
        ],
    ),
    "reference_population": (
        "population.csv",
        [
            ("region_code", _text),
            ("year", int),
            ("agricultural_population", int),
            ("rural_households", int),
        ],
    ),
    "reference_lines": (
        "lines.csv",
        [
            ("province_code", _text),
            ("year", int),
            ("poverty_line", float),
            ("poverty_line_source", _text),
            ("monitoring_line", _opt(float)),
            ("monitoring_line_source", _opt(str)),
        ],
    ),
}


def read_rows(path: Path, columns: list[tuple[str, Callable[[Any], Any]]]) -> list[tuple]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c, _ in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise WarehouseError(f"{path}: missing column(s) {', '.join(missing)}")
        rows = []
        for line, record in enumerate(reader, start=2):
            try:
                rows.append(tuple(conv(record[c]) for c, conv in columns))
            except (TypeError, ValueError) as exc:
                raise WarehouseError(f"{path}:{line}: {exc}") from None
    return rows


def load_reference_job(
    warehouse: Warehouse, settings: Settings, directory: str | None = None, **_: Any
) -> dict:
    """Replace the reference tables' contents with the CSV files; a missing file leaves its table."""
    base = Path(directory) if directory else settings.reference_path
    loaded: dict[str, int] = {}
    missing: list[str] = []
    for table, (filename, columns) in TABLES.items():
        path = base / filename
        if not path.exists():
            missing.append(filename)
            continue
        rows = read_rows(path, columns)
        warehouse.execute(f"TRUNCATE TABLE IF EXISTS {warehouse.database}.{table}")
        warehouse.insert(table, [c for c, _ in columns], rows)
        loaded[table] = len(rows)
    return {"directory": str(base), "loaded": loaded, "missing": missing}
