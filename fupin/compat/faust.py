"""Faust (faust-streaming 0.15) internals the stream workers rely on, and what each buys.

Applied once per process by :func:`tune`, for the embedded broker and for throughput:

- **Fetch wait.** tansu holds a fetch for its whole wait rather than answering when data arrives,
  and Faust asks for 1.5 s: that would be the floor of every alert's latency (50 ms here).
- **One Faust event per fetched partition batch** on the topics named in ``tune(batched=...)``.
  Faust turns every consumed record into a message, an event, a queue entry, a stream step and an
  ack, and guards each delivery with ``wait_first`` (four tasks and an ``asyncio.wait``): about
  55 µs a record on these cores, a ceiling near 18,000 records/s before any work is done; batched,
  the same agent that only counts reads 200,000-260,000 records/s (``bench/streams.py``'s
  ceiling line): the shim buys about 50 µs an event. The records one poll returned for one
  partition travel as one :class:`FetchedBatch` message (its offset is the last record's; the
  offsets before it are registered as a gap, which Faust counts as done only once that message
  is acked). Other topics (the tables' changelogs during recovery) keep Faust's message per record.
- **Delivery per poll.** One ``wait_first`` guards the delivery of everything one poll returned;
  a rebalance still interrupts it (``suspend_flow``), and every message keeps its gap,
  read-offset and commit bookkeeping.

Besides, the few private names the worker needs: the current-event context a table write is
partitioned by (:func:`set_current_event`), a table's changelog topic rebuilt after its
serializers changed (:func:`rebuild_changelog_topic`), the aiokafka producer under Faust's
(:func:`kafka_producer`), and a worker's own clean stop (:func:`request_stop`).
"""

from __future__ import annotations

import asyncio
import weakref
from importlib.metadata import version
from typing import Any

from fupin.compat import require

require("faust-streaming", version("faust-streaming"), ("0.15.",))

from faust.streams import _current_event  # noqa: E402 - after the version check

FETCH_MAX_WAIT_MS = 50
#: Messages delivered between two yields to the event loop (Faust's own figure).
YIELD_EVERY = 100


def _shorten_fetch_wait() -> None:
    from faust.transport.drivers import aiokafka as driver

    cls = driver.AIOKafkaConsumerThread
    if getattr(cls, "_fupin_fetch_wait", None) == FETCH_MAX_WAIT_MS:
        return
    original = cls._create_worker_consumer

    def create(self, transport):  # noqa: ANN001, ANN202 - Faust's signature
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    cls._create_worker_consumer = create
    cls._fupin_fetch_wait = FETCH_MAX_WAIT_MS


#: Topics whose records travel as one Faust message per fetched partition batch.
BATCHED: set[str] = set()
_FetchedBatch: Any = None


def _batch_class() -> Any:
    """:class:`FetchedBatch`, built on first use so that importing this module stays light."""
    global _FetchedBatch
    if _FetchedBatch is None:
        from faust.types.tuples import ConsumerMessage

        class FetchedBatch(ConsumerMessage):
            """One Faust message standing for the ``records`` one poll returned for one partition."""

            __slots__ = ("records",)

        _FetchedBatch = FetchedBatch
    return _FetchedBatch


def fetched_records(message: Any) -> list[Any] | None:
    """The aiokafka records a message stands for, or None for an ordinary (single) message."""
    return getattr(message, "records", None)


async def _fetch(consumer: Any, timeout: float) -> list[tuple[Any, Any]]:
    """One poll as (tp, message) pairs: a FetchedBatch per partition of a batched topic.

    Faust's ``Consumer.getmany`` minus the per-record work, with its checks: flow still active,
    same consumer generation, partition still active.
    """
    records, active = await consumer._wait_next_records(timeout)
    if not records or consumer.should_stop:
        return []
    app = consumer.app
    generation = app.consumer_generation_id
    to_message = consumer._to_message
    batch_class = _batch_class()
    out: list[tuple[Any, Any]] = []
    for tp, polled in records.items():
        if not consumer.flow_active or app.consumer_generation_id != generation:
            break
        if not polled or not (active is None or tp in active or tp in consumer._buffered_partitions):
            continue
        if tp.topic not in BATCHED:
            out.extend((tp, to_message(tp, record)) for record in polled)
            continue
        last = polled[-1]
        message = batch_class(
            tp.topic,
            tp.partition,
            last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else None,
            last.timestamp_type,
            None,
            None,
            b"",
            None,
            0,
            0,
            tp,
            generation_id=generation,
        )
        message.records = polled
        out.append((tp, message))
    return out


