"""The nine risk-alert rules of domain.md (返贫致贫风险预警), as conditions on a household state.

Each rule looks only at the state that results from folding an event, never at the event, so
the alerts open at the end do not depend on the order in which events arrived. A rule returns
``None`` when its condition does not hold, else a small detail dict for the alert message.
A rule whose line is missing for the year in question does not fire.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.guarantees import COMPULSORY_STAGES, Lines, living_members, monitoring_line, poverty_line

RULES: tuple[str, ...] = (
    "income_below_monitoring_line",
    "medical_burden",
    "education_dropout",
    "medical_insurance_gap",
    "unsafe_housing",
    "unsafe_water",
    "labour_loss",
    "dibao_terminated_while_poor",
    "missed_registration_candidate",
)
#: Labour capacities whose loss is a risk (domain.md, labour_loss).
WORKING_CAPACITIES = frozenset({"normal", "skilled"})
_ALERT_NAMESPACE = uuid.UUID("6f1d7c52-8a5e-5b7e-9c1a-3f0b2d4e6a10")


@dataclass(frozen=True)
class Thresholds:
    """Configurable thresholds (Settings.medical_burden_share / medical_burden_amount)."""

    medical_burden_share: float = 0.5
    medical_burden_amount: float = 20000.0


def alert_id(household_id: str, rule: str, raised_event_id: str) -> str:
    """Stable id: uuid5 of household, rule and the raising event, so a replay yields the same id."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{household_id}|{rule}|{raised_event_id}"))


def status_of(state: dict[str, Any]) -> str:
    return state.get("status", "non_registered")


def monitoring_open(state: dict[str, Any]) -> bool:
    enr = state.get("mon_enr")
    elim = state.get("mon_elim")
    return bool(enr) and (not elim or elim < enr[0])


def _income_fact(state: dict[str, Any]) -> tuple[int, float] | None:
    inc = state.get("inc")
    return (inc[1], inc[2]) if inc else None


def income_below_monitoring_line(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    if status_of(state) not in ("exited", "non_registered"):
        return None
    fact = _income_fact(state)
    if fact is None:
        return None
    line = monitoring_line(state, fact[0], lines)
    if line is None or not fact[1] < line:
        return None
    return {"per_capita": fact[1], "year": fact[0], "monitoring_line": line}


def medical_burden(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    fact = _income_fact(state)
    annual = fact[1] * len(living) if fact else None
    elim = state.get("mon_elim")
    for year, stays in sorted(state.get("hosp", {}).items()):
        total = 0.0
        for key, out_of_pocket in stays:
            total += out_of_pocket
            if total > th.medical_burden_amount or (
                annual is not None and total > th.medical_burden_share * annual
            ):
                if not elim or elim < key:
                    return {"year": int(year), "out_of_pocket": total, "annual_income": annual}
                break
    return None


def education_dropout(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    for pid, p in living:
        edu = p.get("edu")
        if edu and edu[1] == "student_dropped_out" and edu[2] in COMPULSORY_STAGES:
            return {"person_id": pid, "stage": edu[2]}
    return None


def medical_insurance_gap(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    for pid, p in living:
        ins = p.get("ins")
        if ins and ins[1] == "lapsed":
            return {"person_id": pid, "year": ins[2]}
    return None


def unsafe_housing(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    house = state.get("house")
    return {"grade": house[1]} if house and house[1] in ("C", "D") else None


def unsafe_water(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    water = state.get("water")
    return {"safe": False} if water and not water[1] else None


def labour_loss(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    elim = state.get("mon_elim")
    for pid, p in sorted(state["p"].items()):
        if not p.get("m") or p.get("a", [None] * 5)[4] not in WORKING_CAPACITIES:
            continue
        loss = max(p.get("death") or "", p.get("dis12") or "")
        if loss and (not elim or elim < loss):
            return {"person_id": pid, "cause": "death" if loss == p.get("death") else "disability"}
    return None


def dibao_terminated_while_poor(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    dibao = state.get("dibao")
    fact = _income_fact(state)
    if not dibao or dibao[1] != "terminated" or fact is None:
        return None
    line = poverty_line(state, fact[0], lines)
    if line is None or fact[1] > line:
        return None
    return {"per_capita": fact[1], "year": fact[0], "poverty_line": line}


def missed_registration_candidate(state: dict, living: list, lines: Lines, th: Thresholds) -> dict | None:
    if status_of(state) != "non_registered" or monitoring_open(state):
        return None
    dibao = state.get("dibao")
    if dibao and dibao[1] == "enrolled":
        return {"basis": "dibao"}
    if state.get("tekun"):
        return {"basis": "tekun"}
    fact = _income_fact(state)
    if fact is not None:
        line = poverty_line(state, fact[0], lines)
        if line is not None and fact[1] <= line:
            return {"basis": "income", "per_capita": fact[1], "year": fact[0], "poverty_line": line}
    return None


CONDITIONS: dict[str, Callable[[dict, list, Lines, Thresholds], dict | None]] = {
    "income_below_monitoring_line": income_below_monitoring_line,
    "medical_burden": medical_burden,
    "education_dropout": education_dropout,
    "medical_insurance_gap": medical_insurance_gap,
    "unsafe_housing": unsafe_housing,
    "unsafe_water": unsafe_water,
    "labour_loss": labour_loss,
    "dibao_terminated_while_poor": dibao_terminated_while_poor,
    "missed_registration_candidate": missed_registration_candidate,
}
assert tuple(CONDITIONS) == RULES


def holding(
    state: dict[str, Any], lines: Lines, th: Thresholds, rules: tuple[str, ...] = RULES
) -> dict[str, dict]:
    """Those of ``rules`` (all nine by default) whose condition holds on ``state``, with their detail."""
    out = {}
    living = living_members(state)
    for rule in rules:
        detail = CONDITIONS[rule](state, living, lines, th)
        if detail is not None:
            out[rule] = detail
    return out
