"""Reference data: regions, population, poverty and monitoring lines (three CSV files).

Columns are those of the warehouse ``reference_*`` tables (docs/architecture.md). Lines are
configurable per province and year, never a constant: every value carries its source. A
user's files are validated before anything uses them; each error names file, line and column.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from fupin import PROJECT_ROOT

DEFAULTS_DIR = PROJECT_ROOT / "producers" / "reference" / "defaults"

REGION_COLUMNS = ("region_code", "name", "level", "parent_code", "is_poor_county", "zone")
POPULATION_COLUMNS = ("region_code", "year", "agricultural_population", "rural_households")
LINE_COLUMNS = (
    "province_code",
    "year",
    "poverty_line",
    "poverty_line_source",
    "monitoring_line",
    "monitoring_line_source",
)
FILES = {"regions.csv": REGION_COLUMNS, "population.csv": POPULATION_COLUMNS, "lines.csv": LINE_COLUMNS}
LEVELS = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
ZONES = ("central", "western", "eastern")
MONITORING_FROM = 2020


class ReferenceError(ValueError):
    """Reference files that cannot be used; the message lists every problem found."""


def _rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        return header, [(reader.line_num, row) for row in reader]


def _int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _num(value: str | None) -> float | None:
    try:
        v = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return v if v == v and v >= 0 else None


def validate_reference_dir(directory: Path | str) -> list[str]:
    """Every problem in the three files, as "file line N, column C: what"; empty when usable."""
    d = Path(directory)
    errors: list[str] = []
    if not d.is_dir():
        return [f"{d}: not a directory"]
    tables: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for name, columns in FILES.items():
        path = d / name
        if not path.exists():
            errors.append(f"{name}: file missing in {d}")
            continue
        try:
            header, rows = _rows(path)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            errors.append(f"{name}: cannot be read as UTF-8 CSV ({exc})")
            continue
        missing = [c for c in columns if c not in header]
        extra = [c for c in header if c not in columns]
        if missing:
            errors.append(f"{name} line 1: missing column(s) {', '.join(missing)}")
        if extra:
            errors.append(f"{name} line 1: unknown column(s) {', '.join(extra)}")
        if not missing:
            tables[name] = rows
    if "regions.csv" in tables:
        errors += _check_regions(tables["regions.csv"])
    if "population.csv" in tables:
        villages = (
            {r["region_code"].strip() for _, r in tables["regions.csv"] if len(r["region_code"].strip()) == 12}
            if "regions.csv" in tables
            else None
        )
        errors += _check_population(tables["population.csv"], villages)
    if "lines.csv" in tables:
        errors += _check_lines(tables["lines.csv"])
    return errors


def _check_regions(rows: Sequence[tuple[int, dict[str, str]]]) -> list[str]:
    errors: list[str] = []
    seen: set[str] = set()
    codes = {r["region_code"].strip() for _, r in rows}
    for line, r in rows:
        code = (r["region_code"] or "").strip()
        where = f"regions.csv line {line}"
        if not code.isdigit() or len(code) not in LEVELS:
            errors.append(f"{where}, column region_code: {code!r} is not a 2/4/6/9/12-digit code")
            continue
        if code in seen:
            errors.append(f"{where}, column region_code: {code} appears twice")
        seen.add(code)
        if not (r["name"] or "").strip():
            errors.append(f"{where}, column name: empty")
        if r["level"] != LEVELS[len(code)]:
            errors.append(f"{where}, column level: {r['level']!r}, expected {LEVELS[len(code)]!r} for {len(code)} digits")
        parent = (r["parent_code"] or "").strip()
        if len(code) == 2:
            if parent:
                errors.append(f"{where}, column parent_code: a province has no parent")
        else:
            expected = code[: max(k for k in LEVELS if k < len(code))]
            if parent != expected:
                errors.append(f"{where}, column parent_code: {parent!r}, expected {expected!r}")
            elif parent not in codes:
                errors.append(f"{where}, column parent_code: {parent} is not in regions.csv")
        if r["is_poor_county"] not in ("0", "1"):
            errors.append(f"{where}, column is_poor_county: {r['is_poor_county']!r}, expected 0 or 1")
        if r["zone"] not in ZONES:
            errors.append(f"{where}, column zone: {r['zone']!r}, expected one of {', '.join(ZONES)}")
    return errors


def _check_year(where: str, code: str, raw: str, seen: set[tuple[str, int]], errors: list[str]) -> int | None:
    """A (region, year) key: the year plausible and the pair not seen before in the file; returns the year."""
    year = _int(raw)
    if year is None or not 1949 <= year <= 2100:
        errors.append(f"{where}, column year: {raw!r} is not a year")
    elif (code, year) in seen:
        errors.append(f"{where}: ({code}, {year}) appears twice")
    seen.add((code, year or 0))
    return year


def _check_population(rows: Sequence[tuple[int, dict[str, str]]], villages: set[str] | None) -> list[str]:
    errors: list[str] = []
    seen: set[tuple[str, int]] = set()
    for line, r in rows:
        where = f"population.csv line {line}"
        code = (r["region_code"] or "").strip()
        if not (code.isdigit() and len(code) == 12):
            errors.append(f"{where}, column region_code: {code!r} is not a 12-digit village code")
        elif villages is not None and code not in villages:
            errors.append(f"{where}, column region_code: {code} is not a village in regions.csv")
        _check_year(where, code, r["year"], seen, errors)
        for col in ("agricultural_population", "rural_households"):
            v = _int(r[col])
            if v is None or v < 0:
                errors.append(f"{where}, column {col}: {r[col]!r} is not a whole number ≥ 0")
    return errors


def _check_lines(rows: Sequence[tuple[int, dict[str, str]]]) -> list[str]:
    errors: list[str] = []
    seen: set[tuple[str, int]] = set()
    for line, r in rows:
        where = f"lines.csv line {line}"
        prov = (r["province_code"] or "").strip()
        if not (prov.isdigit() and len(prov) == 2):
            errors.append(f"{where}, column province_code: {prov!r} is not a 2-digit code")
        year = _check_year(where, prov, r["year"], seen, errors)
        if _num(r["poverty_line"]) is None:
            errors.append(f"{where}, column poverty_line: {r['poverty_line']!r} is not a number ≥ 0")
        if not (r["poverty_line_source"] or "").strip():
            errors.append(f"{where}, column poverty_line_source: every line needs its source")
        mline = (r["monitoring_line"] or "").strip()
        if mline:
            if _num(mline) is None:
                errors.append(f"{where}, column monitoring_line: {mline!r} is not a number ≥ 0")
            elif year is not None and year < MONITORING_FROM:
                errors.append(f"{where}, column monitoring_line: no monitoring line before {MONITORING_FROM}")
            if not (r["monitoring_line_source"] or "").strip():
                errors.append(f"{where}, column monitoring_line_source: every line needs its source")
    return errors


def _require_valid(directory: Path) -> None:
    errors = validate_reference_dir(directory)
    if errors:
        raise ReferenceError(f"reference data in {directory} is not usable:\n  " + "\n  ".join(errors))


def read_lines(directory: Path | str) -> dict[tuple[str, int], tuple[float, float | None]]:
    """(province_code, year) -> (poverty_line, monitoring_line or None)."""
    _, rows = _rows(Path(directory) / "lines.csv")
    out: dict[tuple[str, int], tuple[float, float | None]] = {}
    for _, r in rows:
        m = (r["monitoring_line"] or "").strip()
        out[(r["province_code"].strip(), int(r["year"]))] = (float(r["poverty_line"]), float(m) if m else None)
    return out


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)


def copy_reference(source: Path | str, target: Path | str) -> Path:
    """Validate ``source`` and copy its three files into ``target`` (raises ReferenceError)."""
    src, dst = Path(source), Path(target)
    _require_valid(src)
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(src / name, dst / name)
    return dst
