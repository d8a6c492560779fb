"""The household fold: ONE rule book, no Faust, no I/O. state + event -> new state + alert changes.

The state is a compact JSON-able dict. Per attribute it keeps only the latest fact with its
valid-time key ``"<occurred_at>|<recorded_at>|<event_id>"`` (both instants normalised to UTC,
millisecond ISO text of fixed width), so comparing keys as strings is the valid-time order
``(occurred_at, recorded_at, event_id)`` of docs/architecture.md. A late event older than the
held fact therefore loses; an event re-applied has an equal key and changes nothing, so the fold
is idempotent by ``event_id`` even beyond the bounded set of recently seen ids (the fast path).

Base status is not latest-wins: the few transition events are kept and replayed in valid-time
order; a transition that is not allowed from the status it meets is not applied and counted.

After each event the nine alert conditions (:mod:`streams.alerts`) are evaluated on the state
that results and compared with the household's open alerts: raised and resolved alerts follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fupin.timeutil import iso_utc, parse_instant
from streams import alerts, guarantees
from streams.alerts import Thresholds
from streams.guarantees import COMPULSORY_STAGES, Lines

#: How many recent event ids a household remembers: the fast duplicate check (a redelivery after
#: a crash is recent). Older duplicates still change no fact: equal keys never win.
SEEN_LIMIT = 64
STATUSES = ("non_registered", "poor", "exited", "returned")
#: transition event -> (statuses it may leave, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "household_registered": (frozenset({"non_registered"}), "poor"),
    "household_exited": (frozenset({"poor", "returned"}), "exited"),
    "household_returned": (frozenset({"exited"}), "returned"),
}


_INSTANTS: dict[str, str] = {}


#: Event types whose facts no alert rule reads: after them the rules' verdicts cannot change.
NO_RISK_FACTS = frozenset(
    {
        "cadre_assigned",
        "cadre_unassigned",
        "visit_recorded",
        "support_measure_recorded",
        "risk_verified",
        "household_checked",
        "satisfaction_surveyed",
        "temporary_assistance_granted",
        "disability_subsidy_granted",
        "student_aid_granted",
        "employment_started",
        "employment_ended",
    }
)


_STATUS = ("income_below_monitoring_line", "missed_registration_candidate")
_MEMBERS = ("medical_burden", "education_dropout", "medical_insurance_gap", "labour_loss")
_INCOME = (
    "income_below_monitoring_line",
    "medical_burden",
    "dibao_terminated_while_poor",
    "missed_registration_candidate",
)
#: The rules whose province lines follow the household's region.
_REGION = ("income_below_monitoring_line", "dibao_terminated_while_poor", "missed_registration_candidate")
#: Event type -> the alert rules that read the facts it folds (streams.alerts). Only these can
#: change their verdict after such an event; the others keep theirs, so the open alerts stay
#: exactly the rules that hold (the test suite checks that invariant on every event). A type
#: missing here re-evaluates all nine rules.
RULES_READING: dict[str, tuple[str, ...]] = {
    "household_registered": _STATUS + _MEMBERS,
    "household_exited": _STATUS,
    "household_returned": _STATUS,
    "income_assessed": _INCOME,
    "monitoring_enrolled": ("missed_registration_candidate",),
    "monitoring_risk_eliminated": ("medical_burden", "labour_loss", "missed_registration_candidate"),
    "dibao_enrolled": ("dibao_terminated_while_poor", "missed_registration_candidate"),
    "dibao_terminated": ("dibao_terminated_while_poor", "missed_registration_candidate"),
    "tekun_enrolled": ("missed_registration_candidate",),
    "insurance_enrolled": ("medical_insurance_gap",),
    "insurance_lapsed": ("medical_insurance_gap",),
    "hospitalization_settled": ("medical_burden",),
    "student_enrolled": ("education_dropout",),
    "student_dropped_out": ("education_dropout",),
    "student_returned": ("education_dropout",),
    "house_appraised": ("unsafe_housing",),
    "house_renovated": ("unsafe_housing",),
    "household_relocated": ("unsafe_housing",),
    "water_assessed": ("unsafe_water",),
    "person_joined": _MEMBERS,
    "person_left": _MEMBERS,
    "disability_certified": ("labour_loss",),
    **{name: () for name in NO_RISK_FACTS},
}


_RULES_AFTER: dict[tuple[str, bool], tuple[str, ...]] = {}


def rules_after(name: str, moved: bool) -> tuple[str, ...]:
    """The rules to re-evaluate after an event of type ``name`` (``moved``: its region changed),
    in the order of ``alerts.RULES``."""
    rules = _RULES_AFTER.get((name, moved))
    if rules is None:
        reading = set(RULES_READING.get(name, alerts.RULES)) | (set(_REGION) if moved else set())
        rules = _RULES_AFTER[(name, moved)] = tuple(r for r in alerts.RULES if r in reading)
    return rules


def instant_text(value: str) -> str:
    """``occurred_at``/``recorded_at`` as fixed-width UTC text (ms), so text order is time order."""
    if len(value) == 10:  # a date alone: 00:00 UTC of that date
        return value + "T00:00:00.000Z"
    if len(value) == 24 and value[-1] == "Z" and value[19] == ".":  # already normal
        return value
    text = _INSTANTS.get(value)
    if text is None:
        if len(_INSTANTS) > 100_000:  # batch imports repeat recording times; keep the cache bounded
            _INSTANTS.clear()
        text = _INSTANTS[value] = iso_utc(parse_instant(value))
    return text


def valid_key(envelope: dict[str, Any]) -> str:
    return f"{instant_text(envelope['occurred_at'])}|{instant_text(envelope['recorded_at'])}|{envelope['event_id']}"


def new_state(household_id: str) -> dict[str, Any]:
    """A household first seen: ``non_registered``, nothing known."""
    return {
        "hid": household_id,
        "v": 0,
        "seen": [],
        "last": None,
        "region": None,
        "status": "non_registered",
        "tr": [],
        "invalid": 0,
        "mon_enr": None,
        "mon_elim": None,
        "inc": None,
        "house": None,
        "water": None,
        "dibao": None,
        "tekun": None,
        "p": {},
        "hosp": {},
        "open": {},
    }


@dataclass
class Outcome:
    """What one event did: whether it was applied, and the alert messages it decided."""

    applied: bool
    alerts: list[dict[str, Any]] = field(default_factory=list)


DUPLICATE = Outcome(False)


def _newer(held: list | None, key: str) -> bool:
    return held is None or key > held[0]


def _person(state: dict[str, Any], pid: str) -> dict[str, Any]:
    p = state["p"].get(pid)
    if p is None:
        p = state["p"][pid] = {}
    return p


def _arrive(p: dict[str, Any], key: str, attrs: list) -> None:
    if _newer(p.get("m"), key):
        p["m"] = [key, True]
    held = p.get("a")
    if _newer(held, key):
        if attrs[4] is None and held is not None:
            attrs[4] = held[4]  # person_joined carries no labour capacity: keep the registered one
        p["a"] = attrs


def _replay_status(state: dict[str, Any]) -> None:
    status, invalid = "non_registered", 0
    for _key, kind in state["tr"]:
        allowed, target = TRANSITIONS[kind]
        if status in allowed:
            status = target
        else:
            invalid += 1
    state["status"], state["invalid"] = status, invalid


def _fold_fact(state: dict[str, Any], env: dict[str, Any], key: str) -> None:
    """Record the event's fact in the state, latest-wins per attribute."""
    name = env["event_type"].partition(".")[2]
    payload = env["payload"]
    pid = env.get("person_id")
    if name in TRANSITIONS:
        if [key, name] not in state["tr"]:
            state["tr"].append([key, name])
            state["tr"].sort()
            _replay_status(state)
        if name == "household_registered":
            for m in payload["members"]:
                attrs = [key, m["relation"], m["birth_date"], m["sex"], m["labour_capacity"]]
                _arrive(_person(state, m["person_id"]), key, attrs)
    elif name == "income_assessed":
        if _newer(state["inc"], key):
            state["inc"] = [key, int(payload["year"]), float(payload["net_income_per_capita"])]
    elif name == "monitoring_enrolled":
        if _newer(state["mon_enr"], key):
            state["mon_enr"] = [key, payload["category"]]
    elif name == "monitoring_risk_eliminated":
        state["mon_elim"] = max(state["mon_elim"] or "", key)
    elif name in ("dibao_enrolled", "dibao_terminated"):
        if _newer(state["dibao"], key):
            state["dibao"] = [key, "enrolled" if name == "dibao_enrolled" else "terminated"]
    elif name == "tekun_enrolled":
        state["tekun"] = max(state["tekun"] or "", key)
    elif name in ("insurance_enrolled", "insurance_lapsed") and pid:
        p = _person(state, pid)
        kind = "insured" if name == "insurance_enrolled" else "lapsed"
        year = int(payload["year"])
        if _newer(p.get("ins"), key):
            p["ins"] = [key, kind, year]
        by_year = p.setdefault("insy", {})
        if _newer(by_year.get(str(year)), key):
            by_year[str(year)] = [key, kind]
    elif name == "hospitalization_settled":
        stays = state["hosp"].setdefault(key[:4], [])
        if not any(s[0] == key for s in stays):
            stays.append([key, float(payload["out_of_pocket"])])
            stays.sort()
    elif name in ("student_enrolled", "student_dropped_out", "student_returned") and pid:
        p = _person(state, pid)
        if _newer(p.get("edu"), key):
            p["edu"] = [key, "student_" + name.partition("_")[2], payload["stage"]]
        if name == "student_dropped_out" and payload["stage"] in COMPULSORY_STAGES:
            p["drop"] = max(p.get("drop") or "", key)
        elif name == "student_returned":
            p["ret"] = max(p.get("ret") or "", key)
    elif name in ("house_appraised", "house_renovated", "household_relocated"):
        grade = payload.get("grade") or payload.get("grade_after") or "A"
        if _newer(state["house"], key):
            state["house"] = [key, grade]
    elif name == "water_assessed":
        if _newer(state["water"], key):
            state["water"] = [key, bool(payload["safe"])]
    elif name == "person_joined" and pid:
        p = _person(state, pid)
        _arrive(p, key, [key, payload["relation"], payload["birth_date"], payload["sex"], None])
    elif name == "person_left" and pid:
        p = _person(state, pid)
        if _newer(p.get("m"), key):
            p["m"] = [key, False]
        if payload["reason"] == "death":
            p["death"] = max(p.get("death") or "", key)
    elif name == "disability_certified" and pid and int(payload["grade"]) <= 2:
        p = _person(state, pid)
        p["dis12"] = max(p.get("dis12") or "", key)


