"""The sink's fast path (events checked by chdb) never accepts what the contract rejects.

Differential: the same messages, good and broken in many ways, go through the fast path and
through the Python path (``fupin.contract`` itself); whatever the fast path stores, the Python
path stores too, with the same columns, and what it refuses the Python path decides.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime

import orjson
import pytest

from fupin import privacy
from fupin.contract import SCHEMAS_DIR, SEMANTIC_CHECKS
from warehouse import contract_sql
from warehouse.client import ChdbWarehouse
from warehouse.fetch import RecordRun
from warehouse.migrate import migrate
from warehouse.sample import sample_messages
from warehouse.sink import EVENT_COLUMNS, Batch, FastEvents

NOW = datetime(2026, 11, 23, 20, 0, 0, 123000, tzinfo=UTC)


def _valid_examples() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(SCHEMAS_DIR.glob("**/examples/*/valid-*.json"))]


def _invalid_examples() -> list[dict]:
    out = []
    for p in sorted(SCHEMAS_DIR.glob("**/examples/*/invalid-*.json")):
        doc = json.loads(p.read_text())
        out.append(doc["envelope"] if isinstance(doc, dict) and "envelope" in doc else doc)
    return out


#: Values that break a field in ways a parser or a schema may read differently.
ODD_VALUES = [None, "", "x", 0, -1, 1.5, 5230.0, 2**70, True, [], {}, "2021-02-30", "1899-12-31",
              "2300-01-01T00:00:00Z", "é", "a\"b", "a\\b", "tab\there", "P" + "0" * 32, "431224104201",
              "中" * 200, "中" * 201, "a,b]", ["quality", "quality"], ["basic"], "\u2028", "x" * 65]  # fmt: skip
#: Text-level damage: each turns one well-formed message into another byte string.
TEXT_EDITS = [
    lambda b: b + b"\n",
    lambda b: b" " + b,
    lambda b: b"\xef\xbb\xbf" + b,
    lambda b: b.replace(b'","', b'", "', 1),
    lambda b: b.replace(b"{", b'{"event_id":"00000000-0000-0000-0000-000000000000",', 1),  # duplicate key
    lambda b: b.replace(b'"water"', b'"wat\\u0065r"'),
    lambda b: b.replace(b'"safe":true', b'"safe":1e400').replace(b'"safe":false', b'"safe":1e400'),
    lambda b: b.replace(b"2020", b"2020.0", 1),
    lambda b: b.replace(b"-08:00", b"+08:00").replace(b"+08:00", b"+24:00"),
    lambda b: b.replace(b'"source_system":"', b'"source_system":"\xff'),
    lambda b: b.replace(b'"source_system":"', b'"source_system":"\xed\xa0\x80'),
    lambda b: b.replace(b'"source_system":"', b'"source_system":"\xc0\xaf'),
    lambda b: b[:-1],
    lambda b: b.replace(b'"payload":', b'"payload" :'),
]


def _compact(value) -> bytes:
    """Compact JSON as orjson writes it, but for any integer (orjson refuses those beyond 64 bits)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


_serial = iter(range(1, 1 << 40))


def _fresh(envelope: dict) -> dict:
    """The envelope with an event id of its own: variants never collapse in the event store."""
    return {**envelope, "event_id": f"00000000-0000-4000-8000-{next(_serial):012x}"}


def _variants(envelope: dict) -> list[bytes]:
    out = [_compact(_fresh(envelope)), json.dumps(_fresh(envelope)).encode()]
    out.append(_compact(dict(reversed(list(_fresh(envelope).items())))))
    for key in list(envelope):
        out.append(_compact({k: v for k, v in _fresh(envelope).items() if k != key}))
        for odd in ODD_VALUES[:: 3 if key != "payload" else 1]:
            out.append(_compact({**_fresh(envelope), key: odd}))
    for key in ("occurred_at", "recorded_at"):  # calendar and range: beyond the schema's pattern
        for odd in ("2021-02-30", "2021-02-29T10:00:00+08:00", "2020-02-29T23:59:59.5-12:00",
                    "1899-12-31", "1899-12-31T23:00:00-05:00", "2300-01-01T00:00:00Z", "2299-12-31T23:00:00Z"):  # fmt: skip
            out.append(_compact({**_fresh(envelope), key: odd}))
    payload = envelope.get("payload")
    if isinstance(payload, dict):
        for key in list(payload):
            out.append(
                _compact({**_fresh(envelope), "payload": {k: v for k, v in payload.items() if k != key}})
            )
            for odd in ODD_VALUES:
                out.append(_compact({**_fresh(envelope), "payload": {**payload, key: odd}}))
            if isinstance(payload[key], list) and payload[key]:  # a repeated item
                twice = [payload[key][0], *payload[key]]
                out.append(_compact({**_fresh(envelope), "payload": {**payload, key: twice}}))
        out.append(_compact({**_fresh(envelope), "payload": {**payload, "extra": 1}}))
    out.append(_compact({**_fresh(envelope), "extra": 1}))
    out.extend(edit(_compact(_fresh(envelope))) for edit in TEXT_EDITS)
    return out


