"""One judgement everywhere: the stream worker and the sink (both of its paths) give the same
verdict, with the same reason, for every message of a hostile department's corpus.

The corpus (:mod:`producers.simulator.hostile`) mixes valid events with bad messages of every
kind the spec names, duplicates and conflicting duplicates among them. Each component reads the
same messages at the same (topic, partition, offset); a message is either dead-lettered (with a
reason) or not, and the two sets of dead letters must be equal, reason for reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fupin import privacy
from producers.simulator import hostile
from streams.alerts import Thresholds
from streams.app import Projector, Record
from streams.deadletter import header_dict
from streams.guarantees import load_lines
from warehouse.client import ChdbWarehouse
from warehouse.fetch import RecordRun
from warehouse.migrate import migrate
from warehouse.sample import sample_event
from warehouse.sink import Batch, FastEvents

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def messages() -> list:
    """Valid events with every kind of bad message between them, each at its own offset."""
    valid = [sample_event(i, households=60, seed=3) for i in range(600)] + hostile.schema_examples()
    bad = hostile.corpus(seed=11, n=len(hostile.KINDS) * 6, valid_envelopes=valid, topic_prefix="fupin")
    return hostile.interleave(hostile.valid_messages(valid, "fupin"), bad, seed=5)


def _positions(messages) -> list[tuple[str, int, int, object]]:
    """(topic, partition, offset, message): one partition a topic, offsets in sending order."""
    next_offset: dict[str, int] = {}
    out = []
    for m in messages:
        offset = next_offset.get(m.topic, 0)
        next_offset[m.topic] = offset + 1
        out.append((m.topic, 0, offset, m))
    return out


def _stream_verdicts(settings, positions) -> dict[tuple[str, int, int], str]:
    projector = Projector(settings, load_lines(settings.reference_path), Thresholds())
    store: dict[bytes, bytes] = {}
    dead: dict[tuple[str, int, int], str] = {}
    # Batches of a few hundred records, as a worker folds them; the table persists between them.
    for start in range(0, len(positions), 250):
        records = [Record(m.key, m.value, t, p, o) for t, p, o, m in positions[start : start + 250]]
        result = projector.process(records, lambda key, ref: store.get(key))
        for key, value, _ref in result.writes:
            store[key] = value
        for letter in result.dead:
            h = header_dict(letter.headers)
            dead[(h["fupin.source_topic"], int(h["fupin.source_partition"]), int(h["fupin.source_offset"]))] = h[
                "fupin.reason"
            ]
            assert not privacy.find((letter.value or b"").decode("utf-8", "replace"))
    return dead


def _sink_verdicts(wh, positions, fast: bool) -> dict[tuple[str, int, int], str]:
    for start in range(0, len(positions), 400):
        batch = Batch()
        runs: dict[str, RecordRun] = {}
        for t, p, o, m in positions[start : start + 400]:
            run = runs.setdefault(t, RecordRun(t, p, [], [], [], []))
            run.offsets.append(o)
            run.timestamps.append(1)
            run.keys.append(m.key)
            run.values.append(m.value)
        for t, run in runs.items():
            batch.raw.append((t, 0, run, NOW))
            batch.note_span(run)
        batch.write(wh, FastEvents(wh) if fast else None)
    rows = wh.query("SELECT source_topic, source_partition, source_offset, reason, raw FROM dead_letters FINAL")
    for *_, raw in rows:
        assert not privacy.find(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    return {(t, p, o): reason for t, p, o, reason, _raw in rows}


def test_stream_worker_and_sink_judge_alike(settings, messages):
    positions = _positions(messages)
    streams = _stream_verdicts(settings, positions)
    sinks = {}
    for fast in (True, False):
        wh = ChdbWarehouse(settings.chdb_data_path, f"{settings.clickhouse_database}_{'fast' if fast else 'py'}")
        migrate(wh)
        sinks[fast] = _sink_verdicts(wh, positions, fast)
        stored = {r[0] for r in wh.query("SELECT event_id FROM events FINAL")}
        # Nothing invalid stored; every valid event stored once.
        for _t, _p, _o, m in positions:
            verdict = getattr(m, "verdict", "valid")
            if verdict == hostile.INVALID and m.kind != "conflicting_duplicate" and m.event_id:
                assert m.event_id not in stored, m.kind
            elif verdict in ("valid", hostile.VALID_UNKNOWN_REGION):
                assert m.event_id in stored, verdict
        assert wh.query("SELECT count() - uniqExact(event_id) FROM events FINAL")[0][0] == 0
    expected = {(t, p, o) for t, p, o, m in positions if getattr(m, "verdict", None) == hostile.INVALID}
    assert set(streams) == expected, {getattr(m, "kind", "valid") for t, p, o, m in positions
                                      if ((t, p, o) in streams) != ((t, p, o) in expected)}  # fmt: skip
    for fast, verdicts in sinks.items():
        differ = {k: (streams.get(k), verdicts.get(k)) for k in set(streams) | set(verdicts)
                  if streams.get(k) != verdicts.get(k)}  # fmt: skip
        assert not differ, (fast, list(differ.items())[:5])
