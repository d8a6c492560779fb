"""fupin.contract: the envelope rules, decode, semantic checks, versions, and never a crash."""

from __future__ import annotations

import copy
import json
import random
import uuid

import orjson
import pytest

from fupin import contract
from fupin.contract import ContractError, decode, validate
from fupin.topics import DEPARTMENTS

PERSON = "P" + "0123456789abcdef" * 2


def envelope(**changes) -> dict:
    base = {
        "event_id": "6f1c2a44-9f0e-4c55-8d1e-2b7a1f3c9e01",
        "event_type": "poverty_office.income_assessed",
        "schema_version": 1,
        "department": "poverty_office",
        "source_system": "fupin-test",
        "household_id": "H431224104201-0007",
        "person_id": None,
        "region_code": "431224104201",
        "occurred_at": "2020-06-15",
        "recorded_at": "2020-06-16T09:30:00+08:00",
        "payload": {"year": 2020, "net_income_per_capita": 3100, "household_size": 3},
    }
    base.update(changes)
    return base


def hospital(**payload) -> dict:
    parts = {
        "total_cost": 1000.0,
        "basic_paid": 600.0,
        "critical_illness_paid": 100.0,
        "assistance_paid": 50.0,
        "out_of_pocket": 250.0,
    }
    parts.update(payload)
    return envelope(
        event_type="health_insurance.hospitalization_settled",
        department="health_insurance",
        person_id=PERSON,
        payload=parts,
    )


def reason(env) -> str:
    with pytest.raises(ContractError) as caught:
        validate(env)
    return caught.value.reason


def test_validate_returns_the_same_object():
    env = envelope()
    assert validate(env) is env


def test_contract_error_is_a_value_error_with_a_reason():
    err = ContractError("payload.x: bad")
    assert isinstance(err, ValueError) and err.reason == "payload.x: bad" and str(err) == "payload.x: bad"


def test_reason_names_the_field_and_the_rule():
    env = envelope(payload={"year": 2020, "net_income_per_capita": -5, "household_size": 3})
    assert reason(env) == "payload.net_income_per_capita: -5 is less than the minimum of 0"


@pytest.mark.parametrize(
    "event_id",
    ["6F1C2A44-9F0E-4C55-8D1E-2B7A1F3C9E01", str(uuid.uuid4()), str(uuid.uuid5(uuid.NAMESPACE_URL, "x"))],
)
def test_event_id_any_uuid(event_id):
    validate(envelope(event_id=event_id))


@pytest.mark.parametrize(
    "event_id",
    [
        "6f1c2a449f0e4c558d1e2b7a1f3c9e01",
        "{6f1c2a44-9f0e-4c55-8d1e-2b7a1f3c9e01}",
        "6f1c2a44-9f0e-4c55-8d1e-2b7a1f3c9e0g",
        "",
        12345,
        None,
    ],
)
def test_event_id_must_be_a_uuid(event_id):
    assert reason(envelope(event_id=event_id)).startswith("event_id: ")


def test_department_must_match_the_prefix():
    assert reason(envelope(department="civil_affairs")) == (
        "department: 'civil_affairs' does not match the prefix of event_type 'poverty_office.income_assessed'"
    )


def test_department_must_be_known():
    assert reason(envelope(department="finance")).startswith(
        "department: 'finance' is not one of poverty_office"
    )


@pytest.mark.parametrize(
    "code",
    [
        "43122410420",
        "4312241042011",
        "43122410420a",
        "431224104201\n",
        "４３１２２４１０４２０１",
        431224104201,
    ],
)
def test_region_code_is_12_ascii_digits(code):
    assert reason(envelope(region_code=code)).startswith("region_code: ")


def test_new_region_code_is_12_digits_too():
    env = envelope(
        event_type="housing.household_relocated",
        department="housing",
        payload={"new_region_code": "4312240010"},
    )
    assert reason(env).startswith("payload.new_region_code: '4312240010' has 10 characters")


