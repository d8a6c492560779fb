"""SDK publish rate (validation and pseudonymization on) against raw kafka-python, same bytes.

One fresh embedded broker; the same producer settings on both sides (``producers.sdk.make_producer``:
acks=all, idempotence, lz4, 512 KiB batches). The SDK side starts from department records with
raw resident IDs and builds, pseudonymizes, validates, serializes and sends; the raw side sends
the very bytes the SDK produced. Each side runs ROUNDS (5) times, alternately; the best run counts (the machine is shared).
CPU rates (events per process CPU-second, sender thread included) are printed too: they
vary less than wall-clock rates on a loaded machine.
Target: SDK ≥ 40,000 events/s and SDK/raw ≥ 0.8.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from fupin.broker import create_topics, free_port, start_broker  # noqa: E402
from fupin.config import load_settings  # noqa: E402
from fupin.topics import department_topic  # noqa: E402
from producers.identity import make_resident_id  # noqa: E402
from producers.sdk import Publisher, make_producer  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "120000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))


def records(n: int) -> list[dict]:
    """Insurance enrolments of 20,000 persons in 5,000 households (a person event, raw IDs)."""
    ids = [make_resident_id("431224", date(1950 + i % 60, 1 + i % 12, 1 + i % 28), i // 720, "MF"[i % 2])
           for i in range(20_000)]
    out = []
    for i in range(n):
        out.append({
            "event_type": "insurance_enrolled", "household_id": f"H{i % 5000:07d}", "region_code": "431224104201",
            "occurred_at": f"20{16 + i % 6}-01-{5 + i % 20:02d}", "payload": {"year": 2016 + i % 6,
                                                                         "schemes": ["basic", "critical_illness"]},
            "resident_id": ids[i % 20_000], "event_id": f"00000000-0000-4000-8000-{i:012d}",
            "recorded_at": "2022-01-05T10:00:00+08:00",
        })
    return out


def run_sdk(settings, recs: list[dict]) -> tuple[float, float]:
    pub = Publisher(settings, "health_insurance", "bench")
    pub.producer.partitions_for(pub.topic)  # connect before timing
    t, c = time.perf_counter(), time.process_time()
    for r in recs:
        pub.publish(None, **r)
    report = pub.flush()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    pub.close()
    assert report.accepted == len(recs) and report.ok, report.summary()
    return len(recs) / dt, len(recs) / dc


def run_raw(settings, topic: str, messages: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    producer = make_producer(settings, client_id="bench-raw")
    producer.partitions_for(topic)
    t, c = time.perf_counter(), time.process_time()
    futures = [producer.send(topic, key=key, value=value) for key, value in messages]
    producer.flush()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    producer.close()
    assert all(f.succeeded() for f in futures)
    return len(messages) / dt, len(messages) / dc


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fupin-bench-"))
    port = free_port()
    proc = start_broker(port, tmp / "broker.log")
    try:
        bootstrap = f"127.0.0.1:{port}"
        settings = load_settings(data_dir=str(tmp), broker_bootstrap=bootstrap, pseudonym_key="bench-key")
        topic = department_topic(settings, "health_insurance")
        raw_topic = "bench.raw"
        create_topics(bootstrap, {topic: {}, raw_topic: {}}, settings.topic_partitions)
        recs = records(N)
        builder = Publisher(settings, "health_insurance", "bench")
        messages = []
        for r in recs:
            env = builder.build(**r)
            messages.append((env["household_id"].encode(), orjson.dumps(env)))
        raw_bytes = sum(len(v) for _, v in messages)
        assert not any(b"431224" + r["resident_id"][6:].encode() in v for r, (_, v) in zip(recs[:100], messages[:100], strict=True))
        sdk_rates, raw_rates = [], []
        for _ in range(ROUNDS):
            raw_rates.append(run_raw(settings, raw_topic, messages))
            sdk_rates.append(run_sdk(settings, recs))
        sdk, raw = max(w for w, _ in sdk_rates), max(w for w, _ in raw_rates)
        sdk_cpu, raw_cpu = max(c for _, c in sdk_rates), max(c for _, c in raw_rates)
        runs = lambda rates: ", ".join(f"{w:,.0f}" for w, _ in rates)  # noqa: E731
        print(f"events per side: {N:,} ({raw_bytes / N:.0f} bytes each on average), load average {os.getloadavg()[0]:.1f}")
        print(f"raw kafka-python: {raw:,.0f} events/s  (runs: {runs(raw_rates)}; {raw_cpu:,.0f} per CPU-second)")
        print(f"SDK publish:      {sdk:,.0f} events/s  (runs: {runs(sdk_rates)}; {sdk_cpu:,.0f} per CPU-second)")
        print(f"ratio SDK/raw:    {sdk / raw:.2f}  (per CPU-second {sdk_cpu / raw_cpu:.2f}; "
              "target >= 0.8, SDK >= 40,000 events/s)")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
