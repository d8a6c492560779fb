"""The public view: every cell that counts fewer than ``k`` households (but some) is suppressed.

A households count (``*_households``, ``open_episodes``) below k is hidden; so is the persons
count of the same group (``poor_persons`` with ``poor_households``), and every rate whose
numerator or denominator is hidden. A row whose region holds fewer than k households
(``households_total``) hides all its counts and rates. Hidden cells become null and are named in
the row's ``_suppressed`` list, so a table says "< k" rather than a number.
"""

from __future__ import annotations

from typing import Any

from warehouse.dashboard.panels import RATES

#: Columns that are identifiers or times, never suppressed.
KEEP = frozenset(
    {
        "region_code",
        "name",
        "level",
        "reference_date",
        "cutoff",
        "zone",
        "month",
        "rule",
        "department",
        "reason",
        "source_topic",
        "oldest_raised_at",
        "latest_landed_at",
    }
)


def _is_count(column: str) -> bool:
    return column.endswith(
        ("_households", "_persons", "_numerator", "_denominator", "_population")
    ) or column in (
        "open_episodes",
        "households_total",
        "persons_total",
        "cadres_active",
        "cadres_over_limit",
    )


def suppress_row(row: dict[str, Any], k: int) -> dict[str, Any]:
    hidden: set[str] = set()
    small_region = isinstance(row.get("households_total"), int) and 0 < row["households_total"] < k
    for col, value in row.items():
        if col in KEEP or not isinstance(value, int | float) or isinstance(value, bool):
            continue
        region_cell = small_region and (_is_count(col) or col.endswith("_rate"))
        small_cell = (col.endswith("_households") or col == "open_episodes") and 0 < value < k
        if region_cell or small_cell:
            hidden.add(col)
    for col in list(hidden):
        if col.endswith("_households"):
            persons = col[: -len("_households")] + "_persons"
            if persons in row:
                hidden.add(persons)
    for rate in RATES.values():
        if rate.column in row and ({rate.numerator, rate.denominator} & hidden):
            hidden.add(rate.column)
    out = {c: (None if c in hidden else v) for c, v in row.items()}
    out["_suppressed"] = sorted(hidden)
    return out


def suppress(doc: Any, k: int) -> Any:
    """The document with every row (any dict holding a count) suppressed."""
    if isinstance(doc, list):
        return [suppress(x, k) for x in doc]
    if isinstance(doc, dict):
        if any(_is_count(c) for c in doc) and all(not isinstance(v, dict | list) for v in doc.values()):
            return suppress_row(doc, k)
        return {c: (v if c in ("rates", "flags", "columns") else suppress(v, k)) for c, v in doc.items()}
    return doc
