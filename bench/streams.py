"""Benchmark of the stream worker on the embedded broker, with simulator-like events.

1. projection throughput: one `fupin stream` worker folds a backlog of department events; compared
   with a raw aiokafka consumer reading the same topics (targets: >= 20,000 events/s, ratio >= 0.1);
2. event -> alert latency, p50/p99, while events arrive at a steady 2,000 events/s (target p99 <= 1 s).

Run: .venv/bin/python bench/streams.py [--households 5000] [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fupin.broker import create_topics, free_port, start_broker  # noqa: E402
from fupin.config import load_settings  # noqa: E402
from fupin.topics import alerts_topic, all_topics, department_topic, input_topics  # noqa: E402
from streams import synthetic  # noqa: E402


def write_lines(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["province_code,year,poverty_line,poverty_line_source,monitoring_line,monitoring_line_source"]
    for province in ("43", "52"):
        for year in range(2014, 2027):
            monitoring = f"{6000 + 100 * (year - 2020)},bench" if year >= 2020 else ","
            rows.append(f"{province},{year},{3000 + 100 * (year - 2014)},bench,{monitoring}")
    (directory / "lines.csv").write_text("\n".join(rows) + "\n")


async def publish(bootstrap: str, settings, events: list[dict]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=256 * 1024)
    await producer.start()
    try:
        futs = []
        for env in events:
            key, value = synthetic.encode(env)
            futs.append(await producer.send(department_topic(settings, env["department"]), value, key=key))
        await asyncio.gather(*futs)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topics: list[str], partitions: int, total: int) -> float:
    """Events/s of a bare aiokafka consumer reading (and JSON-decoding) the same backlog."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        n, start = 0, None
        while n < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                if start is None:
                    start = time.perf_counter()
                for r in records:
                    orjson.loads(r.value)
                n += len(records)
        return n / (time.perf_counter() - start)
    finally:
        await consumer.stop()


