"""The one partitioning rule equals the clients' default partitioners, so that whoever writes a
household's messages (SDK, gateway, stream worker) they meet in the same partition."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner as AIOKafkaDefault
from kafka.partitioner.default import DefaultPartitioner as KafkaPythonDefault

from fupin import partition


class Cluster:
    """The metadata kafka-python's partitioner asks: one topic of ``count`` partitions."""

    def __init__(self, count: int) -> None:
        self.parts = set(range(count))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.parts

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.parts


def kafka_python_choice(key: bytes, count: int) -> int:
    return KafkaPythonDefault().partition("t", key, key, None, None, Cluster(count))


def test_partition_of_is_the_default_partitioners_choice():
    rng = random.Random(5)
    keys = [f"H{rng.randrange(10**7):07d}".encode() for _ in range(2000)] + [b"", b"\xff\x00", "户".encode()]
    for count in (1, 3, 6, 12, 31):
        parts = list(range(count))
        for key in keys:
            want = kafka_python_choice(key, count)
            assert partition.partition_of(key, count) == want
            assert AIOKafkaDefault()(key, parts, parts) == want


def test_the_hash_cache_stays_bounded(monkeypatch):
    monkeypatch.setattr(partition, "MAX_KEYS", 10)
    partition._HASHES.clear()  # noqa: SLF001 - the module's own cache
    for i in range(25):
        partition.key_hash(f"H{i}".encode())
    assert len(partition._HASHES) <= 10  # noqa: SLF001
    assert partition.partition_of(b"H3", 6) == kafka_python_choice(b"H3", 6)
