"""County simulator: determinism, valid identities, a truth that follows the domain rules."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from producers.identity import parse_resident_id
from producers.reference import validate_reference_dir
from producers.simulator import simulate
from producers.simulator.formats import LAYOUTS


def _digest(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("county")
    simulate(out, households=600, seed=11, bad_share=0.02)
    return out


def test_same_seed_same_bytes(county, tmp_path):
    simulate(tmp_path / "again", households=600, seed=11, bad_share=0.02)
    assert _digest(county) == _digest(tmp_path / "again")
    simulate(tmp_path / "other", households=600, seed=12, bad_share=0.02)
    assert _digest(county)["poverty_office/visits.csv"] != _digest(tmp_path / "other")["poverty_office/visits.csv"]


def test_layout_and_formats(county):
    for layout in LAYOUTS.values():
        assert (county / layout.path).is_file(), layout.path
    kinds = {layout.kind for layout in LAYOUTS.values()}
    assert kinds == {"csv", "jsonl", "xlsx"}
    assert validate_reference_dir(county / "reference") == []
    manifest = orjson.loads((county / "manifest.json").read_bytes())
    assert {f["file"] for f in manifest["files"]} == {layout.path for layout in LAYOUTS.values()}


def _bad_serials(county: Path) -> dict[str, set[str]]:
    with (county / "truth" / "bad_rows.csv").open() as fh:
        bad = defaultdict(set)
        for row in csv.DictReader(fh):
            if row["kind"] in ("malformed", "unknown_type"):
                bad[row["file"]].add(row["serial"])
    return bad


def test_resident_ids_are_valid_except_the_deliberately_broken(county):
    bad = _bad_serials(county)["public_security/register.csv"]
    with (county / "public_security" / "register.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["登记号"] in bad:
                continue
            born, sex = parse_resident_id(row["公民身份号码"])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", born) and sex in "MF"
    for line in (county / "poverty_office" / "records.jsonl").read_bytes().splitlines():
        rec = orjson.loads(line)
        for m in rec.get("家庭成员", []):
            parse_resident_id(m["身份证号"])


def test_truth_follows_valid_transitions(county):
    # Year-end to year-end, several valid steps may fall in one year (registered and exited).
    reachable = {"non_registered": {"non_registered", "poor", "exited"}, "poor": {"poor", "exited", "returned"},
                 "exited": {"exited", "returned"}, "returned": {"returned", "exited"}}
    by_household = defaultdict(list)
    with (county / "truth" / "households.csv").open() as fh:
        for row in csv.DictReader(fh):
            by_household[row["household_id"]].append(row)
    statuses = set()
    for rows in by_household.values():
        years = [int(r["year"]) for r in rows]
        assert years == sorted(years) and years == list(range(years[0], years[0] + len(years)))
        for a, b in zip(rows, rows[1:], strict=False):
            assert b["status"] in reachable[a["status"]]
        for r in rows:
            statuses.add(r["status"])
            assert int(r["living_members"]) >= 0
            assert re.fullmatch(r"\d{12}", r["region_code"])
            if r["status"] == "exited" and r["income_per_capita"]:
                assert float(r["income_per_capita"]) > 0
            assert r["monitoring_state"] in ("", "open", "eliminated")
    assert {"non_registered", "poor", "exited"} <= statuses


def test_registered_households_have_cadres_and_members(county):
    with (county / "truth" / "households.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] in ("poor", "exited", "returned")]
    assert rows
    assert sum(r["has_cadre"] == "1" for r in rows) / len(rows) > 0.9
    assert all(int(r["living_members"]) >= 0 for r in rows)
    assert sum(int(r["living_members"]) > 0 for r in rows) / len(rows) > 0.95


def test_bad_input_kinds_are_mixed_in(county):
    with (county / "truth" / "bad_rows.csv").open() as fh:
        kinds = {row["kind"] for row in csv.DictReader(fh)}
    assert kinds == {"malformed", "unknown_type", "duplicate", "late"}
    # late rows: recorded long (≥ 200 days) after they occurred, written in recording order
    late = 0
    with (county / "poverty_office" / "visits.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["录入时间"][:10] >= "2000" and row["走访日期"] < row["录入时间"][:10]:
                from datetime import date

                if (date.fromisoformat(row["录入时间"][:10]) - date.fromisoformat(row["走访日期"])).days >= 200:
                    late += 1
    assert late > 0


def test_same_seed_same_bytes_across_processes(tmp_path):
    """No set or dict order leaks into the files: other hash seeds, other processes, same bytes."""
    import os
    import subprocess
    import sys

    for hash_seed in ("1", "2"):
        subprocess.run(
            [sys.executable, "-m", "fupin.cli", "simulate", "--households", "300", "--seed", "8",
             "--bad-share", "0.02", "--out", str(tmp_path / hash_seed)],
            env={**os.environ, "PYTHONHASHSEED": hash_seed}, check=True, capture_output=True,
        )
    assert _digest(tmp_path / "1") == _digest(tmp_path / "2")
