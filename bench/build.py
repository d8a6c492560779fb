"""Benchmark: a full ``dbt build`` on 1M households / 10M events, then an incremental one after 1 % new events.

Targets (issue 6): full build ≤ 120 s on this machine; incremental ≤ 10 % of the full build.
The 1 % of new events are recent visits (see below), as events usually arrive.
The events are generated inside chdb with SQL (``numbers()``), in a fresh data path of this
process, so the benchmark needs no broker and no running stack. Prints both times and the ratio.

    python bench/build.py [--households 1000000] [--events-per-household 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

D = "2020-12-31"

# One event per (household h, slot k); slot k decides the type. Dates spread over 2019–2020.
EVENTS_SQL = """
INSERT INTO {db}.events
    (event_id, event_type, schema_version, department, source_system, household_id, person_id, region_code,
     occurred_at, recorded_at, payload, topic, partition, offset, ingested_at, occurred_at_text, recorded_at_text)
SELECT
    toString(generateUUIDv4(n)) AS event_id,
    et AS event_type,
    1,
    splitByChar('.', et)[1] AS department,
    'bench',
    household_id,
    person_id,
    region_code,
    occurred_at,
    occurred_at + INTERVAL 1 DAY AS recorded_at,
    payload,
    concat('fupin.events.', splitByChar('.', et)[1]),
    0,
    n,
    {ingested} AS ingested_at,
    toString(occurred_at),
    toString(occurred_at + INTERVAL 1 DAY)
