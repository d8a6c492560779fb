"""The dashboard as `fupin up` runs it: its URL in `fupin status --json`, a token at its door,
healed by `fupin up` when it died, stopped by `fupin down` (separate CLI processes, real stack)."""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request

import pytest
from test_stack import PARTITIONS, fupin
from test_stack_heal import gone, wait_until


@pytest.fixture
def env(tmp_path):
    e = {k: v for k, v in os.environ.items() if not k.startswith("FUPIN_")}
    e.update(FUPIN_DATA_DIR=str(tmp_path / "data"), FUPIN_CHDB_PATH=str(tmp_path / "chdb"),
             FUPIN_TOPIC_PARTITIONS=str(PARTITIONS), FUPIN_PSEUDONYM_KEY="test-only-pseudonym-key")  # fmt: skip
    yield e
    fupin("down", "--timeout", "10", env=e)


def status(env) -> dict:
    return json.loads(fupin("status", "--json", env=env).stdout)


def code_of(url: str, token: str | None = None) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_up_starts_the_dashboard_status_reports_it_down_stops_it(env, tmp_path):
    up = fupin("up", env=env)
    assert up.returncode == 0, up.stderr
    assert "dashboard: pid" in up.stdout and "/login?token=" in up.stdout
    report = status(env)
    url = report["dashboard_url"]
    assert url and url.startswith("http://127.0.0.1:")
    dash = next(c for c in report["components"] if c["component"] == "dashboard")
    assert dash["state"] == "alive", dash
    assert code_of(f"{url}/api/meta") == 401
    token = (tmp_path / "data" / "dashboard.token").read_text().strip()
    assert code_of(f"{url}/", token) == 200
    # killed: `fupin up` starts it again
    os.kill(dash["pid"], signal.SIGKILL)
    assert gone(dash["pid"])
    again = fupin("up", env=env)
    assert "dashboard: pid" in again.stdout, again.stdout
    wait_until(lambda: status(env)["dashboard_url"], 30, "the dashboard back")
    pid = next(c for c in status(env)["components"] if c["component"] == "dashboard")["pid"]
    down = fupin("down", env=env)
    assert "dashboard pid" in down.stdout, down.stdout
    assert gone(pid)
