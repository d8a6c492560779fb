"""SDK envelope building and validation (no broker: nothing is sent)."""

from __future__ import annotations

import re
import uuid

import pytest

from fupin.config import SettingsError, load_settings
from producers.identity import make_resident_id
from producers.sdk import Publisher, Rejected

RID = "11010519491231002X"


@pytest.fixture
def pub(settings):
    return Publisher(settings, "health_insurance", "his")


def _enrol(pub, **kw):
    args = dict(event_type="insurance_enrolled", household_id="H1", region_code="431224104201",
                occurred_at="2019-01-05", payload={"year": 2019, "schemes": ["basic"]}, resident_id=RID)
    args.update(kw)
    return pub.build(**args)


def test_envelope_defaults_and_pseudonym(pub):
    env = _enrol(pub)
    assert uuid.UUID(env["event_id"]).version == 4
    assert env["event_type"] == "health_insurance.insurance_enrolled"
    assert env["department"] == "health_insurance" and env["source_system"] == "his"
    assert re.fullmatch(r"P[0-9a-f]{32}", env["person_id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", env["recorded_at"])
    assert RID not in repr(env)


def test_caller_ids_and_recording_time_are_kept(pub):
    eid = str(uuid.uuid4())
    env = _enrol(pub, event_id=eid, recorded_at="2019-01-06T09:00:00+08:00")
    assert env["event_id"] == eid and env["recorded_at"] == "2019-01-06T09:00:00+08:00"


def test_wrong_checksum_rejected_with_reason(pub):
    with pytest.raises(Rejected) as err:
        _enrol(pub, resident_id=RID[:-1] + "1")
    assert "checksum" in err.value.reason and RID[:-1] not in err.value.reason


def test_contract_violation_rejected(pub):
    with pytest.raises(Rejected, match="year|schemes"):
        _enrol(pub, payload={"year": "2019", "schemes": ["basic"]})
    with pytest.raises(Rejected):
        _enrol(pub, event_type="no_such_event")


def test_members_are_pseudonymized_with_birth_and_sex(settings):
    pub = Publisher(settings, "poverty_office")
    from datetime import date

    child = make_resident_id("431224", date(2010, 6, 1), 3, "M")
    env = pub.build("household_registered", "H1", "431224104201", "2016-01-02",
                    {"year_identified": 2014, "poverty_causes": ["illness"],
                     "members": [{"resident_id": RID, "relation": "head", "labour_capacity": "weak"},
                                 {"resident_id": child, "relation": "child", "labour_capacity": "none"}]})
    m = env["payload"]["members"]
    assert [x["birth_date"] for x in m] == ["1949-12-31", "2010-06-01"]
    assert [x["sex"] for x in m] == ["F", "M"]
    assert all(re.fullmatch(r"P[0-9a-f]{32}", x["person_id"]) and "resident_id" not in x for x in m)


def test_person_joined_gets_birth_date_and_sex_from_the_id(settings):
    pub = Publisher(settings, "public_security")
    env = pub.build("person_joined", "H1", "431224104201", "2020-02-02",
                    {"relation": "child", "reason": "birth"}, resident_id=RID)
    assert env["payload"]["birth_date"] == "1949-12-31" and env["payload"]["sex"] == "F"


def test_envelope_of_another_department_is_rejected(pub, settings):
    other = Publisher(settings, "water").build("water_assessed", "H1", "431224104201", "2020-01-01",
                                               {"safe": True, "issues": []})
    with pytest.raises(Rejected, match="does not match"):
        pub.check(other)


def test_no_key_no_publisher(tmp_path):
    s = load_settings(env={}, data_dir=str(tmp_path))
    with pytest.raises(SettingsError, match="pseudonym_key"):
        Publisher(s, "water")


def test_rejection_reasons_are_redacted():
    assert Rejected(f"bad {RID} and 13912345678 in 431224104201").reason == (
        "bad [redacted] and [redacted] in 431224104201"
    )


@pytest.mark.parametrize("text", [f"终止原因: 户主 {RID} 已死亡", "联系 13912345678", "旧证 110105491231002",
                                  f"{RID.lower()}"])  # fmt: skip
def test_raw_identifier_in_any_string_is_refused_naming_the_field(settings, text):
    pub = Publisher(settings, "civil_affairs", "mz")
    with pytest.raises(Rejected, match=r"field payload\.reason holds what looks like a raw identifier") as exc:
        pub.build("dibao_terminated", "H1", "431224104201", "2019-01-05", {"reason": text})
    assert exc.value.field == "payload.reason"
    assert text not in exc.value.reason and RID not in str(exc.value)
    env = pub.build("dibao_terminated", "H1", "431224104201", "2019-01-05", {"reason": "家庭收入超标"})
    with pytest.raises(Rejected, match=r"field source_system"):
        pub.check({**env, "source_system": "mz 13912345678"})
    with pytest.raises(Rejected, match=r"field payload\.reason"):
        pub.check({**env, "payload": {"reason": text}})


def test_fields_of_fixed_format_are_not_checked_and_longer_runs_pass(settings):
    pub = Publisher(settings, "civil_affairs", "mz")
    env = pub.build("dibao_terminated", "H13912345678", "431224104201", "2019-01-05",
                    {"reason": "批次 2019139123456789 号文件"})  # fmt: skip
    assert env["payload"]["reason"].startswith("批次")
