"""The dbt project and the build module without a warehouse: vars, profiles, output formats, the manifest."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest

from fupin.build import dbt_vars, format_rows, mart_for, run_dbt, write_profile

MARTS = ("census", "census_monthly", "assessment", "assessment_monthly", "consistency")


def test_vars_are_validated_and_normalised():
    assert dbt_vars() == {}
    out = dbt_vars("2020-12-31", "2021-01-15T08:00:00+08:00", series_months=3, period_start=date(2020, 1, 1))
    assert out == {
        "as_of_date": "2020-12-31",
        "cutoff": "2021-01-15 00:00:00.000",  # normalised to UTC
        "series_months": 3,
        "period_start": "2020-01-01",
    }
    with pytest.raises(ValueError):
        dbt_vars("2020-13-01")
    with pytest.raises(ValueError):
        dbt_vars(None, "not a time")


def test_profile_follows_the_platform_mode(settings):
    embedded = json.loads((write_profile(settings) / "profiles.yml").read_text())["fupin"]
    assert embedded["target"] == "embedded"
    out = embedded["outputs"]["embedded"]
    assert out["type"] == "chdb" and out["schema"] == settings.clickhouse_database
    assert out["path"] == str(settings.chdb_data_path.resolve())
    server = settings.with_(mode="server", clickhouse_host="ch.example", clickhouse_port=9440)
    prof = json.loads((write_profile(server) / "profiles.yml").read_text())["fupin"]["outputs"]["server"]
    assert (prof["type"], prof["driver"], prof["host"], prof["port"]) == (
        "clickhouse",
        "native",
        "ch.example",
        9440,
    )


def test_formats_are_readable_by_people_and_scripts():
    names = ["region_code", "level", "reference_date", "poor_households", "poverty_incidence_rate"]
    rows = [
        ("431224", "county", date(2020, 12, 31), 12, None),
        ("431225", "county", date(2020, 12, 31), 3, 0.25),
    ]
    parsed = json.loads(format_rows(names, rows, "json"))
    assert parsed[0]["reference_date"] == "2020-12-31" and parsed[0]["poverty_incidence_rate"] is None
    table = list(csv.DictReader(io.StringIO(format_rows(names, rows, "csv"))))
    assert table[1]["poverty_incidence_rate"] == "0.25" and table[0]["poor_households"] == "12"
    text = format_rows(names, rows, "table")
    assert "431224 (county) at 2020-12-31" in text and "poor_households" in text
    assert format_rows(names, [], "table") == "(no rows)"
    assert (
        mart_for("census", monthly=True) == "census_monthly"
        and mart_for("consistency", monthly=True) == "consistency"
    )
    with pytest.raises(ValueError):
        mart_for("nonsense")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """dbt parse (no warehouse needed) of the project, with the chdb adapter."""
    from fupin.config import load_settings

    tmp = tmp_path_factory.mktemp("dbt-parse")
    s = load_settings(data_dir=str(tmp / "data"), clickhouse_database="parse_only")
    res = run_dbt(s, ["parse"])
    assert res.success, res.exception
    return res.result


def test_every_mart_column_is_documented_and_keyed(manifest):
    for name in MARTS:
        node = manifest.nodes[f"model.fupin.{name}"]
        assert node.description
        cols = node.columns
        assert {"region_code", "level", "reference_date", "cutoff"} <= set(cols)
        assert all(c.description for c in cols.values()), name
        rates = [c for c in cols if c.endswith("_rate")]
        assert rates, name


def test_every_mart_has_unit_tests_and_key_tests(manifest):
    unit_models = {u.model for u in manifest.unit_tests.values()}
    assert {"int_household_facts", "census", "assessment", "consistency"} <= unit_models
    tested = {
        (t.attached_node or "", t.test_metadata.name)
        for t in manifest.nodes.values()
        if t.resource_type == "test" and t.test_metadata
    }
    for name in ("census", "assessment", "consistency"):
        assert (f"model.fupin.{name}", "unique_combination") in tested
    assert ("model.fupin.census", "children_sum_equal") in tested


def test_one_staging_model_per_department(manifest):
    from fupin.topics import DEPARTMENTS

    staging = {
        n.name for n in manifest.nodes.values() if n.resource_type == "model" and n.name.startswith("stg_")
    }
    assert staging == {f"stg_{d}" for d in DEPARTMENTS}
