"""The simulator's small county through the whole pipeline on the embedded stack, checked against truth.

The county's department files go through the producers' importers (mapping, pseudonyms,
contract) and the sink's row conversion into the event store; dbt builds the marts in-process on
chdb. The expected figures come from the simulator's own ground truth (``truth/households.csv``)
and from a Python fold of the landed envelopes, never from the marts' SQL.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from fupin.build import read_indicators, run_build_job
from fupin.timeutil import parse_instant

YEAR = 2020
D = f"{YEAR}-12-31"
LEVELS = {"village": 12, "township": 9, "county": 6}


def simulate_and_land(settings, wh, out: Path, keep=lambda envelope: True) -> list[dict]:
    """Simulate a county, import every department file, store the envelopes ``keep`` accepts.

    Returns every envelope (stored or not) and loads the county's reference data.
    """
    from producers.importers import READERS, event_id_for
    from producers.importers.mapping import find_mapping
    from producers.sdk import Publisher, Rejected
    from producers.simulator import formats, simulate
    from warehouse.reference import load_reference_job

    simulate(out, households=400, year_from=2016, year_to=YEAR, seed=11)
    envelopes: list[dict] = []
    for layout in formats.LAYOUTS.values():
        # the importer's own steps (mapping, pseudonyms, contract), without a broker to publish to
        path = out / layout.path
        mapping = find_mapping(layout.department, path)
        pub = Publisher(settings, layout.department, mapping.source_system)
        for _line, row, _raw, error in READERS[mapping.format](path):
            assert error is None
            identity, fields = mapping.convert(row)
            try:
                env = pub.build(**fields, event_id="00000000-0000-0000-0000-000000000000")
            except Rejected as exc:  # the simulator writes no bad rows unless asked
                raise AssertionError(exc.reason) from None
            env["event_id"] = event_id_for(layout.department, mapping.name, identity, env)
            envelopes.append(env)
    land(wh, [e for e in envelopes if keep(e)])
    load_reference_job(wh, settings, directory=str(out / "reference"))
    return envelopes


def land(wh, envelopes: list[dict]) -> None:
    """Store envelopes as the sink does."""
    from warehouse.sink import EVENT_COLUMNS, event_row

    now = datetime.now(UTC)
    rows = [
        event_row(orjson.dumps(e), f"fupin.events.{e['department']}", 0, i, now, key=e["household_id"].encode())
        for i, e in enumerate(envelopes)
    ]
    wh.insert("events", EVENT_COLUMNS, rows)


def truth_rows(out: Path) -> list[dict]:
    with (out / "truth" / "households.csv").open(encoding="utf-8") as fh:
        return [r for r in csv.DictReader(fh) if int(r["year"]) == YEAR]


def by_region(rows: list[dict], length: int, key) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        for name, value in key(r):
            out[r["region_code"][:length]][name] += value
    return out


def census_expected(r: dict):
    persons = int(r["living_members"])
    status = r["status"]
    yield "households_total", 1
    yield f"{status}_households", 1
    yield f"{status}_persons", persons
    registered = status in ("poor", "exited", "returned")
    yield "registered_households", int(registered)
    yield "registered_persons", persons if registered else 0
    if r["monitoring_category"]:
        yield f"monitoring_{r['monitoring_category']}_{r['monitoring_state']}_households", 1
        yield f"monitoring_{r['monitoring_state']}_households", 1


def assessment_expected(envelopes: list[dict], truth: dict[str, dict]):
    """Findings of each household's latest check, classified by a Python fold of its status events."""
    per_hh: dict[str, list[dict]] = defaultdict(list)
    for e in envelopes:
        per_hh[e["household_id"]].append(e)

    def order(e: dict) -> tuple:
        return parse_instant(e["occurred_at"]), parse_instant(e["recorded_at"]), e["event_id"]

    rows = []
    for hh, evs in per_hh.items():
        if hh not in truth:
            continue
        evs = sorted((e for e in evs if e["occurred_at"][:10] <= D), key=order)
        checks = [e for e in evs if e["event_type"] == "assessment.household_checked"]
        surveys = [e for e in evs if e["event_type"] == "assessment.satisfaction_surveyed"]
        row = {"region_code": truth[hh]["region_code"], "persons": int(truth[hh]["living_members"])}
        if checks:
            check = checks[-1]
            status = "non_registered"
            for e in evs:
                if e["occurred_at"][:10] > check["occurred_at"][:10]:
                    break
                name = e["event_type"].split(".")[1]
                if name == "household_registered" and status == "non_registered":
                    status = "poor"
                elif name == "household_exited" and status in ("poor", "returned"):
                    status = "exited"
                elif name == "household_returned" and status == "exited":
                    status = "returned"
            row.update(finding=check["payload"]["finding"], status_at_check=status)
        if surveys:
            row["satisfied"] = surveys[-1]["payload"]["satisfied"]
        rows.append(row)
    return rows


