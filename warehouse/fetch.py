"""The sink's Kafka consumer: record batches read whole, without a Python object per message.

kafka-python's consumer turns every message of a fetch into a ``ConsumerRecord`` through a
generator, with a varint call per field and a deserializer call per key and value: about 6 µs a
message, which was most of the sink's consuming thread. Here each Kafka record batch of a fetch
becomes one :class:`RecordRun` (lists of offsets, timestamps, keys and values) read by one tight
loop, and ``poll`` returns runs instead of records. Everything else (fetching, CRC checks,
positions, the group protocol, commits) stays kafka-python's.

This swaps the nested ``PartitionRecords`` class of kafka-python's ``Fetcher`` on one consumer
instance, through :mod:`fupin.compat.kafka_python` (which checks kafka-python's version), and
``tests/unit/test_fetch.py`` checks the runs against kafka-python's own reading of the same batches (codecs, keys, headers, null values, control
batches, a fetch that starts inside a batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, overload

from kafka import KafkaConsumer
from kafka.errors import CorruptRecordError
from kafka.record.util import decode_varint

from fupin.compat.kafka_python import PartitionRecords, record_bytes, use_partition_records


class Record(NamedTuple):
    """One message, for the code paths that take messages one by one."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


class RecordRun:
    """Consecutive messages of one partition, column by column; a sequence of :class:`Record`."""

    __slots__ = ("topic", "partition", "offsets", "timestamps", "keys", "values", "headers")

    def __init__(
        self,
        topic: str,
        partition: int,
        offsets: list[int],
        timestamps: list[int],
        keys: list[bytes | None],
        values: list[bytes | None],
        headers: list[list[tuple[str, bytes | None]]] | None = None,
    ) -> None:
        self.topic, self.partition = topic, partition
        self.offsets, self.timestamps, self.keys, self.values = offsets, timestamps, keys, values
        #: Per message, or None when no message of the run has headers (the usual case).
        self.headers = headers

    @classmethod
    def join(cls, runs: list[RecordRun]) -> RecordRun:
        """Runs of one partition, in offset order, as one run."""
        if len(runs) == 1:
            return runs[0]
        first = runs[0]
        joined = cls(first.topic, first.partition, [], [], [], [])
        any_headers = any(r.headers is not None for r in runs)
        headers: list[list[tuple[str, bytes | None]]] = []
        for r in runs:
            joined.offsets += r.offsets
            joined.timestamps += r.timestamps
            joined.keys += r.keys
            joined.values += r.values
            if any_headers:
                headers += r.headers if r.headers is not None else [[] for _ in r.offsets]
        joined.headers = headers if any_headers else None
        return joined

    def __len__(self) -> int:
        return len(self.offsets)

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> RecordRun: ...

    def __getitem__(self, i: int | slice) -> Record | RecordRun:
        h = self.headers
        columns = (self.offsets[i], self.timestamps[i], self.keys[i], self.values[i])
        if isinstance(i, slice):
            return RecordRun(self.topic, self.partition, *columns, h[i] if h is not None else None)
        return Record(self.topic, self.partition, *columns, h[i] if h is not None else [])

    def __iter__(self) -> Iterator[Record]:
        for i in range(len(self.offsets)):
            yield self[i]


def _zigzag(data: bytes, p: int) -> tuple[int, int]:
    """A zigzag varint at ``p`` and the position after it (one byte inline: the usual case)."""
    b = data[p]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), p + 1
    return decode_varint(data, p)


def _sized(data: bytes, p: int) -> tuple[bytes | None, int]:
    """A length-prefixed byte string at ``p`` (length -1: null) and the position after it."""
    size, p = _zigzag(data, p)
    if size < 0:
        return None, p
    return data[p : p + size], p + size


