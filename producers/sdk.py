"""Publishing SDK: one department's change events, built, checked, pseudonymized and delivered.

A :class:`Publisher` turns a department's fact into a contract envelope (``event_id`` a UUID
unless the caller gives one so that retries stay idempotent; ``recorded_at`` now unless the
caller gives the department's own recording time), swaps every raw resident ID for a keyed
pseudonym, validates against the contract, keys the message by ``household_id`` and sends it
with an idempotent producer (acks=all, batching, compression). :meth:`Publisher.flush` returns
a :class:`DeliveryReport`: accepted, rejected with reasons (never sent), failed after retries.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka.partitioner.default import DefaultPartitioner

from fupin import privacy
from fupin.compat import kafka_python
from fupin.config import Settings
from fupin.partition import key_hash
from fupin.topics import department_topic
from producers.identity import IdentityError, Pseudonymizer


class Rejected(ValueError):
    """An event the SDK refuses to send; ``reason`` is safe to log (no raw ID, name or phone).

    ``field`` is the envelope path (``payload.reason``) when a raw identifier was found there.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        reason = privacy.redact(reason)[0]  # a reason fit to log
        super().__init__(reason)
        self.reason = reason
        self.field = field


def judged(envelope: Any, department: str | None = None) -> dict[str, Any]:
    """The platform's one validity judgement (:func:`fupin.validity.judge_envelope`), at the
    department's side: what it refuses, the stream workers and the sink would dead-letter.

    A raw identifier is named by its field, never by its value. Raises :class:`Rejected`.
    """
    from fupin import validity

    key = str(envelope.get("household_id", "")).encode() if isinstance(envelope, dict) else b""
    try:
        return validity.judge_envelope(envelope, key, department)
    except validity.Invalid as exc:
        if exc.field:
            raise Rejected(
                f"field {exc.field} {exc.reason.partition(': ')[2]}: a raw ID number or phone never "
                "leaves the department; remove it and send again",
                field=exc.field,
            ) from None
        raise Rejected(exc.reason) from None


@dataclass
class DeliveryReport:
    """What became of the events handed to a publisher since the last report."""

    accepted: int = 0
    rejected: list[tuple[Any, str]] = field(default_factory=list)
    failed: list[tuple[Any, str]] = field(default_factory=list)
    duplicates_skipped: int = 0
    accepted_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed

    def summary(self) -> str:
        return (
            f"accepted {self.accepted}, rejected {len(self.rejected)}, "
            f"duplicates skipped {self.duplicates_skipped}, failed {len(self.failed)}"
        )


PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "compression_type": "lz4",
    "retries": 10,
    "max_in_flight_requests_per_connection": 5,
    "request_timeout_ms": 30_000,
    "delivery_timeout_ms": 120_000,
}


