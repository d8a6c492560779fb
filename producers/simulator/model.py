"""The county model: households, persons and their histories, emitted as department records.

One seeded ``random.Random`` drives everything, households are visited in index order and
every collection is a list, so the same seed gives the same records. Each record is rendered
directly in its department's own export layout (see ``formats.py``); facts that the household
status depends on are also kept per household for the truth (``truth.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from producers.identity import make_resident_id
from producers.simulator import formats as F
from producers.simulator.county import County, line_table

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢"
_GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文红玉梅春林海兵波辉"
CAUSES_ZH = {
    "illness": "因病", "disability": "因残", "schooling": "因学", "disaster": "因灾", "marriage": "因婚",
    "land": "缺土地", "water": "缺水", "skills": "缺技术", "capital": "缺资金", "labour": "缺劳力",
    "transport": "交通条件落后", "motivation": "自身发展动力不足", "other": "其他",
}
_CAUSE_KEYS = list(CAUSES_ZH)
_CAUSE_W = [30, 15, 8, 4, 1, 3, 2, 12, 12, 8, 2, 2, 1]
_UNITS = ["县财政局", "县教育局", "县卫健局", "县住建局", "县水利局", "县人社局", "县民政局", "县农业农村局", "县供电公司", "县农商银行"]


@dataclass(slots=True)
class Person:
    rid: str
    name: str
    birth: date
    sex: str
    relation: str
    labour: str
    joined: date | None = None  # None: member from the start
    left: date | None = None
    insured_years: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Household:
    index: int
    hid: str
    village: str
    phone: str
    members: list[Person]
    registered_year: int | None = None  # year of the registration event, None: never
    reloc: tuple[date, str] | None = None
    facts: list[tuple[date, str, str, object]] = field(default_factory=list)
    first_seen: date | None = None

    def region(self, on: date) -> str:
        if self.reloc and on >= self.reloc[0]:
            return self.reloc[1]
        return self.village

    def living(self, on: date) -> list[Person]:
        return [p for p in self.members if (p.joined is None or p.joined <= on) and (p.left is None or p.left > on)]


def _alive(p: Person, on: date) -> bool:
    return (p.joined is None or p.joined <= on) and (p.left is None or p.left > on)


def _age(p: Person, on: date) -> int:
    return on.year - p.birth.year - ((on.month, on.day) < (p.birth.month, p.birth.day))


class CountyModel:
    """Generates every department's records for ``households`` households over the years."""

    def __init__(self, county: County, households: int, year_from: int, year_to: int, seed: int,
                 bad_share: float = 0.0) -> None:
        self.county = county
        self.n = households
        self.y0, self.y1 = year_from, year_to
        self.rng = random.Random(seed)
        self.late_share = bad_share / 4
        self.lines = line_table()
        self.files = F.Files()
        self.households: list[Household] = []
        self._seq: dict[str, int] = {}
        self._cadres: list[tuple[str, str, int]] = []  # id, unit, load
        self.assessment_rows: list[tuple] = []

    # -- helpers ------------------------------------------------------------------------------
    def _rid(self, region6: str, birth: date, sex: str) -> str:
        key = f"{region6}{birth:%Y%m%d}{sex}"
        n = self._seq.get(key, 0)
        self._seq[key] = n + 1
        return make_resident_id(region6, birth, n, sex)

    def _name(self) -> str:
        r = self.rng
        return r.choice(_SURNAMES) + r.choice(_GIVEN) + (r.choice(_GIVEN) if r.random() < 0.7 else "")

    def _day(self, year: int, m0: int = 1, m1: int = 12) -> date:
        start = date(year, m0, 1)
        end = date(year, m1, 28) if m1 < 12 else date(year, 12, 31)
        return start + timedelta(days=self.rng.randrange((end - start).days + 1))

    def _rec(self, occurred: date) -> tuple[str, bool]:
        """The department's recording time (local, +08:00): days after, or long after (late)."""
        r = self.rng
        late = r.random() < self.late_share
        d = occurred + timedelta(days=r.randrange(200, 700) if late else r.randrange(0, 8))
        return f"{d:%Y-%m-%d} {r.randrange(8, 18):02d}:{r.randrange(60):02d}:{r.randrange(60):02d}", late

    def _seen(self, h: Household, on: date) -> None:
        if h.first_seen is None or on < h.first_seen:
            h.first_seen = on

    def _fact(self, h: Household, on: date, rec: str, kind: str, data: object = None) -> None:
        h.facts.append((on, rec, kind, data))

    def _emit(self, fmt: str, h: Household, on: date, row: tuple | dict) -> str:
        """Record one row of format ``fmt`` (the row holds the recording time); returns it."""
        self._seen(h, on)
        rec, late = self._rec(on)
        if isinstance(row, dict):
            row["录入时间"] = rec
        else:
            row = (rec, *row)
        self.files.add(fmt, rec, row, late)
        return rec

    # -- population ------------------------------------------------------------------------------
    def build_households(self) -> None:
        r = self.rng
        villages = self.county.villages
        # Poorer villages (a third of them) hold most registered households.
        poor_village = {v.code: (i % 3 == 0) for i, v in enumerate(villages)}
        for i in range(self.n):
            v = villages[i % len(villages)] if i < len(villages) else villages[r.randrange(len(villages))]
            size = r.choices([1, 2, 3, 4, 5, 6, 7], [8, 18, 22, 24, 16, 8, 4])[0]
            ref = date(self.y0, 1, 1)
            head_age = r.randint(25, 80) if size > 1 else r.randint(40, 88)
            head_sex = "M" if r.random() < 0.85 else "F"
            people = [self._person(v.code, ref, head_age, head_sex, "head")]
            if size >= 2:
                people.append(self._person(v.code, ref, max(20, head_age + r.randint(-5, 3)),
                                           "F" if head_sex == "M" else "M", "spouse"))
            for _ in range(size - len(people)):
                if head_age > 50 and r.random() < 0.35:
                    people.append(self._person(v.code, ref, max(0, head_age - r.randint(45, 55)),
                                               r.choice("MF"), "grandchild"))
                elif head_age < 50 and r.random() < 0.25:
                    people.append(self._person(v.code, ref, head_age + r.randint(22, 30), r.choice("MF"), "parent"))
                else:
                    people.append(self._person(v.code, ref, max(0, head_age - r.randint(20, 34)),
                                               r.choice("MF"), "child"))
            phone = f"1{r.choice('35789')}{r.randrange(10**9):09d}"
            h = Household(i, f"H{i + 1:07d}", v.code, phone, people)
            p_reg = 0.55 if poor_village[v.code] else 0.17
            if r.random() < p_reg:
                h.registered_year = self.y0 if r.random() < 0.93 else r.randint(self.y0 + 1, min(self.y1, 2019))
            self.households.append(h)

    def _person(self, region: str, ref: date, age: int, sex: str, relation: str) -> Person:
        r = self.rng
        birth = date(ref.year - age, r.randint(1, 12), r.randint(1, 28))
        if age < 16:
            labour = "none"
        elif age >= 70:
            labour = r.choices(["weak", "lost", "none"], [5, 3, 2])[0]
        elif age >= 60:
            labour = r.choices(["normal", "weak", "lost"], [4, 5, 1])[0]
        else:
            labour = r.choices(["normal", "skilled", "weak", "lost"], [70, 12, 12, 6])[0]
        return Person(self._rid(region[:6], birth, sex), self._name(), birth, sex, relation, labour)

    # -- histories -------------------------------------------------------------------------------
    def run(self, advance=None) -> None:
        """Every household's history; ``advance(n)`` is told every 1,000 households (progress)."""
        self.build_households()
        for n, h in enumerate(self.households, start=1):
            self._history(h)
            if advance is not None and n % 1000 == 0:
                advance(1000)
        if advance is not None:
            advance(len(self.households) % 1000)

    def _history(self, h: Household) -> None:
        r = self.rng
        plan = self._plan(h) if h.registered_year is not None else {}
        if h.registered_year is None and r.random() >= 0.45:
            return  # a household no department ever reports on
        for year in range(self.y0, self.y1 + 1):
            reg = h.registered_year
            self._demography(h, year)
            if reg is not None and year >= reg:
                self._registered_year(h, year, plan)
            else:
                self._general_year(h, year, plan)
        if h.registered_year is not None:
            self._assign_cadres_visits(h, plan)

    def _plan(self, h: Household) -> dict:
        """Exit year, returns, relocation and support of a registered household."""
        r = self.rng
        reg = h.registered_year
        exit_year = r.choices([2016, 2017, 2018, 2019, 2020], [15, 25, 25, 25, 10])[0]
        exit_year = max(exit_year, reg)
        if exit_year > min(self.y1, 2020):
            exit_year = None
        returns: dict[int, int | None] = {}
        if exit_year is not None and exit_year < self.y1 and r.random() < 0.04:
            ry = r.randint(exit_year + 1, self.y1)
            again = ry + r.randint(1, 2)
            returns[ry] = again if again <= self.y1 else None
        reloc = None
        y_lo, y_hi = max(2017, self.y0, reg), min(2019, self.y1)
        if y_lo <= y_hi and r.random() < 0.03:
            villages = self.county.villages
            target = villages[r.randrange(len(villages))].code
            if target == h.village:
                target = next(v.code for v in villages if v.code != h.village)
            reloc = (self._day(r.randint(y_lo, y_hi), 8, 10), target)
            h.reloc = reloc
        return {"exit": exit_year, "returns": returns, "dibao": r.random() < 0.2, "reloc": reloc}

    def _status_in(self, plan: dict, year: int) -> str:
        if "exit" not in plan:
            return "non_registered"
        ex = plan["exit"]
        if ex is None or year < ex:
            return "poor"
        status = "exited"
        for ry, again in plan["returns"].items():
            if year >= ry and (again is None or year < again):
                status = "returned"
        return status

    def _demography(self, h: Household, year: int) -> None:
        """Deaths, marriages out and births of the year (public security)."""
        r = self.rng
        for p in list(h.living(date(year, 1, 1))):
            age = year - p.birth.year
            p_death = 0.08 if age >= 80 else 0.03 if age >= 70 else 0.003
            if r.random() < p_death:
                self._left(h, p, self._day(year, 2, 11), "death")
            elif 22 <= age <= 30 and p.relation in ("child", "grandchild") and r.random() < 0.04:
                self._left(h, p, self._day(year, 2, 11), "marriage_out" if r.random() < 0.7 else "move_out")
        sons = [p for p in h.living(date(year, 1, 1)) if p.relation == "child" and p.sex == "M"
                and 23 <= year - p.birth.year <= 32]
        if sons and r.random() < 0.05:
            on = self._day(year, 2, 11)
            born = date(sons[0].birth.year + r.randint(-3, 2), r.randint(1, 12), r.randint(1, 28))
            bride = Person(self._rid("431224"[:4] + f"{r.randint(21, 30):02d}", born, "F"), self._name(), born, "F",
                           "other", r.choice(["normal", "normal", "skilled"]), joined=on)
            h.members.append(bride)
            self._joined(h, bride, "marriage_in")
        mothers = [p for p in h.living(date(year, 1, 1)) if p.sex == "F" and 21 <= year - p.birth.year <= 40]
        if mothers and r.random() < 0.06:
            born = self._day(year, 1, 10)
            rel = "child" if mothers[0].relation in ("head", "spouse") else "grandchild"
            sex = r.choice("MF")
            baby = Person(self._rid(h.village[:6], born, sex), self._name(), born, sex, rel, "none",
                          joined=born + timedelta(days=r.randint(10, 40)))
            h.members.append(baby)
            self._joined(h, baby, "birth")

    def _left(self, h: Household, p: Person, on: date, reason: str) -> None:
        p.left = on
        rec = self._emit("public_security", h, on, F.ps_row(h, on, p, "left", reason))
        self._fact(h, on, rec, "left", p.rid)

    def _joined(self, h: Household, p: Person, reason: str) -> None:
        on = p.joined
        rec = self._emit("public_security", h, on, F.ps_row(h, on, p, "joined", reason))
        self._fact(h, on, rec, "join", p.rid)

    def _income(self, h: Household, year: int, factor_lo: float, factor_hi: float, m0: int = 9, m1: int = 10) -> float:
        r = self.rng
        line = self.lines[year][0]
        value = float(round(line * r.uniform(factor_lo, factor_hi)))
        on = self._day(year, m0, m1)
        size = max(1, len(h.living(on)))
        rec = self._emit("poverty_office", h, on, F.po_income(h, on, year, value, size, r))
        self._fact(h, on, rec, "income", value)
        return value

    def _registered_year(self, h: Household, year: int, plan: dict) -> None:
        r = self.rng
        reg = h.registered_year
        if year == reg:
            on = self._day(year, 1, 3)
            causes = sorted(set(r.choices(_CAUSE_KEYS, _CAUSE_W, k=r.randint(1, 2))), key=_CAUSE_KEYS.index)
            members = h.living(on)
            if not members:  # nobody left to register: the household stays non-registered
                h.registered_year = None
                plan.clear()
                self._general_year(h, year, plan)
                return
            rec = self._emit("poverty_office", h, on, F.po_registered(h, on, min(year, r.choice([2014, 2014, 2015, year])),
                                                                      causes, members))
            self._fact(h, on, rec, "reg", [p.rid for p in members])
            self._housing_water_initial(h, year, plan)
            if plan["dibao"]:
                self._dibao(h, self._day(year, 3, 5))
            if len(members) == 1 and _age(members[0], on) >= 60 and r.random() < 0.5:
                self._emit("civil_affairs", h, on + timedelta(days=40),
                           F.ca_row(h, on + timedelta(days=40), members[0], "tekun_enrolled", mode="dispersed"))
            for p in members:
                if p.labour in ("weak", "lost") and r.random() < 0.5:
                    d = self._day(year, 4, 6)
                    grade = r.choice([1, 2, 3, 4])
                    self._emit("disabled_persons", h, d, F.dp_row(h, d, p, grade, r))
                    if grade <= 2:
                        self._emit("civil_affairs", h, d + timedelta(days=30),
                                   F.ca_row(h, d + timedelta(days=30), p, "disability_subsidy_granted",
                                            kind=r.choice(["living", "nursing"]), amount=r.choice([60, 70, 80])))
        status = self._status_in(plan, year)
        prev = self._status_in(plan, year - 1) if year > reg else "poor"
        self._insurance(h, year, poor=True)
        self._hospital(h, year, poor=True)
        self._education(h, year, aid=True)
        self._employment(h, year)
        # Income: below the line while poor, above it from the exit year on.
        if status == "poor" or status == "returned":
            income = self._income(h, year, 0.55, 0.95)
        else:
            income = self._income(h, year, 1.1, 2.6 if year > 2018 else 1.9)
        if status == "exited" and prev in ("poor", "returned"):
            on = self._day(year, 11, 12)
            rec = self._emit("poverty_office", h, on, F.po_status(h, on, "exited", year, None))
            self._fact(h, on, rec, "exit")
            if plan["dibao"] and r.random() < 0.4:
                self._emit("civil_affairs", h, on + timedelta(days=20),
                           F.ca_row(h, on + timedelta(days=20), h.living(on)[0] if h.living(on) else h.members[0],
                                    "dibao_terminated", reason="家庭收入超过低保标准"))
        if status == "returned" and prev == "exited":
            on = self._day(year, 11, 12)
            causes = sorted(set(r.choices(_CAUSE_KEYS[:4], k=r.randint(1, 2))), key=_CAUSE_KEYS.index)
            rec = self._emit("poverty_office", h, on, F.po_status(h, on, "returned", year, causes))
            self._fact(h, on, rec, "return")
        if r.random() < 0.7:
            on = self._day(year, 4, 9)
            self._emit("poverty_office", h, on, F.po_measure(h, on, r))
        # Monitoring from 2020: unstable exited households below 1.3 x the monitoring line.
        if year >= 2020 and status == "exited" and not plan.get("mon") and r.random() < 0.12:
            self._monitor(h, year, "unstable_exited", plan)
        elif plan.get("mon") and plan["mon"] < year and not plan.get("elim") and r.random() < 0.6:
            self._eliminate(h, year, plan)
        self._relocation(h, year, plan)
        self._assessment(h, year, status, income)

    def _general_year(self, h: Household, year: int, plan: dict) -> None:
        r = self.rng
        people = h.living(date(year, 1, 1))
        if year == 2019 and r.random() < 0.6:
            on = self._day(year, 3, 9)
            safe = r.random() < 0.95
            self._emit("water", h, on, F.water_row(h, on, safe, r))
        if people and r.random() < 0.05:
            self._employment(h, year)
        if r.random() < 0.01 and people:
            self._dibao(h, self._day(year, 2, 11))
        if year >= 2020 and r.random() < 0.02 and not plan.get("mon"):
            self._income(h, year, 1.0, 1.45, 3, 6)
            self._monitor(h, year, "edge" if r.random() < 0.8 else "sudden_hardship", plan)
            if r.random() < 0.5 and year < self.y1:
                self._eliminate(h, year + 1, plan)
        if r.random() < 0.01:
            self._assessment(h, year, "non_registered", None)

    def _monitor(self, h: Household, year: int, category: str, plan: dict) -> None:
        r = self.rng
        on = self._day(year, 7, 9)
        risks = sorted(set(r.choices(F.RISKS, k=r.randint(1, 2))), key=F.RISKS.index)
        rec = self._emit("poverty_office", h, on, F.po_monitor(h, on, category, risks))
        self._fact(h, on, rec, "mon", category)
        plan["mon"] = year

    def _eliminate(self, h: Household, year: int, plan: dict) -> None:
        on = self._day(year, 10, 12)
        rec = self._emit("poverty_office", h, on, F.po_simple(h, on, "风险消除"))
        self._fact(h, on, rec, "elim")
        plan["elim"] = year

    def _dibao(self, h: Household, on: date) -> None:
        living = h.living(on)
        if not living:
            return
        amount = float(self.rng.choice([260, 300, 320, 350, 380]))
        self._emit("civil_affairs", h, on, F.ca_row(h, on, living[0], "dibao_enrolled", amount=amount,
                                                    persons=len(living)))

    def _housing_water_initial(self, h: Household, year: int, plan: dict) -> None:
        r = self.rng
        on = self._day(year, 3, 5)
        grade = r.choices("ABCD", [30, 40, 20, 10])[0]
        self._emit("housing", h, on, F.house_row(h, on, "appraised", grade))
        exit_year = plan["exit"] or self.y1
        if grade in "CD" and not plan["reloc"]:
            fix = self._day(r.randint(year, max(year, min(exit_year, self.y1))), 6, 10)
            self._emit("housing", h, fix, F.house_row(h, fix, "renovated", r.choice("AB")))
        on = self._day(year, 4, 6)
        safe = r.random() < 0.85
        self._emit("water", h, on, F.water_row(h, on, safe, r))
        if not safe:
            fix = self._day(r.randint(year, max(year, min(exit_year, self.y1))), 7, 10)
            self._emit("water", h, fix, F.water_row(h, fix, True, r))

    def _relocation(self, h: Household, year: int, plan: dict) -> None:
        if plan["reloc"] is None or plan["reloc"][0].year != year:
            return
        on, target = plan["reloc"]
        rec = self._emit("housing", h, on, F.house_row(h, on, "relocated", target))
        self._fact(h, on, rec, "reloc", target)

    def _insurance(self, h: Household, year: int, poor: bool) -> None:
        r = self.rng
        jan = date(year, 1, 1)
        for p in h.living(jan):
            on = jan + timedelta(days=r.randrange(5, 40))
            if not _alive(p, on):
                continue
            self._emit("hi_enrolment", h, on, F.hi_enrol(h, on, p, year, poor))
            if r.random() < 0.015:
                lapse = self._day(year, 6, 11)
                if p.left is None or lapse < p.left:
                    self._emit("hi_enrolment", h, lapse, F.hi_lapse(h, lapse, p, year))

    def _hospital(self, h: Household, year: int, poor: bool) -> None:
        r = self.rng
        for p in h.living(date(year, 1, 1)):
            age = year - p.birth.year
            if r.random() < (0.15 if age >= 65 else 0.05):
                on = self._day(year, 1, 11)
                if p.left is not None and on >= p.left:
                    continue
                total = round(min(r.lognormvariate(8.6, 0.9), 300_000.0), 2)
                basic = round(total * r.uniform(0.5, 0.7), 2)
                critical = round(total * r.uniform(0.0, 0.15), 2) if total > 15000 else 0.0
                assist = round(total * r.uniform(0.05, 0.15), 2) if poor else 0.0
                oop = round(total - basic - critical - assist, 2)
                self._emit("hi_settlements", h, on, F.hi_settle(h, on, p, total, basic, critical, assist, oop))
                if oop > 5000 and r.random() < 0.4:
                    d = on + timedelta(days=r.randrange(15, 60))
                    self._emit("civil_affairs", h, d, F.ca_row(h, d, p, "temporary_assistance_granted",
                                                               amount=float(min(20000, round(oop * 0.3, -2) + 500))))

    def _education(self, h: Household, year: int, aid: bool) -> None:
        r = self.rng
        sept = date(year, 9, 1)
        for p in h.living(sept):
            stage = F.stage_for_age(_age(p, sept))
            if stage is None:
                continue
            on = sept + timedelta(days=r.randrange(0, 10))
            if not _alive(p, on + timedelta(days=130)):
                continue
            self._emit("education", h, on, F.edu_row(h, on, p, "enrolled", stage, r))
            if aid and stage != "preschool" and r.random() < 0.4:
                d = on + timedelta(days=r.randrange(30, 90))
                self._emit("education", h, d, F.edu_row(h, d, p, "aid", stage, r))
            if stage in ("primary", "junior_middle", "senior_high") and r.random() < 0.01:
                d = on + timedelta(days=r.randrange(30, 80))
                self._emit("education", h, d, F.edu_row(h, d, p, "dropped", stage, r))
                if r.random() < 0.75:
                    d2 = d + timedelta(days=r.randrange(10, 40))
                    self._emit("education", h, d2, F.edu_row(h, d2, p, "returned", stage, r))

    def _employment(self, h: Household, year: int) -> None:
        r = self.rng
        for p in h.living(date(year, 3, 1)):
            age = _age(p, date(year, 3, 1))
            if 18 <= age <= 55 and p.labour in ("normal", "skilled") and r.random() < 0.25:
                on = self._day(year, 2, 4)
                if not _alive(p, on):
                    continue
                self._emit("human_resources", h, on, F.hr_row(h, on, p, True, r))
                if r.random() < 0.3:
                    end = self._day(year, 8, 12)
                    if p.left is None or end < p.left:
                        self._emit("human_resources", h, end, F.hr_row(h, end, p, False, r))

    def _assessment(self, h: Household, year: int, status: str, income: float | None) -> None:
        r = self.rng
        if year > 2020 or (status != "non_registered" and r.random() >= 0.03):
            return
        on = self._day(year, 10, 12)
        batch = f"{year}年度省级成效考核第三方评估"
        if status == "non_registered":
            finding = "missed" if r.random() < 0.1 else "correct"
        else:
            finding = r.choices(["correct", "wrongly_identified", "wrongly_exited"], [96, 2, 2 if status == "exited" else 0])[0]
        self._emit("assessment", h, on, F.as_row(h, on, "checked", batch, finding=finding))
        satisfied = None
        if status != "non_registered":
            satisfied = r.random() < 0.97
            self._emit("assessment", h, on, F.as_row(h, on, "surveyed", batch, satisfied=satisfied))
        self.assessment_rows.append((h.hid, year, batch, finding, "" if satisfied is None else int(satisfied)))

    def _assign_cadres_visits(self, h: Household, plan: dict) -> None:
        """One cadre (≤ 5 households each) from registration, one visit a month while assigned."""
        r = self.rng
        start = date(h.registered_year, 2, 1) + timedelta(days=r.randrange(20))
        periods: list[tuple[str, date, date | None]] = []
        cadre = self._cadre()
        change = r.random() < 0.1 and h.registered_year + 1 < self.y1
        if change:
            end = self._day(r.randint(h.registered_year + 1, self.y1 - 1), 3, 9)
            periods.append((cadre, start, end))
            new = self._cadre()
            periods.append((new, end + timedelta(days=1), None))
        else:
            periods.append((cadre, start, None))
        for cid, d0, d1 in periods:
            unit = self._cadre_unit(cid)
            rec = self._emit("poverty_office", h, d0, F.po_cadre(h, d0, cid, unit, True))
            self._fact(h, d0, rec, "cadre+", cid)
            if d1 is not None:
                rec = self._emit("poverty_office", h, d1, F.po_cadre(h, d1, cid, unit, False))
                self._fact(h, d1, rec, "cadre-", cid)
            y, m = d0.year, d0.month + 1
            last = d1 or date(self.y1, 12, 31)
            while (y, m) <= (last.year, last.month):
                if m > 12:
                    y, m = y + 1, 1
                    continue
                on = date(y, m, r.randint(3, 26))
                if on >= last and d1 is not None:
                    break
                purpose = F.VISIT_PURPOSE[m]
                self._emit("po_visits", h, on, ("入户走访", h.hid, h.region(on), on.isoformat(), cid, purpose))
                m += 1

    def _cadre(self) -> str:
        c = self._cadres
        if not c or c[-1][2] >= 5:
            c.append((f"C{len(c) + 1:05d}", _UNITS[len(c) % len(_UNITS)], 0))
        cid, unit, load = c[-1]
        c[-1] = (cid, unit, load + 1)
        return cid

    def _cadre_unit(self, cid: str) -> str:
        return _UNITS[(int(cid[1:]) - 1) % len(_UNITS)]