def _messages() -> list[tuple[str, bytes]]:
    """(topic, value): examples of every type, their variants, on their own and a wrong topic."""
    out: list[tuple[str, bytes]] = []
    for env in _valid_examples():
        topic = f"fupin.events.{env['department']}"
        for value in _variants(env):
            out.append((topic, value))
        out.append(("fupin.events.housing" if env["department"] != "housing" else "fupin.events.water",
                    orjson.dumps(env)))  # fmt: skip
    for env in _invalid_examples():
        dept = env.get("department") if isinstance(env, dict) else None
        out.append((f"fupin.events.{dept if isinstance(dept, str) else 'water'}", orjson.dumps(env)))
    out.extend((f"fupin.events.{d}", v) for d, _, v in sample_messages(200, seed=5))
    return out


_HOUSEHOLD = re.compile(rb'"household_id"\s*:\s*"([^"]*)"')


def _key(value: bytes) -> bytes:
    """The key a producer would give: the household id the message names (any bytes if none)."""
    found = _HOUSEHOLD.search(value)
    return found.group(1) if found else b"k"


def _batch(messages: list[tuple[str, bytes]]) -> Batch:
    """One batch: each topic's records in two partitions, as runs (what the sink's consumer gives)."""
    batch = Batch()
    by_topic: dict[tuple[str, int], tuple[list[int], list[bytes]]] = {}
    for offset, (topic, value) in enumerate(messages):
        offsets, values = by_topic.setdefault((topic, offset % 2), ([], []))
        offsets.append(offset)
        values.append(value)
    for (topic, partition), (offsets, values) in by_topic.items():
        run = RecordRun(topic, partition, offsets, [1] * len(offsets), [_key(v) for v in values], values)
        batch.raw.append((topic, partition, run, NOW))
        batch.note_span(run)
    return batch


@pytest.fixture
def two(settings):
    fast = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    slow = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database + "_py")
    for wh in (fast, slow):
        migrate(wh)
    yield fast, slow
    for wh in (fast, slow):
        wh.execute(f"DROP DATABASE IF EXISTS {wh.database}")
        wh.close()


