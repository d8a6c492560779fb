"""A small warehouse for the dashboard's tests: the simulator's county landed and built, the
warehouse service (its ClickHouse HTTP interface too) and the dashboard running in this process."""

from __future__ import annotations

import importlib.util
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

D = "2020-12-31"
COUNTY = "431224"


def _county_module():
    path = Path(__file__).resolve().parents[1] / "e2e" / "test_indicators_county.py"
    spec = importlib.util.spec_from_file_location("county_e2e", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Site:
    settings: Any
    owner: Any  # the owner's read-write connection (to land alerts during a test)
    service: Any
    dashboard: Any
    url: str
    service_url: str
    out: Path


def alert_row(hh: str, region: str, occurred: str, rule: str = "unsafe_water") -> tuple:
    """An open alert episode as the sink lands it (warehouse.sink.ALERT_COLUMNS)."""
    at = datetime.fromisoformat(occurred).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    return (f"A-{hh}-{uuid.uuid4().hex[:6]}", rule, "raised", hh, region, f"E-{hh}", at, at, None, None, None,
            time.time_ns() // 1000, now, "{}", now)  # fmt: skip


def start_site(tmp: Path, households: int = 400) -> Site:
    from expectations.checkpoint import run_checkpoint_job
    from fupin.build import run_build_job
    from fupin.config import load_settings
    from warehouse.client import connect
    from warehouse.dashboard.server import Dashboard
    from warehouse.migrate import migrate
    from warehouse.service import Service
    from warehouse.sink import ALERT_COLUMNS, DEAD_LETTER_COLUMNS

    county = _county_module()
    out = tmp / "county"
    settings = load_settings(data_dir=str(tmp / "data"), clickhouse_database=f"t_{uuid.uuid4().hex[:12]}")
    wh = connect(settings)
    migrate(wh)
    envelopes = county.simulate_and_land(settings, wh, out)
    settings = settings.with_(reference_dir=out / "reference")
    villages = sorted({e["region_code"] for e in envelopes})
    wh.insert(
        "alerts",
        ALERT_COLUMNS,
        [alert_row(f"H{i}", villages[i % len(villages)], "2020-06-01") for i in range(7)],
    )
    now = datetime.now(UTC)
    wh.insert("dead_letters", DEAD_LETTER_COLUMNS,
              [("fupin.events.water", 0, i, "sink", "contract: payload.tested is required", b"{}", None, now, now, 0)
               for i in range(3)])  # fmt: skip
    result = run_build_job(wh, settings, as_of_date=D)
    assert result["success"], result["failed"] or result["error"]
    run_checkpoint_job(wh, settings)
    service = Service(settings, sink=False)
    service_url = service.start()
    dashboard = Dashboard(settings)
    url = dashboard.start(port=0)
    return Site(settings, wh, service, dashboard, url, service_url, out)


def stop_site(site: Site) -> None:
    site.dashboard.stop()
    site.service.stop()
    site.owner.execute(f"DROP DATABASE IF EXISTS {site.settings.clickhouse_database}")
    site.owner.close()
