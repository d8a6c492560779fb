"""The sink's record-batch reader against kafka-python's own reading of the same batches."""

from __future__ import annotations

import random

import pytest
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from warehouse.fetch import RecordRun, read_run

CODECS = {"none": 0, "gzip": 1, "lz4": 3}


def build_batch(rng: random.Random, n: int, codec: int, base_offset: int = 0, gaps: bool = False) -> bytes:
    """A v2 record batch with the shapes a topic can hold: null and empty keys and values,
    values longer than one varint byte can size, headers on some records, timestamps far apart,
    offset deltas past 63 (two varint bytes) and, with ``gaps``, holes as compaction leaves."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=codec,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    offset, ts = base_offset, 1_700_000_000_000
    for i in range(n):
        kind = rng.random()
        key = None if kind < 0.1 else (b"" if kind < 0.15 else f"H{rng.randrange(10**6):06d}".encode())
        size = rng.choice([0, 1, 63, 64, 200, 8_191, 8_192, 20_000])
        value = None if rng.random() < 0.05 else bytes(rng.randrange(256) for _ in range(size))
        headers = (
            [("reason", b"bad json"), ("empty", None), ("blank", b"")][: rng.randrange(1, 4)]
            if rng.random() < 0.2
            else []
        )
        ts += rng.choice([0, 1, 1_000, 10_000_000])
        builder.append(offset - base_offset, timestamp=ts, key=key, value=value, headers=headers)
        offset += 1 + (rng.randrange(3) if gaps and i % 7 == 3 else 0)
    built = bytearray(builder.build())
    built[0:8] = base_offset.to_bytes(8, "big")  # the broker's offset of the batch's first record
    return bytes(built)


def kafka_python_reading(buf: bytes) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(buf)]


def run_rows(run: RecordRun) -> list[tuple]:
    return [(r.offset, r.timestamp, r.key, r.value, list(r.headers)) for r in run]


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
@pytest.mark.parametrize("gaps", [False, True], ids=["dense", "compacted"])
def test_runs_read_what_kafka_python_reads(codec, gaps):
    rng = random.Random(codec * 10 + gaps)
    buf = build_batch(rng, 300, codec, base_offset=1_000_000, gaps=gaps)
    run = read_run("t", 3, DefaultRecordBatch(buf))
    assert run_rows(run) == kafka_python_reading(buf)
    assert (run.topic, run.partition, len(run)) == ("t", 3, 300)
    assert run[-1].offset == run.offsets[-1] and run[0].topic == "t"


def test_a_fetch_inside_a_batch_starts_at_its_position():
    buf = build_batch(random.Random(1), 50, CODECS["lz4"], base_offset=500)
    run = read_run("t", 0, DefaultRecordBatch(buf), skip_below=520)
    expected = [row for row in kafka_python_reading(buf) if row[0] >= 520]
    assert run_rows(run) == expected and run.offsets[0] == 520


def test_joined_and_sliced_runs_keep_messages_and_headers_aligned():
    rng = random.Random(2)
    first = build_batch(rng, 40, CODECS["none"], base_offset=0)
    second = build_batch(rng, 40, CODECS["none"], base_offset=40)
    runs = [read_run("t", 0, DefaultRecordBatch(b)) for b in (first, second)]
    joined = RecordRun.join(runs)
    assert run_rows(joined) == kafka_python_reading(first) + kafka_python_reading(second)
    assert run_rows(joined[30:50]) == run_rows(joined)[30:50]
    plain = RecordRun("t", 0, [7], [1], [b"k"], [b"v"])  # no headers anywhere: none are made
    assert RecordRun.join([plain, plain]).headers is None and plain[0].headers == []


def test_damaged_batches_raise_corrupt_record_error_only():
    """Bytes flipped inside the records: the reader reads or says the batch is corrupt, never crashes."""
    rng = random.Random(3)
    buf = bytearray(build_batch(rng, 30, CODECS["none"]))
    failures = 0
    for _ in range(2_000):
        damaged = bytearray(buf)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(61, len(damaged))] = rng.randrange(256)  # after the 61-byte header
        try:
            read_run("t", 0, DefaultRecordBatch(bytes(damaged)))
        except CorruptRecordError:
            failures += 1
    assert failures > 0  # damage to lengths and varints is detected (damage inside a value cannot be)


def test_truncated_batch_is_corrupt():
    buf = build_batch(random.Random(4), 10, CODECS["none"])
    with pytest.raises(CorruptRecordError):
        read_run("t", 0, DefaultRecordBatch(buf[:-5]))
