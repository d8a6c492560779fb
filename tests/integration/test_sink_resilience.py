"""The sink against a slow or failing warehouse (real chdb, real broker): no restart loop, no loss.

The warehouse is a real chdb connection whose writes sleep (or raise) for a while: a write
slower than ``max_poll_interval_ms`` used to get the sink kicked out of its group, and the
rebalance listener then tried to flush from kafka-python's IO thread.
"""

from __future__ import annotations

import threading
import time

import pytest

from fupin.heartbeat import assess
from warehouse.client import ChdbWarehouse, WarehouseError
from warehouse.migrate import migrate
from warehouse.sample import publish, sample_messages
from warehouse.sink import Sink


class TroubledChdb(ChdbWarehouse):
    """chdb whose batch writes sleep ``delay`` s (the first ``slow`` of them) or raise while ``down``."""

    def __init__(self, path, database, delay: float = 0.0, slow: int = 0) -> None:
        super().__init__(path, database)
        self.delay, self.slow = delay, slow
        self.down = threading.Event()
        self.refused = 0
        self.slowed = 0

    def _trouble(self) -> None:
        if self.down.is_set():
            self.refused += 1
            raise WarehouseError("insert into events failed: Code: 210. Connection refused (test)")
        if self.slowed < self.slow:
            self.slowed += 1
            time.sleep(self.delay)

    def query_batch(self, sql, sink_batch):
        self._trouble()
        return super().query_batch(sql, sink_batch)

    def insert_json_lines(self, table, columns, data, dedup_token):
        self._trouble()
        return super().insert_json_lines(table, columns, data, dedup_token)

    def insert(self, table, columns, rows, dedup_token=None):
        if table != "sink_progress":  # progress is for operators: not part of the trouble
            self._trouble()
        return super().insert(table, columns, rows, dedup_token)


@pytest.fixture
def troubled(settings):
    made = []

    def make(delay: float = 0.0, slow: int = 0) -> TroubledChdb:
        w = TroubledChdb(settings.chdb_data_path, settings.clickhouse_database)
        migrate(w)  # untroubled
        w.delay, w.slow = delay, slow
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def counts(wh) -> tuple[int, int, int]:
    return wh.query(
        "SELECT (SELECT count() FROM events_latest), (SELECT count() FROM events FINAL), "
        "(SELECT uniqExact(event_id) FROM events)"
    )[0]


def start(sink: Sink) -> threading.Thread:
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    return thread


def wait_for(cond, timeout: float, thread: threading.Thread) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        assert thread.is_alive(), "the sink's run ended (it raised)"
        time.sleep(0.1)


def test_writes_slower_than_the_poll_interval_land_every_event_once(broker_settings, troubled):
    s = broker_settings
    n = 4000
    publish(s.broker_bootstrap, s, sample_messages(n, seed=21))
    # Each of the first two writes takes 8 s, far longer than the 3 s poll interval allows.
    wh = troubled(delay=8.0, slow=2)
    sink = Sink(wh, s, s.broker_bootstrap, batch_size=200, batch_seconds=0.2, max_poll_interval_ms=3000)
    thread = start(sink)
    try:
        wait_for(lambda: sink.progress.messages >= n, 120, thread)
    finally:
        sink.stop_event.set()
        thread.join(30)
    assert not thread.is_alive()
    assert wh.slowed == 2
    assert sink.progress.messages == n
    assert sink.progress.rebalances == 0, "kicked out of the group by a slow write"
    assert counts(wh) == (n, n, n)


def test_a_failing_warehouse_pauses_with_its_reason_then_recovers(broker_settings, troubled):
    s = broker_settings
    n = 3000
    wh = troubled()
    wh.down.set()
    publish(s.broker_bootstrap, s, sample_messages(n, seed=22))
    sink = Sink(wh, s, s.broker_bootstrap, batch_size=500, batch_seconds=0.2, max_backoff=2.0)
    thread = start(sink)
    try:
        wait_for(lambda: sink.progress.paused, 60, thread)
        assert sink.progress.paused
        # Meanwhile: paused with the reason, as the status judges it; nothing committed past it.
        time.sleep(6)
        beat = sink.heartbeat()
        verdict = assess(beat, alive=True, updated_at=time.time())
        assert verdict.state == "paused" and verdict.stuck
        assert "Connection refused (test)" in verdict.reason and "warehouse write failed" in verdict.reason
        assert sink.progress.messages == 0
        assert wh.query("SELECT count() FROM sink_progress")[0][0] == 0
        # Backoff (0.5, 1, 2, 2 … s), not a spin: a few tries in 6 s (each: the fast path, the Python path).
        assert 2 <= wh.refused <= 20, wh.refused
        assert thread.is_alive()
        wh.down.clear()
        wait_for(lambda: sink.progress.messages >= n, 60, thread)
        assert not sink.progress.paused and sink.progress.paused_reason is None
        assert assess(sink.heartbeat(), alive=True, updated_at=time.time()).state in ("alive", "lagging")
    finally:
        sink.stop_event.set()
        thread.join(30)
    assert sink.progress.messages == n
    assert counts(wh) == (n, n, n)
    committed = wh.query("SELECT sum(offset) FROM sink_progress FINAL")[0][0]
    assert committed == n


def test_a_rebalance_mid_write_loses_and_duplicates_nothing(broker_settings, troubled):
    """A second sink joins the group while the first one's batches are being written.

    The first one's partitions are revoked in kafka-python's IO thread; the listener used to
    flush and commit there ("Cannot block on net.run() from the IO thread itself").
    """
    s = broker_settings
    n = 6000
    publish(s.broker_bootstrap, s, sample_messages(n, seed=23))
    first_wh = troubled(delay=1.5, slow=6)  # writes in flight when the rebalance comes
    second_wh = troubled()
    first = Sink(first_wh, s, s.broker_bootstrap, batch_size=300, batch_seconds=0.2)
    second = Sink(second_wh, s, s.broker_bootstrap, batch_size=300, batch_seconds=0.2)
    one = start(first)
    two = None
    try:
        wait_for(lambda: first.progress.messages > 0, 60, one)
        two = start(second)
        landed = lambda: counts(first_wh)[0] >= n  # noqa: E731
        wait_for(lambda: landed() and first.progress.rebalances, 120, one)
        assert two.is_alive()
        wait_for(lambda: not first.progress.pending and not second.progress.pending, 30, one)
    finally:
        first.stop_event.set()
        second.stop_event.set()
        one.join(30)
        if two is not None:
            two.join(30)
    assert not one.is_alive() and not (two and two.is_alive())
    assert first.progress.rebalances >= 1
    assert first.progress.messages + second.progress.messages >= n  # some read twice: they collapse
    assert counts(first_wh) == (n, n, n)
