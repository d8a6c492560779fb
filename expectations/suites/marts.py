"""Suites ``marts.<name>``: rules every indicator mart keeps, derived from the mart's own columns.

The marts change as indicators are added, so the expectations follow the columns found in the
table rather than a list: every ``*_rate`` lies in [0, 1] and is null on a zero denominator,
counts are ≥ 0, every ``*_within_threshold`` flag of indicators.md is reported (a warning: the
data is right, the region misses a target), and the consistency mart's live-vs-batch
disagreements are zero.
"""

from __future__ import annotations

import re

import great_expectations.expectations as gxe

from expectations.suites import CRITICAL, WARNING, Dataset, expect, ident

#: The indicator marts dbt builds (dbt_project/models/marts/), in report order.
MARTS = ("census", "assessment", "consistency", "census_monthly", "assessment_monthly")
#: The consistency mart's detail: one row per household whose live and rebuilt statuses differ.
MISMATCHES = "consistency_status_mismatches"
LEVEL_DIGITS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
DATE_KEYS = ("reference_date", "month", "period_start")
#: Name parts of columns that count something (households, persons, …): never negative.
COUNT_WORDS = re.compile(r"(^|_)(households|persons|count|total|cadres|alerts|children|population)(_|$)")
#: Counts of disagreements between two computations that must agree (live vs batch).
DISAGREEMENT = re.compile(r"(disagree|mismatch)", re.IGNORECASE)
_NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal)")


def suite_name(mart: str) -> str:
    return f"marts.{mart}"


def _is_numeric(ch_type: str) -> bool:
    return bool(_NUMERIC.match(ch_type))


def _rate_parts(rate: str, columns: dict[str, str]) -> tuple[str, str] | None:
    """Numerator and denominator columns reported beside a rate (indicators.md), when named so."""
    stem = rate.removesuffix("_rate")
    for num, den in (
        (f"{stem}_numerator", f"{stem}_denominator"),
        (f"{rate}_numerator", f"{rate}_denominator"),
    ):
        if num in columns and den in columns:
            return num, den
    return None


def _column_rules(
    name: str, ch_type: str, columns: dict[str, str], extra: list[str]
) -> list[gxe.Expectation]:
    numeric = _is_numeric(ch_type)
    exps: list[gxe.Expectation] = []
    if name.endswith("_rate") and numeric:
        exps.append(
            expect(
                gxe.ExpectColumnValuesToBeBetween,
                CRITICAL,
                "a rate lies in [0, 1] (or is null)",
                column=name,
                min_value=0,
                max_value=1,
            )
        )
        parts = _rate_parts(name, columns)
        if parts:
            den = ident(parts[1])
            check = f"{name}_on_zero_denominator"
            extra.append(
                f"if({den} = 0 AND {ident(name)} IS NOT NULL, toString({ident(name)}), NULL) AS {ident(check)}"
            )
            exps.append(
                expect(
                    gxe.ExpectColumnValuesToBeNull,
                    CRITICAL,
                    "a rate with a zero denominator is null, never 0 or 1",
                    column=check,
                )
            )
        return exps
    if name.endswith("_within_threshold"):
        return [
            expect(
                gxe.ExpectColumnValuesToBeInSet,
                WARNING,
                f"{name.removesuffix('_within_threshold')} meets its indicators.md threshold",
                column=name,
                value_set=[1],
            )
        ]
    if name.endswith("_check_passed"):
        return [
            expect(
                gxe.ExpectColumnValuesToBeInSet,
                CRITICAL,
                f"{name.removesuffix('_check_passed')}: every level's counts equal the sum of its children",
                column=name,
                value_set=[1],
            )
        ]
    if not numeric:
        return exps
    if DISAGREEMENT.search(name):
        exps.append(
            expect(
                gxe.ExpectColumnValuesToBeBetween,
                CRITICAL,
                "live (stream) and batch (dbt) agree: no disagreements",
                column=name,
                min_value=0,
                max_value=0,
            )
        )
    elif name.startswith("invalid_"):
        exps.append(
            expect(
                gxe.ExpectColumnValuesToBeBetween,
                WARNING,
                f"no {name.removeprefix('invalid_').replace('_', ' ')} the domain forbids",
                column=name,
                min_value=0,
                max_value=0,
            )
        )
    elif COUNT_WORDS.search(name):
        exps.append(
            expect(gxe.ExpectColumnValuesToBeBetween, CRITICAL, "a count is ≥ 0", column=name, min_value=0)
        )
    return exps


def build(database: str, mart: str, columns: dict[str, str]) -> Dataset:
    """The dataset for one indicator mart; ``columns`` maps its column names to ClickHouse types."""
    date_key = next((c for c in DATE_KEYS if c in columns), None)
    keys = [c for c in ("region_code", "level", date_key) if c and c in columns]
    # Incremental marts keep one build per (reference date, cut-off): build_key names it.
    unique = [c for c in ("region_code", "level") if c in columns] + (
        ["build_key"] if "build_key" in columns else keys[2:]
    )
    extra: list[str] = []
    exps: list[gxe.Expectation] = [
        expect(gxe.ExpectColumnValuesToNotBeNull, CRITICAL, f"key {key} is present", column=key)
        for key in keys
    ]
    if len(unique) > 1:
        exps.append(
            expect(
                gxe.ExpectCompoundColumnsToBeUnique,
                CRITICAL,
                f"one row per ({', '.join(unique)})",
                column_list=unique,
            )
        )
    if "level" in columns:
        exps.append(
            expect(
                gxe.ExpectColumnValuesToBeInSet,
                CRITICAL,
                "level is one of the five region levels",
                column="level",
                value_set=list(LEVEL_DIGITS),
            )
        )
        if "region_code" in columns:
            digits = ", ".join(f"level = '{lv}', {n}" for lv, n in LEVEL_DIGITS.items())
            extra.append(
                "if(match(toString(region_code), '^[0-9]+$') AND "
                f"length(toString(region_code)) = multiIf({digits}, -1), "
                "NULL, concat(toString(level), ' ', toString(region_code))) AS region_code_not_of_its_level"
            )
            exps.append(
                expect(
                    gxe.ExpectColumnValuesToBeNull,
                    CRITICAL,
                    "region_code is the 2/4/6/9/12-digit prefix of its level",
                    column="region_code_not_of_its_level",
                )
            )
    for name, ch_type in columns.items():
        exps += _column_rules(name, ch_type, columns, extra)
    order = f" ORDER BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {', '.join(['*', *extra])} FROM {ident(database, mart)}{order}"
    index = [c for c in ("region_code", "level", "build_key" if "build_key" in columns else date_key) if c]
    return Dataset(
        suite=suite_name(mart),
        table=mart,
        sql=sql,
        expectations=exps,
        index_columns=[c for c in index if c in columns],
    )


def build_mismatches(database: str) -> Dataset:
    """Households whose live status (streams) differs from the status dbt rebuilds: each is a bug."""
    sql = f"""
        SELECT household_id,
               concat(household_id, ': live ', toString(live_status), ', rebuilt ', toString(rebuilt_status))
                   AS live_status_differs_from_rebuilt
        FROM {ident(database, MISMATCHES)} ORDER BY household_id
    """
    exps = [
        expect(
            gxe.ExpectColumnValuesToBeNull,
            CRITICAL,
            "live vs batch: every household's live status equals the status rebuilt from the event store",
            column="live_status_differs_from_rebuilt",
        )
    ]
    return Dataset(
        suite=suite_name(MISMATCHES),
        table=MISMATCHES,
        sql=sql,
        expectations=exps,
        index_columns=["household_id"],
    )
