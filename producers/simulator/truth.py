"""The truth: each household's state at every simulated year-end, from the model's own facts.

The facts are the status-relevant records the model emitted (bad input excluded: malformed and
unknown-type rows are copies, duplicates repeat a fact, late rows are facts recorded late), folded
by valid time with the binding rules of domain.md: only valid status transitions apply; members
are the registered ones plus joins minus departures; the monitoring overlay opens and is
eliminated; the latest income assessment and the current cadres count.
"""

from __future__ import annotations

from datetime import date

TRUTH_COLUMNS = ("household_id", "year", "region_code", "status", "living_members", "monitoring_category",
                 "monitoring_state", "income_per_capita", "has_cadre")
#: The base-status transitions, written here apart from the platform's on purpose (streams/household.py
#: for Python, dbt_project/macros/status_transitions.sql for SQL): the ground truth the tests compare
#: with is an independent reading of the spec, not the code under test.
_TRANSITIONS = {"reg": ({"non_registered"}, "poor"), "exit": ({"poor", "returned"}, "exited"),
                "return": ({"exited"}, "returned")}


def household_truth(h, years: range) -> list[tuple]:
    """Rows for the years whose Dec 31 the household is known by (it has an event by then)."""
    if h.first_seen is None:
        return []
    facts = sorted(h.facts, key=lambda f: (f[0], f[1]))
    status, region = "non_registered", h.village
    members: set[str] = set()
    left: set[str] = set()
    cadres: set[str] = set()
    category, state, income = "", "", ""
    rows = []
    i = 0
    for year in years:
        end = date(year, 12, 31)
        while i < len(facts) and facts[i][0] <= end:
            _, _, kind, data = facts[i]
            i += 1
            if kind in _TRANSITIONS:
                allowed, to = _TRANSITIONS[kind]
                if status in allowed:
                    status = to
                if kind == "reg":
                    members.update(data)
            elif kind == "join":
                members.add(data)
                left.discard(data)
            elif kind == "left":
                left.add(data)
            elif kind == "mon":
                category, state = data, "open"
            elif kind == "elim":
                if category:
                    state = "eliminated"
            elif kind == "income":
                income = f"{data:.2f}"
            elif kind == "cadre+":
                cadres.add(data)
            elif kind == "cadre-":
                cadres.discard(data)
            elif kind == "reloc":
                region = data
        if h.first_seen <= end:
            rows.append((h.hid, year, region, status, len(members - left), category, state, income,
                         int(bool(cadres))))
    return rows
