"""One request's events: judged, deduplicated, published, dead-lettered; answered once acknowledged.

Per event, in order: the one judgement (:mod:`.judging`, in a worker process for a large request:
:func:`fupin.validity.judge` with the token's department as the topic's and the envelope's own
``household_id`` as the key, since HTTP has no Kafka key), then, on the event loop, the duplicate rule on (household_id, event_id): the same fingerprint already accepted is
``duplicate``, another fingerprint is ``rejected`` with :func:`fupin.validity.conflict_reason`.
Accepted events go through the SDK's publisher (idempotent producer, acks=all, key =
household_id); a rejected event goes to the dead-letter topic, redacted, with source ``gateway``.

A request is answered only when the broker acknowledged every message it sent (events and dead
letters), and when every event it calls ``duplicate`` because another request is sending it has
been acknowledged too: so ``accepted`` and ``duplicate`` mean "on the topic", and a department
that got no answer may resend. Not acknowledged within ``gateway_ack_timeout``: 429 (resend
later; what was acknowledged meanwhile is then a duplicate); a delivery that failed: 503.
All state lives on the event loop's thread; the producer's sender thread only counts down.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError, MessageSizeTooLargeError

from fupin.config import Settings
from fupin.topics import DEPARTMENTS, deadletter_topic, department_topic
from fupin.validity import conflict_reason
from producers.gateway.body import BodyError
from producers.gateway.index import AcceptedIndex, index_path
from producers.gateway.judging import Judged, judge_body, ready
from producers.sdk import Publisher, make_producer
from streams.deadletter import dead_letter

log = logging.getLogger("fupin.gateway")
SOURCE = "gateway"
#: No linger: a request's events are appended in one burst, then the request waits for their acks;
#: lingering only delays the answer (measured: single-event p50 4.4 ms with 2 ms, 1.2 ms with 0).
LINGER_MS = 0
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"
#: Requests of at least this many bytes are judged in a worker process (about 150 events).
POOL_MIN_BYTES = 64 * 1024


def tune_gc() -> None:
    """For a serving process, once started: fewer cyclic collections, none over start-up's objects.

    A batch allocates tens of thousands of containers that reference counting frees anyway; at
    the default threshold each 700 allocations start a collection (measured: about 15% more CPU
    per event). Start-up's objects (schemas, validators, modules) are frozen out of every scan.
    """
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


class Busy(Exception):
    """The broker is behind: answer 429 with Retry-After."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class DeliveryFailed(Exception):
    """The broker refused or lost a message after retries: answer 503, the department resends."""


class Delivery:
    """The messages one request sent, counted down by the producer's callbacks.

    Records of one producer batch are acknowledged together, so the count is kept per batch (the
    record futures of kafka-python 3.0, which the SDK's send path is tied to, name their batch);
    each record's own outcome is read once all batches are done.
    """

    __slots__ = ("_loop", "_lock", "_left", "_batches", "done", "entries", "futures", "error")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._left = 1  # released by seal(), so it cannot finish before every message is counted
        self._batches: dict[int, Any] = {}
        self.done: asyncio.Future = loop.create_future()
        self.entries: list[tuple[str, str, Any]] = []  # (event key, fingerprint, future) of accepted events
        self.futures: list[Any] = []  # every message's future: events and dead letters
        self.error: str | None = None

    @property
    def sent(self) -> int:
        return len(self.futures)

    def add(self, future: Any) -> None:
        self.futures.append(future)
        batch = getattr(future, "_produce_future", future)
        self._batches.setdefault(id(batch), batch)

    def _one(self, _: Any) -> None:
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            self._loop.call_soon_threadsafe(self._finish)

    def seal(self) -> None:
        """Every message added: count the batches down. Registered only now, after the records'
        own callbacks, so that each record's future is resolved when its batch's count drops."""
        batches = list(self._batches.values())
        with self._lock:
            self._left += len(batches)
        for batch in batches:
            batch.add_callback(self._one)
            batch.add_errback(self._one)
        self._one(None)

    def _finish(self) -> None:
        for future in self.futures:
            exc = future.exception
            if exc is not None or not future.is_done:
                self.error = f"{type(exc).__name__}: {exc}" if exc is not None else "not acknowledged"
                break
        if not self.done.done():
            self.done.set_result(None)


