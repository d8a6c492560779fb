"""The embedded warehouse service: one owner of chdb; queries and jobs run while its sink ingests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from fupin.auth import auth_headers
from fupin.config import load_settings
from fupin.stack import service_file, service_url
from warehouse.client import RemoteWarehouse, WarehouseError, http_get_json, open_reader
from warehouse.sample import publish, sample_messages
from warehouse.service import run_job


@pytest.fixture
def service(broker_settings, tmp_path):
    """`fupin warehouse serve` in its own process (own chdb path), on the session broker."""
    s = broker_settings
    env = {
        **os.environ,
        "FUPIN_DATA_DIR": str(tmp_path / "svc"),
        "FUPIN_CHDB_PATH": str(tmp_path / "svc-chdb"),
        "FUPIN_BROKER_BOOTSTRAP": s.broker_bootstrap,
        "FUPIN_TOPIC_PREFIX": s.topic_prefix,
        "FUPIN_CLICKHOUSE_DATABASE": "fupin",
    }
    log = open(tmp_path / "service.log", "wb")  # noqa: SIM115 - the child's log
    proc = subprocess.Popen([sys.executable, "-m", "fupin.cli", "warehouse", "serve"], env=env, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    svc = load_settings(env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not service_url(svc):
        assert proc.poll() is None, (tmp_path / "service.log").read_text()
        time.sleep(0.2)
    assert service_url(svc), (tmp_path / "service.log").read_text()
    yield svc, proc, env
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)
    log.close()


def test_queries_and_jobs_while_ingesting(service, broker_settings):
    svc, proc, _ = service
    n, chunks = 20_000, 10
    reader = open_reader(svc)
    assert isinstance(reader, RemoteWarehouse)  # the owner answers; nobody else opens chdb

    def produce() -> None:
        watcher = open_reader(svc)
        for c in range(chunks):
            publish(broker_settings.broker_bootstrap, broker_settings,
                    (m for i, m in enumerate(sample_messages(n, seed=3)) if i % chunks == c))  # fmt: skip
            # The rest only once the sink has joined its group and landed the first chunk (on a
            # loaded machine the join can outlast the whole production otherwise).
            until = time.monotonic() + 60
            while c == 0 and time.monotonic() < until and not watcher.query("SELECT count() FROM events")[0][0]:
                time.sleep(0.2)
            time.sleep(0.5)

    producer = threading.Thread(target=produce)
    producer.start()
    seen: list[int] = []
    jobs = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.append(reader.query("SELECT count() FROM events_latest")[0][0])
        # A job (writes through the owner) runs while the sink keeps ingesting.
        assert run_job(svc, "load-reference")["loaded"] is not None
        jobs += 1
        if seen[-1] == n and not producer.is_alive():
            break
        time.sleep(0.3)
    producer.join()
    assert seen[-1] == n
    assert any(0 < c < n for c in seen), f"no query ran while the sink was ingesting: {seen}"
    df = reader.query_df("SELECT household_id, count() AS n FROM events_latest GROUP BY household_id")
    assert df["n"].sum() == n
    when = reader.query("SELECT max(occurred_at) FROM events_latest")[0][0]
    assert when.year == 2020 and when.tzinfo is not None
    health = http_get_json(service_url(svc) + "/health", headers=auth_headers(svc))
    assert health["sink"]["messages"] >= n and health["rows"]["events"] >= n
    with pytest.raises(WarehouseError, match="read-only"):
        reader.query("DROP TABLE events")
    with pytest.raises(WarehouseError, match="no job named"):
        run_job(svc, "no-such-job")
    # Clean shutdown on SIGTERM: the record goes away, the engine is released.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert not service_file(svc).exists()
    assert service_url(svc) is None


def test_second_owner_is_refused(service, tmp_path):
    svc, _, env = service
    again = subprocess.run([sys.executable, "-m", "fupin.cli", "warehouse", "serve"], env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert again.returncode != 0
    assert "already runs" in again.stderr
    info = json.loads(service_file(svc).read_text())
    assert info["url"].startswith("http://127.0.0.1:")


@pytest.mark.slow
def test_dbt_build_while_the_sink_ingests(service, broker_settings):
    """The `build` job (dbt, in the owning process) runs while the service's sink keeps landing events."""
    svc, _, _ = service
    reader = open_reader(svc)
    n = 60_000
    publish(broker_settings.broker_bootstrap, broker_settings, sample_messages(5_000, seed=21))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and reader.query("SELECT count() FROM events_latest")[0][0] < 5_000:
        time.sleep(0.5)
    stop = threading.Event()

    def produce() -> None:
        c = 0
        while not stop.is_set() and c < 10:
            publish(broker_settings.broker_bootstrap, broker_settings,
                    (m for i, m in enumerate(sample_messages(n, seed=22)) if i % 10 == c))  # fmt: skip
            c += 1
            time.sleep(1.0)

    producer = threading.Thread(target=produce)
    producer.start()
    before = reader.query("SELECT count() FROM events_latest")[0][0]
    result = run_job(svc, "build")
    during = reader.query("SELECT count() FROM events_latest")[0][0]
    stop.set()
    producer.join()
    assert result["success"], result.get("failed") or result.get("error")
    assert during > before, "the sink should keep ingesting while dbt builds"
