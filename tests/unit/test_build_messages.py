"""dbt and chdb errors reach the user as one sentence saying what failed and what to run."""

from __future__ import annotations

import os
import subprocess
import sys

from fupin.build import failure_sentences, warehouse_sentence


def test_a_missing_table_or_database_names_the_command_to_run():
    raw = "Code: 60. DB::Exception: Unknown table expression identifier 'fupin.events_latest' in scope SELECT ..."
    sentence = warehouse_sentence(raw, "dbt model stg_water")
    assert sentence.startswith("dbt model stg_water failed: the warehouse has no table fupin.events_latest")
    assert "run 'fupin up'" in sentence and "\n" not in sentence and "Code: 60" not in sentence
    db = warehouse_sentence("Code: 81. DB::Exception: Database fupin does not exist. (UNKNOWN_DATABASE)", "x")
    assert "has no database fupin" in db


def test_failed_nodes_become_one_sentence_each():
    result = {"failed": [
        {"name": "unique_census_key", "type": "test", "status": "fail", "failures": 3, "message": "Got 3 results"},
        {"name": "census", "type": "model", "status": "error", "message": "Code: 47. Unknown identifier x\nstack..."},
    ], "error": None}  # fmt: skip
    first, second = failure_sentences(result)
    assert first.startswith("dbt test unique_census_key found 3 failing row(s)")
    assert second.startswith("dbt model census failed (Code: 47. Unknown identifier x)") and "--verbose" in second


def test_build_on_a_fresh_data_directory_says_what_to_do(tmp_path):
    """The issue's case: dbt's raw 'Unknown table expression identifier' after 56 s; now one sentence at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_")}
    env["FUPIN_DATA_DIR"] = str(tmp_path / "fresh")
    proc = subprocess.run([sys.executable, "-m", "fupin.cli", "build"], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 1
    assert "has no database fupin (a fresh data directory?): run 'fupin up'" in proc.stderr
    assert "Traceback" not in proc.stderr
