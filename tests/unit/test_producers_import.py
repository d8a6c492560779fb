"""Mappings and reference files, checked without a broker: every shipped mapping converts its file."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from producers.importers import READERS, event_id_for
from producers.importers.mapping import Mapping, MappingError, RowError, find_mapping, shipped_mappings
from producers.reference import DEFAULTS_DIR, read_lines, validate_reference_dir
from producers.sdk import Publisher, Rejected
from producers.simulator import MAPPINGS, simulate
from producers.simulator.formats import LAYOUTS


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("county")
    simulate(out, households=400, seed=5, bad_share=0.03)
    return out


def test_every_shipped_mapping_loads_and_is_used():
    names = {p.stem for p in shipped_mappings()}
    assert names == set(MAPPINGS.values())
    for p in shipped_mappings():
        Mapping.load(p)


def test_each_file_converts_except_exactly_its_bad_rows(county, settings):
    bad = defaultdict(set)
    with (county / "truth" / "bad_rows.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["kind"] in ("malformed", "unknown_type"):
                bad[row["file"]].add(row["serial"])
    for key, layout in LAYOUTS.items():
        path = county / layout.path
        mapping = find_mapping(layout.department, path)
        assert mapping.name == MAPPINGS[key]
        pub = Publisher(settings, layout.department, mapping.source_system)
        failed, good = set(), 0
        for _, row, _, error in READERS[mapping.format](path):
            assert error is None
            try:
                identity, fields = mapping.convert(row)
                env = pub.build(**fields, event_id="00000000-0000-4000-8000-000000000000")
                event_id_for(layout.department, mapping.name, identity, env)
                good += 1
            except (RowError, Rejected):
                failed.add(identity_of(row, layout))
        assert failed == bad[layout.path], layout.path
        assert good > 0


def identity_of(row, layout):
    return row[layout.columns[0]]


def test_event_ids_are_deterministic_and_content_bound(settings):
    pub = Publisher(settings, "water")
    env = pub.build("water_assessed", "H1", "431224104201", "2020-01-01", {"safe": True, "issues": []})
    a = event_id_for("water", "m", "SL1", env)
    assert a == event_id_for("water", "m", "SL1", dict(env, recorded_at="2030-01-01T00:00:00Z"))
    assert a != event_id_for("water", "m", "SL2", env)
    assert a != event_id_for("water", "m", "SL1", dict(env, payload={"safe": False, "issues": []}))


def test_mapping_errors_name_the_column_not_the_value(county):
    m = Mapping.load(next(p for p in shipped_mappings() if p.stem == "civil_affairs_assistance"))
    row = {"业务流水号": "1", "业务类型": "低保纳入", "户编号": "H1", "行政区划代码": "431224104201",
           "业务日期": "2019-02-30", "录入时间": "", "身份证号": "", "月保障金额": "abc", "保障人数": "2"}
    with pytest.raises(RowError, match="业务日期"):
        m.convert(row)
    row["业务日期"] = "2019/2/3"
    with pytest.raises(RowError) as err:
        m.convert(row)
    assert "月保障金额" in err.value.reason and "abc" not in err.value.reason
    row["月保障金额"] = "300"
    _, fields = m.convert(row)
    assert fields["occurred_at"] == "2019-02-03" and fields["payload"] == {"monthly_amount": 300.0,
                                                                          "persons_covered": 2}


def test_unknown_mapping_choice_is_a_clear_error(tmp_path):
    f = tmp_path / "whatever.parquet"
    f.write_text("a\n1\n")
    with pytest.raises(MappingError, match="--mapping"):
        find_mapping("poverty_office", f)


def test_default_reference_is_valid_and_has_the_lines_of_domain_md():
    assert validate_reference_dir(DEFAULTS_DIR) == []
    lines = read_lines(DEFAULTS_DIR)
    assert lines[("43", 2014)] == (2800.0, None)
    assert lines[("43", 2015)] == (2855.0, None)
    assert lines[("43", 2016)] == (2952.0, None)
    assert lines[("43", 2018)][0] == 3430.0
    assert lines[("43", 2020)] == (4000.0, 6000.0)
    assert lines[("43", 2021)][1] == 6000.0 and lines[("43", 2022)][1] == 6500.0


def test_reference_errors_name_file_line_and_column(tmp_path):
    d = tmp_path / "ref"
    shutil.copytree(DEFAULTS_DIR, d)
    text = (d / "lines.csv").read_text().splitlines()
    text[2] = text[2].replace("2855", "lots")
    text.append("43,2019,3700,,5000,somewhere")
    (d / "lines.csv").write_text("\n".join(text) + "\n")
    regions = (d / "regions.csv").read_text().splitlines()
    regions.append("431224999201,坏村,village,431224999,1,central")
    (d / "regions.csv").write_text("\n".join(regions) + "\n")
    (d / "population.csv").unlink()
    errors = validate_reference_dir(d)
    joined = "\n".join(errors)
    assert "lines.csv line 3, column poverty_line" in joined
    assert f"lines.csv line {len(text)}" in joined and "appears twice" in joined
    assert "column poverty_line_source" in joined
    assert "no monitoring line before 2020" in joined
    assert "regions.csv line" in joined and "parent_code: 431224999 is not in regions.csv" in joined
    assert "population.csv: file missing" in joined


def test_truth_equals_the_domain_fold_of_the_imported_events(county, settings):
    """Fold the events the files turn into (bad rows rejected, duplicates once) by valid time with
    the rules of domain.md: the result must be the simulator's truth, row for row."""
    from datetime import date

    from fupin.timeutil import parse_instant

    events: dict[str, dict] = {}
    for layout in LAYOUTS.values():
        path = county / layout.path
        mapping = find_mapping(layout.department, path)
        pub = Publisher(settings, layout.department, mapping.source_system)
        for _, row, _, _ in READERS[mapping.format](path):
            try:
                identity, fields = mapping.convert(row)
                env = pub.build(**fields, event_id="00000000-0000-4000-8000-000000000000")
            except (RowError, Rejected):
                continue
            env["event_id"] = event_id_for(layout.department, mapping.name, identity, env)
            events[env["event_id"]] = env
    by_household = defaultdict(list)
    for env in events.values():
        by_household[env["household_id"]].append(env)
    with (county / "truth" / "households.csv").open() as fh:
        truth = {(r["household_id"], int(r["year"])): r for r in csv.DictReader(fh)}
    folded = {}
    transitions = {"household_registered": ({"non_registered"}, "poor"),
                   "household_exited": ({"poor", "returned"}, "exited"),
                   "household_returned": ({"exited"}, "returned")}
    for hid, evs in by_household.items():
        evs.sort(key=lambda e: (parse_instant(e["occurred_at"]), parse_instant(e["recorded_at"]), e["event_id"]))
        status, region = "non_registered", evs[0]["region_code"]
        members, left, cadres = set(), set(), set()
        category = state = income = ""
        i = 0
        for year in range(2016, 2022):
            end = parse_instant(date(year, 12, 31))
            while i < len(evs) and parse_instant(evs[i]["occurred_at"]) <= end:
                e = evs[i]
                i += 1
                name, p = e["event_type"].split(".")[1], e["payload"]
                if name in transitions and status in transitions[name][0]:
                    status = transitions[name][1]
                if name == "household_registered":
                    members.update(m["person_id"] for m in p["members"])
                elif name == "person_joined":
                    members.add(e["person_id"])
                    left.discard(e["person_id"])
                elif name == "person_left":
                    left.add(e["person_id"])
                elif name == "monitoring_enrolled":
                    category, state = p["category"], "open"
                elif name == "monitoring_risk_eliminated" and category:
                    state = "eliminated"
                elif name == "income_assessed":
                    income = f"{p['net_income_per_capita']:.2f}"
                elif name == "cadre_assigned":
                    cadres.add(p["cadre_id"])
                elif name == "cadre_unassigned":
                    cadres.discard(p["cadre_id"])
                elif name == "household_relocated":
                    region = p["new_region_code"]
            if i > 0:
                folded[(hid, year)] = {"household_id": hid, "year": str(year), "region_code": region,
                                       "status": status, "living_members": str(len(members - left)),
                                       "monitoring_category": category, "monitoring_state": state,
                                       "income_per_capita": income, "has_cadre": str(int(bool(cadres)))}
    assert folded.keys() == truth.keys()
    mismatches = [(k, folded[k], truth[k]) for k in truth if folded[k] != truth[k]]
    assert mismatches == []