@dataclass
class Outcome:
    request_id: int
    verdicts: list[dict[str, Any]]
    counts: dict[str, int] = field(default_factory=lambda: {ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0})


class Ingest:
    """The gateway's publishing side: one producer, one SDK publisher per department."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        self.producer = make_producer(settings, client_id="fupin-gateway", linger_ms=LINGER_MS)
        self.publishers = {
            d: Publisher(settings, d, SOURCE, producer=self.producer, pseudonymize=False) for d in DEPARTMENTS
        }
        self.topics = {d: department_topic(settings, d) for d in DEPARTMENTS}
        self.deadletter_topic = deadletter_topic(settings)
        self.index = AcceptedIndex(index_path(settings), settings.gateway_index_size)
        # Spawned, not forked: the producer's threads run in this process already.
        self.pool = (ProcessPoolExecutor(settings.gateway_workers, mp_context=multiprocessing.get_context("spawn"))
                     if settings.gateway_workers else None)
        #: event key -> (fingerprint, delivery) of events sent and not yet acknowledged.
        self.pending: dict[str, tuple[str, Delivery]] = {}
        self.in_flight = 0
        self._last_request = 0

    def warm_up(self) -> None:
        """Fetch every topic's metadata and start the workers now, so that no request waits for them."""
        if self.pool is not None:
            for job in [self.pool.submit(ready) for _ in range(self.settings.gateway_workers)]:
                job.result(timeout=120)
        for topic in (*self.topics.values(), self.deadletter_topic):
            if not self.producer.partitions_for(topic):
                raise RuntimeError(f"topic {topic} does not exist: run 'fupin up' (it creates the topics)")

    def request_id(self) -> int:
        """Milliseconds since the epoch, unique and increasing within this process."""
        rid = max(time.time_ns() // 1_000_000, self._last_request + 1)
        self._last_request = rid
        return rid

    # -- the events of one request -------------------------------------------------------------------
    async def publish(self, department: str, body: bytes, content_type: str) -> Outcome:
        """Judge, deduplicate and publish a request's events; BodyError, Busy or DeliveryFailed otherwise."""
        if self.in_flight >= self.settings.gateway_max_pending:
            raise self._behind()
        max_events = self.settings.gateway_max_events
        if self.pool is not None and len(body) >= POOL_MIN_BYTES:
            judged = await self.loop.run_in_executor(self.pool, judge_body, department, body, content_type, max_events)
        else:
            judged = judge_body(department, body, content_type, max_events)
        if isinstance(judged, tuple):
            raise BodyError(*judged)
        if self.in_flight and self.in_flight + len(judged) > self.settings.gateway_max_pending:
            raise self._behind()
        delivery = Delivery(self.loop)
        try:
            outcome, waits = self._process(department, judged, delivery)
        except KafkaError as exc:  # the producer refused a send (closed, no metadata): nothing half-kept
            log.warning("a request failed while sending: %s", exc)
            raise DeliveryFailed(f"the gateway could not send ({type(exc).__name__}); resend the request") from None
        finally:
            # Whatever was sent is counted down and settled, so no event stays pending.
            delivery.seal()
            self.in_flight += delivery.sent
            delivery.done.add_done_callback(lambda _: self._settle(delivery))
        awaited = [delivery.done, *(d.done for d in waits.values())]
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.gather(*awaited)), self.settings.gateway_ack_timeout)
        except TimeoutError:
            raise Busy(
                f"the broker did not acknowledge within {self.settings.gateway_ack_timeout:g}s; "
                "resend the request later (what was acknowledged meanwhile will be a duplicate)",
                retry_after=max(1, round(self.settings.gateway_ack_timeout)),
            ) from None
        if delivery.error:
            raise DeliveryFailed(f"delivery failed after retries ({delivery.error}); resend the request")
        for key, fp in waits:
            if self.index.get(key) != fp:
                raise DeliveryFailed("a duplicate of this request was being sent by another one that failed; resend")
        return outcome

    def _behind(self) -> Busy:
        return Busy(f"the broker is behind: {self.in_flight} events await its acknowledgement "
                    f"(gateway_max_pending {self.settings.gateway_max_pending})")

    def _process(
        self, department: str, judged: list[Judged], delivery: Delivery
    ) -> tuple[Outcome, dict[tuple[str, str], Delivery]]:
        """The duplicate rule and the sends, on the loop (the state's one thread)."""
        rid = self.request_id()
        verdicts: list[dict[str, Any]] = []
        outcome = Outcome(rid, verdicts)
        counts = outcome.counts
        waits: dict[tuple[str, str], Delivery] = {}
        seen: dict[str, str] = {}
        pending, index_get = self.pending, self.index.get
        submit = self.publishers[department].submit_value
        for i, (raw, key, ekey, eid, fp, value, reason) in enumerate(judged):
            if reason is not None:
                self._dead_letter(reason, raw, key, department, i, rid, delivery)
                verdicts.append({"event_id": eid, "verdict": REJECTED, "reason": reason})
                counts[REJECTED] += 1
                continue
            first = seen.get(ekey)
            other = None
            if first is None:
                held = pending.get(ekey)
                if held is not None:
                    first, other = held
                else:
                    first = index_get(ekey)
            if first is None:
                try:
                    fut = submit(key, value)
                except MessageSizeTooLargeError:
                    reason = (f"the event is {len(value)} bytes; the broker takes at most "
                              f"{self.producer.config['max_request_size']} bytes a message")
                    self._dead_letter(reason, value if raw is None else raw, key, department, i, rid, delivery)
                    verdicts.append({"event_id": eid, "verdict": REJECTED, "reason": reason})
                    counts[REJECTED] += 1
                    continue
                delivery.add(fut)
                delivery.entries.append((ekey, fp, fut))
                pending[ekey] = (fp, delivery)
                seen[ekey] = fp
                verdicts.append({"event_id": eid, "verdict": ACCEPTED})
                counts[ACCEPTED] += 1
            elif first == fp:
                if other is not None:
                    waits[(ekey, fp)] = other
                verdicts.append({"event_id": eid, "verdict": DUPLICATE})
                counts[DUPLICATE] += 1
            else:
                reason = conflict_reason(eid, first)
                self._dead_letter(reason, value if raw is None else raw, key, department, i, rid, delivery)
                verdicts.append({"event_id": eid, "verdict": REJECTED, "reason": reason})
                counts[REJECTED] += 1
        return outcome, waits

    def _dead_letter(self, reason: str, raw: bytes, key: bytes | None, department: str, index: int,
                     request_id: int, delivery: Delivery) -> None:  # fmt: skip
        # Identity in place of (partition, offset): the event's index in its request, the request's id.
        letter = dead_letter(reason, raw, key, self.topics[department], index, request_id)
        headers = [(k, SOURCE.encode()) if k == "fupin.source" else (k, v) for k, v in letter.headers]
        try:
            delivery.add(self.producer.send(self.deadletter_topic, key=letter.key, value=letter.value,
                                            headers=headers))
        except MessageSizeTooLargeError:
            # Larger than the broker takes: the verdict still tells the department; the log says so.
            log.warning("dead letter of request %s event %s not written: %s bytes is past the broker's limit",
                        request_id, index, len(raw))

    def _settle(self, delivery: Delivery) -> None:
        """On the loop, once every message of a request is acknowledged or failed: remember the accepted."""
        self.in_flight -= delivery.sent
        acked = []
        pending = self.pending
        for ekey, fp, fut in delivery.entries:
            held = pending.get(ekey)
            if held is not None and held[1] is delivery:
                del pending[ekey]
            if fut.exception is None:
                acked.append((ekey, fp))
        self.index.add_many(acked)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        self.producer.close()
        self.index.close()
