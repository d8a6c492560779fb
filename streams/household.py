"""The household fold: ONE rule book, no Faust, no I/O. state + events -> new state + alert changes.

The state is a compact JSON-able dict (orjson bytes in the worker's rocksdb table):

- the **head**: per attribute the latest fact with its valid-time key
  ``"<occurred_at>|<recorded_at>|<event_id>"`` (both instants fixed-width UTC ms text, so comparing
  keys as strings is the valid-time order ``(occurred_at, recorded_at, event_id)``). Latest-wins
  per attribute is order independent, so the status document needs no replay;
- the **log**: every applied event in valid-time order, compact (:data:`Entry`): key, type, person,
  region (when not the household's first), and only the fact the fold reads. It gives the
  household's history back for a late event;
- **ids**: ``{event_id: fingerprint}`` for every applied event: a duplicate is recognised however
  old, and :func:`known_fingerprint` tells the validity judgement what content an ``event_id``
  had (orjson builds the dict while loading; a string searched instead cost 6 µs an event);
- **eps**: per rule its alert episodes (domain.md, "Alert episodes"), each :data:`Episode`
  ``[start_key, end_key | None, region_code, detail]``; ``open`` mirrors the open ones
  ``{rule: [alert_id, start_event_id, start_occurred_at]}`` for the live views.

Base status is not latest-wins: the transition events are kept and replayed in valid-time order;
a transition not allowed from the status it meets is not applied and counted.

Episodes follow the history by valid time, not the order of arrival. An event later than every
event held (the common case) is folded and the rules it can affect (:data:`RULES_READING`) are
evaluated on the head, opening or closing episodes. A late event is inserted into the log; at the
end of the batch the rules the batch's late events can affect are replayed over the log from the
earliest late key (:class:`Batch`), and the new episodes are diffed against the old: raised,
resolved, updated (the end moved) or retracted (an episode that no longer exists).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from fupin import packing, validity
from fupin.timeutil import iso_utc, parse_instant
from streams import alerts, guarantees
from streams.alerts import Thresholds
from streams.guarantees import COMPULSORY_STAGES, Lines

#: Version of the state's layout (a state without it predates the log: see :func:`loads`).
FORMAT = 2
STATUSES = ("non_registered", "poor", "exited", "returned")
#: transition event -> (statuses it may leave, status it leads to): the rule's one home in Python
#: (SQL's: dbt_project/macros/status_transitions.sql; the simulator's truth keeps its own on purpose).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "household_registered": (frozenset({"non_registered"}), "poor"),
    "household_exited": (frozenset({"poor", "returned"}), "exited"),
    "household_returned": (frozenset({"exited"}), "returned"),
}

#: A log entry: [key, event name, person_id | None, region_code | None (= the first region), fact].
Entry = list
#: An episode: [start_key, end_key | None, region_code at the start, detail at the start].
Episode = list

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
#: missing here re-evaluates all nine rules. Read backwards (:func:`types_read`), it says which
#: log entries a replay of some rules must fold.
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
#: The name of a quiet event (a fact no rule reads, in the household's own region) in a replay.
QUIET = "quiet"
RULES_READING[QUIET] = ()


_RULES_AFTER: dict[tuple[str, bool], tuple[str, ...]] = {}
_TYPES_READ: dict[frozenset[str], frozenset[str] | None] = {}


def rules_after(name: str, moved: bool) -> tuple[str, ...]:
    """The rules to re-evaluate after an event of type ``name`` (``moved``: its region changed),
    in the order of ``alerts.RULES``."""
    rules = _RULES_AFTER.get((name, moved))
    if rules is None:
        reading = set(RULES_READING.get(name, alerts.RULES)) | (set(_REGION) if moved else set())
        rules = _RULES_AFTER[(name, moved)] = tuple(r for r in alerts.RULES if r in reading)
    return rules


def types_read(rules: frozenset[str]) -> frozenset[str] | None:
    """The event types whose facts some of ``rules`` read (None: also types RULES_READING lacks)."""
    if rules not in _TYPES_READ:
        _TYPES_READ[rules] = frozenset(t for t, rs in RULES_READING.items() if rules.intersection(rs))
    return _TYPES_READ[rules]


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


#: The content fingerprint of an envelope: the validity judgement's (one home, so that the stream
#: worker and the sink name a conflicting duplicate's first event alike).
fingerprint = validity.fingerprint


def known_fingerprint(state: dict[str, Any], event_id: str) -> str | None:
    """The fingerprint stored for ``event_id`` if the household applied it, else None."""
    return state["ids"].get(event_id)


def new_state(household_id: str) -> dict[str, Any]:
    """A household first seen: ``non_registered``, nothing known."""
    return {
        "fmt": FORMAT,
        "hid": household_id,
        "v": 0,
        "rev": 0,
        "last": None,
        "region": None,
        "r0": None,
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
        "eps": {},
        "ids": {},
        "log": [],
        "quiet": [],
        "rx": False,
    }


def encode(state: dict[str, Any]) -> bytes:
    """The stored form of a state: its JSON, lz4-compressed. The worker writes every household it
    folds to the table's changelog once a batch, and the embedded broker keeps every message in
    memory: compressed, a state (about 12 KB of JSON) takes about a third of that."""
    return packing.pack(orjson.dumps(state))


def decode(raw: bytes) -> dict[str, Any]:
    """A state as :func:`encode` stored it (or as plain JSON, as states were stored before)."""
    return orjson.loads(packing.unpack(raw))


def loads(raw: bytes, household_id: str) -> dict[str, Any]:
    """A stored state; one from before the log (FORMAT 1) keeps its facts and open alerts, but its
    history is unknown: episodes before it cannot be corrected (``fupin rebuild`` refolds them)."""
    state = decode(raw)
    if state.get("fmt") != FORMAT:
        fresh = new_state(household_id)
        state.pop("seen", None)
        for k, v in fresh.items():
            state.setdefault(k, v)
        state["fmt"] = FORMAT
        state["r0"] = state["region"][1] if state["region"] else None
        for rule, (_aid, eid, occurred) in state["open"].items():
            state["eps"][rule] = [[f"{occurred}|{occurred}|{eid}", None, state["r0"], {}]]
    return state


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
    if attrs[4] is not None and _newer(p.get("cap"), key):
        p["cap"] = [key, attrs[4]]
    if _newer(p.get("a"), key):
        p["a"] = attrs
    # person_joined carries no labour capacity: the latest one known (registration) holds,
    # whichever arrived first.
    cap = p.get("cap")
    if cap is not None:
        p["a"][4] = cap[1]


def _replay_status(state: dict[str, Any]) -> None:
    status, invalid = "non_registered", 0
    for _key, kind in state["tr"]:
        allowed, target = TRANSITIONS[kind]
        if status in allowed:
            status = target
        else:
            invalid += 1
    state["status"], state["invalid"] = status, invalid


def _members(payload: dict) -> list:
    return [
        [m["person_id"], m["relation"], m["birth_date"], m["sex"], m["labour_capacity"]]
        for m in payload["members"]
    ]


def _grade(payload: dict) -> str:
    return payload.get("grade") or payload.get("grade_after") or "A"


#: Event name -> the fact its log entry keeps (only what the fold reads); a name missing here keeps none.
FACT_OF: dict[str, Callable[[dict], Any]] = {
    "household_registered": _members,
    "income_assessed": lambda p: [int(p["year"]), float(p["net_income_per_capita"])],
    "monitoring_enrolled": lambda p: p["category"],
    "insurance_enrolled": lambda p: int(p["year"]),
    "insurance_lapsed": lambda p: int(p["year"]),
    "hospitalization_settled": lambda p: float(p["out_of_pocket"]),
    "student_enrolled": lambda p: p["stage"],
    "student_dropped_out": lambda p: p["stage"],
    "student_returned": lambda p: p["stage"],
    "house_appraised": _grade,
    "house_renovated": _grade,
    "household_relocated": _grade,
    "water_assessed": lambda p: bool(p["safe"]),
    "person_joined": lambda p: [p["relation"], p["birth_date"], p["sex"]],
    "person_left": lambda p: p["reason"],
    "disability_certified": lambda p: int(p["grade"]),
}


def entry_of(env: dict[str, Any], key: str) -> Entry:
    """The log entry of a validated envelope (region filled in by the caller)."""
    name = env["event_type"].partition(".")[2]
    fact = FACT_OF.get(name)
    return [key, name, env.get("person_id"), None, fact(env["payload"]) if fact else None]


# One function per kind of fact: (state, key, person_id, fact, name) -> whether what a rule reads
# may have changed. False only where a newer fact repeats the value a rule reads (a second
# enrolment, the same grade again): a replay need not evaluate the rules there. Facts whose keys
# a rule compares (eliminations, stays, losses, enrolment in monitoring) always say True.


def _transition(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if [key, name] not in state["tr"]:
        state["tr"].append([key, name])
        state["tr"].sort()
        _replay_status(state)
    if name == "household_registered":
        for m in fact:
            _arrive(_person(state, m[0]), key, [key, m[1], m[2], m[3], m[4]])
    return True


def _income(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    held = state["inc"]
    if _newer(held, key):
        state["inc"] = [key, fact[0], fact[1]]
        return held is None or held[1] != fact[0] or held[2] != fact[1]
    return False


def _monitoring_enrolled(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if _newer(state["mon_enr"], key):
        state["mon_enr"] = [key, fact]
    return True


def _monitoring_eliminated(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    state["mon_elim"] = max(state["mon_elim"] or "", key)
    return True


def _dibao(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    held = state["dibao"]
    if _newer(held, key):
        kind = "enrolled" if name == "dibao_enrolled" else "terminated"
        state["dibao"] = [key, kind]
        return held is None or held[1] != kind
    return False


def _tekun(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    changed = not state["tekun"]
    state["tekun"] = max(state["tekun"] or "", key)
    return changed


def _insurance(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if not pid:
        return False
    p = _person(state, pid)
    kind = "insured" if name == "insurance_enrolled" else "lapsed"
    held = p.get("ins")
    changed = False
    if _newer(held, key):
        p["ins"] = [key, kind, fact]
        changed = held is None or held[1] != kind
    by_year = p.setdefault("insy", {})
    if _newer(by_year.get(str(fact)), key):
        by_year[str(fact)] = [key, kind]
    return changed


def _hospital(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    stays = state["hosp"].setdefault(key[:4], [])
    if not stays or key > stays[-1][0]:
        stays.append([key, fact])
    elif not any(s[0] == key for s in stays):
        stays.append([key, fact])
        stays.sort()
    return True


def _education(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if not pid:
        return False
    p = _person(state, pid)
    held = p.get("edu")
    changed = False
    if _newer(held, key):
        kind = "student_" + name.partition("_")[2]
        p["edu"] = [key, kind, fact]
        changed = held is None or held[1] != kind or held[2] != fact
    if name == "student_dropped_out" and fact in COMPULSORY_STAGES:
        p["drop"] = max(p.get("drop") or "", key)
    elif name == "student_returned":
        p["ret"] = max(p.get("ret") or "", key)
    return changed


def _latest(attribute: str) -> Callable[[dict, str, str | None, Any, str], bool]:
    """A fold of a household attribute whose latest fact by valid time wins (house grade, water)."""

    def fold(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
        held = state[attribute]
        if _newer(held, key):
            state[attribute] = [key, fact]
            return held is None or held[1] != fact
        return False

    return fold


_house = _latest("house")
_water = _latest("water")


def _joined(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if pid:
        _arrive(_person(state, pid), key, [key, fact[0], fact[1], fact[2], None])
    return True


def _left(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if not pid:
        return False
    p = _person(state, pid)
    if _newer(p.get("m"), key):
        p["m"] = [key, False]
    if fact == "death":
        p["death"] = max(p.get("death") or "", key)
    return True


def _disability(state: dict, key: str, pid: str | None, fact: Any, name: str) -> bool:
    if pid and fact <= 2:
        p = _person(state, pid)
        p["dis12"] = max(p.get("dis12") or "", key)
        return True
    return False


#: Event name -> how its fact enters the state; a name missing here folds no fact.
FOLD: dict[str, Callable[[dict, str, str | None, Any, str], bool]] = {
    "household_registered": _transition,
    "household_exited": _transition,
    "household_returned": _transition,
    "income_assessed": _income,
    "monitoring_enrolled": _monitoring_enrolled,
    "monitoring_risk_eliminated": _monitoring_eliminated,
    "dibao_enrolled": _dibao,
    "dibao_terminated": _dibao,
    "tekun_enrolled": _tekun,
    "insurance_enrolled": _insurance,
    "insurance_lapsed": _insurance,
    "hospitalization_settled": _hospital,
    "student_enrolled": _education,
    "student_dropped_out": _education,
    "student_returned": _education,
    "house_appraised": _house,
    "house_renovated": _house,
    "household_relocated": _house,
    "water_assessed": _water,
    "person_joined": _joined,
    "person_left": _left,
    "disability_certified": _disability,
}


def _fold_entry(state: dict[str, Any], e: Entry) -> bool:
    """Record an entry's fact in the state; whether what a rule reads may have changed."""
    fold = FOLD.get(e[1])
    return fold is not None and fold(state, e[0], e[2], e[4], e[1])


