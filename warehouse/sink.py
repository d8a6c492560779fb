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
import re
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
from fupin.heartbeat import beat
from fupin.timeutil import parse_instant
from fupin.topics import DEPARTMENTS, alerts_topic, deadletter_topic, input_topics, status_topic
from fupin.validity import Invalid, conflict_reason, dead_letter_value, fingerprint, judge
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
    "received_at", "ingested_at", "redacted",
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


def _envelope(raw: bytes, key: bytes | None, topic: str) -> dict:
    """The judged envelope of an input-topic message (:func:`fupin.validity.judge`)."""
    department = topic.rsplit(".", 1)[-1]
    try:
        return judge(raw, key, department if department in DEPARTMENTS else None)
    except Invalid as exc:
        raise Rejected(exc.reason) from None


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


def event_row(raw: bytes, topic: str, partition: int, offset: int, now: datetime, *, key: bytes | None) -> tuple:
    return _event_row(_envelope(raw, key, topic), topic, partition, offset, now)


def _event_row(env: dict, topic: str, partition: int, offset: int, now: datetime) -> tuple:
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


def event_line(
    raw: bytes, topic: str, partition: int, offset: int, now: datetime, *, key: bytes | None
) -> bytes:
    """One input-topic message as a JSONCompactEachRow line in ``EVENT_LINE_COLUMNS`` order.

    The same row as :func:`event_row`, cheaper: the warehouse parses the time strings, and the
    payload is written as a JSON object (read into the String column as its text, byte for byte:
    ``input_format_json_read_objects_as_strings``), the same text ``event_row`` stores.
    """
    return _event_line(_envelope(raw, key, topic), topic, partition, offset, now)


def _event_line(env: dict, topic: str, partition: int, offset: int, now: datetime) -> bytes:
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
    # Redacted by whoever rejected it; again here, so that no raw identifier is ever stored.
    raw, raw_redacted = dead_letter_value(raw)
    key, key_redacted = dead_letter_value(key)
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
        int(h.get("redacted") == "true" or raw_redacted or key_redacted),
    )


