"""The data-quality checkpoint on chdb with Great Expectations: a clean batch passes, a planted bad
batch fails naming each problem, Data Docs are written, and ``fupin check`` exits 1.

GX is slow to start, so each database is checked once per module and several tests read the result.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from expectations.checkpoint import run_checkpoint_job
from expectations.report import format_report
from fupin.cli import cli
from fupin.config import load_settings
from fupin.contract import validate
from warehouse.client import connect
from warehouse.migrate import migrate

VILLAGE = "431224104201"
OTHER_VILLAGE = "431224104202"
UNKNOWN_VILLAGE = "999999999999"
EVENT_COLUMNS = [
    "event_id",
    "event_type",
    "schema_version",
    "department",
    "source_system",
    "household_id",
    "person_id",
    "region_code",
    "occurred_at",
    "recorded_at",
    "payload",
    "topic",
    "partition",
    "offset",
    "ingested_at",
    "occurred_at_text",
    "recorded_at_text",
]


def person(n: int) -> str:
    return "P" + f"{n:032x}"


def envelope(
    event_type: str,
    payload: dict,
    *,
    household: str = "H0001",
    person_id: str | None = None,
    region: str = VILLAGE,
    occurred: str = "2020-03-01",
    recorded: str = "2020-03-02T08:00:00+08:00",
    version: int = 1,
    event_id: str | None = None,
) -> dict:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": version,
        "department": event_type.split(".")[0],
        "source_system": "test-system",
        "household_id": household,
        "person_id": person_id,
        "region_code": region,
        "occurred_at": occurred,
        "recorded_at": recorded,
        "payload": payload,
    }


def clean_batch() -> list[dict]:
    """Events every rule accepts, checked by the contract validator first."""
    events = []
    for i, region in enumerate([VILLAGE, OTHER_VILLAGE] * 3):
        h = f"H{i:04d}"
        events += [
            envelope(
                "poverty_office.household_registered",
                {
                    "year_identified": 2015,
                    "poverty_causes": ["illness"],
                    "members": [
                        {
                            "person_id": person(i * 10),
                            "relation": "head",
                            "birth_date": "1970-03-02",
                            "sex": "M",
                            "labour_capacity": "normal",
                        }
                    ],
                },
                household=h,
                region=region,
                occurred="2015-06-01",
                recorded="2015-06-02T09:00:00Z",
            ),
            envelope(
                "poverty_office.income_assessed",
                {
                    "year": 2019,
                    "net_income_per_capita": 5230.5 + i,
                    "household_size": 1,
                    "components": {"wage": 3000, "transfer": 2230.5 + i},
                },
                household=h,
                region=region,
                occurred="2019-12-31",
                recorded="2020-01-05T10:00:00+08:00",
            ),
            envelope(
                "civil_affairs.dibao_enrolled",
                {"monthly_amount": 310.0, "persons_covered": 1},
                household=h,
                region=region,
            ),
            envelope(
                "health_insurance.hospitalization_settled",
                {
                    "total_cost": 10000.0,
                    "basic_paid": 6000.0,
                    "critical_illness_paid": 2000.0,
                    "assistance_paid": 1000.0,
                    "out_of_pocket": 1000.5,
                },
                household=h,
                region=region,
                person_id=person(i * 10),
            ),
            envelope(
                "human_resources.employment_started",
                {"monthly_wage": 3200, "place": "in_county"},
                household=h,
                region=region,
                person_id=person(i * 10),
            ),
        ]
    for e in events:
        validate(e)
    return events


def bad_batch() -> tuple[list[dict], dict[str, str]]:
    """Events breaking the rules the checkpoint must catch, and the ids that mark each problem."""
    dup_id = str(uuid.uuid4())
    negative_income = envelope(
        "poverty_office.income_assessed",
        {"year": 2019, "net_income_per_capita": -120.0, "household_size": 2},
        household="HBAD1",
    )
    negative_dibao = envelope(
        "civil_affairs.dibao_enrolled", {"monthly_amount": -50.0, "persons_covered": 1}, household="HBAD2"
    )
    unknown_region = envelope(
        "poverty_office.household_exited", {"year": 2020}, household="HBAD3", region=UNKNOWN_VILLAGE
    )
    late_record = envelope(
        "water.water_assessed",
        {"safe": True, "issues": []},
        household="HBAD4",
        occurred="2020-05-01",
        recorded="2020-04-01T00:00:00Z",
    )
    first = envelope("poverty_office.household_exited", {"year": 2020}, household="HBAD5", event_id=dup_id)
    # Same event id, another fact: a different household and time, so it survives deduplication.
    second = envelope(
        "poverty_office.household_exited",
        {"year": 2021},
        household="HBAD6",
        occurred="2021-01-01",
        recorded="2021-01-02T00:00:00Z",
        event_id=dup_id,
    )
    future = envelope(
        "water.water_assessed",
        {"safe": True, "issues": []},
        household="HBAD7",
        recorded="2099-01-01T00:00:00Z",
    )
    relocated = envelope(
        "housing.household_relocated", {"new_region_code": "431224104999"}, household="HBAD8"
    )
    abroad = envelope(
        "human_resources.employment_started",
        {"monthly_wage": 100, "place": "abroad"},
        household="HBAD9",
        person_id=person(999),
    )
    events = [
        negative_income,
        negative_dibao,
        unknown_region,
        late_record,
        first,
        second,
        future,
        relocated,
        abroad,
    ]
    ids = {
        "relocated": relocated["event_id"],
        "abroad": abroad["event_id"],
        "future": future["event_id"],
        "negative_income": negative_income["event_id"],
        "negative_dibao": negative_dibao["event_id"],
        "unknown_region": unknown_region["event_id"],
        "late_record": late_record["event_id"],
        "duplicate": dup_id,
    }
    return events, ids


def rows(events: list[dict], ingested: datetime) -> list[tuple]:
    return [
        (
            e["event_id"],
            e["event_type"],
            e["schema_version"],
            e["department"],
            e["source_system"],
            e["household_id"],
            e["person_id"],
            e["region_code"],
            e["occurred_at"],
            e["recorded_at"],
            json.dumps(e["payload"]),
            "fupin.events." + e["department"],
            0,
            i,
            ingested.isoformat(),
            e["occurred_at"],
            e["recorded_at"],
        )
        for i, e in enumerate(events)
    ]


def load(warehouse, events: list[dict], dead_letters: int) -> None:
    migrate(warehouse)
    warehouse.insert(
        "reference_regions",
        ["region_code", "name", "level", "parent_code", "is_poor_county", "zone"],
        [
            ("43", "Hunan", "province", None, 0, "central"),
            ("431224104", "Township", "township", "431224", 0, "central"),
            (VILLAGE, "Village A", "village", "431224104", 0, "central"),
            (OTHER_VILLAGE, "Village B", "village", "431224104", 0, "central"),
        ],
    )
    warehouse.insert("events", EVENT_COLUMNS, rows(events, datetime.now(UTC)))
    now = datetime.now(UTC).isoformat()
    warehouse.insert(
        "dead_letters",
        [
            "source_topic",
            "source_partition",
            "source_offset",
            "source",
            "reason",
            "raw",
            "key",
            "received_at",
            "ingested_at",
        ],
        [
            (
                "fupin.events.water",
                0,
                100 + n,
                "streams",
                "payload.safe: not a boolean",
                b"{bad",
                "H1",
                now,
                now,
            )
            for n in range(dead_letters)
        ]
        # The same message rejected by a second component counts once.
        + [("fupin.events.water", 0, 100, "sink", "payload.safe: not a boolean", b"{bad", "H1", now, now)]
        * bool(dead_letters),
    )


# Marts shaped like dbt_project/models/marts (incremental, one build per reference date and cut-off).
MART_DDL = """
    CREATE TABLE {db}.census (
        region_code String, level String, reference_date Date, build_key String,
        registered_households UInt64, comprehensive_incidence_numerator UInt64,
        comprehensive_incidence_denominator UInt64, comprehensive_incidence_rate Nullable(Float64),
        comprehensive_incidence_within_threshold Nullable(UInt8), income_change_mean_per_capita Nullable(Float64)
    ) ENGINE = MergeTree ORDER BY (level, region_code, reference_date);
    CREATE TABLE {db}.consistency (
        region_code String, level String, reference_date Date, build_key String,
        live_status_households UInt64, live_status_mismatch_households UInt64,
        live_status_mismatch_rate Nullable(Float64), totals_check_passed Nullable(UInt8), invalid_transitions UInt64
    ) ENGINE = MergeTree ORDER BY (level, region_code, reference_date);
    CREATE TABLE {db}.consistency_status_mismatches (
        household_id String, region_code String, live_status String, rebuilt_status String, live_version UInt64
    ) ENGINE = MergeTree ORDER BY household_id
