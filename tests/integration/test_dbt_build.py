"""dbt on embedded ClickHouse (chdb), in-process: census figures, the bitemporal cut-off, incremental builds.

Each test lands contract envelopes in its own database through the sink's row conversion, runs
``run_build_job`` (dbt build with the chdb adapter) and reads the marts back.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from fupin.build import dbt_dir, read_indicators, run_build_job
from warehouse.sink import ALERT_COLUMNS

V1, V2, V3 = "431224104201", "431224104202", "431224105201"  # two townships, three villages
D = "2020-12-31"


def person(n: int) -> str:
    return "P" + f"{n:032x}"


def envelope(
    hh: str,
    event_type: str,
    occurred: str,
    payload: dict,
    *,
    region: str = V1,
    person_id: str | None = None,
    recorded: str | None = None,
) -> dict:
    department = event_type.split(".")[0]
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "department": department,
        "source_system": "test",
        "household_id": hh,
        "person_id": person_id,
        "region_code": region,
        "occurred_at": occurred,
        "recorded_at": recorded or f"{occurred[:10]}T12:00:00+00:00",
        "payload": payload,
    }


def member(n: int, relation: str = "head") -> dict:
    return {
        "person_id": person(n),
        "relation": relation,
        "birth_date": "1970-01-01",
        "sex": "M",
        "labour_capacity": "normal",
    }


def registered(hh: str, occurred: str, members: list[int], region: str = V1, **kw) -> dict:
    return envelope(
        hh,
        "poverty_office.household_registered",
        occurred,
        {
            "year_identified": int(occurred[:4]),
            "poverty_causes": ["illness"],
            "members": [member(m, "head" if i == 0 else "child") for i, m in enumerate(members)],
        },
        region=region,
        **kw,
    )


def land(wh, envelopes: list[dict], ingested: datetime | None = None) -> None:
    """Store envelopes as the sink does (contract-checked rows of `events`)."""
    from warehouse.sink import EVENT_COLUMNS, event_row

    now = ingested or datetime.now(UTC)
    rows = [
        event_row(orjson.dumps(e), f"fupin.events.{e['department']}", 0, i, now, key=e["household_id"].encode())
        for i, e in enumerate(envelopes)
    ]
    wh.insert("events", EVENT_COLUMNS, rows)


def load_reference(wh) -> None:
    wh.insert(
        "reference_lines",
        [
            "province_code",
            "year",
            "poverty_line",
            "poverty_line_source",
            "monitoring_line",
            "monitoring_line_source",
        ],
        [("43", 2020, 4000.0, "test", 6000.0, "test")],
    )
    wh.insert(
        "reference_population",
        ["region_code", "year", "agricultural_population", "rural_households"],
        [(V1, 2020, 100, 30), (V2, 2020, 200, 60), (V3, 2020, 300, 90)],
    )
    wh.insert(
        "reference_regions",
        ["region_code", "name", "level", "parent_code", "is_poor_county", "zone"],
        [("431224", "县", "county", "4312", 1, "central")],
    )


@pytest.fixture
def wh(settings):
    from warehouse.client import connect
    from warehouse.migrate import migrate

    w = connect(settings)
    migrate(w)
    load_reference(w)
    yield w
    w.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    w.close()


def base_events() -> list[dict]:
    return [
        # H1: registered with two members, one leaves; exits; relocates to V2
        registered("H1", "2019-01-05", [1, 2]),
        envelope(
            "H1", "public_security.person_left", "2020-03-01", {"reason": "move_out"}, person_id=person(2)
        ),
        envelope("H1", "poverty_office.household_exited", "2020-06-01", {"year": 2020}),
        envelope("H1", "housing.household_relocated", "2020-08-01", {"new_region_code": V2}),
        # H2: poor in V1 with three members
        registered("H2", "2019-03-01", [3, 4, 5]),
        # H3: known through 低保 only, in V3; checked and found missed
        envelope(
            "H3",
            "civil_affairs.dibao_enrolled",
            "2020-02-01",
            {"monthly_amount": 300.0, "persons_covered": 2},
            region=V3,
        ),
        envelope(
            "H3",
            "assessment.household_checked",
            "2020-07-01",
            {"finding": "missed", "batch": "b1"},
            region=V3,
        ),
        # H4: registered, exited, returned in V3; an invalid second exit counts apart
        registered("H4", "2018-01-01", [6, 7], region=V3),
        envelope("H4", "poverty_office.household_exited", "2019-12-01", {"year": 2019}, region=V3),
        envelope(
            "H4",
            "poverty_office.household_returned",
            "2020-05-01",
            {"year": 2020, "causes": ["illness"]},
            region=V3,
        ),
        envelope(
            "H4",
            "poverty_office.household_returned",
            "2020-06-01",
            {"year": 2020, "causes": ["illness"]},
            region=V3,
        ),
    ]


def mart(wh, settings, family: str, level: str, d: str = D, cutoff: str | None = None) -> dict[str, dict]:
    names, rows = read_indicators(wh, settings.clickhouse_database, family, level, None, d, cutoff)
    return {r[names.index("region_code")]: dict(zip(names, r, strict=True)) for r in rows}


def test_build_census_assessment_consistency(wh, settings):
    land(wh, base_events())
    result = run_build_job(wh, settings, as_of_date=D, docs=True)
    assert result["success"], result["failed"] or result["error"]
    kinds = {n["type"] for n in result["nodes"]}
    assert {"seed", "model", "test", "unit_test"} <= kinds

    villages = mart(wh, settings, "census", "village")
    assert set(villages) == {V1, V2, V3}
    # H1 moved to V2 with one living member; H2 stays poor in V1
    assert (villages[V1]["poor_households"], villages[V1]["poor_persons"]) == (1, 3)
    assert (villages[V2]["exited_households"], villages[V2]["exited_persons"]) == (1, 1)
    assert villages[V3]["returned_households"] == 1 and villages[V3]["non_registered_households"] == 1
    townships = mart(wh, settings, "census", "township")
    assert townships["431224104"]["households_total"] == 2 and townships["431224105"]["households_total"] == 2
    county = mart(wh, settings, "census", "county")["431224"]
    assert county["registered_households"] == 3 and county["registered_persons"] == 6
    assert county["remaining_poor_persons"] == 5
    assert county["insurance_rate"] == 0.0  # no insurance reported for registered persons

    a = mart(wh, settings, "assessment", "county")["431224"]
    assert a["agricultural_population"] == 600
    assert a["poverty_incidence_numerator"] == 5 and a["poverty_incidence_rate"] == pytest.approx(5 / 600)
    assert a["missed_households"] == 1 and a["checked_non_registered_households"] == 1
    assert a["wrong_exit_rate"] is None  # nobody checked while exited: null, never 0
    assert a["return_rate"] == pytest.approx(1 / 2)

    c = mart(wh, settings, "consistency", "county")["431224"]
    assert c["invalid_transitions"] == 1
    assert c["missed_candidate_households"] == 1 and c["dibao_households_not_registered"] == 1
    assert c["totals_check_passed"] == 1
    assert all(r["totals_check_passed"] == 1 for r in mart(wh, settings, "consistency", "township").values())

    # another reference date: the facts are rebuilt for it, the census keeps both dates
    assert run_build_job(wh, settings, as_of_date="2020-06-30")["success"]
    earlier = mart(wh, settings, "census", "village", d="2020-06-30")
    assert earlier[V1]["exited_households"] == 1  # H1 exited on 1 June, relocated only in August
    assert V2 not in earlier  # nobody lived in V2 yet
    assert mart(wh, settings, "census", "village")[V2]["exited_households"] == 1

    # dbt docs describe every mart column
    assert result["docs"] and (dbt_dir(settings) / "target" / "index.html").exists()
    catalog = json.loads((dbt_dir(settings) / "target" / "catalog.json").read_text())
    manifest = json.loads((dbt_dir(settings) / "target" / "manifest.json").read_text())
    for name in ("census", "assessment", "consistency", "census_monthly", "assessment_monthly"):
        node = manifest["nodes"][f"model.fupin.{name}"]
        built = set(catalog["nodes"][f"model.fupin.{name}"]["columns"])
        undocumented = {c for c in built if not node["columns"].get(c, {}).get("description")}
        assert not undocumented, f"{name}: {sorted(undocumented)}"


def _values(rows: dict[str, dict]) -> dict[str, dict]:
    return {k: {c: v for c, v in r.items() if c != "built_at"} for k, r in rows.items()}


def test_census_frozen_at_cutoff_is_identical_after_late_events(wh, settings):
    t = "2021-01-15T00:00:00Z"
    land(wh, base_events())
    assert run_build_job(wh, settings, as_of_date=D, cutoff=t)["success"]
    before = {
        (f, lv): _values(mart(wh, settings, f, lv, cutoff="2021-01-15 00:00:00"))
        for f in ("census", "assessment", "consistency")
        for lv in ("village", "township", "county")
    }
    # late events: recorded after T, valid before D (H2 exits, a new household appears, H3 registered)
    land(
        wh,
        [
            envelope(
                "H2",
                "poverty_office.household_exited",
                "2020-10-01",
                {"year": 2020},
                recorded="2021-02-01T09:00:00Z",
            ),
            registered("H9", "2020-04-01", [20, 21], region=V2, recorded="2021-02-02T09:00:00Z"),
            registered("H3", "2020-09-01", [30], region=V3, recorded="2021-03-01T09:00:00Z"),
        ],
    )
    assert run_build_job(wh, settings, as_of_date=D, cutoff=t)["success"]
    after = {
        (f, lv): _values(mart(wh, settings, f, lv, cutoff="2021-01-15 00:00:00"))
        for f in ("census", "assessment", "consistency")
        for lv in ("village", "township", "county")
    }
    assert after == before
    # without the cut-off the late events count: the freeze was what kept the numbers
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    county = mart(wh, settings, "census", "county")["431224"]
    assert county["households_total"] == before[("census", "county")]["431224"]["households_total"] + 1
    # H2 exits; H3 and H9 become poor
    assert county["poor_households"] == before[("census", "county")]["431224"]["poor_households"] + 1
    assert county["exited_households"] == before[("census", "county")]["431224"]["exited_households"] + 1


def _facts(wh, db: str) -> list[tuple]:
    return wh.query(
        f"SELECT * EXCEPT (built_at, source_watermark) FROM {db}.int_household_facts_latest "
        "ORDER BY reference_date, household_id"
    )


MARTS = ("census", "census_monthly", "assessment", "assessment_monthly", "consistency")


def _marts(wh, db: str) -> dict[str, list[tuple]]:
    """Every row of every mart but its build time; repr so that NaN equals NaN."""
    return {
        m: [
            tuple(repr(v) for v in r)
            for r in wh.query(
                f"SELECT * EXCEPT (built_at) FROM {db}.{m} ORDER BY build_key, level, region_code, reference_date"
            )
        ]
        for m in MARTS
    }


def _built_at(wh, db: str, table: str):
    return wh.query(f"SELECT toString(max(built_at)) FROM {db}.{table}")[0][0]


def _dates_built_since(wh, db: str, table: str, since) -> set[str]:
    rows = wh.query(
        f"SELECT DISTINCT toString(reference_date) FROM {db}.{table} WHERE built_at > toDateTime64({{since:String}}, 3, 'UTC')",
        {"since": since},
    )
    return {r[0] for r in rows}


def _alert(hh: str, region: str, occurred: str) -> tuple:
    """An open alert episode as the sink lands it (warehouse.sink.ALERT_COLUMNS)."""
    at = datetime.fromisoformat(occurred).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    return (f"A-{hh}", "unsafe_water", "raised", hh, region, f"E-{hh}", at, at, None, None, None, 1, now, "{}", now)


def test_incremental_build_equals_full_build(wh, settings):
    db = settings.clickhouse_database
    land(wh, base_events(), ingested=datetime(2021, 1, 1, tzinfo=UTC))
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    first = {t: _built_at(wh, db, t) for t in ("int_household_facts", "census_monthly", "assessment_monthly")}
    land(
        wh,
        [
            envelope("H2", "poverty_office.household_exited", "2020-10-01", {"year": 2020}),
            envelope(
                "H5", "water.water_assessed", "2020-10-01", {"safe": False, "issues": ["quality"]}, region=V2
            ),
        ],
    )
    incremental = run_build_job(wh, settings, as_of_date=D)
    assert incremental["success"]
    # the code did not change: the unit tests ran on the first build only
    assert "unit_test" not in {n["type"] for n in incremental["nodes"]}
    # only the households with new events were rewritten, from the date of their events on
    rebuilt = {
        r[0]
        for r in wh.query(
            f"SELECT DISTINCT household_id FROM {db}.int_household_facts "
            f"WHERE built_at > toDateTime64({{since:String}}, 3, 'UTC')",
            {"since": first["int_household_facts"]},
        )
    }
    assert rebuilt == {"H2", "H5"}
    assert (
        min(_dates_built_since(wh, db, "int_household_facts", first["int_household_facts"])) == "2020-10-31"
    )
    # the monthly marts rewrote only the month ends whose facts changed
    for m in ("census_monthly", "assessment_monthly"):
        assert _dates_built_since(wh, db, m, first[m]) == {"2020-10-31", "2020-11-30", "2020-12-31"}, m
    second = _built_at(wh, db, "census_monthly")
    # older events: H4 relocates from V3 to V1 in July (its old and new regions change), H2 is
    # visited in February; an alert is raised in May
    land(
        wh,
        [
            envelope("H4", "housing.household_relocated", "2020-07-15", {"new_region_code": V1}, region=V3),
            envelope(
                "H2", "poverty_office.visit_recorded", "2020-02-10", {"cadre_id": "C1", "purpose": "plan"}
            ),
        ],
    )
    wh.insert("alerts", ALERT_COLUMNS, [_alert("H2", V1, "2020-05-20")])
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    assert min(_dates_built_since(wh, db, "census_monthly", second)) == "2020-02-29"
    incremental_facts = _facts(wh, db)
    incremental_marts = _marts(wh, db)
    census_incremental = _values(mart(wh, settings, "census", "village"))
    assert census_incremental[V1]["households_total"] == 2  # H2 and H4 after its move
    assert run_build_job(wh, settings, as_of_date=D, full_refresh=True)["success"]
    assert _facts(wh, db) == incremental_facts
    assert _values(mart(wh, settings, "census", "village")) == census_incremental
    full_marts = _marts(wh, db)
    for m in MARTS:
        assert full_marts[m] == incremental_marts[m], m


def test_incremental_build_checks_the_new_events(wh, settings):
    """The staging tests, scoped to the events landed since the last build, still catch a bad one."""
    from warehouse.sink import EVENT_COLUMNS, event_row

    land(wh, base_events(), ingested=datetime(2021, 1, 1, tzinfo=UTC))
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    # a water event whose name the department does not publish, landed past the sink's contract
    good = envelope("H5", "water.water_assessed", "2020-11-01", {"safe": True, "issues": []}, region=V2)
    raw = orjson.dumps(good)
    row = list(event_row(raw, "fupin.events.water", 0, 99, datetime.now(UTC), key=good["household_id"].encode()))
    row[EVENT_COLUMNS.index("event_type")] = "water.pipe_fixed"
    wh.insert("events", EVENT_COLUMNS, [tuple(row)])
    result = run_build_job(wh, settings, as_of_date=D)
    assert not result["success"]
    (name, failures), *others = [(n["name"], n["failures"]) for n in result["failed"]]
    assert name.startswith("valid_values_stg_water") and failures == 1 and not others, result["failed"]


def test_source_freshness_passes_on_freshly_landed_events(wh, settings):
    """Per-source thresholds on ingested_at; one freshness source per department (its feed)."""
    from fupin.build import run_dbt

    land(wh, base_events())
    res = run_dbt(settings, ["source", "freshness"])
    statuses = {r.node.unique_id.split(".", 2)[2]: str(r.status) for r in res.result.results
                if hasattr(r.node, "source_name")}  # fmt: skip
    assert statuses["warehouse.events_latest"] == "pass" and statuses["events_by_department.poverty_office"] == "pass"
    # a department that never published only warns; no alerts yet only warns
    assert statuses["events_by_department.water"] == "warn" and statuses["warehouse.alerts"] == "warn"
    # no status document although events landed: the streams are not running, an error
    assert statuses["warehouse.household_status_history"] == "error"
    assert "warehouse.dead_letters" not in statuses  # no threshold: an empty dead-letter table is good news


def test_indicators_for_an_assessment_period_at_every_level_with_cadre_loads(wh, settings, monkeypatch):
    """`fupin indicators --from 2020-10 --to 2020-12 --level all --cadres`: D is 31 December, the
    period three whole months, every level listed, and each cadre's load after the marts."""
    from click.testing import CliRunner

    from fupin.cli import cli

    land(wh, base_events())
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    result = CliRunner().invoke(cli, ["indicators", "--from", "2020-10", "--to", "2020-12", "--level", "all",
                                      "--cadres", "--format", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = result.output[result.output.index("[") :]
    rows = json.loads(body[: body.index("\ncadre loads")])
    assert {r["level"] for r in rows} >= {"county", "township", "village"}
    assert {r["reference_date"] for r in rows} == {"2020-12-31"}
    assert {r["visit_months_in_period"] for r in rows} == {3}
    assert "cadre loads at 2020-12-31:" in result.output
    bad = CliRunner().invoke(cli, ["indicators", "--from", "2020-10", "--level", "county"])
    assert bad.exit_code == 2 and "needs both --from and --to" in bad.output


def test_another_date_keeps_the_builds_already_made(wh, settings):
    """Asking for D2 after D1 adds D2's rows; D1's stay as they were (no rebuild to read them)."""
    land(wh, base_events())
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    first = mart(wh, settings, "census", "county")
    assert run_build_job(wh, settings, as_of_date="2020-06-30")["success"]
    assert mart(wh, settings, "census", "county", d="2020-06-30")
    again = mart(wh, settings, "census", "county")
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != "built_at"} for k, r in rows.items()}  # noqa: E731
    assert strip(again) == strip(first)


