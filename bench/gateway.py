"""The HTTP gateway end to end: batched POSTs against `fupin publish` of the same events; single-event latency.

One fresh embedded broker, the gateway as its own process (``fupin gateway serve``), an aiohttp
client in this process. Events are health-insurance enrolments (a person event), pseudonymized at
the department's side by the SDK, as a department would send them.

- Batched: POSTs of 1,000 events (JSON arrays), a few in flight; the rate counts events answered
  ``accepted`` (i.e. acknowledged by the broker) per second of wall time. Target ≥ 30,000/s.
- `fupin publish` of the same events from a JSONL file (``import_file``, what the command runs,
  without the CLI's start-up), in the same run: target gateway/publish ≥ 0.6 (printed ``ratio: R``).
- Single-event POSTs at 200 requests/s, sent on a fixed schedule (latency from the scheduled send
  time, so a stall counts): target p99 ≤ 25 ms.

Each batched side runs ROUNDS times, alternately, with fresh event ids; the best run counts (the
machine is shared).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from fupin.auth import create_token  # noqa: E402
from fupin.broker import create_topics, free_port, start_broker  # noqa: E402
from fupin.config import load_settings  # noqa: E402
from fupin.topics import all_topics  # noqa: E402
from producers.identity import make_resident_id  # noqa: E402
from producers.importers import import_file  # noqa: E402
from producers.sdk import Publisher  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BATCH = 1000
IN_FLIGHT = int(os.environ.get("BENCH_IN_FLIGHT", "4"))
SINGLE_RATE, SINGLE_SECONDS = 200, float(os.environ.get("BENCH_SINGLE_SECONDS", "15"))
DEPARTMENT = "health_insurance"


def envelopes(settings, n: int) -> list[dict]:
    """n enrolments of 20,000 persons in 5,000 households, pseudonymized by the SDK, fresh event ids."""
    builder = Publisher(settings, DEPARTMENT, "county-insurance")
    ids = [make_resident_id("431224", date(1950 + i % 60, 1 + i % 12, 1 + i % 28), i // 720, "MF"[i % 2])
           for i in range(20_000)]
    return [builder.build("insurance_enrolled", f"H{i % 5000:07d}", "431224104201", f"20{16 + i % 6}-01-{5 + i % 20:02d}",
                          {"year": 2016 + i % 6, "schemes": ["basic", "critical_illness"]}, resident_id=ids[i % 20_000],
                          event_id=str(uuid.uuid4()), recorded_at="2022-01-05T10:00:00+08:00")
            for i in range(n)]


def start_gateway(settings, tmp: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "FUPIN_DATA_DIR": str(settings.data_dir), "FUPIN_BROKER_BOOTSTRAP": settings.broker_bootstrap,
           "FUPIN_TOPIC_PREFIX": settings.topic_prefix}
    log = open(tmp / "gateway.log", "ab")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-m", "fupin.cli", "gateway", "serve", "--port", "0"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    record = Path(settings.data_dir) / "gateway.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gateway exited: {(tmp / 'gateway.log').read_text()[-2000:]}")
        try:
            info = json.loads(record.read_text())
            if info.get("pid") == proc.pid:
                return proc, info["url"]
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("gateway did not start")


async def batched(url: str, token: str, events: list[dict]) -> float:
    bodies = [orjson.dumps(events[i:i + BATCH]) for i in range(0, len(events), BATCH)]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    accepted = 0
    queue = list(reversed(bodies))

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal accepted
        while queue:
            body = queue.pop()
            async with session.post(f"{url}/v1/events", data=body, headers=headers) as resp:
                answer = await resp.json()
                if resp.status != 200:
                    raise SystemExit(f"batched POST answered {resp.status}: {answer}")
                accepted += answer["accepted"]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as session:
        t = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(IN_FLIGHT)))
        dt = time.perf_counter() - t
    if accepted != len(events):
        raise SystemExit(f"batched: {accepted} accepted of {len(events)}")
    return len(events) / dt


async def single(url: str, token: str, events: list[dict]) -> list[float]:
    """Latency (seconds) of each single-event POST, measured from its scheduled send time."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [orjson.dumps(e) for e in events]
    latencies: list[float] = []
    failures: list[str] = []

    async def one(session: aiohttp.ClientSession, body: bytes, scheduled: float) -> None:
        async with session.post(f"{url}/v1/events", data=body, headers=headers) as resp:
            answer = await resp.json()
            if resp.status != 200 or answer["accepted"] != 1:
                failures.append(f"{resp.status} {answer}")
        latencies.append(time.perf_counter() - scheduled)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        # Warm the pool's connections first.
        await asyncio.gather(*(session.get(f"{url}/health") for _ in range(20)))
        start = time.perf_counter() + 0.05
        tasks = []
        for i, body in enumerate(bodies):
            scheduled = start + i / SINGLE_RATE
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(session, body, scheduled)))
        await asyncio.gather(*tasks)
    if failures:
        raise SystemExit(f"single: {len(failures)} failed, e.g. {failures[0]}")
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its living children (the gateway's workers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except OSError:
        pass
    return total


def run_publish(settings, path: Path, n: int) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    summary = import_file(settings, DEPARTMENT, path, use_ledger=False)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    if summary.report.accepted != n:
        raise SystemExit(f"publish: {summary.report.summary()}")
    return n / dt, dc / n


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fupin-bench-gateway-"))
    port = free_port()
    broker = start_broker(port, tmp / "broker.log")
    gateway = None
    try:
        settings = load_settings(data_dir=str(tmp / "data"), broker_bootstrap=f"127.0.0.1:{port}",
                                 pseudonym_key="bench-key")
        create_topics(settings.broker_bootstrap, all_topics(settings), settings.topic_partitions)
        token = create_token(settings, f"department:{DEPARTMENT}")[1]
        gateway, url = start_gateway(settings, tmp)
        gateway_rates, publish_rates, gateway_cpu, publish_cpu = [], [], [], []
        size = 0
        for r in range(ROUNDS):
            events = envelopes(settings, N)
            size = sum(len(orjson.dumps(e)) for e in events[:1000]) / 1000
            path = tmp / f"round{r}.jsonl"
            path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
            c = cpu_seconds(gateway.pid)
            gateway_rates.append(asyncio.run(batched(url, token, events)))
            gateway_cpu.append((cpu_seconds(gateway.pid) - c) / N)
            rate, cpu = run_publish(settings, path, N)
            publish_rates.append(rate)
            publish_cpu.append(cpu)
            path.unlink()
        singles = envelopes(settings, int(SINGLE_RATE * SINGLE_SECONDS))
        c = cpu_seconds(gateway.pid)
        latencies = sorted(asyncio.run(single(url, token, singles)))
        single_cpu = (cpu_seconds(gateway.pid) - c) / len(singles)
        gw, pub = max(gateway_rates), max(publish_rates)
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        runs = lambda rates: ", ".join(f"{x:,.0f}" for x in rates)  # noqa: E731
        print(f"events per round: {N:,} ({size:.0f} bytes each), batches of {BATCH}, {IN_FLIGHT} in flight; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"gateway batched:  {gw:,.0f} events/s accepted and acknowledged (runs: {runs(gateway_rates)})"
              "  target >= 30,000 events/s")
        print(f"  CPU per event: gateway (its workers included) {min(gateway_cpu) * 1e6:.0f} us, "
              f"fupin publish {min(publish_cpu) * 1e6:.0f} us (best runs)")
        print(f"fupin publish:    {pub:,.0f} events/s from a JSONL file (runs: {runs(publish_rates)})")
        print(f"ratio: {gw / pub:.2f}  (gateway / fupin publish, target >= 0.6)")
        print(f"single-event POSTs at {SINGLE_RATE}/s for {SINGLE_SECONDS:g}s: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
              "  target p99 <= 25 ms")
        print(f"  CPU per single-event request in the gateway process: {single_cpu * 1e6:.0f} us "
              f"({single_cpu * SINGLE_RATE * 100:.0f}% of one core at {SINGLE_RATE}/s)")
    finally:
        if gateway is not None:
            gateway.terminate()
            gateway.wait(30)
        broker.terminate()
        broker.wait(10)


if __name__ == "__main__":
    main()
