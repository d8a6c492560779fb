"""A stack that heals, as a user meets it: separate CLI processes, real broker, service and workers.

`fupin up` starts what is missing or dead and leaves what runs; `fupin down` stops every process
it can find (stack.json, then the processes' own pid files); a worker ends soon after SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_stack import PARTITIONS, fupin, state_of

from fupin.stack import pid_alive


@pytest.fixture
def heal_env(tmp_path):
    """A private data dir for CLI runs (as test_stack's); `down` runs afterwards whatever happened."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_")}
    env.update(
        FUPIN_DATA_DIR=str(tmp_path / "data"),
        FUPIN_CHDB_PATH=str(tmp_path / "chdb"),
        FUPIN_TOPIC_PARTITIONS=str(PARTITIONS),
        FUPIN_PSEUDONYM_KEY="test-only-pseudonym-key",
    )
    yield env
    fupin("down", "--timeout", "10", env=env)


def start_worker_by_hand(env: dict[str, str], name: str, log: Path) -> subprocess.Popen:
    """`fupin stream --worker NAME &` from a shell: not started by `fupin up`, not in its own session."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fupin.cli", "stream", "--worker", name],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def worker_record(env: dict[str, str], name: str) -> dict | None:
    try:
        return json.loads((Path(env["FUPIN_DATA_DIR"]) / f"stream-{name}.json").read_text())
    except (OSError, ValueError):
        return None


def wait_until(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        with_reap(pid)
        time.sleep(0.05)
    return not pid_alive(pid)


def with_reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def components(env: dict[str, str]) -> tuple[int, dict[str, dict]]:
    status = fupin("status", "--json", env=env)
    report = json.loads(status.stdout)
    return status.returncode, {c["component"]: c for c in report["components"]}


def test_up_restarts_only_the_dead_service_and_down_stops_a_worker_started_by_hand(heal_env, tmp_path):
    env = heal_env
    up = fupin("up", env=env)
    assert up.returncode == 0, up.stdout + up.stderr
    first = state_of(env)
    worker = start_worker_by_hand(env, "h", tmp_path / "worker.log")
    try:
        wait_until(
            lambda: (worker_record(env, "h") or {}).get("pid") == worker.pid, 90, "the worker's pid file"
        )
        code, comps = components(env)
        assert code == 0, comps
        assert comps["stream worker h"]["state"] == "alive" and comps["sink"]["state"] == "alive"

        dead = first["warehouse"]["pid"]
        os.kill(dead, signal.SIGKILL)
        assert gone(dead)
        code, comps = components(env)
        assert code == 1 and comps["warehouse service"]["state"] == "dead"
        text = fupin("status", env=env)
        assert text.returncode == 1 and "warehouse service        dead" in text.stdout

        healed = fupin("up", env=env)
        assert healed.returncode == 0, healed.stdout + healed.stderr
        assert "already running" not in healed.stdout
        assert f"started (pid {dead} was gone)" in healed.stdout
        after = state_of(env)
        assert after["broker"] == first["broker"]  # the broker was left running
        assert after["warehouse"]["pid"] != dead and pid_alive(after["warehouse"]["pid"])
        assert worker.poll() is None and worker_record(env, "h")["pid"] == worker.pid  # left running
        code, comps = components(env)
        assert code == 0, comps
        assert {"broker", "warehouse service", "sink", "stream worker h"} <= set(comps)

        again = fupin("up", env=env)
        assert "already running" in again.stdout and "nothing started" in again.stdout

        down = fupin("down", env=env)
        assert down.returncode == 0, down.stderr
        assert f"stream worker h pid {worker.pid}: stopped" in down.stdout
        assert worker.wait(5) is not None
        assert not pid_alive(after["warehouse"]["pid"]) and not pid_alive(after["broker"]["pid"])
        data = Path(env["FUPIN_DATA_DIR"])
        assert not list(data.glob("stream-*.json")) and not (data / "warehouse.json").exists()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


def test_a_worker_ends_within_10_s_of_sigterm_even_with_its_broker_gone(heal_env, tmp_path):
    env = heal_env
    assert fupin("up", "--no-warehouse", env=env).returncode == 0
    worker = start_worker_by_hand(env, "t", tmp_path / "worker.log")
    try:
        wait_until(
            lambda: ((worker_record(env, "t") or {}).get("heartbeat") or {}).get("caught_up_at"),
            90,
            "the worker to run",
        )
        # The broker lost under it: Faust's own stop then waits on the broker (it took 60 s).
        broker = state_of(env)["broker"]["pid"]
        os.kill(broker, signal.SIGKILL)
        assert gone(broker)
        time.sleep(2)
        t0 = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
        took = time.monotonic() - t0
        assert took < 10, f"the worker took {took:.1f} s to end after SIGTERM"
        assert worker_record(env, "t") is None  # a stop (even a forced one) removes its pid file
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)


def test_down_stops_a_warehouse_service_restarted_by_hand(heal_env, tmp_path):
    env = heal_env
    assert fupin("up", "--no-warehouse", env=env).returncode == 0
    with open(tmp_path / "service.log", "ab") as out:
        service = subprocess.Popen(
            [sys.executable, "-m", "fupin.cli", "warehouse", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        record = Path(env["FUPIN_DATA_DIR"]) / "warehouse.json"
        wait_until(
            lambda: record.exists() and json.loads(record.read_text()).get("pid") == service.pid,
            120,
            "the service's pid file",
        )
        code, comps = components(env)
        assert code == 0, comps
        assert (
            comps["warehouse service"]["pid"] == service.pid
            and comps["warehouse service"]["state"] == "alive"
        )
        down = fupin("down", env=env)
        assert down.returncode == 0, down.stderr
        assert f"warehouse service (not started by 'fupin up') pid {service.pid}: stopped" in down.stdout
        assert service.wait(5) is not None and not record.exists()
    finally:
        if service.poll() is None:
            service.kill()
            service.wait(10)
