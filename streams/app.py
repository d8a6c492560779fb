"""The Faust application: department topics in, household status and alerts out.

One agent reads every department topic in batches (``stream.take_events``), judges each message
with the one validity judgement (:mod:`fupin.validity`), groups the batch by household and folds each household's events with the
pure rule book (:mod:`streams.household`), writing each table key once per batch. Outputs of a
batch are delivered before the table is written, so a crash between the two re-emits (at least
once, same alert ids and versions) rather than losing a raise or a status change.

The table is ``rocksdb://`` with ``recovery_consistency_check=False``: tansu reports wrong end
offsets (DEVELOPERS.md). A table write goes to the partition of the event it belongs to, so
before each table access the current-event context is set to one of that household's events.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson

from fupin import auth, topics, validity
from fupin.compat import faust as faust_compat
from fupin.config import Settings
from fupin.partition import partition_of
from fupin.timeutil import iso_utc, utc_now
from streams import household, transport
from streams.alerts import Thresholds
from streams.deadletter import DeadLetter, dead_letter
from streams.guarantees import Lines, load_lines

TABLE = "households"
#: Roles that may read the live household documents and alerts of the web views.
PAGE_ROLES = (auth.OPERATOR, auth.ANALYST)
#: Allocations between two young-generation collections in a worker (Python's default: 700).
GC_THRESHOLD = 50_000
#: Messages (fetched partition batches) a worker's stream may hold before fetching pauses.
STREAM_BUFFER = 100
#: The table's rocksdb, per partition: Faust's defaults (a 2 GiB block cache and three 64 MiB
#: memtables for each partition's database) let a worker grow past 4 GB during the demo; these
#: keep it near 150 MB a partition. The working set is one state per household of the partition.
ROCKSDB_OPTIONS = {
    "block_cache_size": 64 * 1024**2,
    "block_cache_compressed_size": 16 * 1024**2,
    "write_buffer_size": 16 * 1024**2,
    "max_write_buffer_number": 2,
}
#: Changelog key of the end-of-batch marker: '~' is not allowed in a household id.
MARK = b"~mark"
#: (topic, key, value, headers) -> awaitable delivery
Sender = Callable[[str, bytes | None, bytes | None, list | None], Awaitable[Any]]


@dataclass
class Record:
    """One consumed message, with the Faust event it came from (for the table's partition)."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    ref: Any = None


@dataclass
class BatchResult:
    status: list[tuple[bytes, bytes]] = field(default_factory=list)
    alerts: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    writes: list[tuple[bytes, bytes, Any]] = field(default_factory=list)
    applied: int = 0
    duplicates: int = 0


class Projector:
    """Decode, validate and fold one batch; no Faust here, so tests and benchmarks drive it directly."""

    def __init__(self, settings: Settings, lines: Lines, thresholds: Thresholds) -> None:
        self.lines = lines
        self.thresholds = thresholds
        self.department_of = {topics.department_topic(settings, d): d for d in topics.DEPARTMENTS}

    def _fold_household(
        self, key: bytes, items: list[tuple[dict, Record]], load: Callable[[bytes, Any], bytes | None],
        floor: int, now: str, out: BatchResult,
    ) -> None:  # fmt: skip
        """Fold one household's events of the batch; its outputs go to ``out`` only if all of it works.

        A conflicting duplicate (an applied ``event_id`` with other content) is a dead letter naming
        the first by its fingerprint, as the sink names it; a duplicate changes nothing.
        """
        ref = items[-1][1].ref
        hid = items[0][0]["household_id"]
        raw = load(key, ref)
        state = household.loads(raw, hid) if raw else household.new_state(hid)
        # One batch per household: a late event corrects the history once, at finish().
        batch = household.Batch(state, self.lines, self.thresholds, floor)
        applied = duplicates = 0
        dead: list[DeadLetter] = []
        for env, rec in items:
            fp = validity.fingerprint(env)
            held = household.known_fingerprint(state, env["event_id"])
            if held is not None and held != fp:
                reason = validity.conflict_reason(env["event_id"], held)
                dead.append(dead_letter(reason, rec.value, rec.key, rec.topic, rec.partition, rec.offset))
            elif batch.add(env, fp):
                applied += 1
            else:
                duplicates += 1
        messages = batch.finish()
        if applied:
            state["v"] += applied
            document = household.document(state, self.lines, now)
        out.dead += dead
        out.duplicates += duplicates
        if not applied:
            return
        out.applied += applied
        dumps = orjson.dumps
        for message in messages:
            message["processed_at"] = now
            out.alerts.append((key, dumps(message)))
        out.status.append((key, dumps(document)))
        out.writes.append((key, household.encode(state), ref))

    def check(self, rec: Record) -> dict[str, Any]:
        """The judged envelope of a record, or :class:`fupin.validity.Invalid` saying why not."""
        return validity.judge(rec.value, rec.key, self.department_of.get(rec.topic))

    def process(self, records: Iterable[Record], load: Callable[[bytes, Any], bytes | None]) -> BatchResult:
        out = BatchResult()
        groups: dict[bytes, list[tuple[dict, Record]]] = {}
        for rec in records:
            try:
                env = self.check(rec)
            except validity.Invalid as exc:
                out.dead.append(
                    dead_letter(exc.reason, rec.value, rec.key, rec.topic, rec.partition, rec.offset)
                )
                continue
            groups.setdefault(rec.key, []).append((env, rec))  # type: ignore[arg-type]
        now = iso_utc(utc_now())
        # The least revision of this batch's alert messages: the wall clock (µs), so that after a
        # broker loss the rebuilt fold's messages replace the old epoch's in the warehouse.
        floor = time.time_ns() // 1000
        for key, items in groups.items():
            try:
                self._fold_household(key, items, load, floor, now, out)
            except Exception as exc:  # a bug in the fold, or a state it cannot read: never stop
                reason = f"fold failed: {exc!r}"
                out.dead += [dead_letter(reason, r.value, r.key, r.topic, r.partition, r.offset) for _, r in items]
        return out


def worker_dir(settings: Settings, worker: str) -> Path:
    return Path(settings.data_dir) / "streams" / f"worker-{worker}"


def forget_if_broker_changed(settings: Settings, worker: str, bootstrap: str) -> bool:
    """Clear the worker's local table store if the broker is not the one it was built against.

    After a broker loss the embedded broker comes back empty: the store would still hold every
    household, so events replayed by ``fupin rebuild`` would all look like duplicates and no status
    would be published again. The broker's epoch (``fupin.broker.broker_epoch``) tells. True if
    the store was cleared.
    """
    from fupin.broker import broker_epoch

    datadir = worker_dir(settings, worker)
    marker = datadir.with_name(f"worker-{worker}.epoch")  # beside the store, which may be wiped
    epoch = broker_epoch(bootstrap, topics.epoch_topic(settings))
    known = marker.read_text().strip() if marker.exists() else None
    cleared = False
    if known != epoch and datadir.exists() and any(datadir.iterdir()):
        shutil.rmtree(datadir)
        cleared = True
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(epoch)
    return cleared


def worker_file(settings: Settings, worker: str) -> Path:
    """Where a running worker records its pid and web address (read by the CLI)."""
    return Path(settings.data_dir) / f"stream-{worker}.json"


def create_app(
    settings: Settings,
    *,
    bootstrap: str,
    worker: str = "1",
    web_port: int = 6066,
    store: str = "rocksdb://",
    batch_max: int = 5000,
    batch_within: float = 0.1,
    sender: Sender | None = None,
) -> faust.App:
    """The Faust app of one stream worker; ``sender`` replaces the producer in unit tests."""
    faust_compat.tune(batched=set(topics.input_topics(settings)))
    # A batch is tens of thousands of small dicts and lists that live until it is folded: with
    # the default thresholds the cyclic collector walks them again and again (measured: the fold
    # took 45 µs an event instead of 26). Nothing here builds cycles that need prompt collection.
    gc.set_threshold(GC_THRESHOLD, 20, 100)
    lines = load_lines(settings.reference_path)
    projector = Projector(
        settings, lines, Thresholds(settings.medical_burden_share, settings.medical_burden_amount)
    )
    datadir = worker_dir(settings, worker)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{settings.topic_prefix}-streams",
        broker=f"kafka://{bootstrap}",
        store=store,
        datadir=str(datadir),
        autodiscover=False,
        web_enabled=True,
        web_host="127.0.0.1",
        web_bind="127.0.0.1",
        web_port=web_port,
        # Only the platform's own views below, each behind a token; none of Faust's built-in ones.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        recovery_consistency_check=False,
        broker_rebalance_timeout=5,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_max_poll_interval=300,
        consumer_auto_offset_reset="earliest",
        # Messages waiting for the fold; each stands for up to a partition's poll (<= 1 MB of records),
        # so this bounds a worker's memory when it falls behind: fetching pauses beyond it.
        stream_buffer_maxsize=STREAM_BUFFER,
        producer_linger=0.005,
        producer_max_batch_size=1_000_000,
        producer_max_request_size=4_000_000,
        producer_acks=1,
    )
    source = app.topic(
        *topics.input_topics(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        TABLE, default=None, partitions=settings.topic_partitions, schema=raw, options=ROCKSDB_OPTIONS
    )
    # Values are bytes we encode ourselves (household.encode): the table must not re-encode them.
    table.key_serializer = table.value_serializer = "raw"
    table.schema.key_serializer = table.schema.value_serializer = "raw"
    # Faust built the changelog topic (which recovery decodes with) when the table was added,
    # still with JSON: build it again with the raw serializers.
    faust_compat.rebuild_changelog_topic(table)
    status_topic = topics.status_topic(settings)
    alerts_topic = topics.alerts_topic(settings)
    dlq_topic = topics.deadletter_topic(settings)
    counters = {"applied": 0, "duplicates": 0, "dead": 0}
    #: Where a worker's time goes, and when its first batch began and its last ended (epoch s):
    #: the benchmark's projection rate is the events of all batches over that span.
    timing = {"batches": 0, "fold_s": 0.0, "deliver_s": 0.0, "store_s": 0.0, "first_at": 0.0, "last_at": 0.0}
    #: The worker's own state for its pid file (fupin.heartbeat): paused while a delivery is retried,
    #: failed when the fold ends, pending while a batch is folded or the last one was full.
    health: dict[str, Any] = {"state": "running", "reason": None, "pending": 0, "in_batch": False,
                              "last_progress_at": None, "caught_up_at": None, "loop_at": None}  # fmt: skip
    app.fupin_projector = projector  # type: ignore[attr-defined]
    app.fupin_counters = counters  # type: ignore[attr-defined]
    app.fupin_health = health  # type: ignore[attr-defined]
    app.fupin_timing = timing  # type: ignore[attr-defined]
    app.fupin_table = table  # type: ignore[attr-defined]

    def load(key: bytes, ref: Any) -> bytes | None:
        faust_compat.set_current_event(ref)
        return table.get(key)

    partitions: dict[str, int] = {}

    async def partition_count(producer: Any, topic: str) -> int:
        count = partitions.get(topic)
        if count is None:
            count = partitions[topic] = len(await producer.partitions_for(topic))
        return count

    async def deliver(result: BatchResult) -> dict[Any, int]:
        """Send a batch's outputs, then its changelog; how far each changelog partition now reaches.

        The outputs are delivered before the changelog is sent: were the changelog first and the
        worker died in between, recovery would restore a state whose outputs were never sent.
        """
        if sender is not None:  # unit tests: one record at a time, no changelog of our own
            for k, v in result.alerts:
                await sender(alerts_topic, k, v, None)
            for k, v in result.status:
                await sender(status_topic, k, v, None)
            for d in result.dead:
                await sender(dlq_topic, d.key, d.value, d.headers)
            return {}
        producer = faust_compat.kafka_producer(app)
        outbox = transport.Outbox(producer)
        n_alerts = await partition_count(producer, alerts_topic)
        n_status = await partition_count(producer, status_topic)
        for k, v in result.alerts:
            await outbox.add(alerts_topic, partition_of(k, n_alerts), k, v)
        for k, v in result.status:
            await outbox.add(status_topic, partition_of(k, n_status), k, v)
        # Dead letters are rare and may lack a key: the producer's partitioner places them.
        dead = [await producer.send(dlq_topic, d.value, key=d.key, headers=d.headers) for d in result.dead]
        await outbox.flush()
        if dead:
            await asyncio.gather(*dead)
        if not result.writes:
            return {}
        # The changelog straight to the producer, batched, to the event's partition (as Faust's
        # table would), rather than through Faust's one-record-at-a-time table buffer.
        changelog = table.changelog_topic.get_topic_name()
        touched = set()
        for key, value, ref in result.writes:
            partition = ref.message.partition
            touched.add(partition)
            await outbox.add(changelog, partition, key, value)
        await outbox.flush()
        # tansu reports a partition's end as the first offset of its last batch + 1, so recovery
        # would stop short of a multi-record batch: close each touched partition with a
        # one-record batch of its own (a key no household can have, skipped on read).
        for partition in touched:
            await outbox.add(changelog, partition, MARK, b"{}")
        return {meta.topic_partition: meta.offset for meta in await outbox.flush()}

    @app.timer(1.0)
    async def tick() -> None:
        """The event loop turns (the pid file's freshness); no batch for a while: nothing waits."""
        now = health["loop_at"] = time.time()
        if not health["in_batch"] and now - (health["last_progress_at"] or 0) > 2 * batch_within + 1:
            health["pending"], health["caught_up_at"] = 0, now

    @app.agent(source, name="fold")
    async def fold(stream: faust.StreamT) -> None:
        try:
            await fold_batches(stream)
        except Exception as exc:  # the worker lives on but folds nothing: say so (fupin status)
            health["state"], health["reason"] = "failed", f"the fold stopped: {exc!r}"
            raise

    async def fold_batches(stream: faust.StreamT) -> None:
        async for events in stream.take_events(batch_max, within=batch_within):
            health["in_batch"], health["pending"] = True, len(events)
            records: list[Record] = []
            for e in events:
                m = e.message
                fetched = faust_compat.fetched_records(m)
                if fetched is None:
                    records.append(Record(m.key, m.value, m.topic, m.partition, m.offset, e))
                else:  # the records of one partition's poll: the event stands for all of them
                    records += [Record(r.key, r.value, r.topic, r.partition, r.offset, e) for r in fetched]
            if not timing["batches"]:
                timing["first_at"] = time.time()
            t0 = time.perf_counter()
            result = projector.process(records, load)
            t1 = time.perf_counter()
            delay, attempts = 0.5, 0
            while True:
                try:
                    persisted = await deliver(result)
                    break
                except Exception as exc:  # broker trouble: retry, never ack a batch whose outputs are lost
                    attempts += 1
                    app.log.warning("delivery failed (%r); retrying in %.1f s", exc, delay)
                    health["state"] = "paused"
                    health["reason"] = f"delivery failed ({attempts}x, next try in {delay:.1f} s): {exc!r}"
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            if attempts:
                app.log.warning("delivered after %d failed attempt(s)", attempts)
                health["state"], health["reason"] = "running", None
            t2 = time.perf_counter()
            store = table.data
            for key, value, ref in result.writes:
                faust_compat.set_current_event(ref)
                if sender is None:
                    store[key] = value
                else:
                    table[key] = value  # unit tests: no producer, Faust's own table path
            # What Faust's own changelog callback does: remember how far the local store is
            # covered, so that recovery replays only the changelog beyond it.
            for tp, offset in persisted.items():
                store.set_persisted_offset(tp, offset)
            timing["fold_s"] += t1 - t0
            timing["deliver_s"] += t2 - t1
            timing["store_s"] += time.perf_counter() - t2
            timing["batches"] += 1
            timing["last_at"] = time.time()
            counters["applied"] += result.applied
            counters["duplicates"] += result.duplicates
            counters["dead"] += len(result.dead)
            now = time.time()
            health["in_batch"], health["last_progress_at"] = False, now
            if len(events) < batch_max:  # a batch cut by time, not size: nothing else was waiting
                health["pending"], health["caught_up_at"] = 0, now

    app.fupin_agent = fold  # type: ignore[attr-defined]

    def local_state(hid: str) -> dict | None:
        """The household's state if this worker owns its partition now (else another worker does)."""
        key = hid.encode()
        partition = partition_of(key, settings.topic_partitions)
        changelog = table.changelog_topic.get_topic_name()
        if not any(
            tp.partition == partition and tp.topic == changelog for tp in app.assignor.assigned_actives()
        ):
            return None
        faust_compat.set_current_event(None)
        raw = table.get(key)
        return household.decode(raw) if raw else None

    def refused(view, request):  # noqa: ANN001 - a Faust view and its request
        """401/403 unless the request carries a token of a role that may read household documents."""
        try:
            auth.authorize(settings, request.headers.get("Authorization"), PAGE_ROLES)
        except auth.AuthError as exc:
            return view.json({"error": str(exc)}, status=exc.status)
        return None

    @app.page("/household/{hid}")
    async def household_view(self, request, hid: str):  # noqa: ANN001 - Faust view signature
        if (no := refused(self, request)) is not None:
            return no
        state = local_state(hid)
        if state is None:
            return self.json({"error": f"household {hid} is not held by this worker"}, status=404)
        return self.json(household.document(state, lines, iso_utc(utc_now())))

    @app.page("/household/{hid}/explain")
    async def explain_view(self, request, hid: str):  # noqa: ANN001
        if (no := refused(self, request)) is not None:
            return no
        state = local_state(hid)
        if state is None:
            return self.json({"error": f"household {hid} is not held by this worker"}, status=404)
        body = household.explain(state, lines)
        body["document"] = household.document(state, lines, iso_utc(utc_now()))
        return self.json(body)

    @app.page("/alerts")
    async def alerts_view(self, request):  # noqa: ANN001
        if (no := refused(self, request)) is not None:
            return no
        faust_compat.set_current_event(None)
        rows = []
        for key, raw in table.items():
            if not raw or key == MARK:
                continue
            state = household.decode(raw)
            for rule, (aid, eid, occurred) in state["open"].items():
                rows.append(
                    {
                        "alert_id": aid,
                        "rule": rule,
                        "household_id": key.decode(),
                        "region_code": state["region"][1],
                        "raised_event_id": eid,
                        "raised_occurred_at": occurred,
                    }
                )
        return self.json({"worker": worker, "open": rows, "counters": counters, "timing": timing})

    @app.page("/households")
    async def households_view(self, request):  # noqa: ANN001
        if (no := refused(self, request)) is not None:
            return no
        faust_compat.set_current_event(None)
        now = iso_utc(utc_now())
        docs = [
            household.document(household.decode(raw), lines, now)
            for key, raw in table.items()
            if raw and key != MARK
        ]
        return self.json({"worker": worker, "households": docs, "counters": counters})

    return app