def apply(state: dict[str, Any], env: dict[str, Any], lines: Lines, th: Thresholds) -> Outcome:
    """Fold one validated envelope into ``state`` (in place); return the alert messages it decided.

    Alert messages lack ``processed_at`` (wall clock), which the caller stamps.
    """
    eid = env["event_id"]
    seen = state["seen"]
    if eid in seen:
        return DUPLICATE
    seen.append(eid)
    if len(seen) > SEEN_LIMIT:
        del seen[: len(seen) - SEEN_LIMIT]
    key = valid_key(env)
    before = state.get("last")
    if before is not None and key == before:
        return DUPLICATE
    if before is None or key > before:
        state["last"] = key
    name = env["event_type"].partition(".")[2]
    region = env["payload"]["new_region_code"] if name == "household_relocated" else env["region_code"]
    held = state["region"]
    moved = False
    if _newer(held, key):
        moved = held is None or held[1] != region
        state["region"] = [key, region]
    _fold_fact(state, env, key)
    rules = rules_after(name, moved)
    if not rules:
        return Outcome(True)  # nothing a rule reads changed
    return Outcome(True, _alert_changes(state, env, key, lines, th, rules))


def _alert_changes(
    state: dict, env: dict, key: str, lines: Lines, th: Thresholds, rules: tuple[str, ...]
) -> list[dict]:
    holding = alerts.holding(state, lines, th, rules)
    opened = state["open"]
    changes: list[dict[str, Any]] = []
    if not holding and not opened:
        return changes
    hid = state["hid"]
    region = state["region"][1]
    occurred = key[:24]
    eid = env["event_id"]
    for rule in rules:
        if rule in holding and rule not in opened:
            aid = alerts.alert_id(hid, rule, eid)
            opened[rule] = [aid, eid, occurred]
            changes.append(
                _message(aid, rule, "raised", hid, region, eid, occurred, None, None, holding[rule])
            )
        elif rule in opened and rule not in holding:
            aid, raised_eid, raised_occ = opened.pop(rule)
            changes.append(
                _message(aid, rule, "resolved", hid, region, eid, occurred, raised_eid, raised_occ, {})
            )
    return changes


