"""The mart suites against the marts dbt really builds: a clean batch gives no critical failure.

Guards the column-derived rules (``*_rate`` in [0, 1], counts ≥ 0, totals, live vs batch) against
the marts as they evolve in dbt_project/.
"""

from __future__ import annotations

import uuid

import pytest
from test_expectations_checkpoint import OTHER_VILLAGE, VILLAGE, clean_batch, load

from expectations.checkpoint import run_checkpoint_job
from expectations.report import format_report
from fupin.build import run_build_job
from fupin.config import load_settings
from warehouse.client import connect


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    settings = load_settings(
        data_dir=str(tmp_path_factory.mktemp("marts") / "data"),
        clickhouse_database=f"t_marts_{uuid.uuid4().hex[:8]}",
    )
    warehouse = connect(settings)
    load(warehouse, clean_batch(), dead_letters=0)
    warehouse.insert(
        "reference_regions",
        ["region_code", "name", "level", "parent_code", "is_poor_county", "zone"],
        [("4312", "City", "city", "43", 0, "central"), ("431224", "County", "county", "4312", 1, "central")],
    )
    warehouse.insert(
        "reference_population",
        ["region_code", "year", "agricultural_population", "rural_households"],
        [(v, y, 500, 120) for v in (VILLAGE, OTHER_VILLAGE) for y in range(2014, 2022)],
    )
    warehouse.insert(
        "reference_lines",
        ["province_code", "year", "poverty_line", "poverty_line_source", "monitoring_line", "monitoring_line_source"],
        [("43", y, 2300.0 + 100 * (y - 2014), "test", 6000.0 if y >= 2020 else None, "test" if y >= 2020 else None)
         for y in range(2014, 2022)],
    )  # fmt: skip
    build = run_build_job(warehouse, settings, as_of_date="2020-12-31")
    assert build.get("success"), build
    yield run_checkpoint_job(warehouse, settings)
    warehouse.close()


def test_marts_built_from_a_clean_batch_pass(built):
    assert built["critical_failures"] == [], format_report(built)
    checked = {name for name in built["suites"] if name.startswith("marts.")}
    assert {"marts.census", "marts.assessment", "marts.consistency"} <= checked
    # Every mart has rules derived from its columns, rates among them.
    assert all(
        built["suites"][name]["evaluated"] > 5 for name in checked - {"marts.consistency_status_mismatches"}
    )


def test_missed_targets_are_warnings_naming_regions(built):
    # Nobody in the batch is insured or visited: the thresholds of indicators.md are missed.
    columns = {w["column"] for w in built["warnings"]}
    assert any(c.endswith("_within_threshold") for c in columns)
    assert all(w["rows"] for w in built["warnings"] if w["column"].endswith("_within_threshold"))
