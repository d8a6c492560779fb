"""Which partition a household's messages go to: the platform's one partitioning rule.

Kafka's default partitioner (murmur2 of the key, made positive, modulo the partition count), as
the clients' defaults compute it (kafka-python, aiokafka, the Java client), so that a household's
events, status documents, alerts and table changelog meet in the same partition number whoever
wrote them. The pure-Python murmur2 costs microseconds a key and household ids recur, so the hash
is remembered (a bounded cache shared by the process).
"""

from __future__ import annotations

from kafka.partitioner.default import murmur2

#: Keys whose hash is remembered before the cache starts again.
MAX_KEYS = 1_000_000
_HASHES: dict[bytes, int] = {}


def key_hash(key: bytes) -> int:
    """The default partitioner's positive murmur2 hash of ``key``."""
    h = _HASHES.get(key)
    if h is None:
        if len(_HASHES) >= MAX_KEYS:
            _HASHES.clear()
        h = _HASHES[key] = murmur2(key) & 0x7FFFFFFF
    return h


def partition_of(key: bytes, count: int) -> int:
    """The partition (0 … count-1) the default partitioner picks for ``key``."""
    return key_hash(key) % count
