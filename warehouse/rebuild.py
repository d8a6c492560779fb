"""Rebuild: replay the event store into fresh topics, and check the rebuilt statuses against the stored.

The broker is transport; after it loses its topics the event store is replayed, household by
household in valid-time order ``(occurred_at, recorded_at, event_id)``, into the department
topics, as envelopes equal to the originals (payload text and time strings as received), so the
stream workers rebuild their tables. Each is judged first (:func:`fupin.validity.judge`): an
event stored under older rules that today's judgement refuses is not replayed, and counted. ``check_job`` then compares, per household, the latest status
document ingested after the rebuild started with the latest one from before.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fupin.config import Settings
from fupin.timeutil import iso_utc, parse_instant
from fupin.topics import DEPARTMENTS, all_topics, department_topic
from fupin.validity import Invalid, judge
from warehouse.client import Warehouse, WarehouseError

#: The status document fields a rebuild must reproduce (not version, updated_at or last_event_id).
COMPARED_FIELDS = (
    "status",
    "region_code",
    "monitoring",
    "guarantees",
    "living_members",
    "income",
    "open_alerts",
)
PAGE_HOUSEHOLDS = 2000


def envelope_bytes(row: dict[str, Any]) -> bytes:
    """The original envelope: stored payload text kept byte for byte, the original time strings."""
    occurred = row["occurred_at_text"] or iso_utc(row["occurred_at"])
    recorded = row["recorded_at_text"] or iso_utc(row["recorded_at"])
    return orjson.dumps(
        {
            "event_id": row["event_id"],
            "event_type": row["event_type"],
            "schema_version": row["schema_version"],
            "department": row["department"],
            "source_system": row["source_system"],
            "household_id": row["household_id"],
            "person_id": row["person_id"],
            "region_code": row["region_code"],
            "occurred_at": occurred,
            "recorded_at": recorded,
            "payload": orjson.Fragment(row["payload"]),
        }
    )


def replay_rows(warehouse: Warehouse, page: int = PAGE_HOUSEHOLDS):
    """The event store in replay order, one page of households at a time (memory stays bounded)."""
    last = ""
    while True:
        households = [
            h
            for (h,) in warehouse.query(
                "SELECT DISTINCT household_id FROM events WHERE household_id > {last:String} "
                "ORDER BY household_id LIMIT {n:UInt32}",
                {"last": last, "n": page},
            )
        ]
        if not households:
            return
        rows = warehouse.query_dicts(
            "SELECT event_id, event_type, schema_version, department, source_system, household_id, person_id, "
            "region_code, occurred_at, recorded_at, occurred_at_text, recorded_at_text, payload "
            "FROM events_latest WHERE household_id >= {lo:String} AND household_id <= {hi:String} "
            "ORDER BY household_id, occurred_at, recorded_at, event_id",
            {"lo": households[0], "hi": households[-1]},
        )
        yield from rows
        last = households[-1]


def rebuild_job(warehouse: Warehouse, settings: Settings, **_: Any) -> dict:
    """Recreate missing topics and replay every event into its department topic."""
    from kafka import KafkaProducer

    from fupin.broker import create_topics
    from fupin.stack import bootstrap

    servers = bootstrap(settings)
    created = create_topics(servers, all_topics(settings), settings.topic_partitions)
    run_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    # Recorded first: every status document the rebuild causes is stamped later than this.
    warehouse.insert(
        "rebuild_runs",
        ["run_id", "started_at", "events", "topic_prefix"],
        [(run_id, started, 0, settings.topic_prefix)],
    )
    producer = KafkaProducer(
        bootstrap_servers=servers, acks="all", linger_ms=20, batch_size=512 * 1024, max_request_size=8 << 20
    )
    events = households = 0
    last_household = None
    from fupin.progress import JobLog

    log = JobLog(settings.data_dir, "rebuild")  # `fupin rebuild` shows these lines while it waits
    #: Stored events today's judgement refuses (stored under older rules): not replayed, so that
    #: the rebuilt live state holds what every reader now accepts. reason → count.
    refused: dict[str, int] = {}
    try:
        for row in replay_rows(warehouse):
            if row["department"] not in DEPARTMENTS:
                raise WarehouseError(f"event {row['event_id']}: unknown department {row['department']!r}")
            key, value = row["household_id"].encode(), envelope_bytes(row)
            try:
                judge(value, key, row["department"])
            except Invalid as exc:
                refused[exc.reason] = refused.get(exc.reason, 0) + 1
                continue
            producer.send(department_topic(settings, row["department"]), key=key, value=value)
            events += 1
            if row["household_id"] != last_household:
                households += 1
                last_household = row["household_id"]
                if households % PAGE_HOUSEHOLDS == 0:
                    log.say(f"replayed {events:,} events of {households:,} households")
        log.say(f"replayed {events:,} events of {households:,} households; flushing")
        producer.flush()
    finally:
        producer.close()
        log.close()
    warehouse.insert(
        "rebuild_runs",
        ["run_id", "started_at", "events", "topic_prefix"],
        [(run_id, started, events, settings.topic_prefix)],
    )
    return {
        "run_id": run_id,
        "started_at": iso_utc(started),
        "events": events,
        "households": households,
        "refused": sum(refused.values()),
        "refused_reasons": dict(sorted(refused.items(), key=lambda kv: -kv[1])[:10]),
        "topics": len(created),
        "created_topics": created,
    }


def _latest_documents(warehouse: Warehouse, where: str, since: datetime) -> dict[str, dict]:
    rows = warehouse.query(
        "SELECT household_id, argMax(document, (updated_at, version)) FROM household_status_history FINAL "
        f"WHERE updated_at {where} {{since:DateTime64(3, 'UTC')}} GROUP BY household_id",
        {"since": since.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]},
    )
    return {h: orjson.loads(doc) for h, doc in rows}


def check_job(
    warehouse: Warehouse, settings: Settings, since: str | None = None, sample: int = 10, **_: Any
) -> dict:
    """Compare each household's latest status from after the rebuild with the latest from before."""
    if since:
        start = parse_instant(since)
    else:
        rows = warehouse.query("SELECT max(started_at), count() FROM rebuild_runs")
        if not rows or not rows[0][1]:
            raise WarehouseError("no rebuild recorded: run 'fupin rebuild' first (or give --since)")
        start = rows[0][0]
    before = _latest_documents(warehouse, "<", start)
    after = _latest_documents(warehouse, ">=", start)
    differences: list[dict[str, Any]] = []
    missing: list[str] = []
    for household, old in sorted(before.items()):
        new = after.get(household)
        if new is None:
            missing.append(household)
            continue
        changed = {
            f: {"before": old.get(f), "after": new.get(f)}
            for f in COMPARED_FIELDS
            if old.get(f) != new.get(f)
        }
        if changed:
            differences.append({"household_id": household, "fields": changed})
    extra = sorted(set(after) - set(before))
    for household in extra:
        differences.append(
            {"household_id": household, "fields": {"status": {"before": None, "after": "new"}}}
        )
    shown = (
        differences[:sample]
        + [{"household_id": h, "missing": "no status since the rebuild"} for h in missing][
            : max(0, sample - len(differences))
        ]
    )
    return {
        "since": iso_utc(start),
        "compared": len(before),
        "differences": len(differences),
        "missing": len(missing),
        "sample": shown,
    }
