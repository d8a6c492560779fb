"""The dashboard and the ClickHouse HTTP interface on a small built warehouse (the simulator's county).

One module-wide site (tests/integration/dashboard_site.py): the county landed and built, the
warehouse service and the dashboard running in this process. The figures are compared with
`fupin indicators --format json`, run as the command a user runs (it reads through the service).
A real Chromium (Debian's chromium and chromium-driver) drives the pages; without them those tests
skip saying why. Screenshots go to tests/artifacts/ (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from dashboard_site import COUNTY, D, alert_row, start_site, stop_site  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = start_site(tmp_path_factory.mktemp("dashboard"))
    yield s
    stop_site(s)


@pytest.fixture(scope="module")
def tokens(site):
    from fupin import auth

    return {
        role: auth.create_token(site.settings, role, name=f"test-{role}")[1]
        for role in ("dashboard", "analyst")
    }


def indicators(site, family: str, level: str, region: str) -> dict:
    """`fupin indicators --format json` for one region at D, as a user runs it."""
    env = {**os.environ, "FUPIN_DATA_DIR": str(site.settings.data_dir),
           "FUPIN_CLICKHOUSE_DATABASE": site.settings.clickhouse_database,
           "FUPIN_REFERENCE_DIR": str(site.settings.reference_dir)}  # fmt: skip
    env.pop("FUPIN_TOKEN", None)
    proc = subprocess.run(
        [sys.executable, "-m", "fupin.cli", "indicators", "--family", family, "--level", level, "--region", region,
         "--date", D, "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in json.loads(proc.stdout) if r["region_code"] == region]
    assert len(rows) == 1, proc.stdout[:500]
    return rows[0]


def same(shown, expected) -> bool:
    if expected is None:
        return shown in (None, "")
    if isinstance(expected, float) or isinstance(shown, float):
        return abs(float(shown) - float(expected)) <= 1e-6 * max(1.0, abs(float(expected)))
    return str(shown) == str(expected)


def get(site, path: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(site.url + path, headers=headers), timeout=60
        ) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


# -- endpoints ------------------------------------------------------------------------------------


def test_every_door_needs_a_token_and_the_household_page_the_analyst(site, tokens):
    assert get(site, "/api/overview", None)[0] == 401
    assert get(site, "/api/overview", "fpn_not-a-token")[0] == 401
    code, doc = get(site, "/api/household?id=H0000001", tokens["dashboard"])
    assert code == 403, doc
    code, doc = get(site, "/api/household?id=H0000001", tokens["analyst"])
    assert code == 200 and doc["events"]["rows"], doc
    assert get(site, "/api/overview?region=43;DROP", tokens["dashboard"])[0] == 400
    assert get(site, "/api/sql?q=SELECT+1", tokens["dashboard"])[0] == 404


def test_overview_and_children_equal_the_indicators_command(site, tokens):
    code, ov = get(site, f"/api/overview?region={COUNTY}&date={D}", tokens["dashboard"])
    assert code == 200
    for family in ("census", "assessment"):
        expected = indicators(site, family, "county", COUNTY)
        for column, value in expected.items():
            if column not in ("built_at", "reference_date", "cutoff"):
                assert same(ov[family][column], value), (family, column)
    code, kids = get(site, f"/api/children?region={COUNTY}&date={D}", tokens["dashboard"])
    assert kids["level"] == "township" and kids["rows"]
    assert sum(r["households_total"] for r in kids["rows"]) == ov["census"]["households_total"]


def test_public_view_suppresses_cells_of_fewer_than_five_households(site, tokens):
    code, full = get(site, f"/api/children?region={COUNTY}&date={D}", tokens["dashboard"])
    code, public = get(site, f"/api/children?region={COUNTY}&date={D}&view=public", tokens["dashboard"])
    assert code == 200 and public["public_min_households"] == 5
    hidden = 0
    for a, b in zip(full["rows"], public["rows"], strict=True):
        for column, value in a.items():
            if column.endswith("_households") and isinstance(value, int) and 0 < value < 5:
                assert b[column] is None and column in b["_suppressed"]
                hidden += 1
            elif (
                column.endswith("_households")
                and isinstance(value, int)
                and value >= 5
                and a["households_total"] >= 5
            ):
                assert b[column] == value
    assert hidden, "the county has small cells: the test must see some hidden"


# -- ClickHouse HTTP interface ----------------------------------------------------------------------


def test_clickhouse_connect_lists_the_marts_and_reads_a_county(site, tokens):
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import DatabaseError

    port = int(site.service_url.rsplit(":", 1)[1])
    db = site.settings.clickhouse_database
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port, username="dashboards",
                                           password=tokens["dashboard"], database=db)  # fmt: skip
    tables = {r[0] for r in client.query("SHOW TABLES").result_rows}
    assert {
        "census",
        "assessment",
        "census_monthly",
        "assessment_monthly",
        "consistency",
        "regions",
    } <= tables
    assert not tables & {"events", "events_latest", "dead_letters", "alerts", "household_status_history"}
    assert {r[0] for r in client.query("SELECT name FROM system.databases").result_rows} == {db}
    # the engine filters the catalog: every table a dashboard token sees is one it may read
    from fupin.auth import may_read

    seen = {r[0] for r in client.query("SELECT name FROM system.tables").result_rows}
    assert seen == tables and all(may_read("dashboard", t) for t in seen)
    assert not client.query("SELECT name FROM system.columns WHERE table = 'events'").result_rows
    for family in ("census", "assessment"):
        result = client.query(
            f"SELECT * EXCEPT (build_key, built_at) FROM {family} WHERE level = 'county' "
            "AND region_code = {r:String} AND reference_date = {d:Date} AND cutoff IS NULL",
            parameters={"r": COUNTY, "d": D},
        )
        row = dict(zip(result.column_names, result.result_rows[0], strict=True))
        for column, value in indicators(site, family, "county", COUNTY).items():
            if column not in ("reference_date", "cutoff"):
                assert same(row[column], value), (family, column)
    df = client.query_df("SELECT region_code, households_total FROM census WHERE level = 'township'")
    assert len(df) >= 2
    for refused in ("SELECT count() FROM events", "SELECT * FROM system.users", "INSERT INTO census SELECT * FROM census",
                    f"SELECT count() FROM {db}.dead_letters",
                    "SELECT name FROM system.tables SETTINGS additional_table_filters = {}",
                    "SELECT count() FROM system.parts"):  # fmt: skip
        with pytest.raises(DatabaseError):
            client.query(refused)
    with pytest.raises(DatabaseError):
        clickhouse_connect.get_client(
            host="127.0.0.1", port=port, username="x", password="fpn_wrong", database=db
        )


# -- the browser ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and DRIVER):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (make test installs them as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def wait_ready(driver, region: str | None = None, timeout: float = 30.0) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = driver.execute_script("return document.body.dataset.ready") == "1"
        if ready and (
            region is None or driver.find_elements(By.CSS_SELECTOR, f"#region-name[data-region='{region}']")
        ):
            errors = driver.find_elements(By.ID, "error")
            assert not errors, errors[0].text
            return
        time.sleep(0.1)
    raise AssertionError(f"page not ready ({region}): {driver.page_source[:1000]}")


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shown_figures(driver) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    return {
        e.get_attribute("data-col"): e.get_attribute("data-value")
        for e in driver.find_elements(By.CSS_SELECTOR, "#main .fig")
    }


def check_figures(site, driver, level: str, region: str) -> int:
    shown = shown_figures(driver)
    checked = 0
    for family in ("census", "assessment"):
        for column, value in indicators(site, family, level, region).items():
            if column in shown:
                assert same(shown[column] or None, value), (level, region, column, shown[column], value)
                checked += 1
    return checked


def test_drill_down_from_the_province_to_a_village_and_back(site, tokens, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{site.url}/login?token={tokens['dashboard']}")
    wait_ready(driver, "43")
    assert "region=" not in driver.current_url or "date=" in driver.current_url
    path = ["43"]
    levels = ["province", "city", "county", "township", "village"]
    assert check_figures(site, driver, "province", "43") > 20
    driver.save_screenshot(str(ARTIFACTS / "dashboard-overview-province.png"))
    for level in levels[1:]:
        rows = driver.find_elements(By.CSS_SELECTOR, "#children tbody tr")
        assert rows, f"no children under {path[-1]}"
        # sortable: sort by households, descending, and take the largest child
        header = driver.find_element(By.CSS_SELECTOR, "#children th[data-col='households_total']")
        header.click()
        header = driver.find_element(By.CSS_SELECTOR, "#children th[data-col='households_total']")
        header.click()
        values = [
            int(td.get_attribute("data-value"))
            for td in driver.find_elements(By.CSS_SELECTOR, "#children td[data-col='households_total']")
        ]
        assert values == sorted(values, reverse=True)
        row = driver.find_element(By.CSS_SELECTOR, "#children tbody tr")
        code = row.get_attribute("data-region")
        row.click()
        wait_ready(driver, code)
        assert f"region={code}" in driver.current_url and f"date={D}" in driver.current_url
        crumbs = [
            e.get_attribute("data-region")
            for e in driver.find_elements(By.CSS_SELECTOR, "#breadcrumb [data-region]")
        ]
        assert crumbs == [*path, code]
        path.append(code)
        assert check_figures(site, driver, level, code) > 15
    driver.save_screenshot(str(ARTIFACTS / "dashboard-overview-village.png"))
    # a shared URL opens the same view
    driver.get(driver.current_url)
    wait_ready(driver, path[-1])
    # back up by the breadcrumb, to the county, then the province
    driver.find_element(By.CSS_SELECTOR, f"#breadcrumb a[data-region='{path[2]}']").click()
    wait_ready(driver, path[2])
    assert check_figures(site, driver, "county", path[2]) > 15
    driver.save_screenshot(str(ARTIFACTS / "dashboard-overview-county.png"))
    # a missed threshold is red and every rate says its numerator and denominator on hover
    rate = driver.find_element(By.CSS_SELECTOR, "#main .fig[data-col='wrong_exit_rate']")
    assert "/" in rate.get_attribute("title")
    driver.find_element(By.CSS_SELECTOR, "#breadcrumb a[data-region='43']").click()
    wait_ready(driver, "43")
    driver.find_element(By.ID, "lang").click()
    wait_ready(driver, "43")
    assert driver.find_element(By.CSS_SELECTOR, "#nav [data-page='overview']").text == "Overview"
    driver.save_screenshot(str(ARTIFACTS / "dashboard-overview-province-en.png"))
    assert console_errors(driver) == []


def test_series_alerts_and_health_pages(site, tokens, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{site.url}/login?token={tokens['dashboard']}")
    wait_ready(driver)
    driver.get(f"{site.url}/?page=series&region={COUNTY}&date={D}")
    wait_ready(driver)
    assert len(driver.find_elements(By.CSS_SELECTOR, ".chart canvas")) == 5
    # every chart exports as PNG, every table as CSV and JSON (what the buttons download)
    png = driver.execute_script(
        "return echarts.getInstanceByDom(document.getElementById('chart-status')).getDataURL({type: 'png'})"
    )
    assert png.startswith("data:image/png;base64,") and len(png) > 1000
    assert len(driver.find_elements(By.CSS_SELECTOR, "[data-export='png']")) == 5
    csv_text = driver.execute_script(
        "return csvOf(['month', 'poor_households'], [{month: '2020-01-31', poor_households: 3}])"
    )
    assert csv_text == "\ufeffmonth,poor_households\n2020-01-31,3\n"
    assert driver.find_elements(By.CSS_SELECTOR, "[data-export='csv']") and driver.find_elements(
        By.CSS_SELECTOR, "[data-export='json']"
    )
    driver.save_screenshot(str(ARTIFACTS / "dashboard-series.png"))

    driver.get(f"{site.url}/?page=alerts&region={COUNTY}&date={D}")
    wait_ready(driver)
    total = lambda: int(driver.execute_script("return document.getElementById('alerts-total').dataset.value"))  # noqa: E731
    before = total()
    village = driver.find_element(By.CSS_SELECTOR, "#alerts tbody tr").get_attribute("data-region")
    site.owner.insert("alerts", __import__("warehouse.sink", fromlist=["ALERT_COLUMNS"]).ALERT_COLUMNS,
                      [alert_row("H-new", village + "001", "2020-11-01", rule="medical_burden")])  # fmt: skip
    landed = time.monotonic()
    while total() != before + 1:
        assert time.monotonic() - landed < 5.0, "the alerts page did not show a new alert within 5 s"
        time.sleep(0.1)
    driver.save_screenshot(str(ARTIFACTS / "dashboard-alerts.png"))

    driver.get(f"{site.url}/?page=health&region={COUNTY}&date={D}")
    wait_ready(driver)
    departments = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#feeds td[data-col='department']")]
    assert "poverty_office" in departments
    reasons = driver.find_elements(By.CSS_SELECTOR, "#dead-letters td[data-col='dead_letters']")
    assert [r.get_attribute("data-value") for r in reasons] == ["3"]
    assert driver.find_element(By.ID, "data-docs").get_attribute("href").endswith("/datadocs/index.html")
    driver.save_screenshot(str(ARTIFACTS / "dashboard-health.png"))
    assert console_errors(driver) == []


def test_household_page_for_the_analyst(site, tokens, browser):
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{site.url}/login?token={tokens['analyst']}")
    wait_ready(driver)
    hid = site.owner.query("SELECT any(household_id) FROM events_latest")[0][0]
    driver.get(f"{site.url}/?page=household&household={hid}")
    wait_ready(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")
    driver.save_screenshot(str(ARTIFACTS / "dashboard-household.png"))
    assert console_errors(driver) == []
