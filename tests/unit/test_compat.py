"""The library internals fupin relies on (fupin/compat): each shim's version check, and the
behaviour of the private names it uses, pinned against the installed libraries."""

from __future__ import annotations

import asyncio
import inspect
from importlib.metadata import version

import kafka
import pytest
from kafka import KafkaProducer
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from fupin.compat import CompatError, kafka_python, require
from fupin.compat import faust as faust_compat


def test_an_unknown_version_is_refused_loudly_and_names_the_remedy():
    require("kafka-python", "3.0.12", ("3.0.",))
    with pytest.raises(CompatError, match=r"kafka-python 3\.1\.0 .*3\.0\.\*.*requirements\.lock"):
        require("kafka-python", "3.1.0", ("3.0.",))


def test_the_installed_libraries_are_the_ones_the_shims_were_written_for():
    # The lock pins these; an upgrade must come with a look at the shims (the modules refuse it).
    assert kafka.__version__.startswith("3.0.")
    assert version("faust-streaming").startswith("0.15.")


def test_record_bytes_are_the_decompressed_records_of_a_batch():
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=3, is_transactional=False, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    builder.append(0, timestamp=1, key=b"H1", value=b"v" * 500, headers=[])
    batch = DefaultRecordBatch(bytes(builder.build()))
    data, pos = kafka_python.record_bytes(batch)
    assert isinstance(data, bytes) and 0 <= pos < len(data)
    assert b"v" * 500 in data[pos:]  # lz4 undone: the value is there as written
    assert data[pos:].count(b"H1") == 1


def test_a_consumer_reads_with_the_partition_records_class_it_is_given():
    class Runs(kafka_python.PartitionRecords):
        pass

    consumer = kafka.KafkaConsumer(bootstrap_servers="127.0.0.1:9", api_version=(2, 5))
    try:
        kafka_python.use_partition_records(consumer, Runs)
        # The fetcher makes its per-partition readers from this attribute (kafka-python 3.0).
        assert consumer._fetcher.PartitionRecords is Runs  # noqa: SLF001 - the pinned behaviour
        assert "self.PartitionRecords(" in inspect.getsource(type(consumer._fetcher))  # noqa: SLF001
        with pytest.raises(TypeError):
            kafka_python.use_partition_records(consumer, dict)
    finally:
        consumer.close()


def test_the_producer_internals_the_sdk_appends_through():
    producer = KafkaProducer(bootstrap_servers="127.0.0.1:9", api_version=(2, 5))
    try:
        append = kafka_python.accumulator_append(producer)
        assert list(inspect.signature(append).parameters)[:5] == ["tp", "timestamp_ms", "key", "value", "headers"]
        assert callable(kafka_python.sender_wakeup(producer))
        assert kafka_python.is_closed(producer) is False
    finally:
        producer.close(timeout=0)
    assert kafka_python.is_closed(producer) is True


def test_faust_consumer_is_tuned_once_and_batches_stand_for_their_records():
    from faust.transport.consumer import Consumer

    faust_compat.tune(batched={"bench-topic"})
    drain = Consumer._drain_messages  # noqa: SLF001 - the method the tuning replaces
    faust_compat.tune(batched={"bench-topic"})
    assert Consumer._drain_messages is drain  # noqa: SLF001 - idempotent
    assert "bench-topic" in faust_compat.BATCHED
    # The private names the batched delivery uses are still Faust's.
    for name in ("_wait_next_records", "_to_message", "_add_gap", "_read_offset", "_commit_every"):
        assert name in inspect.getsource(Consumer), name
    batch = faust_compat._batch_class()(  # noqa: SLF001 - the module's own class
        "t", 0, 9, None, 0, None, None, b"", None, 0, 0, None, generation_id=1
    )
    batch.records = ["r1", "r2"]
    assert faust_compat.fetched_records(batch) == ["r1", "r2"]
    assert faust_compat.fetched_records(object()) is None


def test_the_current_event_decides_a_table_access_partition():
    from faust.streams import current_event

    class Event:
        pass

    event = Event()

    async def scenario() -> tuple[object, object]:
        faust_compat.set_current_event(event)
        seen = current_event()
        faust_compat.set_current_event(None)
        return seen, current_event()

    assert asyncio.run(scenario()) == (event, None)
