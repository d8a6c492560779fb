"""The run consumer on the embedded broker: the same messages as kafka-python's consumer, in runs."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from fupin.broker import create_topics
from warehouse.fetch import RecordRun, run_consumer


def read_all(consumer, expected: int, timeout: float = 30.0) -> list[tuple]:
    rows: list[tuple] = []
    deadline = time.monotonic() + timeout
    while len(rows) < expected and time.monotonic() < deadline:
        for items in consumer.poll(timeout_ms=200).values():
            for item in items:
                records = item if isinstance(item, RecordRun) else [item]
                rows += [(r.partition, r.offset, r.key, r.value, list(r.headers)) for r in records]
    return sorted(rows)


def test_run_consumer_reads_what_kafka_python_reads(broker):
    topic = f"fetch-{uuid.uuid4().hex[:8]}"
    create_topics(broker, {topic: {}}, 3)
    producer = KafkaProducer(bootstrap_servers=broker, acks="all", compression_type="lz4", linger_ms=20)
    n = 3_000
    for i in range(n):
        headers = [("reason", f"r{i}".encode())] if i % 10 == 0 else []
        value = None if i % 97 == 0 else (f'{{"i": {i}}}' + "x" * (i % 300)).encode()
        producer.send(topic, key=f"H{i % 50}".encode(), value=value, headers=headers)
    producer.flush()
    producer.close()

    common = dict(bootstrap_servers=broker, auto_offset_reset="earliest", enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    plain = KafkaConsumer(group_id=f"plain-{topic}", **common)
    runs = run_consumer(group_id=f"runs-{topic}", **common)
    plain.assign(partitions)  # assigned, not subscribed: no group join to wait for
    runs.assign(partitions)
    try:
        expected = read_all(plain, n)
        got = read_all(runs, n)
        assert len(expected) == n and got == expected
        # Committed mid-way, a new consumer of the group starts there: inside a record batch.
        tp = TopicPartition(topic, got[0][0])
        middle = [row[1] for row in got if row[0] == tp.partition][len(got) // 6]
        runs.commit({tp: OffsetAndMetadata(middle, "", -1)})
    finally:
        plain.close()
        runs.close(autocommit=False)
    again = run_consumer(group_id=f"runs-{topic}", **common)
    try:
        again.assign([tp])
        first: int | None = None
        deadline = time.monotonic() + 30
        while first is None and time.monotonic() < deadline:
            for items in again.poll(timeout_ms=200).values():
                first = items[0].offsets[0]
        assert first == middle
    finally:
        again.close(autocommit=False)
