"""The household fold: status transitions, members, guarantees, duplicates and late events."""

from __future__ import annotations

import itertools
import random
import uuid

import orjson
import pytest

from fupin import packing
from fupin.contract import validate
from streams import household
from streams.alerts import Thresholds

LINES = {("43", 2019): (3700.0, 5550.0), ("43", 2020): (4000.0, 6000.0)}
REGION = "431224104201"
_n = itertools.count()


def pid(i: int) -> str:
    return "P" + f"{i:032x}"


def ev(
    event_type: str,
    occurred: str,
    payload: dict,
    *,
    hid: str = "H1",
    person: str | None = None,
    recorded: str | None = None,
    event_id: str | None = None,
    region: str = REGION,
) -> dict:
    """A contract-valid envelope (checked by fupin.contract, so tests build only real events)."""
    env = {
        "event_id": event_id or str(uuid.UUID(int=next(_n) + 1)),
        "event_type": event_type,
        "schema_version": 1,
        "department": event_type.partition(".")[0],
        "source_system": "test",
        "household_id": hid,
        "person_id": person,
        "region_code": region,
        "occurred_at": occurred,
        "recorded_at": recorded or occurred[:10] + "T12:00:00+08:00",
        "payload": payload,
    }
    return validate(env)


def registered(occurred="2016-03-01", members=None, **kw):
    members = members or [
        {
            "person_id": pid(1),
            "relation": "head",
            "birth_date": "1970-03-02",
            "sex": "M",
            "labour_capacity": "normal",
        },
        {
            "person_id": pid(2),
            "relation": "child",
            "birth_date": "2008-05-01",
            "sex": "F",
            "labour_capacity": "none",
        },
    ]
    return ev(
        "poverty_office.household_registered",
        occurred,
        {"year_identified": int(occurred[:4]), "poverty_causes": ["illness"], "members": members},
        **kw,
    )


def income(occurred, year, amount, **kw):
    return ev(
        "poverty_office.income_assessed",
        occurred,
        {"year": year, "net_income_per_capita": amount, "household_size": 2},
        **kw,
    )


def hospital_stay(day, oop):
    """A 2020 hospital stay of member 1 paid wholly out of pocket (day as MM-DD)."""
    return ev(
        "health_insurance.hospitalization_settled",
        f"2020-{day}",
        {
            "total_cost": oop,
            "basic_paid": 0,
            "critical_illness_paid": 0,
            "assistance_paid": 0,
            "out_of_pocket": oop,
        },
        person=pid(1),
    )


def exited(occurred, **kw):
    return ev("poverty_office.household_exited", occurred, {"year": int(occurred[:4])}, **kw)


def returned(occurred, **kw):
    return ev(
        "poverty_office.household_returned",
        occurred,
        {"year": int(occurred[:4]), "causes": ["illness"]},
        **kw,
    )


def fold(events):
    states, messages = household.fold(events, LINES, Thresholds())
    return states, messages


def doc(state):
    return household.document(state, LINES, "now")


def test_first_seen_household_is_non_registered():
    states, _ = fold([ev("water.water_assessed", "2020-01-01", {"safe": True, "issues": []}, hid="H9")])
    d = doc(states["H9"])
    assert d["status"] == "non_registered"
    assert d["guarantees"] == {
        "income": "unverified",
        "education": "met",
        "medical": "unverified",
        "housing": "unverified",
        "water": "met",
    }
    assert d["monitoring"] == {"category": None, "risk_state": None}
    assert d["version"] == 1


@pytest.mark.parametrize(
    ("kinds", "status", "invalid"),
    [
        (["reg"], "poor", 0),
        (["reg", "exit"], "exited", 0),
        (["reg", "exit", "ret"], "returned", 0),
        (["reg", "exit", "ret", "exit"], "exited", 0),
        (["exit"], "non_registered", 1),
        (["ret"], "non_registered", 1),
        (["reg", "ret"], "poor", 1),
        (["reg", "reg"], "poor", 1),
        (["reg", "exit", "exit"], "exited", 1),
    ],
)
def test_status_transitions(kinds, status, invalid):
    makers = {"reg": registered, "exit": exited, "ret": returned}
    events = [makers[k](f"{2016 + i}-06-01") for i, k in enumerate(kinds)]
    states, _ = fold(events)
    assert states["H1"]["status"] == status
    assert states["H1"]["invalid"] == invalid
    # The same events in any arrival order give the same status (applied by valid time).
    states2, _ = fold(list(reversed(events)))
    assert states2["H1"]["status"] == status and states2["H1"]["invalid"] == invalid