def _message(aid, rule, state, hid, region, eid, occurred, raised_eid, raised_occ, detail) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "rule": rule,
        "state": state,
        "household_id": hid,
        "region_code": region,
        "event_id": eid,
        "occurred_at": occurred,
        "raised_event_id": raised_eid,
        "raised_occurred_at": raised_occ,
        "processed_at": None,
        "detail": detail,
    }


def members(state: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for pid, p in sorted(state["p"].items()):
        if not p.get("m"):
            continue  # a person the household never counted (e.g. an insurance record alone)
        a = p.get("a") or [None] * 5
        out.append(
            {
                "person_id": pid,
                "relation": a[1],
                "birth_date": a[2],
                "sex": a[3],
                "labour_capacity": a[4],
                "living": p["m"][1],
            }
        )
    return out


def document(state: dict[str, Any], lines: Lines, updated_at: str) -> dict[str, Any]:
    """The status document of docs/architecture.md for ``state``."""
    enr = state["mon_enr"]
    monitoring = {"category": None, "risk_state": None}
    if enr:
        monitoring = {
            "category": enr[1],
            "risk_state": "open" if alerts.monitoring_open(state) else "eliminated",
        }
    inc = state["inc"]
    last = state["last"]
    mem = members(state)
    return {
        "household_id": state["hid"],
        "version": state["v"],
        "region_code": state["region"][1] if state["region"] else None,
        "status": state["status"],
        "monitoring": monitoring,
        "living_members": sum(1 for m in mem if m["living"]),
        "members": mem,
        "income": {"per_capita": inc[2], "year": inc[1]} if inc else {"per_capita": None, "year": None},
        "guarantees": {g: v[0] for g, v in guarantees.evaluate(state, lines).items()},
        "open_alerts": sorted(state["open"]),
        "last_event_id": guarantees.event_of(last),
        "last_occurred_at": last[:24] if last else None,
        "updated_at": updated_at,
    }


def explain(state: dict[str, Any], lines: Lines) -> dict[str, Any]:
    """Each flag and guarantee with the event that set it (for ``fupin household explain``)."""
    ev = guarantees.event_of
    transitions = []
    status = "non_registered"
    for key, kind in state["tr"]:
        allowed, target = TRANSITIONS[kind]
        ok = status in allowed
        transitions.append({"event_id": ev(key), "occurred_at": key[:24], "transition": kind, "applied": ok})
        status = target if ok else status
    return {
        "household_id": state["hid"],
        "status": {"value": state["status"], "transitions": transitions, "invalid": state["invalid"]},
        "region_code": {
            "value": state["region"][1] if state["region"] else None,
            "event_id": ev((state["region"] or [None])[0]),
        },
        "monitoring": {
            "enrolled_event_id": ev((state["mon_enr"] or [None])[0]),
            "category": (state["mon_enr"] or [None, None])[1],
            "eliminated_event_id": ev(state["mon_elim"]),
            "open": alerts.monitoring_open(state),
        },
        "income": {
            "value": (state["inc"] or [None, None, None])[2],
            "year": (state["inc"] or [None, None])[1],
            "event_id": ev((state["inc"] or [None])[0]),
        },
        "guarantees": {
            g: {"value": v[0], "event_id": v[1]} for g, v in guarantees.evaluate(state, lines).items()
        },
        "alerts": {
            rule: {"alert_id": a[0], "raised_event_id": a[1], "raised_occurred_at": a[2]}
            for rule, a in sorted(state["open"].items())
        },
        "last_event_id": ev(state["last"]),
    }


def fold(
    events: list[dict[str, Any]], lines: Lines, th: Thresholds | None = None
) -> tuple[dict[str, dict], list[dict]]:
    """Fold validated envelopes in the given order: the states per household and every alert message."""
    th = th or Thresholds()
    states: dict[str, dict] = {}
    messages: list[dict] = []
    for env in events:
        hid = env["household_id"]
        state = states.get(hid) or states.setdefault(hid, new_state(hid))
        outcome = apply(state, env, lines, th)
        if outcome.applied:
            state["v"] += 1
            messages.extend(outcome.alerts)
    return states, messages
