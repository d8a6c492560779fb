"""End to end with the real stream worker: the embedded stack loses its broker, `fupin rebuild`
replays the event store, fresh workers rebuild their tables, and `fupin rebuild --check` finds the
household statuses identical to before (zero differences).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def fupin(env, *args, timeout=300, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "fupin.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    if check:
        assert done.returncode == 0, f"fupin {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def scalar(env, sql: str) -> int:
    return int(fupin(env, "warehouse", "query", "--format", "tsv", sql).stdout.strip().splitlines()[-1])


def start_worker(env, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fupin.cli", "stream"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def stop_worker(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_stable(env, sql: str, timeout: float = 180) -> int:
    """The value once it stops changing for a few seconds (the pipeline has drained)."""
    last, since = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = scalar(env, sql)
        if value != last:
            last, since = value, time.monotonic()
        elif value and time.monotonic() - since > 8:
            return value
        time.sleep(1)
    return last or 0


def test_broker_loss_rebuild_with_the_stream_worker(tmp_path):
    data = tmp_path / "stack"
    env = {**os.environ, "FUPIN_DATA_DIR": str(data), "FUPIN_CHDB_PATH": str(data / "chdb")}
    env.pop("FUPIN_BROKER_BOOTSTRAP", None)
    fupin(env, "up")
    worker = None
    try:
        worker = start_worker(env, tmp_path / "stream.log")
        fupin(env, "simulate", "--households", "120", "--publish", "--out", str(tmp_path / "sim"))
        events = wait_stable(env, "SELECT count() FROM events_latest")
        households = wait_stable(env, "SELECT count() FROM household_status_latest")
        assert events > 1000 and households > 20
        stop_worker(worker)
        worker = None

        # The broker is lost, and with it the workers' changelogs. The worker's local table is left
        # as it was: the restarted worker must see that the broker is a new one and start afresh.
        fupin(env, "down")
        assert any((data / "streams").iterdir())
        fupin(env, "up")
        out = fupin(env, "rebuild").stdout
        assert f"replayed {events} events" in out
        worker = start_worker(env, tmp_path / "stream.log")
        deadline = time.monotonic() + 60
        while (
            "local table cleared" not in (tmp_path / "stream.log").read_text() and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        assert "local table cleared" in (tmp_path / "stream.log").read_text()
        deadline = time.monotonic() + 240
        while True:
            check = fupin(env, "rebuild", "--check", check=False)
            if check.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"{households} households compared, 0 differ, 0 not rebuilt yet" in check.stdout
        assert scalar(env, "SELECT count() FROM events_latest") == events
    finally:
        if worker is not None:
            stop_worker(worker)
        fupin(env, "down", check=False)
    assert not (data / "warehouse.json").exists()  # the service shut down cleanly
