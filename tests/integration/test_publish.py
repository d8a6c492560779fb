"""Publishing on the embedded broker: every mapping imports, rejects are exact, re-runs add
nothing, wrong checksums are rejected, and no raw ID, name or phone reaches a topic."""

from __future__ import annotations

import csv
import re
import uuid
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from kafka import KafkaConsumer, TopicPartition

from fupin import contract
from fupin.broker import create_topics
from fupin.cli import cli
from fupin.config import load_settings
from fupin.topics import all_topics, input_topics
from producers.importers import import_file
from producers.sdk import Publisher
from producers.simulator import simulate
from producers.simulator.formats import LAYOUTS

RAW_ID = re.compile(rb"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def consume_all(bootstrap: str, topics: list[str]) -> list[tuple[str, bytes, bytes]]:
    """Every message of the topics, read from the beginning until the broker has no more."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out, empty = [], 0
        while empty < 3:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batch:
                empty += 1
                continue
            empty = 0
            for records in batch.values():
                out.extend((r.topic, r.key, r.value) for r in records)
        return out
    finally:
        consumer.close()


def _settings(tmp_path: Path, broker: str):
    s = load_settings(data_dir=str(tmp_path / "data"), broker_bootstrap=broker,
                      topic_prefix=f"t{uuid.uuid4().hex[:10]}")
    create_topics(broker, all_topics(s), s.topic_partitions)
    return s


@pytest.fixture(scope="module")
def published(tmp_path_factory, broker):
    """A small county with bad input, every file imported once."""
    tmp = tmp_path_factory.mktemp("publish")
    county = tmp / "county"
    simulate(county, households=300, seed=21, bad_share=0.03)
    settings = _settings(tmp, broker)
    summaries = {key: import_file(settings, layout.department, county / layout.path) for key, layout in LAYOUTS.items()}
    messages = consume_all(broker, input_topics(settings))
    return county, settings, summaries, messages


def _bad_serials(county: Path) -> dict[str, set[str]]:
    bad = defaultdict(set)
    with (county / "truth" / "bad_rows.csv").open() as fh:
        for row in csv.DictReader(fh):
            if row["kind"] in ("malformed", "unknown_type"):
                bad[row["file"]].add(row["serial"])
    return bad


def _serial(raw: str) -> str:
    row = orjson.loads(raw)
    return row[0] if isinstance(row, list) else next(iter(row.values()))


def test_every_mapping_imports_and_rejects_exactly_the_bad_rows(published):
    county, _, summaries, _ = published
    bad = _bad_serials(county)
    for key, layout in LAYOUTS.items():
        s = summaries[key]
        assert s.report.accepted > 0 and not s.report.failed, layout.path
        rejects = s.rejects_path
        assert rejects is not None and rejects == county / (layout.path + ".rejects.csv")
        with rejects.open() as fh:
            rows = list(csv.DictReader(fh))
        assert {_serial(r["row"]) for r in rows} == bad[layout.path], layout.path
        assert len(rows) == len(s.report.rejected) == len(bad[layout.path])
        for r in rows:
            assert int(r["line"]) > 1
            assert not RAW_ID.search(r["reason"].encode()), r["reason"]
        assert s.rows == s.report.accepted + len(s.report.rejected)


def test_topic_holds_the_accepted_events_valid_and_keyed(published):
    _, settings, summaries, messages = published
    assert len(messages) == sum(s.report.accepted for s in summaries.values())
    by_topic = defaultdict(set)
    for topic, key, value in messages:
        env = contract.decode(value)
        assert key == env["household_id"].encode()
        assert topic.endswith(env["department"])
        by_topic[topic].add(env["event_id"])
    distinct = sum(len(ids) for ids in by_topic.values())
    assert distinct == len({orjson.loads(v)["event_id"] for _, _, v in messages})
    assert distinct < len(messages)  # the simulator's duplicate rows reach the topic with the same id


def test_no_raw_id_name_or_phone_in_any_published_byte(published):
    county, _, _, messages = published
    blob = b"\n".join(k + b"\t" + v for _, k, v in messages)
    assert not RAW_ID.search(blob)
    secrets: set[str] = set()
    for layout in LAYOUTS.values():
        path = county / layout.path
        if layout.kind == "csv":
            with path.open() as fh:
                for row in csv.DictReader(fh):
                    for col in ("姓名", "参保人姓名", "学生姓名", "联系电话", "公民身份号码", "身份证号"):
                        if row.get(col):
                            secrets.add(row[col])
        elif layout.kind == "jsonl":
            for line in path.read_bytes().splitlines():
                rec = orjson.loads(line)
                for col in ("姓名", "户主姓名", "联系电话", "家庭住址", "身份证号"):
                    if rec.get(col):
                        secrets.add(rec[col])
                for m in rec.get("家庭成员", []):
                    secrets.update((m["姓名"], m["身份证号"]))
    text = blob.decode()
    assert len(secrets) > 100
    leaked = [s for s in secrets if len(s) >= 2 and s in text]
    assert leaked == []


def test_rerun_adds_nothing(published, broker):
    county, settings, summaries, first = published
    layout = LAYOUTS["hi_enrolment"]
    again = import_file(settings, layout.department, county / layout.path)
    assert again.report.accepted == 0
    assert again.report.duplicates_skipped == summaries["hi_enrolment"].report.accepted
    # Without the ledger the same rows are sent again, with the same event ids.
    forced = import_file(settings, layout.department, county / layout.path, use_ledger=False)
    assert forced.report.accepted == summaries["hi_enrolment"].report.accepted
    topic = f"{settings.topic_prefix}.events.health_insurance"
    ids_before = {orjson.loads(v)["event_id"] for t, _, v in first if t == topic}
    after = consume_all(broker, [topic])
    assert len(after) > len([1 for t, _, _ in first if t == topic])
    assert {orjson.loads(v)["event_id"] for _, _, v in after} == ids_before


def test_cli_rejects_a_wrong_checksum_with_its_reason(tmp_path, broker, monkeypatch):
    settings = _settings(tmp_path, broker)
    monkeypatch.setenv("FUPIN_BROKER_BOOTSTRAP", broker)
    monkeypatch.setenv("FUPIN_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    good, bad = "11010519491231002X", "110105194912310021"
    f = tmp_path / "employment.csv"
    f.write_text(
        "记录号,录入时间,业务类型,户编号,行政区划代码,日期,姓名,身份证号,月工资,就业地点\n"
        f"RS1,2020-03-02 10:00:00,就业登记,H1,431224104201,2020-03-01,张三,{good},3000,省外\n"
        f"RS2,2020-03-02 10:00:00,就业登记,H2,431224104201,2020-03-01,李四,{bad},3000,省外\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["publish", "-d", "human_resources", "-f", str(f), "--json"])
    # One row of two rejected: the command says so and exits 1, unless that share is allowed.
    assert result.exit_code == 1 and "1 of 2 rows (50.0%) were rejected" in result.output, result.output
    again = CliRunner().invoke(cli, ["publish", "-f", str(f), "--json", "--allow-rejects", "0.5", "-d",
                                     "human_resources"])
    assert again.exit_code == 0, again.output
    summary = orjson.loads(next(ln for ln in result.output.splitlines() if ln.startswith("{")))
    assert (summary["accepted"], summary["rejected"]) == (1, 1)
    with (tmp_path / "employment.csv.rejects.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["line"] == "3" and "checksum" in row["reason"] and bad not in row["reason"]
    # The rejects file keeps the row, but neither the (mistyped) ID nor the name.
    assert bad not in row["row"] and "李四" not in row["row"] and row["row"].count("[redacted]") == 2
    assert orjson.loads(row["row"])[0] == "RS2"
    messages = consume_all(broker, [f"{settings.topic_prefix}.events.human_resources"])
    assert len(messages) == 1 and good.encode() not in messages[0][2] and "张三".encode() not in messages[0][2]


def test_envelope_jsonl_is_taken_as_it_is(tmp_path, broker):
    settings = _settings(tmp_path, broker)
    pub = Publisher(settings, "water")
    envs = [pub.build("water_assessed", f"H{i}", "431224104201", "2020-05-01", {"safe": i % 2 == 0, "issues": []})
            for i in range(5)]
    f = tmp_path / "envelopes.jsonl"
    lines = [orjson.dumps(e) for e in envs]
    lines.insert(2, b'{"event_type": "water.water_assessed", "payload": {}, "household_id": "H9"}')
    lines.insert(4, b"{not json")
    f.write_bytes(b"\n".join(lines) + b"\n")
    summary = import_file(settings, "water", f)
    assert summary.mapping == "envelopes"
    assert summary.report.accepted == 5 and [ln for ln, _ in summary.report.rejected] == [3, 5]
    got = consume_all(broker, [f"{settings.topic_prefix}.events.water"])
    assert sorted(orjson.loads(v)["event_id"] for _, _, v in got) == sorted(e["event_id"] for e in envs)


def test_simulate_publish_end_to_end(tmp_path, broker, monkeypatch):
    settings = _settings(tmp_path, broker)
    monkeypatch.setenv("FUPIN_BROKER_BOOTSTRAP", broker)
    monkeypatch.setenv("FUPIN_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "county"
    result = CliRunner().invoke(cli, ["simulate", "--households", "120", "--seed", "3", "--out", str(out),
                                      "--publish"])
    assert result.exit_code == 0, result.output
    accepted = int(re.search(r"published: ([\d,]+) accepted", result.output)[1].replace(",", ""))
    assert accepted == len(consume_all(broker, input_topics(settings))) > 0


def test_reference_load_validates_then_copies(tmp_path, monkeypatch):
    monkeypatch.setenv("FUPIN_DATA_DIR", str(tmp_path / "data"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "lines.csv").write_text("province_code,year\n43,2020\n")
    result = CliRunner().invoke(cli, ["reference", "load", str(bad)])
    assert result.exit_code != 0
    assert "regions.csv: file missing" in result.output and "lines.csv line 1: missing column" in result.output
    assert not (tmp_path / "data" / "reference").exists()
    from producers.reference import DEFAULTS_DIR

    result = CliRunner().invoke(cli, ["reference", "load", str(DEFAULTS_DIR)])
    assert (tmp_path / "data" / "reference" / "lines.csv").read_bytes() == (DEFAULTS_DIR / "lines.csv").read_bytes()
    assert result.exit_code == 0 or "files copied" in result.output, result.output


def test_failed_deliveries_are_reported_and_kept_for_a_rerun(tmp_path):
    """A broker that goes away: the events sent after it are reported failed, in <file>.failed.csv."""
    from fupin.broker import free_port, start_broker
    from producers.sdk import make_producer

    port = free_port()
    proc = start_broker(port, tmp_path / "broker.log")
    try:
        settings = _settings(tmp_path, f"127.0.0.1:{port}")
        producer = make_producer(settings, request_timeout_ms=1000, delivery_timeout_ms=2500, linger_ms=0,
                                 retry_backoff_ms=100, reconnect_backoff_max_ms=200, max_block_ms=3000)
        pub = Publisher(settings, "water", producer=producer)
        pub.publish("before", event_type="water_assessed", household_id="H1", region_code="431224104201",
                    occurred_at="2020-01-01", payload={"safe": True, "issues": []})
        assert pub.flush().accepted == 1
        proc.terminate()
        proc.wait(10)
        f = tmp_path / "assessments.csv"
        f.write_text("评价编号,录入时间,业务类型,户编号,行政区划代码,评价日期,是否安全,存在问题\n"
                     "SL1,2020-01-02 10:00:00,饮水安全评价,H2,431224104201,2020-01-01,否,水质\n", encoding="utf-8")
        summary = import_file(settings, "water", f, publisher=pub)
        assert summary.report.accepted == 0 and len(summary.report.failed) == 1
        line, reason = summary.report.failed[0]
        assert line == 2 and "delivery failed" in reason
        with (tmp_path / "assessments.csv.failed.csv").open() as fh:
            (row,) = list(csv.DictReader(fh))
        assert row["line"] == "2" and "SL1" in row["row"]
        producer.close(timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_file_in_another_encoding_is_a_clear_error(tmp_path, broker, monkeypatch):
    settings = _settings(tmp_path, broker)
    monkeypatch.setenv("FUPIN_BROKER_BOOTSTRAP", broker)
    monkeypatch.setenv("FUPIN_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    f = tmp_path / "assessments.csv"
    f.write_bytes("评价编号,录入时间,业务类型,户编号,行政区划代码,评价日期,是否安全,存在问题\n".encode("gbk"))
    result = CliRunner().invoke(cli, ["publish", "-d", "water", "-f", str(f)])
    assert result.exit_code == 1 and "set 'encoding' in the mapping" in result.output
    x = tmp_path / "houses.xlsx"
    x.write_bytes(b"not a workbook")
    result = CliRunner().invoke(cli, ["publish", "-d", "housing", "-f", str(x)])
    assert result.exit_code == 1 and "not a readable .xlsx workbook" in result.output


ASSISTANCE_HEADER = "业务流水号,录入时间,业务类型,户编号,行政区划代码,业务日期,姓名,身份证号,联系电话,月保障金额,保障人数,终止原因,供养方式,救助金额,补贴类别,补贴标准"


def test_raw_identifiers_in_free_text_are_refused_at_the_producer(tmp_path, broker):
    """A raw ID, an old ID or a phone typed into 终止原因 never leaves: refused naming the column,
    redacted in rejects.csv; the clean rows are published."""
    settings = _settings(tmp_path, broker)
    rid, old, phone = "11010519491231002X", "110105491231002", "13912345678"
    reasons = ["家庭收入超过低保标准", f"户主{rid}死亡", f"迁出 旧证{old}", f"张三 电话{phone}", "家庭成员就业",
               "户主王五死亡"]  # fmt: skip
    f = tmp_path / "assistance.csv"
    rows = [ASSISTANCE_HEADER] + [
        f"MZ{i},2020-03-02 10:00:00,低保退出,H{i},431224104201,2020-03-01,王五,{rid},{phone},,,{why},,,,"
        for i, why in enumerate(reasons)
    ]
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = import_file(settings, "civil_affairs", f)
    assert summary.report.accepted == 2
    assert [ln for ln, _ in summary.report.rejected] == [3, 4, 5, 7]
    for _, reason in summary.report.rejected[:3]:
        assert reason.startswith("column 终止原因: field payload.reason holds what looks like a raw identifier")
    # A name is no pattern, but the row's own name (column 姓名) typed into the reason is found.
    assert summary.report.rejected[3][1] == "column 终止原因: field payload.reason holds the value of the personal column 姓名"
    text = summary.rejects_path.read_text()
    assert rid not in text and old not in text and phone not in text and "王五" not in text
    with summary.rejects_path.open() as fh:
        kept = [orjson.loads(r["row"]) for r in csv.DictReader(fh)]
    assert [k[11] for k in kept] == ["户主[redacted]死亡", "迁出 旧证[redacted]", "张三 电话[redacted]", "户主[redacted]死亡"]
    messages = consume_all(broker, [f"{settings.topic_prefix}.events.civil_affairs"])
    assert len(messages) == 2
    blob = b"".join(v for _, _, v in messages)
    assert rid.encode() not in blob and phone.encode() not in blob and "王五".encode() not in blob


def test_a_mapping_must_classify_every_column(tmp_path, broker):
    import yaml

    from producers.importers.mapping import MAPPINGS_DIR, Mapping, MappingError

    settings = _settings(tmp_path, broker)
    f = tmp_path / "assistance.csv"
    f.write_text(ASSISTANCE_HEADER + ",家庭住址\n" +
                 "MZ1,2020-03-02 10:00:00,低保退出,H1,431224104201,2020-03-01,王五,11010519491231002X,,,,迁出,,,,,某村\n",
                 encoding="utf-8")  # fmt: skip
    with pytest.raises(MappingError, match="does not classify column\\(s\\) 家庭住址.*nothing was sent"):
        import_file(settings, "civil_affairs", f)
    assert consume_all(broker, [f"{settings.topic_prefix}.events.civil_affairs"]) == []
    # A mapping that would publish a column it names as personal is refused when loaded.
    doc = yaml.safe_load((MAPPINGS_DIR / "civil_affairs_assistance.yaml").read_text())
    doc["payload"]["dibao_terminated"]["reason"] = "联系电话"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(MappingError, match="would publish 联系电话, which it names as personal"):
        Mapping.load(bad)
    doc["drop"] = ["姓名"]
    bad.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(MappingError, match="'drop' maps each kind"):
        Mapping.load(bad)


def test_publish_takes_departments_from_a_manifest_and_from_envelopes(tmp_path, broker, monkeypatch):
    settings = _settings(tmp_path, broker)
    monkeypatch.setenv("FUPIN_BROKER_BOOTSTRAP", broker)
    monkeypatch.setenv("FUPIN_TOPIC_PREFIX", settings.topic_prefix)
    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    out = tmp_path / "county"
    simulate(out, households=60, seed=4)
    result = CliRunner().invoke(cli, ["publish", "--manifest", str(out / "manifest.json"), "--json"])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.output.strip().splitlines() if line.startswith("{")]
    assert len(lines) == 12 and {s["department"] for s in lines} >= {"civil_affairs", "water", "assessment"}
    assert sum(s["accepted"] for s in lines) == len(consume_all(broker, input_topics(settings)))
    # A JSONL of envelopes names its department: no --department needed.
    pub = Publisher(settings, "water")
    f = tmp_path / "envelopes.jsonl"
    f.write_bytes(orjson.dumps(pub.build("water_assessed", "H1", "431224104201", "2020-05-01",
                                         {"safe": True, "issues": []})) + b"\n")
    result = CliRunner().invoke(cli, ["publish", "-f", str(f), "--json"])
    assert result.exit_code == 0 and orjson.loads(result.output.strip().splitlines()[-1])["department"] == "water"
    # A file that tells nothing: a usage error naming the option.
    loose = tmp_path / "loose.csv"
    loose.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(cli, ["publish", "-f", str(loose)])
    assert result.exit_code == 2 and "pass --department" in result.output
