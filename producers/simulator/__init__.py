"""County simulator: a synthetic county's department files, the reference data it used, the truth.

``simulate(out_dir, households=60000, year_from=2016, year_to=2021, seed=2016, bad_share=0.0)``
writes the layout documented in ``README.md``. Same arguments, same bytes.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from producers.reference import LINE_COLUMNS, POPULATION_COLUMNS, REGION_COLUMNS, write_csv
from producers.simulator import formats as F
from producers.simulator.county import CITY, COUNTY, PROVINCE, ZONE, build_county, default_lines
from producers.simulator.model import CountyModel
from producers.simulator.truth import TRUTH_COLUMNS, household_truth

DEFAULT_HOUSEHOLDS = 60_000
DEFAULT_SEED = 2016
#: The shipped mapping (producers/mappings/<name>.yaml) that reads each layout.
MAPPINGS = {
    "poverty_office": "poverty_office_records", "po_visits": "poverty_office_visits",
    "assessment": "assessment_checks", "civil_affairs": "civil_affairs_assistance",
    "hi_enrolment": "health_insurance_enrolment", "hi_settlements": "health_insurance_settlements",
    "education": "education_students", "housing": "housing_houses", "water": "water_assessments",
    "public_security": "public_security_register", "human_resources": "human_resources_employment",
    "disabled_persons": "disabled_persons_certificates",
}


@dataclass
class SimulationResult:
    out_dir: Path
    files: dict[str, int] = field(default_factory=dict)  # relative path -> rows
    households: int = 0
    registered: int = 0
    bad_rows: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.files.values())


def simulate(out_dir: Path | str, households: int = DEFAULT_HOUSEHOLDS, year_from: int = 2016,
             year_to: int = 2021, seed: int = DEFAULT_SEED, bad_share: float = 0.0,
             progress: Callable[..., None] | None = None,
             advance: Callable[[int], None] | None = None) -> SimulationResult:
    """Write the county's files; ``progress`` is told each stage (a minute or more at 60,000 households)
    and ``advance`` each thousand households lived."""
    say = progress or (lambda _stage: None)
    if households < 1 or year_to < year_from or not 0 <= bad_share < 0.5:
        raise ValueError("need households ≥ 1, year_from ≤ year_to and 0 ≤ bad_share < 0.5")
    t0 = time.perf_counter()
    out = Path(out_dir)
    say("building the county")
    county = build_county(households)
    model = CountyModel(county, households, year_from, year_to, seed, bad_share)
    if progress is not None:
        progress(f"living {year_from}–{year_to} ({households:,} households)", households)
    model.run(advance)
    result = SimulationResult(out)
    finals = model.files.finalize(random.Random(seed * 7919 + 1), bad_share)
    for key, layout in F.LAYOUTS.items():
        say(f"writing {layout.path}")
        F.write_layout(out, layout, finals[key])
        result.files[layout.path] = result.files.get(layout.path, 0) + len(finals[key])
    say("writing reference data and truth")
    write_reference(out / "reference", county, model, year_from, year_to)
    years = range(year_from, year_to + 1)
    write_csv(out / "truth" / "households.csv", TRUTH_COLUMNS,
              (row for h in model.households for row in household_truth(h, years)))
    write_csv(out / "truth" / "assessment.csv", ("household_id", "year", "batch", "finding", "satisfied"),
              model.assessment_rows)
    write_csv(out / "truth" / "bad_rows.csv", ("file", "serial", "kind"), model.files.bad)
    manifest = {
        "households": households, "from": year_from, "to": year_to, "seed": seed, "bad_share": bad_share,
        "files": [{"department": layout.department, "file": layout.path, "format": layout.kind,
                   "mapping": MAPPINGS[key], "rows": len(finals[key])} for key, layout in F.LAYOUTS.items()],
        "reference": "reference", "truth": ["truth/households.csv", "truth/assessment.csv", "truth/bad_rows.csv"],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    result.households = households
    result.registered = sum(1 for h in model.households if h.registered_year is not None)
    result.bad_rows = len(model.files.bad)
    result.seconds = time.perf_counter() - t0
    return result


def write_reference(directory: Path, county, model: CountyModel | None, year_from: int, year_to: int) -> None:
    """regions.csv, population.csv (counted from the model's households) and lines.csv."""
    regions = [(PROVINCE[0], PROVINCE[1], "province", "", 0, ZONE), (CITY[0], CITY[1], "city", PROVINCE[0], 0, ZONE),
               (COUNTY[0], COUNTY[1], "county", CITY[0], 1, ZONE)]
    regions += [(code, name, "township", COUNTY[0], 1, ZONE) for code, name in county.townships]
    regions += [(v.code, v.name, "village", v.township, 1, ZONE) for v in county.villages]
    write_csv(directory / "regions.csv", REGION_COLUMNS, regions)
    pop: dict[tuple[str, int], list[int]] = {}
    for v in county.villages:
        for y in range(year_from, year_to + 1):
            pop[(v.code, y)] = [0, 0]
    if model is not None:
        for h in model.households:
            for y in range(year_from, year_to + 1):
                end = date(y, 12, 31)
                cell = pop[(h.region(end), y)]
                cell[0] += len(h.living(end))
                cell[1] += 1
    write_csv(directory / "population.csv", POPULATION_COLUMNS,
              ((code, y, a, b) for (code, y), (a, b) in sorted(pop.items())))
    write_csv(directory / "lines.csv", LINE_COLUMNS,
              ((p, y, pl, ps, "" if ml is None else ml, ms or "") for p, y, pl, ps, ml, ms in default_lines()))
