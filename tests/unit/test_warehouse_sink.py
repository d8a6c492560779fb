"""The sink's message → row rules: what becomes a row, what becomes a dead letter and why."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from warehouse.rebuild import envelope_bytes
from warehouse.sample import sample_event
from warehouse.sink import Rejected, alert_row, dead_letter_row, event_row, status_row

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
STATUS = {"household_id": "H1", "version": 2, "region_code": "431224104201", "status": "poor",
          "last_occurred_at": "2020-11-03", "updated_at": "2026-11-23T20:00:00Z"}  # fmt: skip


def test_event_row_keeps_what_a_replay_needs():
    ev = sample_event(2)  # income assessment, 10:00+08:00
    row = event_row(orjson.dumps(ev), "fupin.events.poverty_office", 1, 7, NOW, key=ev["household_id"].encode())
    assert row[0] == ev["event_id"] and row[5] == ev["household_id"]
    assert row[8] == datetime(2020, 1, 3, 2, 0, tzinfo=UTC)
    stored = dict(zip(["event_id", "event_type", "schema_version", "department", "source_system", "household_id",
                       "person_id", "region_code", "occurred_at", "recorded_at", "payload"], row[:11], strict=True))  # fmt: skip
    stored.update(occurred_at_text=row[15], recorded_at_text=row[16])
    assert orjson.loads(envelope_bytes(stored)) == ev  # the replayed envelope equals the original


@pytest.mark.parametrize(
    ("raw", "topic", "reason"),
    [
        (b"{oops", "fupin.events.water", "not valid JSON"),
        (
            orjson.dumps({**sample_event(1), "payload": {"safe": "yes", "issues": []}}),
            "fupin.events.water",
            "safe",
        ),
        (orjson.dumps(sample_event(1)), "fupin.events.housing", "department"),
    ],
)
def test_event_row_rejects(raw, topic, reason):
    with pytest.raises(Rejected, match=reason):
        event_row(raw, topic, 0, 0, NOW, key=sample_event(1)["household_id"].encode())


def test_status_row_and_its_rejections():
    row = status_row(orjson.dumps(STATUS), NOW)
    assert row[:4] == ("H1", 2, "431224104201", "poor") and orjson.loads(row[4]) == STATUS
    for bad, reason in [({**STATUS, "version": -1}, "version"), ({**STATUS, "version": 2.0**70}, "version"),
                        ({**STATUS, "updated_at": "yesterday"}, "updated_at"), ({**STATUS, "status": None}, "status"),
                        ({**STATUS, "updated_at": "1066-10-14T00:00:00Z"}, "outside")]:  # fmt: skip
        with pytest.raises(Rejected, match=reason):
            status_row(orjson.dumps(bad), NOW)
    with pytest.raises(Rejected, match="JSON object"):
        status_row(b"[1]", NOW)


def test_alert_row_rejects_an_unknown_state():
    alert = {"alert_id": "a", "rule": "unsafe_water", "state": "raised", "household_id": "H1",
             "start_event_id": "e", "start_occurred_at": "2020-01-01", "start_recorded_at": "2020-01-02",
             "end_event_id": None, "end_occurred_at": None, "end_recorded_at": None, "revision": 3,
             "processed_at": "2026-11-23T20:00:00Z"}  # fmt: skip
    assert alert_row(orjson.dumps(alert), NOW)[2] == "raised"
    retracted = alert_row(orjson.dumps({**alert, "state": "retracted", "end_event_id": "f",
                                        "end_occurred_at": "2020-02-01", "end_recorded_at": "2020-02-03",
                                        "revision": 4}), NOW)  # fmt: skip
    assert retracted[2] == "retracted" and retracted[8] == "f" and retracted[11] == 4
    with pytest.raises(Rejected, match="state"):
        alert_row(orjson.dumps({**alert, "state": "open"}), NOW)
    for revision in (None, 0, 1.5, True):
        with pytest.raises(Rejected, match="revision"):
            alert_row(orjson.dumps({**alert, "revision": revision}), NOW)


def test_dead_letter_identity_from_headers_or_its_own_offset():
    headers = [("fupin.reason", b"bad"), ("fupin.source_topic", b"fupin.events.water"),
               ("fupin.source_partition", b"2"), ("fupin.source_offset", b"40"), ("fupin.source", b"streams")]  # fmt: skip
    row = dead_letter_row(b"\x00raw", b"H1", headers, "fupin.deadletter", 0, 9, NOW)
    assert row[:5] == ("fupin.events.water", 2, 40, "streams", "bad") and row[5] == b"\x00raw"
    bare = dead_letter_row(b"x", None, [], "fupin.deadletter", 1, 9, NOW)
    assert bare[:3] == ("fupin.deadletter", 1, 9) and "no valid fupin.source_* headers" in bare[4]


def test_batch_token_tells_messages_apart_not_just_offsets():
    from collections import namedtuple

    from warehouse.sink import Batch

    Rec = namedtuple("Rec", "topic partition offset timestamp value key headers")

    def batch(values: list[bytes]) -> Batch:
        b = Batch()
        for i, v in enumerate(values):
            b.note(Rec("fupin.events.water", 0, i, 1700000000000, v, None, []))
        return b

    same = batch([b"a", b"b", b"c"]).token("events")
    assert batch([b"a", b"b", b"c"]).token("events") == same  # a retried batch: deduplicated
    # After a broker restart the same offsets carry other messages: another token, nothing dropped.
    assert batch([b"x", b"b", b"c"]).token("events") != same
    assert batch([b"a", b"b", b"z"]).token("events") != same
    assert batch([b"a", b"b", b"c"]).token("alerts") != same
    assert batch([b"a", b"b", b"c"]).offsets() == {("fupin.events.water", 0): 3}