def _events(wh: ChdbWarehouse) -> dict[tuple[str, int, int], dict]:
    rows = wh.query_dicts(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events")
    return {(r["topic"], r["partition"], r["offset"]): r for r in rows}


def test_every_supported_type_compiles_and_only_semantic_checks_stay_in_python():
    left = {key.split("/")[0] for key in contract_sql.unsupported_types()}
    assert left == set(SEMANTIC_CHECKS)
    assert set(contract_sql.message_regexes()) | left == {
        f"{p.parent.parent.name}.{p.parent.name}" for p in SCHEMAS_DIR.glob("*/*/[0-9]*.json")
    }


def test_fast_path_accepts_only_what_the_contract_accepts_with_the_same_columns(two, monkeypatch):
    fast_wh, slow_wh = two
    messages = _messages()
    assert len(messages) > 3000

    fast = _batch(messages)
    failures: list[str] = []
    monkeypatch.setattr("warehouse.sink.log.warning", lambda msg, *args: failures.append(msg % args))
    fast.write(fast_wh, FastEvents(fast_wh))
    assert not failures  # the fast path itself decided (no fallback of the whole batch)
    monkeypatch.undo()
    slow = _batch(messages)
    slow.write(slow_wh, None)  # no fast path: every message through fupin.contract

    fast_rows, slow_rows = _events(fast_wh), _events(slow_wh)
    assert set(fast_rows) == set(slow_rows)  # the same events stored, whatever path decided
    assert fast.event_count == slow.event_count == len(slow_rows)
    for key, row in fast_rows.items():
        other = slow_rows[key]
        assert orjson.loads(row.pop("payload")) == orjson.loads(other.pop("payload")), key
        assert row == other, key
    # The same dead letters, with the contract's reasons.
    letters = sorted((r[0], r[1], r[2], r[4]) for r in fast.rows["dead_letters"])
    assert letters == sorted((r[0], r[1], r[2], r[4]) for r in slow.rows["dead_letters"])
    assert len(letters) == len(messages) - len(slow_rows)


def test_fast_path_takes_the_well_formed_messages_itself(two, monkeypatch):
    fast_wh, _ = two
    values = [(f"fupin.events.{e['department']}", orjson.dumps(e)) for e in _valid_examples()]
    values += [(f"fupin.events.{d}", v) for d, _, v in sample_messages(500, seed=9)]
    decided_in_python: list = []
    original = Batch.decode

    def spy(self, records, topic, partition, now):
        decided_in_python.extend(records)
        original(self, records, topic, partition, now)

    monkeypatch.setattr(Batch, "decode", spy)
    batch = _batch(values)
    batch.write(fast_wh, FastEvents(fast_wh))
    python_only = {t.split("/")[0] for t in contract_sql.unsupported_types()}
    left = [orjson.loads(r.value)["event_type"] for r in decided_in_python]
    assert set(left) <= python_only, left
    assert batch.event_count == len(values)
    # The payload column holds the message's own text of the payload.
    stored = fast_wh.query("SELECT payload FROM events WHERE event_type = 'water.water_assessed' LIMIT 1")[0][
        0
    ]
    assert stored.startswith('{"safe":')


@pytest.mark.parametrize("low, high", [(1949, 2100), (0, 9), (1, 1), (5, 123), (0, 100), (7, 7000)])
def test_integer_ranges_as_digit_patterns(low, high):
    matches = re.compile(f"(?:{contract_sql._digits(str(low), str(high))})").fullmatch
    assert all(bool(matches(str(v))) == (low <= v <= high) for v in range(0, 12_000))


def test_the_engine_looks_for_raw_identifiers_where_the_judgement_does(two, monkeypatch):
    """``source_system`` and the payload's strings are searched (what is found goes to the Python
    path, which dead-letters it); a run of digits in a fixed-format field is no finding, so the
    engine takes that event itself."""
    fast_wh, _ = two
    rng = random.Random(7)
    mobile = f"1{rng.choice('3456789')}{rng.randint(0, 10**9 - 1):09d}"  # built here, never written out
    first17 = f"{rng.randint(10**16, 10**17 - 1)}"
    resident_id = first17 + privacy.check_digit(first17)
    example = json.loads(
        (SCHEMAS_DIR / "civil_affairs/dibao_terminated/examples/1/valid-income-rose.json").read_text()
    )
    topic = f"fupin.events.{example['department']}"
    in_household_id = _fresh(example) | {"household_id": f"H-{mobile}"}
    in_source = _fresh(example) | {"source_system": f"sys-{mobile}"}
    in_payload = _fresh(example) | {"payload": {"reason": f"经办 {resident_id} 核实"}}
    decided_in_python: list = []
    original = Batch.decode

    def spy(self, records, topic, partition, now):
        decided_in_python.extend(orjson.loads(r.value)["event_id"] for r in records)
        original(self, records, topic, partition, now)

    monkeypatch.setattr(Batch, "decode", spy)
    batch = _batch([(topic, orjson.dumps(env)) for env in (in_household_id, in_source, in_payload)])
    batch.write(fast_wh, FastEvents(fast_wh))
    assert sorted(decided_in_python) == sorted([in_source["event_id"], in_payload["event_id"]])
    assert batch.engine_checked == batch.event_count == 1
    assert [r[0] for r in fast_wh.query("SELECT event_id FROM events")] == [in_household_id["event_id"]]
    reasons = sorted(r[4] for r in batch.rows["dead_letters"])
    assert len(reasons) == 2 and all("raw identifier" in r for r in reasons), reasons
