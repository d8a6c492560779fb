"""dbt's functional-test framework on a chdb profile.

chdb binds one data path per process, so each test process (a pytest-xdist worker, or pytest
itself) gets a fresh one, removed at exit; dbt's framework gives every test class its own schema
(a ClickHouse database) in it and drops it after. ``tests/skips.py`` holds the one list of the
standard tests that cannot apply on chdb.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

os.environ["TZ"] = "UTC"  # dbt's snapshot and timestamp tests compare with UTC
time.tzset()

pytest_plugins = ["dbt.tests.fixtures.project"]

_ROOT = Path(tempfile.mkdtemp(prefix="dbt-chdb-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
#: This process's chdb data path (the first and only one chdb opens here).
CHDB_PATH = _ROOT / "chdb"


@pytest.fixture(scope="class")
def dbt_profile_target() -> dict:
    return {"type": "chdb", "path": str(CHDB_PATH), "threads": 4}


#: The quick subset `make test` runs (``-m fast``): these directories of ``tests/adapter/``.
FAST = {"basic", "incremental", "snapshots", "seeds", "docs", "unit_testing"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from skips import skip_reason

    for item in items:
        parts = Path(item.path).relative_to(Path(__file__).parent).parts
        if len(parts) > 2 and parts[0] == "adapter" and parts[1] in FAST:
            item.add_marker(pytest.mark.fast)
        reason = skip_reason(item.nodeid)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
