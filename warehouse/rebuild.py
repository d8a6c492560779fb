"""Rebuild: replay the event store into fresh topics, and check the rebuilt statuses against the stored.

The broker is transport; after it loses its topics the event store is replayed, household by
household in valid-time order ``(occurred_at, recorded_at, event_id)``, into the department
topics, as envelopes equal to the originals (payload text and time strings as received), so the
stream workers rebuild their tables. Each is judged first (:func:`fupin.validity.judge`): an
event stored under older rules that today's judgement refuses is neither replayed nor folded, and is
counted. The rebuild also folds each household's events itself (the
pure fold of ``streams.household``, with the workers' lines and thresholds) and retracts, in the
``alerts`` table, every episode left from before that this fold does not produce (ghosts of an
earlier epoch): the rebuilt workers never speak of those again.

``check_job`` compares the live side with a fresh fold of the event store: per household, the
latest status document ingested since the rebuild started, and the episodes of the ``alerts``
table (latest revision, retracted ones apart) with the fold's (alert_id, rule, start, end).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from fupin.config import Settings
from fupin.timeutil import iso_utc, parse_instant
from fupin.topics import DEPARTMENTS, all_topics, department_topic
from fupin.validity import Invalid, fingerprint, judge
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


class Folder:
    """The workers' fold of the event store, household by household, in replay order."""

    def __init__(self, settings: Settings) -> None:
        from streams.alerts import Thresholds
        from streams.guarantees import load_lines

        self.lines = load_lines(settings.reference_path)
        self.thresholds = Thresholds(settings.medical_burden_share, settings.medical_burden_amount)
        self.episodes: dict[tuple[str, str], tuple] = {}  # (household_id, alert_id) -> what it is
        self.documents: dict[str, dict] = {}
        self.skipped = 0  # conflicting duplicates here; the callers add the events the judgement refuses now

    def household(self, household_id: str, envelopes: list[dict[str, Any]], documents: bool = False) -> None:
        """Fold one household's judged envelopes (the caller judged each once), in replay order."""
        from streams import household

        state = household.new_state(household_id)
        for env in envelopes:
            fp = fingerprint(env)
            held = household.known_fingerprint(state, env["event_id"])
            if held is not None and held != fp:  # a conflicting duplicate: a worker dead-letters it
                self.skipped += 1
                continue
            if household.apply(state, env, self.lines, self.thresholds, fingerprint=fp).applied:
                state["v"] += 1
        for ep in household.episodes(state):
            self.episodes[(household_id, ep["alert_id"])] = episode_key(ep)
        if documents:
            doc = household.document(state, self.lines, "")
            self.documents[household_id] = {f: doc.get(f) for f in COMPARED_FIELDS}


def episode_key(ep: dict[str, Any]) -> tuple:
    """What must agree about an episode: rule, start, end and whether it is open."""
    return (ep["rule"], ep["start_event_id"], ep.get("end_event_id"), ep["state"])


def live_episodes(warehouse: Warehouse) -> dict[tuple[str, str], dict[str, Any]]:
    """The episodes of the ``alerts`` table now: each alert_id's latest revision, retracted ones left out."""
    rows = warehouse.query_dicts(
        "SELECT household_id, alert_id, argMax(rule, revision) AS rule, argMax(state, revision) AS state, "
        "argMax(region_code, revision) AS region_code, argMax(start_event_id, revision) AS start_event_id, "
        "argMax(start_occurred_at, revision) AS start_occurred_at, "
        "argMax(start_recorded_at, revision) AS start_recorded_at, argMax(end_event_id, revision) AS end_event_id, "
        "argMax(end_occurred_at, revision) AS end_occurred_at, argMax(end_recorded_at, revision) AS end_recorded_at, "
        "argMax(detail, revision) AS detail, max(revision) AS latest_revision "
        "FROM alerts GROUP BY household_id, alert_id HAVING state != 'retracted'"
    )
    return {(r["household_id"], r["alert_id"]): r for r in rows}