def faust_noop(bootstrap: str, prefix: str, total: int, out: str) -> None:
    """A Faust agent that only batches (take_events) and counts: the ceiling of any Faust fold here."""
    import faust

    from fupin.compat import faust as faust_compat

    settings = load_settings(topic_prefix=prefix)
    faust_compat.tune(batched=set(input_topics(settings)))  # the delivery the worker uses
    app = faust.App(
        f"{prefix}-noop",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        broker_rebalance_timeout=5,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=20000,
        topic_partitions=settings.topic_partitions,
    )
    source = app.topic(
        *input_topics(settings),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    seen = {"n": 0, "t0": 0.0}

    @app.agent(source)
    async def count(stream):  # noqa: ANN001
        async for events in stream.take_events(5000, within=0.1):
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            seen["n"] += sum(len(faust_compat.fetched_records(e.message) or (e,)) for e in events)
            if seen["n"] >= total:
                Path(out).write_text(str(seen["n"] / (time.perf_counter() - seen["t0"])))

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def run_noop(bootstrap: str, total: int, tmp: Path) -> float:
    out = tmp / "noop.txt"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--faust-noop", bootstrap, str(total), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        return float(out.read_text()) if out.exists() else float("nan")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def worker_report(data_dir: Path, worker: str) -> dict | None:
    """The worker's counters and timing from its pid file (rewritten each second by the worker's
    heartbeat thread), or None before the first. Not from its web views: serving a request takes
    turns of the event loop whose fold is being measured."""
    try:
        doc = json.loads((data_dir / f"stream-{worker}.json").read_text())
        beat = doc["heartbeat"]
        counters = {name: beat["counts"][name] for name in ("applied", "duplicates", "dead")}
        return {"counters": counters, "timing": doc["timing"]}
    except (OSError, ValueError, KeyError):
        return None


def processed(report: dict | None) -> int:
    return sum(report["counters"].values()) if report else 0


async def latency_phase(bootstrap: str, settings, events: list[dict], rate: float) -> list[float]:
    """Publish at ``rate`` events/s; return event -> alert delays for the alerts they raised."""
    sent_at: dict[str, float] = {}
    delays: list[float] = []
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await consumer.start()
    tps = [TopicPartition(alerts_topic(settings), p) for p in range(settings.topic_partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            now = time.perf_counter()
            for records in batch.values():
                for r in records:
                    m = orjson.loads(r.value)
                    t = sent_at.get(m["start_event_id"])  # the event that made the episode hold
                    if t is not None and m["state"] == "raised":
                        delays.append(now - t)

    collector = asyncio.create_task(collect())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    start = time.perf_counter()
    for i, env in enumerate(events):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        key, value = synthetic.encode(env)
        sent_at[env["event_id"]] = time.perf_counter()
        await producer.send(department_topic(settings, env["department"]), value, key=key)
    await producer.flush()
    await asyncio.sleep(3.0)  # let the last alerts arrive
    stop.set()
    await collector
    await producer.stop()
    await consumer.stop()
    return delays


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=5000)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--faust-noop", nargs=3, metavar=("BOOTSTRAP", "TOTAL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.faust_noop:
        sys.argv = sys.argv[:1] + ["worker"]  # Faust's worker reads its own command line
        faust_noop(args.faust_noop[0], "bench", int(args.faust_noop[1]), args.faust_noop[2])
        return

    tmp = Path(tempfile.mkdtemp(prefix="fupin-bench-streams-"))
    port = free_port()
    broker = start_broker(port, tmp / "broker.log")
    bootstrap = f"127.0.0.1:{port}"
    settings = load_settings(
        data_dir=str(tmp / "data"),
        broker_bootstrap=bootstrap,
        topic_prefix="bench",
        reference_dir=str(tmp / "reference"),
    )
    write_lines(tmp / "reference")
    create_topics(bootstrap, all_topics(settings), settings.topic_partitions)
    worker = None
    try:
        backlog = synthetic.generate(args.households, seed=5)
        total = len(backlog)
        asyncio.run(publish(bootstrap, settings, backlog))
        raw = asyncio.run(raw_consume(bootstrap, input_topics(settings), settings.topic_partitions, total))
        noop = run_noop(bootstrap, total, tmp)

        env = dict(
            os.environ,
            FUPIN_DATA_DIR=str(settings.data_dir),
            FUPIN_BROKER_BOOTSTRAP=bootstrap,
            FUPIN_TOPIC_PREFIX="bench",
            FUPIN_REFERENCE_DIR=str(settings.reference_dir),
        )
        log = (tmp / "worker.log").open("ab")
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("fupin")), "stream", "--worker", "b1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        report = None
        while processed(report) < total:
            time.sleep(0.2)
            if worker.poll() is not None:
                raise SystemExit(f"worker exited; see {tmp / 'worker.log'}")
            report = worker_report(Path(settings.data_dir), "b1") or report
        timing = report["timing"]  # type: ignore[index]
        # From the start of the worker's first batch to the end of its last: every event counts.
        projection = total / (timing["last_at"] - timing["first_at"])
        split = {k: round(timing[k], 2) for k in ("batches", "fold_s", "deliver_s", "store_s")}

        live = synthetic.generate(max(1, int(args.rate * args.seconds / 32)), seed=9, prefix="L")
        live = live[: int(args.rate * args.seconds)]
        delays = asyncio.run(latency_phase(bootstrap, settings, live, args.rate))
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.terminate()
        broker.wait(10)

    print(f"backlog: {total} events of {args.households} households on {len(input_topics(settings))} topics")
    print(f"raw aiokafka consumer: {raw:,.0f} events/s")
    print(f"Faust agent that only batches and counts (ceiling): {noop:,.0f} events/s")
    print(f"projection (1 worker): {projection:,.0f} events/s  (target >= 20,000); worker's time: {split}")
    print(f"ratio projection/raw: {projection / raw:.3f}  (target >= 0.1)")
    if delays:
        qs = statistics.quantiles(delays, n=100)
        print(
            f"event -> alert latency at {args.rate:,.0f} events/s: {len(delays)} alerts, "
            f"p50 {qs[49] * 1000:.0f} ms, p99 {qs[98] * 1000:.0f} ms  (target p99 <= 1000 ms)"
        )
    else:
        print("event -> alert latency: no alerts observed")


if __name__ == "__main__":
    main()
