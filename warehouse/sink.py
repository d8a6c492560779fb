"""The sink: every topic's messages land in the warehouse exactly once, offsets committed after.

Checkpointing like Quix Streams: messages are buffered into per-table batches, the batch is
flushed (inserted, durable) when it is big enough or old enough, and only then are the offsets
committed. A crash between insert and commit re-reads the batch; it still counts once because
each table is a ReplacingMergeTree keyed on the message's identity (read with ``FINAL`` views) and
a retried batch carries the same insert deduplication token. A table that cannot be written
pauses consumption and is retried with backoff; nothing is committed past unwritten data. A
message that breaks the contract becomes a dead letter (source ``sink``), never a crash.

On chdb, department events take the fast path (:class:`FastEvents`): the consuming thread only
keeps the records, and the engine checks them against the contract compiled to SQL
(:mod:`warehouse.contract_sql`) and writes them, without the GIL. What it does not accept goes
through the Python path (``fupin.contract``), which decides and gives dead letters their reasons.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from fupin.config import Settings
from fupin.contract import ContractError, decode
from fupin.timeutil import parse_instant
from fupin.topics import DEPARTMENTS, alerts_topic, deadletter_topic, input_topics, status_topic
from warehouse import contract_sql
from warehouse.client import Warehouse, WarehouseError
from warehouse.fetch import RecordRun

log = logging.getLogger("fupin.sink")

GROUP_ID = "fupin-sink"

EVENT_COLUMNS = [
    "event_id", "event_type", "schema_version", "department", "source_system", "household_id",
    "person_id", "region_code", "occurred_at", "recorded_at", "payload", "topic", "partition",
    "offset", "ingested_at", "occurred_at_text", "recorded_at_text",
]  # fmt: skip
STATUS_COLUMNS = [
    "household_id", "version", "region_code", "status", "document", "last_occurred_at",
    "updated_at", "ingested_at",
]  # fmt: skip
ALERT_COLUMNS = [
    "alert_id", "rule", "state", "household_id", "region_code", "start_event_id", "start_occurred_at",
    "start_recorded_at", "end_event_id", "end_occurred_at", "end_recorded_at", "revision", "processed_at",
    "detail", "ingested_at",
]  # fmt: skip
DEAD_LETTER_COLUMNS = [
    "source_topic", "source_partition", "source_offset", "source", "reason", "raw", "key",
    "received_at", "ingested_at",
]  # fmt: skip
TABLE_COLUMNS = {
    "events": EVENT_COLUMNS,
    "household_status_history": STATUS_COLUMNS,
    "alerts": ALERT_COLUMNS,
    "dead_letters": DEAD_LETTER_COLUMNS,
}
#: DateTime64 range: a time outside it would be stored clamped, so it is refused as bad input.
_MIN_YEAR, _MAX_YEAR = 1900, 2299


class Rejected(ValueError):
    """A message the sink cannot store as what its topic promises: it becomes a dead letter."""


def _instant(value: Any, name: str) -> datetime:
    """An aware datetime (a date alone or no offset: UTC, as ``parse_instant``); the warehouse stores UTC.

    The hot path of the sink: ``datetime.fromisoformat`` reads every form the contract allows
    (Python 3.11), and the conversion to UTC is left to the column type.
    """
    try:
        dt = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        try:
            dt = parse_instant(value)
        except (TypeError, ValueError, AttributeError):
            raise Rejected(f"{name}: {value!r} is not an ISO 8601 date-time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if not (_MIN_YEAR <= dt.year <= _MAX_YEAR):
        raise Rejected(f"{name}: {value!r} is outside {_MIN_YEAR}–{_MAX_YEAR}")
    return dt


def _text(doc: dict, name: str, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise Rejected(f"{name}: expected a non-empty string, got {value!r}")
    return value


def _json_object(raw: bytes | None, what: str) -> dict:
    if raw is None:
        raise Rejected(f"{what}: empty message value")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(f"{what}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Rejected(f"{what}: expected a JSON object")
    return doc


# ------------------------------------------------------------------------------------------------
# One message → one row


def _envelope(raw: bytes, topic: str) -> dict:
    """The validated envelope of an input-topic message (the contract, then its topic's department)."""
    try:
        env = decode(raw)
    except ContractError as exc:
        raise Rejected(exc.reason) from None
    department = topic.rsplit(".", 1)[-1]
    if department in DEPARTMENTS and env["department"] != department:
        raise Rejected(f"department: {env['department']!r} published on the topic of {department!r}")
    return env


def _envelope_columns(env: dict) -> tuple:
    """The envelope's identity columns, ``event_id`` to ``region_code`` in ``EVENT_COLUMNS`` order."""
    return (
        env["event_id"],
        env["event_type"],
        env["schema_version"],
        env["department"],
        env["source_system"],
        env["household_id"],
        env.get("person_id"),
        env["region_code"],
    )


def event_row(raw: bytes, topic: str, partition: int, offset: int, now: datetime) -> tuple:
    env = _envelope(raw, topic)
    occurred_text, recorded_text = env["occurred_at"], env["recorded_at"]
    return (
        *_envelope_columns(env),
        _instant(occurred_text, "occurred_at"),
        _instant(recorded_text, "recorded_at"),
        orjson.dumps(env["payload"]).decode(),
        topic,
        partition,
        offset,
        now,
        occurred_text,
        recorded_text,
    )


#: Column order of :func:`event_line`: ``payload`` last, so the payload object goes in as it is.
EVENT_LINE_COLUMNS = [c for c in EVENT_COLUMNS if c != "payload"] + ["payload"]


def _time_text(value: str, name: str) -> str | datetime:
    """An envelope time for the warehouse to parse itself (``best_effort``), its year checked.

    The contract's patterns fix ``YYYY-MM-DD[Thh:mm:ss[.ffffff][offset]]`` and ``validate`` has
    parsed them, so the year is the first four characters (the local year, as ``_instant`` checks);
    anything else takes the slow path and goes in parsed.
    """
    if len(value) >= 10 and value[4] == "-" and "1900" <= value[:4] <= "2299":
        return value
    return _instant(value, name)


def event_line(raw: bytes, topic: str, partition: int, offset: int, now: datetime) -> bytes:
    """One input-topic message as a JSONCompactEachRow line in ``EVENT_LINE_COLUMNS`` order.

    The same row as :func:`event_row`, cheaper: the warehouse parses the time strings, and the
    payload is written as a JSON object (read into the String column as its text, byte for byte:
    ``input_format_json_read_objects_as_strings``), the same text ``event_row`` stores.
    """
    env = _envelope(raw, topic)
    occurred, recorded = env["occurred_at"], env["recorded_at"]
    head = orjson.dumps(
        [
            *_envelope_columns(env),
            _time_text(occurred, "occurred_at"),
            _time_text(recorded, "recorded_at"),
            topic,
            partition,
            offset,
            now,
            occurred,
            recorded,
        ]
    )
    return head[:-1] + b"," + orjson.dumps(env["payload"]) + b"]"


def _row_as_line(row: tuple) -> bytes:
    """An :func:`event_row` tuple as a line in ``EVENT_LINE_COLUMNS`` order (payload as JSON text)."""
    return orjson.dumps((*row[:10], *row[11:], row[10]))


def status_row(raw: bytes, now: datetime) -> tuple:
    doc = _json_object(raw, "status document")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not (0 <= version < 2**63):
        raise Rejected(f"version: expected a non-negative 64-bit integer, got {version!r}")
    last = doc.get("last_occurred_at")
    return (
        _text(doc, "household_id"),
        version,
        _text(doc, "region_code", required=False) or "",
        _text(doc, "status"),
        raw.decode("utf-8"),
        None if last is None else _instant(last, "last_occurred_at"),
        _instant(doc.get("updated_at"), "updated_at"),
        now,
    )


def alert_row(raw: bytes, now: datetime) -> tuple:
    """An alert message: an episode's current truth (the row with the highest revision wins)."""
    doc = _json_object(raw, "alert message")
    state = _text(doc, "state")
    if state not in ("raised", "resolved", "retracted"):
        raise Rejected(f"state: expected raised, resolved or retracted, got {state!r}")
    revision = doc.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or not (0 < revision < 2**63):
        raise Rejected(f"revision: expected a positive 64-bit integer, got {revision!r}")
    end_at, end_recorded = doc.get("end_occurred_at"), doc.get("end_recorded_at")
    return (
        _text(doc, "alert_id"),
        _text(doc, "rule"),
        state,
        _text(doc, "household_id"),
        _text(doc, "region_code", required=False) or "",
        _text(doc, "start_event_id"),
        _instant(doc.get("start_occurred_at"), "start_occurred_at"),
        _instant(doc.get("start_recorded_at"), "start_recorded_at"),
        _text(doc, "end_event_id", required=False),
        None if end_at is None else _instant(end_at, "end_occurred_at"),
        None if end_recorded is None else _instant(end_recorded, "end_recorded_at"),
        revision,
        _instant(doc.get("processed_at"), "processed_at"),
        orjson.dumps(doc.get("detail") or {}).decode(),
        now,
    )


def dead_letter_row(
    raw: bytes | None,
    key: bytes | None,
    headers: list[tuple[str, bytes]] | None,
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
) -> tuple:
    """A message of the dead-letter topic: its headers say where it came from and why."""
    h = {}
    for name, value in headers or []:
        if name.startswith("fupin.") and value is not None:
            h[name[6:]] = value.decode("utf-8", "replace")
    reason = h.get("reason") or "dead letter without a fupin.reason header"
    try:
        src_partition = int(h["source_partition"])
        src_offset = int(h["source_offset"])
        src_topic = h["source_topic"]
    except (KeyError, ValueError):
        src_topic, src_partition, src_offset = topic, partition, offset
        reason = f"{reason} (no valid fupin.source_* headers: identified by its dead-letter offset)"
    try:
        received = _instant(h["time"], "fupin.time") if "time" in h else now
    except Rejected:
        received = now
    return (
        src_topic,
        src_partition,
        src_offset,
        h.get("source") or "unknown",
        reason,
        raw if raw is not None else b"",
        None if key is None else key.decode("utf-8", "replace"),
        received,
        now,
    )


def rejected_row(raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                 reason: str, now: datetime) -> tuple:  # fmt: skip
    """A dead letter the sink itself decided (source ``sink``)."""
    return (
        topic,
        partition,
        offset,
        "sink",
        reason,
        raw if raw is not None else b"",
        None if key is None else key.decode("utf-8", "replace"),
        now,
        now,
    )


# ------------------------------------------------------------------------------------------------
# Progress


@dataclass
class SinkProgress:
    """What the sink has done, for the progress display and the service's /health."""

    messages: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_COLUMNS, 0))
    batches: int = 0
    dead_letters: int = 0
    #: Events checked and written by the engine (fast path); the others by the Python path.
    engine_checked: int = 0
    skipped: int = 0
    committed: dict[str, int] = field(default_factory=dict)
    paused: bool = False
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)
    last_flush_at: float | None = None
    first_record_at: float | None = None
    _window: list[tuple[float, int]] = field(default_factory=list)

    def note_flush(self, rows: int) -> None:
        now = time.monotonic()
        self.batches += 1
        self.last_flush_at = now
        self._window.append((now, rows))
        self._window = [(t, n) for t, n in self._window if now - t <= 10.0]

    @property
    def rows_per_second(self) -> float:
        if len(self._window) < 2:
            return 0.0
        span = self._window[-1][0] - self._window[0][0]
        return sum(n for _, n in self._window[1:]) / span if span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "rows": dict(self.rows),
            "batches": self.batches,
            "dead_letters": self.dead_letters,
            "engine_checked": self.engine_checked,
            "skipped": self.skipped,
            "committed": dict(self.committed),
            "paused": self.paused,
            "last_error": self.last_error,
            "rows_per_second": round(self.rows_per_second, 1),
            "uptime_s": round(time.monotonic() - self.started_at, 1),
        }


