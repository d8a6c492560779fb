"""Data-quality checkpoint time and peak memory over an event store of BENCH_EVENTS events.

A fresh chdb path in a temporary directory; the events are generated in SQL (five event types,
amounts and enums in the payloads), so the figures are the checkpoint's own: the event-store
query, the Parquet snapshot and Great Expectations. No target is set in the spec; the figures
say how the checkpoint scales (it holds the event-store frame in memory).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expectations.checkpoint import run_checkpoint_job  # noqa: E402
from fupin.config import load_settings  # noqa: E402
from warehouse.client import connect  # noqa: E402
from warehouse.migrate import migrate  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "200000"))

EVENTS = """
INSERT INTO {db}.events (event_id, event_type, schema_version, department, source_system, household_id,
    person_id, region_code, occurred_at, recorded_at, payload, topic, partition, offset, ingested_at,
    occurred_at_text, recorded_at_text)
SELECT
    toString(generateUUIDv4()),
    ['poverty_office.income_assessed', 'civil_affairs.dibao_enrolled', 'human_resources.employment_started',
     'education.student_aid_granted', 'water.water_assessed'][number % 5 + 1] AS t,
    1, splitByChar('.', t)[1], 'bench', concat('H', toString(number % 50000)),
    if(number % 5 IN (2, 3), concat('P', lower(hex(MD5(toString(number))))), NULL),
    concat('43122410420', toString(number % 2)),
    toDateTime64('2020-01-01', 3, 'UTC') + toIntervalDay(number % 365),
    toDateTime64('2020-01-02', 3, 'UTC') + toIntervalDay(number % 365),
    [concat('{{"year":2020,"net_income_per_capita":', toString(4000 + number % 3000), ',"household_size":3}}'),
     '{{"monthly_amount":310.5,"persons_covered":2}}',
     '{{"monthly_wage":3200,"place":"in_county"}}',
     '{{"program":"sunshine","amount":500}}',
     '{{"safe":true,"issues":[]}}'][number % 5 + 1],
    'fupin.events.bench', 0, number, now64(3, 'UTC'), '', ''
FROM numbers({n})
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="fupin-bench-check-") as tmp:
        settings = load_settings(data_dir=f"{tmp}/data", chdb_path=f"{tmp}/chdb", clickhouse_database="fupin")
        warehouse = connect(settings)
        migrate(warehouse)
        warehouse.execute(
            "INSERT INTO fupin.reference_regions VALUES "
            "('431224104200', 'A', 'village', '431224104', 0, 'central'), "
            "('431224104201', 'B', 'village', '431224104', 0, 'central')"
        )
        warehouse.execute(EVENTS.format(db="fupin", n=N))
        started = time.perf_counter()
        result = run_checkpoint_job(warehouse, settings)
        elapsed = time.perf_counter() - started
        warehouse.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events:            {N:,}")
    print(f"checkpoint:        {elapsed:.1f} s ({N / elapsed:,.0f} events/s), success={result['success']}")
    print(f"critical failures: {len(result['critical_failures'])}")
    print(f"peak memory:       {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