def rejected_row(raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                 reason: str, now: datetime) -> tuple:  # fmt: skip
    """A dead letter the sink itself decided (source ``sink``), raw identifiers redacted."""
    raw, raw_redacted = dead_letter_value(raw)
    key, key_redacted = dead_letter_value(key)
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
        int(raw_redacted or key_redacted),
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
    #: Why consumption is paused (the warehouse refused a batch), and when the next try is (wall clock).
    paused_reason: str | None = None
    retry_at: float | None = None
    #: Failed writes of held batches (reset when the warehouse takes them again).
    attempts: int = 0
    #: Rebalances that took partitions away from this sink (a restart loop shows here).
    rebalances: int = 0
    #: Wall clock of the last commit, and of the last moment nothing was waiting (caught up).
    last_progress_at: float | None = None
    caught_up_at: float | None = None
    #: Messages read and not yet committed (the current batch, in the writers' hands, or held).
    pending: int = 0
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
            "paused_reason": self.paused_reason,
            "retry_at": self.retry_at,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "rebalances": self.rebalances,
            "pending": self.pending,
            "last_progress_at": self.last_progress_at,
            "caught_up_at": self.caught_up_at,
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
            "offset UInt64, ingested_at DateTime64(3, 'UTC'), k Nullable(String), v String, et String, "
            "eid String, known UInt8) ENGINE = Memory"
        )
        # The accepted events as they will be stored (the events table's types), with their index.
        self.warehouse.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.accepted} ENGINE = Memory AS SELECT toUInt32(0) AS i, "
            f"{', '.join(EVENT_COLUMNS)} FROM {self.warehouse.database}.events WHERE 0"
        )
        self._created = True

    def write(self, chunks: list[tuple[str, int, RecordRun, datetime]], token: str) -> tuple[int, list[int]]:
        """Insert the accepted events of ``chunks``; returns how many, and the indices of the rest.

        Indices count the records of ``chunks`` in order. Raises WarehouseError.
        """
        import numpy as np
        import pyarrow as pa

        values: list[Any] = []
        keys: list[Any] = []
        offsets: list[int] = []
        lengths, topics, partitions, times = [], [], [], []
        names: dict[str, int] = {}  # a dictionary of distinct topics (several partitions share one)
        for topic, partition, records, now in chunks:  # the consumer's runs: columns already
            values += records.values
            keys += records.keys
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
                "k": pa.array(keys, pa.binary()),
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
        # An id the store holds, or one repeated in the batch, goes to the Python path, which tells
        # a duplicate (nothing to do) from a conflicting one (a dead letter).
        wh.query_batch(
            f"INSERT INTO {self.stage} SELECT i, toString(assumeNotNull(topic)), partition, offset, ingested_at, "
            f"k, assumeNotNull(v) AS v, extract(v, {contract_sql.EVENT_TYPE}), "
            f"extract(v, {contract_sql.EVENT_ID}) AS eid, sipHash128(eid) IN {wh.database}.event_ids "
            f"FROM Python(sink_batch) {plain}",
            sink_batch,
        )
        del sink_batch, table, values, keys
        regexes = contract_sql.message_regexes()
        kinds = [k for (k,) in wh.query(f"SELECT DISTINCT et FROM {self.stage}") if k in regexes]
        accepted = 0
        if kinds:
            # Each type's expression runs only on its own messages (one small arm a type); the
            # rest of the judgement, once for all of them: each message is parsed once, the
            # checks and the stored columns share its fields (contract_sql.STAGED), and the
            # accepted ones are kept as rows of ``events``. The first message of each event id
            # is found once for the batch (a later one goes to the Python path).
            arms = " UNION ALL ".join(
                f"SELECT * FROM {self.stage} WHERE et = {contract_sql.literal(k)} AND NOT known "
                f"AND {contract_sql.type_match(k)}"
                for k in kinds
            )
            names = ", ".join(EVENT_COLUMNS)
            wh.execute(
                f"INSERT INTO {self.accepted} (i, {names}) SELECT i, {', '.join(contract_sql.event_columns())} "
                f"FROM (SELECT *, {contract_sql.STAGED} FROM ({arms})) "
                f"WHERE {contract_sql.sink_checks()} AND {contract_sql.unique_check(kinds)} "
                f"AND i IN (SELECT min(i) FROM {self.stage} GROUP BY eid) {plain}"
            )
            accepted = wh.query(f"SELECT count() FROM {self.accepted}")[0][0]
            wh.execute(
                f"INSERT INTO {wh.database}.events ({names}) SELECT {names} FROM {self.accepted} "
                f"SETTINGS insert_deduplication_token = {contract_sql.literal(token)}, "
                "max_insert_threads = 1, compile_expressions = 0, optimize_on_insert = 0"
            )
        if accepted == n:
            return n, []
        rest = [
            i
            for (i,) in wh.query(
                f"SELECT i FROM {self.stage} WHERE i NOT IN (SELECT i FROM {self.accepted}) ORDER BY i"
            )
        ]
        return n - len(rest), rest


#: ClickHouse error codes that blame the inserted data, not the warehouse: CANNOT_PARSE_TEXT,
#: CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED, ATTEMPT_TO_READ_AFTER_EOF,
#: CANNOT_READ_ALL_DATA, CANNOT_PARSE_DATE, CANNOT_PARSE_DATETIME, TYPE_MISMATCH,
#: CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA, TOO_LARGE_STRING_SIZE,
#: VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN.
DATA_ERROR_CODES = frozenset({6, 26, 27, 32, 33, 38, 41, 53, 70, 72, 117, 131, 321, 349})
_ERROR_CODE = re.compile(r"Code: (\d+)\.")


def refuses_the_data(error: WarehouseError) -> bool:
    """Whether the warehouse refused an insert because of what it was given."""
    return any(int(code) in DATA_ERROR_CODES for code in _ERROR_CODE.findall(str(error)))


@dataclass(frozen=True, slots=True)
class Judged:
    """A valid event of the Python path: who it is, where its line or row sits, where it came from."""

    household_id: str
    event_id: str
    fingerprint: str
    as_line: bool
    slot: int
    source: tuple[bytes | None, bytes | None, str, int, int, datetime]