@pytest.mark.parametrize(
    "person_id",
    [
        "P" + "0123456789ABCDEF" * 2,
        "p" + "0123456789abcdef" * 2,
        "P" + "0" * 31,
        "P" + "0" * 33,
        "43122419680302123X",
        "",
    ],
)
def test_person_id_shape(person_id):
    assert reason(envelope(person_id=person_id)).startswith(f"person_id: {person_id!r} is not a pseudonym")


def test_person_id_null_or_absent_on_a_household_event():
    validate(envelope(person_id=None))
    env = envelope()
    del env["person_id"]
    validate(env)
    validate(envelope(person_id=PERSON))


@pytest.mark.parametrize("event_type", sorted(contract.PERSON_EVENT_TYPES))
def test_person_events_require_a_person(event_type):
    department, name = event_type.split(".")
    path = sorted((contract.SCHEMAS_DIR / department / name / "examples" / "1").glob("valid-*.json"))[0]
    env = json.loads(path.read_text())
    validate(env)
    assert (
        reason(dict(env, person_id=None))
        == f"person_id: required (not null) for the person event {event_type}"
    )
    del env["person_id"]
    assert reason(env).startswith("person_id: required (not null)")


def test_unknown_event_type():
    env = envelope(event_type="poverty_office.household_vanished")
    assert reason(env) == "event_type: 'poverty_office.household_vanished' is not a known event type"


def test_unknown_version():
    assert reason(envelope(schema_version=2)) == (
        "schema_version: 2 is not a known version of poverty_office.income_assessed (known: 1)"
    )


@pytest.mark.parametrize("version", [0, -1, "1", 1.5, True, None])
def test_schema_version_is_an_integer_from_one(version):
    assert reason(envelope(schema_version=version)).startswith("schema_version: ")


def test_unknown_payload_key():
    env = envelope(payload={"year": 2020, "net_income_per_capita": 1, "household_size": 1, "name": "张三"})
    assert reason(env) == "payload: unknown key 'name' (not in the schema)"


def test_unknown_envelope_key():
    assert (
        reason(envelope(id_number="43122419680302123X"))
        == "envelope: unknown key 'id_number' (not in the schema)"
    )


def test_source_system_at_most_64():
    validate(envelope(source_system="s" * 64))
    assert reason(envelope(source_system="s" * 65)).startswith("source_system: ")
    assert reason(envelope(source_system="")).startswith("source_system: ")


@pytest.mark.parametrize("household_id", ["H", "h-1_A", "9" * 40])
def test_household_id_pattern_accepts(household_id):
    validate(envelope(household_id=household_id))


@pytest.mark.parametrize("household_id", ["", "H" * 41, "H 1", "H/1", "户1", "H1\n", 7])
def test_household_id_pattern_rejects(household_id):
    assert reason(envelope(household_id=household_id)).startswith("household_id: ")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2020-06-15T08:00:00"),
        ("occurred_at", "2020-06-15T08:00:00Z"),
        ("occurred_at", "2020-06-15T08:00:00.123+08:00"),
        ("recorded_at", "2020-06-16T01:30:00Z"),
        ("recorded_at", "2020-06-16T01:30:00.123456-05:00"),
    ],
)
def test_times_accepted(field, value):
    validate(envelope(**{field: value}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2020-6-15"),
        ("occurred_at", "15/06/2020"),
        ("occurred_at", "2020-02-30"),
        ("occurred_at", "2020-06-15 08:00:00"),
        ("occurred_at", 20200615),
        ("recorded_at", "2020-06-16"),
        ("recorded_at", "2020-06-16T01:30:00"),
        ("recorded_at", "2020-06-16T25:30:00Z"),
        ("recorded_at", "2019-02-29T00:00:00Z"),
    ],
)
def test_times_rejected(field, value):
    assert reason(envelope(**{field: value})).startswith(f"{field}: ")


def test_missing_fields_are_named():
    for field in (
        "event_id",
        "event_type",
        "schema_version",
        "department",
        "source_system",
        "household_id",
        "region_code",
        "occurred_at",
        "recorded_at",
        "payload",
    ):
        env = envelope()
        del env[field]
        assert reason(env) == f"{field}: required field is missing", field