class KeyPartitioner(DefaultPartitioner):
    """kafka-python's default partitioning, with the hash remembered per key (:mod:`fupin.partition`)."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], list[int]] = {}

    def partition(self, topic, key, serialized_key, value, serialized_value, cluster):  # noqa: ANN001
        parts = cluster.partitions_for_topic(topic) if serialized_key is not None else None
        if not parts:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        ordered = self._parts.get((topic, len(parts)))
        if ordered is None:
            ordered = self._parts[(topic, len(parts))] = sorted(parts)
        return ordered[key_hash(serialized_key) % len(ordered)]


class _DirectAppend:
    """The SDK's send path: straight into kafka-python's record accumulator.

    ``KafkaProducer.send`` re-checks its arguments, headers, serializers, metadata and record
    size for every message; the SDK knows all of these once per topic (bytes key and value, no
    headers, metadata fetched at attach, values far below ``max_request_size``), so it appends
    directly, partitioned exactly like :class:`KeyPartitioner`. Idempotence, batching,
    compression, retries and futures stay kafka-python's; the internals it appends through are
    :mod:`fupin.compat.kafka_python`'s (a transactional producer uses ``send``).
    """

    def __init__(self, producer: Any, topic: str) -> None:
        from kafka.structs import TopicPartition

        parts = producer.partitions_for(topic)  # waits for the topic's metadata
        if not parts:
            raise LookupError(topic)
        self._tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self._n = len(self._tps)
        self._accumulator_append = kafka_python.accumulator_append(producer)
        self._wakeup = kafka_python.sender_wakeup(producer)
        self._producer = producer
        # Headroom for the record's own framing (varints, attributes, key length).
        self.max_value = int(producer.config["max_request_size"]) - 1024

    @classmethod
    def attach(cls, producer: Any, topic: str) -> _DirectAppend | None:
        try:
            if producer.config.get("transactional_id"):
                return None
            return cls(producer, topic)
        except (AttributeError, KeyError, LookupError, TypeError):
            return None

    def append(self, key: bytes, value: bytes):  # noqa: ANN201 - kafka-python's future
        if kafka_python.is_closed(self._producer):
            raise RuntimeError("producer is closed")
        tp = self._tps[key_hash(key) % self._n]
        future, full, new_batch, _ = self._accumulator_append(tp, None, key, value, [])
        if full or new_batch:
            self._wakeup()
        return future


def make_producer(settings: Settings, client_id: str = "fupin-producer", **overrides: Any):
    """The kafka-python producer every publisher (and the benchmark's raw side) uses."""
    from kafka import KafkaProducer

    from fupin.stack import bootstrap

    config = {"partitioner": KeyPartitioner(), **PRODUCER_DEFAULTS, **overrides}
    if os.environ.get("FUPIN_PRODUCER_COMPRESSION"):
        codec = os.environ["FUPIN_PRODUCER_COMPRESSION"]
        config["compression_type"] = None if codec == "none" else codec
    return KafkaProducer(bootstrap_servers=bootstrap(settings), client_id=client_id, **config)


_REAP_EVERY = 100_000
_dumps = orjson.dumps


def _uuid4() -> str:
    """A random (version 4) UUID as text, without the cost of uuid.UUID objects."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _no_pseudonyms(raw: str):  # noqa: ANN202
    raise IdentityError("this publisher takes pseudonymized envelopes only (it holds no pseudonym key)")


class _Clock:
    """``recorded_at`` for events without one: now, formatted at most once a millisecond-ish."""

    def __init__(self) -> None:
        self._last = 0.0
        self._text = ""

    def now(self) -> str:
        t = time.time()
        if t - self._last >= 0.001:
            self._last = t
            dt = datetime.fromtimestamp(t, UTC)
            self._text = dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
        return self._text


class Publisher:
    """Publishes one department's events to its topic. No pseudonym key, no publisher."""

    def __init__(
        self,
        settings: Settings,
        department: str,
        source_system: str | None = None,
        *,
        producer: Any = None,
        pseudonymize: bool = True,
    ) -> None:
        self.settings = settings
        self.department = department
        self.topic = department_topic(settings, department)
        self.source_system = source_system or f"{department}-system"
        # A relay of envelopes pseudonymized at the department's side (the gateway) holds no key.
        self.pseudonyms = Pseudonymizer(settings.require("pseudonym_key")) if pseudonymize else None
        self._lookup = self.pseudonyms.person if self.pseudonyms else _no_pseudonyms
        self._producer = producer
        self._own_producer = producer is None
        self._clock = _Clock()
        self._lock = threading.Lock()
        self._report = DeliveryReport()
        self._inflight: list[tuple[Any, str, Any]] = []
        self._direct: _DirectAppend | bool | None = None
        self._prefix = f"{department}."
        self.track_ids = False

    # -- building --------------------------------------------------------------------------------
    @property
    def producer(self):
        if self._producer is None:
            self._producer = make_producer(self.settings, client_id=f"fupin-{self.department}")
        return self._producer

    def build(
        self,
        event_type: str,
        household_id: str,
        region_code: str,
        occurred_at: str,
        payload: dict[str, Any],
        *,
        resident_id: str | None = None,
        person_id: str | None = None,
        event_id: str | None = None,
        recorded_at: str | None = None,
        schema_version: int = 1,
    ) -> dict[str, Any]:
        """A validated envelope; raises :class:`Rejected` with a reason safe to show."""
        if "." not in event_type:
            event_type = self._prefix + event_type
        if resident_id is not None:
            try:
                person = self._lookup(resident_id)
            except IdentityError as exc:
                raise Rejected(f"person: {exc.reason}") from None
            person_id = person.person_id
            if event_type == "public_security.person_joined":
                # The ID is authoritative for birth date and sex, as for registered members.
                payload = {**payload, "birth_date": person.birth_date, "sex": person.sex}
        if "members" in payload:
            members = payload["members"]
            if isinstance(members, list):
                payload = {**payload, "members": [self._member(m, i) for i, m in enumerate(members)]}
        envelope = {
            "event_id": event_id or _uuid4(),
            "event_type": event_type,
            "schema_version": schema_version,
            "department": self.department,
            "source_system": self.source_system,
            "household_id": household_id,
            "person_id": person_id,
            "region_code": region_code,
            "occurred_at": occurred_at,
            "recorded_at": recorded_at or self._clock.now(),
            "payload": payload,
        }
        return judged(envelope, self.department)

    def _person(self, raw: str, what: str):
        try:
            return self._lookup(raw)
        except IdentityError as exc:
            raise Rejected(f"{what}: {exc.reason}") from None

    def _member(self, member: Any, index: int) -> Any:
        if not isinstance(member, dict) or "resident_id" not in member:
            return member
        m = dict(member)
        person = self._person(m.pop("resident_id"), f"member {index + 1}")
        m["person_id"] = person.person_id
        m["birth_date"] = person.birth_date
        m["sex"] = person.sex
        return m

    def check(self, envelope: dict[str, Any]) -> None:
        """The department match, then the one validity judgement; raises :class:`Rejected`."""
        if not isinstance(envelope, dict):
            raise Rejected("not a JSON object")
        if envelope.get("department") != self.department:
            raise Rejected(
                f"department {str(envelope.get('department'))[:40]!r} does not match the publisher's "
                f"{self.department!r}"
            )
        judged(envelope, self.department)

    # -- sending ---------------------------------------------------------------------------------
    def publish(self, ref: Any = None, /, **fields: Any) -> bool:
        """Build and send one event; a rejection is recorded in the report, never raised."""
        try:
            envelope = self.build(**fields)
        except Rejected as exc:
            self._reject(ref, exc.reason)
            return False
        self._send(envelope, ref)
        return True

    def publish_envelope(self, envelope: dict[str, Any], ref: Any = None) -> bool:
        """Send an envelope taken as it is (JSONL of contract envelopes), after validation."""
        try:
            self.check(envelope)
        except Rejected as exc:
            self._reject(ref, exc.reason)
            return False
        self._send(envelope, ref)
        return True

    def publish_many(self, envelopes: Iterable[dict[str, Any]]) -> DeliveryReport:
        for i, env in enumerate(envelopes):
            self.publish_envelope(env, i)
        return self.flush()

    def _reject(self, ref: Any, reason: str) -> None:
        with self._lock:
            self._report.rejected.append((ref, reason))

    def send(self, envelope: dict[str, Any], ref: Any = None) -> None:
        """Send an envelope that :meth:`build` or :meth:`check` already accepted."""
        self._send(envelope, ref)

    def reject(self, ref: Any, reason: str) -> None:
        """Count a rejection found before the SDK saw the event (e.g. an unreadable row)."""
        self._reject(ref, privacy.redact(reason)[0])

    def submit(self, envelope: dict[str, Any]):  # noqa: ANN201 - kafka-python's future
        """Send an envelope already checked and return its delivery future, outside the report.

        For a caller that answers after its own events are acknowledged (the gateway: one answer
        per request, many requests at once), where one shared report and :meth:`flush` would wait
        for everyone's.
        """
        return self.submit_value(envelope["household_id"].encode(), _dumps(envelope))

    def submit_value(self, key: bytes, value: bytes):  # noqa: ANN201 - kafka-python's future
        """:meth:`submit` of an envelope already serialized (the gateway judges and serializes elsewhere)."""
        if self._direct is None:
            self._direct = _DirectAppend.attach(self.producer, self.topic) or False
        if self._direct and len(value) < self._direct.max_value:
            return self._direct.append(key, value)
        return self.producer.send(self.topic, key=key, value=value)

    def _send(self, envelope: dict[str, Any], ref: Any) -> None:
        self._inflight.append((self.submit(envelope), envelope["event_id"], ref))
        if len(self._inflight) >= _REAP_EVERY:
            self._reap(wait=False)

    def _reap(self, wait: bool) -> None:
        """Move finished sends into the report; keeps memory bounded on long files."""
        if wait and self._producer is not None:
            self._producer.flush()
        pending = []
        report = self._report
        for item in self._inflight:
            future = item[0]
            if not future.is_done:
                pending.append(item)
            elif future.exception is None:
                report.accepted += 1
                if self.track_ids:
                    report.accepted_ids.append(item[1])
            else:
                exc = future.exception
                reason = f"delivery failed after retries: {type(exc).__name__}: {exc}"
                report.failed.append((item[2], privacy.redact(reason)[0]))
        self._inflight = pending

    def skipped_duplicate(self) -> None:
        with self._lock:
            self._report.duplicates_skipped += 1

    def flush(self, timeout: float | None = None) -> DeliveryReport:
        """Wait for every sent event's outcome; return the report and start a new one."""
        self._reap(wait=True)
        with self._lock:
            report, self._report = self._report, DeliveryReport()
        return report

    def close(self) -> None:
        if self._producer is not None and self._own_producer:
            self._producer.close()
        self._producer = None
        self._direct = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
