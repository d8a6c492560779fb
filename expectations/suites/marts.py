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

#: The marts dbt builds (dbt_project/models/marts/), in report order.
MARTS = ("census", "assessment", "consistency", "census_monthly", "assessment_monthly")
LEVEL_DIGITS = {"province": 2, "city": 4, "county": 6, "township": 9, "village": 12}
DATE_KEYS = ("reference_date", "month", "period_start", "period")
COUNT_SUFFIXES = ("_households", "_persons", "_count", "_numerator", "_denominator", "_cadres", "_alerts")
#: Columns counting disagreements between two computations that must agree.
DISAGREEMENT = re.compile(r"(disagree|mismatch|differ)", re.IGNORECASE)
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


def build(database: str, mart: str, columns: dict[str, str]) -> Dataset:
    """The dataset for one mart; ``columns`` maps the table's column names to ClickHouse types."""
    keys = [c for c in ("region_code", "level", *DATE_KEYS) if c in columns]
    date_key = next((c for c in DATE_KEYS if c in columns), None)
    extra: list[str] = []
    exps: list[gxe.Expectation] = []
    for key in keys:
        exps.append(expect(gxe.ExpectColumnValuesToNotBeNull, CRITICAL, f"key {key} is present", column=key))
    if len(keys) > 1:
        exps.append(
            expect(
                gxe.ExpectCompoundColumnsToBeUnique,
                CRITICAL,
                f"one row per ({', '.join(keys)})",
                column_list=keys,
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
                f"if(match(toString(region_code), '^[0-9]+$') AND length(toString(region_code)) = multiIf({digits}, -1), "
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
        if name.endswith("_rate") and _is_numeric(ch_type):
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
                num, den = parts
                check = f"{name}_on_zero_denominator"
                extra.append(
                    f"if(({den}) = 0 AND ({name}) IS NOT NULL, toString({name}), NULL) AS {ident(check)}"
                )
                exps.append(
                    expect(
                        gxe.ExpectColumnValuesToBeNull,
                        CRITICAL,
                        "a rate with a zero denominator is null, never 0 or 1",
                        column=check,
                    )
                )
        elif name.endswith(COUNT_SUFFIXES) and _is_numeric(ch_type):
            exps.append(
                expect(
                    gxe.ExpectColumnValuesToBeBetween, CRITICAL, "a count is ≥ 0", column=name, min_value=0
                )
            )
        if name.endswith("_within_threshold"):
            exps.append(
                expect(
                    gxe.ExpectColumnValuesToBeInSet,
                    WARNING,
                    f"{name.removesuffix('_within_threshold')} meets its indicators.md threshold",
                    column=name,
                    value_set=[1],
                )
            )
        if DISAGREEMENT.search(name) and _is_numeric(ch_type):
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
    select = ", ".join(["*", *extra])
    order = f" ORDER BY {', '.join(keys)}" if keys else ""
    sql = f"SELECT {select} FROM {ident(database, mart)}{order}"
    index = [c for c in ("region_code", "level", date_key) if c and c in columns]
    return Dataset(suite=suite_name(mart), table=mart, sql=sql, expectations=exps, index_columns=index)
