"""`fupin alerts --state open|resolved|all` on chdb, over alert episodes as the sink lands them.

The episode table is a ReplacingMergeTree(revision): an episode's rows of older revisions stay
until a merge, so each filter must read the latest revision (FINAL) and never list an episode
whose latest revision retracted it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from fupin.cli import cli
from warehouse.sink import ALERT_COLUMNS

V1, V2 = "431224104201", "431224105201"  # villages of two townships


def episode(alert_id: str, hh: str, state: str, revision: int, *, region: str = V1, rule: str = "unsafe_water",
            start: str = "2020-03-01", end: str | None = None) -> tuple:  # fmt: skip
    """One revision of an episode, a row of ALERT_COLUMNS (what warehouse.sink.alert_row stores)."""
    at = datetime.fromisoformat(start).replace(tzinfo=UTC)
    until = datetime.fromisoformat(end).replace(tzinfo=UTC) if end else None
    now = datetime.now(UTC)
    return (alert_id, rule, state, hh, region, f"E-{alert_id}", at, at, f"X-{alert_id}" if end else None, until,
            until, revision, now, "{}", now)  # fmt: skip


@pytest.fixture
def landed(settings, monkeypatch):
    """Episodes in every state, each landed in its own insert (parts unmerged, older revisions kept)."""
    from warehouse.client import connect
    from warehouse.migrate import migrate

    wh = connect(settings)
    migrate(wh)
    revisions = [
        episode("A-open", "H1", "raised", 1),
        episode("A-open-again", "H2", "raised", 1, region=V2, rule="labour_loss"),
        # raised, then resolved: resolved only
        episode("A-done", "H1", "raised", 1, rule="unsafe_housing"),
        episode("A-done", "H1", "resolved", 2, rule="unsafe_housing", end="2020-06-01"),
        # raised, then retracted by a late event: nowhere
        episode("A-gone", "H3", "raised", 1),
        episode("A-gone", "H3", "retracted", 2),
        # resolved, then reopened (a late event removed its end): open only
        episode("A-back", "H3", "resolved", 1, rule="labour_loss", end="2020-05-01"),
        episode("A-back", "H3", "raised", 2, rule="labour_loss"),
        # resolved in another township, retracted afterwards: nowhere
        episode("A-void", "H4", "resolved", 1, region=V2, end="2020-04-01"),
        episode("A-void", "H4", "retracted", 2, region=V2),
    ]
    wh.execute(f"SYSTEM STOP MERGES {settings.clickhouse_database}.alerts")  # the older revisions stay
    for row in revisions:
        wh.insert("alerts", ALERT_COLUMNS, [row])
    assert wh.query("SELECT count() FROM alerts")[0][0] == len(revisions)  # nothing merged away yet
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    yield
    wh.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    wh.close()


def listed(*args: str) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["alerts", *args, "--json"])
    assert result.exit_code == 0, result.output
    return {r["alert_id"]: r["state"] for r in json.loads(result.output)}


def test_each_state_filter_lists_the_episodes_in_that_state(landed):
    assert listed() == {"A-open": "open", "A-open-again": "open", "A-back": "open"}  # the default
    assert listed("--state", "open") == listed()
    assert listed("--state", "resolved") == {"A-done": "resolved"}
    assert listed("--state", "all") == {"A-open": "open", "A-open-again": "open", "A-back": "open",
                                        "A-done": "resolved"}  # fmt: skip
    assert listed("--open") == listed()  # the old flag, an alias


def test_region_prefix_and_what_the_table_shows(landed):
    assert set(listed("--state", "all", "--region", V2[:9])) == {"A-open-again"}
    out = CliRunner().invoke(cli, ["alerts", "--state", "resolved"]).output
    (line,) = [ln for ln in out.splitlines() if ln.startswith("H1")]  # the starting event and the end shown
    assert (
        "unsafe_housing" in line
        and "resolved" in line
        and "(E-A-done)" in line
        and "until 2020-06-01" in line
    )
    assert out.rstrip().endswith("1 resolved alert(s)")
    out = CliRunner().invoke(cli, ["alerts", "--state", "all"]).output
    assert out.rstrip().endswith("4 alert(s) (retracted episodes not listed)")


def test_open_contradicting_another_state_is_refused(landed):
    result = CliRunner().invoke(cli, ["alerts", "--open", "--state", "resolved"])
    assert result.exit_code == 2 and "--open contradicts --state resolved" in result.output


def test_an_analyst_reads_the_episodes_and_a_dashboard_does_not(landed, settings):
    from warehouse.readonly import ReadOnlyRefused, ReadOnlyWarehouse

    analyst = ReadOnlyWarehouse.chdb(settings.chdb_data_path, settings.clickhouse_database, "analyst")
    dashboard = ReadOnlyWarehouse.chdb(settings.chdb_data_path, settings.clickhouse_database, "dashboard")
    try:
        sql = "SELECT count() FROM alerts FINAL WHERE state != 'retracted'"
        assert analyst.query(sql)[0][0] == 4  # what `fupin alerts --state all` lists, with an analyst token
        with pytest.raises(ReadOnlyRefused, match="alerts"):
            dashboard.query(sql)
    finally:
        analyst.close()
        dashboard.close()
