"""Alert episodes by valid time (domain.md, "Alert episodes"): the set of episodes, and the status
documents, depend only on the set of events, never on arrival order, duplicates or restarts."""

from __future__ import annotations

import random

import orjson
import pytest
from county_events import county_envelopes
from test_household import LINES, ev, income, registered

from streams import household
from streams.alerts import Thresholds
from streams.guarantees import load_lines

TH = Thresholds()


@pytest.fixture(scope="module")
def county(tmp_path_factory):
    out = tmp_path_factory.mktemp("county")
    envelopes = county_envelopes(out, households=120, seed=23)
    return envelopes, load_lines(out / "reference")


def outcome(events, lines, restart_every: int = 0):
    """Fold in the given order (optionally through the stored form every n events, as a worker
    restarting would): episodes, documents without the clock, versions, the latest message per alert."""
    states: dict[str, dict] = {}
    latest: dict[str, dict] = {}
    for i, env in enumerate(events):
        hid = env["household_id"]
        state = states.get(hid) or household.new_state(hid)
        if restart_every and i % restart_every == 0:
            state = household.loads(orjson.dumps(state), hid)
        states[hid] = state
        result = household.apply(state, env, lines, TH)
        if result.applied:
            state["v"] += 1
        for m in result.alerts:
            assert m["revision"] > latest.get(m["alert_id"], {}).get("revision", 0)
            latest[m["alert_id"]] = m
    eps = {(m["household_id"], m["alert_id"]): m for s in states.values() for m in household.episodes(s)}
    docs = {h: household.document(s, lines, "") for h, s in states.items()}
    return eps, docs, latest


def told(latest: dict[str, dict]) -> dict:
    """What the messages said last about each episode that still exists (as the warehouse keeps it)."""
    keep = ("alert_id", "rule", "household_id", "region_code", "start_event_id", "start_occurred_at",
            "start_recorded_at", "end_event_id", "end_occurred_at", "end_recorded_at", "state")  # fmt: skip
    return {
        (m["household_id"], m["alert_id"]): {k: m[k] for k in keep}
        for m in latest.values()
        if m["state"] != "retracted"
    }


