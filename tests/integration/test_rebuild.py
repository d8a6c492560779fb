"""Broker lost and restarted empty → `fupin rebuild` → the same household statuses.

The status documents here come from a stand-in for the stream worker (a small valid-time fold
over the department topics), so the test checks the warehouse's half of the contract: the replay
reproduces every envelope, in an order a valid-time fold agrees with, and ``--check`` finds
differences when there are some.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fupin.broker import create_topics, free_port, list_topics, start_broker
from fupin.cli import cli
from fupin.timeutil import iso_utc, parse_instant
from fupin.topics import all_topics, input_topics, status_topic
from warehouse.client import ChdbWarehouse
from warehouse.migrate import migrate
from warehouse.sample import publish, sample_messages
from warehouse.sink import Sink


def read_inputs(settings, expected: int) -> list[dict]:
    """Every message of the department topics (no consumer group: assigned partitions)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.broker_bootstrap, enable_auto_commit=False)
    parts = [TopicPartition(t, p) for t in input_topics(settings) for p in range(settings.topic_partitions)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list[dict] = []
    idle = 0
    while len(out) < expected or idle < 3:
        batch = consumer.poll(timeout_ms=1000)
        idle = 0 if batch else idle + 1
        if idle > 30:
            break
        for records in batch.values():
            out.extend(orjson.loads(r.value) for r in records)
    consumer.close()
    return out


def stand_in_worker(settings, envelopes: list[dict]) -> int:
    """Fold each household's events by valid time and publish its status document."""
    by_household: dict[str, dict[str, dict]] = {}
    for env in envelopes:
        by_household.setdefault(env["household_id"], {})[env["event_id"]] = env  # idempotent by event_id
    producer = KafkaProducer(bootstrap_servers=settings.broker_bootstrap, acks="all")
    for hid, events in by_household.items():
        ordered = sorted(events.values(), key=lambda e: (parse_instant(e["occurred_at"]),
                                                         parse_instant(e["recorded_at"]), e["event_id"]))  # fmt: skip
        water = [e for e in ordered if e["event_type"] == "water.water_assessed"]
        income = [e for e in ordered if e["event_type"] == "poverty_office.income_assessed"]
        safe = water[-1]["payload"]["safe"] if water else None
        doc = {
            "household_id": hid, "version": len(ordered), "region_code": ordered[-1]["region_code"],
            "status": "poor" if safe is False else "non_registered",
            "monitoring": {"category": None, "risk_state": None}, "living_members": 0, "members": [],
            "income": {"per_capita": income[-1]["payload"]["net_income_per_capita"] if income else None,
                       "year": income[-1]["payload"]["year"] if income else None},
            "guarantees": {"water": "unverified" if safe is None else ("met" if safe else "not_met")},
            "open_alerts": [] if safe is not False else ["unsafe_water"],
            "last_event_id": ordered[-1]["event_id"], "last_occurred_at": ordered[-1]["occurred_at"],
            "updated_at": iso_utc(datetime.now(UTC)),
        }  # fmt: skip
        producer.send(status_topic(settings), key=hid.encode(), value=orjson.dumps(doc))
    producer.flush()
    producer.close()
    return len(by_household)


def drain(wh, settings) -> None:
    Sink(wh, settings, settings.broker_bootstrap, batch_size=2000, batch_seconds=0.3, idle_exit=3).run()


@pytest.fixture
def own_broker(tmp_path):
    port = free_port()
    procs = [start_broker(port, tmp_path / "broker.log")]

    def restart_empty() -> None:
        procs[0].terminate()
        procs[0].wait(10)
        procs[0] = start_broker(port, tmp_path / "broker.log")

    yield f"127.0.0.1:{port}", restart_empty
    procs[0].kill()
    procs[0].wait(10)


def test_broker_lost_then_rebuild_gives_identical_statuses(settings, own_broker, monkeypatch):
    bootstrap, restart_empty = own_broker
    s = settings.with_(broker_bootstrap=bootstrap, topic_prefix="rb")
    create_topics(bootstrap, all_topics(s), s.topic_partitions)
    wh = ChdbWarehouse(s.chdb_data_path, s.clickhouse_database)
    migrate(wh)
    n, households = 2000, 60
    publish(bootstrap, s, sample_messages(n, households=households, seed=5))
    publish(bootstrap, s, sample_messages(50, households=households, seed=5))  # redelivered duplicates
    originals = {e["event_id"]: e for e in read_inputs(s, n + 50)}
    assert len(originals) == n
    assert stand_in_worker(s, list(originals.values())) == households
    drain(wh, s)
    assert wh.query("SELECT count() FROM events_latest")[0][0] == n
    assert wh.query("SELECT count() FROM household_status_latest")[0][0] == households

    restart_empty()
    assert not set(input_topics(s)) & set(list_topics(bootstrap))  # the broker forgot everything

    env = {"FUPIN_BROKER_BOOTSTRAP": bootstrap, "FUPIN_TOPIC_PREFIX": "rb",
           "FUPIN_CLICKHOUSE_DATABASE": s.clickhouse_database, "FUPIN_DATA_DIR": str(s.data_dir)}  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(cli, ["rebuild"], env=env)
    assert result.exit_code == 0, result.output
    assert f"replayed {n} events of {households} households" in result.output
    replayed = read_inputs(s, n)
    assert len(replayed) == n  # each event once, duplicates gone
    assert {e["event_id"]: e for e in replayed} == originals  # envelopes equal to the originals
    # Per household, the replay comes in valid-time order (one household per partition key).
    for hid in {e["household_id"] for e in replayed}:
        mine = [e for e in replayed if e["household_id"] == hid]
        keys = [
            (parse_instant(e["occurred_at"]), parse_instant(e["recorded_at"]), e["event_id"]) for e in mine
        ]
        assert keys == sorted(keys)

    stand_in_worker(s, replayed)
    drain(wh, s)
    assert wh.query("SELECT count() FROM events_latest")[0][0] == n  # the replay landed once more: no change
    check = runner.invoke(cli, ["rebuild", "--check"], env=env)
    assert check.exit_code == 0, check.output
    assert f"{households} households compared, 0 differ, 0 not rebuilt yet" in check.output

    # A rebuilt status that disagrees is reported, with exit code 1.
    doc = orjson.loads(wh.query("SELECT document FROM household_status_latest LIMIT 1")[0][0])
    doc.update(status="returned", version=doc["version"] + 1, updated_at=iso_utc(datetime.now(UTC)))
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(status_topic(s), key=doc["household_id"].encode(), value=orjson.dumps(doc))
    producer.flush()
    producer.close()
    drain(wh, s)
    check = runner.invoke(cli, ["rebuild", "--check"], env=env)
    assert check.exit_code == 1, check.output
    assert "1 differ" in check.output and doc["household_id"] in check.output and "returned" in check.output
    wh.close()
