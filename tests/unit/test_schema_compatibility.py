"""Within a type, a higher version only adds optional fields: the folder, and broken pairs."""

from __future__ import annotations

import json
import shutil

import pytest

from fupin import contract
from fupin.contract import SCHEMAS_DIR, compatibility_problems

TYPE_DIR = ("poverty_office", "income_assessed")


def test_schemas_folder_is_compatible():
    assert compatibility_problems() == []


def test_folder_has_a_second_version_to_check():
    assert any(len(versions) > 1 for versions in contract.EVENT_TYPES.values())


@pytest.fixture
def folder(tmp_path):
    """A copy of schemas/ and a helper that writes version 2 of income_assessed from a change."""
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, root, ignore=shutil.ignore_patterns("examples"))

    def write_v2(change, name="2.json", type_dir=TYPE_DIR):
        folder = root.joinpath(*type_dir)
        schema = json.loads((folder / "1.json").read_text())
        change(schema)
        (folder / name).write_text(json.dumps(schema))
        return compatibility_problems(root)

    return write_v2


def test_adding_an_optional_field_is_compatible(folder):
    def add_optional(s):
        s["properties"]["method"] = {"type": "string", "enum": ["survey", "declaration"]}

    assert folder(add_optional) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["properties"].pop("household_size"), "payload.household_size: field removed"),
        (
            lambda s: s["properties"].__setitem__("year", {"type": "string"}),
            "payload.year: type changed from 'integer' to 'string'",
        ),
        (
            lambda s: (
                s["properties"].__setitem__("method", {"type": "string"}),
                s["required"].append("method"),
            ),
            "payload.method: new field is required",
        ),
        (lambda s: s["required"].append("components"), "payload.components: became required"),
        (lambda s: s["required"].remove("year"), "payload.year: no longer required"),
        (
            lambda s: s["properties"]["components"]["properties"].pop("wage"),
            "payload.components.wage: field removed",
        ),
        (
            lambda s: s["properties"].__setitem__(
                "net_income_per_capita", {"type": "number", "minimum": 100}
            ),
            "payload.net_income_per_capita: minimum changed from 0 to 100",
        ),
        (lambda s: s.__setitem__("additionalProperties", True), "payload: additionalProperties changed"),
        (lambda s: s.__setitem__("x-person-event", True), "x-person-event changed"),
    ],
    ids=[
        "removal",
        "type-change",
        "new-required",
        "became-required",
        "no-longer-required",
        "nested-removal",
        "bound-change",
        "opened",
        "person-flag",
    ],
)
def test_incompatible_change_is_caught(folder, change, expected):
    problems = folder(change)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("poverty_office.income_assessed 1→2: ") for p in problems)


def test_enum_narrowing_behind_a_fragment_is_caught(folder):
    """A $ref to a shared enumeration replaced by a narrower one, deep in an array of members."""

    def narrow(s):
        s["properties"]["members"]["items"]["properties"]["relation"] = {"type": "string", "enum": ["head"]}

    problems = folder(narrow, type_dir=("poverty_office", "household_registered"))
    assert any(
        p.startswith("poverty_office.household_registered 1→2: payload.members[].relation: enum changed")
        for p in problems
    ), problems


def test_version_gap_is_caught(folder):
    problems = folder(lambda s: None, name="3.json")
    assert "poverty_office.income_assessed: versions [1, 3] are not 1..2" in problems
