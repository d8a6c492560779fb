"""The analyst's commands over what the warehouse landed, on chdb with real rows (issue 17, item 5):
`fupin household show --date`, `fupin households --region --status` and the deduplicated counts
of `fupin status`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner
from test_dbt_build import V1, V3, envelope, land, registered

from fupin.cli import cli


@pytest.fixture
def wh(settings, monkeypatch):
    from warehouse.client import connect
    from warehouse.migrate import migrate

    w = connect(settings)
    migrate(w)
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    yield w
    w.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    w.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_household_show_at_a_date_folds_the_stored_events_up_to_it(wh):
    land(wh, [registered("H1", "2019-01-05", [1, 2]),
              envelope("H1", "poverty_office.household_exited", "2020-06-01", {"year": 2020})])  # fmt: skip
    code, out = run("household", "show", "H1", "--date", "2020-05-31", "--json")
    assert code == 0, out
    before = json.loads(out)
    assert before["status"] == "poor" and before["living_members"] == 2
    code, out = run("household", "show", "H1", "--date", "2020-06-01", "--json")
    assert code == 0 and json.loads(out)["status"] == "exited"  # the day of the exit counts
    code, out = run("household", "show", "H1", "--date", "2018-12-31")
    assert code == 1 and "no event on or before 2018-12-31" in out
    code, out = run("household", "show", "H1", "--date", "31/12/2020")
    assert code == 2 and "YYYY-MM-DD" in out


def test_households_lists_each_household_by_its_latest_status_document(wh):
    from warehouse.sink import STATUS_COLUMNS, status_row

    def doc(hh: str, version: int, region: str, status: str, updated: str) -> tuple:
        body = {
            "household_id": hh,
            "version": version,
            "region_code": region,
            "status": status,
            "last_occurred_at": "2020-06-01T00:00:00Z",
            "updated_at": updated,
            "living_members": 2,
            "monitoring": {"category": None, "risk_state": None},
            "open_alerts": [],
        }
        return status_row(orjson.dumps(body), datetime.now(UTC))

    wh.execute(f"SYSTEM STOP MERGES {wh.database}.household_status_history")  # both versions stay stored
    for row in (
        doc("H1", 1, V1, "poor", "2020-01-01T00:00:00Z"),
        doc("H1", 2, V1, "exited", "2020-06-02T00:00:00Z"),
        doc("H2", 1, V1, "poor", "2020-01-01T00:00:00Z"),
        doc("H3", 1, V3, "exited", "2020-01-01T00:00:00Z"),
    ):
        wh.insert("household_status_history", STATUS_COLUMNS, [row])

    def listed(*args: str) -> list[str]:
        code, out = run("households", *args, "--json")
        assert code == 0, out
        return [r["household_id"] for r in json.loads(out)]

    assert listed("--region", V1[:9], "--status", "exited") == ["H1"]
    assert listed("--region", V1[:9], "--status", "poor") == ["H2"]  # H1's older document is not it
    assert listed("--region", V1[:6], "--status", "exited") == ["H1", "H3"]
    assert listed("--region", V3) == ["H3"]


def test_status_counts_events_and_dead_letters_once_each(wh, broker_settings):
    from fupin.stack_cli import consumer_lag
    from warehouse.sink import DEAD_LETTER_COLUMNS, rejected_row

    events = [registered("H1", "2019-01-05", [1]), registered("H2", "2019-01-05", [2])]
    wh.execute(f"SYSTEM STOP MERGES {wh.database}.events")
    wh.execute(f"SYSTEM STOP MERGES {wh.database}.dead_letters")
    land(wh, events)
    land(wh, events[:1])  # a redelivered copy
    now = datetime.now(UTC)
    letter = rejected_row(b"{not json", None, "fupin.events.water", 0, 7, "not valid JSON", now)
    again = list(letter)
    again[DEAD_LETTER_COLUMNS.index("source")] = "streams"  # the same message, refused by a stream worker too
    wh.insert("dead_letters", DEAD_LETTER_COLUMNS, [letter])
    wh.insert("dead_letters", DEAD_LETTER_COLUMNS, [tuple(again)])
    stored = wh.query("SELECT (SELECT count() FROM events), (SELECT count() FROM dead_letters)")
    assert stored == [(3, 2)]  # both copies of each are stored, unmerged
    lag = consumer_lag(broker_settings)  # nothing published from here: the ledgers need a broker
    assert (lag["events_landed"], lag["dead_letters"], lag["households_with_events"]) == (2, 1, 2)
