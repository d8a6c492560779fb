"""The nine alert rules: each raised once when its condition appears and resolved when it clears."""

from __future__ import annotations

from test_household import LINES, ev, exited, fold, hospital_stay, income, pid, registered

from streams import household
from streams.alerts import RULES, Thresholds, alert_id

WATER_BAD = {"safe": False, "issues": ["quality"]}
WATER_OK = {"safe": True, "issues": []}


def messages_for(events, rule, th=None):
    """(state, the event that decided it) of each message: the start of a raise, the end of a resolve."""
    _, messages = household.fold(events, LINES, th or Thresholds())
    return [(m["state"], decided_by(m)) for m in messages if m["rule"] == rule]


def decided_by(message):
    return message["end_event_id"] if message["state"] == "resolved" else message["start_event_id"]


def test_rules_are_the_nine_of_the_domain():
    assert len(RULES) == 9 and len(set(RULES)) == 9


def test_income_below_monitoring_line():
    low = income("2020-10-01", 2020, 5000.0)
    high = income("2021-10-01", 2020, 7000.0)
    reg, ex = registered(), exited("2020-12-01")
    assert messages_for([reg, low], "income_below_monitoring_line") == []  # poor: not this rule
    assert messages_for([reg, low, ex, high], "income_below_monitoring_line") == [
        ("raised", ex["event_id"]),
        ("resolved", high["event_id"]),
    ]
    # non_registered counts too; missing monitoring line for the year: no alert
    assert (
        messages_for([income("2020-10-01", 2020, 5000.0, hid="H2")], "income_below_monitoring_line")[0][0]
        == "raised"
    )
    assert messages_for([income("2018-10-01", 2018, 10.0, hid="H3")], "income_below_monitoring_line") == []


def test_medical_burden_threshold_amount_and_share_until_elimination():
    reg = registered()
    inc = income("2020-01-10", 2019, 10000.0)  # 2 living members: annual 20,000; half = 10,000

    s1, s2 = hospital_stay("02-01", 6000.0), hospital_stay("03-01", 5000.0)
    elim = ev("poverty_office.monitoring_risk_eliminated", "2020-04-01", {})
    assert messages_for([reg, inc, s1], "medical_burden") == []
    assert messages_for([reg, inc, s1, s2, elim], "medical_burden") == [
        ("raised", s2["event_id"]),
        ("resolved", elim["event_id"]),
    ]
    # an elimination before the crossing stay does not clear it
    early = ev("poverty_office.monitoring_risk_eliminated", "2020-02-15", {})
    assert messages_for([reg, inc, early, s1, s2], "medical_burden") == [("raised", s2["event_id"])]
    # without income: only the amount threshold, configurable
    big = hospital_stay("05-01", 21000.0)
    assert messages_for([reg, big], "medical_burden") == [("raised", big["event_id"])]
    assert messages_for([reg, big], "medical_burden", Thresholds(0.5, 30000.0)) == []


def test_education_dropout():
    drop = ev("education.student_dropped_out", "2020-03-01", {"stage": "primary"}, person=pid(2))
    back = ev("education.student_returned", "2020-04-01", {"stage": "primary"}, person=pid(2))
    senior = ev("education.student_dropped_out", "2020-03-01", {"stage": "senior_high"}, person=pid(2))
    assert messages_for([registered(), drop, back], "education_dropout") == [
        ("raised", drop["event_id"]),
        ("resolved", back["event_id"]),
    ]
    assert messages_for([registered(), senior], "education_dropout") == []
    # a non-member's dropout is not the household's
    assert messages_for([drop], "education_dropout") == []


def test_medical_insurance_gap():
    lapse = ev("health_insurance.insurance_lapsed", "2020-06-01", {"year": 2020}, person=pid(1))
    enrol = ev(
        "health_insurance.insurance_enrolled",
        "2021-01-01",
        {"year": 2021, "schemes": ["basic"]},
        person=pid(1),
    )
    left = ev("public_security.person_left", "2020-07-01", {"reason": "move_out"}, person=pid(1))
    assert messages_for([registered(), lapse, enrol], "medical_insurance_gap") == [
        ("raised", lapse["event_id"]),
        ("resolved", enrol["event_id"]),
    ]
    assert messages_for([registered(), lapse, left], "medical_insurance_gap") == [
        ("raised", lapse["event_id"]),
        ("resolved", left["event_id"]),
    ]


def test_unsafe_housing_and_water():
    bad = ev("housing.house_appraised", "2020-01-01", {"grade": "D"})
    fixed = ev("housing.house_renovated", "2020-05-01", {"grade_after": "A"})
    assert messages_for([bad, fixed], "unsafe_housing") == [
        ("raised", bad["event_id"]),
        ("resolved", fixed["event_id"]),
    ]
    w1, w2 = (
        ev("water.water_assessed", "2020-01-01", WATER_BAD),
        ev("water.water_assessed", "2020-02-01", WATER_OK),
    )
    assert messages_for([w1, w2], "unsafe_water") == [
        ("raised", w1["event_id"]),
        ("resolved", w2["event_id"]),
    ]
    # A late older assessment: the newer fact keeps winning on the head, but the history by valid
    # time had an unsafe stretch from w1 to w2: that episode is told at once, already resolved.
    _, late = household.fold([w2, w1], LINES, Thresholds())
    assert [(m["state"], m["start_event_id"], m["end_event_id"]) for m in late] == [
        ("resolved", w1["event_id"], w2["event_id"])
    ]