def test_any_order_with_duplicates_gives_the_same_episodes_and_documents(county):
    envelopes, lines = county
    # valid-time order per household: the reference
    reference = sorted(envelopes, key=household.valid_key)
    eps, docs, latest = outcome(reference, lines)
    assert len(eps) > 30 and any(m["state"] == "resolved" for m in eps.values())
    strip = ("detail",)
    want = {k: {f: v for f, v in m.items() if f not in strip} for k, m in eps.items()}
    assert told(latest) == want
    rng = random.Random(5)
    orders = [envelopes]  # department files one after another
    for _ in range(3):
        shuffled = envelopes[:]
        rng.shuffle(shuffled)
        orders.append(shuffled)
    for order in orders:
        # every event re-delivered once more, at any age (anywhere later in the stream)
        redelivered = order[:]
        for env in rng.sample(order, len(order) // 3):
            at = rng.randrange(redelivered.index(env) + 1, len(redelivered) + 1)
            redelivered.insert(at, dict(env))
        got_eps, got_docs, got_latest = outcome(redelivered, lines, restart_every=97)
        assert {k: {f: v for f, v in m.items() if f not in strip} for k, m in got_eps.items()} == want
        assert told(got_latest) == want  # the latest message of each episode is its truth
        assert got_docs == docs  # versions too: a duplicate adds none


def test_a_late_event_retracts_an_episode():
    low = income("2020-10-01", 2020, 5000.0)  # below the monitoring line (6000)
    state = household.new_state("H1")
    out = household.apply(state, low, LINES, TH).alerts  # non_registered, below the monitoring line
    assert [(m["state"], m["rule"]) for m in out] == [("raised", "income_below_monitoring_line")]
    raised = {m["rule"]: m for m in out}
    # Registered in 2016 (poor, not this rule), recorded late: the episode never existed.
    late = household.apply(state, registered("2016-03-01"), LINES, TH).alerts
    retracted = [m for m in late if m["state"] == "retracted"]
    assert {m["rule"] for m in retracted} == set(raised)
    for m in retracted:
        assert m["alert_id"] == raised[m["rule"]]["alert_id"]
        assert m["revision"] > raised[m["rule"]]["revision"]
    assert household.episodes(state) == []
    assert household.document(state, LINES, "")["open_alerts"] == []


def test_a_late_event_moves_an_episodes_end():
    bad = ev("water.water_assessed", "2020-01-01", {"safe": False, "issues": ["quality"]})
    fixed = ev("water.water_assessed", "2020-06-01", {"safe": True, "issues": []})
    earlier_fix = ev("water.water_assessed", "2020-03-01", {"safe": True, "issues": []})
    state = household.new_state("H1")
    first = household.apply(state, bad, LINES, TH).alerts + household.apply(state, fixed, LINES, TH).alerts
    assert [(m["state"], m["end_event_id"]) for m in first] == [
        ("raised", None),
        ("resolved", fixed["event_id"]),
    ]
    moved = household.apply(state, earlier_fix, LINES, TH).alerts
    assert [(m["state"], m["alert_id"], m["end_event_id"], m["end_occurred_at"]) for m in moved] == [
        ("resolved", first[0]["alert_id"], earlier_fix["event_id"], "2020-03-01T00:00:00.000Z")
    ]
    # A late unsafe assessment between the fixes opens a second episode, closed by the June fix.
    relapse = ev("water.water_assessed", "2020-04-01", {"safe": False, "issues": ["quality"]})
    again = household.apply(state, relapse, LINES, TH).alerts
    assert [(m["state"], m["start_event_id"], m["end_event_id"]) for m in again] == [
        ("resolved", relapse["event_id"], fixed["event_id"])
    ]
    assert [(e["start_event_id"], e["end_event_id"]) for e in household.episodes(state)] == [
        (bad["event_id"], earlier_fix["event_id"]),
        (relapse["event_id"], fixed["event_id"]),
    ]


def test_a_duplicate_is_known_however_old_with_its_fingerprint():
    first = ev("water.water_assessed", "2020-01-01", {"safe": False, "issues": ["quality"]})
    state = household.new_state("H1")
    assert household.apply(state, first, LINES, TH, fingerprint="abc123").applied
    for i in range(500):
        household.apply(state, ev("poverty_office.visit_recorded", f"2020-02-{i % 28 + 1:02d}",
                                  {"cadre_id": "C1", "purpose": "follow_up"}), LINES, TH)  # fmt: skip
    state = household.loads(orjson.dumps(state), "H1")
    assert not household.apply(state, dict(first), LINES, TH).applied
    assert household.known_fingerprint(state, first["event_id"]) == "abc123"
    assert household.known_fingerprint(state, "00000000-0000-0000-0000-00000000ffff") is None
    other = ev("water.water_assessed", "2020-01-02", {"safe": True, "issues": []})
    household.apply(state, other, LINES, TH)
    assert household.known_fingerprint(state, other["event_id"]) == household.fingerprint(other)


def test_random_histories_of_every_type_in_any_order():
    """Histories of all 33 event types, with members, relocations and events that disagree about
    the region: any arrival order, with duplicates, gives the same episodes."""
    from test_household import REGION, _example_payloads, pid

    examples = _example_payloads()
    th = Thresholds(medical_burden_amount=3000.0)
    lines = dict(LINES) | {("52", 2019): (3500.0, 5000.0), ("52", 2020): (3800.0, 5600.0)}
    regions = [REGION, "431224001002", "520102003004"]
    rng = random.Random(17)
    for round_ in range(25):
        hid = f"R{round_}"
        people = [pid(100 * round_ + i) for i in range(4)]
        events = []
        for _ in range(50):
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
            if "year" in payload:
                payload["year"] = year
            events.append(
                ev(
                    event_type,
                    f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    payload,
                    hid=hid,
                    person=rng.choice(people) if env.get("person_id") else None,
                    region=rng.choice(regions) if rng.random() < 0.15 else REGION,
                )  # fmt: skip
            )
        reference = None
        for attempt in range(4):
            order = events[:] if attempt == 0 else rng.sample(events, len(events))
            order += rng.sample(events, 8)
            state = household.new_state(hid)
            for i, env in enumerate(order):
                household.apply(state, env, lines, th)
                if i % 13 == 0:
                    state = household.loads(orjson.dumps(state), hid)
            got = (household.episodes(state), household.document(state, lines, ""))
            if reference is None:
                reference = got
            assert got == reference, (round_, attempt)
