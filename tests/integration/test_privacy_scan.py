"""`fupin privacy scan` on real components: topics of the embedded broker, tables of chdb, files."""

from __future__ import annotations

import orjson
from click.testing import CliRunner
from kafka import KafkaProducer

from fupin.cli import cli
from fupin.topics import deadletter_topic, department_topic
from warehouse.client import ChdbWarehouse
from warehouse.migrate import migrate

RID = "11010519491231002X"
PHONE = "13912345678"


def _env(monkeypatch, s) -> None:
    monkeypatch.setenv("FUPIN_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("FUPIN_BROKER_BOOTSTRAP", s.broker_bootstrap)
    monkeypatch.setenv("FUPIN_TOPIC_PREFIX", s.topic_prefix)
    monkeypatch.setenv("FUPIN_CLICKHOUSE_DATABASE", s.clickhouse_database)


def test_scan_reports_where_never_what_and_exits_non_zero(broker_settings, monkeypatch):
    s = broker_settings
    _env(monkeypatch, s)
    wh = ChdbWarehouse(s.chdb_data_path, s.clickhouse_database)
    migrate(wh)
    producer = KafkaProducer(bootstrap_servers=s.broker_bootstrap)
    clean = {
        "event_id": "e1",
        "household_id": "H1",
        "region_code": "431224104201",
        "payload": {"reason": "迁出"},
    }
    producer.send(department_topic(s, "water"), key=b"H1", value=orjson.dumps(clean))
    producer.flush()
    logs = s.data_dir / "logs"
    logs.mkdir(parents=True)
    (logs / "worker.log").write_text("started\nall quiet, 431224104201 is a region code\n")
    (s.data_dir / "blob.bin").write_bytes(b"\0" + RID.encode())  # binary: not read
    runner = CliRunner()
    result = runner.invoke(cli, ["privacy", "scan"])
    assert result.exit_code == 0, result.output
    assert "privacy scan: 0 finding(s)" in result.output
    assert "topics: 1 messages" in result.output and "1 binary skipped" in result.output

    # Now one of each: a topic message, a warehouse row, a log line.
    leaked = {**clean, "payload": {"reason": f"户主{RID}"}}
    producer.send(
        deadletter_topic(s),
        key=b"H2",
        partition=3,
        value=orjson.dumps(leaked, option=orjson.OPT_APPEND_NEWLINE),
    )
    producer.flush()
    producer.close()
    wh.execute("INSERT INTO alerts (alert_id, household_id) VALUES ('a1', {h:String})", {"h": f"H {PHONE}"})
    with (logs / "worker.log").open("a") as fh:
        fh.write(f"oops: {RID[:6]}{RID[8:17]}\n")
    result = runner.invoke(cli, ["privacy", "scan"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert RID not in out and PHONE not in out and RID[:6] + RID[8:17] not in out
    assert f"topic: {deadletter_topic(s)} partition 3 offset 0 value payload.reason: resident id 18" in out
    assert (
        f"warehouse: {s.clickhouse_database}.alerts.household_id (alert_id a1) characters 2-13: mobile" in out
    )
    assert "file: logs/worker.log:3 characters 6-21: resident id 15" in out
    assert "privacy scan: 3 finding(s)" in out
    wh.execute(f"DROP DATABASE {s.clickhouse_database}")
    wh.close()