def test_labour_loss():
    death = ev("public_security.person_left", "2020-03-01", {"reason": "death"}, person=pid(1))
    child_dis = ev(
        "disabled_persons.disability_certified", "2020-03-01", {"grade": 1, "kind": "physical"}, person=pid(2)
    )
    mild = ev(
        "disabled_persons.disability_certified", "2020-03-01", {"grade": 3, "kind": "physical"}, person=pid(1)
    )
    severe = ev(
        "disabled_persons.disability_certified", "2020-03-01", {"grade": 2, "kind": "visual"}, person=pid(1)
    )
    elim = ev("poverty_office.monitoring_risk_eliminated", "2020-05-01", {})
    assert messages_for([registered(), death, elim], "labour_loss") == [
        ("raised", death["event_id"]),
        ("resolved", elim["event_id"]),
    ]
    assert messages_for([registered(), child_dis, mild], "labour_loss") == []
    assert messages_for([registered(), severe], "labour_loss") == [("raised", severe["event_id"])]


def test_dibao_terminated_while_poor():
    term = ev("civil_affairs.dibao_terminated", "2020-07-01", {"reason": "income"})
    low, high = income("2020-10-01", 2020, 3900.0), income("2020-11-01", 2020, 4100.0)
    assert messages_for([registered(), term, low, high], "dibao_terminated_while_poor") == [
        ("raised", low["event_id"]),
        ("resolved", high["event_id"]),
    ]
    enrol = ev("civil_affairs.dibao_enrolled", "2020-08-01", {"monthly_amount": 300, "persons_covered": 2})
    # The enrolment (August) arrives after the low income (October): by valid time 低保 was
    # enrolled again before that income, so the condition never held and the episode is retracted.
    assert messages_for([registered(), term, low, enrol], "dibao_terminated_while_poor") == [
        ("raised", low["event_id"]),
        ("retracted", low["event_id"]),
    ]
    late_low = income("2020-10-01", 2020, 3900.0)
    assert messages_for([registered(), term, enrol, late_low], "dibao_terminated_while_poor") == []


def test_missed_registration_candidate():
    dibao = ev("civil_affairs.dibao_enrolled", "2020-01-01", {"monthly_amount": 300, "persons_covered": 2})
    mon = ev(
        "poverty_office.monitoring_enrolled", "2020-02-01", {"category": "edge", "risk_types": ["illness"]}
    )
    assert messages_for([dibao, mon], "missed_registration_candidate") == [
        ("raised", dibao["event_id"]),
        ("resolved", mon["event_id"]),
    ]
    reg = registered("2020-03-01")
    assert messages_for([dibao, reg], "missed_registration_candidate")[-1] == ("resolved", reg["event_id"])
    tekun = ev("civil_affairs.tekun_enrolled", "2020-01-01", {"mode": "dispersed"}, hid="H5")
    assert messages_for([tekun], "missed_registration_candidate")[0][0] == "raised"
    assert (
        messages_for([income("2020-10-01", 2020, 4000.0, hid="H6")], "missed_registration_candidate")[0][0]
        == "raised"
    )
    assert (
        messages_for([income("2020-10-01", 2020, 4000.01, hid="H7")], "missed_registration_candidate") == []
    )


def test_alert_message_shape_and_one_open_alert_per_rule():
    w1 = ev("water.water_assessed", "2020-01-01T10:00:00+08:00", WATER_BAD)
    w2 = ev("water.water_assessed", "2020-02-01", WATER_BAD)
    w3 = ev("water.water_assessed", "2020-03-01", WATER_OK)
    states, messages = fold([w1, w2, w3])
    raised, resolved = messages
    assert raised["alert_id"] == resolved["alert_id"] == alert_id("H1", "unsafe_water", w1["event_id"])
    assert raised["start_occurred_at"] == "2020-01-01T02:00:00.000Z"
    assert raised["region_code"] == "431224104201" and raised["household_id"] == "H1"
    assert resolved["start_event_id"] == raised["start_event_id"] == w1["event_id"]
    assert resolved["start_occurred_at"] == raised["start_occurred_at"]
    assert (resolved["end_event_id"], resolved["end_occurred_at"]) == (
        w3["event_id"],
        "2020-03-01T00:00:00.000Z",
    )
    assert raised["end_event_id"] is None and raised["end_occurred_at"] is None
    assert resolved["revision"] > raised["revision"]
    assert set(raised) == {
        "alert_id",
        "rule",
        "state",
        "household_id",
        "region_code",
        "start_event_id",
        "start_occurred_at",
        "start_recorded_at",
        "end_event_id",
        "end_occurred_at",
        "end_recorded_at",
        "revision",
        "processed_at",
        "detail",
    }
    assert states["H1"]["open"] == {}


def test_duplicates_raise_nothing_twice():
    w1 = ev("water.water_assessed", "2020-01-01", WATER_BAD)
    assert messages_for([w1, w1, dict(w1)], "unsafe_water") == [("raised", w1["event_id"])]
    assert len(messages_for([exited("2020-01-01"), w1], "unsafe_water")) == 1