FROM (
    SELECT
        number + {offset} AS n,
        (number % {households}) + {household_shift} AS h,
        (intDiv(number, {households}) + {slot_shift}) % {slots} AS k,
        concat('H', leftPad(toString(h), 8, '0')) AS household_id,
        concat('431224', toString(100 + h % 30), toString(201 + intDiv(h, 30) % 10)) AS region_code,
        concat('P', lower(hex(MD5(concat(household_id, '-0'))))) AS p0,
        concat('P', lower(hex(MD5(concat(household_id, '-1'))))) AS p1,
        toDateTime64('2019-01-01', 3, 'UTC') + toIntervalDay(k * 60 + h % 50 + {day_shift}) AS occurred_at,
        multiIf(
            k = 0, if(h % 3 = 0, 'poverty_office.household_registered', 'civil_affairs.dibao_enrolled'),
            k = 1, 'poverty_office.income_assessed',
            k = 2, if(h % 6 = 0, 'poverty_office.household_exited', 'water.water_assessed'),
            k = 3, 'health_insurance.insurance_enrolled',
            k = 4, 'poverty_office.cadre_assigned',
            k = 5, 'poverty_office.visit_recorded',
            k = 6, 'housing.house_appraised',
            k = 7, if(h % 10 = 0, 'assessment.household_checked', 'assessment.satisfaction_surveyed'),
            k = 8, if(h % 20 = 0, 'poverty_office.monitoring_enrolled', 'human_resources.employment_started'),
            'education.student_enrolled') AS et,
        if(et IN ('health_insurance.insurance_enrolled', 'human_resources.employment_started',
                  'education.student_enrolled'), p0, NULL) AS person_id,
        multiIf(
            k = 0 AND h % 3 = 0, concat('{{"year_identified":2019,"poverty_causes":["illness"],"members":[',
                '{{"person_id":"', p0, '","relation":"head","birth_date":"1970-01-01","sex":"M","labour_capacity":"normal"}},',
                '{{"person_id":"', p1, '","relation":"spouse","birth_date":"1972-01-01","sex":"F","labour_capacity":"normal"}}]}}'),
            k = 0, '{{"monthly_amount":300,"persons_covered":2}}',
            k = 1, concat('{{"year":', toString(toYear(occurred_at)), ',"net_income_per_capita":',
                          toString(2500 + h % 5000), ',"household_size":2}}'),
            k = 2 AND h % 6 = 0, concat('{{"year":', toString(toYear(occurred_at)), '}}'),
            k = 2, concat('{{"safe":', if(h % 9 = 0, 'false', 'true'), ',"issues":[]}}'),
            k = 3, concat('{{"year":', toString(toYear(occurred_at)), ',"schemes":["basic"]}}'),
            k = 4, concat('{{"cadre_id":"C', toString(h % 250000), '","unit":"bench"}}'),
            k = 5, concat('{{"cadre_id":"C', toString(h % 250000), '","purpose":"plan"}}'),
            k = 6, concat('{{"grade":"', ['A', 'B', 'C', 'D'][h % 4 + 1], '"}}'),
            k = 7 AND h % 10 = 0, concat('{{"finding":"', ['correct', 'wrongly_identified', 'wrongly_exited', 'missed'][h % 4 + 1],
                                          '","batch":"bench"}}'),
            k = 7, concat('{{"satisfied":', if(h % 11 = 0, 'false', 'true'), ',"batch":"bench"}}'),
            k = 8 AND h % 20 = 0, '{{"category":"edge","risk_types":["illness"]}}',
            k = 8, '{{"monthly_wage":3000,"place":"in_county"}}',
            '{{"stage":"primary","school_code":"S1"}}') AS payload
    FROM numbers({count})
)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--events-per-household", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fupin-bench-build-"))
    os.environ["FUPIN_CHDB_PATH"] = str(work / "chdb")  # a fresh engine for this process

    from fupin.build import run_build_job
    from fupin.config import load_settings
    from warehouse.client import connect
    from warehouse.migrate import migrate

    settings = load_settings(
        data_dir=str(work / "data"), chdb_path=str(work / "chdb"), clickhouse_database="bench"
    )
    wh = connect(settings)
    migrate(wh)
    db = settings.clickhouse_database
    villages = [f"431224{100 + t}{201 + v}" for t in range(30) for v in range(10)]
    wh.insert(
        "reference_population",
        ["region_code", "year", "agricultural_population", "rural_households"],
        [(v, y, 12000, 3400) for v in villages for y in (2019, 2020)],
    )
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
        [("43", 2019, 3747.0, "bench", None, None), ("43", 2020, 4000.0, "bench", 6000.0, "bench")],
    )
    wh.insert(
        "reference_regions",
        ["region_code", "name", "level", "parent_code", "is_poor_county", "zone"],
        [("431224", "县", "county", "4312", 1, "central")],
    )

    n = args.households * args.events_per_household
    t0 = time.monotonic()
    wh.execute(
        EVENTS_SQL.format(
            db=db,
            offset=0,
            households=args.households,
            household_shift=0,
            slots=args.events_per_household,
            slot_shift=0,
            day_shift=0,
            count=n,
            ingested="toDateTime64('2021-01-01 00:00:00', 3, 'UTC')",
        )
    )
    print(
        f"generated {n:,} events for {args.households:,} households in {time.monotonic() - t0:.1f} s",
        flush=True,
    )

    full = run_build_job(wh, settings, as_of_date=D)
    if not full["success"]:
        sys.exit(f"full build failed: {full['failed'] or full['error']}")
    print(f"full dbt build: {full['seconds']:.1f} s ({len(full['nodes'])} nodes)", flush=True)

    # 1 % new events, as they arrive day to day: one visit (slot 5) each for the first n/100
    # households (10 % of them, in every village), dated in the seven weeks before D
    # (12 Nov – 31 Dec 2020: 2019-01-01 + 5·60 + h % 50 + 381 days), landed after the build.
    # They change the facts at the last two month ends (30 Nov, 31 Dec = D) only.
    extra = n // 100
    wh.execute(
        EVENTS_SQL.format(
            db=db,
            offset=n,
            households=extra,
            household_shift=0,
            slots=args.events_per_household,
            slot_shift=5,
            day_shift=381,
            count=extra,
            ingested="now64(3, 'UTC')",
        )
    )
    inc = run_build_job(wh, settings, as_of_date=D)
    if not inc["success"]:
        sys.exit(f"incremental build failed: {inc['failed'] or inc['error']}")
    slowest = sorted(inc["nodes"], key=lambda x: -x["seconds"])[:3]
    print(
        f"incremental dbt build after {extra:,} new events (1 %, visits dated 12 Nov–31 Dec 2020 for "
        f"{extra:,} households): {inc['seconds']:.1f} s (unit tests {inc.get('unit_tests')})",
        flush=True,
    )
    print("  slowest nodes (incremental): " + ", ".join(f"{x['name']} {x['seconds']:.1f}s" for x in slowest))
    slowest_full = sorted(full["nodes"], key=lambda x: -x["seconds"])[:3]
    print("  slowest nodes (full): " + ", ".join(f"{x['name']} {x['seconds']:.1f}s" for x in slowest_full))
    for label, res in (("full", full), ("incremental", inc)):
        by_type: dict[str, float] = {}
        for node in res["nodes"]:
            by_type[node["type"]] = by_type.get(node["type"], 0.0) + node["seconds"]
        print(
            f"  node seconds by type ({label}, summed over 4 dbt threads): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(by_type.items()))
        )
    ratio = inc["seconds"] / full["seconds"]
    print(
        f"full {full['seconds']:.1f} s (target ≤ 120 s: {'met' if full['seconds'] <= 120 else 'MISSED'}); "
        f"incremental/full = {ratio:.1%} (target ≤ 10 %: {'met' if ratio <= 0.10 else 'MISSED'})"
    )
    wh.close()
    shutil.rmtree(work, ignore_errors=True)  # gigabytes of generated events


if __name__ == "__main__":
    main()
