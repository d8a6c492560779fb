"""The one validity judgement (fupin/validity.py): every rule of events.md's validity section."""

from __future__ import annotations

import json
from datetime import date

import orjson
import pytest

from fupin import privacy, validity
from producers.identity import make_resident_id
from producers.simulator import hostile as H

BASES = H.schema_examples()
RID = make_resident_id("431224", date(1970, 3, 2), 5, "M")
#: A valid envelope to break one field at a time.
INCOME = json.loads(
    (H.PROJECT_ROOT / "schemas/poverty_office/income_assessed/examples/1/valid-plain.json").read_text()
)


def judge(env_or_raw, key: bytes | None = b"", department: str | None = "poverty_office") -> dict:
    raw = env_or_raw if isinstance(env_or_raw, bytes) else orjson.dumps(env_or_raw)
    if key == b"":
        key = INCOME["household_id"].encode()
    return validity.judge(raw, key, department)


def reason(env_or_raw, key: bytes | None = b"", department: str | None = "poverty_office") -> str:
    with pytest.raises(validity.Invalid) as caught:
        judge(env_or_raw, key, department)
    return caught.value.reason


def test_every_valid_example_is_judged_valid():
    for env in BASES:
        assert validity.judge(orjson.dumps(env), env["household_id"].encode(), env["department"]) == env


@pytest.mark.parametrize("kind", [k for k in H.INVALID_KINDS if k != "conflicting_duplicate"])
def test_every_invalid_kind_of_the_hostile_corpus_is_refused_with_a_reason(kind):
    messages = [m for m in H.corpus(3, 4 * len(H.KINDS), BASES) if m.kind == kind]
    assert messages
    for m in messages:
        with pytest.raises(validity.Invalid) as caught:
            validity.judge(m.value, m.key, m.topic.rsplit(".", 1)[-1])
        assert caught.value.reason
        assert not privacy.find(caught.value.reason), "a reason must not echo a raw identifier"


@pytest.mark.parametrize("kind", ["duplicate", "duplicate_reserialized", "valid_unknown_region"])
def test_valid_kinds_pass_the_judgement(kind):
    for m in [m for m in H.corpus(3, 4 * len(H.KINDS), BASES) if m.kind == kind]:
        env = validity.judge(m.value, m.key, m.topic.rsplit(".", 1)[-1])
        assert env["event_id"] == m.event_id


def test_reasons_name_the_rule():
    raw = orjson.dumps(INCOME)
    assert "integer literal" in reason(raw.replace(b'"schema_version":1', b'"schema_version":1.0'))
    assert "integer literal" in reason(raw.replace(b'"schema_version":1', b'"schema_version":1e0'))
    assert "repeated key 'event_id'" in reason(raw[:-1] + b',"event_id":"x"}')
    assert "repeated key 'year'" in reason(raw.replace(b'"payload":{', b'"payload":{"year":2019,'))
    assert "U+0000" in reason(raw.replace(b'"source_system":"', b'"source_system":"\\u0000'))
    assert "U+0008" in reason(raw.replace(b'"source_system":"', b'"source_system":"\\b'))
    assert "lies outside 1900-01-01" in reason({**INCOME, "occurred_at": "1899-12-31"})
    assert "lies outside 1900-01-01" in reason({**INCOME, "occurred_at": "2300-01-01"})
    assert "more than one day after recorded_at" in reason({**INCOME, "occurred_at": "2020-06-18"})
    assert "message key: missing" in reason(INCOME, key=None)
    assert "is not the envelope's household_id" in reason(INCOME, key=b"H-other")
    assert "does not belong on the topic" in reason(INCOME, department="water")
    with pytest.raises(validity.Invalid, match="tombstone"):
        validity.judge(None, b"k", None)
    assert "not valid JSON" in reason(b"{oops")


def test_tab_newline_and_return_are_allowed_and_a_fact_may_be_recorded_a_day_early():
    env = {**INCOME, "source_system": "a\tb\nc\rd", "occurred_at": "2020-06-17"}  # recorded 06-16 09:30+08
    assert judge(env)["source_system"] == "a\tb\nc\rd"
    assert "more than one day" in reason({**INCOME, "occurred_at": "2020-06-17T02:00:00+00:00"})


@pytest.mark.parametrize("text", [f"ID {RID}", "tel:13912345678", "old 431224700302011", f"{RID}。"])
def test_raw_identifiers_in_free_text_are_refused_without_echo(text):
    why = reason({**INCOME, "source_system": text})
    assert "raw identifier" in why and "source_system" in why
    assert RID not in why and "13912345678" not in why


def test_identifiers_inside_longer_runs_and_fixed_fields_are_not_findings():
    for text in ("a13912345678", "139123456789", f"{RID}1", "1391234567"):
        assert judge({**INCOME, "source_system": text})
    # A household number of 11 digits is its format, not a phone number.
    env = {**INCOME, "household_id": "13912345678"}
    assert validity.judge(orjson.dumps(env), b"13912345678", "poverty_office")
    # A digit spelled as an escape is still a digit.
    escaped = orjson.dumps({**INCOME, "source_system": "tel 1391234567#"}).replace(b"#", b"\\u0038")
    assert "raw identifier" in reason(escaped)


def test_fingerprint_is_the_content_not_the_bytes():
    pretty = orjson.loads(json.dumps(INCOME, indent=2))
    assert validity.fingerprint(pretty) == validity.fingerprint(INCOME)
    assert validity.fingerprint({**INCOME, "person_id": None}) == validity.fingerprint(
        {k: v for k, v in INCOME.items() if k != "person_id"}
    )
    other = {**INCOME, "payload": {**INCOME["payload"], "net_income_per_capita": 3101}}
    assert validity.fingerprint(other) != validity.fingerprint(INCOME)
    assert INCOME["event_id"] in validity.conflict_reason(INCOME["event_id"], validity.fingerprint(INCOME))


def test_dead_letter_bytes_are_redacted_and_say_so():
    raw = orjson.dumps({**INCOME, "source_system": f"x {RID} y 13912345678"})
    redacted, did = validity.dead_letter_value(raw)
    assert did and RID.encode() not in redacted and b"13912345678" not in redacted
    assert redacted.count(privacy.REDACTED.encode()) == 2
    assert validity.dead_letter_value(orjson.dumps(INCOME)) == (orjson.dumps(INCOME), False)