"""
KEY = "2020-12-31|"


def load_marts(warehouse, census: list[tuple], consistency: list[tuple], mismatches: list[tuple]) -> None:
    for statement in MART_DDL.format(db=warehouse.database).split(";"):
        warehouse.execute(statement)
    warehouse.insert(
        "census",
        [
            "region_code",
            "level",
            "reference_date",
            "build_key",
            "registered_households",
            "comprehensive_incidence_numerator",
            "comprehensive_incidence_denominator",
            "comprehensive_incidence_rate",
            "comprehensive_incidence_within_threshold",
            "income_change_mean_per_capita",
        ],
        [(*row[:3], KEY, *row[3:]) for row in census],
    )
    warehouse.insert(
        "consistency",
        [
            "region_code",
            "level",
            "reference_date",
            "build_key",
            "live_status_households",
            "live_status_mismatch_households",
            "live_status_mismatch_rate",
            "totals_check_passed",
            "invalid_transitions",
        ],
        [(*row[:3], KEY, *row[3:]) for row in consistency],
    )
    warehouse.insert(
        "consistency_status_mismatches",
        ["household_id", "region_code", "live_status", "rebuilt_status", "live_version"],
        mismatches,
    )


GOOD_CENSUS = [
    ("43", "province", "2020-12-31", 10, 1, 100, 0.01, 1, -35.5),
    ("431224", "county", "2020-12-31", 10, 1, 100, 0.01, 1, 12.0),
    # A zero denominator: no rate, no threshold verdict.
    ("431224104", "township", "2020-12-31", 0, 0, 0, None, None, None),
]
GOOD_CONSISTENCY = [
    ("43", "province", "2020-12-31", 10, 0, 0.0, 1, 0),
    ("431224", "county", "2020-12-31", 10, 0, 0.0, 1, 0),
]
BAD_CENSUS = [
    ("43", "province", "2020-12-31", 10, 1, 100, 0.01, 1, 0.0),
    # A rate above 1.
    ("431224", "county", "2020-12-31", 10, 140, 100, 1.4, 1, 0.0),
    # A rate of 0 on a zero denominator, and an incidence over its threshold (a warning).
    ("431224104", "township", "2020-12-31", 0, 0, 0, 0.0, 0, 0.0),
    # A region code of the wrong length for its level.
    ("4312", "village", "2020-12-31", 1, 0, 1, 0.0, 1, 0.0),
]
BAD_CONSISTENCY = [
    # Live and batch disagree on one household; the county's children do not sum up.
    ("43", "province", "2020-12-31", 10, 1, 0.1, 1, 0),
    ("431224", "county", "2020-12-31", 10, 0, 0.0, 0, 2),
]
BAD_MISMATCHES = [("H0003", VILLAGE, "exited", "poor", 4)]


def make_settings(tmp_path_factory, name: str):
    return load_settings(
        data_dir=str(tmp_path_factory.mktemp(name) / "data"),
        clickhouse_database=f"t_{name}_{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    settings = make_settings(tmp_path_factory, "clean")
    warehouse = connect(settings)
    # 30 events and one dead letter: a share of 1/31, under the default bound of 0.05.
    load(warehouse, clean_batch(), dead_letters=1)
    load_marts(warehouse, GOOD_CENSUS, GOOD_CONSISTENCY, [])
    yield settings, run_checkpoint_job(warehouse, settings)
    warehouse.close()


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    settings = make_settings(tmp_path_factory, "bad")
    warehouse = connect(settings)
    events, ids = bad_batch()
    # 39 events and 3 dead letters: 3/42 ≈ 0.071, over the bound of 0.05.
    load(warehouse, clean_batch() + events, dead_letters=3)
    load_marts(warehouse, BAD_CENSUS, BAD_CONSISTENCY, BAD_MISMATCHES)
    yield settings, run_checkpoint_job(warehouse, settings), ids
    warehouse.close()


def failures(result: dict, suite: str, column: str) -> list[dict]:
    return [f for f in result["critical_failures"] if f["suite"] == suite and column in f["column"]]


def test_clean_batch_passes_with_data_docs(clean):
    settings, result = clean
    assert result["critical_failures"] == [], format_report(result)
    assert result["success"] is True
    assert set(result["suites"]) == {
        "event_store",
        "dead_letters",
        "marts.census",
        "marts.consistency",
        "marts.consistency_status_mismatches",
    }
    assert result["warnings"] == []
    assert result["suites"]["event_store"]["evaluated"] >= 20
    index = settings.data_dir / "data_docs" / "index.html"
    assert result["data_docs"] == str(index.resolve())
    assert index.exists()
    assert "event_store" in index.read_text()


def test_missing_marts_are_skipped_not_failed(clean):
    _, result = clean
    skipped = {s["suite"]: s["reason"] for s in result["skipped"]}
    assert set(skipped) == {"marts.assessment", "marts.census_monthly", "marts.assessment_monthly"}
    assert all("not built yet" in reason for reason in skipped.values())


def test_bad_batch_fails_naming_each_problem(bad):
    _, result, ids = bad
    assert result["success"] is False

    income = failures(result, "event_store", "payload.net_income_per_capita")
    assert income and income[0]["sample"] == [-120.0] and income[0]["rows"] == [ids["negative_income"]]
    dibao = failures(result, "event_store", "payload.monthly_amount")
    assert dibao and dibao[0]["sample"] == [-50.0]

    region = failures(result, "event_store", "unknown_village_code")
    assert region and region[0]["sample"] == [UNKNOWN_VILLAGE]
    assert region[0]["rows"] == [ids["unknown_region"]]

    order = failures(result, "event_store", "recorded_at, occurred_at")
    assert order and order[0]["unexpected_count"] == 1 and order[0]["rows"] == [ids["late_record"]]
    assert order[0]["sample"] == [["2020-04-01 00:00:00.000", "2020-05-01 00:00:00.000"]]

    unique = failures(result, "event_store", "event_id")
    assert {f["expectation"] for f in unique} >= {"expect_column_values_to_be_unique"}
    assert all(ids["duplicate"] in f["rows"] for f in unique)

    relocation = failures(result, "event_store", "unknown_new_village_code")
    assert relocation and relocation[0]["sample"] == ["431224104999"]
    assert relocation[0]["rows"] == [ids["relocated"]]
    place = failures(result, "event_store", "payload.place")
    assert place and place[0]["sample"] == ["abroad"] and place[0]["rows"] == [ids["abroad"]]

    share = failures(result, "dead_letters", "dead_letter_share")
    assert share and share[0]["sample"] == [pytest.approx(3 / 42)]

    # Nothing else: the clean part of the batch raises no failure.
    flagged = {(f["suite"], f["column"]) for f in result["critical_failures"]}
    assert flagged == {
        ("event_store", "payload.net_income_per_capita"),
        ("event_store", "payload.monthly_amount"),
        ("event_store", "unknown_village_code"),
        ("event_store", "unknown_new_village_code"),
        ("event_store", "payload.place"),
        ("event_store", "recorded_at, occurred_at"),
        ("event_store", "event_id"),
        ("event_store", "event_id_contents"),
        ("dead_letters", "dead_letter_share"),
        ("marts.census", "comprehensive_incidence_rate"),
        ("marts.census", "comprehensive_incidence_rate_on_zero_denominator"),
        ("marts.census", "region_code_not_of_its_level"),
        ("marts.consistency", "live_status_mismatch_households"),
        ("marts.consistency", "totals_check_passed"),
        ("marts.consistency_status_mismatches", "live_status_differs_from_rebuilt"),
    }, flagged


def test_bad_mart_rows_fail_and_missed_thresholds_warn(bad):
    _, result, _ = bad
    rate = {f["column"]: f for f in failures(result, "marts.census", "comprehensive_incidence_rate")}
    assert rate["comprehensive_incidence_rate"]["sample"] == [1.4]
    assert rate["comprehensive_incidence_rate"]["rows"] == [f"431224 county {KEY}"]
    assert rate["comprehensive_incidence_rate_on_zero_denominator"]["rows"] == [f"431224104 township {KEY}"]
    level = failures(result, "marts.census", "region_code_not_of_its_level")
    assert level and level[0]["sample"] == ["village 4312"]
    threshold = [w for w in result["warnings"] if w["column"] == "comprehensive_incidence_within_threshold"]
    assert threshold and threshold[0]["rows"] == [f"431224104 township {KEY}"]


def test_live_vs_batch_disagreement_names_the_household(bad):
    _, result, _ = bad
    (live,) = failures(result, "marts.consistency_status_mismatches", "live_status_differs_from_rebuilt")
    assert live["sample"] == ["H0003: live exited, rebuilt poor"]
    (count,) = failures(result, "marts.consistency", "live_status_mismatch_households")
    assert count["rows"] == [f"43 province {KEY}"]
    (totals,) = failures(result, "marts.consistency", "totals_check_passed")
    assert totals["rows"] == [f"431224 county {KEY}"]
    # Invalid transitions in department data are reported, not fatal.
    assert [w["rows"] for w in result["warnings"] if w["column"] == "invalid_transitions"] == [
        [f"431224 county {KEY}"]
    ]


def test_result_crosses_json(bad):
    _, result, _ = bad
    assert json.loads(json.dumps(result)) == result


def test_bad_batch_report_is_readable(bad):
    _, result, ids = bad
    text = format_report(result)
    assert text.startswith("Data quality: FAILED")
    for expected in (
        "payload.net_income_per_capita",
        "-120.0",
        "amounts are yuan, ≥ 0",
        UNKNOWN_VILLAGE,
        "occurred_at ≤ recorded_at",
        ids["late_record"],
        ids["duplicate"],
        "dead_letter_share",
        "Data Docs:",
    ):
        assert expected in text, expected


def test_fupin_check_exits_1_on_critical_failure(bad, monkeypatch):
    settings, _, ids = bad
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    outcome = CliRunner().invoke(cli, ["check"])
    assert outcome.exit_code == 1, outcome.output
    assert "Data quality: FAILED" in outcome.output
    assert UNKNOWN_VILLAGE in outcome.output and ids["negative_income"] in outcome.output


def test_dead_letter_copies_count_once(clean):
    _, result = clean
    # Two rows for one rejected message (streams and sink): 1 dead letter over 31 messages.
    assert result["suites"]["dead_letters"]["failed"] == 0


def test_recorded_time_far_ahead_of_ingestion_is_a_warning_only(bad):
    _, result, ids = bad
    future = [w for w in result["warnings"] if w["column"] == "recorded_in_future"]
    assert future and future[0]["rows"] == [ids["future"]] and future[0]["severity"] == "warning"
    assert not failures(result, "event_store", "recorded_in_future")


def test_fupin_check_on_an_unmigrated_warehouse_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("FUPIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", f"t_empty_{uuid.uuid4().hex[:8]}")
    outcome = CliRunner().invoke(cli, ["check"])
    assert outcome.exit_code == 1
    assert "fupin warehouse migrate" in outcome.output
    assert "Traceback" not in outcome.output


def test_an_unreadable_table_fails_its_suite_and_the_others_still_run(tmp_path_factory, monkeypatch):
    import expectations.checkpoint as checkpoint
    from expectations.suites import Dataset

    settings = make_settings(tmp_path_factory, "unreadable")
    warehouse = connect(settings)
    try:
        load(warehouse, clean_batch(), dead_letters=0)
        real_plan = checkpoint.plan

        def plan_with_a_broken_table(wh, s):
            todo = real_plan(wh, s)
            sql = f"SELECT no_such_column FROM {wh.database}.reference_regions"
            todo.datasets.append(Dataset(suite="marts.broken", table="reference_regions", sql=sql))
            return todo

        monkeypatch.setattr(checkpoint, "plan", plan_with_a_broken_table)
        result = run_checkpoint_job(warehouse, settings)
    finally:
        warehouse.close()
    assert result["success"] is False
    (broken,) = result["critical_failures"]
    assert broken["suite"] == "marts.broken" and "no_such_column" in broken["error"]
    assert result["suites"]["event_store"]["failed"] == 0
    assert "no_such_column" in format_report(result)


def test_data_docs_show_each_failure_with_its_severity_and_values(bad):
    _, result, _ = bad
    docs = Path(result["data_docs"]).parent
    # One page: the site shows the latest run only (fupin check ran on this database too).
    (page,) = (docs / "validations" / "event_store").rglob("*.html")
    html = page.read_text()
    assert "[critical] amounts are yuan, ≥ 0" in html and "-120.0" in html
    assert "[warning] recorded_at is not more than a day" in html
    assert UNKNOWN_VILLAGE in html
