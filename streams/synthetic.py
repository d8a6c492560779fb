"""Simulator-like department events for the streams' tests and benchmark (contract-valid envelopes).

Each household gets a plausible history across every department, with a seeded random generator,
so a run is repeatable; the caller may add duplicates, late arrivals and malformed messages.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson

PROVINCE_REGIONS = ("431224104201", "431224104202", "431225001001", "520102003004")


def _pid(rng: random.Random) -> str:
    return f"P{rng.getrandbits(128):032x}"


def _eid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def household_events(hid: str, rng: random.Random, start_year: int = 2016) -> list[dict[str, Any]]:
    """One household's events in valid-time order (about 20–40 of them)."""
    region = rng.choice(PROVINCE_REGIONS)
    out: list[dict[str, Any]] = []
    day = date(start_year, 1, 1) + timedelta(days=rng.randrange(200))

    def emit(event_type: str, payload: dict, person: str | None = None) -> None:
        nonlocal day
        day += timedelta(days=rng.randrange(1, 40))
        out.append(
            {
                "event_id": _eid(rng),
                "event_type": event_type,
                "schema_version": 1,
                "department": event_type.partition(".")[0],
                "source_system": "synthetic",
                "household_id": hid,
                "person_id": person,
                "region_code": region,
                "occurred_at": day.isoformat(),
                "recorded_at": f"{(day + timedelta(days=rng.randrange(0, 30))).isoformat()}T09:00:00+08:00",
                "payload": payload,
            }
        )

    members = [
        {
            "person_id": _pid(rng),
            "relation": "head",
            "birth_date": "1968-04-02",
            "sex": "M",
            "labour_capacity": rng.choice(["normal", "skilled", "weak"]),
        }
    ]
    for _ in range(rng.randrange(1, 4)):
        members.append(
            {
                "person_id": _pid(rng),
                "relation": rng.choice(["spouse", "child", "parent"]),
                "birth_date": f"{rng.randrange(1950, 2014)}-0{rng.randrange(1, 9)}-1{rng.randrange(0, 9)}",
                "sex": rng.choice("MF"),
                "labour_capacity": rng.choice(["normal", "none", "lost"]),
            }
        )
    registered = rng.random() < 0.6
    if registered:
        emit(
            "poverty_office.household_registered",
            {"year_identified": day.year, "poverty_causes": ["illness"], "members": members},
        )
    else:
        for m in members:
            emit(
                "public_security.person_joined",
                {
                    "birth_date": m["birth_date"],
                    "sex": m["sex"],
                    "relation": m["relation"],
                    "reason": "move_in",
                },
                m["person_id"],
            )
        if rng.random() < 0.3:
            emit("civil_affairs.dibao_enrolled", {"monthly_amount": 320.0, "persons_covered": len(members)})
    pids = [m["person_id"] for m in members]
    for year in range(start_year, start_year + 5):
        for p in pids:
            emit("health_insurance.insurance_enrolled", {"year": year, "schemes": ["basic"]}, p)
        if rng.random() < 0.15:
            emit("health_insurance.insurance_lapsed", {"year": year}, rng.choice(pids))
        emit(
            "poverty_office.income_assessed",
            {
                "year": year,
                "net_income_per_capita": round(rng.uniform(2000, 9000), 2),
                "household_size": len(pids),
            },
        )
        if rng.random() < 0.4:
            emit("water.water_assessed", {"safe": rng.random() < 0.8, "issues": []})
        if rng.random() < 0.3:
            emit("housing.house_appraised", {"grade": rng.choice("ABCD")})
        if rng.random() < 0.15:
            emit(
                "education.student_dropped_out", {"stage": rng.choice(["primary", "junior_middle"])}, pids[-1]
            )
            if rng.random() < 0.6:
                emit("education.student_returned", {"stage": "junior_middle"}, pids[-1])
        if rng.random() < 0.2:
            oop = round(rng.uniform(500, 25000), 2)
            emit(
                "health_insurance.hospitalization_settled",
                {
                    "total_cost": oop * 2,
                    "basic_paid": oop,
                    "critical_illness_paid": 0.0,
                    "assistance_paid": 0.0,
                    "out_of_pocket": oop,
                },
                rng.choice(pids),
            )
        if registered and year == start_year + 2 and rng.random() < 0.7:
            emit("poverty_office.household_exited", {"year": day.year})
        if rng.random() < 0.1:
            emit("poverty_office.monitoring_enrolled", {"category": "edge", "risk_types": ["illness"]})
        if rng.random() < 0.1:
            emit("poverty_office.monitoring_risk_eliminated", {})
        if rng.random() < 0.1:
            emit("civil_affairs.dibao_terminated", {"reason": "income above line"})
        if rng.random() < 0.05:
            emit("public_security.person_left", {"reason": "death"}, pids[0])
        if rng.random() < 0.2:
            emit("poverty_office.visit_recorded", {"cadre_id": "C1", "purpose": "follow_up"})
    return out


def generate(households: int, seed: int = 1, prefix: str = "H") -> list[dict[str, Any]]:
    """Events of ``households`` households, interleaved, each household's roughly in time order."""
    rng = random.Random(seed)
    per = [household_events(f"{prefix}{i:06d}", rng) for i in range(households)]
    out: list[dict[str, Any]] = []
    cursors = [0] * households
    live = list(range(households))
    while live:
        i = rng.choice(live)
        out.append(per[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(per[i]):
            live.remove(i)
    return out


def with_disorder(events: list[dict], seed: int = 2, late: float = 0.05, dup: float = 0.03) -> list[dict]:
    """Move some events later (late arrivals) and repeat some (duplicates)."""
    rng = random.Random(seed)
    out = list(events)
    for _ in range(int(len(out) * late)):
        i = rng.randrange(len(out))
        e = out.pop(i)
        out.insert(min(len(out), i + rng.randrange(5, 200)), e)
    for _ in range(int(len(out) * dup)):
        i = rng.randrange(len(out))
        out.insert(min(len(out), i + rng.randrange(1, 100)), out[i])
    return out


def malformed(rng: random.Random, good: dict) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs that break the contract in different ways."""
    key = good["household_id"].encode()
    yield key, b"{not json"
    yield key, orjson.dumps({**good, "event_id": "not-a-uuid"})
    yield key, orjson.dumps({**good, "event_type": "water.rain_measured"})
    yield key, orjson.dumps({**good, "schema_version": 99})
    yield key, b"\xff\xfe\x00garbage"


def encode(env: dict) -> tuple[bytes, bytes]:
    return env["household_id"].encode(), orjson.dumps(env)
