"""Stream workers on the embedded broker: simulator events in, status documents and alerts out.

The reference for "correct" is the pure fold (streams.household) applied to the same events in
the same order: a worker, interrupted or not, must end with its statuses and open alerts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from fupin.topics import alerts_topic, deadletter_topic, department_topic, status_topic
from streams import household, synthetic
from streams.alerts import Thresholds
from streams.cli import query_households, query_open_alerts
from streams.deadletter import header_dict
from streams.guarantees import load_lines

FUPIN = str(Path(sys.executable).with_name("fupin"))
WAIT = 240.0  # generous upper bound for a 2-core machine shared by many; never a speed assertion


def write_lines(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["province_code,year,poverty_line,poverty_line_source,monitoring_line,monitoring_line_source"]
    for province in ("43", "52"):
        for year in range(2014, 2026):
            monitoring = f"{6000 + 100 * (year - 2020)},test" if year >= 2020 else ","
            rows.append(f"{province},{year},{3000 + 100 * (year - 2014)},test,{monitoring}")
    (directory / "lines.csv").write_text("\n".join(rows) + "\n")
    return directory


@pytest.fixture
def stream_settings(broker_settings, tmp_path):
    return broker_settings.with_(reference_dir=write_lines(tmp_path / "reference"))


class Worker:
    def __init__(self, settings, name: str, log: Path) -> None:
        env = dict(os.environ)
        env.update(
            {
                "FUPIN_DATA_DIR": str(settings.data_dir),
                "FUPIN_BROKER_BOOTSTRAP": settings.broker_bootstrap,
                "FUPIN_TOPIC_PREFIX": settings.topic_prefix,
                "FUPIN_REFERENCE_DIR": str(settings.reference_dir),
            }
        )
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [FUPIN, "stream", "--worker", name, "--loglevel", "info"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def publish(settings, events: list[dict], extra: list[tuple[str, bytes, bytes]] = ()) -> dict:
    """Send the events (each to its department's topic) and ``extra``; the end offset per partition."""
    producer = KafkaProducer(bootstrap_servers=settings.broker_bootstrap, linger_ms=5)
    sent = []
    for env in events:
        key, value = synthetic.encode(env)
        sent.append(producer.send(department_topic(settings, env["department"]), key=key, value=value))
    for topic, key, value in extra:
        sent.append(producer.send(topic, key=key, value=value))
    producer.flush()
    producer.close()
    ends: dict[TopicPartition, int] = {}
    for future in sent:
        meta = future.get(timeout=30)
        tp = TopicPartition(meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    return ends


def wait_for_commits(settings, ends: dict, proc: subprocess.Popen) -> dict:
    """The stream workers' committed offsets, once they reach ``ends`` (or the wait runs out)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.broker_bootstrap)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            group = f"{settings.topic_prefix}-streams"
            offsets = admin.list_group_offsets({group: list(ends)})[group]
            committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
            if committed == ends or time.monotonic() > deadline or proc.poll() is not None:
                return committed
            time.sleep(0.5)
    finally:
        admin.close()


def expected(settings, events):
    lines = load_lines(settings.reference_dir)
    states, messages = household.fold(
        events, lines, Thresholds(settings.medical_burden_share, settings.medical_burden_amount)
    )
    docs = {hid: household.document(s, lines, "") for hid, s in states.items()}
    return docs, messages


def without_clock(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "updated_at"}


def wait_for_statuses(settings, want: dict[str, dict], proc: subprocess.Popen) -> dict[str, dict]:
    deadline = time.monotonic() + WAIT
    got: dict[str, dict] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, "stream worker exited"
        try:
            got = {d["household_id"]: without_clock(d) for d in query_households(settings)}
        except Exception:  # worker not answering yet
            got = {}
        if got == {h: without_clock(d) for h, d in want.items()}:
            return got
        time.sleep(1.0)
    return got


def read_topic(settings, topic: str, want: int) -> list:
    """Every message of ``topic`` from the beginning, until ``want`` arrived and the topic is quiet."""
    consumer = KafkaConsumer(bootstrap_servers=settings.broker_bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    out: list = []
    deadline = time.monotonic() + WAIT
    quiet = 0
    while time.monotonic() < deadline and (len(out) < want or quiet < 3):
        batch = consumer.poll(500)
        n = sum(len(v) for v in batch.values())
        quiet = quiet + 1 if n == 0 else 0
        for records in batch.values():
            out.extend(records)
    consumer.close()
    return out


def assert_alternating(messages) -> None:
    """Per household, revisions increase in the topic's order (one partition per household); per
    alert, the latest message says what the episode is; a raised episode has no end."""
    last: dict[str, int] = {}
    for m in messages:
        assert m["revision"] > last.get(m["household_id"], 0)
        last[m["household_id"]] = m["revision"]
        assert (m["state"] == "raised") == (m["end_event_id"] is None) or m["state"] == "retracted"


def latest_per_alert(messages) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for m in messages:
        if m["revision"] >= latest.get(m["alert_id"], {}).get("revision", 0):
            latest[m["alert_id"]] = m
    return latest


def open_from_messages(messages) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for m in latest_per_alert(messages).values():
        if m["state"] == "raised":
            out[m["household_id"]].add(m["rule"])
    return dict(out)


def test_simulator_events_in_status_and_alerts_out(stream_settings, tmp_path):
    s = stream_settings
    events = synthetic.with_disorder(synthetic.generate(60, seed=11))
    bad = list(synthetic.malformed(random.Random(3), events[0]))
    water = department_topic(s, "water")
    wrong_topic = orjson.dumps({**events[1], "event_id": "3f9a1c2e-0000-4000-8000-000000000001"})
    extra = [(water, k, v) for k, v in bad] + [(water, events[1]["household_id"].encode(), wrong_topic)]
    extra = [e for e in extra if synthetic.encode(events[1])[1] != e[2]]
    want_docs, want_messages = expected(s, events)
    worker = Worker(s, "w1", tmp_path / "w1.log")
    try:
        # In three waves, so that each partition reaches the fold in several polls.
        ends: dict = {}
        third = len(events) // 3
        for wave in (events[:third], events[third : 2 * third]):
            ends |= publish(s, wave)
            deadline = time.monotonic() + WAIT
            while _processed(s, "w1") < sum(ends.values()) and time.monotonic() < deadline:
                time.sleep(0.2)
        for tp, end in publish(s, events[2 * third :], extra).items():
            ends[tp] = max(end, ends.get(tp, 0))
        got = wait_for_statuses(s, want_docs, worker.proc)
        assert got == {h: without_clock(d) for h, d in want_docs.items()}
        # The pid file tells where the fold's time went (bench/streams.py reads it there, not from
        # the worker's web views), rewritten each second by the heartbeat.
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            timing = json.loads((Path(s.data_dir) / "stream-w1.json").read_text()).get("timing", {})
            if timing.get("batches", 0) >= 2:
                break
            time.sleep(0.2)
        assert timing["batches"] >= 2 and timing["fold_s"] > 0 and timing["last_at"] >= timing["first_at"] > 0
        # Records travel to the fold as one message per fetched partition batch: once folded, the
        # group's committed offsets still reach the end of every partition (nothing is re-read
        # after a restart, nothing skipped).
        assert wait_for_commits(s, ends, worker.proc) == ends
        # Open alerts answered live equal the pure fold's.
        live = defaultdict(set)
        for row in query_open_alerts(s):
            live[row["household_id"]].add(row["rule"])
        assert dict(live) == {h: set(d["open_alerts"]) for h, d in want_docs.items() if d["open_alerts"]}
        # The alerts topic: departments' topics interleave, so the sequence may differ from the
        # fold's, but each (household, rule) alternates raise/resolve and ends as the fold ends.
        alerts = [orjson.loads(r.value) for r in read_topic(s, alerts_topic(s), 1)]
        assert_alternating(alerts)
        assert open_from_messages(alerts) == open_from_messages(want_messages)
        assert all(m["processed_at"] and m["region_code"] for m in alerts)
        # Status topic: the last document per household is the live one.
        status = {}
        for r in read_topic(s, status_topic(s), 1):
            doc = orjson.loads(r.value)
            assert r.key == doc["household_id"].encode()
            if doc["version"] >= status.get(doc["household_id"], {}).get("version", 0):
                status[doc["household_id"]] = without_clock(doc)
        assert status == {h: without_clock(d) for h, d in want_docs.items()}
        # Dead letters: byte for byte, with reason and source.
        dead = read_topic(s, deadletter_topic(s), len(extra))
        assert sorted(r.value for r in dead) == sorted(e[2] for e in extra)
        for r in dead:
            h = header_dict(r.headers)
            assert h["fupin.source_topic"] == water and h["fupin.source"] == "streams"
            assert h["fupin.reason"] and int(h["fupin.source_offset"]) >= 0 and h["fupin.time"].endswith("Z")
            assert int(h["fupin.source_partition"]) in range(s.topic_partitions)
        # The CLI answers from the live state.
        hid = sorted(want_docs)[0]
        shown = json.loads(cli(s, "household", "show", hid, "--json"))
        assert without_clock(shown) == without_clock(want_docs[hid])
        assert "guarantee income" in cli(s, "household", "explain", hid)
        explained = json.loads(cli(s, "household", "explain", hid, "--json"))
        assert explained["last_event_id"] == want_docs[hid]["last_event_id"]
    finally:
        worker.stop()


def cli(settings, *args: str) -> str:
    env = dict(os.environ, FUPIN_DATA_DIR=str(settings.data_dir))
    done = subprocess.run([FUPIN, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_two_workers_share_the_partitions(stream_settings, tmp_path):
    s = stream_settings
    events = synthetic.with_disorder(synthetic.generate(80, seed=31))
    want_docs, _ = expected(s, events)
    workers = [Worker(s, name, tmp_path / f"{name}.log") for name in ("a", "b")]
    try:
        publish(s, events)
        got = wait_for_statuses(s, want_docs, workers[0].proc)
        assert got == {h: without_clock(d) for h, d in want_docs.items()}
        deadline = time.monotonic() + WAIT
        per_worker = [len(_households_of(s, name)) for name in ("a", "b")]
        while 0 in per_worker and time.monotonic() < deadline:  # both in the group, once it settles
            time.sleep(1.0)
            per_worker = [len(_households_of(s, name)) for name in ("a", "b")]
        assert all(per_worker) and sum(per_worker) == len(want_docs)  # each household on exactly one worker
        hid = sorted(want_docs)[-1]
        assert without_clock(json.loads(cli(s, "household", "show", hid, "--json"))) == without_clock(
            want_docs[hid]
        )
        # The live views need a token of a role that may read household documents.
        from fupin.auth import create_token

        url = json.loads((Path(s.data_dir) / "stream-a.json").read_text())["url"]
        _, dashboard = create_token(s, "dashboard")
        _, analyst = create_token(s, "analyst")
        for page in ("/households", "/alerts", f"/household/{hid}", f"/household/{hid}/explain"):
            assert _page_status(url + page, None) == 401, page
            assert _page_status(url + page, "fpn_wrong") == 401, page
            assert _page_status(url + page, dashboard) == 403, page
        assert _page_status(url + "/alerts", analyst) == 200
        for builtin in ("/router/", "/table/households/", "/stats/", "/graph/"):
            assert _page_status(url + builtin, None) == 404, builtin
    finally:
        for w in workers:
            w.stop()


def _households_of(settings, name: str) -> list:
    import urllib.request

    from fupin.auth import auth_headers

    info = json.loads((Path(settings.data_dir) / f"stream-{name}.json").read_text())
    req = urllib.request.Request(f"{info['url']}/households", headers=auth_headers(settings))
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())["households"]


def _page_status(url: str, token: str | None) -> int:
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_worker_killed_mid_run_ends_like_an_uninterrupted_run(stream_settings, tmp_path):
    s = stream_settings
    events = synthetic.with_disorder(synthetic.generate(150, seed=21))
    want_docs, _ = expected(s, events)
    half = len(events) // 2
    worker = Worker(s, "k1", tmp_path / "k1.log")
    try:
        publish(s, events[:half])
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not _applied(s):
            assert worker.proc.poll() is None
            time.sleep(0.5)
        publish(s, events[half:])
        while time.monotonic() < deadline and _processed(s) <= half:  # into the second half
            time.sleep(0.05)
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(30)
    finally:
        worker.stop()
    info = json.loads((Path(s.data_dir) / "stream-k1.json").read_text())
    assert info["pid"] == worker.proc.pid  # the killed worker left its file: the CLI must skip dead pids
    assert not query_households_safe(s)
    restarted = Worker(s, "k1", tmp_path / "k1b.log")
    try:
        got = wait_for_statuses(s, want_docs, restarted.proc)
        assert got == {h: without_clock(d) for h, d in want_docs.items()}
        live = defaultdict(set)
        for row in query_open_alerts(s):
            live[row["household_id"]].add(row["rule"])
        assert dict(live) == {h: set(d["open_alerts"]) for h, d in want_docs.items() if d["open_alerts"]}
        # Every alert the fold opened was published, at least once, with the same alert id.
        alerts = [orjson.loads(r.value) for r in read_topic(s, alerts_topic(s), 1)]
        assert open_from_messages(alerts) == {
            h: set(d["open_alerts"]) for h, d in want_docs.items() if d["open_alerts"]
        }
    finally:
        restarted.stop()


def _processed(settings, worker: str = "k1") -> int:
    """Events worker ``worker`` has folded, found duplicate or dead-lettered (0 if it does not answer)."""
    import urllib.request

    try:
        info = json.loads((Path(settings.data_dir) / f"stream-{worker}.json").read_text())
        from fupin.auth import auth_headers

        req = urllib.request.Request(f"{info['url']}/alerts", headers=auth_headers(settings))
        with urllib.request.urlopen(req, timeout=10) as resp:
            return sum(json.loads(resp.read())["counters"].values())
    except (OSError, ValueError, KeyError):
        return 0


def _applied(settings) -> bool:
    try:
        return bool(query_households(settings))
    except Exception:
        return False


def query_households_safe(settings) -> list:
    try:
        return query_households(settings)
    except Exception:
        return []


def test_fresh_worker_recovers_the_table_from_the_changelog(stream_settings, tmp_path):
    s = stream_settings
    events = synthetic.with_disorder(synthetic.generate(120, seed=41))
    want_docs, _ = expected(s, events)
    first = Worker(s, "r1", tmp_path / "r1.log")
    try:
        publish(s, events)
        assert wait_for_statuses(s, want_docs, first.proc) == {
            h: without_clock(d) for h, d in want_docs.items()
        }
    finally:
        first.stop()
    # A worker with an empty data dir: its offsets say all is processed, so only the changelog
    # can give it the households back.
    second = Worker(s, "r2", tmp_path / "r2.log")
    try:
        got = wait_for_statuses(s, want_docs, second.proc)
        assert got == {h: without_clock(d) for h, d in want_docs.items()}
    finally:
        second.stop()
