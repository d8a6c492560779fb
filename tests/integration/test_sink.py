"""The sink on the embedded broker and chdb: exactly once, dead letters, a table that cannot be written."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import orjson
import pytest
from kafka import KafkaProducer

from fupin.topics import alerts_topic, deadletter_topic, department_topic, status_topic
from warehouse.client import ChdbWarehouse
from warehouse.fetch import Record
from warehouse.migrate import migrate
from warehouse.sample import publish, sample_event, sample_messages
from warehouse.sink import Batch, Sink


@pytest.fixture
def wh(settings):
    w = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    migrate(w)
    yield w
    w.close()


def count(wh, table: str) -> int:
    return wh.query(f"SELECT count() FROM {table}")[0][0]


def run_until(sink: Sink, done, timeout: float = 90.0) -> None:
    """Run the sink in a thread until ``done()`` holds (or the timeout), then stop it cleanly."""
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done():
            time.sleep(0.2)
    finally:
        sink.stop_event.set()
        thread.join(30)
    assert not thread.is_alive()


@pytest.mark.parametrize("fast", [True, False], ids=["engine-checked", "python-path"])
def test_exactly_once_and_dead_letters(broker_settings, wh, fast):
    s = broker_settings
    n = 3000
    publish(s.broker_bootstrap, s, sample_messages(n, households=200))
    # Malformed input: not JSON, breaks the contract, wrong department's topic.
    wrong_dept = orjson.dumps(sample_event(1))  # a water event …
    producer = KafkaProducer(bootstrap_servers=s.broker_bootstrap, acks="all")
    producer.send(department_topic(s, "water"), key=b"H1", value=b"{not json")
    producer.send(
        department_topic(s, "water"), key=b"H1", value=orjson.dumps({**sample_event(3), "payload": {}})
    )
    producer.send(department_topic(s, "housing"), key=b"H1", value=wrong_dept)  # … on housing's topic
    # A dead letter from the streams (headers), and the same message rejected again by another component.
    headers = [
        ("fupin.reason", b"payload.safe: required"),
        ("fupin.source_topic", department_topic(s, "water").encode()),
        ("fupin.source_partition", b"3"),
        ("fupin.source_offset", b"77"),
        ("fupin.source", b"streams"),
        ("fupin.time", b"2026-11-23T20:00:00Z"),
    ]
    for _ in range(2):
        producer.send(deadletter_topic(s), key=b"H9", value=b"\xff\xfe raw", headers=headers)
    # Status documents and alerts, one of each twice (redelivery), and one status that is not JSON.
    doc = {
        "household_id": "H1", "version": 3, "region_code": "431224104201", "status": "poor",
        "monitoring": {"category": None, "risk_state": None}, "living_members": 2, "members": [],
        "income": {"per_capita": None, "year": None}, "guarantees": {}, "open_alerts": [],
        "last_event_id": "e", "last_occurred_at": "2020-11-03T00:00:00Z", "updated_at": "2026-11-23T20:00:00Z",
    }  # fmt: skip
    alert = {
        "alert_id": "a1", "rule": "unsafe_water", "state": "raised", "household_id": "H1",
        "region_code": "431224104201", "start_event_id": "e", "start_occurred_at": "2020-11-03T00:00:00Z",
        "start_recorded_at": "2020-11-04T00:00:00Z", "end_event_id": None, "end_occurred_at": None,
        "end_recorded_at": None, "revision": 7,
        "processed_at": "2026-11-23T20:00:00Z", "detail": {"issues": ["quality"]},
    }  # fmt: skip
    for _ in range(2):
        producer.send(status_topic(s), key=b"H1", value=orjson.dumps(doc))
        producer.send(alerts_topic(s), key=b"H1", value=orjson.dumps(alert))
    producer.send(status_topic(s), key=b"H2", value=b"[1, 2")
    producer.flush()
    producer.close()
    total = n + 3 + 2 + 4 + 1

    sink = Sink(wh, s, s.broker_bootstrap, batch_size=1000, batch_seconds=0.3, fast=fast)
    run_until(sink, lambda: sink.progress.messages >= total)
    assert sink.progress.messages == total
    assert count(wh, "events_latest") == n
    assert count(wh, "household_status_history FINAL") == 1
    assert count(wh, "alerts FINAL") == 1
    letters = wh.query_dicts(
        "SELECT source, reason, raw, source_offset FROM dead_letters_latest ORDER BY reason"
    )
    assert len(letters) == 5  # 3 rejected by the sink, 1 from the streams (sent twice), 1 bad status
    assert sum(1 for d in letters if d["source"] == "sink") == 4
    streams = next(d for d in letters if d["source"] == "streams")
    assert streams["raw"] == b"\xff\xfe raw" and streams["source_offset"] == 77
    assert any("not valid JSON" in d["reason"] for d in letters)
    assert any("department" in d["reason"] for d in letters)
    # The stored envelope reproduces the original (for rebuild).
    ev = sample_event(10, households=200)
    row = wh.query_dicts(
        "SELECT payload, occurred_at_text, recorded_at_text, occurred_at FROM events_latest "
        "WHERE event_id = {id:String}",
        {"id": ev["event_id"]},
    )[0]
    assert orjson.loads(row["payload"]) == ev["payload"]
    assert row["occurred_at_text"] == ev["occurred_at"]
    assert row["occurred_at"] == datetime(2020, 1, 11, 2, 0, tzinfo=UTC)  # 10:00+08:00
    committed = wh.query("SELECT sum(offset) FROM sink_progress FINAL")[0][0]
    assert committed == total  # the next offsets, summed over partitions: every message committed
    # The same events again: consumed, still exactly n.
    publish(s.broker_bootstrap, s, sample_messages(n, households=200))
    again = Sink(wh, s, s.broker_bootstrap, batch_size=1000, batch_seconds=0.3, fast=fast)
    run_until(again, lambda: again.progress.messages >= n)
    assert again.progress.messages == n
    assert count(wh, "events_latest") == n
    assert count(wh, "events FINAL") == n


def test_unwritable_table_pauses_then_catches_up(broker_settings, wh):
    s = broker_settings
    n = 500
    wh.execute("RENAME TABLE events TO events_away")
    publish(s.broker_bootstrap, s, sample_messages(n, seed=7))
    sink = Sink(wh, s, s.broker_bootstrap, batch_size=100, batch_seconds=0.2, max_backoff=0.5)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not sink.progress.paused:
            time.sleep(0.1)
        assert sink.progress.paused, "the sink should pause when events cannot be written"
        assert "events" in (sink.progress.last_error or "")
        assert sink.progress.messages == 0  # nothing counted (or committed) past the unwritten batch
        assert wh.query("SELECT count() FROM sink_progress")[0][0] == 0
        wh.execute("RENAME TABLE events_away TO events")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sink.progress.messages < n:
            time.sleep(0.2)
    finally:
        sink.stop_event.set()
        thread.join(30)
    assert sink.progress.messages == n
    assert not sink.progress.paused
    assert count(wh, "events_latest") == n


class RecordingConsumer:
    """Only what the sink's settling calls: commits are recorded."""

    def __init__(self) -> None:
        self.commits: list[dict] = []

    def commit(self, offsets) -> None:
        self.commits.append({(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()})


def written_batch(topic: str, first: int, seq: int, error: str | None) -> Batch:
    """A batch of ten messages of partition 0, as a writer leaves it: done, failed or not."""
    batch = Batch(seq=seq)
    batch.note_span([Record(topic, 0, o, 0, None, b"{}", []) for o in range(first, first + 10)])
    batch.error = error
    batch.done.set()
    return batch


@pytest.mark.parametrize("failing", [0, 1], ids=["older-failed", "newer-failed"])
def test_batches_commit_in_order_and_never_past_a_failed_one(broker_settings, wh, failing):
    """Two writers: a batch written after one that failed waits for it, then both commit in order."""
    sink = Sink(wh, broker_settings, broker_settings.broker_bootstrap, writers=2)
    consumer = sink._consumer = RecordingConsumer()
    topic = "department-topic"
    older, newer = (written_batch(topic, o, i + 1, "write refused" if i == failing else None)
                    for i, o in enumerate((0, 10)))  # fmt: skip
    sink._inflight.extend([older, newer])
    sink._settle()
    committed_before = [] if failing == 0 else [{(topic, 0): 10}]
    assert consumer.commits == committed_before and sink.progress.paused
    assert sink._failed == ([older, newer] if failing == 0 else [newer])
    assert sink.progress.last_error == "write refused"
    assert "write refused" in sink.progress.paused_reason
    # Not retried before its backoff has passed; then the oldest held batch goes to a writer again.
    sink._retry_due()
    assert not sink._inflight
    sink.progress.retry_at = 0
    sink._retry_due()
    assert sink._inflight and sink._queue.get_nowait() is sink._inflight[0]
    sink._inflight[0].done.set()  # the writer took it this time (a written table writes nothing twice)
    sink._settle()
    assert consumer.commits == [{(topic, 0): 10}, {(topic, 0): 20}]
    assert sink._failed == [] and not sink._inflight and not sink.progress.paused
