"""Suites as code: what each suite expects, derived from the contract, the settings and a mart's columns."""

from __future__ import annotations

import pandas as pd
import pytest

from expectations.checkpoint import _plain, _with_row_key
from expectations.contract import amount_paths, load_contract
from expectations.report import format_report
from expectations.suites import CRITICAL, WARNING, dead_letters, event_store, expect, ident, literal, marts


def by_column(dataset) -> dict[str, list]:
    out: dict[str, list] = {}
    for e in dataset.expectations:
        column = (
            getattr(e, "column", None)
            or getattr(e, "column_A", None)
            or ",".join(getattr(e, "column_list", []))
        )
        out.setdefault(column, []).append(e)
    return out


def test_every_amount_of_the_catalogue_is_found_in_the_schemas():
    contract = load_contract()
    paths = {".".join(p) for p in contract.amount_paths}
    # events.md: every amount field, nested income components included.
    assert {
        "net_income_per_capita",
        "monthly_amount",
        "amount",
        "total_cost",
        "basic_paid",
        "critical_illness_paid",
        "assistance_paid",
        "out_of_pocket",
        "monthly_wage",
        "components.wage",
        "components.transfer",
    } <= paths
    # Integers are years and counts, never amounts.
    assert not paths & {"year", "household_size", "persons_covered", "year_identified", "grade"}
    assert contract.amount_paths[("monthly_amount",)] == (
        "civil_affairs.dibao_enrolled",
        "civil_affairs.disability_subsidy_granted",
    )
    assert "health_insurance.hospitalization_settled/2" in contract.type_versions
    assert "human_resources.employment_started" in contract.person_event_types
    assert "poverty_office.income_assessed" not in contract.person_event_types


def test_enumerations_follow_the_schemas_one_column_per_value_set():
    columns = event_store.enum_columns(load_contract())
    assert columns["payload.place"][1] == ("in_county", "in_province", "out_of_province")
    # "kind" has one value set for disability subsidies and another for certificates.
    assert columns["payload.kind@civil_affairs.disability_subsidy_granted"][1] == ("living", "nursing")
    assert "physical" in columns["payload.kind@disabled_persons.disability_certified"][1]
    assert "payload.kind" not in columns
    # Free text (dibao_terminated's reason) is no enumeration.
    reasons = {name: spec[2] for name, spec in columns.items() if name.startswith("payload.reason")}
    assert all("civil_affairs.dibao_terminated" not in types for types in reasons.values())
    # person_joined's, person_left's and risk_verified's value sets.
    assert len(reasons) == 3
    assert any("poverty_office.risk_verified" in types for types in reasons.values())


def test_amount_paths_walk_nested_objects_only():
    schema = {
        "properties": {
            "a": {"type": "number"},
            "n": {"type": "integer"},
            "o": {"type": "object", "properties": {"b": {"type": ["number", "null"]}}},
            "arr": {"type": "array", "items": {"type": "number"}},
        }
    }
    assert amount_paths(schema) == [("a",), ("o", "b")]


def test_event_store_suite_checks_every_amount_and_envelope_rule():
    dataset = event_store.build("fupin_db")
    columns = by_column(dataset)
    for path in load_contract().amount_paths:
        (rule,) = columns[event_store.amount_column(path)]
        assert rule.min_value == 0 and rule.severity == CRITICAL
    assert {
        "event_id",
        "event_id_contents",
        "department",
        "event_type",
        "event_type_version",
        "household_id",
        "person_id",
        "region_code",
        "unknown_village_code",
        "recorded_at",
        "schema_version",
    } <= set(columns)
    assert columns["recorded_in_future"][0].severity == WARNING
    assert "`fupin_db`.`events_latest`" in dataset.sql and "`fupin_db`.`reference_regions`" in dataset.sql
    assert dataset.index_columns == ["event_id"]


def test_event_id_pattern_accepts_uuids_only():
    import re

    pattern = re.compile(event_store.EVENT_ID_PATTERN)
    assert pattern.match("0b0fdd58-5f4f-4d23-9e6d-0fb1731a503e")
    assert not pattern.match("0b0fdd58-5f4f-4d23-9e6d-0fb1731a503")
    assert not pattern.match("not-a-uuid")
    assert re.match(event_store.PERSON_ID_PATTERN, "P" + "a" * 32)
    assert not re.match(event_store.PERSON_ID_PATTERN, "430102199001011234")  # a raw ID number


