"""``fupin check`` while the warehouse service runs: the checkpoint runs in the process owning chdb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fupin.config import load_settings
from fupin.stack import service_url


@pytest.fixture
def service(broker_settings, tmp_path):
    """`fupin warehouse serve` in its own process, with its own chdb path that nobody else may open."""
    env = {
        **os.environ,
        "FUPIN_DATA_DIR": str(tmp_path / "svc"),
        "FUPIN_CHDB_PATH": str(tmp_path / "svc-chdb"),
        "FUPIN_BROKER_BOOTSTRAP": broker_settings.broker_bootstrap,
        "FUPIN_TOPIC_PREFIX": broker_settings.topic_prefix,
        "FUPIN_CLICKHOUSE_DATABASE": "fupin",
    }
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fupin.cli", "warehouse", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        settings = load_settings(env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not service_url(settings):
            assert proc.poll() is None, log_path.read_text()
            time.sleep(0.2)
        assert service_url(settings), log_path.read_text()
        yield settings, env
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_check_runs_in_the_service_and_writes_its_data_docs(service):
    settings, env = service
    done = subprocess.run(
        [sys.executable, "-m", "fupin.cli", "check", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # The service holds the chdb path: had the command opened it itself, it would have failed.
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert {"event_store", "dead_letters"} <= set(result["suites"])
    assert Path(result["data_docs"]) == (Path(settings.data_dir) / "data_docs" / "index.html").resolve()
    assert Path(result["data_docs"]).exists()
