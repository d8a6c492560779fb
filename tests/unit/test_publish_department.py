"""`fupin publish` without --department: the department from a JSONL file's envelopes, else from
the folder the file is in; neither is a usage error that says to pass --department."""

from __future__ import annotations

import orjson
import pytest
from click import UsageError

from producers.cli import department_of, files_to_publish


def envelopes(path, *departments: str) -> None:
    lines = [
        {"event_id": f"e{n}", "event_type": f"{d}.x", "department": d, "household_id": "H1", "payload": {}}
        for n, d in enumerate(departments)
    ]
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))


def test_the_envelopes_name_the_department_wherever_the_file_lies(tmp_path):
    (tmp_path / "housing").mkdir()
    inbox = tmp_path / "housing" / "batch.jsonl"  # a folder of another department: the envelopes win
    envelopes(inbox, "water", "water")
    assert department_of(inbox) == "water"
    assert files_to_publish(None, (inbox,), None) == [("water", inbox)]
    assert files_to_publish("housing", (inbox,), None) == [("housing", inbox)]  # --department is asked for


def test_a_department_file_takes_its_folder_and_an_unknown_one_is_refused(tmp_path):
    (tmp_path / "water").mkdir()
    csv = tmp_path / "water" / "assessments.csv"
    csv.write_text("a,b\n1,2\n")
    assert department_of(csv) == "water"
    stray = tmp_path / "export.jsonl"
    stray.write_text('{"not": "an envelope"}\n')
    assert department_of(stray) is None
    with pytest.raises(UsageError, match="pass --department"):
        files_to_publish(None, (stray,), None)
    odd = tmp_path / "odd.jsonl"
    envelopes(odd, "tax_office")  # not a department of the platform
    assert department_of(odd) is None