# ------------------------------------------------------------------------------------------------
# The sink


def sink_topics(settings: Settings) -> list[str]:
    return [
        *input_topics(settings),
        status_topic(settings),
        alerts_topic(settings),
        deadletter_topic(settings),
    ]


def _unexpected(exc: Exception) -> str:
    log.exception("a message the sink could not read went to the dead letters")
    return f"the sink could not read it: {type(exc).__name__}: {exc}"


def _fingerprint(record: Any) -> str:
    """Which message sits at an offset: its timestamp and a checksum of its value."""
    return f"{record.timestamp}/{zlib.crc32(record.value or b'')}"


def decode_events(
    values: list[bytes | None], topic: str, partition: int, offsets: list[int], now: datetime
) -> tuple[bytes, int, list[tuple[int, str]]]:
    """Decode and validate messages of one input partition into :func:`event_line` lines.

    Runs in a decoder process (what it is sent is kept small: the values and their offsets).
    Returns the lines, how many, and (index, reason) of the messages rejected (dead letters).
    """
    lines: list[bytes] = []
    rejected: list[tuple[int, str]] = []
    for i, (raw, offset) in enumerate(zip(values, offsets, strict=True)):
        try:
            if raw is None:
                raise Rejected("empty message value")
            lines.append(event_line(raw, topic, partition, offset, now))
        except Rejected as exc:
            rejected.append((i, str(exc.args[0])))
        except Exception as exc:  # a message must never stop the sink
            rejected.append((i, _unexpected(exc)))
    return b"\n".join(lines), len(lines), rejected