async def _deliver(consumer: Any, batch: list[tuple[Any, Any]]) -> None:
    """Hand one poll to the streams, message by message, with Faust's bookkeeping."""
    callback = consumer.callback
    read_offset = consumer._read_offset
    commit_every = consumer._commit_every
    acks_enabled_for = consumer.app.topics.acks_enabled_for
    since_yield = 0
    for tp, message in batch:
        if not consumer.flow_active:  # a rebalance began: what is left is fetched again after it
            return
        since_yield += 1
        if since_yield > YIELD_EVERY:
            await asyncio.sleep(0)
            since_yield = 0
        offset = message.offset
        last = read_offset[tp]
        if last is not None and offset < last:
            continue  # already delivered (Faust drops these too)
        records = fetched_records(message)
        first = offset
        if records is not None:
            if last is not None and records[0].offset < last:
                records = message.records = [r for r in records if r.offset >= last]
            first = records[0].offset
        if acks_enabled_for(message.topic):
            if last and first - last > 1:
                await consumer._add_gap(tp, last + 1, first)
            if first < offset:  # the batch's own records before its last: done when it is acked
                await consumer._add_gap(tp, first, offset - 1)
        if commit_every is not None and consumer._n_acked >= commit_every:
            consumer._n_acked = 0
            await consumer.commit()
        await callback(message)
        read_offset[tp] = offset


async def _drain_in_batches(self: Any, fetcher: Any) -> None:  # pragma: no cover - runs in the worker
    """Faust's ``Consumer._drain_messages`` with one ``wait_first`` per fetched batch."""
    from faust.transport.consumer import CONSUMER_FETCHING

    consumer_stopped = self._stopped.is_set
    fetcher_stopped = fetcher._stopped.is_set
    try:
        while not (consumer_stopped() or fetcher_stopped()):
            self.diag.set_flag(CONSUMER_FETCHING)
            batch = await _fetch(self, timeout=1.0)
            await asyncio.sleep(0)  # getmany may return at once, again and again
            if batch and not self.should_stop:
                await self.wait_first(_deliver(self, batch), self.suspend_flow.wait())
            self.diag.unset_flag(CONSUMER_FETCHING)
    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            return
        raise
    finally:
        self.diag.unset_flag(CONSUMER_FETCHING)


def tune(batched: set[str] | frozenset[str] = frozenset()) -> None:
    """Apply the changes (idempotent); ``batched``: topics to deliver one batch per partition poll."""
    from faust.transport.consumer import Consumer

    _shorten_fetch_wait()
    BATCHED.update(batched)
    if Consumer._drain_messages is not _drain_in_batches:
        Consumer._drain_messages = _drain_in_batches


def set_current_event(event: Any | None) -> None:
    """Make ``event`` the current one: a table read or write goes to that event's partition."""
    _current_event.set(weakref.ref(event) if event is not None else None)


def rebuild_changelog_topic(table: Any) -> None:
    """Build the table's changelog topic again (Faust built it with the serializers it had when the
    table was added; recovery decodes with the topic's)."""
    table.changelog_topic = table._new_changelog_topic()


def kafka_producer(app: Any) -> Any:
    """The started aiokafka producer under the app's Faust producer (its batch API is public)."""
    return app.producer._ensure_producer()


def request_stop(worker: Any) -> None:
    """Begin the worker's own clean stop, as its SIGTERM handler would (thread-safe)."""
    worker.loop.call_soon_threadsafe(worker._on_sigterm)