def assessment_counts(r: dict):
    finding, at = r.get("finding"), r.get("status_at_check")
    if finding:
        if at == "exited":
            yield "checked_exited_households", 1
            yield "checked_exited_persons", r["persons"]
            yield "wrongly_exited_households", int(finding == "wrongly_exited")
            yield "wrongly_exited_persons", r["persons"] if finding == "wrongly_exited" else 0
        if at in ("poor", "returned", "exited"):
            yield "checked_registered_households", 1
            yield "wrongly_identified_households", int(finding == "wrongly_identified")
        if at == "non_registered":
            yield "checked_non_registered_households", 1
            yield "missed_households", int(finding == "missed")
    if "satisfied" in r:
        yield "surveyed_households", 1
        yield "satisfied_households", int(bool(r["satisfied"]))


@pytest.fixture
def county(settings, tmp_path):
    from warehouse.client import connect
    from warehouse.migrate import migrate

    wh = connect(settings)
    migrate(wh)
    out = tmp_path / "county"
    envelopes = simulate_and_land(settings, wh, out)
    result = run_build_job(wh, settings, as_of_date=D)
    assert result["success"], result["failed"] or result["error"]
    yield wh, out, envelopes
    wh.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    wh.close()


def marts(wh, settings, family: str, level: str, cutoff: str | None = None) -> dict[str, dict]:
    names, rows = read_indicators(wh, settings.clickhouse_database, family, level, None, D, cutoff)
    return {r[names.index("region_code")]: dict(zip(names, r, strict=True)) for r in rows}


def test_county_census_assessment_consistency_match_the_truth(county, settings):
    wh, out, envelopes = county
    truth = truth_rows(out)
    assert len(truth) > 150 and any(r["status"] == "exited" for r in truth)
    truth_by_hh = {r["household_id"]: r for r in truth}
    findings = assessment_expected(envelopes, truth_by_hh)
    assert any("finding" in r for r in findings)
    for level, length in LEVELS.items():
        census = marts(wh, settings, "census", level)
        expected = by_region(truth, length, census_expected)
        assert set(census) == set(expected), level
        for region, counts in expected.items():
            for column, value in counts.items():
                assert census[region][column] == value, (level, region, column)
            # every count the truth has none of is zero in the mart
            for column in (
                "poor_households",
                "exited_households",
                "returned_households",
                "monitoring_open_households",
            ):
                assert census[region][column] == counts.get(column, 0), (level, region, column)

        assessment = marts(wh, settings, "assessment", level)
        expected_a = by_region(findings, length, assessment_counts)
        for region, counts in expected_a.items():
            for column, value in counts.items():
                assert assessment[region][column] == value, (level, region, column)

        # households with a cadre among the registered, from the truth's cadre flag
        cadres = by_region(
            [r for r in truth if r["status"] != "non_registered"],
            length,
            lambda r: [("households_with_cadre", int(r["has_cadre"]))],
        )
        for region, counts in cadres.items():
            assert assessment[region]["households_with_cadre"] == counts["households_with_cadre"]

        consistency = marts(wh, settings, "consistency", level)
        if level != "village":
            assert all(r["totals_check_passed"] == 1 for r in consistency.values())


def test_county_census_frozen_at_cutoff_is_identical_after_late_events(settings, tmp_path):
    """The county's events recorded after T arrive only after a census at (D, T): rerun, same numbers."""
    from warehouse.client import connect
    from warehouse.migrate import migrate

    wh = connect(settings)
    try:
        migrate(wh)
        envelopes = simulate_and_land(settings, wh, tmp_path / "county", keep=lambda e: False)
        recorded = sorted(parse_instant(e["recorded_at"]) for e in envelopes)
        t = recorded[len(recorded) * 2 // 3]  # a third of the county's events are recorded after T
        cutoff = t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        land(wh, [e for e in envelopes if parse_instant(e["recorded_at"]) <= t])
        late = [e for e in envelopes if parse_instant(e["recorded_at"]) > t]
        assert late and any(e["occurred_at"][:10] <= D for e in late)

        families = ("census", "assessment", "consistency")
        assert run_build_job(wh, settings, as_of_date=D, cutoff=cutoff)["success"]
        frozen = {(f, lv): marts(wh, settings, f, lv, cutoff) for f in families for lv in LEVELS}
        # households seen by T with an event valid by D, counted in Python from the envelopes
        seen = {
            e["household_id"]
            for e in envelopes
            if parse_instant(e["recorded_at"]) <= t and e["occurred_at"][:10] <= D
        }
        assert frozen[("census", "county")]["431224"]["households_total"] == len(seen)

        land(wh, late)
        assert run_build_job(wh, settings, as_of_date=D, cutoff=cutoff)["success"]
        for key, rows in frozen.items():
            again = marts(wh, settings, *key, cutoff)
            strip = lambda rs: {r: {c: v for c, v in row.items() if c != "built_at"} for r, row in rs.items()}  # noqa: E731
            assert strip(again) == strip(rows), key
        # the late events do count in a census without the cut-off
        assert run_build_job(wh, settings, as_of_date=D)["success"]
        live = marts(wh, settings, "census", "county")["431224"]
        frozen_county = frozen[("census", "county")]["431224"]
        assert any(
            live[c] != frozen_county[c] for c in ("households_total", "poor_households", "exited_households")
        )
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
        wh.close()
