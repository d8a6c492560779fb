"""`fupin up`, `status` and `down` as a user runs them: separate CLI processes, a real tansu broker,
kafka-python clients in between. Each test has its own data dir, so its own stack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fupin.broker import free_port
from fupin.stack import pid_alive

PARTITIONS = 3


def fupin(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fupin.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def stack_env(tmp_path):
    """Environment for CLI runs on a private data dir; `down` runs afterwards whatever happened."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_")}
    env.update(
        FUPIN_DATA_DIR=str(tmp_path / "data"),
        FUPIN_CHDB_PATH=str(tmp_path / "chdb"),
        FUPIN_TOPIC_PARTITIONS=str(PARTITIONS),
        FUPIN_PSEUDONYM_KEY="test-only-pseudonym-key",
    )
    yield env
    fupin("down", "--timeout", "10", env=env)


def state_of(env: dict[str, str]) -> dict:
    return json.loads((Path(env["FUPIN_DATA_DIR"]) / "stack.json").read_text())


def holders_of(path: Path) -> list[int]:
    """Pids of processes holding path open: how we know a detached broker is really gone."""
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == str(path):
                    holders.append(int(proc.name))
                    break
            except OSError:
                continue
    return holders


def round_trip(bootstrap: str, topic: str, n: int = 20) -> set[bytes]:
    """Produce n keyed messages, read them back by assignment (no group: no rebalance wait)."""
    marker = uuid.uuid4().hex
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(n):
        producer.send(topic, key=f"H{i:06d}".encode(), value=f"{marker}-{i}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen: set[bytes] = set()
    deadline = time.monotonic() + 60
    while len(seen) < n and time.monotonic() < deadline:
        for records in consumer.poll(500).values():
            seen.update(r.value for r in records if r.value.startswith(marker.encode()))
    consumer.close()
    return {v.removeprefix(f"{marker}-".encode()) for v in seen}


def test_up_status_round_trip_down_twice_in_a_row(stack_env):
    env = stack_env
    pids = []
    for _ in range(2):
        up = fupin("up", "--no-warehouse", env=env)
        assert up.returncode == 0, up.stderr
        state = state_of(env)
        broker = state["broker"]
        assert pid_alive(broker["pid"]) and broker["bootstrap"] == f"127.0.0.1:{broker['port']}"
        assert state["partitions"] == PARTITIONS and state["warehouse"] is None
        pids.append(broker["pid"])

        # The broker outlives the `up` process: status is another process and finds it.
        status = fupin("status", "--json", env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["running"] and report["broker"]["answers"]
        topics = {t["name"]: t["partitions"] for t in report["topics"]}
        assert set(state["topics"]) <= set(topics)
        assert {topics[t] for t in state["topics"]} == {PARTITIONS}
        assert report["missing_topics"] == []
        assert "fupin.household.status" in topics and "fupin.deadletter" in topics

        text = fupin("status", env=env)
        assert text.returncode == 0 and "fupin.events.water  partitions=3" in text.stdout

        assert round_trip(broker["bootstrap"], "fupin.events.water") == {str(i).encode() for i in range(20)}

        down = fupin("down", env=env)
        assert down.returncode == 0, down.stderr
        assert f"broker pid {broker['pid']}" in down.stdout and "stopped" in down.stdout
        assert not pid_alive(broker["pid"])
        assert not (Path(env["FUPIN_DATA_DIR"]) / "stack.json").exists()
        assert holders_of(Path(broker["log"])) == []

        after = fupin("status", env=env)
        assert after.returncode == 1 and "no embedded stack runs" in after.stdout
    assert pids[0] != pids[1]


def test_second_up_while_running_starts_nothing(stack_env):
    env = stack_env
    assert fupin("up", "--no-warehouse", env=env).returncode == 0
    first = state_of(env)
    again = fupin("up", "--no-warehouse", env=env)
    assert again.returncode == 0
    assert (
        f"already running: broker pid {first['broker']['pid']} on {first['broker']['bootstrap']}"
        in again.stdout
    )
    assert state_of(env) == first
    assert holders_of(Path(first["broker"]["log"])) == [first["broker"]["pid"]]


def test_down_and_status_when_nothing_runs(stack_env):
    down = fupin("down", env=stack_env)
    assert down.returncode == 0 and "nothing to stop" in down.stdout
    status = fupin("status", "--json", env=stack_env)
    assert status.returncode == 1
    assert json.loads(status.stdout)["running"] is False


def test_broker_that_died_is_reported_and_replaced(stack_env):
    env = stack_env
    assert fupin("up", "--no-warehouse", env=env).returncode == 0
    dead = state_of(env)["broker"]["pid"]
    os.kill(dead, 9)
    deadline = time.monotonic() + 10
    while pid_alive(dead) and time.monotonic() < deadline:
        time.sleep(0.05)
    status = fupin("status", env=env)
    assert status.returncode == 1 and f"broker pid {dead} is gone" in status.stdout
    up = fupin("up", "--no-warehouse", env=env)
    assert up.returncode == 0 and "cleaned up a stale stack" in up.stdout
    assert state_of(env)["broker"]["pid"] != dead
    assert fupin("status", env=env).returncode == 0


@pytest.mark.parametrize(
    ("name", "value", "setting"),
    [("FUPIN_TOPIC_PARTITIONS", "x", "topic_partitions"), ("FUPIN_BROKER_PORT", "70000", "broker_port")],
)
def test_wrong_setting_fails_cleanly(stack_env, name, value, setting):
    env = {**stack_env, name: value}
    for command in ("up", "status", "down"):
        result = fupin(command, env=env)
        assert result.returncode not in (0, None), command
        assert f"setting '{setting}'" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (Path(env["FUPIN_DATA_DIR"]) / "stack.json").exists()


def test_configured_broker_port_is_used(stack_env):
    port = free_port()
    up = fupin("up", "--no-warehouse", env={**stack_env, "FUPIN_BROKER_PORT": str(port)})
    assert up.returncode == 0, up.stderr
    assert state_of(stack_env)["broker"]["bootstrap"] == f"127.0.0.1:{port}"
    socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_warehouse_that_cannot_start_takes_the_broker_down_again(stack_env):
    """A busy service port (or a missing service) must fail `up` and leave nothing running."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = {**stack_env, "FUPIN_SERVICE_PORT": str(busy.getsockname()[1])}
        up = fupin("up", "--timeout", "60", env=env)
    assert up.returncode != 0
    assert (
        "warehouse service" in up.stderr
        and "Traceback (most recent call last)" not in up.stderr.splitlines()[0]
    )
    data = Path(env["FUPIN_DATA_DIR"])
    assert not (data / "stack.json").exists()
    assert holders_of(data / "logs" / "broker.log") == []


def test_server_mode_up_creates_topics_and_status_checks_both_servers(stack_env, broker):
    prefix = f"s{uuid.uuid4().hex[:8]}"
    env = {
        **stack_env,
        "FUPIN_MODE": "server",
        "FUPIN_BROKER_BOOTSTRAP": broker,
        "FUPIN_TOPIC_PREFIX": prefix,
        "FUPIN_CLICKHOUSE_HOST": "127.0.0.1",
        "FUPIN_CLICKHOUSE_PORT": str(free_port()),  # nothing listens there
    }
    up = fupin("up", env=env)
    assert up.returncode == 0, up.stderr
    assert "docker compose" in up.stdout and "13 created" in up.stdout
    assert "0 created, 13 already there" in fupin("up", env=env).stdout
    assert not (Path(env["FUPIN_DATA_DIR"]) / "stack.json").exists()

    status = fupin("status", "--json", env=env)
    assert status.returncode == 1
    report = json.loads(status.stdout)
    assert report["mode"] == "server" and report["broker"]["answers"]
    mine = {t["name"]: t["partitions"] for t in report["topics"] if t["name"].startswith(prefix + ".")}
    assert len(mine) == 13 and set(mine.values()) == {PARTITIONS}
    assert "error" in report["warehouse"] and "ClickHouse" in report["problem"]

    down = fupin("down", env=env)
    assert down.returncode == 0 and "docker compose" in down.stdout

    missing = {k: v for k, v in env.items() if k != "FUPIN_BROKER_BOOTSTRAP"}
    result = fupin("status", env=missing)
    assert result.returncode != 0 and "setting 'broker_bootstrap'" in result.stderr


def test_full_stack_with_warehouse_service(stack_env):
    env = stack_env
    for _ in range(2):
        up = fupin("up", env=env)
        assert up.returncode == 0, up.stdout + up.stderr
        state = state_of(env)
        wh = state["warehouse"]
        assert pid_alive(wh["pid"]) and wh["url"].startswith("http://127.0.0.1:")

        status = fupin("status", "--json", env=env)
        assert status.returncode == 0, status.stdout
        report = json.loads(status.stdout)
        assert report["warehouse"]["alive"] and isinstance(report["warehouse"]["health"], dict)

        assert round_trip(state["broker"]["bootstrap"], "fupin.events.education") == {
            str(i).encode() for i in range(20)
        }

        down = fupin("down", env=env)
        assert down.returncode == 0
        lines = down.stdout.splitlines()
        assert lines[0].startswith("dashboard pid ")  # started by up with the service, stopped first
        lines = lines[1:]
        assert lines[0].startswith(f"warehouse service pid {wh['pid']}: stopped")
        assert lines[1].startswith(f"broker pid {state['broker']['pid']}")
        assert not pid_alive(wh["pid"]) and not pid_alive(state["broker"]["pid"])
        assert not (Path(env["FUPIN_DATA_DIR"]) / "warehouse.json").exists()


def test_configured_broker_port_in_use_is_refused(stack_env):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up = fupin("up", "--no-warehouse", env={**stack_env, "FUPIN_BROKER_PORT": str(port)})
    assert up.returncode != 0
    assert f"setting 'broker_port': 127.0.0.1:{port} is already in use" in up.stderr
    assert not (Path(stack_env["FUPIN_DATA_DIR"]) / "stack.json").exists()


def test_an_exited_unreaped_process_counts_as_dead():
    """A detached broker whose reaper is careless leaves a zombie; it must not look like a live stack."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not pid_alive(child.pid)
    child.wait()
    assert pid_alive(os.getpid())