def retract_ghosts(warehouse: Warehouse, produced: dict[tuple[str, str], tuple]) -> int:
    """Retract every live episode the fold did not produce; how many."""
    from warehouse.sink import ALERT_COLUMNS, alert_row

    now = datetime.now(UTC)
    floor = time.time_ns() // 1000
    rows = []
    for key, ep in sorted(live_episodes(warehouse).items()):
        if key in produced:
            continue
        message = {
            **ep,
            "state": "retracted",
            "revision": max(floor, ep.pop("latest_revision") + 1),
            "processed_at": iso_utc(now),
            "detail": orjson.loads(ep["detail"] or "{}"),
        }
        rows.append(alert_row(orjson.dumps(message, default=iso_utc), now))
    if rows:
        warehouse.insert("alerts", ALERT_COLUMNS, rows)
    return len(rows)


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
    folder = Folder(settings)
    mine: list[dict[str, Any]] = []
    try:
        for row in replay_rows(warehouse):
            if row["department"] not in DEPARTMENTS:
                raise WarehouseError(f"event {row['event_id']}: unknown department {row['department']!r}")
            key, value = row["household_id"].encode(), envelope_bytes(row)
            try:
                env = judge(value, key, row["department"])
            except Invalid as exc:
                refused[exc.reason] = refused.get(exc.reason, 0) + 1
                continue
            producer.send(department_topic(settings, row["department"]), key=key, value=value)
            events += 1
            if row["household_id"] != last_household:
                if mine:
                    folder.household(last_household, mine)  # type: ignore[arg-type]
                mine = []
                households += 1
                last_household = row["household_id"]
                if households % PAGE_HOUSEHOLDS == 0:
                    log.say(f"replayed {events:,} events of {households:,} households")
            mine.append(env)
        if mine:
            folder.household(last_household, mine)  # type: ignore[arg-type]
        log.say(f"replayed {events:,} events of {households:,} households; flushing")
        producer.flush()
    finally:
        producer.close()
        log.close()
    ghosts = retract_ghosts(warehouse, folder.episodes)
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
        "episodes": len(folder.episodes),
        "ghosts_retracted": ghosts,
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
    """Compare the live side with a fresh fold of the event store: each household's latest status
    since the rebuild started, and the episodes of the ``alerts`` table."""
    if since:
        start = parse_instant(since)
    else:
        rows = warehouse.query("SELECT max(started_at), count() FROM rebuild_runs")
        if not rows or not rows[0][1]:
            raise WarehouseError("no rebuild recorded: run 'fupin rebuild' first (or give --since)")
        start = rows[0][0]
    folder = Folder(settings)
    mine: list[dict[str, Any]] = []
    last = None
    for row in replay_rows(warehouse):
        if row["household_id"] != last:
            if mine:
                folder.household(last, mine, documents=True)  # type: ignore[arg-type]
            mine, last = [], row["household_id"]
        try:
            mine.append(judge(envelope_bytes(row), row["household_id"].encode(), row["department"]))
        except Invalid:
            folder.skipped += 1  # stored under older rules; today's judgement refuses it
    if mine:
        folder.household(last, mine, documents=True)  # type: ignore[arg-type]
    after = _latest_documents(warehouse, ">=", start)
    differences: list[dict[str, Any]] = []
    missing: list[str] = []
    for household, want in sorted(folder.documents.items()):
        new = after.get(household)
        if new is None:
            missing.append(household)
            continue
        changed = {
            f: {"fold": want.get(f), "live": new.get(f)} for f in COMPARED_FIELDS if want.get(f) != new.get(f)
        }
        if changed:
            differences.append({"household_id": household, "fields": changed})
    for household in sorted(set(after) - set(folder.documents)):
        differences.append({"household_id": household, "fields": {"status": {"fold": None, "live": "new"}}})
    live = {key: episode_key(ep) for key, ep in live_episodes(warehouse).items()}
    episode_differences = [
        {"household_id": h, "alert_id": a, "fold": folder.episodes.get((h, a)), "live": live.get((h, a))}
        for h, a in sorted(set(live) | set(folder.episodes))
        if live.get((h, a)) != folder.episodes.get((h, a))
    ]
    shown = (
        differences[:sample]
        + [{"household_id": h, "missing": "no status since the rebuild"} for h in missing][
            : max(0, sample - len(differences))
        ]
        + episode_differences[: max(0, sample - len(differences) - len(missing))]
    )
    return {
        "since": iso_utc(start),
        "compared": len(folder.documents),
        "differences": len(differences),
        "missing": len(missing),
        "episodes": len(folder.episodes),
        "open_episodes": sum(1 for ep in folder.episodes.values() if ep[3] == "raised"),
        "episode_differences": len(episode_differences),
        "skipped_events": folder.skipped,
        "sample": shown,
    }
