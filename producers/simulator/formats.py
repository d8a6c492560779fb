"""Department export layouts: each department's own file format and column names.

The layouts deliberately differ from the contract (Chinese column names, local recording
times, raw resident IDs, names and phone numbers) so that the shipped mappings in
``producers/mappings/`` are exercised; CSV, JSONL and XLSX all appear.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import orjson

RISKS = ["illness", "schooling", "disaster", "accident", "epidemic", "business_failure", "unstable_employment",
         "labour_shortage", "housing", "water", "other"]
RISKS_ZH = {"illness": "因病", "schooling": "因学", "disaster": "因灾", "accident": "意外事故", "epidemic": "疫情",
            "business_failure": "产业失败", "unstable_employment": "务工不稳", "labour_shortage": "缺劳力",
            "housing": "住房安全", "water": "饮水安全", "other": "其他"}
RELATION_ZH = {"head": "户主", "spouse": "配偶", "child": "子女", "parent": "父母", "grandchild": "孙子女",
               "sibling": "兄弟姐妹", "other": "其他"}
LABOUR_ZH = {"normal": "普通劳动力", "skilled": "技能劳动力", "weak": "弱劳动力", "lost": "丧失劳动力", "none": "无劳动力"}
STAGE_ZH = {"preschool": "学前", "primary": "小学", "junior_middle": "初中", "senior_high": "高中",
            "vocational": "中职", "tertiary": "高校"}
CATEGORY_ZH = {"unstable_exited": "脱贫不稳定户", "edge": "边缘易致贫户", "sudden_hardship": "突发严重困难户"}
MEASURE_ZH = {"industry": "产业帮扶", "employment": "就业帮扶", "education": "教育帮扶", "health": "健康帮扶",
              "housing": "住房保障", "social_assistance": "兜底保障", "finance": "金融帮扶", "other": "其他"}
PURPOSE_ZH = {"plan": "制定帮扶计划", "follow_up": "跟踪帮扶", "sales": "产销对接", "income_review": "收入核算",
              "other": "其他"}
VISIT_PURPOSE = {1: "plan", 2: "follow_up", 3: "follow_up", 4: "follow_up", 5: "other", 6: "sales", 7: "sales",
                 8: "follow_up", 9: "other", 10: "income_review", 11: "income_review", 12: "follow_up"}
VISIT_PURPOSE = {m: PURPOSE_ZH[p] for m, p in VISIT_PURPOSE.items()}
ISSUES_ZH = {"quantity": "水量", "quality": "水质", "convenience": "用水方便程度", "reliability": "供水保证率"}
PLACE_ZH = {"in_county": "县内", "in_province": "省内县外", "out_of_province": "省外"}
DISABILITY_ZH = {"visual": "视力", "hearing": "听力", "speech": "言语", "physical": "肢体", "intellectual": "智力",
                 "mental": "精神", "multiple": "多重"}
GRADE_ZH = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


@dataclass(frozen=True)
class Layout:
    department: str
    path: str
    kind: str  # csv | jsonl | xlsx
    columns: tuple[str, ...]  # serial first, recording time second (csv/xlsx)
    type_column: str
    serial_prefix: str


LAYOUTS: dict[str, Layout] = {
    "poverty_office": Layout("poverty_office", "poverty_office/records.jsonl", "jsonl", ("流水号",), "业务类型", "FP"),
    "po_visits": Layout("poverty_office", "poverty_office/visits.csv", "csv",
                        ("走访编号", "录入时间", "业务类型", "户编号", "行政区划代码", "走访日期", "帮扶人编号", "走访目的"),
                        "业务类型", "ZF"),
    "assessment": Layout("assessment", "assessment/checks.csv", "csv",
                         ("流水号", "录入时间", "业务类型", "户编号", "行政区划代码", "业务日期", "批次", "核查结论", "是否满意"),
                         "业务类型", "KP"),
    "civil_affairs": Layout("civil_affairs", "civil_affairs/assistance.csv", "csv",
                            ("业务流水号", "录入时间", "业务类型", "户编号", "行政区划代码", "业务日期", "姓名", "身份证号", "联系电话",
                             "月保障金额", "保障人数", "终止原因", "供养方式", "救助金额", "补贴类别", "补贴标准"),
                            "业务类型", "MZ"),
    "hi_enrolment": Layout("health_insurance", "health_insurance/enrolment.csv", "csv",
                           ("流水号", "录入时间", "业务类型", "户编号", "行政区划代码", "业务日期", "参保人姓名", "身份证号", "参保年度",
                            "参保险种"),
                           "业务类型", "CB"),
    "hi_settlements": Layout("health_insurance", "health_insurance/settlements.xlsx", "xlsx",
                             ("结算单号", "结算时间", "业务类型", "户编号", "行政区划代码", "出院日期", "患者姓名", "身份证号", "总费用",
                              "基本医保支付", "大病保险支付", "医疗救助支付", "个人自付"),
                             "业务类型", "JS"),
    "education": Layout("education", "education/students.csv", "csv",
                        ("记录号", "录入时间", "业务类型", "户编号", "行政区划代码", "日期", "学生姓名", "身份证号", "学段", "学校代码",
                         "资助项目", "资助金额"),
                        "业务类型", "JY"),
    "housing": Layout("housing", "housing/houses.xlsx", "xlsx",
                      ("编号", "录入时间", "业务类型", "户编号", "行政区划代码", "日期", "户主姓名", "房屋地址", "鉴定等级", "改造后等级",
                       "安置地代码"),
                      "业务类型", "ZJ"),
    "water": Layout("water", "water/assessments.csv", "csv",
                    ("评价编号", "录入时间", "业务类型", "户编号", "行政区划代码", "评价日期", "是否安全", "存在问题"),
                    "业务类型", "SL"),
    "public_security": Layout("public_security", "public_security/register.csv", "csv",
                              ("登记号", "录入时间", "业务类型", "户编号", "行政区划代码", "登记日期", "姓名", "公民身份号码", "与户主关系",
                               "变动原因"),
                              "业务类型", "GA"),
    "human_resources": Layout("human_resources", "human_resources/employment.csv", "csv",
                              ("记录号", "录入时间", "业务类型", "户编号", "行政区划代码", "日期", "姓名", "身份证号", "月工资", "就业地点"),
                              "业务类型", "RS"),
    "disabled_persons": Layout("disabled_persons", "disabled_persons/certificates.jsonl", "jsonl", ("证号",), "业务类型",
                               "CL"),
}


def stage_for_age(age: int) -> str | None:
    if 3 <= age <= 5:
        return "preschool"
    if 6 <= age <= 11:
        return "primary"
    if 12 <= age <= 14:
        return "junior_middle"
    if 15 <= age <= 17:
        return "senior_high"
    return None


# -- row builders (recording time is added by the model) --------------------------------------
def _base(h, on: date) -> tuple[str, str, str]:
    return h.hid, h.region(on), on.isoformat()


def ps_row(h, on, p, kind, reason):
    if kind == "joined":
        t = "出生登记" if reason == "birth" else "迁入登记"
        why = {"birth": "出生", "move_in": "迁入", "marriage_in": "婚入"}[reason]
    else:
        t = "死亡注销" if reason == "death" else "迁出注销"
        why = {"death": "死亡", "move_out": "迁出", "marriage_out": "婚出"}[reason]
    return (t, *_base(h, on), p.name, p.rid, RELATION_ZH[p.relation], why)


def _po(h, on, kind: str) -> dict:
    return {"业务类型": kind, "户编号": h.hid, "行政区划代码": h.region(on), "业务日期": on.isoformat()}


def po_registered(h, on, year_identified, causes, members) -> dict:
    from producers.simulator.model import CAUSES_ZH

    d = _po(h, on, "建档立卡")
    head = members[0]
    d.update({"识别年度": year_identified, "致贫原因": "、".join(CAUSES_ZH[c] for c in causes),
              "户主姓名": head.name, "联系电话": h.phone, "家庭住址": f"溆浦县{h.village[-6:-3]}乡{h.village[-3:]}村",
              "家庭成员": [{"姓名": p.name, "身份证号": p.rid, "与户主关系": RELATION_ZH[p.relation],
                         "劳动能力": LABOUR_ZH[p.labour]} for p in members]})
    return d


def po_income(h, on, year, value, size, r: random.Random) -> dict:
    d = _po(h, on, "收入核算")
    total = value * size
    wage = round(total * r.uniform(0.3, 0.7), 2)
    transfer = round(total * r.uniform(0.05, 0.25), 2)
    prop = round(total * r.uniform(0.0, 0.03), 2)
    prod = round(max(0.0, total - wage - transfer - prop), 2)
    d.update({"年度": year, "人均纯收入": value, "家庭人口": size, "工资性收入": wage, "生产经营性收入": prod,
              "财产性收入": prop, "转移性收入": transfer})
    return d


def po_status(h, on, kind, year, causes) -> dict:
    from producers.simulator.model import CAUSES_ZH

    d = _po(h, on, "脱贫" if kind == "exited" else "返贫")
    d["年度"] = year
    if causes is not None:
        d["返贫原因"] = "、".join(CAUSES_ZH[c] for c in causes)
    return d


def po_monitor(h, on, category, risks) -> dict:
    d = _po(h, on, "纳入监测")
    d.update({"监测类型": CATEGORY_ZH[category], "风险类型": "、".join(RISKS_ZH[x] for x in risks)})
    return d


def po_simple(h, on, kind) -> dict:
    return _po(h, on, kind)


def po_cadre(h, on, cadre_id, unit, assign: bool) -> dict:
    d = _po(h, on, "结对帮扶" if assign else "解除帮扶")
    d["帮扶人编号"] = cadre_id
    if assign:
        d["帮扶单位"] = unit
    return d


def po_measure(h, on, r: random.Random) -> dict:
    d = _po(h, on, "帮扶措施")
    m = r.choice(list(MEASURE_ZH))
    d["措施类型"] = MEASURE_ZH[m]
    if m in ("industry", "finance", "education", "housing"):
        d["金额"] = float(r.choice([500, 1000, 2000, 3000, 5000]))
    return d


def ca_row(h, on, p, etype, amount=None, persons=None, reason=None, mode=None, kind=None):
    t = {"dibao_enrolled": "低保纳入", "dibao_terminated": "低保退出", "tekun_enrolled": "特困供养",
         "temporary_assistance_granted": "临时救助", "disability_subsidy_granted": "残疾人两项补贴"}[etype]
    phone = h.phone
    sub = {"living": "困难残疾人生活补贴", "nursing": "重度残疾人护理补贴"}.get(kind or "", "")
    return (t, *_base(h, on), p.name, p.rid, phone,
            amount if etype == "dibao_enrolled" else "", persons if persons is not None else "",
            reason or "", {"centralised": "集中供养", "dispersed": "分散供养"}.get(mode or "", ""),
            amount if etype == "temporary_assistance_granted" else "", sub,
            amount if etype == "disability_subsidy_granted" else "")


def hi_enrol(h, on, p, year, poor):
    schemes = "基本医保|大病保险" + ("|医疗救助" if poor else "")
    return ("参保登记", *_base(h, on), p.name, p.rid, year, schemes)


def hi_lapse(h, on, p, year):
    return ("断保", *_base(h, on), p.name, p.rid, year, "")


def hi_settle(h, on, p, total, basic, critical, assist, oop):
    return ("住院结算", *_base(h, on), p.name, p.rid, total, basic, critical, assist, oop)


def edu_row(h, on, p, kind, stage, r: random.Random):
    t = {"enrolled": "入学注册", "dropped": "辍学", "returned": "劝返复学", "aid": "学生资助"}[kind]
    school = f"{h.village[:6]}{(int(h.village[6:9]) % 50):02d}{list(STAGE_ZH).index(stage)}" if kind == "enrolled" else ""
    program = {"preschool": "学前教育资助", "primary": "义务教育营养改善", "junior_middle": "寄宿生生活补助",
               "senior_high": "普通高中国家助学金"}.get(stage, "其他资助") if kind == "aid" else ""
    amount = float(r.choice([500, 1000, 1250, 2000])) if kind == "aid" else ""
    return (t, *_base(h, on), p.name, p.rid, STAGE_ZH[stage], school, program, amount)


def house_row(h, on, kind, value):
    t = {"appraised": "危房鉴定", "renovated": "改造竣工", "relocated": "易地扶贫搬迁"}[kind]
    head = h.members[0]
    addr = f"溆浦县{h.village[-6:-3]}乡{h.village[-3:]}村{int(h.hid[-3:]) % 9 + 1}组"
    return (t, *_base(h, on), head.name, addr, value if kind == "appraised" else "",
            value if kind == "renovated" else "", value if kind == "relocated" else "")


def water_row(h, on, safe: bool, r: random.Random):
    issues = "" if safe else "|".join(ISSUES_ZH[i] for i in sorted(set(r.choices(list(ISSUES_ZH), k=r.randint(1, 2))),
                                                                        key=list(ISSUES_ZH).index))
    return ("饮水安全评价", *_base(h, on), "是" if safe else "否", issues)


def hr_row(h, on, p, started: bool, r: random.Random):
    if started:
        place = r.choices(list(PLACE_ZH), [3, 3, 4])[0]
        return ("就业登记", *_base(h, on), p.name, p.rid, float(r.choice([1800, 2500, 3200, 4000, 5000])),
                PLACE_ZH[place])
    return ("失业登记", *_base(h, on), p.name, p.rid, "", "")


def dp_row(h, on, p, grade, r: random.Random) -> dict:
    return {"业务类型": "残疾评定", "户编号": h.hid, "行政区划代码": h.region(on), "评定日期": on.isoformat(),
            "姓名": p.name, "身份证号": p.rid, "残疾等级": GRADE_ZH[grade],
            "残疾类别": DISABILITY_ZH[r.choice(list(DISABILITY_ZH))]}


def as_row(h, on, kind, batch, finding=None, satisfied=None):
    t = "入户核查" if kind == "checked" else "满意度调查"
    f = {"correct": "正确", "wrongly_identified": "错评", "wrongly_exited": "错退", "missed": "漏评"}.get(finding or "", "")
    return (t, *_base(h, on), batch, f, "" if satisfied is None else ("是" if satisfied else "否"))


# -- the files -----------------------------------------------------------------------------------
@dataclass
class Files:
    rows: dict[str, list[tuple[str, object, bool]]] = field(default_factory=lambda: {k: [] for k in LAYOUTS})
    bad: list[tuple[str, str, str]] = field(default_factory=list)  # (file, serial, kind)

    def add(self, fmt: str, rec: str, row: object, late: bool = False) -> None:
        self.rows[fmt].append((rec, row, late))

    def finalize(self, rng: random.Random, bad_share: float) -> dict[str, list[object]]:
        """Rows per layout in recording order with serial numbers, bad input mixed in."""
        out: dict[str, list[object]] = {}
        for key, layout in LAYOUTS.items():
            rows = self.rows[key]
            rows.sort(key=lambda x: x[0])
            final: list[object] = []
            for i, (_, row, late) in enumerate(rows):
                serial = f"{layout.serial_prefix}{i + 1:09d}"
                final.append({layout.columns[0]: serial, **row} if isinstance(row, dict) else (serial, *row))
                if late:
                    self.bad.append((layout.path, serial, "late"))
            n_bad = round(len(final) * bad_share * 3 / 4)  # the fourth kind, late rows, came from the model
            extra = len(final)
            for j in range(n_bad):
                kind = ("malformed", "unknown_type", "duplicate")[j % 3]
                src = final[rng.randrange(len(rows))] if rows else None
                if src is None:
                    break
                if kind == "duplicate":
                    bad = src
                    serial = _serial(src, layout)
                else:
                    extra += 1
                    serial = f"{layout.serial_prefix}{extra:09d}"
                    bad = _corrupt(src, layout, serial, kind, rng)
                final.insert(rng.randrange(len(final) + 1), bad)
                self.bad.append((layout.path, serial, kind))
            out[key] = final
        return out


def _serial(row: object, layout: Layout) -> str:
    return row[layout.columns[0]] if isinstance(row, dict) else row[0]


def _corrupt(row: object, layout: Layout, serial: str, kind: str, rng: random.Random) -> object:
    """A copy with a fresh serial that the import must reject: an unknown type, or broken data."""
    if isinstance(row, dict):
        d = dict(row)
        d[layout.columns[0]] = serial
        if kind == "unknown_type":
            d["业务类型"] = "数据核对"
        elif "身份证号" in d:
            d["身份证号"] = _bad_id(d["身份证号"])
        else:
            d["行政区划代码"] = d["行政区划代码"][:-1] + "X"
        return d
    cols = layout.columns
    values = list(row)
    values[0] = serial
    if kind == "unknown_type":
        values[cols.index("业务类型")] = "数据核对"
        return tuple(values)
    id_col = next((c for c in ("身份证号", "公民身份号码") if c in cols), None)
    if id_col and layout.department in _PERSON_LAYOUTS and values[cols.index(id_col)] and rng.random() < 0.7:
        values[cols.index(id_col)] = _bad_id(values[cols.index(id_col)])
    else:
        values[cols.index("行政区划代码")] = str(values[cols.index("行政区划代码")])[:9] + "00X"
    return tuple(values)


#: Departments whose every row is a person event, so a broken resident ID always rejects the row.
_PERSON_LAYOUTS = frozenset({"health_insurance", "education", "public_security", "human_resources", "disabled_persons"})


def _bad_id(rid: str) -> str:
    last = rid[-1]
    choices = "0123456789X"
    return rid[:-1] + choices[(choices.index(last) + 1) % len(choices)]


# -- writers -------------------------------------------------------------------------------------
def write_layout(out_dir: Path, layout: Layout, rows: list[object]) -> Path:
    path = out_dir / layout.path
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout.kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(layout.columns)
            w.writerows(rows)
    elif layout.kind == "jsonl":
        with path.open("wb") as fh:
            fh.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    else:
        write_xlsx(path, layout.columns, rows)
    return path


_FIXED_TIME = "2000-01-01T00:00:00Z"


def write_xlsx(path: Path, columns: tuple[str, ...], rows: list[object]) -> None:
    """An .xlsx that is byte-identical for the same rows (fixed zip times and document dates)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(list(columns))
    for row in rows:
        ws.append(list(row))
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(created|modified)[^>]*>)[^<]*", rb"\g<1>" + _FIXED_TIME.encode(), data)
            zi = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(zi, data)