def test_cadre_loads_of_an_earlier_date_stay_after_another_build(wh, settings, monkeypatch):
    """`fupin indicators --date D --cadres` after a build of a date whose series does not reach D:
    the loads at D are still listed (the cadre_loads mart keeps each build's rows), not 0 cadres."""
    from click.testing import CliRunner

    from fupin.cli import cli

    def assigned(hh: str, cadre: str, occurred: str, region: str = V1) -> dict:
        payload = {"cadre_id": cadre, "unit": "county office"}
        return envelope(hh, "poverty_office.cadre_assigned", occurred, payload, region=region)

    land(wh, [*base_events(), assigned("H2", "C1", "2020-04-01"), assigned("H4", "C1", "2020-04-01", V3),
              assigned("H4", "C2", "2020-04-02", V3)])  # fmt: skip
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)

    def cadres(*args: str) -> list[dict]:
        args = ["indicators", "--level", "county", "--cadres", "--format", "json", *args]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output[result.output.index("\ncadre loads") :].split("\n", 2)[2])

    assert run_build_job(wh, settings, as_of_date=D)["success"]
    cols = ("cadre_id", "cadre_households", "village_count", "over_limit", "cadre_households_max")
    want = [
        dict(zip(cols, ("C1", 2, 2, 0, 5), strict=True)),
        dict(zip(cols, ("C2", 1, 1, 0, 5), strict=True)),
    ]
    assert cadres("--date", D) == want
    assert run_build_job(wh, settings, as_of_date="2019-06-30")["success"]  # its series ends before 2020
    assert cadres("--date", D) == want
    assert cadres("--date", "2019-06-30") == []  # nobody was assigned yet