def test_members_join_leave_and_relocation():
    events = [
        registered(),
        ev(
            "public_security.person_joined",
            "2018-01-05",
            {"birth_date": "2018-01-01", "sex": "M", "relation": "grandchild", "reason": "birth"},
            person=pid(3),
        ),
        ev("public_security.person_left", "2019-02-01", {"reason": "death"}, person=pid(1)),
        ev("housing.household_relocated", "2019-05-01", {"new_region_code": "431224104299"}),
    ]
    d = doc(fold(events)[0]["H1"])
    assert d["living_members"] == 2
    assert {m["person_id"]: m["living"] for m in d["members"]} == {pid(1): False, pid(2): True, pid(3): True}
    assert d["region_code"] == "431224104299"
    assert d["guarantees"]["housing"] == "met"


def test_duplicate_event_changes_nothing():
    e = income("2020-10-01", 2020, 3000.0)
    states, messages = fold([registered(), e, e, dict(e)])
    assert states["H1"]["v"] == 2
    assert len([m for m in messages if m["state"] == "raised"]) == 0  # poor: not a monitoring rule
    # However old the duplicate, and after the state went through its stored form (a restart).
    state = household.loads(orjson.dumps(states["H1"]), "H1")
    before = doc(state)
    outcome = household.apply(state, e, LINES, Thresholds())
    assert outcome.alerts == []
    assert doc(state) == before


def test_late_event_does_not_overwrite_newer_fact():
    newer = income("2020-10-01", 2020, 9000.0)
    older = income("2019-10-01", 2019, 3000.0)
    states, _ = fold([registered(), newer, older])
    d = doc(states["H1"])
    assert d["income"] == {"per_capita": 9000.0, "year": 2020}
    assert d["last_event_id"] == newer["event_id"]
    assert d["guarantees"]["income"] == "met"


def test_valid_time_ties_broken_by_recorded_at_then_event_id():
    a = ev(
        "water.water_assessed",
        "2020-05-01",
        {"safe": False, "issues": ["quality"]},
        recorded="2020-05-02T00:00:00Z",
        event_id="00000000-0000-0000-0000-00000000000b",
    )
    b = ev(
        "water.water_assessed",
        "2020-05-01T08:00:00+08:00",
        {"safe": True, "issues": []},
        recorded="2020-05-01T00:00:00Z",
        event_id="00000000-0000-0000-0000-00000000000a",
    )
    # Same valid instant (08:00+08 is 00:00Z); a was recorded later, so a wins either way round.
    for order in ([a, b], [b, a]):
        assert doc(fold(order)[0]["H1"])["guarantees"]["water"] == "not_met"
    c = dict(b, event_id="00000000-0000-0000-0000-00000000000c", recorded_at=a["recorded_at"])
    for order in ([a, c], [c, a]):
        assert doc(fold(order)[0]["H1"])["guarantees"]["water"] == "met"  # tie: larger event id


def test_guarantees_education_medical_housing():
    base = [registered()]
    drop = ev("education.student_dropped_out", "2020-03-01", {"stage": "junior_middle"}, person=pid(2))
    back = ev("education.student_returned", "2020-04-01", {"stage": "junior_middle"}, person=pid(2))
    ins1 = ev(
        "health_insurance.insurance_enrolled",
        "2020-01-01",
        {"year": 2020, "schemes": ["basic"]},
        person=pid(1),
    )
    ins2 = ev(
        "health_insurance.insurance_enrolled",
        "2020-01-01",
        {"year": 2020, "schemes": ["basic"]},
        person=pid(2),
    )
    lapse = ev("health_insurance.insurance_lapsed", "2020-06-01", {"year": 2020}, person=pid(2))
    house = ev("housing.house_appraised", "2019-01-01", {"grade": "D"})
    renov = ev("housing.house_renovated", "2020-02-01", {"grade_after": "B"})
    g = doc(fold([*base, drop, ins1])[0]["H1"])["guarantees"]
    assert (g["education"], g["medical"], g["housing"]) == ("not_met", "unverified", "unverified")
    g = doc(fold([*base, drop, back, ins1, ins2, house])[0]["H1"])["guarantees"]
    assert (g["education"], g["medical"], g["housing"]) == ("met", "met", "not_met")
    g = doc(fold([*base, back, drop, ins1, ins2, lapse, renov, house])[0]["H1"])["guarantees"]
    assert (g["education"], g["medical"], g["housing"]) == ("met", "not_met", "met")


def test_medical_guarantee_is_for_the_year_of_the_latest_event():
    ins = [
        ev(
            "health_insurance.insurance_enrolled",
            "2019-01-01",
            {"year": 2019, "schemes": ["basic"]},
            person=pid(i),
        )
        for i in (1, 2)
    ]
    assert doc(fold([registered(), *ins])[0]["H1"])["guarantees"]["medical"] == "met"
    later = ev("water.water_assessed", "2020-02-01", {"safe": True, "issues": []})
    assert doc(fold([registered(), *ins, later])[0]["H1"])["guarantees"]["medical"] == "unverified"


def test_income_without_line_is_unverified():
    d = doc(fold([registered(), income("2015-10-01", 2015, 100.0)])[0]["H1"])
    assert d["guarantees"]["income"] == "unverified"


