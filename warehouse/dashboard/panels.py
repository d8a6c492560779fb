"""The dashboard's data endpoints: each a name, its parameters and one fixed, parameterised SELECT.

The browser names an endpoint and gives values (region, date); it never sends SQL. Each endpoint
reads the marts only (``dashboard`` role), except ``household`` (``analyst``: the staging models).
Thresholds are the marts' own ``*_within_threshold`` columns (indicators.md via the dbt seed), so
the rule of what is red has one home.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

#: Region code length → level (indicators.md).
LEVELS = {2: "province", 4: "city", 6: "county", 9: "township", 12: "village"}
CHILD_LENGTH = {2: 4, 4: 6, 6: 9, 9: 12}
_REGION = re.compile(r"^(\d{2}|\d{4}|\d{6}|\d{9}|\d{12})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HOUSEHOLD = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Rate:
    """A rate with the columns it is made of and the column that says whether its threshold holds."""

    column: str
    numerator: str
    denominator: str
    threshold: str | None = None


#: Every rate the overview shows, with its numerator and denominator (indicators.md formulas).
CENSUS_RATES = [
    *(
        Rate(f"guarantee_{g}_met_rate", f"guarantee_{g}_met_households", "registered_households")
        for g in ("income", "education", "medical", "housing", "water", "all")
    ),
    Rate("income_above_line_rate", "income_above_line_households", "income_line_known_households"),
    Rate("dibao_registered_rate", "dibao_registered_households", "registered_households"),
    Rate("insurance_rate", "insured_persons", "registered_persons", "insurance_rate_within_threshold"),
]
ASSESSMENT_RATES = [
    Rate("poverty_incidence_rate", "poverty_incidence_numerator", "poverty_incidence_denominator"),
    Rate(
        "comprehensive_incidence_rate",
        "comprehensive_incidence_numerator",
        "comprehensive_incidence_denominator",
        "comprehensive_incidence_within_threshold",
    ),
    Rate(
        "wrong_exit_rate",
        "wrongly_exited_persons",
        "checked_exited_persons",
        "wrong_exit_rate_within_threshold",
    ),
    Rate("missed_rate", "missed_persons", "checked_non_registered_persons", "missed_rate_within_threshold"),
    Rate("identification_accuracy_rate", "wrongly_identified_households", "checked_registered_households"),
    Rate("exit_accuracy_rate", "wrongly_exited_households", "checked_exited_households"),
    Rate(
        "satisfaction_rate",
        "satisfied_households",
        "surveyed_households",
        "satisfaction_rate_within_threshold",
    ),
    Rate(
        "support_coverage_rate",
        "households_with_cadre",
        "support_scope_households",
        "support_coverage_rate_within_threshold",
    ),
    Rate(
        "visit_compliance_rate",
        "visit_compliant_households",
        "visit_scope_households",
        "visit_compliance_rate_within_threshold",
    ),
    Rate("return_rate", "returned_in_period_households", "ever_exited_households"),
]
RATES = {r.column: r for r in CENSUS_RATES + ASSESSMENT_RATES}
#: Figures that are not rates but have a threshold column (red when it says 0).
FLAGS = {
    "cadres_over_limit": "cadre_load_within_threshold",
    "compulsory_dropouts_persons": "compulsory_dropouts_within_threshold",
    "unsafe_house_households": "unsafe_house_within_threshold",
    "unsafe_water_households": "unsafe_water_within_threshold",
}

#: The key figures of the drill-down table, in order.
CHILD_COLUMNS = [
    "households_total",
    "persons_total",
    "registered_households",
    "poor_households",
    "exited_households",
    "returned_households",
    "monitoring_open_households",
    "poverty_incidence_rate",
    "comprehensive_incidence_rate",
    "wrong_exit_rate",
    "missed_rate",
    "satisfaction_rate",
    "support_coverage_rate",
    "visit_compliance_rate",
]
SERIES_COLUMNS = [
    "poverty_incidence_rate",
    "poor_households",
    "exited_households",
    "returned_households",
    "non_registered_households",
    "monitoring_open_households",
    "monitoring_eliminated_households",
    "alerts_raised",
    "alerts_resolved",
    "alerts_open",
    "returned_in_period_households",
]


class BadRequest(ValueError):
    """A parameter the endpoint does not take (400)."""


def region_param(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _REGION.match(value):
        raise BadRequest(f"region must be a 2, 4, 6, 9 or 12-digit code, not {value!r}")
    return value


def date_param(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _DATE.match(value):
        raise BadRequest(f"date must be YYYY-MM-DD, not {value!r}")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"date: {exc}") from None
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def rows_of(reader: Any, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    names, rows = reader.query_columns(sql, params)
    return [{n: _plain(v) for n, v in zip(names, r, strict=True)} for r in rows]


def latest_date(reader: Any) -> str | None:
    rows = rows_of(
        reader,
        "SELECT max(reference_date) AS d FROM census WHERE cutoff IS NULL AND households_total > 0",
        {},
    )
    return rows[0]["d"] if rows and rows[0]["d"] and rows[0]["d"] > "1970-01-02" else None


def default_region(reader: Any) -> str:
    rows = rows_of(
        reader, "SELECT min(region_code) AS r FROM census WHERE level = 'province' AND cutoff IS NULL", {}
    )
    if not rows or not rows[0]["r"]:
        raise BadRequest("no census is built yet: run 'fupin build'")
    return rows[0]["r"]


def _resolve(reader: Any, q: dict[str, str]) -> tuple[str, str]:
    region = region_param(q.get("region")) or default_region(reader)
    d = date_param(q.get("date")) or latest_date(reader)
    if d is None:
        raise BadRequest("no census is built yet: run 'fupin build'")
    return region, d


# -- endpoints -------------------------------------------------------------------------------------


def meta(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    dates = rows_of(
        reader,
        "SELECT DISTINCT reference_date AS d FROM census WHERE cutoff IS NULL AND level = 'province' ORDER BY d DESC",
        {},
    )
    return {"dates": [r["d"] for r in dates], "latest": dates[0]["d"] if dates else None}


def region(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """The region, its breadcrumb (names from the reference data) and its children's names."""
    code, d = _resolve(reader, q)
    prefixes = [code[:n] for n in LEVELS if n <= len(code)]
    marks = ", ".join(f"{{p{i}:String}}" for i in range(len(prefixes)))
    crumbs = rows_of(
        reader,
        f"SELECT region_code, name, level FROM regions WHERE region_code IN ({marks}) ORDER BY length(region_code)",
        {f"p{i}": p for i, p in enumerate(prefixes)},
    )
    names = {r["region_code"]: r["name"] for r in crumbs}
    return {
        "region_code": code,
        "level": LEVELS[len(code)],
        "date": d,
        "name": names.get(code, code),
        "breadcrumb": [
            {"region_code": p, "name": names.get(p, p), "level": LEVELS[len(p)]} for p in prefixes
        ],
        "child_level": LEVELS.get(CHILD_LENGTH.get(len(code), 0)),
    }