def episode_fields(hid: str, rule: str, ep: Episode) -> dict[str, Any]:
    """An episode in the alert message's fields (docs/architecture.md), without state and revision."""
    start, end = ep[0], ep[1]
    start_eid = guarantees.event_of(start)
    return {
        "alert_id": alerts.alert_id(hid, rule, start_eid),
        "rule": rule,
        "household_id": hid,
        "region_code": ep[2],
        "start_event_id": start_eid,
        "start_occurred_at": start[:24],
        "start_recorded_at": start[25:49],
        "end_event_id": guarantees.event_of(end),
        "end_occurred_at": end[:24] if end else None,
        "end_recorded_at": end[25:49] if end else None,
        "detail": ep[3],
    }


def _message(state: dict[str, Any], rule: str, ep: Episode, label: str, floor: int) -> dict[str, Any]:
    """The alert message of an episode's current truth (``label``: raised, resolved, retracted)."""
    revision = max(state["rev"] + 1, floor)
    state["rev"] = revision
    message = episode_fields(state["hid"], rule, ep)
    message.update(state=label, revision=revision, processed_at=None)
    return message


def _set_open(state: dict[str, Any], rule: str) -> None:
    eps = state["eps"].get(rule)
    if eps and eps[-1][1] is None:
        eid = guarantees.event_of(eps[-1][0])
        state["open"][rule] = [alerts.alert_id(state["hid"], rule, eid), eid, eps[-1][0][:24]]
    else:
        state["open"].pop(rule, None)