def test_monitoring_overlay():
    enr = ev(
        "poverty_office.monitoring_enrolled", "2020-05-01", {"category": "edge", "risk_types": ["illness"]}
    )
    elim = ev("poverty_office.monitoring_risk_eliminated", "2020-09-01", {})
    assert doc(fold([enr])[0]["H1"])["monitoring"] == {"category": "edge", "risk_state": "open"}
    for order in ([enr, elim], [elim, enr]):
        assert doc(fold(order)[0]["H1"])["monitoring"] == {"category": "edge", "risk_state": "eliminated"}


def test_any_arrival_order_gives_the_same_document_and_open_alerts():
    events = [
        registered("2016-03-01"),
        income("2019-10-01", 2019, 3000.0),
        exited("2019-12-01"),
        income("2020-10-01", 2020, 5000.0),
        ev("water.water_assessed", "2020-05-01", {"safe": False, "issues": ["quality"]}),
        ev("housing.house_appraised", "2020-06-01", {"grade": "C"}),
        ev("civil_affairs.dibao_terminated", "2020-07-01", {"reason": "x"}),
        ev("education.student_dropped_out", "2020-03-01", {"stage": "primary"}, person=pid(2)),
        ev("public_security.person_left", "2020-08-01", {"reason": "death"}, person=pid(1)),
    ]
    ref_state = fold(events)[0]["H1"]
    reference = doc(ref_state)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        d = doc(fold(shuffled)[0]["H1"])
        assert d == reference
    assert reference["open_alerts"] == sorted(
        ["income_below_monitoring_line", "unsafe_water", "unsafe_housing", "education_dropout", "labour_loss"]
    )


def _example_payloads() -> dict[str, list[dict]]:
    """Every valid example of the contract, by event type (all 33 types)."""
    import json
    from pathlib import Path

    out: dict[str, list[dict]] = {}
    root = Path(__file__).resolve().parents[2] / "schemas"
    for path in sorted(root.glob("*/*/examples/1/valid-*.json")):
        env = json.loads(path.read_text(encoding="utf-8"))
        out.setdefault(env["event_type"], []).append(env)
    return out


def test_open_alerts_are_exactly_the_rules_that_hold_after_every_event():
    """Only the rules an event type can affect are re-evaluated (RULES_READING): after every event,
    of every type, in any order, with duplicates and late events, the open alerts must still be
    exactly the rules whose condition holds on the whole state."""
    from fupin.contract import EVENT_TYPES
    from streams import alerts

    examples = _example_payloads()
    assert len(examples) == len(EVENT_TYPES)
    th = Thresholds(medical_burden_amount=3000.0)
    rng = random.Random(11)
    regions = [REGION, "431224001002", "520102003004"]
    lines = dict(LINES) | {("52", 2019): (3500.0, 5000.0), ("52", 2020): (3800.0, 5600.0)}
    checked = set()
    for round_ in range(40):
        hid = f"H{round_}"
        people = [pid(100 * round_ + i) for i in range(4)]
        events = []
        for _ in range(60):
            event_type = rng.choice(sorted(examples))
            env = dict(rng.choice(examples[event_type]))
            payload = dict(env["payload"])
            if event_type == "poverty_office.household_registered":
                payload["members"] = [
                    dict(m, person_id=p) for m, p in zip(payload["members"], people, strict=False)
                ]
            if event_type == "housing.household_relocated":
                payload["new_region_code"] = rng.choice(regions)
            year = rng.choice((2019, 2020))
            day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            if "year" in payload:
                payload["year"] = year
            events.append(
                ev(
                    event_type,
                    day,
                    payload,
                    hid=hid,
                    person=rng.choice(people) if env.get("person_id") else None,
                    region=rng.choice(regions) if rng.random() < 0.1 else REGION,
                )
            )
        events += rng.sample(events, 6)  # duplicates, redelivered later
        state = household.new_state(hid)
        for env in events:
            household.apply(state, env, lines, th)
            holding = alerts.holding(state, lines, th)
            assert sorted(state["open"]) == sorted(holding), (env["event_type"], env["occurred_at"])
            checked.update(holding)
    assert len(checked) >= 7  # the random histories did raise most rules


def test_a_stored_state_is_compressed_and_reads_back_as_it_was():
    state = household.new_state("H1")
    state["log"] = [[f"2019-01-{d:02d}T00:00:00.000Z|2019-01-{d:02d}T00:00:00.000Z|e{d}", "visit", None, None, None]
                    for d in range(1, 29)]  # fmt: skip
    plain = orjson.dumps(state)
    stored = household.encode(state)
    assert stored[:1] == packing.PACKED and len(stored) < len(plain) / 2
    assert household.decode(stored) == state
    assert household.decode(plain) == state  # a state stored before compression still reads
    assert household.loads(stored, "H1") == state
