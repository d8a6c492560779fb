"""The README's step-by-step block runs as written on a fresh copy of the repository.

A small county (300 households): a few minutes. What the check does is in readme_steps.py.
"""

from __future__ import annotations

import pytest
from readme_steps import ReadmeCheckError, matches, readme_steps, run_readme


def test_the_readme_block_is_a_console_session_with_expected_output():
    steps = readme_steps()
    commands = [s.command for s in steps]
    assert commands[0] == "source .venv/bin/activate" and commands[-1].startswith("fupin down")
    assert any(c.startswith("fupin publish --manifest") for c in commands)
    assert sum(len(s.expected) for s in steps) >= 10
    assert matches("dbt build passed in …", "dbt build passed in 12.5s (80 nodes)")
    assert not matches("published 12 files: 12,173 rows, 0 rejected", "published 12 files: 12,173 rows, 3 rejected")


@pytest.mark.slow
def test_readme_step_by_step_runs_as_written(tmp_path):
    try:
        run_readme(tmp_path, echo=False)
    except ReadmeCheckError as exc:
        pytest.fail(str(exc))