# ------------------------------------------------------------------------------------------------
# The fast path (chdb): events checked and written by the engine, off the GIL


class FastEvents:
    """Input-topic messages handed to chdb as they are: ClickHouse checks them and writes the events.

    The consuming thread only keeps the records; here (the writer thread) their values and
    positions become one Arrow table, and chdb, which reads it and runs without the GIL, applies
    :mod:`warehouse.contract_sql`: messages it accepts become rows of ``events``; the others
    (every bad message, and good ones in another form: other key order, escapes, the types with
    a semantic check) are returned, and the Python path decides about them with the contract
    itself, as before. Session tables hold the batch between the statements.
    """

    _ids = iter(range(1, 1 << 62))

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        n = next(self._ids)
        #: Session tables of this connection: the batch's messages, and which were accepted.
        self.stage, self.accepted = f"sink_stage_{n}", f"sink_accepted_{n}"
        self._created = False

    @staticmethod
    def supported(warehouse: Warehouse) -> bool:
        return hasattr(warehouse, "query_batch")

    def _create(self) -> None:
        if self._created:
            return
        self.warehouse.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.stage} (i UInt32, topic String, partition UInt32, "
            "offset UInt64, ingested_at DateTime64(3, 'UTC'), v String, et String) ENGINE = Memory"
        )
        self.warehouse.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.accepted} (i UInt32) ENGINE = Memory"
        )
        self._created = True

    def write(self, chunks: list[tuple[str, int, RecordRun, datetime]], token: str) -> tuple[int, list[int]]:
        """Insert the accepted events of ``chunks``; returns how many, and the indices of the rest.

        Indices count the records of ``chunks`` in order. Raises WarehouseError.
        """
        import numpy as np
        import pyarrow as pa

        values: list[Any] = []
        offsets: list[int] = []
        lengths, topics, partitions, times = [], [], [], []
        names: dict[str, int] = {}  # a dictionary of distinct topics (several partitions share one)
        for topic, partition, records, now in chunks:  # the consumer's runs: columns already
            values += records.values
            offsets += records.offsets
            lengths.append(len(records))
            topics.append(names.setdefault(topic, len(names)))
            partitions.append(partition)
            times.append(now.astimezone(UTC).replace(tzinfo=None))
        n = len(values)
        chunk = np.repeat(np.arange(len(chunks), dtype=np.int32), lengths)
        table = pa.table(
            {
                "i": pa.array(np.arange(n, dtype=np.uint32)),
                "topic": pa.DictionaryArray.from_arrays(
                    pa.array(np.array(topics, dtype=np.int32)[chunk]), pa.array(list(names), pa.string())
                ),
                "partition": pa.array(np.array(partitions, dtype=np.uint32)[chunk]),
                "offset": pa.array(offsets, pa.uint64()),
                "ingested_at": pa.array(np.array(times, dtype="datetime64[ms]")[chunk]).cast(
                    pa.timestamp("ms", tz="UTC")
                ),
                "v": pa.array(values, pa.binary()),
            }
        )
        # Several record batches: the engine reads them in parallel streams.
        sink_batch = pa.Table.from_batches(table.to_batches(max_chunksize=max(1024, -(-n // 4))))
        self._create()
        wh = self.warehouse
        wh.execute(f"TRUNCATE TABLE {self.stage}")
        wh.execute(f"TRUNCATE TABLE {self.accepted}")
        # Short-circuit evaluation off (it copies the columns for every term), no JIT (a
        # compilation would stall one batch), one engine thread (the consuming thread has the
        # other core); the messages are read once, their types noted.
        plain = (
            "SETTINGS short_circuit_function_evaluation = 'disable', compile_expressions = 0, max_threads = 1"
        )
        wh.query_batch(
            f"INSERT INTO {self.stage} SELECT i, toString(assumeNotNull(topic)), partition, offset, ingested_at, "
            f"assumeNotNull(v) AS v, extract(v, {contract_sql.EVENT_TYPE}) FROM Python(sink_batch) {plain}",
            sink_batch,
        )
        del sink_batch, table, values
        regexes = contract_sql.message_regexes()
        kinds = [k for (k,) in wh.query(f"SELECT DISTINCT et FROM {self.stage}") if k in regexes]
        if kinds:
            # One filtered subquery per type: each expression runs only on its own messages.
            arms = " UNION ALL ".join(
                f"SELECT i FROM (SELECT * FROM {self.stage} WHERE et = {contract_sql.literal(k)}) "
                f"WHERE {contract_sql.type_check(k)}"
                for k in kinds
            )
            wh.execute(f"INSERT INTO {self.accepted} {arms} {plain}")
            wh.execute(
                f"INSERT INTO {wh.database}.events ({', '.join(EVENT_COLUMNS)}) "
                f"SELECT {', '.join(contract_sql.event_columns())} FROM (SELECT *, {contract_sql.ENVELOPE} AS t "
                f"FROM {self.stage} WHERE i IN {self.accepted}) "
                f"SETTINGS insert_deduplication_token = {contract_sql.literal(token)}, "
                "max_insert_threads = 1, compile_expressions = 0, optimize_on_insert = 0"
            )
        rest = [
            i for (i,) in wh.query(f"SELECT i FROM {self.stage} WHERE i NOT IN {self.accepted} ORDER BY i")
        ]
        return n - len(rest), rest


@dataclass
class Batch:
    """Rows of consecutive messages, per table, with the offset span they came from."""

    rows: dict[str, list[tuple]] = field(default_factory=lambda: {t: [] for t in TABLE_COLUMNS})
    #: (topic, partition) -> [first offset, last offset, first fingerprint, last fingerprint]
    ranges: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    _last: dict[tuple[str, int], Any] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    count: int = 0
    opened_at: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    #: Events handed to decoder processes: (future, records), resolved before the batch is written.
    pending: list[tuple[Any, list[Any], datetime]] = field(default_factory=list)
    event_lines: list[bytes] = field(default_factory=list)
    event_count: int = 0
    #: Events the engine checked and wrote itself (the fast path), of :attr:`event_count`.
    engine_checked: int = 0
    #: Input-topic records for the fast path: (topic, partition, records, receipt time).
    raw: list[tuple[str, int, RecordRun, datetime]] = field(default_factory=list)

    def decode(self, records: list[Any], topic: str, partition: int, now: datetime) -> None:
        """The Python path: each record checked by the contract into an event line, or a dead letter."""
        lines, dead = self.event_lines, self.rows["dead_letters"]
        before = len(lines)
        for r in records:
            try:
                if r.value is None:
                    raise Rejected("empty message value")
                lines.append(event_line(r.value, topic, partition, r.offset, now))
            except Exception as exc:  # bad input, or anything a message provokes: never stop
                reason = exc.args[0] if isinstance(exc, Rejected) else _unexpected(exc)
                dead.append(rejected_row(r.value, r.key, topic, partition, r.offset, str(reason), now))
        self.event_count += len(lines) - before

    def write_fast(self, fast: FastEvents | None) -> None:
        """Events of :attr:`raw` through chdb; what it does not accept, through the Python path."""
        total = sum(len(records) for _, _, records, _ in self.raw)
        accepted, rest = 0, range(total)
        if fast is not None:
            try:
                accepted, rest = fast.write(self.raw, self.token("events:fast"))
            except WarehouseError as exc:
                # Never stuck on the fast path: the Python path decides, and fails itself if the
                # warehouse cannot be written (then the batch waits, as any other).
                log.warning("events fast path failed, the Python path takes this batch: %s", exc)
        self.event_count += accepted
        self.engine_checked += accepted
        self.written.add("events:fast")
        start, pick = 0, iter(rest)
        i = next(pick, None)
        for topic, partition, records, now in self.raw:
            end = start + len(records)
            chosen = []
            while i is not None and i < end:
                chosen.append(records[i - start])
                i = next(pick, None)
            if chosen:
                self.decode(chosen, topic, partition, now)
            start = end
        self.raw = []

    def resolve(self) -> None:
        """Collect the decoders' results in order (decoding here if a decoder process failed)."""
        while self.pending:
            future, records, now = self.pending[0]
            try:
                lines, n, rejected = future.result()
            except Exception as exc:  # a broken pool must not lose the batch
                log.warning("decoder process failed (%s): decoding in the sink thread", exc)
                r = records[0]
                values, offsets = [r.value for r in records], [r.offset for r in records]
                lines, n, rejected = decode_events(values, r.topic, r.partition, offsets, now)
            if n:
                self.event_lines.append(lines)
                self.event_count += n
            for i, reason in rejected:
                r = records[i]
                self.rows["dead_letters"].append(
                    rejected_row(r.value, r.key, r.topic, r.partition, r.offset, reason, now)
                )
            del self.pending[0]

    def note(self, record: Any) -> None:
        self.note_span([record])

    def note_span(self, records: list[Any]) -> None:
        """Consecutive records of one partition joined the batch."""
        first, last = records[0], records[-1]
        key = (first.topic, first.partition)
        rng = self.ranges.get(key)
        if rng is None:
            self.ranges[key] = [first.offset, last.offset, _fingerprint(first), ""]
            if last is not first:
                self._last[key] = last
        else:
            rng[1] = last.offset
            rng[3] = ""
            self._last[key] = last
        self.count += len(records)
        if self.opened_at is None:
            self.opened_at = time.monotonic()

    def token(self, table: str) -> str:
        """Same messages, same token: a retried insert of the batch is deduplicated by ClickHouse.

        Offsets alone would not do: the embedded broker starts them from zero again after a
        restart, so the first and last message of each span are fingerprinted too.
        """
        for key, last in self._last.items():
            self.ranges[key][3] = _fingerprint(last)
        spans = ",".join(
            f"{t}:{p}:{a}-{b}:{fa}:{fb}" for (t, p), (a, b, fa, fb) in sorted(self.ranges.items())
        )
        return f"sink:{table}:" + hashlib.sha256(spans.encode()).hexdigest()[:32]

    def write(self, warehouse: Warehouse, fast: FastEvents | None = None) -> None:
        """Insert every table's rows (each table at most once per batch); raises WarehouseError."""
        if self.raw:
            self.write_fast(fast)
        if self.event_lines and "events" not in self.written:
            data = b"\n".join(self.event_lines)
            if self.rows["events"]:
                data += b"\n" + b"\n".join(map(_row_as_line, self.rows["events"]))
            warehouse.insert_json_lines("events", EVENT_LINE_COLUMNS, data, self.token("events"))
            self.written.add("events")
        for table, rows in self.rows.items():
            if rows and table not in self.written:
                warehouse.insert(table, TABLE_COLUMNS[table], rows, dedup_token=self.token(table))
                self.written.add(table)

    def offsets(self) -> dict[tuple[str, int], int]:
        """The offsets to commit once the batch is written: the next one to read per partition."""
        return {tp: rng[1] + 1 for tp, rng in self.ranges.items()}


class Sink:
    """Consume the platform's topics into the warehouse; call :meth:`run` (blocks until ``stop_event``).

    One batch is written by a writer thread while the next one is read and decoded (chdb and the
    driver release the GIL while they insert); offsets are committed by the consuming thread,
    in order, once the batch they cover is written.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        bootstrap: str,
        batch_size: int = 20_000,
        batch_seconds: float = 1.0,
        group_id: str | None = None,
        max_backoff: float = 10.0,
        on_flush: Callable[[SinkProgress], None] | None = None,
        idle_exit: float | None = None,
        decoders: int = 0,
        fast: bool = True,
        writers: int = 1,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        # One group per platform instance (topic prefix): instances sharing a cluster never share offsets.
        self.group_id = group_id or f"{settings.topic_prefix}-{GROUP_ID}"
        self.max_backoff = max_backoff
        self.on_flush = on_flush
        #: Stop after this many seconds without a message once partitions are assigned (drain mode).
        self.idle_exit = idle_exit
        #: Decoder processes for input-topic events (0: decode in this thread). Only where the
        #: warehouse takes pre-serialised rows (chdb): validation is the sink's main CPU cost.
        self.decoders = decoders if hasattr(warehouse, "insert_json_lines") else 0
        #: Events go to the warehouse as pre-serialised lines where it takes them (chdb).
        self._lines = hasattr(warehouse, "insert_json_lines")
        self._pool = None
        #: Events checked and written inside chdb (:class:`FastEvents`), unless decoders are asked for.
        self._fast = (
            FastEvents(warehouse) if fast and not self.decoders and FastEvents.supported(warehouse) else None
        )
        self.progress = SinkProgress()
        self.stop_event = threading.Event()
        self._status, self._alerts, self._dead = (
            status_topic(settings),
            alerts_topic(settings),
            deadletter_topic(settings),
        )
        self._inputs = set(input_topics(settings))
        #: Writer threads, each on its own connection where the warehouse can open another (chdb
        #: runs their statements in parallel). One on two cores: a second measured no faster
        #: (bench/sink.py, BENCH_WRITERS=2: more CPU an event, as their inserts and merges compete).
        self.writers = max(1, writers) if hasattr(warehouse, "connect_again") else 1
        self._batch = Batch()
        #: Batches handed to the writers, oldest first; committed in this order only.
        self._inflight: deque[Batch] = deque()
        #: Batches not written (the first failed, and every later one): retried in order, paused.
        self._failed: list[Batch] = []
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=self.writers)
        #: A poll returns record batches (runs), each of one to thousands of messages.
        self._runs_per_poll = max(1, batch_size // 100)

    # -- rows ----------------------------------------------------------------------------------
    def add(self, record: Any, now: datetime | None = None, note: bool = True) -> None:
        """Turn one consumer record into a row of the right table (or a dead letter)."""
        now = now or datetime.now(UTC)
        topic, partition, offset, raw = record.topic, record.partition, record.offset, record.value
        rows = self._batch.rows
        try:
            if topic in self._inputs:
                if raw is None:
                    raise Rejected("empty message value")
                if self._lines:
                    self._batch.event_lines.append(event_line(raw, topic, partition, offset, now))
                    self._batch.event_count += 1
                else:
                    rows["events"].append(event_row(raw, topic, partition, offset, now))
            elif topic == self._status:
                if raw is None:  # a compaction tombstone: nothing to record
                    self.progress.skipped += 1
                else:
                    rows["household_status_history"].append(status_row(raw, now))
            elif topic == self._alerts:
                rows["alerts"].append(alert_row(raw, now))
            elif topic == self._dead:
                rows["dead_letters"].append(
                    dead_letter_row(raw, record.key, record.headers, topic, partition, offset, now)
                )
            else:
                raise Rejected(f"the sink does not read topic {topic}")
        except Exception as exc:  # Rejected (bad input), or anything a message provokes: never stop
            if isinstance(exc, Rejected):
                reason = exc.args[0]
            elif isinstance(exc, UnicodeDecodeError):
                reason = f"not UTF-8: {exc}"
            else:
                reason = _unexpected(exc)
            rows["dead_letters"].append(
                rejected_row(raw, record.key, topic, partition, offset, str(reason), now)
            )
        if note:
            self._batch.note(record)

    def due(self) -> bool:
        b = self._batch
        return b.count >= self.batch_size or (
            b.opened_at is not None and time.monotonic() - b.opened_at >= self.batch_seconds
        )

    # -- writing and committing ----------------------------------------------------------------
    def _writer(self, warehouse: Warehouse, fast: FastEvents | None) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            try:
                batch.resolve()  # here, not in the consuming thread: it polls on meanwhile
                batch.write(warehouse, fast)
                batch.error = None
            except WarehouseError as exc:
                batch.error = str(exc)
            except Exception as exc:  # never leave the consuming thread waiting
                batch.error = f"{type(exc).__name__}: {exc}"
            batch.done.set()

    def _complete(self, consumer, batch: Batch) -> None:
        """The batch is durable: count it, then commit its offsets."""
        offsets = batch.offsets()
        p = self.progress
        p.messages += batch.count
        for table, rows in batch.rows.items():
            p.rows[table] += len(rows)
        p.rows["events"] += batch.event_count
        p.engine_checked += batch.engine_checked
        p.dead_letters += len(batch.rows["dead_letters"])
        p.note_flush(sum(len(r) for r in batch.rows.values()) + batch.event_count)
        for (t, part), off in offsets.items():
            p.committed[f"{t}[{part}]"] = off
        p.last_error = None
        self._commit(consumer, offsets)
        if self.on_flush:
            self.on_flush(p)

    def _commit(self, consumer, offsets: dict[tuple[str, int], int]) -> None:
        from kafka import TopicPartition
        from kafka.errors import CommitFailedError, KafkaError
        from kafka.structs import OffsetAndMetadata

        if not offsets:
            return
        try:
            consumer.commit(
                {TopicPartition(t, p): OffsetAndMetadata(o, "", -1) for (t, p), o in offsets.items()}
            )
        except (CommitFailedError, KafkaError) as exc:
            # The rows are written; a rebalance means they are read again and collapse in the tables.
            log.warning("offset commit failed (rows are written, will be re-read): %s", exc)
            return
        now = datetime.now(UTC)
        try:
            self.warehouse.insert(
                "sink_progress",
                ["topic", "partition", "offset", "updated_at", "group_id"],
                [(t, p, o, now, self.group_id) for (t, p), o in sorted(offsets.items())],
            )
        except WarehouseError as exc:  # progress is for operators; the commit is what counts
            log.warning("could not record sink progress: %s", exc)

    def _write_now(self, consumer, batch: Batch) -> bool:
        """Write a batch in this thread and commit it; False (batch kept) when the warehouse refused.

        Only while no batch is in flight: the first writer's connection and session tables are used.
        """
        if batch.count == 0:
            return True
        batch.resolve()
        try:
            batch.write(self.warehouse, self._fast)
        except WarehouseError as exc:
            self.progress.last_error = str(exc)
            return False
        self._complete(consumer, batch)
        return True

    def _settle(self, consumer, wait: bool) -> None:
        """Collect written batches, oldest first: commit each, or hold it and all later ones (pause).

        ``wait``: until no batch is in flight.
        """
        while self._inflight:
            b = self._inflight[0]
            if not (b.done.is_set() or (wait and b.done.wait())):
                return
            self._inflight.popleft()
            if b.error is None and not self._failed:
                self._complete(consumer, b)
                continue
            # Not committed past a failed batch: a later one, even written, waits its turn.
            self._failed.append(b)
            if b.error is not None:
                self.progress.last_error = b.error
                log.warning("warehouse write failed, consumption paused: %s", b.error)
            if not self.progress.paused:
                self.progress.paused = True
                consumer.pause(*consumer.assignment())

    def _retry_failed(self, consumer) -> bool:
        """The held batches again, in order (their written tables are skipped); True when all are."""
        self._settle(consumer, wait=True)  # no writer busy: _write_now uses the first one's session
        while self._failed:
            if not self._write_now(consumer, self._failed[0]):
                return False
            del self._failed[0]
        return True

    def _submit(self) -> None:
        batch, self._batch = self._batch, Batch()
        self._inflight.append(batch)
        self._queue.put(batch)

    def flush(self, consumer) -> bool:
        """Everything read so far written and committed, in order; False when the warehouse refused."""
        if not self._retry_failed(consumer):
            return False
        return self._write_now(consumer, self._batch) and self._reset_current()

    def _reset_current(self) -> bool:
        self._batch = Batch()
        return True

    def _drop_unwritten(self) -> None:
        """After a rebalance every position is re-read from the committed offsets: forget the rest."""
        self._failed = []
        self._batch = Batch()
        self.progress.paused = False

    # -- consumer ------------------------------------------------------------------------------
    def _make_consumer(self):
        from warehouse.fetch import run_consumer

        # poll returns a list of record runs (one per Kafka record batch) per partition.
        return run_consumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id="fupin-sink",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=5000,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            max_poll_records=self._runs_per_poll,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_wait_ms=100,
        )

    def _poll(self, consumer, timeout_ms: int) -> int:
        got = 0
        now = datetime.now(UTC)  # one receipt time per poll: ingested_at
        polled = {
            tp: RecordRun.join(runs)
            for tp, runs in consumer.poll(timeout_ms=timeout_ms, max_records=self._runs_per_poll).items()
        }
        if self._fast is not None:  # the hot path: input records kept as they are, nothing per message
            batch = self._batch
            for records in polled.values():
                if not records:
                    continue
                got += len(records)
                first = records[0]
                if first.topic in self._inputs:
                    batch.raw.append((first.topic, first.partition, records, now))
                else:
                    for record in records:
                        self.add(record, now, note=False)
                batch.note_span(records)
        elif self._pool is None:
            batch = self._batch
            dead = batch.rows["dead_letters"]
            events, make = (
                (batch.event_lines, event_line) if self._lines else (batch.rows["events"], event_row)
            )
            for records in polled.values():
                if not records:
                    continue
                got += len(records)
                topic = records[0].topic
                if topic in self._inputs:  # the hot path: department events
                    before = len(events)
                    for r in records:
                        try:
                            if r.value is None:
                                raise Rejected("empty message value")
                            events.append(make(r.value, topic, r.partition, r.offset, now))
                        except Exception as exc:  # bad input, or anything a message provokes: never stop
                            reason = exc.args[0] if isinstance(exc, Rejected) else _unexpected(exc)
                            dead.append(
                                rejected_row(r.value, r.key, topic, r.partition, r.offset, reason, now)
                            )
                    if self._lines:
                        batch.event_count += len(events) - before
                else:
                    for r in records:
                        self.add(r, now, note=False)
                batch.note_span(records)
        else:
            batch, submit, step = self._batch, self._pool.submit, 5000
            for records in polled.values():
                if not records:
                    continue
                got += len(records)
                first = records[0]
                if first.topic in self._inputs:  # one partition's records: values and offsets go
                    for i in range(0, len(records), step):
                        chunk = records[i : i + step]
                        values, offsets = [r.value for r in chunk], [r.offset for r in chunk]
                        future = submit(decode_events, values, first.topic, first.partition, offsets, now)
                        batch.pending.append((future, chunk, now))
                else:
                    for record in records:
                        self.add(record, now, note=False)
                batch.note_span(records)
        if got and self.progress.first_record_at is None:
            self.progress.first_record_at = time.monotonic()
        return got

    def run(self) -> SinkProgress:
        """Consume until :attr:`stop_event` is set (or idle, in drain mode); then flush and commit."""
        from kafka import ConsumerRebalanceListener

        sink = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked):
                # Eager rebalancing: positions are re-read from the committed offsets after this.
                if not sink.flush(consumer):
                    sink._drop_unwritten()

            def on_partitions_assigned(self, assigned):
                if sink.progress.paused and assigned:
                    consumer.pause(*assigned)

        # A new run re-reads from the committed offsets: nothing of an earlier, failed run carries over.
        self._batch, self._inflight, self._failed = Batch(), deque(), []
        self.progress.paused = False
        consumer = self._make_consumer()
        try:
            consumer.subscribe(sink_topics(self.settings), listener=Listener())
        except Exception:
            consumer.close(autocommit=False)
            raise
        connections = [self.warehouse]
        for _ in range(self.writers - 1):
            try:
                connections.append(self.warehouse.connect_again())
            except WarehouseError as exc:  # fewer writers, not no sink
                log.warning("sink writer connection not opened (%s): %d writer(s)", exc, len(connections))
                break
        fasts = [self._fast] + [FastEvents(c) if self._fast else None for c in connections[1:]]
        writers = [
            threading.Thread(target=self._writer, args=(c, f), name=f"sink-writer-{i}", daemon=True)
            for i, (c, f) in enumerate(zip(connections, fasts, strict=True))
        ]
        for writer in writers:
            writer.start()
        if self.decoders > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn, not fork: this process runs threads (chdb, kafka) that a fork would copy mid-state.
            self._pool = ProcessPoolExecutor(self.decoders, mp_context=multiprocessing.get_context("spawn"))
            for _ in range(self.decoders):
                self._pool.submit(
                    decode_events, [], "", 0, [], datetime.now(UTC)
                )  # start them during the join
        backoff = 0.5
        idle_since = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self._settle(consumer, wait=False)
                if self._failed:
                    # Paused: keep polling (group membership; only partitions assigned since the
                    # pause deliver), retry the failed batches with backoff, never commit past them.
                    self._poll(consumer, int(backoff * 1000))
                    if self._retry_failed(consumer):
                        self.progress.paused = False
                        consumer.resume(*consumer.assignment())
                        log.info("warehouse writable again: consumption resumed")
                        backoff = 0.5
                    else:
                        backoff = min(self.max_backoff, backoff * 2)
                    continue
                got = self._poll(consumer, 100)
                if self.idle_exit is not None:
                    now = time.monotonic()
                    if got or not consumer.assignment() or self._batch.count or self._inflight:
                        idle_since = now
                    elif now - idle_since >= self.idle_exit:
                        log.info("no messages for %.0f s: stopping (idle exit)", self.idle_exit)
                        break
                # Due, or caught up (a poll found nothing) with the writers idle: no reason to wait.
                if self.due() or (not got and self._batch.count and not self._inflight):
                    if len(self._inflight) < self.writers:
                        self._submit()
                    elif self._batch.count >= 2 * self.batch_size:
                        # back-pressure: the writers are behind; wait for the oldest batch
                        self._inflight[0].done.wait()
                        self._settle(consumer, wait=False)
            # Stopping: a last flush (retried briefly) so that a clean stop leaves nothing uncommitted.
            for _ in range(5):
                if self.flush(consumer):
                    break
                time.sleep(0.5)
        finally:
            with contextlib.suppress(Exception):  # the first error is the one to report
                self._settle(consumer, wait=True)
            for _ in writers:
                self._queue.put(None)
            for writer in writers:
                writer.join(30)
            for extra in connections[1:]:
                extra.close()
            consumer.close(autocommit=False)
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
        return self.progress


def run_sink(warehouse: Warehouse, settings: Settings, bootstrap: str, **kwargs: Any) -> Sink:
    """Build a sink (for callers that run it in a thread and stop it with ``sink.stop_event``)."""
    return Sink(warehouse, settings, bootstrap, **kwargs)
