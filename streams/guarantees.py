"""The exit guarantees of domain.md (income, education, medical, housing, water) on a household state.

Pure functions over the compact state kept by :mod:`streams.household`. Every attribute there
holds only its latest fact by valid time, so "the latest fact wins" is a lookup here. The live
document evaluates them for the date of the household's latest event (docs/architecture.md);
as that date is the newest valid time seen, every fact held has ``occurred_at`` <= it.
"""

from __future__ import annotations

from typing import Any

MET, NOT_MET, UNVERIFIED = "met", "not_met", "unverified"
GUARANTEES: tuple[str, ...] = ("income", "education", "medical", "housing", "water")
#: Dropouts of these stages break compulsory education (义务教育).
COMPULSORY_STAGES = frozenset({"primary", "junior_middle"})
SAFE_GRADES = frozenset({"A", "B"})

#: (province_code, year) -> (poverty_line, monitoring_line or None)
Lines = dict[tuple[str, int], tuple[float, float | None]]


def event_of(key: str | None) -> str | None:
    """The event id inside a valid-time key ``occurred|recorded|event_id``."""
    return key.rsplit("|", 1)[1] if key else None


def province(state: dict[str, Any]) -> str | None:
    region = state.get("region")
    return region[1][:2] if region else None


def poverty_line(state: dict[str, Any], year: int, lines: Lines) -> float | None:
    entry = lines.get((province(state) or "", int(year)))
    return entry[0] if entry else None


def monitoring_line(state: dict[str, Any], year: int, lines: Lines) -> float | None:
    entry = lines.get((province(state) or "", int(year)))
    return entry[1] if entry else None


def living_members(state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Members whose latest membership fact is an arrival (registration or person_joined)."""
    return [(pid, p) for pid, p in state["p"].items() if p.get("m") and p["m"][1]]


def guarantee_year(state: dict[str, Any]) -> int | None:
    """Year of the date the live guarantees are evaluated for: the latest event's valid time."""
    last = state.get("last")
    return int(last[:4]) if last else None


def income(state: dict[str, Any], lines: Lines) -> tuple[str, str | None]:
    inc = state.get("inc")
    if not inc:
        return UNVERIFIED, None
    line = poverty_line(state, inc[1], lines)
    if line is None:
        return UNVERIFIED, event_of(inc[0])  # no line for that year: cannot be judged
    return (MET if inc[2] > line else NOT_MET), event_of(inc[0])


def education(state: dict[str, Any]) -> tuple[str, str | None]:
    for _pid, p in living_members(state):
        drop = p.get("drop")
        if drop and (not p.get("ret") or p["ret"] < drop):
            return NOT_MET, event_of(drop)
    return MET, None


def medical(state: dict[str, Any]) -> tuple[str, str | None]:
    year = guarantee_year(state)
    living = living_members(state)
    if year is None or not living:
        return UNVERIFIED, None
    insured = 0
    last_key = None
    for _pid, p in living:
        fact = p.get("insy", {}).get(str(year))
        if fact is None:
            continue
        if fact[1] == "lapsed":
            return NOT_MET, event_of(fact[0])
        insured += 1
        last_key = max(last_key or fact[0], fact[0])
    if insured == len(living):
        return MET, event_of(last_key)
    return UNVERIFIED, None


def housing(state: dict[str, Any]) -> tuple[str, str | None]:
    house = state.get("house")
    if not house:
        return UNVERIFIED, None
    return (MET if house[1] in SAFE_GRADES else NOT_MET), event_of(house[0])


def water(state: dict[str, Any]) -> tuple[str, str | None]:
    fact = state.get("water")
    if not fact:
        return UNVERIFIED, None
    return (MET if fact[1] else NOT_MET), event_of(fact[0])


def evaluate(state: dict[str, Any], lines: Lines) -> dict[str, tuple[str, str | None]]:
    """Each guarantee's value with the event that decided it (None when no single event did)."""
    return {
        "income": income(state, lines),
        "education": education(state),
        "medical": medical(state),
        "housing": housing(state),
        "water": water(state),
    }


def load_lines(reference_path) -> Lines:
    """Lines per (province, year) from the reference directory; empty (no line rule fires) if absent.

    Uses ``producers.reference.read_lines`` when that module provides it, else reads ``lines.csv``
    (columns of ``reference_lines``) directly.
    """
    import csv
    from pathlib import Path

    path = Path(reference_path) / "lines.csv"
    if not path.exists():
        return {}
    try:
        from producers.reference import read_lines  # type: ignore[attr-defined]
    except ImportError:
        read_lines = None
    if read_lines is not None:
        return {
            (str(p), int(y)): (float(v[0]), None if v[1] is None else float(v[1]))
            for (p, y), v in read_lines(reference_path).items()
        }
    out: Lines = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            monitoring = (row.get("monitoring_line") or "").strip()
            out[(row["province_code"].strip(), int(row["year"]))] = (
                float(row["poverty_line"]),
                float(monitoring) if monitoring else None,
            )
    return out