def overview(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """Census and assessment of one region at D (one statement), with each rate's parts and threshold flags."""
    code, d = _resolve(reader, q)
    where = "region_code = {region:String} AND reference_date = toDate({d:String}) AND cutoff IS NULL"
    names, rows = reader.query_columns(
        f"SELECT c.*, 1 AS __assessment, a.* FROM (SELECT * EXCEPT (build_key, built_at) FROM census WHERE {where}) AS c "
        f"LEFT JOIN (SELECT * EXCEPT (build_key, built_at) FROM assessment WHERE {where} "
        "AND period_start IS NULL) AS a ON a.region_code = c.region_code",
        {"region": code, "d": d},
    )
    census = assessment = None
    if rows:
        split = names.index("__assessment")
        # the engine names the right side's repeated keys "a.region_code" …: strip the alias
        values = [_plain(v) for v in rows[0]]
        census = dict(zip(names[:split], values[:split], strict=True))
        assessment = {
            n.removeprefix("a."): v for n, v in zip(names[split + 1 :], values[split + 1 :], strict=True)
        }
    return {
        "region_code": code,
        "date": d,
        "census": census,
        "assessment": assessment,
        "rates": {r.column: [r.numerator, r.denominator, r.threshold] for r in RATES.values()},
        "flags": FLAGS,
    }


def children(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """The child regions' key figures at D (one level down), with names."""
    code, d = _resolve(reader, q)
    length = CHILD_LENGTH.get(len(code))
    if length is None:
        return {"region_code": code, "date": d, "level": None, "columns": [], "rows": []}
    census_cols = [c for c in CHILD_COLUMNS if not c.endswith("_rate")]
    rate_cols = [c for c in CHILD_COLUMNS if c.endswith("_rate")]
    parts = sorted({p for c in rate_cols for p in (RATES[c].numerator, RATES[c].denominator)})
    flags = sorted({RATES[c].threshold for c in rate_cols if RATES[c].threshold})
    sql = f"""
        SELECT c.region_code AS region_code, coalesce(r.name, c.region_code) AS name,
               {", ".join(f"c.{x} AS {x}" for x in census_cols)},
               {", ".join(f"a.{x} AS {x}" for x in rate_cols + parts + flags)}
        FROM (SELECT * FROM census WHERE level = {{level:String}} AND startsWith(region_code, {{region:String}})
              AND reference_date = toDate({{d:String}}) AND cutoff IS NULL) AS c
        LEFT JOIN (SELECT * FROM assessment WHERE level = {{level:String}} AND startsWith(region_code, {{region:String}})
              AND reference_date = toDate({{d:String}}) AND cutoff IS NULL AND period_start IS NULL) AS a
            ON a.region_code = c.region_code
        LEFT JOIN regions AS r ON r.region_code = c.region_code
        ORDER BY region_code"""
    rows = rows_of(reader, sql, {"level": LEVELS[length], "region": code, "d": d})
    return {
        "region_code": code,
        "date": d,
        "level": LEVELS[length],
        "columns": ["region_code", "name", *CHILD_COLUMNS],
        "rows": rows,
        "rates": {c: [RATES[c].numerator, RATES[c].denominator, RATES[c].threshold] for c in rate_cols},
    }


def series(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """The monthly series of one region (month ends up to D)."""
    code, d = _resolve(reader, q)
    sql = """
        SELECT c.reference_date AS month, a.poverty_incidence_rate AS poverty_incidence_rate,
               c.poor_households AS poor_households, c.exited_households AS exited_households,
               c.returned_households AS returned_households, c.non_registered_households AS non_registered_households,
               c.monitoring_open_households AS monitoring_open_households,
               c.monitoring_eliminated_households AS monitoring_eliminated_households,
               a.alerts_raised AS alerts_raised, a.alerts_resolved AS alerts_resolved, a.alerts_open AS alerts_open,
               a.returned_in_period_households AS returned_in_period_households
        FROM (SELECT * FROM census_monthly WHERE region_code = {region:String} AND cutoff IS NULL
              AND reference_date <= toDate({d:String})) AS c
        LEFT JOIN (SELECT * FROM assessment_monthly WHERE region_code = {region:String} AND cutoff IS NULL
                   AND period_start IS NULL) AS a
            ON a.reference_date = c.reference_date
        ORDER BY month"""
    rows = rows_of(reader, sql, {"region": code, "d": d})
    return {"region_code": code, "date": d, "columns": ["month", *SERIES_COLUMNS], "rows": rows}


def alerts(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """Open alert episodes by rule and child region (live), the oldest first."""
    code = region_param(q.get("region")) or default_region(reader)
    length = CHILD_LENGTH.get(len(code), len(code))
    sql = """
        SELECT a.rule AS rule, substring(a.region_code, 1, {len:UInt8}) AS region_code,
               any(coalesce(r.name, '')) AS name, sum(a.open_episodes) AS open_episodes,
               min(a.oldest_raised_at) AS oldest_raised_at, max(a.latest_landed_at) AS latest_landed_at
        FROM alerts_open AS a
        LEFT JOIN regions AS r ON r.region_code = substring(a.region_code, 1, {len:UInt8})
        WHERE startsWith(a.region_code, {region:String})
        GROUP BY rule, region_code
        ORDER BY oldest_raised_at, rule, region_code"""
    rows = rows_of(reader, sql, {"region": code, "len": length})
    return {
        "region_code": code,
        "columns": ["rule", "region_code", "name", "open_episodes", "oldest_raised_at", "latest_landed_at"],
        "rows": rows,
        "total": sum(r["open_episodes"] for r in rows),
    }


def feeds(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """Per department the latest event's valid, transaction and landing time (live)."""
    rows = rows_of(reader, "SELECT * FROM data_health_feeds ORDER BY department", {})
    return {
        "columns": ["department", "latest_occurred_at", "latest_recorded_at", "latest_ingested_at"],
        "rows": rows,
    }


def dead_letters(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """Dead letters by source topic and reason (live; counts only)."""
    rows = rows_of(reader, "SELECT * FROM data_health_dead_letters ORDER BY dead_letters DESC, reason", {})
    return {"columns": ["source_topic", "reason", "dead_letters", "latest_received_at"], "rows": rows}


def consistency(reader: Any, q: dict[str, str]) -> dict[str, Any]:
    """The region's consistency findings at D (两线合一, missed candidates, live vs batch, totals)."""
    code, d = _resolve(reader, q)
    rows = rows_of(
        reader,
        "SELECT * EXCEPT (build_key, built_at) FROM consistency WHERE region_code = {region:String} "
        "AND reference_date = toDate({d:String}) AND cutoff IS NULL",
        {"region": code, "d": d},
    )
    return {"region_code": code, "date": d, "consistency": rows[0] if rows else None}


STAGING_EVENTS = """
    SELECT '{department}' AS department, event_name AS event_type, occurred_at, recorded_at, event_id, region_code
    FROM {model} WHERE household_id = {{hid:String}}"""


def household_events(reader: Any, hid: str, models: list[str]) -> list[dict[str, Any]]:
    """The household's events from the staging models (one a department: stg_<department>)."""
    union = " UNION ALL ".join(
        STAGING_EVENTS.format(model=m, department=m.removeprefix("stg_")) for m in models
    )
    return rows_of(
        reader, f"SELECT * FROM ({union}) ORDER BY occurred_at, recorded_at, event_id", {"hid": hid}
    )


def household_param(value: str | None) -> str:
    if not value or not _HOUSEHOLD.match(value):
        raise BadRequest("household must be a household id")
    return value


#: name → (function, role it reads with). The household endpoint is the server's (it also asks the workers).
ENDPOINTS: dict[str, tuple[Callable[[Any, dict[str, str]], dict[str, Any]], str]] = {
    "meta": (meta, "dashboard"),
    "region": (region, "dashboard"),
    "overview": (overview, "dashboard"),
    "children": (children, "dashboard"),
    "series": (series, "dashboard"),
    "alerts": (alerts, "dashboard"),
    "feeds": (feeds, "dashboard"),
    "dead_letters": (dead_letters, "dashboard"),
    "consistency": (consistency, "dashboard"),
}
#: The panels of each page (a page's data = these endpoints), for the benchmark and the browser.
PAGES = {
    "overview": ["meta", "region", "overview", "children"],
    "series": ["region", "series"],
    "alerts": ["region", "alerts"],
    "health": ["region", "feeds", "dead_letters", "consistency", "checkpoint"],
}
