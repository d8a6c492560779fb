"""Benchmark: the dashboard's data endpoints and first paint on the warehouse of bench/build.py.

Targets (issue 13): each panel's data endpoint p95 ≤ 150 ms, a whole page's data (its panels
fetched at once, as the browser does) ≤ 1 s, first contentful paint in Chromium ≤ 1.5 s.
The events are generated in a fresh chdb path as bench/build.py does (1M households by default),
built with dbt, then the warehouse service and the dashboard run in this process and every
endpoint is asked over HTTP with a dashboard token, through the read-only path.

    python bench/dashboard.py [--households 1000000] [--requests 40]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.build import EVENTS_SQL, D  # noqa: E402

PANEL_TARGET_MS, PAGE_TARGET_MS, FCP_TARGET_MS = 150.0, 1000.0, 1500.0


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]


def setup(work: Path, households: int):
    from fupin.build import run_build_job
    from fupin.config import load_settings
    from warehouse.client import connect
    from warehouse.migrate import migrate
    from warehouse.sink import ALERT_COLUMNS, DEAD_LETTER_COLUMNS

    settings = load_settings(data_dir=str(work / "data"), chdb_path=str(work / "chdb"), clickhouse_database="bench",
                             reference_dir=str(work / "reference"))  # fmt: skip
    wh = connect(settings)
    migrate(wh)
    townships = [f"431224{100 + t}" for t in range(30)]
    villages = [f"{t}{201 + v}" for t in townships for v in range(10)]
    ref = work / "reference"
    ref.mkdir(parents=True)
    rows = [("43", "湖南省", "province", "", 0, "central"), ("4312", "怀化市", "city", "43", 0, "central"),
            ("431224", "溆浦县", "county", "4312", 1, "central")]  # fmt: skip
    rows += [(t, f"第{i + 1}乡镇", "township", "431224", 0, "central") for i, t in enumerate(townships)]
    rows += [(v, f"{v[-3:]}村", "village", v[:9], 0, "central") for v in villages]
    (ref / "regions.csv").write_text(
        "region_code,name,level,parent_code,is_poor_county,zone\n"
        + "".join(",".join(map(str, r)) + "\n" for r in rows),
        encoding="utf-8",
    )
    (ref / "population.csv").write_text(
        "region_code,year,agricultural_population,rural_households\n"
        + "".join(f"{v},{y},12000,3400\n" for v in villages for y in (2019, 2020))
    )
    (ref / "lines.csv").write_text(
        "province_code,year,poverty_line,poverty_line_source,monitoring_line,monitoring_line_source\n"
        "43,2019,3747.0,bench,,\n43,2020,4000.0,bench,6000.0,bench\n"
    )
    from warehouse.reference import load_reference_job

    load_reference_job(wh, settings)
    n = households * 10
    t0 = time.monotonic()
    wh.execute(EVENTS_SQL.format(db="bench", offset=0, households=households, household_shift=0, slots=10, slot_shift=0,
                                 day_shift=0, count=n, ingested="toDateTime64('2021-01-01 00:00:00', 3, 'UTC')"))  # fmt: skip
    now = datetime.now(UTC)
    at = datetime(2020, 6, 1, tzinfo=UTC)
    wh.insert("alerts", ALERT_COLUMNS, [(f"A{i}", ["unsafe_water", "medical_burden", "income_drop"][i % 3], "raised", f"H{i:08d}",
                                         villages[i % len(villages)], f"E{i}", at, None, None, at, "{}", now)
                                        for i in range(households // 100)])  # fmt: skip
    wh.insert("dead_letters", DEAD_LETTER_COLUMNS, [("fupin.events.water", 0, i, "sink", f"reason {i % 7}", b"{}", None, now, now, 0)
                                                    for i in range(1000)])  # fmt: skip
    print(
        f"generated {n:,} events for {households:,} households in {time.monotonic() - t0:.1f} s", flush=True
    )
    build = run_build_job(wh, settings, as_of_date=D)
    if not build["success"]:
        sys.exit(f"build failed: {build['failed'] or build['error']}")
    print(f"dbt build: {build['seconds']:.1f} s", flush=True)
    return settings, wh


def fetch(url: str, token: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(
        urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}), timeout=60
    ) as r:
        r.read()
        assert r.status == 200
    return (time.perf_counter() - t0) * 1000


def first_paint(url: str, login: str, work: Path) -> tuple[float, float] | None:
    """First contentful paint and the time until the overview's figures show, in Chromium (ms)."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        print("first contentful paint: skipped (Debian's chromium and chromium-driver are not installed)")
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={work / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.get(login)  # sets the cookie
        fcps, readies = [], []
        for _ in range(5):
            driver.get(url)
            deadline = time.monotonic() + 30
            while (
                driver.execute_script("return document.body.dataset.ready") != "1"
                and time.monotonic() < deadline
            ):
                time.sleep(0.02)
            fcp = driver.execute_script(
                "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null"
            )
            ready = driver.execute_script("return performance.now()")
            fcps.append(float(fcp))
            readies.append(float(ready))
        return statistics.median(fcps), statistics.median(readies)
    finally:
        driver.quit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=40, help="Requests per endpoint.")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fupin-bench-dashboard-"))
    os.environ["FUPIN_CHDB_PATH"] = str(work / "chdb")
    try:
        settings, wh = setup(work, args.households)
        from fupin import auth
        from warehouse.dashboard import panels
        from warehouse.dashboard.server import Dashboard
        from warehouse.service import Service

        service = Service(settings, sink=False)
        service.start()
        app = Dashboard(settings)
        url = app.start(port=0)
        token = auth.create_token(settings, auth.DASHBOARD, name="bench")[1]
        regions = {"province": "43", "county": "431224", "village": "431224100201"}
        q = lambda name, region: f"{url}/api/{name}?region={region}&date={D}"  # noqa: E731
        for name in panels.ENDPOINTS:  # warm up
            fetch(q(name, "43"), token)
        panel_p95: dict[str, float] = {}
        for name in panels.ENDPOINTS:
            times = [
                fetch(q(name, regions[lv]), token) for _ in range(args.requests // 3 + 1) for lv in regions
            ]
            panel_p95[name] = p95(times)
            print(
                f"  {name:<9} p95 {panel_p95[name]:6.0f} ms  (median {statistics.median(times):.0f} ms)  target ≤ {PANEL_TARGET_MS:.0f} ms"
            )
        slowest = max(panel_p95, key=panel_p95.get)
        print(f"panel p95: {panel_p95[slowest]:.0f} ms ({slowest})  target ≤ {PANEL_TARGET_MS:.0f} ms")
        page_p95: dict[str, float] = {}
        with ThreadPoolExecutor(8) as pool:
            for page, names in panels.PAGES.items():
                times = []
                for i in range(args.requests // 2):
                    region = list(regions.values())[i % 3]
                    t0 = time.perf_counter()
                    list(pool.map(lambda n, r=region: fetch(q(n, r), token), names))
                    times.append((time.perf_counter() - t0) * 1000)
                page_p95[page] = p95(times)
                print(f"  page {page:<8} data p95 {page_p95[page]:6.0f} ms  target ≤ {PAGE_TARGET_MS:.0f} ms")
        worst = max(page_p95, key=page_p95.get)
        print(f"page data p95: {page_p95[worst]:.0f} ms ({worst})  target ≤ {PAGE_TARGET_MS:.0f} ms")
        paint = first_paint(f"{url}/?page=overview&region=43&date={D}", f"{url}/login?token={token}", work)
        if paint:
            print(f"first contentful paint: {paint[0]:.0f} ms  target ≤ {FCP_TARGET_MS:.0f} ms "
                  f"(overview's figures shown after {paint[1]:.0f} ms)")  # fmt: skip
        print(json.dumps({"households": args.households, "panel_p95_ms": {k: round(v) for k, v in panel_p95.items()},
                          "page_p95_ms": {k: round(v) for k, v in page_p95.items()},
                          "fcp_ms": round(paint[0]) if paint else None}))  # fmt: skip
        app.stop()
        service.stop()
        wh.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
