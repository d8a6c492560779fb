"""Shared test set-up.

chdb runs one engine per process and binds it to the first data path opened, so the whole
pytest session shares one chdb path; tests isolate themselves with their own database
(``clickhouse_database``), never their own path. Tests that need a fresh engine run a subprocess.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="fupin-test-"))
os.environ.setdefault("FUPIN_DATA_DIR", str(_SESSION_DIR / "data"))
os.environ.setdefault("FUPIN_CHDB_PATH", str(_SESSION_DIR / "chdb"))
os.environ.setdefault("FUPIN_PSEUDONYM_KEY", "test-only-pseudonym-key")


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture
def settings(tmp_path):
    """Settings isolated per test: own data dir, own ClickHouse database, the session's chdb path."""
    from fupin.config import load_settings

    db = f"t_{uuid.uuid4().hex[:12]}"
    return load_settings(data_dir=str(tmp_path / "data"), clickhouse_database=db)
