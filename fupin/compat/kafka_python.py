"""kafka-python (3.0) internals the sink's consumer and the SDK's producer rely on, and what each buys.

- **Record batches read whole** (``warehouse/fetch.py``): the consumer's fetcher gets our subclass
  of :data:`PartitionRecords` (it overrides ``_unpack_records`` and ``_maybe_skip_record``), and
  :func:`record_bytes` hands it a batch's decompressed records. kafka-python makes a
  ``ConsumerRecord`` per message through a generator, with a varint call per field: about 6 µs a
  message; read as one run per batch the sink's consuming thread spends 2.1-2.4 µs an event
  (``bench/sink.py``, "consuming thread"): the shim buys about 4 µs an event.
- **Appends straight into the record accumulator** (``producers/sdk.py``): ``KafkaProducer.send``
  re-checks arguments, headers, serializers, metadata and record size for every message; the SDK
  knows them once per topic (:func:`accumulator_append`, :func:`sender_wakeup`,
  :func:`is_closed`). Its gain was not measured apart from the SDK's whole send path
  (``bench/publish.py``: SDK against raw kafka-python, ratio 1.04 in round 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kafka
from kafka.consumer.fetcher import Fetcher

from fupin.compat import require

require("kafka-python", kafka.__version__, ("3.0.",))

#: The fetcher's per-partition reader, whose ``_unpack_records`` a subclass may replace.
PartitionRecords = Fetcher.PartitionRecords


def use_partition_records(consumer: Any, cls: type) -> None:
    """Make ``consumer``'s fetcher read fetched partition data with ``cls`` (a PartitionRecords)."""
    if not issubclass(cls, PartitionRecords):
        raise TypeError(f"{cls.__name__} is not a kafka-python PartitionRecords")
    consumer._fetcher.PartitionRecords = cls


def record_bytes(batch: Any) -> tuple[bytes, int]:
    """A v2 record batch's records, decompressed (every codec kafka-python has), and where they begin."""
    iter(batch)  # kafka-python decompresses the records on first iteration
    return bytes(batch._buffer), batch._pos


def accumulator_append(producer: Any) -> Callable[..., tuple]:
    """The producer's ``RecordAccumulator.append(tp, timestamp_ms, key, value, headers)``."""
    return producer._accumulator.append


def sender_wakeup(producer: Any) -> Callable[[], None]:
    """Wakes the producer's sender thread (after an append that filled or opened a batch)."""
    return producer._sender.wakeup


def is_closed(producer: Any) -> bool:
    return bool(producer._closed)