def read_run(topic: str, partition: int, batch: Any, skip_below: int = -1) -> RecordRun:
    """The messages of a v2 record batch (kafka-python's ``DefaultRecordBatch``) with offset ≥ ``skip_below``.

    Raises ``CorruptRecordError`` if the records do not fill the batch exactly.
    """
    data, pos = record_bytes(batch)  # slices of bytes are bytes: one copy here, none per value
    base, first_ts = batch.base_offset, batch.first_timestamp
    append_time = batch.max_timestamp if batch.timestamp_type == batch.LOG_APPEND_TIME else None
    offsets: list[int] = []
    stamps: list[int] = []
    keys: list[bytes | None] = []
    values: list[bytes | None] = []
    headers: list[list[tuple[str, bytes | None]]] | None = None
    try:
        for n in range(batch.records_count):
            # Record: length, attributes (int8), timestamp delta, offset delta, key, value, headers.
            length, pos = _zigzag(data, pos)
            end = pos + length
            ts_delta, p = _zigzag(data, pos + 1)  # after the attributes byte
            off_delta, p = _zigzag(data, p)
            key, p = _sized(data, p)
            value, p = _sized(data, p)
            if data[p] != 0:  # headers (only the dead-letter topic has them)
                if headers is None:
                    headers = [[] for _ in offsets]
                count, p = _zigzag(data, p)
                if count < 0:
                    raise CorruptRecordError(f"invalid number of record headers {count}")
                items = []
                for _ in range(count):
                    size, p = _zigzag(data, p)
                    if size < 0:
                        raise CorruptRecordError(f"invalid header key size {size}")
                    name = data[p : p + size].decode()
                    p += size
                    header_value, p = _sized(data, p)
                    items.append((name, header_value))
                headers.append(items)
            else:
                p += 1
                if headers is not None:
                    headers.append([])
            if p != end:
                raise CorruptRecordError(
                    f"record {n} of the batch at {base} reads {p - pos} bytes, not {length}"
                )
            pos = end
            offset = base + off_delta
            if offset < skip_below:  # a fetch from the middle of a batch returns the whole batch
                if headers is not None:
                    headers.pop()
                continue
            offsets.append(offset)
            stamps.append(append_time if append_time is not None else first_ts + ts_delta)
            keys.append(key)
            values.append(value)
    except (IndexError, ValueError) as exc:
        raise CorruptRecordError(f"invalid record structure in the batch at {base}: {exc!r}") from exc
    if pos != len(data):
        raise CorruptRecordError(f"{len(data) - pos} unread bytes after the records of the batch at {base}")
    return RecordRun(topic, partition, offsets, stamps, keys, values, headers)


class RunPartitionRecords(PartitionRecords):
    """A partition's fetched data as runs, one per record batch (kafka-python's reader otherwise)."""

    def _maybe_skip_record(self, record: Any) -> bool:
        return False  # read_run leaves out the offsets before the fetch position

    def _unpack_records(self, tp, records, key_deserializer, value_deserializer):  # noqa: ANN001
        batch = records.next_batch()
        last = None
        while batch is not None:
            last = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"record batch for partition {tp} at offset {batch.base_offset} failed its CRC check"
                )
            if batch.magic < 2:  # the old message formats: kafka-python reads them, one run each
                legacy = [r for r in batch if r.offset >= self.fetch_offset]
                run = RecordRun(
                    tp.topic,
                    tp.partition,
                    [r.offset for r in legacy],
                    [r.timestamp for r in legacy],
                    [r.key for r in legacy],
                    [r.value for r in legacy],
                )
                last = None
            elif batch.is_control_batch:  # transaction markers are not messages
                self.next_fetch_offset = batch.next_offset
                batch = records.next_batch()
                continue
            else:
                run = read_run(tp.topic, tp.partition, batch, self.fetch_offset)
            self.bytes_read += getattr(batch, "size_in_bytes", 0)  # kafka-python's fetch metrics
            batch = records.next_batch()
            if run.offsets:
                self.records_read += len(run.offsets)
                self.next_fetch_offset = run.offsets[-1] + 1
                yield run
        if last is not None:  # v2 batches keep their last offset even if compaction removed it
            self.next_fetch_offset = last.next_offset
        self.drain()


def run_consumer(*topics: str, **config: Any) -> KafkaConsumer:
    """A kafka-python consumer whose ``poll`` returns :class:`RecordRun` lists instead of records.

    ``max_poll_records`` then counts runs (record batches); messages come as bytes (no
    deserializers) and transactions are read uncommitted, as the sink needs.
    """
    for option in ("key_deserializer", "value_deserializer"):
        if config.get(option) is not None:
            raise ValueError(f"a run consumer reads bytes: {option} is not supported")
    if config.get("isolation_level", "read_uncommitted") != "read_uncommitted":
        raise ValueError("a run consumer reads uncommitted (it does not filter aborted transactions)")
    consumer = KafkaConsumer(*topics, **config)
    use_partition_records(consumer, RunPartitionRecords)
    return consumer
