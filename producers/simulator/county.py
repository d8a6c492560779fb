"""The synthetic county's geography and lines: townships and villages with 12-digit codes.

The geography depends only on the number of households (a fixed internal seed), so every run
with the default size uses exactly the shipped reference defaults; the run's seed drives the
households and their histories.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PROVINCE = ("43", "湖南省")
CITY = ("4312", "怀化市")
COUNTY = ("431224", "溆浦县")
ZONE = "central"

_SYLLABLES = "龙江桥溪山田坪塘湾冲岭坳口洞河源石竹枫桃花水木林青黄白金玉新安和平丰太阳明月星云岩"


@dataclass(frozen=True)
class Village:
    code: str
    name: str
    township: str


@dataclass(frozen=True)
class County:
    townships: list[tuple[str, str]]  # (9-digit code, name)
    villages: list[Village]


def build_county(households: int) -> County:
    """Townships of ~3,000 households, villages of ~300 (codes like 431224104201)."""
    rng = random.Random(20160101)
    n_villages = max(4, round(households / 300))
    n_townships = max(2, round(n_villages / 10))
    used: set[str] = set()

    def name(suffix: str) -> str:
        while True:
            n = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + suffix
            if n not in used:
                used.add(n)
                return n

    townships = []
    for i in range(n_townships):
        kind = "镇" if i < n_townships * 0.6 else "乡"
        base = 100 + i if kind == "镇" else 200 + i
        townships.append((f"{COUNTY[0]}{base:03d}", name(kind)))
    villages: list[Village] = []
    for v in range(n_villages):
        t_code = townships[v % n_townships][0]
        idx = v // n_townships
        villages.append(Village(f"{t_code}{201 + idx:03d}", name("村"), t_code))
    villages.sort(key=lambda x: x.code)
    return County(townships, villages)


#: National poverty lines of domain.md; 2017–2019 interpolated, 2021+ carried forward (no
#: national line after 2020); Hunan's own exit line 2018. Monitoring lines from 2020.
def default_lines() -> list[tuple[str, int, float, str, float | None, str | None]]:
    national = {2014: 2800.0, 2015: 2855.0, 2016: 2952.0, 2020: 4000.0}
    rows = []
    for year in range(2014, 2026):
        if year == 2018:
            pl, ps = 3430.0, "Hunan provincial exit line 2018 (domain.md)"
        elif year in national:
            pl = national[year]
            ps = "national poverty line, current prices (domain.md)" + (" ~4000" if year == 2020 else "")
        elif year < 2020:
            pl = round(2952 + (4000 - 2952) * (year - 2016) / 4)
            ps = "interpolated linearly between 2016 (2952) and 2020 (4000); no published value shipped"
        else:
            pl, ps = 4000.0, "carried forward from 2020 (4000): no national poverty line after 2020"
        ml: float | None
        if year < 2020:
            ml, ms = None, None
        elif year == 2020:
            ml, ms = 1.5 * pl, "1.5 x poverty line 2020 (domain.md)"
        elif year == 2021:
            ml, ms = 6000.0, "monitoring line 2021 (domain.md)"
        elif year == 2022:
            ml, ms = 6500.0, "provincial example 6500 in 2022 (domain.md)"
        elif year == 2025:
            ml, ms = 8600.0, "provincial example 8600 in 2025 (domain.md)"
        else:
            ml = round(6500 + (8600 - 6500) * (year - 2022) / 3)
            ms = "interpolated linearly between 2022 (6500) and 2025 (8600)"
        rows.append((PROVINCE[0], year, float(pl), ps, ml, ms))
    return rows


def line_table() -> dict[int, tuple[float, float | None]]:
    return {y: (pl, ml) for _, y, pl, _, ml, _ in default_lines()}
