"""One event the warehouse refuses never stops the sink: it becomes a dead letter, the rest land."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from warehouse.client import ChdbWarehouse, WarehouseError
from warehouse.migrate import migrate
from warehouse.sample import sample_event
from warehouse.sink import Batch

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_a_refused_event_is_isolated_and_dead_lettered(settings):
    wh = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    migrate(wh)
    batch = Batch()
    events = [sample_event(i) for i in range(9)]
    for i, ev in enumerate(events):
        batch.add_event(orjson.dumps(ev), ev["household_id"].encode(), f"fupin.events.{ev['department']}", 0, i, NOW)
    # A line the judgement never saw and no column can hold (what a bug upstream could leave).
    batch.event_lines.insert(4, b'["x", "y", 70000]')
    batch.sources.insert(4, (b"poison", b"k", "fupin.events.water", 0, 99, NOW))
    batch.event_count += 1
    batch.write(wh)
    stored = {r[0] for r in wh.query("SELECT event_id FROM events FINAL")}
    assert stored == {e["event_id"] for e in events}
    letters = wh.query("SELECT source_offset, reason FROM dead_letters FINAL")
    assert [o for o, _ in letters] == [99] and "the warehouse refused this event" in letters[0][1]


def test_a_warehouse_that_does_not_answer_is_not_the_data(settings):
    wh = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    migrate(wh)
    batch = Batch()
    ev = sample_event(1)
    batch.add_event(orjson.dumps(ev), ev["household_id"].encode(), f"fupin.events.{ev['department']}", 0, 0, NOW)

    down = wh.connect_again()
    down.close()  # a real connection that no longer answers
    try:
        batch.write(down)
    except WarehouseError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a warehouse that does not answer must fail the batch (it is retried)")
    assert not batch.rows["dead_letters"]  # nothing blamed on the message
    batch.write(wh)  # the retry, the warehouse back
    assert wh.query("SELECT count() FROM events FINAL")[0][0] == 1