def _region_before(state: dict[str, Any], key: str) -> str | None:
    """The region of the history just before ``key`` (the latest event before it), None if none."""
    log, quiet = state["log"], state["quiet"]
    i = bisect.bisect_left(log, [key])
    j = bisect.bisect_left(quiet, key)
    before = log[i - 1] if i else None
    if j and (before is None or quiet[j - 1] > before[0]):
        return state["r0"]
    return None if before is None else (before[3] or state["r0"])


def _timeline(state: dict[str, Any]) -> list[Entry]:
    """Every event in valid-time order: the log, with the quiet events as entries without a fact."""
    if not state["rx"]:
        return state["log"]  # one region throughout: the quiet events cannot change a verdict
    return sorted(state["log"] + [[k, QUIET, None, None, None] for k in state["quiet"]])


class Batch:
    """Events of one household folded together; :meth:`finish` corrects history once for the batch.

    Usage: ``b = Batch(state, lines, th)``; ``b.add(env)`` for each event (True: applied, False:
    a duplicate); ``b.finish()`` returns the alert messages (without ``processed_at``, which the
    caller stamps). ``floor`` is the least revision a message may carry: the worker passes its
    wall clock (µs) so that messages of a fold rebuilt after a broker loss still win over the
    ones from before; the pure fold passes 0.
    """

    def __init__(self, state: dict[str, Any], lines: Lines, th: Thresholds, floor: int = 0) -> None:
        self.state, self.lines, self.th, self.floor = state, lines, th, floor
        self.messages: list[dict[str, Any]] = []
        self.late_from: str | None = None  # earliest key of this batch's late events
        self.late_rules: set[str] = set()

    def add(self, env: dict[str, Any], fp: str | None = None) -> bool:
        state = self.state
        eid = env["event_id"]
        ids = state["ids"]
        if eid in ids:
            return False
        ids[eid] = fp or fingerprint(env)
        key = valid_key(env)
        name = env["event_type"].partition(".")[2]
        region = env["payload"]["new_region_code"] if name == "household_relocated" else env["region_code"]
        r0 = state["r0"]
        if r0 is None:
            r0 = state["r0"] = region
        elif region != r0:
            state["rx"] = True
        last = state["last"]
        if last is None or key > last:
            state["last"] = key
        held = state["region"]
        moved = False
        if _newer(held, key):
            moved = held is None or held[1] != region
            state["region"] = [key, region]
        if name in NO_RISK_FACTS and region == r0:
            # No fact, the household's own region: only its key is kept (a region change point
            # when other events disagree about the region).
            quiet = state["quiet"]
            if not quiet or key > quiet[-1]:
                quiet.append(key)
            else:
                bisect.insort(quiet, key)
            e = None
        else:
            e = entry_of(env, key)
            if region != r0:
                e[3] = region
            _fold_entry(state, e)
        log = state["log"]
        if key > (log[-1][0] if log else "") and key >= (state["quiet"][-1] if state["quiet"] else ""):
            if e is not None:
                log.append(e)
            if self.late_from is None:
                rules = rules_after(name, moved)
                if rules:
                    self._advance(key, region, rules)
                return True
        else:
            if e is not None:
                log.insert(bisect.bisect_left(log, [key]), e)
            # The region of the history changes here when it differs from the event before's:
            # every rule's episodes record the region at their start, so all are replayed.
            if state["rx"] and _region_before(state, key) not in (None, region):
                self.late_rules.update(alerts.RULES)
            if self.late_from is None or key < self.late_from:
                self.late_from = key
        self.late_rules.update(rules_after(name, moved))
        return True

    def _advance(self, key: str, region: str, rules: tuple[str, ...]) -> None:
        """The fast path: ``key`` is the latest event; open or close episodes on the head."""
        state = self.state
        holding = alerts.holding(state, self.lines, self.th, rules)
        opened = state["open"]
        if not holding and not opened:
            return
        eps = state["eps"]
        for rule in rules:
            if rule in holding and rule not in opened:
                ep = [key, None, region, holding[rule]]
                eps.setdefault(rule, []).append(ep)
                _set_open(state, rule)
                self.messages.append(_message(state, rule, ep, "raised", self.floor))
            elif rule in opened and rule not in holding:
                ep = eps[rule][-1]
                ep[1] = key
                _set_open(state, rule)
                self.messages.append(_message(state, rule, ep, "resolved", self.floor))

    def finish(self) -> list[dict[str, Any]]:
        if self.late_from is not None and self.late_rules:
            self._replay(self.late_from, frozenset(self.late_rules))
        self.late_from, self.late_rules = None, set()
        return self.messages

    def _replay(self, since: str, rules: frozenset[str]) -> None:
        """Refold ``rules`` over the log from ``since`` (the history before it is unchanged) and
        send what changed: episodes raised, resolved, moved, retracted."""
        state = self.state
        lines, th = self.lines, self.th
        ordered = tuple(r for r in alerts.RULES if r in rules)
        old = {r: state["eps"].get(r, []) for r in ordered}
        new: dict[str, list[Episode]] = {}
        current: dict[str, Episode] = {}  # the episode each rule is in at the replay's point
        for rule in ordered:
            kept = []
            for ep in old[rule]:
                if ep[1] is not None and ep[1] < since:
                    kept.append(list(ep))
                elif ep[0] < since:  # the episode the history was in just before ``since``
                    current[rule] = [ep[0], None, ep[2], ep[3]]
            new[rule] = kept
        wanted = types_read(rules)
        scratch = new_state(state["hid"])
        r0 = state["r0"]
        log = _timeline(state)
        first = bisect.bisect_left(log, [since])
        for i in range(first):  # the unchanged history: its facts only
            e = log[i]
            if e[1] in wanted:
                _fold_entry(scratch, e)
        region = (log[first - 1][3] or r0) if first else None
        scratch["region"] = [log[first - 1][0], region] if first else None
        checks: dict[tuple[str, bool], tuple[str, ...]] = {}
        for i in range(first, len(log)):
            e = log[i]
            name = e[1]
            here = e[3] or r0
            moved = here != region
            if moved:
                region = here
                scratch["region"] = [e[0], region]
            if not (name in wanted and _fold_entry(scratch, e)) and not moved:
                continue  # nothing a replayed rule reads changed here
            check = checks.get((name, moved))
            if check is None:
                check = checks[(name, moved)] = tuple(r for r in rules_after(name, moved) if r in rules)
            if not check:
                continue
            holding = alerts.holding(scratch, lines, th, check)
            for rule in check:
                if rule in holding and rule not in current:
                    current[rule] = [e[0], None, region, holding[rule]]
                elif rule in current and rule not in holding:
                    ep = current.pop(rule)
                    ep[1] = e[0]
                    new[rule].append(ep)
        for rule, ep in current.items():
            new[rule].append(ep)
        for rule in ordered:
            before = {ep[0]: ep for ep in old[rule]}
            after = {ep[0]: ep for ep in new[rule]}
            for start, ep in before.items():
                if start not in after:
                    self.messages.append(_message(state, rule, ep, "retracted", self.floor))
            for start, ep in after.items():
                was = before.get(start)
                if was is None or was[1] != ep[1] or was[2] != ep[2]:
                    label = "raised" if ep[1] is None else "resolved"
                    self.messages.append(_message(state, rule, ep, label, self.floor))
                elif was[3] != ep[3]:  # the same stretch, but the facts at its start changed
                    self.messages.append(
                        _message(state, rule, ep, "raised" if ep[1] is None else "resolved", self.floor)
                    )
            if new[rule]:
                state["eps"][rule] = sorted(after.values())
            else:
                state["eps"].pop(rule, None)
            _set_open(state, rule)


def apply(
    state: dict[str, Any],
    env: dict[str, Any],
    lines: Lines,
    th: Thresholds,
    fingerprint: str | None = None,
    floor: int = 0,
) -> Outcome:
    """Fold one validated envelope into ``state`` (in place); return the alert messages it decided.

    ``fingerprint``: the caller's content fingerprint of the event (default: :func:`fingerprint`).
    Alert messages lack ``processed_at`` (wall clock), which the caller stamps.
    """
    batch = Batch(state, lines, th, floor)
    if not batch.add(env, fingerprint):
        return DUPLICATE
    return Outcome(True, batch.finish())


def episodes(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The household's alert episodes now (each with ``state`` raised or resolved), in rule order."""
    return [
        {**episode_fields(state["hid"], rule, ep), "state": "raised" if ep[1] is None else "resolved"}
        for rule in alerts.RULES
        for ep in state["eps"].get(rule, ())
    ]


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
