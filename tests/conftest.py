"""Shared test set-up.

chdb runs one engine per process and binds it to the first data path opened, so the whole
pytest session shares one chdb path; tests isolate themselves with their own database
(``clickhouse_database``), never their own path. Tests that need a fresh engine run a subprocess.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="fupin-test-"))
os.environ.setdefault("FUPIN_DATA_DIR", str(_SESSION_DIR / "data"))
os.environ.setdefault("FUPIN_CHDB_PATH", str(_SESSION_DIR / "chdb"))
os.environ.setdefault("FUPIN_PSEUDONYM_KEY", "test-only-pseudonym-key")


def pytest_sessionfinish(session, exitstatus):
    """Leave no chdb data or broker logs behind in /tmp (a CI machine is reused)."""
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def session_dir() -> Path:
    return _SESSION_DIR


@pytest.fixture
def settings(tmp_path):
    """Settings isolated per test: own data dir, own ClickHouse database, the session's chdb path."""
    from fupin.config import load_settings

    db = f"t_{uuid.uuid4().hex[:12]}"
    return load_settings(data_dir=str(tmp_path / "data"), clickhouse_database=db)


@pytest.fixture(scope="session")
def broker(session_dir):
    """A real embedded broker (tansu) on a free loopback port for the whole session; yields bootstrap."""
    from fupin.broker import free_port, start_broker

    port = free_port()
    proc = start_broker(port, session_dir / "broker.log")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(10)
    except Exception:
        proc.kill()


@pytest.fixture
def broker_settings(settings, broker):
    """Per-test settings on the session broker, with a unique topic prefix and the topics created."""
    from fupin.broker import create_topics
    from fupin.topics import all_topics

    s = settings.with_(broker_bootstrap=broker, topic_prefix=f"t{uuid.uuid4().hex[:10]}")
    create_topics(broker, all_topics(s), s.topic_partitions)
    return s