@pytest.mark.parametrize(
    ("total", "ok"), [(1000.0, True), (1001.0, True), (999.0, True), (1001.5, False), (998.9, False)]
)
def test_hospitalization_total_is_the_four_parts_within_one_yuan(total, ok):
    env = hospital(total_cost=total)
    if ok:
        validate(env)
    else:
        assert reason(env).startswith(f"payload.total_cost: {total} is not the sum of basic_paid + ")


def test_consumers_read_both_versions():
    """Version 2 adds optional stay dates; version 1 stays valid and still rejects them."""
    assert contract.EVENT_TYPES["health_insurance.hospitalization_settled"] == (1, 2)
    v1 = hospital()
    validate(v1)
    validate(dict(v1, schema_version=2))
    stay = dict(v1["payload"], admission_date="2020-05-28", discharge_date="2020-06-10")
    validate(dict(v1, schema_version=2, payload=stay))
    assert reason(dict(v1, payload=stay)).startswith("payload: unknown key")
    v1_fields = set(contract.load_schema("health_insurance.hospitalization_settled", 1)["properties"])
    v2_fields = set(contract.load_schema("health_insurance.hospitalization_settled", 2)["properties"])
    assert v1_fields < v2_fields


def test_decode_bytes_and_str():
    raw = orjson.dumps(envelope())
    assert decode(raw) == envelope()
    assert decode(raw.decode()) == envelope()
    assert decode(bytearray(raw)) == envelope()


@pytest.mark.parametrize("raw", [b"", b"{", b"{'a': 1}", b"\xff\xfe{}", b"NaN", '{"a": 1,}'])
def test_decode_rejects_what_is_not_json(raw):
    with pytest.raises(ContractError) as caught:
        decode(raw)
    assert caught.value.reason.startswith("not valid JSON: ")


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"[]", "an array"), (b'"x"', "a string"), (b"null", "null"), (b"3", "a number")]
)
def test_decode_rejects_what_is_not_an_object(raw, kind):
    with pytest.raises(ContractError) as caught:
        decode(raw)
    assert caught.value.reason == f"envelope: expected a JSON object, got {kind}"


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), float("nan"), b"bytes", (1, 2)],
    ids=["set", "object", "nan", "bytes", "tuple"],
)
def test_values_json_cannot_carry_are_a_contract_error(value):
    env = envelope(payload={"year": 2020, "net_income_per_capita": value, "household_size": 3})
    assert reason(env).startswith("payload.net_income_per_capita")


def test_mutated_envelopes_never_crash():
    """Random damage to valid examples gives a pass or a ContractError with a reason, nothing else."""
    rng = random.Random(11)
    examples = [
        json.loads(p.read_text()) for p in sorted(contract.SCHEMAS_DIR.glob("*/*/examples/*/valid-*.json"))
    ]
    junk = [None, True, -1, 0, 1.5, "", "x", "2020-01-01", [], {}, [1], {"a": 1}, PERSON, 10**20]
    for _ in range(3000):
        env = copy.deepcopy(rng.choice(examples))
        target = env if rng.random() < 0.5 or not env["payload"] else env["payload"]
        key = rng.choice([*target, "extra"])
        if rng.random() < 0.2:
            target.pop(key, None)
        else:
            target[key] = rng.choice(junk)
        try:
            validate(env)
        except ContractError as exc:
            assert exc.reason and "\n" not in exc.reason


def test_load_schema_is_self_contained_and_a_copy():
    schema = contract.load_schema("poverty_office.household_registered", 1)
    assert "$ref" not in json.dumps(schema)
    assert schema["properties"]["members"]["items"]["properties"]["sex"]["enum"] == ["M", "F"]
    schema["properties"].clear()
    assert contract.load_schema("poverty_office.household_registered", 1)["properties"]
    with pytest.raises(KeyError):
        contract.load_schema("poverty_office.household_registered", 99)


def test_event_types_map_to_ascending_versions():
    for event_type, versions in contract.EVENT_TYPES.items():
        assert event_type.split(".")[0] in DEPARTMENTS
        assert versions == tuple(range(1, len(versions) + 1))
