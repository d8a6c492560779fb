"""Every example under schemas/ behaves as labelled; the folder holds exactly the catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from fupin import contract
from fupin.contract import SCHEMAS_DIR, ContractError

# Typed from ../shared/spec/events.md, not read from the folder.
CATALOGUE = {
    "poverty_office.household_registered",
    "poverty_office.income_assessed",
    "poverty_office.household_exited",
    "poverty_office.household_returned",
    "poverty_office.monitoring_enrolled",
    "poverty_office.monitoring_risk_eliminated",
    "poverty_office.cadre_assigned",
    "poverty_office.cadre_unassigned",
    "poverty_office.visit_recorded",
    "poverty_office.support_measure_recorded",
    "poverty_office.risk_verified",  # contract v1 additions (monitoring workflow)
    "assessment.household_checked",
    "assessment.satisfaction_surveyed",
    "civil_affairs.dibao_enrolled",
    "civil_affairs.dibao_terminated",
    "civil_affairs.tekun_enrolled",
    "civil_affairs.temporary_assistance_granted",
    "civil_affairs.disability_subsidy_granted",
    "health_insurance.insurance_enrolled",
    "health_insurance.insurance_lapsed",
    "health_insurance.hospitalization_settled",
    "education.student_enrolled",
    "education.student_dropped_out",
    "education.student_returned",
    "education.student_aid_granted",
    "housing.house_appraised",
    "housing.house_renovated",
    "housing.household_relocated",
    "water.water_assessed",
    "public_security.person_joined",
    "public_security.person_left",
    "human_resources.employment_started",
    "human_resources.employment_ended",
    "disabled_persons.disability_certified",
}
# The rows marked "person event" in events.md.
PERSON_EVENTS = {
    "civil_affairs.disability_subsidy_granted",
    "health_insurance.insurance_enrolled",
    "health_insurance.insurance_lapsed",
    "health_insurance.hospitalization_settled",
    "education.student_enrolled",
    "education.student_dropped_out",
    "education.student_returned",
    "education.student_aid_granted",
    "public_security.person_joined",
    "public_security.person_left",
    "human_resources.employment_started",
    "human_resources.employment_ended",
    "disabled_persons.disability_certified",
}

EXAMPLES = sorted(SCHEMAS_DIR.glob("**/examples/*/*.json"))
VALID = [p for p in EXAMPLES if p.name.startswith("valid-")]
INVALID = [p for p in EXAMPLES if p.name.startswith("invalid-")]


def _id(path: Path) -> str:
    return str(path.relative_to(SCHEMAS_DIR))


def test_catalogue_is_exactly_events_md():
    assert len(CATALOGUE) == 34
    assert set(contract.EVENT_TYPES) == CATALOGUE


def test_person_event_types_are_the_marked_rows():
    assert contract.PERSON_EVENT_TYPES == PERSON_EVENTS


def test_every_example_is_labelled():
    assert EXAMPLES and len(VALID) + len(INVALID) == len(EXAMPLES)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_every_type_and_version_has_valid_and_invalid_examples(event_type):
    department, name = event_type.split(".")
    for version in contract.EVENT_TYPES[event_type]:
        folder = SCHEMAS_DIR / department / name / "examples" / str(version)
        assert list(folder.glob("valid-*.json")), f"no valid example in {folder}"
        assert list(folder.glob("invalid-*.json")), f"no invalid example in {folder}"


@pytest.mark.parametrize("path", VALID, ids=_id)
def test_valid_example_passes(path):
    envelope = json.loads(path.read_text())
    assert contract.validate(envelope) is envelope
    assert contract.decode(path.read_bytes()) == envelope
    folder = path.relative_to(SCHEMAS_DIR).parts
    if folder[0] != "envelope":  # a type's example is of that type and version
        assert envelope["event_type"] == f"{folder[0]}.{folder[1]}"
        assert envelope["schema_version"] == int(folder[3])


@pytest.mark.parametrize("path", INVALID, ids=_id)
def test_invalid_example_fails_with_its_reason(path):
    example = json.loads(path.read_text())
    assert set(example) == {"reason", "envelope"}, "an invalid example is {reason, envelope}"
    with pytest.raises(ContractError) as caught:
        contract.validate(example["envelope"])
    assert example["reason"] in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_every_schema_file_is_valid_draft7():
    files = [p for p in SCHEMAS_DIR.rglob("*.json") if "examples" not in p.parts]
    assert len(files) >= 33 + 1 + 3
    for path in files:
        schema = json.loads(path.read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema.get("$schema") == "http://json-schema.org/draft-07/schema#", path


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_payloads_are_closed(event_type):
    """Unknown payload keys are rejected, at every level of every version."""

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for value in node.values():
                yield from objects(value)
        elif isinstance(node, list):
            for value in node:
                yield from objects(value)

    for version in contract.EVENT_TYPES[event_type]:
        schema = contract.load_schema(event_type, version)
        assert "$ref" not in json.dumps(schema)
        for node in objects(schema):
            assert node.get("additionalProperties") is False, (event_type, version)