def test_dead_letter_bound_comes_from_the_settings(settings):
    dataset = dead_letters.build("db", settings.with_(deadletter_max_share=0.2).deadletter_max_share)
    (share,) = by_column(dataset)["dead_letter_share"]
    assert share.max_value == 0.2 and share.severity == CRITICAL
    assert "0.2" in share.meta["rule"]


def test_mart_suite_follows_the_columns():
    columns = {
        "region_code": "String",
        "level": "LowCardinality(String)",
        "reference_date": "Date",
        "registered_households": "UInt64",
        "income_above_line_rate": "Nullable(Float64)",
        "income_above_line_numerator": "UInt64",
        "income_above_line_denominator": "UInt64",
        "satisfaction_rate": "Nullable(Float64)",
        "satisfaction_within_threshold": "Nullable(Bool)",
        "live_batch_disagreements": "UInt64",
        "zone": "String",
    }
    dataset = marts.build("db", "census", columns)
    got = by_column(dataset)
    assert [e.max_value for e in got["income_above_line_rate"]] == [1]
    assert [e.max_value for e in got["satisfaction_rate"]] == [1]
    # Only a rate with its numerator and denominator beside it gets the zero-denominator rule.
    assert "income_above_line_rate_on_zero_denominator" in got
    assert "satisfaction_rate_on_zero_denominator" not in got
    assert got["satisfaction_within_threshold"][0].severity == WARNING
    assert got["live_batch_disagreements"][0].max_value == 0
    assert got["live_batch_disagreements"][0].severity == CRITICAL
    assert got["registered_households"][0].min_value == 0
    assert "zone" not in got
    assert got["region_code,level,reference_date"][0].severity == CRITICAL
    assert dataset.index_columns == ["region_code", "level", "reference_date"]
    assert dataset.sql.startswith("SELECT *, ")


def test_monthly_marts_key_on_the_month():
    dataset = marts.build(
        "db", "census_monthly", {"region_code": "String", "level": "String", "month": "Date"}
    )
    assert dataset.index_columns == ["region_code", "level", "month"]


def test_severity_must_be_known():
    import great_expectations.expectations as gxe

    with pytest.raises(ValueError, match="severity"):
        expect(gxe.ExpectColumnValuesToNotBeNull, "fatal", "rule", column="x")


def test_identifiers_and_literals_are_quoted():
    assert ident("a`b", "t") == "`a``b`.`t`"
    assert literal("it's") == "'it\\'s'"


def test_row_key_names_the_row():
    frame = pd.DataFrame({"region_code": ["43", None], "level": ["province", "city"]})
    keys = _with_row_key(frame, ["region_code", "level"])["row_key"].tolist()
    assert keys == ["43 province", "∅ city"]
    assert _with_row_key(frame, [])["row_key"].isna().all()


def test_plain_values_cross_json():
    import numpy as np

    assert _plain({"a": np.int64(3), "b": [np.float64("nan"), pd.Timestamp("2020-01-01", tz="UTC")]}) == {
        "a": 3,
        "b": [None, "2020-01-01T00:00:00+00:00"],
    }


def test_report_names_suite_column_values_and_rows():
    result = {
        "success": False,
        "critical_failures": [
            {
                "suite": "event_store",
                "table": "events_latest",
                "severity": "critical",
                "expectation": "expect_column_values_to_be_between",
                "rule": "amounts are yuan, ≥ 0",
                "column": "payload.amount",
                "observed": None,
                "unexpected_count": 7,
                "unexpected_percent": 1.0,
                "element_count": 700,
                "sample": [-1.0, -1.0, -2.5, -3, -4, -5, -6],
                "rows": ["e1", "e2"],
            }
        ],
        "warnings": [],
        "suites": {"event_store": {"table": "events_latest", "evaluated": 30, "failed": 1, "success": False}},
        "skipped": [{"suite": "marts.census", "reason": "mart 'census' not built yet"}],
        "data_docs": "/x/index.html",
    }
    text = format_report(result)
    assert text.splitlines()[0] == "Data quality: FAILED (1 critical, 0 warning(s))"
    assert "CRITICAL event_store · payload.amount · expect_column_values_to_be_between" in text
    assert "failing: 7 of 700 rows" in text
    # Repeated values shown once, at most five, then an ellipsis.
    assert "values: -1.0, -2.5, -3, -4, -5, …" in text
    assert "rows: 'e1', 'e2'" in text
    assert "marts.census" in text and "not built yet" in text
    assert text.endswith("Data Docs: /x/index.html")