def test_an_assessment_period_keeps_the_default_build_of_its_date(wh, settings, monkeypatch):
    """`fupin indicators --from 2020-10 --to 2020-12` after a build at 31 December: the period's
    figures are its own rows (period_start 2020-10-01); the year-to-date figures of that date, which
    the dashboard reads, stay as they were; asking for the period again reads it, no rebuild."""
    from click.testing import CliRunner

    from fupin.cli import cli

    land(wh, base_events())
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert run_build_job(wh, settings, as_of_date=D)["success"]
    year = mart(wh, settings, "assessment", "county")
    assert {r["visit_months_in_period"] for r in year.values()} == {12}

    def period(months_from: str) -> tuple[list[dict], str]:
        args = ["indicators", "--family", "assessment", "--level", "county", "--format", "json"]
        result = CliRunner().invoke(cli, [*args, "--from", months_from, "--to", "2020-12"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output[result.output.index("[") :]), result.output

    rows, said = period("2020-10")
    assert "building the marts for the period" in said
    assert {(r["period_start"], r["visit_months_in_period"]) for r in rows} == {("2020-10-01", 3)}
    strip = lambda rows: {k: {c: v for c, v in r.items() if c != "built_at"} for k, r in rows.items()}  # noqa: E731
    assert strip(mart(wh, settings, "assessment", "county")) == strip(year)  # the default build stays
    monthly = wh.query(
        f"SELECT count() FROM {settings.clickhouse_database}.assessment_monthly "
        "WHERE level = 'county' AND reference_date = toDate({d:String}) AND period_start IS NULL",
        {"d": D},
    )
    assert monthly == [(1,)]
    again, said = period("2020-10")
    assert "building" not in said and again == rows  # read, not rebuilt
    whole_year, said = period("2020-01")  # the year to D is the default period: already built
    assert "building" not in said and {r["period_start"] for r in whole_year} == {None}
