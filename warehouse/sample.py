"""Valid synthetic events for the sink's tests and benchmark (not the county simulator).

Deterministic from a seed, so a test can send "the same events again" byte for byte.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import orjson

_NS = uuid.UUID("6f1c2d0e-4a7b-4c1e-9e57-0d5a1f3b2c88")
REGION = "431224104201"


def sample_event(i: int, households: int = 1000, seed: int = 0) -> dict:
    """Event number ``i``: a water assessment or an income assessment of one of ``households``."""
    rnd = random.Random(seed * 1_000_003 + i)
    hh = f"H{REGION}-{i % households:05d}"
    day = 1 + i % 28
    month = 1 + (i // 28) % 12
    if i % 2:
        return {
            "event_id": str(uuid.uuid5(_NS, f"{seed}:{i}")),
            "event_type": "water.water_assessed",
            "schema_version": 1,
            "department": "water",
            "source_system": "water-system",
            "household_id": hh,
            "person_id": None,
            "region_code": REGION,
            "occurred_at": f"2020-{month:02d}-{day:02d}",
            "recorded_at": f"2020-{month:02d}-{day:02d}T09:30:00+08:00",
            "payload": {"safe": rnd.random() > 0.2, "issues": []},
        }
    return {
        "event_id": str(uuid.uuid5(_NS, f"{seed}:{i}")),
        "event_type": "poverty_office.income_assessed",
        "schema_version": 1,
        "department": "poverty_office",
        "source_system": "poverty-office",
        "household_id": hh,
        "person_id": None,
        "region_code": REGION,
        "occurred_at": f"2020-{month:02d}-{day:02d}T10:00:00+08:00",
        "recorded_at": f"2020-{month:02d}-{day:02d}T18:00:00Z",
        "payload": {
            "year": 2020,
            "net_income_per_capita": round(rnd.uniform(2000, 9000), 2),
            "household_size": 4,
        },
    }


def sample_messages(n: int, households: int = 1000, seed: int = 0) -> Iterator[tuple[str, bytes, bytes]]:
    """(department, key, value) for events 0..n-1."""
    for i in range(n):
        ev = sample_event(i, households, seed)
        yield ev["department"], ev["household_id"].encode(), orjson.dumps(ev)


def publish(bootstrap: str, settings, messages) -> int:
    """Send (department, key, value) messages to their department topics; returns how many."""
    from kafka import KafkaProducer

    from fupin.topics import department_topic

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024, max_request_size=8 << 20
    )
    n = 0
    try:
        for department, key, value in messages:
            producer.send(department_topic(settings, department), key=key, value=value)
            n += 1
        producer.flush()
    finally:
        producer.close()
    return n
