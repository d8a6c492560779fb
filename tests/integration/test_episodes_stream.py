"""Alert episodes through the embedded broker and a real stream worker: a simulated county published
department file after department file (most events late for their household), then every event
re-delivered in a shuffled order. The episodes and the status documents must be the fold's by
valid time, and the re-delivery must add no status version.
"""

from __future__ import annotations

import random
import time

import orjson
from county_events import county_envelopes
from test_streams import (
    WAIT,
    Worker,
    _processed,
    latest_per_alert,
    publish,
    read_topic,
    wait_for_statuses,
    without_clock,
)

from fupin.topics import alerts_topic, status_topic
from streams import household
from streams.alerts import Thresholds
from streams.guarantees import load_lines


def wait_processed(settings, worker: Worker, name: str, want: int) -> int:
    deadline = time.monotonic() + WAIT
    done = _processed(settings, name)
    while done < want and time.monotonic() < deadline:
        assert worker.proc.poll() is None, "stream worker exited"
        time.sleep(0.5)
        done = _processed(settings, name)
    return done


def test_county_in_department_order_then_shuffled_redelivery(broker_settings, tmp_path):
    envelopes = county_envelopes(tmp_path / "county", households=60, seed=31)
    s = broker_settings.with_(reference_dir=tmp_path / "county" / "reference")
    lines = load_lines(s.reference_dir)
    # The reference: the pure fold in valid-time order.
    states, _ = household.fold(sorted(envelopes, key=household.valid_key), lines, Thresholds())
    want_docs = {h: household.document(st, lines, "") for h, st in states.items()}
    fields = ("alert_id", "rule", "household_id", "start_event_id", "end_event_id", "state")
    want_episodes = {
        e["alert_id"]: {f: e[f] for f in fields} for st in states.values() for e in household.episodes(st)
    }
    assert len(want_episodes) > 10
    worker = Worker(s, "e1", tmp_path / "e1.log")
    try:
        publish(s, envelopes)  # department files one after another
        assert wait_processed(s, worker, "e1", len(envelopes)) >= len(envelopes)
        assert wait_for_statuses(s, want_docs, worker.proc) == {h: without_clock(d) for h, d in want_docs.items()}
        statuses_before = len(read_topic(s, status_topic(s), 1))
        again = envelopes[:]
        random.Random(4).shuffle(again)
        publish(s, again)  # every event once more, in any order, at any age
        assert wait_processed(s, worker, "e1", 2 * len(envelopes)) >= 2 * len(envelopes)
        alerts = [orjson.loads(r.value) for r in read_topic(s, alerts_topic(s), 1)]
        statuses = [orjson.loads(r.value) for r in read_topic(s, status_topic(s), statuses_before)]
    finally:
        worker.stop()
    # The duplicates changed nothing: no status document was published for them.
    assert len(statuses) == statuses_before
    latest: dict[str, dict] = {}
    for doc in statuses:
        if doc["version"] >= latest.get(doc["household_id"], {}).get("version", 0):
            latest[doc["household_id"]] = without_clock(doc)
    assert latest == {h: without_clock(d) for h, d in want_docs.items()}
    assert max(d["version"] for d in statuses) == max(d["version"] for d in want_docs.values())
    # What the messages say last about each alert is the fold's episode set (retracted ones gone).
    told = {
        a: {f: m[f] for f in fields} for a, m in latest_per_alert(alerts).items() if m["state"] != "retracted"
    }
    assert told == want_episodes
