"""Broker lost and restarted empty → `fupin rebuild` → the same household statuses and alert episodes.

The status documents and alert messages come from a stand-in for the stream worker (the worker's
own pure fold, ``streams.household.fold``, publishing each household's document and its episodes'
latest messages), so the test checks the warehouse's half of the contract: the replay reproduces
every envelope, in an order a valid-time fold agrees with; the rebuild retracts the episodes left
from before that the fold does not produce; ``--check`` finds differences when there are some.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fupin.broker import create_topics, free_port, list_topics, start_broker
from fupin.cli import cli
from fupin.timeutil import iso_utc, parse_instant
from fupin.topics import alerts_topic, all_topics, input_topics, status_topic
from streams import household
from streams.alerts import Thresholds, alert_id
from streams.guarantees import load_lines
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
    """The worker's fold over the envelopes (any order: the result is the same) and its outputs."""
    lines = load_lines(settings.reference_path)
    states, messages = household.fold(envelopes, lines, Thresholds())
    now = iso_utc(datetime.now(UTC))
    floor = time.time_ns() // 1000  # as the worker's revisions: wall-clock µs at least
    latest = {m["alert_id"]: m for m in messages}
    producer = KafkaProducer(bootstrap_servers=settings.broker_bootstrap, acks="all")
    for hid, state in states.items():
        producer.send(status_topic(settings), key=hid.encode(), value=orjson.dumps(household.document(state, lines, now)))
    for m in latest.values():
        m = {**m, "processed_at": now, "revision": floor + m["revision"]}
        producer.send(alerts_topic(settings), key=m["household_id"].encode(), value=orjson.dumps(m))
    producer.flush()
    producer.close()
    return len(states)


def open_episodes(wh) -> set:
    rows = wh.query(
        "SELECT household_id, alert_id, argMax(state, revision) AS s FROM alerts GROUP BY household_id, alert_id "
        "HAVING s = 'raised'"
    )
    return {(h, a) for h, a, _s in rows}


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
    produced = open_episodes(wh)
    assert produced  # unsafe water somewhere
    # A ghost of an earlier epoch: an open episode no fold of these events produces.
    ghost_start = "00000000-0000-4000-8000-0000000000aa"
    ghost = {
        "alert_id": alert_id("H-gone", "unsafe_water", ghost_start), "rule": "unsafe_water", "state": "raised",
        "household_id": "H-gone", "region_code": "431224104201", "start_event_id": ghost_start,
        "start_occurred_at": "2020-01-01T00:00:00Z", "start_recorded_at": "2020-01-01T00:00:00Z",
        "end_event_id": None, "end_occurred_at": None, "end_recorded_at": None, "revision": 5,
        "processed_at": iso_utc(datetime.now(UTC)), "detail": {},
    }  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(alerts_topic(s), key=b"H-gone", value=orjson.dumps(ghost))
    producer.flush()
    producer.close()
    drain(wh, s)
    assert ("H-gone", ghost["alert_id"]) in open_episodes(wh)

    restart_empty()
    assert not set(input_topics(s)) & set(list_topics(bootstrap))  # the broker forgot everything

    env = {"FUPIN_BROKER_BOOTSTRAP": bootstrap, "FUPIN_TOPIC_PREFIX": "rb",
           "FUPIN_CLICKHOUSE_DATABASE": s.clickhouse_database, "FUPIN_DATA_DIR": str(s.data_dir)}  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(cli, ["rebuild"], env=env)
    assert result.exit_code == 0, result.output
    assert f"replayed {n} events of {households} households" in result.output
    assert "1 alert episodes the fold does not produce retracted" in result.output
    assert open_episodes(wh) == produced  # the ghost is retracted at once
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
    assert f"({len(produced)} open) compared, 0 differ" in check.output
    assert open_episodes(wh) == produced

    # An episode the live side tells otherwise (its end moved) is reported, with exit code 1.
    (hid, aid) = sorted(produced)[0]
    wrong = wh.query_dicts(
        "SELECT * FROM alerts WHERE household_id = {h:String} AND alert_id = {a:String} ORDER BY revision DESC LIMIT 1",
        {"h": hid, "a": aid},
    )[0]
    moved = {**wrong, "state": "resolved", "end_event_id": wrong["start_event_id"], "revision": wrong["revision"] + 1,
             "end_occurred_at": wrong["start_occurred_at"], "end_recorded_at": wrong["start_recorded_at"],
             "detail": {}}  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(alerts_topic(s), key=hid.encode(), value=orjson.dumps(moved))
    producer.flush()
    producer.close()
    drain(wh, s)
    check = runner.invoke(cli, ["rebuild", "--check"], env=env)
    assert check.exit_code == 1, check.output
    assert "0 differ, 0 not rebuilt yet" in check.output and "compared, 1 differ" in check.output
    assert aid in check.output

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
