"""Pure parts of the dashboard and the ClickHouse HTTP interface: suppression, parameters, credentials."""

from __future__ import annotations

import base64

import pytest

from warehouse.clickhouse_http import credential, statement
from warehouse.dashboard.panels import BadRequest, date_param, region_param
from warehouse.dashboard.public import suppress, suppress_row


def test_public_view_hides_small_counts_their_persons_and_their_rates():
    row = {"region_code": "431224", "households_total": 120, "poor_households": 3, "poor_persons": 9,
           "exited_households": 40, "satisfied_households": 2, "surveyed_households": 30, "satisfaction_rate": 0.07,
           "poverty_incidence_rate": 0.01}  # fmt: skip
    out = suppress_row(row, 5)
    assert out["poor_households"] is None and out["poor_persons"] is None
    assert out["satisfaction_rate"] is None  # its numerator is hidden
    assert out["exited_households"] == 40 and out["poverty_incidence_rate"] == 0.01
    assert set(out["_suppressed"]) == {
        "poor_households",
        "poor_persons",
        "satisfied_households",
        "satisfaction_rate",
    }
    # zero is no small cell; a small region hides every count and rate
    assert suppress_row({"households_total": 50, "poor_households": 0}, 5)["poor_households"] == 0
    tiny = suppress_row(
        {"region_code": "x", "households_total": 4, "persons_total": 11, "poverty_incidence_rate": 0.2}, 5
    )
    assert (
        tiny["households_total"] is None
        and tiny["persons_total"] is None
        and tiny["poverty_incidence_rate"] is None
    )
    doc = suppress({"rows": [row], "columns": ["poor_households"], "rates": {"x": ["a", "b", None]}}, 5)
    assert doc["rows"][0]["poor_households"] is None and doc["columns"] == ["poor_households"]
    assert suppress_row(row, 2)["poor_households"] == 3  # the threshold is a setting


def test_parameters_are_codes_and_dates_never_text():
    assert region_param("43") == "43" and region_param("431224104201") == "431224104201"
    for bad in ("4", "431", "43' OR 1=1", "43;DROP"):
        with pytest.raises(BadRequest):
            region_param(bad)
    assert date_param("2020-12-31") == "2020-12-31"
    for bad in ("2020-02-30", "yesterday", "2020-1-1"):
        with pytest.raises(BadRequest):
            date_param(bad)


def test_clickhouse_credentials_and_listing_statements():
    basic = "Basic " + base64.b64encode(b"dashboards:fpn_secret").decode()
    assert credential({"Authorization": basic}, {}) == "fpn_secret"
    assert credential({"Authorization": "Bearer fpn_b"}, {}) == "fpn_b"
    assert credential({"X-ClickHouse-Key": "fpn_k"}, {}) == "fpn_k"
    assert credential({}, {"password": "fpn_p"}) == "fpn_p"
    assert credential({}, {}) is None
    assert statement("SHOW TABLES", "fupin").startswith(
        "SELECT name FROM system.tables WHERE database = 'fupin'"
    )
    assert "table = 'census'" in statement("DESCRIBE TABLE fupin.census", "fupin")
    assert statement("SHOW DATABASES", "fupin").startswith("SELECT name FROM system.databases")
    assert statement("SELECT 1", "fupin") == "SELECT 1"
