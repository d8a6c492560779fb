"""Warehouse client and migrations on chdb (the session's engine, an own database per test)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from warehouse.client import ChdbWarehouse, ServerWarehouse, WarehouseError
from warehouse.migrate import migrate, migrations, schema_snapshot, split_statements
from warehouse.readonly import ReadOnlyRefused, ReadOnlyWarehouse

DL_COLUMNS = ["source_topic", "source_partition", "source_offset", "source", "reason", "raw", "key",
              "received_at", "ingested_at"]  # fmt: skip


@pytest.fixture
def wh(settings):
    w = ChdbWarehouse(settings.chdb_data_path, settings.clickhouse_database)
    yield w
    w.close()


def test_migrate_twice_leaves_the_same_schema(wh):
    first = migrate(wh)
    assert first == [m.path.name for m in migrations()]
    before = schema_snapshot(wh)
    assert migrate(wh) == []
    assert schema_snapshot(wh) == before
    names = {row[0] for row in before}
    assert {"events", "events_latest", "household_status_history", "alerts", "dead_letters", "sink_progress",
            "reference_regions", "reference_population", "reference_lines", "schema_migrations"} <= names  # fmt: skip
    assert wh.query("SELECT count() FROM schema_migrations FINAL")[0][0] == len(first)


def test_migrate_command_twice(settings, tmp_path):
    """``fupin warehouse migrate`` twice in a row (own engine: a subprocess with its own chdb path)."""
    import subprocess
    import sys

    env = {**os.environ, "FUPIN_CHDB_PATH": str(tmp_path / "chdb"), "FUPIN_DATA_DIR": str(tmp_path / "d")}
    run = [sys.executable, "-m", "fupin.cli", "warehouse", "migrate"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    from warehouse.migrate import migrations

    assert f"applied {len(migrations())} migration(s)" in first.stdout
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "schema up to date" in second.stdout


def test_event_duplicates_collapse_before_merges(wh):
    migrate(wh)
    cols = ["event_id", "event_type", "schema_version", "department", "source_system", "household_id",
            "region_code", "occurred_at", "recorded_at", "payload", "topic", "partition", "offset", "ingested_at"]  # fmt: skip
    t = datetime(2020, 3, 1, tzinfo=UTC)
    row = ("e1", "water.water_assessed", 1, "water", "w", "H1", "431224104201", t, t, "{}", "x", 0, 1, t)
    wh.insert("events", cols, [row])
    wh.insert("events", cols, [row[:12] + (9,) + row[13:]])  # redelivered at another offset
    assert wh.query("SELECT count() FROM events")[0][0] == 2  # two parts, not merged yet
    assert wh.query("SELECT count() FROM events_latest")[0][0] == 1


def test_dedup_token_and_raw_bytes(wh):
    migrate(wh)
    now = datetime.now(UTC)
    rows = [("t", 0, 5, "sink", "bad", b"\xff\x00 not utf-8", None, now, now)]
    wh.insert("dead_letters", DL_COLUMNS, rows, dedup_token="batch-1")
    wh.insert("dead_letters", DL_COLUMNS, rows, dedup_token="batch-1")
    assert wh.query("SELECT count() FROM dead_letters")[0][0] == 1  # the retried insert added nothing
    raw, key = wh.query("SELECT raw, key FROM dead_letters")[0]
    assert raw == b"\xff\x00 not utf-8" and key is None
    # The same letter rejected by another component (another insert, no token): counts once.
    wh.insert("dead_letters", DL_COLUMNS, [("t", 0, 5, "streams", "bad too", rows[0][5], "H1", now, now)])
    assert wh.query("SELECT count() FROM dead_letters_latest")[0][0] == 1


def test_query_shapes_and_parameters(wh):
    rows = wh.query("SELECT {a:String} AS s, {n:UInt32} + 1 AS n, toDateTime64('2020-01-02 03:04:05', 3, 'UTC') AS t",
                    {"a": "x'y", "n": 41})  # fmt: skip
    assert rows == [("x'y", 42, datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC))]
    assert wh.query_dicts("SELECT 1 AS one") == [{"one": 1}]
    assert list(wh.query_df("SELECT number FROM numbers(3)")["number"]) == [0, 1, 2]
    with pytest.raises(WarehouseError, match="UNKNOWN_TABLE|does not exist"):
        wh.query("SELECT * FROM no_such_table")


def test_split_statements():
    sql = "-- comment\nCREATE TABLE a (x String DEFAULT ';');\n\nCREATE VIEW b AS\nSELECT 1;\n"
    assert split_statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "CREATE VIEW b AS\nSELECT 1"]


@pytest.fixture
def reader(wh):
    migrate(wh)
    r = ReadOnlyWarehouse.chdb(wh.path, wh.database)
    yield r
    r.close()


@pytest.mark.parametrize("sql", ["SELECT 1", " with x as (select 1) select * from x", "-- hi\nSELECT 'a;b'",
                                 "SELECT count() FROM events WHERE event_id IN (SELECT event_id FROM events_latest)",
                                 "SELECT 1;"])  # fmt: skip
def test_read_only_accepts(reader, sql):
    assert reader.query(sql)


@pytest.mark.parametrize("sql", ["DROP TABLE events", "INSERT INTO events (event_id) VALUES ('x')",
                                 "SELECT 1; DROP TABLE events", "", "ALTER TABLE events DELETE WHERE 1",
                                 "/* x */ TRUNCATE events", "SHOW TABLES FROM system",
                                 "SELECT name FROM system.tables"])  # fmt: skip
def test_read_only_refuses(reader, wh, sql):
    with pytest.raises(ReadOnlyRefused, match="read-only"):
        reader.query(sql)
    assert wh.query("SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'events'",
                    {"db": wh.database})[0][0] == 1  # fmt: skip


def test_roles_read_their_tables_only(wh):
    migrate(wh)
    wh.execute("CREATE TABLE census (x UInt8) ENGINE = Memory")  # a mart's name (dbt_project/models/marts)
    for role, may in (("dashboard", False), ("analyst", False), ("operator", True)):
        r = ReadOnlyWarehouse.chdb(wh.path, wh.database, role)
        try:
            assert r.query("SELECT count() FROM census") == [(0,)]
            assert r.query("WITH c AS (SELECT count() AS n FROM census) SELECT n FROM c "
                           "WHERE n IN (SELECT count() FROM census)") == [(0,)]  # fmt: skip
            if may:
                assert r.query("SELECT count() FROM dead_letters") == [(0,)]
            else:
                with pytest.raises(ReadOnlyRefused, match=f"role {role} may not read"):
                    r.query("SELECT count() FROM (SELECT 1 FROM census) AS c, dead_letters AS d")
                with pytest.raises(ReadOnlyRefused, match=f"role {role} may not read"):
                    r.query("SELECT CAST((SELECT any(reason) FROM dead_letters) AS Enum8('a' = 1))")
                with pytest.raises(ReadOnlyRefused, match=f"role {role} may not read"):
                    r.query("SELECT 1 FROM census WHERE x IN dead_letters")
        finally:
            r.close()


@pytest.mark.server
@pytest.mark.skipif(
    not os.environ.get("FUPIN_CLICKHOUSE_URL"),
    reason="no ClickHouse server: set FUPIN_CLICKHOUSE_URL=clickhouse://host:9000 to run the server tests",
)
def test_server_migrate_twice_and_dedup(settings):
    from urllib.parse import urlparse

    url = urlparse(os.environ["FUPIN_CLICKHOUSE_URL"])
    s = settings.with_(
        mode="server",
        clickhouse_host=url.hostname or "localhost",
        clickhouse_port=url.port or 9000,
        clickhouse_user=url.username or "default",
        clickhouse_password=url.password or "",
    )
    wh = ServerWarehouse(s)
    try:
        assert migrate(wh)
        before = schema_snapshot(wh)
        assert migrate(wh) == []
        assert schema_snapshot(wh) == before
        now = datetime.now(UTC)
        rows = [("t", 0, 5, "sink", "bad", b"\xff\x00", None, now, now)]
        wh.insert("dead_letters", DL_COLUMNS, rows, dedup_token="b1")
        wh.insert("dead_letters", DL_COLUMNS, rows, dedup_token="b1")
        assert wh.query("SELECT count() FROM dead_letters")[0][0] == 1
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
        wh.close()


@pytest.mark.server
@pytest.mark.skipif(
    not os.environ.get("FUPIN_CLICKHOUSE_URL"),
    reason="no ClickHouse server: set FUPIN_CLICKHOUSE_URL=clickhouse://host:9000 to run the server tests",
)
def test_server_reader_refuses_what_the_embedded_one_refuses(settings):
    from urllib.parse import urlparse

    url = urlparse(os.environ["FUPIN_CLICKHOUSE_URL"])
    s = settings.with_(mode="server", clickhouse_host=url.hostname or "localhost", clickhouse_port=url.port or 9000,
                       clickhouse_user=url.username or "default", clickhouse_password=url.password or "")  # fmt: skip
    wh = ServerWarehouse(s)
    try:
        migrate(wh)
        operator = ReadOnlyWarehouse(ServerWarehouse(s, create_database=False), "operator")
        assert operator.query("SELECT count() FROM events") == [(0,)]
        dashboard = ReadOnlyWarehouse(ServerWarehouse(s, create_database=False), "dashboard")
        for sql in ("SELECT count() FROM events", "SELECT name FROM system.tables", "DROP TABLE events",
                    "SELECT 1; DROP TABLE events", "SELECT * FROM file('/etc/hostname')"):  # fmt: skip
            with pytest.raises(ReadOnlyRefused):
                dashboard.query(sql)
        operator.close()
        dashboard.close()
    finally:
        wh.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
        wh.close()


def test_read_only_limits_hold_and_cannot_be_lifted(wh):
    from warehouse.readonly import Limits

    wh.execute("CREATE TABLE ten (n UInt8) ENGINE = MergeTree ORDER BY n")
    wh.execute("INSERT INTO ten SELECT number FROM numbers(10)")
    r = ReadOnlyWarehouse.chdb(wh.path, wh.database, limits=Limits(max_result_rows=5, max_memory_usage=50_000_000))
    try:
        assert len(r.query("SELECT n FROM ten WHERE n < 5")) == 5
        with pytest.raises(WarehouseError, match="TOO_MANY_ROWS_OR_BYTES"):
            r.query("SELECT n FROM ten")
        with pytest.raises(WarehouseError, match="MEMORY_LIMIT_EXCEEDED"):
            r.query("SELECT arrayJoin(range(100000000))")
        for lift in ("SET max_result_rows = 0", "SELECT n FROM ten SETTINGS max_result_rows = 0",
                     "SELECT n FROM ten SETTINGS result_overflow_mode = 'break'"):  # fmt: skip
            with pytest.raises(ReadOnlyRefused):
                r.query(lift)
        # Not even on the connection underneath: the session's readonly=1 is the engine's.
        with pytest.raises(WarehouseError, match="READONLY"):
            r.inner.execute("SET max_result_rows = 0")
        with pytest.raises(WarehouseError, match="READONLY"):
            r.inner.execute("SET readonly = 0")
    finally:
        r.close()


def test_alert_messages_become_episodes_and_the_migration_repeats_safely(wh, tmp_path):
    """0004: a warehouse with the old alert messages (raised, resolved) gets one episode per alert;
    the migration's statements run twice (a crash before it was recorded) give the same table."""
    import shutil

    old = tmp_path / "old"
    old.mkdir()
    for m in migrations():
        if m.version < 4:
            shutil.copy(m.path, old)
    migrate(wh, old)
    t0, t1, now = datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC), datetime.now(UTC)
    cols = ["alert_id", "rule", "state", "household_id", "region_code", "event_id", "occurred_at",
            "raised_event_id", "raised_occurred_at", "processed_at", "detail", "ingested_at"]  # fmt: skip
    raise_a1 = (
        "A1",
        "unsafe_water",
        "raised",
        "H1",
        "431224104201",
        "E1",
        t0,
        None,
        None,
        now,
        '{"safe": false}',
        now,
    )
    wh.insert("alerts", cols, [
        raise_a1, raise_a1,  # a redelivery
        ("A1", "unsafe_water", "resolved", "H1", "431224104201", "E2", t1, "E1", t0, now, "{}", now),
        ("A2", "unsafe_housing", "raised", "H2", "431224104202", "E3", t1, None, None, now, '{"grade": "D"}', now),
    ])  # fmt: skip
    episodes = [m for m in migrations() if m.version == 4][0]
    for _ in range(2):
        for statement in episodes.statements(wh.database):
            wh.execute(statement)
    rows = wh.query(
        "SELECT alert_id, rule, state, household_id, region_code, start_event_id, start_occurred_at, end_event_id, "
        "end_occurred_at, revision, detail FROM alerts FINAL ORDER BY alert_id"
    )
    micros = int(now.timestamp() * 1_000_000) // 1000 * 1000  # the warehouse keeps ms
    assert rows == [
        (
            "A1",
            "unsafe_water",
            "resolved",
            "H1",
            "431224104201",
            "E1",
            t0,
            "E2",
            t1,
            micros,
            '{"safe": false}',
        ),
        (
            "A2",
            "unsafe_housing",
            "raised",
            "H2",
            "431224104202",
            "E3",
            t1,
            None,
            None,
            micros,
            '{"grade": "D"}',
        ),
    ]
    assert wh.query("SELECT count() FROM alerts")[0][0] == 2  # the repeat's rows were replaced, not added
    assert wh.query("SELECT count() FROM alert_messages_v1 FINAL")[0][0] == 3
