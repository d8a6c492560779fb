"""The fold's cost per event: ``Projector.process`` on one simulated county, no broker, no Faust.

The county's department files are published one after another (poverty office first), so most
events of the later departments reach the fold late for their household: the realistic order.
Batches of ``--batch`` records (the worker's ``batch_max``) go through ``Projector.process`` with a
dict as the table, as the worker's agent does with its rocksdb table.

Run: .venv/bin/python bench/fold.py [--households 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("FUPIN_PSEUDONYM_KEY", "bench-only-pseudonym-key")

from county_events import county_envelopes  # noqa: E402

from fupin.config import load_settings  # noqa: E402
from fupin.topics import department_topic  # noqa: E402
from streams.alerts import Thresholds  # noqa: E402
from streams.app import GC_THRESHOLD, Projector, Record  # noqa: E402
from streams.guarantees import load_lines  # noqa: E402


def run(projector: Projector, records: list[Record], batch: int) -> tuple[float, float, int, int]:
    """Wall and CPU seconds of one pass over the records, alert messages, households."""
    table: dict[bytes, bytes] = {}
    alerts = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(records), batch):
        result = projector.process(records[i : i + batch], lambda key, ref: table.get(key))
        for key, value, _ref in result.writes:
            table[key] = value
        alerts += len(result.alerts)
    return time.perf_counter() - t0, time.process_time() - c0, alerts, len(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fupin-bench-fold-"))
    envelopes = county_envelopes(tmp / "county", households=args.households, seed=7)
    settings = load_settings(data_dir=str(tmp / "data"))
    records = [
        Record(e["household_id"].encode(), orjson.dumps(e), department_topic(settings, e["department"]), 0, i)
        for i, e in enumerate(envelopes)
    ]
    projector = Projector(settings, load_lines(tmp / "county" / "reference"), Thresholds())
    gc.set_threshold(GC_THRESHOLD, 20, 100)  # as the worker sets it
    best = best_cpu = float("inf")
    for _ in range(args.repeat):
        seconds, cpu, alerts, households = run(projector, records, args.batch)
        best, best_cpu = min(best, seconds), min(best_cpu, cpu)
    n = len(records)
    print(
        f"fold: {n} events of {households} households, department files one after another, "
        f"batches of {args.batch}: {best / n * 1e6:.2f} µs/event ({n / best:,.0f} events/s; CPU "
        f"{best_cpu / n * 1e6:.2f} µs/event; best of {args.repeat}, load average {os.getloadavg()[0]:.1f}); "
        f"{alerts} alert messages (a part of the stream target: >= 20,000 events/s a worker)"
    )


if __name__ == "__main__":
    main()