#: The stored columns that make an envelope again (``warehouse.rebuild.envelope_bytes``).
_STORED_ENVELOPE = (
    "event_id, event_type, schema_version, department, source_system, household_id, person_id, "
    "region_code, occurred_at, recorded_at, occurred_at_text, recorded_at_text, payload"
)


def stored_fingerprints(warehouse: Warehouse, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(household_id, event_id) → the content fingerprint of the first stored event of those."""
    from warehouse.rebuild import envelope_bytes

    if not keys:
        return {}
    households = ",".join(sorted({h for h, _ in keys}))
    ids = ",".join(sorted({e for _, e in keys}))
    rows = warehouse.query_dicts(
        f"SELECT {_STORED_ENVELOPE} FROM {warehouse.database}.events "
        "WHERE household_id IN splitByChar(',', {households:String}) AND event_id IN splitByChar(',', {ids:String}) "
        "ORDER BY ingested_at, topic, partition, offset",
        {"households": households, "ids": ids},
    )
    out: dict[tuple[str, str], str] = {}
    for row in rows:
        key = (row["household_id"], row["event_id"])
        if key in keys and key not in out:
            out[key] = fingerprint(orjson.loads(envelope_bytes(row)))
    return out


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
    #: Order of the batch among those read: batches are committed in this order only.
    seq: int = 0
    event_lines: list[bytes] = field(default_factory=list)
    #: Events of the Python path, in the order read: their identity, to resolve duplicates.
    judged: list[Judged] = field(default_factory=list)
    #: Where each Python-path event line (or row) came from, in the same order: its dead letter's
    #: identity should the warehouse refuse it.
    sources: list[tuple] = field(default_factory=list)
    #: Duplicates (same event again) that the batch does not store again.
    duplicates: int = 0
    event_count: int = 0
    #: Events the engine checked and wrote itself (the fast path), of :attr:`event_count`.
    engine_checked: int = 0
    #: Input-topic records for the fast path: (topic, partition, records, receipt time).
    raw: list[tuple[str, int, RecordRun, datetime]] = field(default_factory=list)

    def add_event(
        self, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int, now: datetime,
        lines: bool = True,
    ) -> None:  # fmt: skip
        """The Python path of one input-topic message: judged into an event line (or row), or a dead letter.

        The one home of "bad message → dead letter" for events: whatever a message provokes, it
        never stops the sink.
        """
        try:
            env = _envelope(raw, key, topic)
            if lines:
                slot, item = len(self.event_lines), _event_line(env, topic, partition, offset, now)
            else:
                slot, item = len(self.rows["events"]), _event_row(env, topic, partition, offset, now)
        except Exception as exc:
            reason = exc.args[0] if isinstance(exc, Rejected) else _unexpected(exc)
            self.rows["dead_letters"].append(rejected_row(raw, key, topic, partition, offset, str(reason), now))
            return
        self.judged.append(
            Judged(env["household_id"], env["event_id"], fingerprint(env), lines, slot,
                   (raw, key, topic, partition, offset, now))
        )  # fmt: skip
        self.sources.append((raw, key, topic, partition, offset, now))
        if lines:
            self.event_lines.append(item)
            self.event_count += 1
        else:
            self.rows["events"].append(item)

    def decode(self, records: list[Any], topic: str, partition: int, now: datetime) -> None:
        """The Python path for records of one partition (see :meth:`add_event`)."""
        for r in records:
            self.add_event(r.value, r.key, topic, partition, r.offset, now)

    def resolve_duplicates(self, warehouse: Warehouse) -> None:
        """Drop the events already stored or earlier in the batch; conflicting ones become dead letters.

        The same ``event_id`` for the same household with the same content changes nothing; with
        other content it is a conflicting duplicate: the first stays (events.md). The stored
        events are read by their households (the primary key's prefix): a few granules.
        """
        if not self.judged:
            return
        first = stored_fingerprints(warehouse, {(j.household_id, j.event_id) for j in self.judged})
        drop: dict[bool, set[int]] = {True: set(), False: set()}
        for j in self.judged:
            held = first.get((j.household_id, j.event_id))
            if held is None:  # the first of its id
                first[(j.household_id, j.event_id)] = j.fingerprint
                continue
            drop[j.as_line].add(j.slot)
            if held == j.fingerprint:
                self.duplicates += 1
            else:
                raw, key, topic, partition, offset, now = j.source
                reason = conflict_reason(j.event_id, held)
                self.rows["dead_letters"].append(rejected_row(raw, key, topic, partition, offset, reason, now))
        dropped = drop[True] | drop[False]
        if dropped:
            self.sources = [src for i, src in enumerate(self.sources) if i not in dropped]
        if drop[True]:
            self.event_lines = [line for i, line in enumerate(self.event_lines) if i not in drop[True]]
            self.event_count -= len(drop[True])
        if drop[False]:
            self.rows["events"] = [row for i, row in enumerate(self.rows["events"]) if i not in drop[False]]
        self.judged = []

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
        if "events" not in self.written:
            self.resolve_duplicates(warehouse)
        if (self.event_lines or self.rows["events"]) and "events" not in self.written:
            self._insert_events(warehouse)
            self.written.add("events")
        for table, rows in self.rows.items():
            if rows and table not in self.written:
                warehouse.insert(table, TABLE_COLUMNS[table], rows, dedup_token=self.token(table))
                self.written.add(table)

    def _insert_events(self, warehouse: Warehouse) -> None:
        """Insert the Python path's events; an event the warehouse itself refuses becomes a dead letter.

        A refusal for the data's sake (:func:`refuses_the_data`: a value the judgement let through
        but a column cannot hold) is the data's fault: halves are tried until the refused events
        are found, so that one message never stops the sink. Any other failure (the warehouse down,
        full, read-only) is not the message's fault: the error goes up, and the batch waits and
        is retried.
        """
        as_lines = bool(self.event_lines)
        items = self.event_lines if as_lines else self.rows["events"]
        token = self.token("events")

        def insert(lo: int, hi: int) -> None:
            part = items[lo:hi]
            tok = token if (lo, hi) == (0, len(items)) else f"{token}:{lo}-{hi}"
            if as_lines:
                warehouse.insert_json_lines("events", EVENT_LINE_COLUMNS, b"\n".join(part), tok)
            else:
                warehouse.insert("events", EVENT_COLUMNS, part, dedup_token=tok)

        def isolate(lo: int, hi: int, error: WarehouseError) -> None:
            if hi - lo == 1:
                raw, key, topic, partition, offset, now = self.sources[lo]
                reason = f"the warehouse refused this event: {str(error)[:300]}"
                self.rows["dead_letters"].append(rejected_row(raw, key, topic, partition, offset, reason, now))
                if as_lines:
                    self.event_count -= 1
                return
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid, hi)):
                try:
                    insert(a, b)
                except WarehouseError as exc:
                    isolate(a, b, exc)

        try:
            insert(0, len(items))
        except WarehouseError as exc:
            if not refuses_the_data(exc):
                raise  # the warehouse, not the data: the batch waits and is retried
            log.warning("the warehouse refused a batch of events (%s): finding the refused ones", exc)
            isolate(0, len(items), exc)

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
        max_backoff: float = 30.0,
        on_flush: Callable[[SinkProgress], None] | None = None,
        idle_exit: float | None = None,
        fast: bool = True,
        writers: int = 1,
        max_poll_interval_ms: int = 60_000,
        stop_timeout: float = 5.0,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.bootstrap = bootstrap
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        # One group per platform instance (topic prefix): instances sharing a cluster never share offsets.
        self.group_id = group_id or f"{settings.topic_prefix}-{GROUP_ID}"
        self.max_backoff = max_backoff
        #: kafka-python's limit between two polls. The consuming thread polls at least every
        #: second whatever the writers do (it never waits on a write), so this is far above any
        #: poll cycle; a join on tansu takes the session timeout, not this.
        self.max_poll_interval_ms = max_poll_interval_ms
        #: Seconds a stop waits for the batches being written (then they are re-read next time).
        self.stop_timeout = stop_timeout
        self.on_flush = on_flush
        #: Stop after this many seconds without a message once partitions are assigned (drain mode).
        self.idle_exit = idle_exit
        #: Events go to the warehouse as pre-serialised lines where it takes them (chdb).
        self._lines = hasattr(warehouse, "insert_json_lines")
        #: Events checked and written inside chdb (:class:`FastEvents`).
        self._fast = FastEvents(warehouse) if fast and FastEvents.supported(warehouse) else None
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
        #: Unbounded: the consuming thread never blocks handing a batch over (it counts them itself).
        self._queue: queue.Queue[Batch | None] = queue.Queue()
        self._seq = 0
        #: Fetching paused: a batch held (warehouse refused it) or the writers behind (back-pressure).
        self._held = False
        self._backoff = 0.5
        #: Committed offsets not yet recorded in ``sink_progress`` (the writer records them: the
        #: consuming thread never waits on the warehouse).
        self._progress_lock = threading.Lock()
        self._progress_rows: dict[tuple[str, int], int] = {}
        self._writer_threads: list[threading.Thread] = []
        self._consumer: Any = None
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
                self._batch.add_event(raw, record.key, topic, partition, offset, now, self._lines)
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
    # The consuming thread never waits on the warehouse: batches go to the writer threads, their
    # outcome is collected (in order) between polls, and the consumer keeps polling whatever the
    # writers do, so a slow or failing warehouse can never make it miss max_poll_interval_ms.
    def _writer(self, warehouse: Warehouse, fast: FastEvents | None, jobs: queue.Queue[Batch | None]) -> None:
        """Write the batches of ``jobs`` (this run's queue: a writer left in a slow insert by an
        earlier run never takes a later run's batches)."""
        while True:
            try:
                batch = jobs.get(timeout=1.0)
            except queue.Empty:
                self._record_progress(warehouse)
                continue
            if batch is None:
                self._record_progress(warehouse)
                return
            try:
                batch.write(warehouse, fast)
                batch.error = None
            except WarehouseError as exc:
                batch.error = str(exc)
            except Exception as exc:  # never leave the consuming thread waiting
                batch.error = f"{type(exc).__name__}: {exc}"
            batch.done.set()
            self._record_progress(warehouse)

    def _record_progress(self, warehouse: Warehouse) -> None:
        """The committed offsets into ``sink_progress`` (for operators; the Kafka commit is what counts)."""
        with self._progress_lock:
            offsets, self._progress_rows = self._progress_rows, {}
        if not offsets:
            return
        now = datetime.now(UTC)
        try:
            warehouse.insert(
                "sink_progress",
                ["topic", "partition", "offset", "updated_at", "group_id"],
                [(t, p, o, now, self.group_id) for (t, p), o in sorted(offsets.items())],
            )
        except WarehouseError as exc:
            log.warning("could not record sink progress: %s", exc)

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
        p.last_progress_at = time.time()
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
        with self._progress_lock:
            self._progress_rows.update(offsets)

    def _submit(self, batch: Batch | None = None) -> None:
        """Hand a batch (the current one unless given: a held one, again) to the writers."""
        if batch is None:
            batch, self._batch = self._batch, Batch()
            self._seq += 1
            batch.seq = self._seq
        else:
            batch.done.clear()
            batch.error = None
        self._inflight.append(batch)
        self._queue.put(batch)

    def _settle(self) -> None:
        """Collect the written batches, oldest first, without waiting: commit each in order, or hold it.

        A batch is committed only when no earlier one is held: never past unwritten data. A later
        batch already written waits in the held list (its tables are skipped when it is retried).
        """
        consumer = self._consumer
        while self._inflight and self._inflight[0].done.is_set():
            b = self._inflight.popleft()
            if b.error is None and (not self._failed or b.seq < self._failed[0].seq):
                self._complete(consumer, b)
                while self._failed and self._failed[0].done.is_set() and self._failed[0].error is None:
                    self._complete(consumer, self._failed.pop(0))  # written while an earlier one failed
                if self.progress.paused:
                    if self._failed:
                        self.progress.retry_at = time.time()  # the next held one, at once
                    else:
                        self._resume_after_failure()
                continue
            self._failed.append(b)
            self._failed.sort(key=lambda x: x.seq)
            if b.error is not None:
                self._note_failure(b.error)

    def _note_failure(self, error: str) -> None:
        """The warehouse refused a batch: pause consumption, retry with backoff (never commit past it)."""
        p = self.progress
        delay = self._backoff
        self._backoff = min(self.max_backoff, self._backoff * 2)
        p.attempts += 1
        p.last_error = error
        p.retry_at = time.time() + delay
        p.paused_reason = f"warehouse write failed ({p.attempts}x, next try in {delay:.1f} s): {error}"
        if not p.paused:
            p.paused = True
            log.warning("warehouse write failed, consumption paused: %s", error)
        else:
            log.warning("warehouse write failed again (retry in %.1f s): %s", delay, error)

    def _resume_after_failure(self) -> None:
        p = self.progress
        log.info("warehouse writable again after %d failed attempt(s): consumption resumed", p.attempts)
        p.paused, p.paused_reason, p.retry_at, p.attempts = False, None, None, 0
        self._backoff = 0.5

    def _retry_due(self) -> None:
        """The oldest held batch to a writer again, once its backoff has passed and no write runs."""
        if self._failed and not self._inflight and time.time() >= (self.progress.retry_at or 0):
            self._submit(self._failed.pop(0))

    def _writers_behind(self) -> bool:
        return len(self._inflight) >= self.writers and self._batch.count >= 2 * self.batch_size

    def _hold(self, consumer, hold: bool) -> None:
        """Pause (or resume) fetching on every assigned partition; the consumer keeps polling."""
        if hold == self._held:
            return
        self._held = hold
        assigned = consumer.assignment()
        if assigned:
            (consumer.pause if hold else consumer.resume)(*assigned)

    def _note_pending(self, got: int) -> None:
        p = self.progress
        p.pending = (
            self._batch.count + sum(b.count for b in self._inflight) + sum(b.count for b in self._failed)
        )
        if not got and not self._held:  # a poll found nothing to read: caught up with the topics
            p.caught_up_at = time.time()

    def heartbeat(self) -> dict[str, Any]:
        """The sink's state for its process's pid file (:mod:`fupin.heartbeat`)."""
        p = self.progress
        return beat(
            "paused" if p.paused else "running",
            p.paused_reason,
            p.pending,
            p.last_progress_at,
            p.caught_up_at,
            messages=p.messages,
            events=p.rows["events"],
            dead_letters=p.dead_letters,
            rebalances=p.rebalances,
        )

    def writers_done(self) -> bool:
        """Whether every writer thread has ended (so their connections may be closed)."""
        return not any(t.is_alive() for t in self._writer_threads)

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
            max_poll_interval_ms=self.max_poll_interval_ms,
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
        else:
            batch = self._batch
            for records in polled.values():
                if not records:
                    continue
                got += len(records)
                topic = records[0].topic
                if topic in self._inputs:  # the hot path: department events
                    for r in records:
                        batch.add_event(r.value, r.key, topic, r.partition, r.offset, now, self._lines)
                else:
                    for r in records:
                        self.add(r, now, note=False)
                batch.note_span(records)
        if got and self.progress.first_record_at is None:
            self.progress.first_record_at = time.monotonic()
        return got

    def run(self) -> SinkProgress:
        """Consume until :attr:`stop_event` is set (or idle, in drain mode); then flush and commit."""
        from kafka import ConsumerRebalanceListener

        sink = self

        class Listener(ConsumerRebalanceListener):
            """Runs in kafka-python's IO thread: it must not block (no write, no commit, no wait).

            Batches read before a rebalance stay: they are written and committed in order by the
            consuming thread (committing rows that are written is safe whoever owns the partition
            now). Positions restart from the committed offsets, so some messages are read twice;
            they collapse in the tables (ReplacingMergeTree on the message's identity).
            """

            def on_partitions_revoked(self, revoked):
                if revoked and not closing.is_set():  # leaving the group on close is no rebalance
                    sink.progress.rebalances += 1

            def on_partitions_assigned(self, assigned):
                if sink._held and assigned:
                    consumer.pause(*assigned)

        closing = threading.Event()
        # A writer of an earlier run still inside a slow insert holds this run's connection and
        # session tables: it ends after that batch (it has its stop sentinel); wait for it first.
        for earlier in self._writer_threads:
            earlier.join()
        # A new run re-reads from the committed offsets: nothing of an earlier, failed run carries over.
        self._batch, self._inflight, self._failed = Batch(), deque(), []
        self._held, self._backoff = False, 0.5
        self._queue = queue.Queue()
        p = self.progress
        p.paused, p.paused_reason, p.retry_at, p.attempts = False, None, None, 0
        consumer = self._consumer = self._make_consumer()
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
        writers = self._writer_threads = [
            threading.Thread(
                target=self._writer, args=(c, f, self._queue), name=f"sink-writer-{i}", daemon=True
            )
            for i, (c, f) in enumerate(zip(connections, fasts, strict=True))
        ]
        for writer in writers:
            writer.start()
        idle_since = time.monotonic()
        try:
            while not self.stop_event.is_set():
                self._settle()
                self._retry_due()
                # Fetching pauses while a batch is held or the writers are behind; polling never does.
                self._hold(consumer, bool(self._failed) or self._writers_behind())
                got = self._poll(consumer, 100)
                self._note_pending(got)
                if self.idle_exit is not None:
                    now = time.monotonic()
                    if got or not consumer.assignment() or p.pending:
                        idle_since = now
                    elif now - idle_since >= self.idle_exit:
                        log.info("no messages for %.0f s: stopping (idle exit)", self.idle_exit)
                        break
                if self._failed:
                    continue  # nothing new goes to the writers before the held batches are written
                # Due, or caught up (a poll found nothing) with the writers idle: no reason to wait.
                if self.due() or (not got and self._batch.count and not self._inflight):
                    if len(self._inflight) < self.writers:
                        self._submit()
                    elif self._batch.count >= 2 * self.batch_size:
                        # Back-pressure: wait a little for the oldest write (the usual, fast case);
                        # a slower one pauses fetching at the top of the loop and polling goes on.
                        self._inflight[0].done.wait(1.0)
            self._finish(consumer)
        finally:
            with contextlib.suppress(Exception):  # the first error is the one to report
                self._settle()
            for _ in writers:
                self._queue.put(None)
            deadline = time.monotonic() + 2.0  # a writer still inside a slow insert is left to it
            for writer in writers:
                writer.join(max(0.0, deadline - time.monotonic()))
            if self.writers_done():
                for extra in connections[1:]:
                    extra.close()
            closing.set()
            consumer.close(autocommit=False)
        return self.progress

    def _finish(self, consumer) -> None:
        """Stopping: what was read written and committed, in order, for at most ``stop_timeout`` s.

        The consumer keeps polling (fetching paused) while the writers finish; whatever is not
        written by then is not committed and is read again by the next run.
        """
        self._hold(consumer, True)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            self._settle()
            if self._failed:
                if not self._inflight:
                    self.progress.retry_at = min(self.progress.retry_at or 0, time.time() + 0.5)
                self._retry_due()
            elif self._batch.count and len(self._inflight) < self.writers:
                self._submit()
            if not (self._inflight or self._failed or self._batch.count):
                break
            if self._inflight:
                self._inflight[0].done.wait(0.1)
            else:
                time.sleep(0.05)  # a held batch's next try is due soon: no spin meanwhile
            self._poll(consumer, 0)
        else:
            log.warning("stopping with %d message(s) not written: they are read again next time",
                        self._batch.count + sum(b.count for b in (*self._inflight, *self._failed)))  # fmt: skip
        self._note_pending(0)


def run_sink(warehouse: Warehouse, settings: Settings, bootstrap: str, **kwargs: Any) -> Sink:
    """Build a sink (for callers that run it in a thread and stop it with ``sink.stop_event``)."""
    return Sink(warehouse, settings, bootstrap, **kwargs)