def test_every_simulated_header_passes_its_mapping_check(county):
    from producers.importers import read_header

    for layout in LAYOUTS.values():
        path = county / layout.path
        mapping = find_mapping(layout.department, path)
        if mapping.format != "jsonl":
            mapping.check_header(read_header(mapping.format, path, mapping.encoding), path.name)


def test_a_header_missing_the_household_column_is_refused_before_any_row(tmp_path, settings):
    """The issue's case: all 20 rows used to be rejected as 'empty'; now the header is refused."""
    from producers.importers import import_file

    mapping = find_mapping("civil_affairs", Path("assistance.csv"))
    header = ["业务流水号", "录入时间", "业务类型", "行政区划代码", "业务日期", "姓名", "身份证号", "终止原因"]
    f = tmp_path / "assistance.csv"
    rows = [f"MZ{i},2020-03-02 10:00:00,低保退出,431224104201,2020-03-01,王五,11010519491231002X,迁出"
            for i in range(20)]
    f.write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(MappingError, match="lacks column\\(s\\) 户编号 that mapping civil_affairs_assistance"):
        mapping.check_header(header, f.name)
    # import_file refuses it the same way, before opening a producer (no broker is configured here)
    with pytest.raises(MappingError, match="lacks column\\(s\\) 户编号.*nothing was sent"):
        import_file(settings, "civil_affairs", f)
